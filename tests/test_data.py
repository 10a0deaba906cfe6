"""ecp.experiments.data and .download: IDX reading, MNIST loading, to_float, and `ecp data download` against a
loopback server.

No test touches the network: downloads are served by an http.server on 127.0.0.1 in a thread.
"""
import argparse
import functools
import gzip
import hashlib
import http.server
import io
import pathlib
import shutil
import struct
import threading

import numpy as np
import pytest

from ecp.experiments import data
from ecp.experiments import download as download_mod
from ecp.experiments.data import DataError
from ecp.experiments.download import DownloadError

STEMS = data.MNIST_FILES
GZ_NAMES = [stem + ".gz" for stem in STEMS]

# Published facts about MNIST, independent of this code: examples per class (LeCun et al.), the
# first ten training labels, and the usual normalisation constants (mean 0.1307, std 0.3081).
MNIST_TRAIN_PER_CLASS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_PER_CLASS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


# ------------------------------------------------------------------------------- helpers

_TYPE_BYTE = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
              np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array):
    """IDX encoding of ``array``, written independently of the reader (struct + tobytes)."""
    array = np.asarray(array)
    big = array.astype(array.dtype.newbyteorder(">"))
    header = bytes([0, 0, _TYPE_BYTE[big.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + big.tobytes()


def write_idx(path, array, gz=None):
    raw = idx_bytes(array)
    gz = str(path).endswith(".gz") if gz is None else gz
    pathlib.Path(path).write_bytes(gzip.compress(raw) if gz else raw)
    return pathlib.Path(path)


def synthetic(n_train=6, n_test=3, rows=4, cols=5, seed=0):
    rng = np.random.default_rng(seed)
    return data.Dataset(
        rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def write_dataset(folder, ds, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in zip(STEMS, ds):
        write_idx(folder / (stem + (".gz" if gz else "")), array, gz=gz)
    return folder


def md5(path):
    return hashlib.md5(pathlib.Path(path).read_bytes()).hexdigest()


def leftovers(folder):
    """Temporary download files left in folder (there must never be any)."""
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.name.endswith(".part"))


# -------------------------------------------------------------------------- real MNIST

@pytest.fixture(scope="module")
def mnist(mnist_path):
    return data.load_mnist(mnist_path)


@pytest.mark.mnist
def test_load_real_mnist(mnist):
    train_images, train_labels, test_images, test_labels = mnist
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert train_labels.shape == (60000,) and test_labels.shape == (10000,)
    for array in mnist:
        assert array.dtype == np.uint8 and array.flags.c_contiguous and array.flags.writeable
    assert np.bincount(train_labels, minlength=10).tolist() == MNIST_TRAIN_PER_CLASS
    assert np.bincount(test_labels, minlength=10).tolist() == MNIST_TEST_PER_CLASS
    assert train_labels[:10].tolist() == MNIST_FIRST_TRAIN_LABELS
    assert int(train_labels.sum(dtype=np.int64)) == sum(k * c for k, c in enumerate(MNIST_TRAIN_PER_CLASS))
    x = data.to_float(train_images)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert abs(x.mean(dtype=np.float64) - 0.1307) < 1e-4
    assert abs(x.std(dtype=np.float64) - 0.3081) < 1e-4


@pytest.mark.mnist
def test_real_mnist_gzip_and_raw_identical(mnist, mnist_path, tmp_path):
    for name in GZ_NAMES:
        with gzip.open(mnist_path / name, "rb") as src, open(tmp_path / name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    raw = data.load_mnist(tmp_path)
    for a, b in zip(mnist, raw):
        np.testing.assert_array_equal(a, b)
    # read_idx on a single raw file, and the payload matches the file bytes after the header.
    labels = data.read_idx(tmp_path / "t10k-labels-idx1-ubyte")
    np.testing.assert_array_equal(labels, mnist.test_labels)
    assert labels.tobytes() == (tmp_path / "t10k-labels-idx1-ubyte").read_bytes()[8:]


@pytest.mark.mnist
def test_real_mnist_limits(mnist, mnist_path):
    small = data.load_mnist(mnist_path, limit_train=100, limit_test=0)
    assert small.train_images.shape == (100, 28, 28) and small.train_labels.shape == (100,)
    assert small.test_images.shape == (0, 28, 28) and small.test_labels.shape == (0,)
    np.testing.assert_array_equal(small.train_images, mnist.train_images[:100])
    np.testing.assert_array_equal(small.train_labels, mnist.train_labels[:100])
    assert small.train_images.base is None  # a copy, not a view keeping 47 MB alive


# ------------------------------------------------------------------------- read_idx

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        array = rng.standard_normal((3, 2, 5)).astype(dt)
    else:
        info = np.iinfo(dt)
        array = rng.integers(info.min, info.max, (3, 2, 5), endpoint=True).astype(dt)
    path = write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), array)
    got = data.read_idx(path)
    assert got.dtype == dt.newbyteorder("=") and got.dtype.isnative
    assert got.shape == (3, 2, 5) and got.flags.writeable and got.flags.c_contiguous
    np.testing.assert_array_equal(got, array)


def test_read_idx_gzip_detected_by_content(tmp_path):
    array = np.arange(12, dtype=np.uint8)
    path = tmp_path / "labels-no-suffix"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(data.read_idx(str(path)), array)


def test_read_idx_checks_ndim_and_dtype(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.zeros(5, np.uint8))
    assert data.read_idx(path, ndim=1, dtype=np.uint8).shape == (5,)
    with pytest.raises(DataError, match=r"labels\.gz.*expected an IDX file of uint8, 3 dimensions.*2049"):
        data.read_idx(path, ndim=3, dtype=np.uint8)
    path16 = write_idx(tmp_path / "wide.gz", np.zeros((2, 2, 2), ">i2"))
    with pytest.raises(DataError, match=r"wide\.gz.*expected an IDX file of uint8.*got int16"):
        data.read_idx(path16, ndim=3, dtype=np.uint8)


def test_read_idx_truncated_payload(tmp_path):
    full = idx_bytes(np.ones((10, 4, 4), np.uint8))
    raw = tmp_path / "short-images"
    raw.write_bytes(full[:-7])
    with pytest.raises(DataError, match=r"short-images: truncated: header declares "
                       r"10 x 4 x 4 uint8 = 160 bytes.*only 153"):
        data.read_idx(raw)
    gz = tmp_path / "short-images.gz"
    gz.write_bytes(gzip.compress(full[:-1]))  # valid gzip, short IDX payload inside
    with pytest.raises(DataError, match=r"short-images\.gz: truncated.*decompressed file has only 159"):
        data.read_idx(gz)


def test_read_idx_truncated_and_corrupt_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.ones((50, 8, 8), np.uint8)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=r"cut\.gz: not a valid gzip file"):
        data.read_idx(cut)
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(b"<html>Not Found</html>")
    with pytest.raises(DataError, match=r"garbage\.gz: not a valid gzip file"):
        data.read_idx(garbage)
    flipped = bytearray(packed)
    flipped[-6] ^= 0xFF  # inside the CRC32 / size trailer
    bad_crc = tmp_path / "crc.gz"
    bad_crc.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match=r"crc\.gz: not a valid gzip file"):
        data.read_idx(bad_crc)


def test_read_idx_bad_magic_and_type(tmp_path):
    body = idx_bytes(np.zeros(4, np.uint8))
    bad = tmp_path / "bad-magic"
    bad.write_bytes(b"\x01" + body[1:])
    with pytest.raises(DataError, match=r"bad-magic: bad magic number 0x01000801"):
        data.read_idx(bad)
    odd_type = tmp_path / "odd-type"
    odd_type.write_bytes(body[:2] + b"\x0a" + body[3:])
    with pytest.raises(DataError, match=r"odd-type: unsupported IDX data type 0x0A"):
        data.read_idx(odd_type)
    zero_dims = tmp_path / "zero-dims"
    zero_dims.write_bytes(b"\x00\x00\x08\x00")
    with pytest.raises(DataError, match=r"zero-dims: IDX header declares 0 dimensions"):
        data.read_idx(zero_dims)


def test_read_idx_wrong_size_and_short_header(tmp_path):
    extra = tmp_path / "extra"
    extra.write_bytes(idx_bytes(np.zeros((2, 3), np.uint8)) + b"\x00\x00")
    with pytest.raises(DataError, match=r"extra: wrong size: header declares 2 x 3 uint8 = 6 bytes.*has 8 \(2 extra\)"):
        data.read_idx(extra)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty: file has 0 bytes, too short for an IDX header"):
        data.read_idx(empty)
    header = tmp_path / "half-header"
    header.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 5))
    with pytest.raises(DataError, match=r"half-header: truncated IDX header: 3 dimensions need 16 bytes"):
        data.read_idx(header)


