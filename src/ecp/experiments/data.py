"""MNIST (and any dataset in MNIST's IDX format): read and load (downloading is :mod:`.download`).

- :func:`read_idx` reads one IDX file, gzip-compressed or raw, and checks it fully: magic
  number, declared sizes against the payload. A truncated, corrupt or missing file is an error
  that names the file; partial data is never returned.
- :func:`resolve_data_dir` finds the data folder: an explicit path, else ``$ECP_DATA_DIR``.
- :func:`load_mnist` loads the four standard files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  ``.gz`` or raw) into a :class:`Dataset` of uint8 arrays. Fashion-MNIST uses the same names and
  format and loads the same way.
- :func:`to_float` turns uint8 images (N, H, W) into the network's float input (N, 1, H, W) in [0, 1].
- :func:`ecp.experiments.download.download` (``ecp data download DIR``) fetches the four files
  from a mirror, checks each MD5 and only then moves it into place; its names (``download``,
  ``DownloadError``, ``DATASETS``, ``FileStatus``, ``md5sum``) are also reachable from here.

The package never assumes where the data lives: pass a folder, or set ``ECP_DATA_DIR``.
"""
from __future__ import annotations

import gzip
import math
import numbers
import os
import pathlib
import struct
import zlib
from typing import NamedTuple

import numpy as np

__all__ = [
    "DATA_ENV", "DataError", "Dataset", "MNIST_FILES", "read_idx", "resolve_data_dir", "load_mnist", "to_float",
]

#: Names of :mod:`ecp.experiments.download` also served from here (``ecp.data.download`` and the
#: like keep working through the old import path).
_DOWNLOAD_NAMES = ("download", "DownloadError", "DATASETS", "FileStatus", "md5sum")

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

_HOW_TO_GET = (
    f"pass --data DIR, set {DATA_ENV}=DIR, or download MNIST with `ecp data download DIR`"
)


class DataError(ValueError):
    """A dataset file is corrupt, truncated or not what was expected (the message names it)."""


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


def read_idx(path: str | os.PathLike, *, ndim: int | None = None, dtype=None) -> np.ndarray:
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
        The file, gzip-compressed or raw.
    ndim : int, optional
        Required number of dimensions (3 for images, 1 for labels); checked from the header.
    dtype : numpy dtype, optional
        Required element type (e.g. ``np.uint8``); checked from the header.

    Returns
    -------
    ndarray
        Shape as declared by the header, native byte order, writable, C-contiguous, owning its
        data.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    IsADirectoryError
        ``path`` is a directory.
    DataError (a ValueError)
        Corrupt gzip, bad magic number, unsupported type, wrong ``ndim`` / ``dtype``, or a
        payload shorter or longer than the header declares. The message names the file.
    """
    path = _as_path(path, "path")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a directory, expected an IDX file") from None
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

def resolve_data_dir(path: str | os.PathLike | None = None) -> pathlib.Path:
    """Find the folder holding the dataset files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Used when given (``~`` is expanded); otherwise ``$ECP_DATA_DIR``.

    Returns
    -------
    pathlib.Path
        The folder, which exists (``~`` expanded).

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
    for name in (stem + ".gz", stem):
        if (folder / name).is_dir():
            raise IsADirectoryError(f"{folder / name} is a directory, expected an IDX file "
                                    f"({stem}.gz or raw {stem})")
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


def load_mnist(data_dir: str | os.PathLike | None = None, *, limit_train: int | None = None,
               limit_test: int | None = None, num_classes: int = 10) -> Dataset:
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
    IsADirectoryError
        A directory where a file should be, and no file of that name (the message names it).
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


def to_float(images: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Convert uint8 images (N, H, W) to network input (N, 1, H, W) scaled to [0, 1].

    Each pixel becomes ``value / 255`` (0 -> 0.0, 255 -> 1.0 exactly), with one channel axis
    added: the NCHW layout of the ecp kernels. No mean/std normalisation is applied.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W)
        The images, 0..255.
    dtype : numpy dtype
        ``np.float32`` (default) or ``np.float64``.

    Returns
    -------
    ndarray, shape (N, 1, H, W)
        A new C-contiguous array of ``dtype``.

    Raises
    ------
    TypeError
        ``images`` is not a uint8 ndarray, or ``dtype`` is not float32 or float64.
    ValueError
        ``images`` is not 3-D.
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


def __getattr__(name: str):
    if name in _DOWNLOAD_NAMES:
        from . import download as _download

        return getattr(_download, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
