"""``ecp train`` and ``ecp reproduce`` end to end on a small subset of MNIST."""
import csv
import gzip
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import ecp
from ecp import _threads
from ecp.experiments import cli, reproduce
from ecp.experiments._progress import BatchBar

TOP_KEYS = {"net", "pool", "mode", "eval_mode", "epochs", "best_test_accuracy", "first_epoch_at_98", "diverged",
            "diverged_at"}
EPOCH_KEYS = {"epoch", "train_time_s", "test_time_s", "conv_time_s", "train_loss", "test_accuracy"}


@pytest.fixture(autouse=True)
def restore_threads():
    """--threads sets the process-wide thread count: put it back for the tests that follow."""
    saved = _threads._num_threads
    yield
    ecp.set_num_threads(saved)


@pytest.mark.mnist
def test_train_cli_end_to_end_with_json(mnist_path, tmp_path, capsys):
    out = tmp_path / "run.json"
    code = cli.main(["train", "--net", "two-conv", "--pool", "ecp", "--mode", "1", "--epochs", "2",
                     "--limit-train", "1000", "--limit-test", "300", "--data", str(mnist_path),
                     "--seed", "3", "--threads", "1", "--json", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "two-conv / ecp, mode K=1" in stdout and "1000 training / 300 test images" in stdout
    assert "epoch 1/2" in stdout and "epoch 2/2" in stdout and f"wrote {out}" in stdout
    result = json.loads(out.read_text())
    assert set(result) == TOP_KEYS
    assert (result["net"], result["pool"], result["mode"]) == ("two-conv", "ecp", 1)
    assert [set(e) for e in result["epochs"]] == [EPOCH_KEYS, EPOCH_KEYS]
    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    accuracies = [e["test_accuracy"] for e in result["epochs"]]
    assert result["best_test_accuracy"] == max(accuracies)
    assert all(0 <= a <= 1 for a in accuracies) and result["best_test_accuracy"] > 0.5
    assert result["first_epoch_at_98"] is None  # 1000 images are not enough for 98%
    # The stdout line of each epoch reports the JSON's accuracy.
    assert f"test accuracy {100 * accuracies[1]:.2f}%" in stdout


@pytest.mark.mnist
def test_train_cli_max_pooling_reports_no_mode(mnist_path, tmp_path, capsys):
    out = tmp_path / "max.json"
    code = cli.main(["train", "--net", "one-conv", "--pool", "max", "--epochs", "1", "--limit-train", "200",
                     "--limit-test", "100", "--data", str(mnist_path), "--json", str(out),
                     "--optimizer", "sgd", "--momentum", "0.9", "--dtype", "float64"])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["mode"] is None and set(result) == TOP_KEYS and len(result["epochs"]) == 1


def test_train_cli_missing_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ECP_DATA_DIR", raising=False)
    code = cli.main(["train", "--net", "one-conv", "--pool", "ecp"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ecp train: error: no data folder given") and "--data DIR" in err
    assert "ecp data download" in err
    code = cli.main(["train", "--net", "one-conv", "--pool", "ecp", "--data", str(tmp_path / "nowhere")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = cli.main(["train", "--net", "one-conv", "--pool", "ecp", "--data", str(tmp_path)])
    assert code == 2 and "train-images-idx3-ubyte.gz not found" in capsys.readouterr().err


def test_train_cli_missing_data_exit_code_from_a_real_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ECP_DATA_DIR"}
    proc = subprocess.run([sys.executable, "-m", "ecp", "train", "--net", "two-conv", "--pool", "max"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "ecp train: error: no data folder given" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.mnist
def test_train_cli_bad_arguments(mnist_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--net", "two-conv", "--pool", "ecp", "--mode", "4"])
    assert exc.value.code == 2 and "expected 0, 1, 2, 3 or random" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--net", "two-conv", "--pool", "median"])
    assert exc.value.code == 2
    code = cli.main(["train", "--net", "two-conv", "--pool", "max", "--mode", "1", "--data", str(mnist_path)])
    assert code == 2 and "mode applies only to pool random or ecp" in capsys.readouterr().err
    code = cli.main(["train", "--net", "two-conv", "--pool", "ecp", "--momentum", "0.5", "--data", str(mnist_path)])
    assert code == 2 and "momentum applies only to optimizer sgd" in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_one_line():
    stream = _Tty()
    bar = BatchBar(stream)
    for done in range(1, 4):
        bar("epoch 1/1", done, 3, 0.5)
    bar.clear()
    text = stream.getvalue()
    assert "epoch 1/1" in text and "3/3" in text and "loss 0.5000" in text and "\n" not in text
    pipe = io.StringIO()  # not a terminal: nothing drawn
    bar = BatchBar(pipe)
    bar("epoch 1/1", 1, 3, 0.5)
    bar.clear()
    assert pipe.getvalue() == "" and not bar.enabled


def test_train_cli_json_directory_refused_before_training(tmp_path, capsys):
    code = cli.main(["train", "--net", "one-conv", "--pool", "ecp", "--data", str(tmp_path / "nowhere"),
                     "--json", str(tmp_path)])
    assert code == 2 and "--json: " in (err := capsys.readouterr().err) and "is a directory" in err


def test_reproduce_out_file_and_results_md_directory_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert cli.main(["reproduce", "--out", str(tmp_path / "afile"), "--data", str(tmp_path)]) == 2
    assert "--out: " in (err := capsys.readouterr().err) and "is not a directory" in err
    assert cli.main(["reproduce", "--out", str(tmp_path / "o"), "--results-md", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err and not (tmp_path / "o").exists()


def _run_names():
    return [reproduce.run_name(*r) for r in reproduce.RUNS]


@pytest.mark.slow
@pytest.mark.mnist
def test_reproduce_end_to_end_and_resumable(mnist_path, tmp_path, monkeypatch, capsys):
    out = tmp_path / "rep"
    argv = ["reproduce", "--quick", "--limit-train", "150", "--limit-test", "100", "--out", str(out),
            "--threads", "1"]
    assert cli.main(argv + ["--data", str(mnist_path)]) == 0
    first = capsys.readouterr().out
    assert f"{len(reproduce.RUNS)} runs, 1 epoch each" in first and ": skipped" not in first
    runs = out / "runs"
    assert sorted(p.name for p in runs.iterdir()) == sorted(n + ".json" for n in _run_names())
    rec = json.loads((runs / "two-conv-ecp-k2.json").read_text())
    assert set(rec) == TOP_KEYS | {"settings"} and rec["mode"] == 2
    assert rec["settings"]["limit_train"] == 150 and rec["settings"]["epochs"] == 1
    # Random and ECP with the same K compute the same function: same accuracy.
    same = json.loads((runs / "two-conv-random-k2.json").read_text())
    assert same["epochs"][0]["test_accuracy"] == rec["epochs"][0]["test_accuracy"]

    md = (out / "tables.md").read_text()
    for n in (3, 4, 5, 6):
        assert f"### Table {n}:" in md
    assert ("| | Method | Epochs to 98% | Training time (s) | Testing time (s) | Pure conv time (s) | "
            "Best accuracy (%) |") in md
    assert "| vs Max Pooling | Max Pooling |" in md and "ECP k=3" in md and "Random k=1" in md
    with open(out / "table4.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == reproduce.CSV_COLUMNS
    assert [r["method"] for r in rows[:3]] == ["Max Pooling", "Random k=0", "Random k=1"] and len(rows) == 18
    base_train = float(rows[0]["train_time_s"])
    assert float(rows[1]["train_speedup"]) == pytest.approx(base_train / float(rows[1]["train_time_s"]), rel=1e-4)
    assert rows[0]["train_speedup"] == ""
    pngs = sorted(p.name for p in out.glob("figure*.png"))
    try:
        import matplotlib  # noqa: F401
        assert pngs == sorted(f"figure{n}.png" for n in range(5, 11))
        assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    except ImportError:
        assert "figures skipped" in first

    # Second run: everything is recorded -- nothing is trained, so not even the data is needed.
    stamps = {p.name: p.stat().st_mtime_ns for p in runs.iterdir()}
    monkeypatch.delenv("ECP_DATA_DIR", raising=False)
    results_md = tmp_path / "results.md"
    assert cli.main(argv + ["--results-md", str(results_md)]) == 0
    second = capsys.readouterr().out
    text = results_md.read_text()
    assert "<!-- begin: ecp reproduce -->" in text and text.rstrip().endswith("<!-- end: ecp reproduce -->")
    assert "- command: `ecp reproduce --quick" in text and "### Table 4:" in text
    assert second.count(": skipped") == len(reproduce.RUNS)
    assert {p.name: p.stat().st_mtime_ns for p in runs.iterdir()} == stamps
    assert (out / "tables.md").read_text() == md

    # An interrupted matrix resumes: only the missing run is trained.
    (runs / "one-conv-avg.json").unlink()
    assert cli.main(argv + ["--data", str(mnist_path)]) == 0
    third = capsys.readouterr().out
    assert third.count(": skipped") == len(reproduce.RUNS) - 1 and "one-conv-avg       best" in third
    assert {p.name: p.stat().st_mtime_ns for p in runs.iterdir() if p.name != "one-conv-avg.json"} == \
        {k: v for k, v in stamps.items() if k != "one-conv-avg.json"}

    # Other settings: recorded runs do not count.
    (runs / "two-conv-max.json").write_text(json.dumps({**json.loads((runs / "two-conv-max.json").read_text()),
                                                        "settings": {**rec["settings"], "seed": 99}}))
    (runs / "one-conv-max.json").write_text("{not json")
    assert cli.main(argv + ["--data", str(mnist_path)]) == 0
    fourth = capsys.readouterr().out
    assert "two-conv-max       recorded with other settings: training again" in fourth
    assert "one-conv-max.json is unreadable: training again" in fourth
    assert fourth.count(": skipped") == len(reproduce.RUNS) - 2


def test_reproduce_tables_need_every_run():
    with pytest.raises(ValueError, match="runs missing for the tables: two-conv-max"):
        reproduce.build_tables({})


def test_results_md_sections(tmp_path):
    from ecp.experiments._results_md import update_section

    path = tmp_path / "results.md"
    update_section(path, "ecp bench", "bench one", argv=["bench"])
    update_section(path, "ecp reproduce", "rep one", argv=["reproduce"])
    update_section(path, "ecp bench", "bench two", argv=["bench", "-q"])
    text = path.read_text()
    assert text.startswith("# ecp results") and "bench one" not in text and "rep one" in text
    assert text.index("bench two") < text.index("rep one")  # replaced in place
    assert "- command: `ecp bench -q`" in text and "- commit: `" in text and "- machine: " in text
    path.write_text("<!-- begin: ecp bench -->\nno end\n")
    with pytest.raises(ValueError, match="markers"):
        update_section(path, "ecp bench", "x", argv=[])
    assert path.read_text() == "<!-- begin: ecp bench -->\nno end\n"


def test_write_atomic_and_strict_json(tmp_path, monkeypatch):
    import numpy as np

    from ecp.experiments import _files

    path = tmp_path / "r.json"
    _files.write_json(path, {"a": float("nan"), "b": [np.float32(1.5), float("-inf")], "c": np.int64(3)})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": 3}

    def boom(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _files.write_atomic(path, boom)
    assert json.loads(path.read_text())["c"] == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    with pytest.raises(IsADirectoryError, match="is a directory"):
        _files.write_atomic(tmp_path, "x")
    with pytest.raises(ValueError, match="--json: .* is a directory"):
        _files.check_output_file(tmp_path, "--json")


# ----------------------------------------------------------------- synthetic data, divergence

def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def synthetic_dir(tmp_path):
    """MNIST-shaped random data (120 training / 40 test images) in IDX files: no MNIST needed."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    folder.mkdir()
    for stem, n in (("train", 120), ("t10k", 40)):
        _write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return folder


DIVERGE = ["--net", "one-conv", "--pool", "max", "--epochs", "2", "--optimizer", "sgd", "--lr", "1e30",
           "--threads", "1", "--no-progress"]


def test_train_cli_diverged_run_stops_with_status_3_and_valid_json(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "div.json"
    assert cli.main(["train", *DIVERGE, "--data", str(synthetic_dir), "--json", str(out)]) == 3
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.count("\n") == 0 and err.startswith("ecp train: error: the loss became ")
    assert " at epoch 1, batch " in err and "diverged" in err
    result = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert set(result) == TOP_KEYS and result["diverged"] is True
    at = result["diverged_at"]
    assert set(at) == {"epoch", "batch", "loss"} and at["epoch"] == 1 and at["batch"] >= 1
    assert f"batch {at['batch']}" in err
    assert result["epochs"] == [] and result["best_test_accuracy"] is None  # no epoch completed
    assert f"wrote {out}" in captured.out and "epoch 1/2" not in captured.out


def test_train_cli_diverged_exit_status_from_a_real_process(synthetic_dir, tmp_path):
    out = tmp_path / "div.json"
    proc = subprocess.run([sys.executable, "-m", "ecp", "train", *DIVERGE, "--data", str(synthetic_dir),
                           "--json", str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "default"})
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("ecp train: error: the loss became")
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads(out.read_text())["diverged"] is True


def test_train_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert exc.value.code == 0 and "Exit status: 0 done; 2 bad input" in text and "3 the loss became NaN" in text


def test_train_cli_json_target_checked_before_anything(tmp_path, capsys):
    """A bad --json is refused first: the data folder (missing here) is not even looked at."""
    base = ["train", "--net", "one-conv", "--pool", "ecp", "--data", str(tmp_path / "nowhere"), "--json"]
    assert cli.main(base + [str(tmp_path / "no" / "such" / "r.json")]) == 2
    assert "--json: the folder" in (err := capsys.readouterr().err) and "does not exist" in err
    (tmp_path / "afile").write_text("x")
    assert cli.main(base + [str(tmp_path / "afile" / "r.json")]) == 2
    assert "--json: the folder" in (err := capsys.readouterr().err) and "is not a directory" in err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            assert cli.main(base + [str(locked / "r.json")]) == 2
            assert "--json: the folder" in (err := capsys.readouterr().err) and "is not writable" in err
        finally:
            locked.chmod(0o700)


def test_reproduce_out_checked_before_anything(tmp_path, capsys):
    nowhere = ["--data", str(tmp_path / "nowhere")]
    (tmp_path / "afile").write_text("x")
    assert cli.main(["reproduce", "--out", str(tmp_path / "afile" / "sub"), *nowhere]) == 2
    assert "--out: cannot create" in (err := capsys.readouterr().err) and "is not a directory" in err
    out = tmp_path / "o"
    (out / "tables.md").mkdir(parents=True)
    assert cli.main(["reproduce", "--out", str(out), *nowhere]) == 2
    assert "tables.md' is a directory" in capsys.readouterr().err
    (out / "tables.md").rmdir()
    (out / "runs" / "two-conv-ecp-k1.json").mkdir(parents=True)
    assert cli.main(["reproduce", "--out", str(out), *nowhere]) == 2
    assert "two-conv-ecp-k1.json' is a directory" in capsys.readouterr().err
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        try:
            assert cli.main(["reproduce", "--out", str(locked / "out"), *nowhere]) == 2
            assert "is not writable" in capsys.readouterr().err
        finally:
            locked.chmod(0o700)


def test_reproduce_with_a_diverging_run_goes_on_marks_it_and_exits_3(synthetic_dir, tmp_path, monkeypatch,
                                                                    capsys):
    """One run of the matrix diverges: it is recorded, the others run, the tables mark it, status 3."""
    real = reproduce.train.run

    def run(config, dataset, **kwargs):
        if (config.net, config.pool, config.mode) == ("two-conv", "ecp", 1):
            config = reproduce.train.TrainConfig(**{**config.__dict__, "optimizer": "sgd", "lr": 1e30})
        return real(config, dataset, **kwargs)

    monkeypatch.setattr(reproduce.train, "run", run)
    out = tmp_path / "rep"
    runs = out / "runs"
    runs.mkdir(parents=True)
    stale = runs / "two-conv-max.json.tmp"  # what an older, killed reproduce left
    stale.write_text("{")
    old = time.time() - 60
    os.utime(stale, (old, old))
    argv = ["reproduce", "--epochs", "1", "--limit-train", "60", "--limit-test", "20", "--out", str(out),
            "--threads", "1", "--no-progress", "--data", str(synthetic_dir)]
    assert cli.main(argv) == 3
    captured = capsys.readouterr()
    assert "two-conv-ecp-k1    DIVERGED: the loss became" in captured.out
    err = captured.err.strip()
    assert err.count("\n") == 0 and err.startswith(f"ecp reproduce: error: 1 of {len(reproduce.RUNS)} runs diverged")
    assert "two-conv-ecp-k1 at epoch 1, batch " in err
    assert not stale.exists()
    assert sorted(p.name for p in runs.iterdir()) == sorted(n + ".json" for n in _run_names())
    rec = json.loads((runs / "two-conv-ecp-k1.json").read_text())
    assert rec["diverged"] is True and rec["diverged_at"]["epoch"] == 1 and rec["epochs"] == []
    md = (out / "tables.md").read_text()
    assert md.count("| ECP k=1 | - | ") == 2 and "diverged (epoch 1 batch " in md
    with open(out / "table4.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    k1 = [r for r in rows if r["method"] == "ECP k=1"]
    assert len(k1) == 2 and all(r["diverged"].startswith("epoch 1 batch ") and r["best_accuracy_pct"] == ""
                                and r["train_speedup"] == "" for r in k1)
    assert all(r["diverged"] == "" and r["best_accuracy_pct"] != "" for r in rows if r["method"] != "ECP k=1")
    # Resumed with the same settings: the diverged run is not repeated, and the status stays 3.
    assert cli.main(argv) == 3
    assert capsys.readouterr().out.count(": skipped") == len(reproduce.RUNS)


def test_write_atomic_temporary_name_and_cleaning(tmp_path):
    from ecp.experiments import _files

    names = []
    _files.write_atomic(tmp_path / "r.txt", lambda f: names.append(os.path.basename(f.name)))
    assert _files.TEMP_PATTERN.match(names[0]) and f".ecp{os.getpid()}-" in names[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_part = tmp_path / f".r.txt.ecp{int(dead.stdout)}-x1y2z3.part"
    live_part = tmp_path / f".r.txt.ecp{os.getppid()}-x1y2z3.part"
    own_part = tmp_path / f".r.txt.ecp{os.getpid()}-x1y2z3.part"  # a concurrent write of this process
    for path in (dead_part, live_part, own_part):
        path.write_text("half")
    _files.write_atomic(tmp_path / "other.txt", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["r.txt", "other.txt", live_part.name,
                                                                  own_part.name])


_KILLED_WRITER = """
import os, signal, sys
from ecp.experiments._files import write_atomic

def write(f):
    block = b"n" * (1 << 20)
    for i in range(64):
        f.write(block)
        if i == 20:
            f.flush()
            print("writing", flush=True)
            sys.stdin.readline()  # the parent kills us here, mid-file
write_atomic(sys.argv[1], write)
"""


@pytest.mark.parametrize("existed", [False, True])
def test_write_atomic_killed_mid_file_leaves_old_content_and_a_leftover_the_next_write_removes(tmp_path,
                                                                                              existed):
    target = tmp_path / "big.bin"
    if existed:
        target.write_bytes(b"old complete content")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        assert proc.wait(timeout=60) == -signal.SIGKILL
        proc.stdin.close()
        proc.stdout.close()
    parts = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert len(parts) == 1 and parts[0].name.startswith(f".big.bin.ecp{proc.pid}-")
    assert parts[0].stat().st_size >= 20 << 20
    if existed:
        assert target.read_bytes() == b"old complete content"
    else:
        assert not target.exists()
    from ecp.experiments import _files

    _files.write_atomic(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"] and target.read_bytes() == b"new"


def test_reproduce_matrix_has_easy_avg_rows():
    """Easy average pooling: one run per network, a row in the blocks against average pooling."""
    assert [r for r in reproduce.RUNS if r[1] == "easy-avg"] == [("two-conv", "easy-avg", None),
                                                                ("one-conv", "easy-avg", None)]
    assert reproduce.method_label("easy-avg", None) == "Easy Ave Pooling"
    assert reproduce.run_name("one-conv", "easy-avg", None) == "one-conv-easy-avg"


# ---- mode policies ----------------------------------------------------------------------------

@pytest.mark.mnist
def test_train_cli_per_batch_with_ensemble_evaluation(mnist_path, tmp_path, capsys):
    out = tmp_path / "pb.json"
    code = cli.main(["train", "--net", "one-conv", "--pool", "ecp", "--mode", "per-batch", "--eval-mode", "ensemble",
                     "--epochs", "1", "--limit-train", "300", "--limit-test", "100", "--data", str(mnist_path),
                     "--threads", "1", "--json", str(out), "--no-progress"])
    stdout = capsys.readouterr().out
    assert code == 0 and "one-conv / ecp, mode per-batch, eval ensemble" in stdout
    result = json.loads(out.read_text())
    assert set(result) == TOP_KEYS
    assert (result["mode"], result["eval_mode"]) == ("per-batch", "ensemble")
    code = cli.main(["train", "--net", "one-conv", "--pool", "random", "--mode", "1", "--eval-mode", "2",
                     "--epochs", "1", "--limit-train", "100", "--limit-test", "50", "--data", str(mnist_path),
                     "--threads", "1", "--json", str(out), "--no-progress"])
    assert code == 0 and "mode K=1, eval 2" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert (result["mode"], result["eval_mode"]) == (1, 2)


def test_train_cli_mode_policy_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--net", "two-conv", "--pool", "ecp", "--eval-mode", "4"])
    assert exc.value.code == 2 and "expected 0, 1, 2, 3 or ensemble, got '4'" in capsys.readouterr().err
    code = cli.main(["train", "--net", "two-conv", "--pool", "ecp", "--mode", "1", "--eval-mode", "ensemble",
                     "--data", str(tmp_path)])
    assert code == 2 and "eval_mode='ensemble' needs mode='per-batch'" in capsys.readouterr().err
    code = cli.main(["train", "--net", "two-conv", "--pool", "max", "--eval-mode", "1", "--data", str(tmp_path)])
    assert code == 2 and "eval_mode applies only to pool random or ecp" in capsys.readouterr().err


@pytest.mark.mnist
def test_reproduce_policy_runs_and_table_7(mnist_path, tmp_path):
    from ecp.experiments import data, train

    assert len(reproduce.RUNS) == 22 and all(len(r) == 3 for r in reproduce.RUNS)   # the default matrix stays
    assert [reproduce.run_name(*r) for r in reproduce.POLICY_RUNS] == [
        "two-conv-ecp-per-batch-eval0", "two-conv-ecp-per-batch-ensemble",
        "one-conv-ecp-per-batch-eval0", "one-conv-ecp-per-batch-ensemble"]
    base = train.TrainConfig(epochs=1)
    records = reproduce.run_matrix(
        base, tmp_path, lambda: data.load_mnist(mnist_path, limit_train=100, limit_test=50), limit_train=100,
        limit_test=50, log=lambda line: None, runs=reproduce.POLICY_RUNS)
    assert records["one-conv-ecp-per-batch-ensemble"]["eval_mode"] == "ensemble"
    assert records["two-conv-ecp-per-batch-eval0"]["mode"] == "per-batch"
    fake = records["one-conv-ecp-per-batch-eval0"]
    for r in reproduce.RUNS:   # stand-ins for the 22 runs (their values do not matter here)
        records.setdefault(reproduce.run_name(*r), fake)
    assert 7 not in reproduce.build_tables(records)
    tables = reproduce.build_tables(records, policies=True)
    methods = [row["method"] for row in tables[7][1]]
    assert methods[:5] == ["Max Pooling", "ECP k=0", "ECP per-batch, test k=0", "ECP per-batch, test ensemble",
                           "Easy Ave Pooling"]
    assert "### Table 7: Mode policies" in reproduce.tables_markdown(tables)
    with pytest.raises(ValueError, match="two-conv-ecp-per-batch-eval0"):
        reproduce.build_tables({k: v for k, v in records.items() if k != "two-conv-ecp-per-batch-eval0"},
                               policies=True)


@pytest.mark.parametrize("world", ["1", "2"])
def test_a_group_worker_exits_with_its_status_and_its_output(world):
    """A worker of a group (WORLD_SIZE > 1) leaves through os._exit (no interpreter teardown, where
    gloo's threads could abort it); its exit status and what it printed must survive that."""
    env = {**os.environ, "WORLD_SIZE": world}
    res = subprocess.run([sys.executable, "-m", "ecp", "bench", "--shapes", "nosuchshape"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert "nosuchshape" in res.stderr
    res = subprocess.run([sys.executable, "-m", "ecp", "--version"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("ecp ")