def test_read_idx_missing_and_bad_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"IDX file not found: .*nothing-here\.gz"):
        data.read_idx(tmp_path / "nothing-here.gz")
    with pytest.raises(TypeError, match="path must be a path"):
        data.read_idx(3)


# ----------------------------------------------------------------------- load_mnist

@pytest.mark.parametrize("gz", [True, False])
def test_load_synthetic(tmp_path, gz):
    ds = synthetic()
    write_dataset(tmp_path, ds, gz=gz)
    got = data.load_mnist(tmp_path)
    assert isinstance(got, data.Dataset)
    for a, b in zip(ds, got):
        np.testing.assert_array_equal(a, b)
        assert b.dtype == np.uint8
    assert got.train_images.shape == (6, 4, 5)
    limited = data.load_mnist(tmp_path, limit_train=2, limit_test=3)
    np.testing.assert_array_equal(limited.train_images, ds.train_images[:2])
    np.testing.assert_array_equal(limited.test_labels, ds.test_labels)


def test_load_prefers_gz_and_mixes_forms(tmp_path):
    ds = synthetic()
    write_dataset(tmp_path, ds, gz=False)
    other = synthetic(seed=5)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", other.train_images)
    got = data.load_mnist(tmp_path)
    np.testing.assert_array_equal(got.train_images, other.train_images)
    np.testing.assert_array_equal(got.test_images, ds.test_images)


