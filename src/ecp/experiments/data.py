"""MNIST (and any dataset in MNIST's IDX format): read, load, download.

- :func:`read_idx` reads one IDX file, gzip-compressed or raw, and checks it fully: magic
  number, declared sizes against the payload. A truncated, corrupt or missing file is an error
  that names the file; partial data is never returned.
- :func:`resolve_data_dir` finds the data folder: an explicit path, else ``$ECP_DATA_DIR``.
- :func:`load_mnist` loads the four standard files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  ``.gz`` or raw) into a :class:`Dataset` of uint8 arrays. Fashion-MNIST uses the same names and
  format and loads the same way.
- :func:`to_float` turns uint8 images (N, H, W) into the network's float input (N, 1, H, W) in [0, 1].
- :func:`download` (``ecp data download DIR``) fetches the four files from a mirror, checks each
  MD5 and only then moves it into place, so a failed, interrupted or corrupted download never
  leaves a file behind.

The package never assumes where the data lives: pass a folder, or set ``ECP_DATA_DIR``.
"""
import argparse
import gzip
import hashlib
import http.client
import math
import numbers
import os
import pathlib
import re
import secrets
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from typing import NamedTuple

import numpy as np

__all__ = [
    "DATA_ENV", "DataError", "DownloadError", "Dataset", "FileStatus", "MNIST_FILES", "DATASETS",
    "read_idx", "resolve_data_dir", "load_mnist", "to_float", "md5sum", "download", "add_parser",
]

#: Environment variable naming the folder that holds the dataset files.
DATA_ENV = "ECP_DATA_DIR"

#: The four standard file stems, in :class:`Dataset` order (each is looked up as ``stem.gz``
#: first, then as the raw ``stem``).
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

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

_HOW_TO_GET = (
    f"pass --data DIR, set {DATA_ENV}=DIR, or download MNIST with `ecp data download DIR`"
)


class DataError(ValueError):
    """A dataset file is corrupt, truncated or not what was expected (the message names it)."""


class DownloadError(OSError):
    """A download failed: HTTP error, network error, timeout or short transfer (names the URL)."""


