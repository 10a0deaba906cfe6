"""Downloading MNIST (or Fashion-MNIST), checksummed: ``ecp data download``.

The transfer is pooch's (the optional extra ``ecp[data]``: ``pip install "ecp[data]"``), as in
scikit-image; the guarantees are ecp's own. Each file is streamed into a hidden temporary file
beside its target while its MD5 is computed, and renamed into place only when its length and
MD5 match (:func:`ecp.experiments._files.write_atomic`). Whatever goes wrong -- HTTP error,
no network, a server that stalls, a short transfer, a bad checksum, Ctrl-C -- the temporary file
is removed and the target is left as it was, so the data folder never holds a partial or corrupt
file. Errors name the URL (:class:`DownloadError`) or the file and both hashes
(:class:`~ecp.experiments.data.DataError`).

Why not ``pooch.retrieve`` whole: it cannot re-fetch a present, valid file without deleting it
first (``--force``), nor check that an unverified file (``--no-verify``) parses as IDX before
it is moved into place; so pooch moves the bytes and this module checks and renames them.
"""
from __future__ import annotations

import argparse
import hashlib
import numbers
import os
import pathlib
import re
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import NamedTuple

from . import _args
from ._files import clean_leftovers, write_atomic
from ._progress import ByteBar
from .data import DATA_ENV, DataError, _as_path, _decode_idx

__all__ = ["DATASETS", "DownloadError", "FileStatus", "md5sum", "download", "add_parser"]