def test_load_label_count_mismatch(tmp_path):
    ds = synthetic()
    write_dataset(tmp_path, ds._replace(train_labels=ds.train_labels[:5]))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: 5 training labels but "
                       r".*train-images-idx3-ubyte\.gz has 6 images"):
        data.load_mnist(tmp_path)


def test_load_label_range(tmp_path):
    ds = synthetic()
    labels = ds.test_labels.copy()
    labels[1] = 10
    write_dataset(tmp_path, ds._replace(test_labels=labels))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: label 10 at index 1 is out of range 0\.\.9"):
        data.load_mnist(tmp_path)
    assert data.load_mnist(tmp_path, num_classes=11).test_labels[1] == 10
    with pytest.raises(ValueError, match=r"num_classes must be in 1\.\.256 \(labels are uint8\), got 0"):
        data.load_mnist(tmp_path, num_classes=0)
    with pytest.raises(TypeError, match=r"num_classes must be an integer, got float 10\.0"):
        data.load_mnist(tmp_path, num_classes=10.0)


def test_load_swapped_or_mismatched_files(tmp_path):
    ds = synthetic()
    write_dataset(tmp_path, ds._replace(train_images=ds.train_labels, train_labels=ds.train_images))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: expected an IDX file of uint8, 3 dimensions"):
        data.load_mnist(tmp_path)
    write_dataset(tmp_path, ds._replace(test_images=np.zeros((3, 5, 4), np.uint8)))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: test images are 5 x 4 "
                       r"but the training images .* are 4 x 5"):
        data.load_mnist(tmp_path)


def test_load_corrupt_file_named(tmp_path):
    write_dataset(tmp_path, synthetic())
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-9])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: not a valid gzip file"):
        data.load_mnist(tmp_path)


def test_load_missing_file(tmp_path):
    write_dataset(tmp_path, synthetic())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\.gz not found .*ecp data download"):
        data.load_mnist(tmp_path)


