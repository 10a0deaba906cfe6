"""``ecp train --engine torch``: one process and two gloo workers on loopback, the JSON record, the
same first-batch loss on 1 and 2 processes, and a failing worker stopping the others."""
import gzip
import json
import os
import pathlib
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import ecp
from ecp.experiments import cli, distributed

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install \"ecp[torch]\")")

from ecp.experiments import torch_train  # noqa: E402

TOP_KEYS = {"net", "pool", "mode", "eval_mode", "epochs", "best_test_accuracy", "first_epoch_at_98", "diverged",
            "diverged_at"}
EPOCH_KEYS = {"epoch", "train_time_s", "test_time_s", "conv_time_s", "train_loss", "test_accuracy"}
SRC = str(pathlib.Path(ecp.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    """MNIST-shaped random data (300 training / 100 test images) in IDX files."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("data")
    for stem, n in (("train", 300), ("t10k", 100)):
        _write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return folder


def _train(args, synthetic_dir, out, timeout=240):
    """``python -m ecp train --engine torch ...`` in a fresh process (a worker launcher must be a real process)."""
    proc = subprocess.run([sys.executable, "-m", "ecp", "train", "--engine", "torch", "--data", str(synthetic_dir),
                           "--no-progress", "--json", str(out), *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def _check_record(record, world_size):
    assert set(record) == TOP_KEYS | {"engine", "device", "world_size"}
    assert record["engine"] == "torch" and record["device"] == "cpu" and record["world_size"] == world_size
    assert record["diverged"] is False and record["diverged_at"] is None
    for e in record["epochs"]:
        assert set(e) == EPOCH_KEYS and e["conv_time_s"] is None
        assert e["train_time_s"] > 0 and e["test_time_s"] > 0 and 0 <= e["test_accuracy"] <= 1
        assert np.isfinite(e["train_loss"])


def test_build_torch_network_matches_the_numpy_network():
    """Same seed: the same weights and modes as ecp.nn.models, so the same logits."""
    from ecp.nn.models import build_network

    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    for net, pool in (("two-conv", "ecp"), ("one-conv", "max"), ("two-conv", "random"), ("one-conv", "avg")):
        ref = build_network(net, pool, None, seed=3)
        model = torch_train.build_torch_network(net, pool, None, seed=3).eval()
        assert model.modes == ref.modes
        with torch.no_grad():
            got = model(torch.from_numpy(x)).numpy()
        ref.eval()
        np.testing.assert_allclose(got, ref.forward(x), rtol=1e-4, atol=1e-5)


def test_one_process_trains_and_writes_the_record(synthetic_dir, tmp_path):
    proc, record = _train(["--net", "two-conv", "--pool", "ecp", "--epochs", "2"], synthetic_dir,
                          tmp_path / "one.json")
    assert proc.returncode == 0, proc.stderr
    _check_record(record, 1)
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and record["mode"] in range(4)
    assert "torch engine on cpu, 1 worker" in proc.stdout and "epoch 2/2" in proc.stdout


def test_two_gloo_workers_give_the_first_batch_loss_of_one_process(synthetic_dir, tmp_path):
    """One batch of the whole training set per epoch: the epoch's loss is the first batch's, the same
    global batch on 1 and on 2 processes (each worker on half of it)."""
    flags = ["--net", "two-conv", "--pool", "max", "--epochs", "1", "--batch-size", "300", "--seed", "7"]
    one, r1 = _train(flags, synthetic_dir, tmp_path / "one.json")
    two, r2 = _train([*flags, "--nproc", "2"], synthetic_dir, tmp_path / "two.json")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    _check_record(r2, 2)
    assert two.stdout.count("epoch 1/1") == 1   # rank 0 alone reports
    np.testing.assert_allclose(r2["epochs"][0]["train_loss"], r1["epochs"][0]["train_loss"], rtol=1e-6)
    # the numpy engine starts from the same weights and draws the same batch
    numpy_out = tmp_path / "numpy.json"
    assert cli.main(["train", *flags, "--data", str(synthetic_dir), "--no-progress", "--json", str(numpy_out)]) == 0
    np.testing.assert_allclose(json.loads(numpy_out.read_text())["epochs"][0]["train_loss"],
                               r1["epochs"][0]["train_loss"], rtol=1e-5)


def test_two_workers_train_several_batches_like_one_process(synthetic_dir, tmp_path):
    flags = ["--net", "one-conv", "--pool", "ecp", "--mode", "1", "--epochs", "2", "--batch-size", "64"]
    _, r1 = _train(flags, synthetic_dir, tmp_path / "one.json")
    two, r2 = _train([*flags, "--nproc", "2"], synthetic_dir, tmp_path / "two.json")
    assert two.returncode == 0, two.stderr
    _check_record(r2, 2)
    for a, b in zip(r1["epochs"], r2["epochs"]):   # 300 = 4 x 64 + 44: the last batch is uneven too
        np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=1e-4)


def test_diverged_workers_all_stop_with_status_3(synthetic_dir, tmp_path):
    proc, record = _train(["--net", "one-conv", "--pool", "max", "--epochs", "2", "--optimizer", "sgd", "--lr", "1e30",
                           "--nproc", "2"], synthetic_dir, tmp_path / "div.json")
    assert proc.returncode == 3, proc.stderr
    assert record["diverged"] is True and record["epochs"] == [] and record["world_size"] == 2
    assert proc.stderr.count("the loss became") == 1 and "Traceback" not in proc.stderr


def _children(pid):
    path = f"/proc/{pid}/task/{pid}/children"
    try:
        with open(path) as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
                    reason="needs Linux's /proc/PID/task/PID/children")
def test_a_killed_worker_stops_the_others_and_leaves_no_orphan(synthetic_dir, tmp_path):
    launcher = subprocess.Popen([sys.executable, "-m", "ecp", "train", "--engine", "torch", "--nproc", "2",
                                 "--net", "two-conv", "--pool", "ecp", "--epochs", "500", "--batch-size", "10",
                                 "--data", str(synthetic_dir), "--no-progress"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while len(workers := _children(launcher.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2, launcher.communicate(timeout=30)
        time.sleep(3)   # let them meet and train
        os.kill(workers[1], 9)
        t0 = time.monotonic()
        out, err = launcher.communicate(timeout=60)
        assert time.monotonic() - t0 < distributed.STOP_GRACE_S + 20
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode not in (0, None)
    assert "worker 1 of 2 exited with status -9; the other workers were stopped" in err
    time.sleep(0.5)
    assert not any(_alive(w) for w in workers)


def test_launch_stops_the_others_when_one_fails_and_bounds_the_time():
    """The launcher alone, on plain Python workers: rank 1 fails, rank 0 would sleep for a minute."""
    code = "import os, sys, time; sys.exit(5) if os.environ['RANK'] == '1' else time.sleep(60)"
    t0 = time.monotonic()
    with pytest.raises(distributed.WorkerFailed, match="worker 1 of 2 exited with status 5") as exc:
        distributed.launch([sys.executable, "-c", code], 2, settle_s=0.5)
    assert exc.value.rank == 1 and exc.value.status == 5
    assert time.monotonic() - t0 < 30
    with pytest.raises(distributed.WorkerFailed, match="time limit") as exc:
        distributed.launch([sys.executable, "-c", "import time; time.sleep(60)"], 2, timeout=1)
    assert exc.value.status == 124 and time.monotonic() - t0 < 60
    check = ("import os, sys; "
             "sys.exit(0 if os.environ['MASTER_ADDR'] == '127.0.0.1' and os.environ['WORLD_SIZE'] == '3' else 1)")
    assert distributed.launch([sys.executable, "-c", check], 3) == [0, 0, 0]
    assert distributed.launch([sys.executable, "-c", "import sys; sys.exit(3)"], 2) == [3, 3]


def test_world_from_env():
    assert distributed.world_from_env({}) is None
    env = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "h",
           "MASTER_PORT": "1"}
    assert distributed.world_from_env(env) == distributed.World(1, 4, 1, 2)
    with pytest.raises(ValueError, match="RANK must be below WORLD_SIZE"):
        distributed.world_from_env({**env, "RANK": "4"})
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer"):
        distributed.world_from_env({**env, "WORLD_SIZE": "x"})
    with pytest.raises(ValueError, match="MASTER_PORT must be set"):
        distributed.world_from_env({k: v for k, v in env.items() if k != "MASTER_PORT"})


def test_bad_flags_are_clear_errors(synthetic_dir, capsys):
    base = ["train", "--net", "one-conv", "--pool", "max", "--data", str(synthetic_dir), "--no-progress"]
    assert cli.main([*base, "--nproc", "2"]) == 2
    assert "--nproc needs --engine torch (got --engine numpy)" in capsys.readouterr().err
    assert cli.main([*base, "--device", "cpu"]) == 2
    assert "--device needs --engine torch" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main([*base, "--engine", "torch", "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "--device cuda: no CUDA device is available" in err and err.count("\n") == 1


def test_train_cli_does_not_import_torch():
    code = "import sys, ecp.experiments.train_cli, ecp.experiments.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=ENV, timeout=60).returncode == 0