#: Datasets :func:`download` knows: default mirror and the MD5 of each published ``.gz`` file.
DATASETS = {
    "mnist": {
        "base_url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion-mnist": {
        "base_url": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}

_CHUNK = 1 << 16
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_SCHEMES = ("https", "http", "ftp", "file")
_NEEDS_POOCH = 'downloading needs pooch, an optional dependency: pip install "ecp[data]"'


class DownloadError(OSError):
    """A download failed: HTTP error, network error, timeout or short transfer (names the URL)."""


class FileStatus(NamedTuple):
    """What :func:`download` did with one file.

    Attributes
    ----------
    path : pathlib.Path
        The file in the data folder.
    status : str
        ``"downloaded"`` or ``"skipped"`` (already present with the right MD5, or present and
        unchecked with ``verify=False``).
    md5 : str or None
        The file's MD5 hex digest; None when verification was off and the file was skipped.
    """

    path: pathlib.Path
    status: str
    md5: str | None


def md5sum(path: str | os.PathLike) -> str:
    """Compute the MD5 of a file, reading it in 1 MiB chunks.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        The 32-digit lowercase hex digest.

    Raises
    ------
    OSError
        The file cannot be read (FileNotFoundError when it does not exist).
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require_pooch():
    try:
        import pooch
    except ImportError:
        raise ImportError(_NEEDS_POOCH) from None
    return pooch


def _md5_table(dataset, md5, verify):
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    table = dict(DATASETS[dataset]["md5"])
    if md5:
        if not verify:
            raise ValueError("md5 overrides and verify=False contradict each other: choose one")
        for name, value in dict(md5).items():
            if name not in table:
                raise ValueError(f"md5: unknown file {name!r}; the files are {', '.join(table)}")
            if not isinstance(value, str) or not _HEX32.match(value):
                raise ValueError(f"md5 for {name} must be 32 hexadecimal digits, got {value!r}")
            table[name] = value.lower()
    return table



class _Sink:
    """The file object pooch writes into: hashes and counts the bytes, reports progress."""

    def __init__(self, out, name, progress):
        self.out, self.name, self.progress = out, name, progress
        self.digest = hashlib.md5(usedforsecurity=False)
        self.done = 0
        self.total = None  # set by pooch (as a progress bar's ``total``) from Content-Length

    def write(self, chunk):
        self.out.write(chunk)
        self.digest.update(chunk)
        self.done += len(chunk)
        if self.progress is not None:
            self.progress(self.name, self.done, self.total or None)

    def flush(self):
        self.out.flush()

    # the progress-bar protocol pooch drives (it only sets ``total``; bytes are counted in write)
    def update(self, n):
        pass

    def reset(self):
        pass

    def close(self):
        pass


def _transfer(url, sink, timeout):
    """Stream ``url`` into ``sink``; DownloadError naming the URL on any transfer failure."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "file":
        try:
            with open(urllib.request.url2pathname(urllib.parse.urlsplit(url).path), "rb") as src:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    sink.write(chunk)
        except FileNotFoundError:
            raise DownloadError(f"could not download {url}: no such file") from None
        return
    pooch = _require_pooch()
    import requests

    try:
        if scheme == "ftp":
            pooch.FTPDownloader(timeout=timeout, chunk_size=_CHUNK)(url, sink, None)
        else:
            pooch.HTTPDownloader(progressbar=sink, chunk_size=_CHUNK, timeout=timeout,
                                 headers={"User-Agent": "ecp-data-download"})(url, sink, None)
    except requests.HTTPError as exc:
        response = exc.response
        raise DownloadError(f"could not download {url}: HTTP {response.status_code} {response.reason}") from None
    except requests.Timeout as exc:
        raise DownloadError(f"could not download {url}: timed out after {sink.done} bytes "
                            f"({type(exc).__name__})") from None
    except requests.ConnectionError as exc:
        raise DownloadError(f"could not download {url}: {exc}") from None
    except (requests.RequestException, OSError, EOFError) as exc:
        raise DownloadError(f"could not download {url}: transfer failed after {sink.done} bytes "
                            f"({type(exc).__name__}: {exc})") from None
    if sink.total and sink.done != sink.total:
        raise DownloadError(f"could not download {url}: connection closed after "
                            f"{sink.done} of {sink.total} bytes")


def _fetch(url, target, expected_md5, timeout, progress):
    """Download ``url`` to ``target`` atomically after checking its MD5 (or, with
    ``expected_md5=None``, that it parses as IDX). Returns the MD5."""
    result = {}

    def write(out):
        sink = _Sink(out, target.name, progress)
        _transfer(url, sink, timeout)
        got = sink.digest.hexdigest()
        if expected_md5 is not None and got != expected_md5:
            raise DataError(f"{target.name}: MD5 mismatch for {url}: expected {expected_md5}, "
                            f"got {got} ({sink.done} bytes); nothing was saved. (Another dataset? "
                            f"Use --dataset or --md5 NAME=HASH.)")
        if expected_md5 is None:
            out.flush()
            with open(out.name, "rb") as written:
                _decode_idx(written.read(), f"{target.name} from {url}", gz=target.name.endswith(".gz"))
        result["md5"] = got

    write_atomic(target, write)
    return result["md5"]


def download(data_dir: str | os.PathLike, *, dataset: str = "mnist", base_url: str | None = None,
             md5: dict[str, str] | None = None, verify: bool = True, force: bool = False, timeout: float = 60.0,
             progress: Callable[[str, int, int | None], None] | None = None,
             log: Callable[[str], None] | None = None) -> list[FileStatus]:
    """Download the four ``.gz`` files of MNIST (or Fashion-MNIST) into ``data_dir``.

    Each file is streamed into a hidden temporary file in ``data_dir`` (``.NAME.ecp<PID>-*.part``)
    while its MD5 is computed, and renamed to ``NAME`` only when the length and the MD5 match.
    On any failure -- HTTP error, timeout, short transfer, bad checksum, Ctrl-C -- the temporary
    file is removed, so ``data_dir`` never holds a partial or corrupt file; the one a download
    killed outright (SIGKILL) leaves is removed by the next call (once its process is gone). Files already present
    with the right MD5 are skipped (unless ``force``); a present file with a wrong MD5 is
    downloaded again and replaced. Files are fetched in order and the first error stops; files
    completed before it stay (they are verified).

    Parameters
    ----------
    data_dir : str or os.PathLike
        Created (with parents) if missing.
    dataset : {"mnist", "fashion-mnist"}
        Chooses the default mirror and the known MD5s (see :data:`DATASETS`).
    base_url : str, optional
        Mirror to fetch ``base_url + NAME`` from (https, http, ftp or file); default the dataset's mirror (MNIST: https://ossci-datasets.s3.amazonaws.com/mnist/).
    md5 : dict {file name: hex MD5}, optional
        Overrides the known MD5 of some files (another dataset in the same format).
    verify : bool, default True
        ``False`` skips the MD5 check (the content must still parse as IDX); existing files
        are then kept without checking. Not combinable with ``md5``.
    force : bool
        Download even files already present with the right MD5.
    timeout : float, seconds
        Socket timeout for connecting and for each read.
    progress : callable ``(name, bytes_done, bytes_total_or_None)``, optional
        Called after every chunk (the CLI draws a progress line on a terminal).
    log : callable ``(message)``, optional
        Receives one line per file (downloaded / skipped).

    Returns
    -------
    list of FileStatus
        ``(path, status, md5)``, one per file, in download order.

    Raises
    ------
    ValueError
        An unknown ``dataset``, a bad ``md5`` entry, ``md5`` with ``verify=False``, a
        ``base_url`` that is not an https, http, ftp or file URL, or a ``timeout`` not > 0.
    DataError (a ValueError)
        A bad checksum (names the file, the URL and both hashes) or, with ``verify=False``,
        content that is not IDX.
    DownloadError (an OSError)
        HTTP error, network error, timeout or short transfer (names the URL).
    ImportError
        pooch is not installed (``pip install "ecp[data]"``).
    """
    folder = _as_path(data_dir, "data_dir").expanduser()
    table = _md5_table(dataset, md5, verify)
    if base_url is None:
        base_url = DATASETS[dataset]["base_url"]
    if not isinstance(base_url, str) or not urllib.parse.urlsplit(base_url).scheme:
        raise ValueError(f"base_url must be a URL such as https://host/path/, got {base_url!r}")
    if urllib.parse.urlsplit(base_url).scheme not in _SCHEMES:
        raise ValueError(f"base_url must use one of {', '.join(_SCHEMES)}, got {base_url!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    if urllib.parse.urlsplit(base_url).scheme != "file":
        _require_pooch()  # before any folder is created
    folder.mkdir(parents=True, exist_ok=True)
    clean_leftovers(folder)  # the .NAME.*.part files of a download killed outright (SIGKILL)
    log = log or (lambda message: None)
    results = []
    for name, known in table.items():
        target = folder / name
        expected = known if verify else None
        if target.is_file() and not force:
            if not verify:
                log(f"{name}: present, kept (not verified)")
                results.append(FileStatus(target, "skipped", None))
                continue
            have = md5sum(target)
            if have == expected:
                log(f"{name}: present, MD5 ok, skipped")
                results.append(FileStatus(target, "skipped", have))
                continue
            log(f"{name}: present but MD5 is {have}, not {expected}: downloading again")
        url = base_url + urllib.parse.quote(name)
        try:
            got = _fetch(url, target, expected, float(timeout), progress)
        finally:
            end = getattr(progress, "end", None)
            if callable(end):
                end()
        size = target.stat().st_size
        log(f"{name}: downloaded {size:,} bytes, " + ("MD5 ok" if verify else f"MD5 {got} (not verified)"))
        results.append(FileStatus(target, "downloaded", got))
    return results



# --------------------------------------------------------------------------------------- CLI

def _md5_override(text):
    name, sep, value = text.partition("=")
    if not sep or not name or not _HEX32.match(value):
        raise argparse.ArgumentTypeError(f"expected NAME=HASH with a 32-digit hex MD5, got {text!r}")
    return name, value.lower()


_positive_seconds = _args.float_where(lambda v: v > 0, "a number of seconds > 0")


def add_parser(subparsers):
    """Add ``ecp data`` (with its action ``download``) to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "data", help="get the MNIST files", description="Get datasets in MNIST's IDX format.")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = actions.add_parser(
        "download",
        help="download MNIST (or Fashion-MNIST) and check each file's MD5",
        description=(
            "Download the four .gz files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into DIR. Each file is written "
            "to a temporary file and renamed only once its MD5 matches, so an error or Ctrl-C "
            "never leaves a partial file. Files already present with the right MD5 are skipped."
        ),
        epilog=(
            f"Afterwards use the folder with --data DIR or {DATA_ENV}=DIR. Another dataset in the "
            "same format and file names: --dataset fashion-mnist, or --base-url URL plus "
            "--md5 NAME=HASH for each file (or --no-verify, not recommended)."
        ),
    )
    p.add_argument("dir", metavar="DIR", nargs="?",
                   help=f"folder to write into, created if missing (default: ${DATA_ENV})")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist",
                   help="known dataset: default mirror and MD5s (default: mnist)")
    p.add_argument("--base-url", metavar="URL",
                   help=f"mirror to fetch URL/NAME from (default for mnist: {DATASETS['mnist']['base_url']})")
    p.add_argument("--md5", metavar="NAME=HASH", action="append", type=_md5_override, default=[],
                   help="expected MD5 of file NAME, replacing the known one (repeatable)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the MD5 check (files must still parse as IDX); prints a warning")
    p.add_argument("--force", action="store_true", help="download even files already present and correct")
    p.add_argument("--timeout", type=_positive_seconds, default=60.0, metavar="SECONDS",
                   help="network timeout per connection / read (default: 60)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=_run_download)
    return parser


def _run_download(args):
    folder = args.dir or os.environ.get(DATA_ENV, "").strip()
    if not folder:
        raise ValueError(f"no folder given: ecp data download DIR (or set {DATA_ENV})")
    if args.no_verify:
        print("WARNING: --no-verify: the MD5 checksums are NOT checked; the files may be corrupt "
              "or not what you expect.", file=sys.stderr)
    bar = ByteBar(sys.stderr, enabled=not args.quiet)
    progress = bar if bar.enabled else None
    log = None if args.quiet else (lambda message: print(message, flush=True))
    download(folder, dataset=args.dataset, base_url=args.base_url, md5=dict(args.md5),
             verify=not args.no_verify, force=args.force, timeout=args.timeout,
             progress=progress, log=log)
    if not args.quiet:
        print(f"done: use --data {folder} or {DATA_ENV}={folder}")
    return 0