def test_load_limits_checked(tmp_path):
    write_dataset(tmp_path, synthetic())
    with pytest.raises(ValueError, match=r"limit_train=7 exceeds the 6 training examples in "
                        r".*train-images-idx3-ubyte\.gz"):
        data.load_mnist(tmp_path, limit_train=7)
    with pytest.raises(ValueError, match=r"limit_test must be >= 0, got -1"):
        data.load_mnist(tmp_path, limit_test=-1)
    with pytest.raises(TypeError, match=r"limit_train must be an integer or None, got bool"):
        data.load_mnist(tmp_path, limit_train=True)
    with pytest.raises(TypeError, match=r"limit_test must be an integer or None, got float"):
        data.load_mnist(tmp_path, limit_test=2.0)
    assert data.load_mnist(tmp_path, limit_train=np.int64(3)).train_images.shape[0] == 3
    # Argument errors come before any file is read (the folder here is empty).
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TypeError, match="limit_train must be an integer or None"):
        data.load_mnist(empty, limit_train="5")
    with pytest.raises(TypeError, match=r"data_dir must be a path \(str or os.PathLike\), got int"):
        data.load_mnist(5)


# -------------------------------------------------------------------- resolve_data_dir

def test_resolve_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert data.resolve_data_dir(tmp_path) == tmp_path
    assert data.resolve_data_dir(str(tmp_path)) == tmp_path
    with pytest.raises(FileNotFoundError, match=r"--data DIR.*ECP_DATA_DIR.*ecp data download DIR"):
        data.resolve_data_dir()
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.resolve_data_dir() == tmp_path
    other = tmp_path / "given"
    other.mkdir()
    assert data.resolve_data_dir(other) == other  # an explicit path wins over the variable
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match=r"from ECP_DATA_DIR\) .*absent does not exist"):
        data.resolve_data_dir()
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist"):
        data.resolve_data_dir(tmp_path / "nowhere")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="a-file is not a folder"):
        data.resolve_data_dir(a_file)
    monkeypatch.setenv(data.DATA_ENV, "")
    with pytest.raises(FileNotFoundError, match="no data folder given"):
        data.resolve_data_dir()


def test_load_mnist_uses_env(tmp_path, monkeypatch):
    ds = synthetic()
    write_dataset(tmp_path, ds)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    np.testing.assert_array_equal(data.load_mnist().test_images, ds.test_images)


# -------------------------------------------------------------------------- to_float

def test_to_float():
    images = np.array([[[0, 255], [51, 128]]], dtype=np.uint8)
    x = data.to_float(images)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x[0, 0], np.array([[0, 255], [51, 128]], np.float32) / np.float32(255))
    assert x[0, 0, 0, 1] == 1.0 and x[0, 0, 1, 0] == np.float32(0.2)
    x64 = data.to_float(images, dtype=np.float64)
    assert x64.dtype == np.float64 and x64[0, 0, 1, 1] == 128 / 255
    assert data.to_float(np.zeros((0, 3, 3), np.uint8)).shape == (0, 1, 3, 3)
    with pytest.raises(TypeError, match="images must have dtype uint8"):
        data.to_float(images.astype(np.float32))
    with pytest.raises(ValueError, match=r"images must be a 3-D \(N, H, W\) array, got shape \(2, 2\)"):
        data.to_float(images[0])
    with pytest.raises(TypeError, match="images must be a numpy array"):
        data.to_float([[[1]]])
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        data.to_float(images, dtype=np.int32)


# ------------------------------------------------------------- download (loopback only)

class _Server:
    def __init__(self, root):
        self.root = root
        self.requests = []
        self.release = threading.Event()
        handler = functools.partial(_Handler, self, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, server_state, *args, **kwargs):
        self.state = server_state
        super().__init__(*args, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.state.requests.append(self.path)
        if self.path.startswith("/truncated/"):
            # Promise 100 kB, send 1 kB, hang up.
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"\x00" * 1022)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/silent/"):
            self.state.release.wait(10)  # never answers within the client's timeout
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "served"
    root.mkdir()
    srv = _Server(root)
    yield srv
    srv.close()