class Dataset(NamedTuple):
    """Images and labels of a dataset in MNIST's IDX format.

    Attributes
    ----------
    train_images : ndarray, shape (n_train, rows, cols), uint8 (0 background .. 255 ink)
    train_labels : ndarray, shape (n_train,), uint8 class indices
    test_images : ndarray, shape (n_test, rows, cols), uint8
    test_labels : ndarray, shape (n_test,), uint8
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


# --------------------------------------------------------------------------------------- IDX

# IDX data type byte -> dtype (big-endian on disk).
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _as_path(value, name):
    if isinstance(value, (str, os.PathLike)):
        return pathlib.Path(value)
    raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}"[:200])


def _type_name(dtype):
    return dtype.newbyteorder("=").name


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def read_idx(path, *, ndim=None, dtype=None):
    """Read one IDX file (gzip-compressed or raw) into a numpy array.

    The IDX format: two zero bytes, a data-type byte (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), a byte with the number of dimensions, one
    big-endian uint32 per dimension, then the values, big-endian, row-major. MNIST images
    are magic 2051 (0x00000803: uint8, 3-D), labels magic 2049 (0x00000801: uint8, 1-D).

    The file is gzip-decompressed when its name ends in ``.gz`` or its content starts with the
    gzip magic bytes, and read raw otherwise.

    Parameters
    ----------
    path : str or os.PathLike
    ndim : int, optional
        Required number of dimensions (3 for images, 1 for labels); checked from the header.
    dtype : numpy dtype, optional
        Required element type (e.g. ``np.uint8``); checked from the header.

    Returns
    -------
    ndarray, shape as declared by the header, native byte order, writable, C-contiguous.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    DataError (a ValueError)
        Corrupt gzip, bad magic number, unsupported type, wrong ``ndim`` / ``dtype``, or a
        payload shorter or longer than the header declares. The message names the file.
    """
    path = _as_path(path, "path")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}") from None
    return _decode_idx(raw, path, gz=path.name.endswith(".gz"), ndim=ndim, dtype=dtype)


def _decode_idx(raw, label, *, gz, ndim=None, dtype=None):
    """Parse the bytes of an IDX file (see :func:`read_idx`); ``label`` names it in errors.
    Decompresses when ``gz`` or the bytes start with the gzip magic."""
    if ndim is not None and (isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral)):
        raise TypeError(f"ndim must be an integer or None, got {type(ndim).__name__} {ndim!r}")
    want_dtype = None if dtype is None else np.dtype(dtype)
    if gz or raw[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{label}: not a valid gzip file, corrupt or truncated ({exc})") from None
        what = "decompressed file"
    else:
        data = raw
        what = "file"
    del raw

    if len(data) < 4:
        raise DataError(f"{label}: {what} has {_plural(len(data), 'byte')}, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{label}: bad magic number 0x{magic:08X}: not an IDX file "
                        f"(IDX starts with two zero bytes; MNIST images are 0x00000803, labels 0x00000801)")
    type_byte, nd = data[2], data[3]
    if type_byte not in _IDX_TYPES:
        known = ", ".join(f"0x{k:02X} {_type_name(v)}" for k, v in _IDX_TYPES.items())
        raise DataError(f"{label}: unsupported IDX data type 0x{type_byte:02X} in magic number "
                        f"0x{magic:08X} (known: {known})")
    if nd == 0:
        raise DataError(f"{label}: IDX header declares 0 dimensions (magic 0x{magic:08X})")
    file_dtype = _IDX_TYPES[type_byte]
    native = file_dtype.newbyteorder("=")
    if (ndim is not None and nd != ndim) or (want_dtype is not None and native != want_dtype.newbyteorder("=")):
        want = (f"{_type_name(want_dtype) if want_dtype is not None else 'any type'}, "
                f"{_plural(ndim, 'dimension') if ndim is not None else 'any dimensions'}")
        raise DataError(f"{label}: expected an IDX file of {want}, got {_type_name(file_dtype)} "
                        f"with {_plural(nd, 'dimension')} (magic number 0x{magic:08X} = {magic})")
    header = 4 + 4 * nd
    if len(data) < header:
        raise DataError(f"{label}: truncated IDX header: {nd} dimensions need {header} bytes, "
                        f"{what} has {len(data)}")
    shape = struct.unpack(f">{nd}I", data[4:header])
    count = math.prod(shape)
    expected = count * file_dtype.itemsize
    payload = len(data) - header
    declared = f"{' x '.join(map(str, shape))} {_type_name(file_dtype)} = {expected} bytes"
    if payload < expected:
        raise DataError(f"{label}: truncated: header declares {declared} of data, "
                        f"{what} has only {payload}")
    if payload > expected:
        raise DataError(f"{label}: wrong size: header declares {declared} of data, "
                        f"{what} has {payload} ({payload - expected} extra)")
    array = np.frombuffer(data, dtype=file_dtype, count=count, offset=header).reshape(shape)
    # One copy: writable, native byte order, and independent of the decompressed buffer.
    return array.astype(native, order="C", copy=True)


# ---------------------------------------------------------------------------------- folders

def resolve_data_dir(path=None):
    """The folder holding the dataset files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Used when given (``~`` is expanded); otherwise ``$ECP_DATA_DIR``.

    Returns
    -------
    pathlib.Path of an existing folder.

    Raises
    ------
    FileNotFoundError
        Neither a path nor ``ECP_DATA_DIR`` is given (the message says how to get MNIST), or the
        folder does not exist.
    NotADirectoryError
        The path exists but is not a folder.
    """
    if path is not None:
        folder, source = _as_path(path, "path").expanduser(), "data folder"
    else:
        env = os.environ.get(DATA_ENV, "")
        if not env.strip():
            raise FileNotFoundError(f"no data folder given: {_HOW_TO_GET}")
        folder, source = pathlib.Path(env).expanduser(), f"data folder (from {DATA_ENV})"
    if not folder.exists():
        raise FileNotFoundError(f"{source} {folder} does not exist; {_HOW_TO_GET}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{source} {folder} is not a folder")
    return folder


def _find(folder, stem):
    for name in (stem + ".gz", stem):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder / (stem + '.gz')} not found (nor raw {stem}) in the data folder; "
                            f"download MNIST with `ecp data download {folder}`")


def _check_limit(limit, name):
    if limit is None:
        return None
    if isinstance(limit, (bool, np.bool_)) or not isinstance(limit, numbers.Integral):
        raise TypeError(f"{name} must be an integer or None, got {type(limit).__name__} {limit!r}")
    limit = int(limit)
    if limit < 0:
        raise ValueError(f"{name} must be >= 0, got {limit}")
    return limit


def load_mnist(data_dir=None, *, limit_train=None, limit_test=None, num_classes=10):
    """Load MNIST, or any dataset in its IDX format and file names (e.g. Fashion-MNIST).

    Each of the four files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` is read from ``NAME.gz`` if present,
    else from the raw ``NAME``. Every file is checked in full (see :func:`read_idx`); then image
    and label counts must agree, train and test images must have the same size, and every label
    must be below ``num_classes``.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder with the files; default ``$ECP_DATA_DIR`` (see :func:`resolve_data_dir`).
    limit_train, limit_test : int, optional
        Keep only the first n training / test examples (quick runs, tests); at most the number
        available. The whole file is still read and checked.
    num_classes : int, default 10
        Labels must be in ``0 .. num_classes - 1``.

    Returns
    -------
    Dataset
        ``(train_images, train_labels, test_images, test_labels)``: images uint8
        (n, rows, cols) -- (60000, 28, 28) and (10000, 28, 28) for MNIST -- and labels
        uint8 (n,). The arrays are writable and own their data.

    Raises
    ------
    FileNotFoundError
        No folder, or a file missing (the message names it and how to download).
    DataError (a ValueError)
        A corrupt file, or files that do not fit together (the message names the file).
    """
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be an integer, got {type(num_classes).__name__} {num_classes!r}")
    if not 1 <= num_classes <= 256:
        raise ValueError(f"num_classes must be in 1..256 (labels are uint8), got {num_classes}")
    limit_train = _check_limit(limit_train, "limit_train")
    limit_test = _check_limit(limit_test, "limit_test")
    if data_dir is not None:
        _as_path(data_dir, "data_dir")
    folder = resolve_data_dir(data_dir)
    parts = []
    for split, (images_stem, labels_stem), limit, limit_name in (
        ("training", MNIST_FILES[:2], limit_train, "limit_train"),
        ("test", MNIST_FILES[2:], limit_test, "limit_test"),
    ):
        images_path, labels_path = _find(folder, images_stem), _find(folder, labels_stem)
        images = read_idx(images_path, ndim=3, dtype=np.uint8)
        labels = read_idx(labels_path, ndim=1, dtype=np.uint8)
        if len(images) != len(labels):
            raise DataError(f"{labels_path}: {len(labels)} {split} labels but {images_path} has "
                            f"{len(images)} images")
        if len(labels) and labels.max() >= num_classes:
            bad = int(np.argmax(labels >= num_classes))
            raise DataError(f"{labels_path}: label {labels[bad]} at index {bad} is out of range "
                            f"0..{num_classes - 1} (num_classes={num_classes})")
        n = len(images) if limit is None else limit
        if n > len(images):
            raise ValueError(f"{limit_name}={n} exceeds the {len(images)} {split} examples in {images_path}")
        if n < len(images):
            images, labels = images[:n].copy(), labels[:n].copy()
        parts.append((images_path, images, labels))
    (train_path, train_images, train_labels), (test_path, test_images, test_labels) = parts
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataError(f"{test_path}: test images are {test_images.shape[1]} x {test_images.shape[2]} "
                        f"but the training images ({train_path}) are "
                        f"{train_images.shape[1]} x {train_images.shape[2]}")
    return Dataset(train_images, train_labels, test_images, test_labels)


def to_float(images, dtype=np.float32):
    """uint8 images (N, H, W) -> network input (N, 1, H, W) scaled to [0, 1].

    Each pixel becomes ``value / 255`` (0 -> 0.0, 255 -> 1.0 exactly), with one channel axis
    added: the NCHW layout of the ecp kernels. No mean/std normalisation is applied.

    Parameters
    ----------
    images : ndarray, shape (N, H, W), uint8
    dtype : float32 (default) or float64

    Returns
    -------
    ndarray, shape (N, 1, H, W), ``dtype``, C-contiguous, a new array.
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy array (N, H, W) of uint8, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"images must have dtype uint8 (0..255), got {images.dtype}")
    if images.ndim != 3:
        raise ValueError(f"images must be a 3-D (N, H, W) array, got shape {images.shape}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    out = np.empty((images.shape[0], 1) + images.shape[1:], dtype=dtype)
    np.divide(images, dtype.type(255), out=out[:, 0], dtype=dtype)
    return out


# ---------------------------------------------------------------------------------- download

_CHUNK = 1 << 16
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")


class FileStatus(NamedTuple):
    """What :func:`download` did with one file: ``status`` is ``"downloaded"`` or ``"skipped"``;
    ``md5`` is the file's MD5 (``None`` when verification was off and it was skipped)."""

    path: pathlib.Path
    status: str
    md5: "str | None"


def md5sum(path):
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _size(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


class _ProgressLine:
    """One self-overwriting line on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream):
        self.stream = stream
        self.last = 0.0
        self.text = None

    def __call__(self, name, done, total):
        now = time.monotonic()
        if now - self.last < 0.1 and not (total and done == total):
            return
        self.last = now
        if total:
            text = f"{name}  {_size(done)} / {_size(total)}  {100 * done // total:3d}%"
        else:
            text = f"{name}  {_size(done)}"
        pad = " " * max(0, len(self.text or "") - len(text))
        self.text = text
        self.stream.write("\r" + text + pad)
        self.stream.flush()

    def end(self):
        """Move past the line (if one was drawn), ready for the next file or an error message."""
        if self.text is not None:
            self.stream.write("\n")
            self.stream.flush()
        self.text = None
        self.last = 0.0


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


def _fetch(url, target, expected_md5, timeout, progress):
    """Download ``url`` to a temporary file beside ``target``, check length and MD5, rename.

    Whatever goes wrong (HTTP error, timeout, short transfer, bad checksum, disk full,
    Ctrl-C), the temporary file is removed and ``target`` is left as it was. With
    ``expected_md5=None`` the content must at least parse as an IDX file. Returns the MD5.
    """
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with open(fd, "wb") as out:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "ecp-data-download"})
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.strip().isdigit() else None
                    while True:
                        chunk = response.read(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(target.name, done, total)
            except urllib.error.HTTPError as exc:
                exc.close()  # it holds the response and its socket
                raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
            except urllib.error.URLError as exc:
                raise DownloadError(f"could not download {url}: {exc.reason}") from None
            except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                kind = "timed out" if isinstance(exc, TimeoutError) else "transfer failed"
                raise DownloadError(f"could not download {url}: {kind} after {done} bytes "
                                    f"({type(exc).__name__}: {exc})") from None
            if total is not None and done != total:
                raise DownloadError(f"could not download {url}: connection closed after "
                                    f"{done} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if expected_md5 is not None and got != expected_md5:
            raise DataError(f"{target.name}: MD5 mismatch for {url}: expected {expected_md5}, "
                            f"got {got} ({done} bytes); nothing was saved. (Another dataset? "
                            f"Use --dataset or --md5 NAME=HASH.)")
        if expected_md5 is None:
            _decode_idx(tmp.read_bytes(), f"{target.name} from {url}", gz=target.name.endswith(".gz"))
        os.replace(tmp, target)
        return got
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def download(data_dir, *, dataset="mnist", base_url=None, md5=None, verify=True, force=False,
             timeout=60.0, progress=None, log=None):
    """Download the four ``.gz`` files of MNIST (or Fashion-MNIST) into ``data_dir``.

    Each file is streamed into a hidden temporary file in ``data_dir`` (``.NAME.XXXXXXXX.part``)
    while its MD5 is computed, and renamed to ``NAME`` only when the length and the MD5 match.
    On any failure -- HTTP error, timeout, short transfer, bad checksum, Ctrl-C -- the temporary
    file is removed, so ``data_dir`` never holds a partial or corrupt file. Files already present
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
        Mirror to fetch ``base_url + NAME`` from (any scheme urllib handles: https, http,
        file); default the dataset's mirror (MNIST: https://ossci-datasets.s3.amazonaws.com/mnist/).
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
    list of FileStatus ``(path, status, md5)``, one per file, in download order.

    Raises
    ------
    DataError (a ValueError)
        A bad checksum (names the file, the URL and both hashes) or, with ``verify=False``,
        content that is not IDX.
    DownloadError (an OSError)
        HTTP error, network error, timeout or short transfer (names the URL).
    """
    folder = _as_path(data_dir, "data_dir").expanduser()
    table = _md5_table(dataset, md5, verify)
    if base_url is None:
        base_url = DATASETS[dataset]["base_url"]
    if not isinstance(base_url, str) or not urllib.parse.urlsplit(base_url).scheme:
        raise ValueError(f"base_url must be a URL such as https://host/path/, got {base_url!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    folder.mkdir(parents=True, exist_ok=True)
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
            if isinstance(progress, _ProgressLine):
                progress.end()
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


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


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
    progress = _ProgressLine(sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    log = None if args.quiet else (lambda message: print(message, flush=True))
    download(folder, dataset=args.dataset, base_url=args.base_url, md5=dict(args.md5),
             verify=not args.no_verify, force=args.force, timeout=args.timeout,
             progress=progress, log=log)
    if not args.quiet:
        print(f"done: use --data {folder} or {DATA_ENV}={folder}")
    return 0