@pytest.fixture
def served_synthetic(server):
    """Small gzip IDX files served by the loopback server, with their MD5s as overrides."""
    ds = synthetic(n_train=20, n_test=7, rows=6, cols=6, seed=3)
    write_dataset(server.root, ds)
    return ds, {name: md5(server.root / name) for name in GZ_NAMES}


@pytest.mark.mnist
def test_download_real_mnist_from_loopback(server, mnist_path, tmp_path):
    for name in GZ_NAMES:
        shutil.copyfile(mnist_path / name, server.root / name)
    dest = tmp_path / "dest" / "mnist"  # created with parents
    lines = []
    results = download_mod.download(dest, base_url=server.url, log=lines.append, timeout=10)
    assert [r.status for r in results] == ["downloaded"] * 4
    for name in GZ_NAMES:
        assert md5(dest / name) == download_mod.DATASETS["mnist"]["md5"][name]
        assert (dest / name).read_bytes() == (mnist_path / name).read_bytes()
    assert [r.md5 for r in results] == [download_mod.DATASETS["mnist"]["md5"][n] for n in GZ_NAMES]
    assert len(lines) == 4 and all("MD5 ok" in line for line in lines)
    assert sorted(p.name for p in dest.iterdir()) == sorted(GZ_NAMES)
    # Run again: every file present and correct -> skipped, no request made.
    before = len(server.requests)
    results = download_mod.download(dest, base_url=server.url, timeout=10)
    assert [r.status for r in results] == ["skipped"] * 4 and len(server.requests) == before


def test_download_with_md5_override(server, served_synthetic, tmp_path):
    ds, sums = served_synthetic
    dest = tmp_path / "dest"
    results = download_mod.download(dest, base_url=server.url.rstrip("/"), md5=sums, timeout=10)
    assert [r.path.name for r in results] == GZ_NAMES
    assert {r.path.name: r.md5 for r in results} == sums
    assert [p for p in server.requests] == ["/" + n for n in GZ_NAMES]
    for a, b in zip(ds, data.load_mnist(dest)):
        np.testing.assert_array_equal(a, b)
    # Existing good files are skipped; --force fetches them again.
    assert {r.status for r in download_mod.download(dest, base_url=server.url, md5=sums)} == {"skipped"}
    assert len(server.requests) == 4
    assert {r.status for r in download_mod.download(dest, base_url=server.url, md5=sums, force=True)} == {"downloaded"}
    assert len(server.requests) == 8
    assert leftovers(dest) == []


def test_download_bad_checksum_leaves_nothing(server, served_synthetic, tmp_path):
    _, sums = served_synthetic
    target = server.root / "train-labels-idx1-ubyte.gz"
    corrupted = bytearray(target.read_bytes())
    corrupted[len(corrupted) // 2] ^= 0x01
    target.write_bytes(bytes(corrupted))
    bad_md5 = hashlib.md5(bytes(corrupted)).hexdigest()
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        download_mod.download(dest, base_url=server.url, md5=sums, timeout=10)
    message = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in message
    assert sums["train-labels-idx1-ubyte.gz"] in message and bad_md5 in message
    # The first file (good) stays; the bad one and any temporary file are gone.
    assert sorted(p.name for p in dest.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_download_replaces_bad_existing_file(server, served_synthetic, tmp_path):
    _, sums = served_synthetic
    dest = tmp_path / "dest"
    dest.mkdir()
    stale = dest / "t10k-images-idx3-ubyte.gz"
    stale.write_bytes(b"half a file")
    lines = []
    results = download_mod.download(dest, base_url=server.url, md5=sums, log=lines.append)
    assert [r.status for r in results] == ["downloaded"] * 4
    assert md5(stale) == sums["t10k-images-idx3-ubyte.gz"]
    assert any("t10k-images-idx3-ubyte.gz: present but MD5 is" in line for line in lines)


def test_download_default_md5_mismatch_hints_override(server, served_synthetic, tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: MD5 mismatch "
                       r".*expected f68b3c2dcbeaaa9fbdd348bbdeb94873.*--md5 NAME=HASH"):
        download_mod.download(tmp_path / "dest", base_url=server.url)
    assert list((tmp_path / "dest").iterdir()) == []


def test_download_404(server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match=r"could not download http://127\.0\.0\.1:\d+/"
                       r"train-images-idx3-ubyte\.gz: HTTP 404") as info:
        download_mod.download(dest, base_url=server.url, timeout=10)
    assert isinstance(info.value, OSError)
    assert list(dest.iterdir()) == []


def test_download_truncated_transfer(server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match=r"truncated/train-images-idx3-ubyte\.gz"):
        download_mod.download(dest, base_url=server.url + "truncated/", timeout=10)
    assert list(dest.iterdir()) == []


def test_download_timeout(server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match=r"silent/train-images-idx3-ubyte\.gz: .*timed out"):
        download_mod.download(dest, base_url=server.url + "silent/", timeout=0.3)
    assert list(dest.iterdir()) == []


def test_download_interrupted_leaves_nothing(server, served_synthetic, tmp_path, monkeypatch):
    _, sums = served_synthetic
    monkeypatch.setattr(download_mod, "_CHUNK", 64)  # several chunks per file

    seen = []

    def progress(name, done, total):
        seen.append((name, done, total))
        if name == "train-labels-idx1-ubyte.gz":
            raise KeyboardInterrupt

    dest = tmp_path / "dest"
    with pytest.raises(KeyboardInterrupt):
        download_mod.download(dest, base_url=server.url, md5=sums, progress=progress)
    assert sorted(p.name for p in dest.iterdir()) == ["train-images-idx3-ubyte.gz"]
    image_calls = [s for s in seen if s[0] == "train-images-idx3-ubyte.gz"]
    size = (server.root / "train-images-idx3-ubyte.gz").stat().st_size
    assert len(image_calls) > 1 and image_calls[-1][1:] == (size, size)


def test_download_no_verify(server, served_synthetic, tmp_path):
    ds, _ = served_synthetic
    dest = tmp_path / "dest"
    results = download_mod.download(dest, base_url=server.url, verify=False)
    assert [r.status for r in results] == ["downloaded"] * 4
    np.testing.assert_array_equal(data.load_mnist(dest).train_labels, ds.train_labels)
    assert {r.status for r in download_mod.download(dest, base_url=server.url, verify=False)} == {"skipped"}
    # Without a checksum the content must still be IDX: an error page is refused.
    (server.root / "t10k-images-idx3-ubyte.gz").write_bytes(b"<html>gone</html>")
    dest2 = tmp_path / "dest2"
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz from http://.*not a valid gzip"):
        download_mod.download(dest2, base_url=server.url, verify=False)
    assert sorted(p.name for p in dest2.iterdir()) == GZ_NAMES[:2]


def test_download_argument_checks(tmp_path):
    dest = tmp_path / "never-created"
    good = "0" * 32
    with pytest.raises(ValueError, match="md5: unknown file 'foo.gz'"):
        download_mod.download(dest, md5={"foo.gz": good})
    with pytest.raises(ValueError, match="must be 32 hexadecimal digits"):
        download_mod.download(dest, md5={GZ_NAMES[0]: "xyz"})
    with pytest.raises(ValueError, match="contradict"):
        download_mod.download(dest, md5={GZ_NAMES[0]: good}, verify=False)
    with pytest.raises(ValueError, match="dataset must be one of"):
        download_mod.download(dest, dataset="cifar")
    with pytest.raises(ValueError, match="base_url must be a URL"):
        download_mod.download(dest, base_url="no-scheme/")
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        download_mod.download(dest, timeout=0)
    assert not dest.exists()


def test_progress_line():
    from ecp.experiments._progress import ByteBar

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    line = ByteBar(stream)
    line("f.gz", 500_000, 1_000_000)
    line("f.gz", 1_000_000, 1_000_000)  # completion always drawn
    line.end()
    text = stream.getvalue()
    assert "f.gz" in text and "1.00M/1.00M" in text and "100%" in text and text.endswith("\n")
    line.end()  # nothing drawn since: no extra output
    assert stream.getvalue() == text
    pipe = io.StringIO()  # not a terminal: no bar
    ByteBar(pipe)("f.gz", 1, 2)
    assert pipe.getvalue() == ""


def test_names_of_the_download_module_still_reachable_from_data():
    assert data.download is download_mod.download and data.DownloadError is DownloadError
    assert data.DATASETS is download_mod.DATASETS and data.md5sum is download_mod.md5sum
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018


def test_download_without_pooch_is_one_clear_line(tmp_path, monkeypatch, capsys):
    import sys

    from ecp.experiments.cli import main

    monkeypatch.setitem(sys.modules, "pooch", None)  # `import pooch` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "ecp\[data\]"'):
        download_mod.download(tmp_path / "d")
    assert main(["data", "download", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ecp data: error: ") and 'pip install "ecp[data]"' in err
    assert not (tmp_path / "d").exists()


def test_download_file_url_mirror(tmp_path):
    ds = synthetic(n_train=5, n_test=3, rows=4, cols=4, seed=1)
    src = tmp_path / "mirror"
    src.mkdir()
    write_dataset(src, ds)
    sums = {name: md5(src / name) for name in GZ_NAMES}
    results = download_mod.download(tmp_path / "dest", base_url=src.as_uri(), md5=sums)
    assert [r.status for r in results] == ["downloaded"] * 4
    np.testing.assert_array_equal(data.load_mnist(tmp_path / "dest").test_labels, ds.test_labels)


# ------------------------------------------------------------------------------- CLI

def _cli(argv):
    parser = argparse.ArgumentParser(prog="ecp")
    sub = parser.add_subparsers(dest="command", required=True)
    download_mod.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_download(server, served_synthetic, tmp_path, capsys):
    _, sums = served_synthetic
    dest = tmp_path / "dest"
    md5_args = [arg for name, value in sums.items() for arg in ("--md5", f"{name}={value.upper()}")]
    assert _cli(["data", "download", str(dest), "--base-url", server.url, "--timeout", "10", *md5_args]) == 0
    out, err = capsys.readouterr()
    assert out.count("MD5 ok") == 4 and f"--data {dest}" in out
    assert "\r" not in err  # not a terminal: no progress line
    assert sorted(p.name for p in dest.iterdir()) == sorted(GZ_NAMES)
    assert _cli(["data", "download", str(dest), "--base-url", server.url, "--quiet", *md5_args]) == 0
    assert capsys.readouterr() == ("", "")


def test_cli_download_env_dir_and_no_verify(server, served_synthetic, tmp_path, capsys, monkeypatch):
    dest = tmp_path / "from-env"
    monkeypatch.setenv(data.DATA_ENV, str(dest))
    assert _cli(["data", "download", "--base-url", server.url, "--no-verify", "-q"]) == 0
    assert "WARNING: --no-verify" in capsys.readouterr().err
    assert len(list(dest.iterdir())) == 4
    monkeypatch.delenv(data.DATA_ENV)
    with pytest.raises(ValueError, match="no folder given"):
        _cli(["data", "download"])


@pytest.mark.parametrize("argv", [
    ["data"],
    ["data", "download", "d", "--md5", "nohash"],
    ["data", "download", "d", "--md5", "a.gz=123"],
    ["data", "download", "d", "--timeout", "0"],
    ["data", "download", "d", "--dataset", "cifar"],
])
def test_cli_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as info:
        _cli(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_ecp_cli_main_data_errors(server, served_synthetic, tmp_path, capsys):
    """Through the real `ecp` entry point: failures are one `ecp data: error:` line, exit 2."""
    for module in ("ecp.experiments.bench", "ecp.experiments.train", "ecp.experiments.reproduce"):
        pytest.importorskip(module, reason=f"{module} (another CLI subcommand) is not there yet")
    from ecp.experiments.cli import main

    dest = tmp_path / "dest"
    assert main(["data", "download", str(dest), "--base-url", server.url + "missing/", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ecp data: error: could not download http://127.0.0.1:") and "HTTP 404" in err
    assert main(["data", "download", str(dest), "--base-url", server.url, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ecp data: error: train-images-idx3-ubyte.gz: MD5 mismatch")
    assert list(dest.iterdir()) == []
    _, sums = served_synthetic
    md5_args = [arg for name, value in sums.items() for arg in ("--md5", f"{name}={value}")]
    assert main(["data", "download", str(dest), "--base-url", server.url, "-q", *md5_args]) == 0
    assert len(list(dest.iterdir())) == 4


# ------------------------------------------------------------------- directories and leftovers

def test_a_directory_in_place_of_an_idx_file_is_named_as_one(tmp_path):
    (tmp_path / "images.gz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"images\.gz is a directory, expected an IDX file"):
        data.read_idx(tmp_path / "images.gz")
    write_dataset(tmp_path, synthetic())
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels.unlink()
    labels.mkdir()
    with pytest.raises(IsADirectoryError, match=r"t10k-labels-idx1-ubyte\.gz is a directory"):
        data.load_mnist(tmp_path)
    from ecp.experiments.cli import main

    assert main(["train", "--net", "one-conv", "--pool", "max", "--data", str(tmp_path)]) == 2
    # a raw file beside the directory is used, as when the .gz is missing
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", synthetic().test_labels, gz=False)
    assert len(data.load_mnist(tmp_path).test_labels) == 3


def _dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_download_removes_the_leftovers_of_killed_runs_only(tmp_path):
    import os
    import time

    ds = synthetic(n_train=5, n_test=3, rows=4, cols=4, seed=1)
    src = write_dataset(tmp_path / "mirror", ds)
    sums = {name: md5(src / name) for name in GZ_NAMES}
    dest = write_dataset(tmp_path / "dest", ds)
    dead = dest / f".train-images-idx3-ubyte.gz.ecp{_dead_pid()}-k2j4x_9q.part"
    live = dest / f".train-images-idx3-ubyte.gz.ecp{os.getppid()}-a1b2c3d4.part"  # a live process's
    legacy = dest / ".t10k-images-idx3-ubyte.gz.ab12cd34.part"  # ecp 0.1's name, from before this run
    mine = dest / ".notes.txt.part"  # not a name ecp writes
    for path in (dead, live, legacy, mine):
        path.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(legacy, (old, old))
    results = download_mod.download(dest, base_url=src.as_uri(), md5=sums)
    assert [r.status for r in results] == ["skipped"] * 4  # nothing written, the folder cleaned all the same
    assert leftovers(dest) == sorted([live.name, mine.name])


def test_download_killed_outright_leaves_a_part_the_next_run_removes(tmp_path):
    """A real SIGKILL in the middle of a transfer: the target never exists half written."""
    import subprocess
    import sys

    ds = synthetic(n_train=400, n_test=3, rows=28, cols=28, seed=2)
    src = write_dataset(tmp_path / "mirror", ds, gz=False)
    gz_src = tmp_path / "gz"
    gz_src.mkdir()
    for name in GZ_NAMES:  # raw, incompressible-ish payload served as .gz names: many chunks
        (gz_src / name).write_bytes(gzip.compress((src / name[:-3]).read_bytes(), compresslevel=0))
    sums = {name: md5(gz_src / name) for name in GZ_NAMES}
    dest = tmp_path / "dest"
    script = (
        "import os, signal, sys\n"
        "from ecp.experiments import download as d\n"
        "d._CHUNK = 1024\n"
        "def progress(name, done, total):\n"
        "    if done > 50_000: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"d.download({str(dest)!r}, base_url={gz_src.as_uri()!r}, md5={sums!r}, progress=progress)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    left = leftovers(dest)
    assert len(left) == 1 and left[0].startswith(".train-images-idx3-ubyte.gz.ecp"), left
    assert not (dest / "train-images-idx3-ubyte.gz").exists()
    results = download_mod.download(dest, base_url=gz_src.as_uri(), md5=sums)
    assert [r.status for r in results] == ["downloaded"] * 4 and leftovers(dest) == []
