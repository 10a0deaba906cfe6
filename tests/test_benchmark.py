"""``ecp bench`` and ecp.experiments.bench.run_bench: runs, record keys, shape parsing, errors, no PyTorch.

No timing is asserted: only that the command runs, checks results, and reports sane numbers.
"""
import io
import json
import sys

import numpy as np
import pytest

import ecp
from ecp import _openmp_env
from ecp.experiments import bench as benchmark
from ecp.experiments.bench import BenchShape, VerificationError, parse_shapes, run_bench
from ecp.experiments.bench import verify as bench_verify
from ecp.experiments.bench.verify import reference_forward

SMALL_GEMM = 128  # the reference GEMM is not what these tests are about: keep it cheap


def _positive(value):
    return isinstance(value, (int, float)) and np.isfinite(value) and value > 0


def _check_record(record, names, with_torch):
    assert set(record) >= {"ecp_version", "created", "config", "system", "gemm", "shapes"}
    assert set(record["config"]) >= {"dtype", "threads", "repeats", "warmup", "mode", "gemm_size"}
    system = record["system"]
    for key in ("cpu_model", "cpu_count", "numpy", "scipy", "torch", "threadpoolctl",
                "openmp_enabled", "conv_direct_kernels", "ecp_num_threads", "threadpool_info", "env"):
        assert key in system, key
    assert system["numpy"] == np.__version__
    assert isinstance(system["openmp_enabled"], bool)
    assert isinstance(system["conv_direct_kernels"], bool)
    assert system["kernel_isa"] == ecp.kernel_isa()
    assert system["conv_direct_kernels"] <= (system["kernel_isa"] != "generic")
    assert set(system["env"]) >= {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    assert any(e.get("user_api") == "blas" for e in system["threadpool_info"])
    assert (system["torch"] is not None) == with_torch
    gemm = record["gemm"]
    assert gemm["flops"] == 2 * gemm["m"] * gemm["k"] * gemm["n"]
    assert _positive(gemm["ecp_blas"]["gflops"]) and _positive(gemm["numpy"]["gflops"])
    assert [s["name"] for s in record["shapes"]] == names
    for rec in record["shapes"]:
        assert set(rec["kernels"]) == {"forward", "easy_forward", "backward"}
        assert set(rec["kernels"].values()) <= {"direct", "direct-rows", "im2col+blas", "winograd",
                                                "polyphase-tall", "direct dx + im2col+blas dW"}
        if not system["conv_direct_kernels"]:
            assert set(rec["kernels"].values()) == {"im2col+blas"}
        expected = {"full_forward", "easy_forward", "full_backward", "easy_backward",
                    "ecp_conv_maxpool_forward", "ecp_conv_maxpool_backward",
                    "easy_avg_forward", "easy_avg_backward", "ecp_conv_avgpool_forward", "ecp_conv_avgpool_backward"}
        torch_rows = {f"torch_{k}_{d}" for k in ("conv", "conv_maxpool", "stride2")
                      for d in ("forward", "backward")}
        assert set(rec["timings"]) == (expected | torch_rows if with_torch else expected)
        for name, t in rec["timings"].items():
            assert len(t["runs_ms"]) == record["config"]["repeats"], name
            assert _positive(t["median_ms"]) and 0 < t["min_ms"] <= t["median_ms"], name
        for key in ("gflops", "pct_of_gemm"):
            assert set(rec[key]) == {"full_forward", "easy_forward", "full_backward", "easy_backward"}
            assert all(_positive(v) for v in rec[key].values()), key
        n, o, ho, wo = rec["full_shape"]
        taps = np.prod(rec["w_shape"][1:])
        assert rec["flops"]["full_forward"] == 2 * n * o * ho * wo * taps
        assert rec["flops"]["easy_forward"] == 2 * n * o * (ho // 2) * (wo // 2) * taps
        assert rec["easy_shape"] == [n, o, ho // 2, wo // 2]
        assert rec["verification"]["passed"] is True
        assert all(v <= rec["verification"]["tolerance"] for v in rec["verification"]["errors"].values())
        for stat in ("speedup", "speedup_min"):
            assert _positive(rec[stat]["forward"]) and _positive(rec[stat]["backward"])
        if with_torch:
            assert _positive(rec["speedup"]["layer_vs_torch_conv_maxpool_forward"])
        else:
            assert rec["speedup"]["layer_vs_torch_conv_maxpool_forward"] is None


def test_cli_bench_small_writes_json(tmp_path, capsys):
    from ecp.experiments.cli import main

    path = tmp_path / "bench.json"
    assert main(["bench", "--shapes", "small", "--repeats", "2", "--json", str(path)]) == 0
    out, err = capsys.readouterr()
    record = json.loads(path.read_text())
    with_torch = record["system"]["torch"] is not None
    _check_record(record, ["small"], with_torch)
    assert record["config"]["repeats"] == 2 and record["gemm"]["m"] == benchmark.DEFAULT_GEMM_SIZE
    # the table: header, rows, summary; progress went to stderr (not a terminal: plain lines)
    assert "SGEMM 2048x2048x2048" in out
    for row in ("full conv", "easy conv (ECP layer)", "easy speedup over full", "% SGEMM",
                "peak memory", "ecp conv + max-pool", "summary"):
        assert row in out, row
    assert ("PyTorch conv + max-pool" in out) == with_torch
    assert "small (float32): checking the results" in err and "\r" not in err


def test_run_bench_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    record = run_bench(["small"], "float64", threads=1, repeats=2, gemm_size=SMALL_GEMM)
    _check_record(record, ["small"], with_torch=False)
    assert record["gemm"]["dtype"] == "float64"
    text = benchmark.format_report(record)
    assert "DGEMM" in text and "PyTorch conv" not in text and "PyTorch not installed" in text


def test_cli_without_torch(monkeypatch, capsys):
    from ecp.experiments.cli import main

    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["bench", "--shapes", "small", "--repeats", "1", "--gemm-size", "64",
                 "--no-memory", "-q"]) == 0
    out, err = capsys.readouterr()
    assert "easy speedup over full" in out and "PyTorch conv" not in out and "peak memory" not in out
    assert err == ""


def test_custom_odd_shape_mode0_and_threads():
    # odd output height with mode 0: PyTorch's stride-2 conv gives one more row, which is cropped
    before = ecp.get_num_threads()
    record = run_bench(["2,3,9,9:4,3,2:1"], threads=1, repeats=1, warmup=0, mode=0,
                       gemm_size=SMALL_GEMM, memory=False)
    assert ecp.get_num_threads() == before  # the thread setting is restored
    rec = record["shapes"][0]
    assert rec["x_shape"] == [2, 3, 9, 9] and rec["w_shape"] == [4, 3, 3, 2] and rec["padding"] == 1
    assert rec["full_shape"] == [2, 4, 9, 10] and rec["easy_shape"] == [2, 4, 4, 5]
    assert record["config"]["threads"] == 1 and record["config"]["mode"] == 0
    blas = [e for e in record["system"]["threadpool_info"] if e.get("user_api") == "blas"]
    assert blas and all(e["num_threads"] == 1 for e in blas)
    if record["system"]["torch"] is not None:
        assert record["system"]["torch_num_threads"] == 1
        assert "PyTorch stride-2 conv vs ecp easy_conv2d" in rec["verification"]["errors"]


def test_parse_shapes_names_and_custom():
    shapes = parse_shapes(["conv1,conv2", "vgg", "conv1", "8,16,32,32:32,3,3:1", "1,2,5,7:3,2,4"])
    assert [s.name for s in shapes] == ["conv1", "conv2", "vgg", "8,16,32,32:32,3,3:1",
                                        "1,2,5,7:3,2,4"]
    assert shapes[0] == BenchShape("conv1", (50, 1, 28, 28), (20, 1, 5, 5), 0)
    assert shapes[2].padding == 1 and shapes[2].full_shape == (16, 64, 56, 56)
    assert shapes[3].x_shape == (8, 16, 32, 32) and shapes[3].w_shape == (32, 16, 3, 3)
    assert shapes[3].padding == 1
    assert shapes[4].w_shape == (3, 2, 2, 4) and shapes[4].padding == 0
    assert shapes[4].full_shape == (1, 3, 4, 4) and shapes[4].easy_shape == (1, 3, 2, 2)
    assert [s.name for s in parse_shapes(None)] == list(benchmark.DEFAULT_SHAPES)
    flops = parse_shapes("conv2")[0].flops()
    assert flops["full_forward"] == 2 * 50 * 32 * 8 * 8 * 20 * 5 * 5
    assert flops["easy_forward"] * 4 == flops["full_forward"]
    assert flops["full_backward"] == 2 * flops["full_forward"]


@pytest.mark.parametrize("spec, match", [
    ("conv3", "unknown shape 'conv3'"),
    ("conv1,nope", "unknown shape 'nope'"),
    ("1,2,3:4,5,6", "N,C,H,W .* 4 comma-separated"),
    ("1,2,3,4:5,6", "O,kh,kw .* 3 comma-separated"),
    ("a,b,c,d:1,2,3", "must be integers"),
    ("1,1,8,8:1,3,3:x", "padding .* must be integers"),
    ("0,1,8,8:1,3,3", "must be >= 1"),
    ("1,1,8,8:1,3,3:-1", "padding .* must be >= 0"),
    ("1,1,4,4:1,4,4", "1x1 convolution output"),
    ("1,1,8,8:1,3,3:1:2", "must look like"),
])
def test_bad_shapes_name_the_option(spec, match):
    with pytest.raises(ValueError, match=f"--shapes: .*{match}"):
        parse_shapes([spec])
    with pytest.raises(ValueError, match=f"shapes: .*{match}"):
        run_bench([spec], repeats=1)


@pytest.mark.parametrize("argv, message", [
    (["--shapes", "conv9"], "--shapes: unknown shape 'conv9'"),
    (["--shapes", "small", "1,1,8,8:1,9,9"], "--shapes: custom shape '1,1,8,8:1,9,9' gives a 0x0"),
    (["--shapes", "small", "--gemm-size", "0"], "--gemm-size must be M or M,K,N"),
    (["--shapes", "small", "--json", "/nonexistent-dir/x.json"], "--json: the folder"),
    (["--shapes", "small", "--json", "."], "--json: '.' is a directory"),
    (["--shapes", "small", "--results-md", "."], "--results-md: '.' is a directory"),
])
def test_cli_bad_options_exit_2(argv, message, capsys):
    from ecp.experiments.cli import main

    assert main(["bench"] + argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("ecp bench: error: ") and message in err
    assert out == ""  # refused before measuring anything


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "argument --threads: expected an integer >= 1, got '0'"),
    (["--repeats", "two"], "argument --repeats: expected an integer >= 1, got 'two'"),
    (["--warmup", "-1"], "argument --warmup: expected an integer >= 0, got '-1'"),
])
def test_cli_bad_numbers_exit_2(argv, message, capsys):
    from ecp.experiments.cli import main

    with pytest.raises(SystemExit) as info:
        main(["bench", "--shapes", "small"] + argv)
    out, err = capsys.readouterr()
    assert info.value.code == 2 and message in err and out == ""


def test_run_bench_argument_errors():
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64', got 'float16'"):
        run_bench(["small"], "float16")
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        run_bench(["small"], threads=0)
    with pytest.raises(TypeError, match="repeats must be an integer"):
        run_bench(["small"], repeats=1.5)
    with pytest.raises(ValueError, match="mode must be an integer in 0..3"):
        run_bench(["small"], mode=4)


def test_wrong_forward_is_not_timed(monkeypatch, capsys):
    """A kernel returning wrong numbers makes the benchmark fail instead of reporting its time."""
    real = bench_verify.easy_conv2d

    def off_by_one_pixel(x, w, b=None, mode=0, padding=0):
        return real(x, w, b, mode=(mode + 1) % 4, padding=padding)  # wrong kept pixel

    monkeypatch.setattr(bench_verify, "easy_conv2d", off_by_one_pixel)
    with pytest.raises(VerificationError, match="easy_conv2d forward vs conv2d"):
        run_bench(["small"], repeats=1, gemm_size=SMALL_GEMM, use_torch=False)
    from ecp.experiments.cli import main

    assert main(["bench", "--shapes", "small", "--repeats", "1", "--gemm-size", "64", "-q"]) == 1
    out, err = capsys.readouterr()
    assert "is wrong" in err and out == ""


def test_wrong_backward_is_not_timed(monkeypatch):
    real = bench_verify.conv2d_backward

    def scaled_dx(dy, x, w, padding=0, compute_dx=True):
        dx, dw, db = real(dy, x, w, padding=padding, compute_dx=compute_dx)
        return dx * 1.01, dw, db

    monkeypatch.setattr(bench_verify, "conv2d_backward", scaled_dx)
    with pytest.raises(VerificationError, match="conv2d backward dx"):
        run_bench(["small"], repeats=1, gemm_size=SMALL_GEMM, use_torch=False)


def test_progress_line_terminal_and_pipe():
    from ecp.experiments._progress import StatusLine

    class Tty(io.StringIO):
        def isatty(self):
            return True

    pipe = io.StringIO()
    progress = StatusLine("ecp bench", pipe)
    progress("conv1: checking")
    progress("conv1: timing run 1/3", transient=True)  # counters only on a terminal
    assert pipe.getvalue() == "ecp bench: conv1: checking\n"
    tty = Tty()
    progress = StatusLine("ecp bench", tty)
    progress("a")
    progress("b", transient=True)
    progress.clear()
    text = tty.getvalue()
    assert "ecp bench: a" in text and "ecp bench: b" in text and "\r" in text and "\n" not in text
    quiet = io.StringIO()
    StatusLine("ecp bench", quiet, enabled=False)("x")
    assert quiet.getvalue() == ""


def test_reference_forward_matches_a_loop():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    got = reference_forward(x, w, b, 1, 1)
    xp = np.pad(x[1], ((0, 0), (1, 1), (1, 1)))
    want = np.array([[[np.sum(xp[:, i:i + 3, j:j + 2] * w[o]) + b[o] for j in range(6)] for i in range(6)]
                     for o in range(4)])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_cli_results_md_and_strict_json(tmp_path, capsys):
    from ecp.experiments.cli import main

    md, path = tmp_path / "results.md", tmp_path / "bench.json"
    md.write_text("# Results\n\nintro\n\n<!-- begin: ecp bench -->\nold\n<!-- end: ecp bench -->\n\ntail\n")
    assert main(["bench", "--shapes", "small", "--repeats", "1", "--gemm-size", "64", "--no-torch", "-q",
                 "--json", str(path), "--results-md", str(md)]) == 0
    text = md.read_text()
    assert text.startswith("# Results\n\nintro\n\n<!-- begin: ecp bench -->") and text.endswith("\n\ntail\n")
    assert "old" not in text and text.count("<!-- begin: ecp bench -->") == 1
    for stamp in ("- commit: `", "- date: ", "- machine: ", "cores, ISA", "BLAS: ",
                  "- command: `ecp bench --shapes small"):
        assert stamp in text, stamp
    assert "easy speedup over full" in text and "summary: speedups" in text
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def _gone(pid):
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_contention_record_and_busy_process_gone(monkeypatch):
    from ecp.experiments.bench import contention

    monkeypatch.setattr(contention, "import_torch", lambda: None)
    record = benchmark.run_contention(["small"], repeats=2, warmup=0, gemm_size=32, threads=2)
    assert set(record) >= {"ecp_version", "created", "config", "system", "busy_process", "shapes"}
    assert record["config"]["conditions"] == ["idle", "busy", "numpy_gemm"]
    assert set(record["system"]["openmp"]) == {"enabled", "wait_setting", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                               "libraries"}
    assert record["system"]["deterministic"] is False
    busy = record["busy_process"]
    assert busy["returncode"] is not None and _gone(busy["pid"])
    (rec,) = record["shapes"]
    calls = {"ecp_easy_forward", "ecp_easy_backward"}
    for condition in ("idle", "busy", "numpy_gemm"):
        assert set(rec["timings"][condition]) == {f"{c}_{t}" for c in calls for t in ("1t", "nt")}
        assert all(len(t["runs_ms"]) == 2 for t in rec["timings"][condition].values())
        assert set(rec["threads_ratio"][condition]) == calls
        assert all(_positive(v) for v in rec["threads_ratio"][condition].values())
        assert set(rec["vs_idle"][condition]) == set(rec["timings"][condition])
    assert "ecp_easy_forward" in "\n".join(benchmark.format_contention(record))


def test_busy_process_stopped_on_keyboard_interrupt():
    from ecp.experiments.bench.contention import busy_process

    with pytest.raises(KeyboardInterrupt), busy_process() as proc:
        pid = proc.pid
        assert proc.poll() is None
        raise KeyboardInterrupt
    assert proc.returncode is not None and _gone(pid)


def test_cli_contention_writes_json(tmp_path, capsys):
    from ecp.experiments.cli import main

    path = tmp_path / "contention.json"
    assert main(["bench", "--contention", "--shapes", "small", "--repeats", "2", "--warmup", "0",
                 "--gemm-size", "32", "--no-torch", "-q", "--json", str(path)]) == 0
    record = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert [s["name"] for s in record["shapes"]] == ["small"]
    assert _gone(record["busy_process"]["pid"])
    assert "threads / 1 thread" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--gemm-size", "32,16,8"], "--gemm-size with --contention must be one size M"),
    (["--results-md", "x.md"], "--results-md does not take the --contention tables"),
])
def test_cli_contention_bad_options(argv, message, capsys):
    from ecp.experiments.cli import main

    assert main(["bench", "--contention", "--shapes", "small", "--no-torch", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("env, before, expected", [
    ({}, "", "set"), ({"GOMP_SPINCOUNT": "5"}, "", "user"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "", "user"),
    ({}, "import ctypes; ctypes.CDLL('libgomp.so.1'); ", "already-loaded"),
])
def test_openmp_wait_setting_cases(env, before, expected):
    # the "openmp" entry of the bench records: what `import ecp` did to libgomp's wait policy
    import os
    import subprocess

    if expected == "already-loaded" and not ecp.openmp_info()["libraries"]:
        pytest.skip("no libgomp in this build")
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", before + "import ecp; i = ecp.openmp_info(); "
                          "print(i['wait_setting'], i['GOMP_SPINCOUNT'])"], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == expected
    assert out[1] == {"set": _openmp_env.SPINCOUNT, "user": env.get("GOMP_SPINCOUNT", "None")}.get(expected, "None")


def test_easy_avg_rows_are_timed_and_verified():
    record = run_bench(["small"], "float32", None, 2, warmup=0, use_torch=False, memory=False, gemm_size=SMALL_GEMM)
    rec = record["shapes"][0]
    assert {"easy_avg_forward", "easy_avg_dx", "easy_avg_dw", "easy_avg_db"} <= set(rec["verification"]["errors"])
    for stat in ("speedup", "speedup_min"):
        assert _positive(rec[stat]["easy_avg_vs_ecp_conv_avgpool_forward"])
        assert _positive(rec[stat]["easy_avg_vs_ecp_conv_avgpool_backward"])
    from ecp.experiments.bench.report import format_report
    text = format_report(record)
    assert "easy avg speedup" in text and "easy-avg vs c+ap fwd" in text

def test_torch_module_record_on_tiny_sizes(tmp_path, capsys):
    """``--torch-module``: every network on every device, plain and converted, the record's keys (no speed)."""
    pytest.importorskip("torch", reason="PyTorch is not installed")
    from ecp.experiments.bench.report import format_torch_module
    from ecp.experiments.bench.torch_module import TORCH_MODULE_NETS, run_torch_module
    from ecp.experiments.cli import main

    record = run_torch_module(1, 2, 1, mode=1, vgg_channels=(4, 8, 8), vgg_size=16, vgg_batch=3, two_conv_batch=3,
                              devices=["cpu"])
    assert set(record) == {"ecp_version", "created", "config", "system", "models"}
    assert set(record["config"]) == {"threads", "repeats", "warmup", "mode", "dtype", "lr", "statistic"}
    assert record["config"]["mode"] == 1 and "loadavg_end" in record["system"]
    assert [(m["name"], m["device"]) for m in record["models"]] == [(n, "cpu") for n in TORCH_MODULE_NETS]
    for m in record["models"]:
        assert set(m) == {"name", "device", "input_shape", "layers", "converted_chains", "timings", "speedup",
                          "speedup_min"}
        assert m["converted_chains"] == (2 if m["name"] == "two-conv" else 3)
        assert set(m["timings"]) == {"original", "converted"}
        assert all(len(t["runs_ms"]) == 2 and _positive(t["median_ms"]) for t in m["timings"].values())
        assert _positive(m["speedup"]) and _positive(m["speedup_min"])
    text = "\n".join(format_torch_module(record))
    assert "vgg-like  cpu     3x3x16x16" in text and "two-conv  cpu     3x1x28x28" in text
    with pytest.raises(ValueError, match="nets must be among"):
        run_torch_module(1, 1, 0, nets=["resnet"])
    assert main(["bench", "--torch-module", "--results-md", str(tmp_path / "r.md")]) == 2
    assert "--results-md does not take the --torch-module table" in capsys.readouterr().err


def test_the_pytest_benchmark_suite_runs_and_checks_its_results():
    # bench/ (pytest bench/ --benchmark-only) once on its smallest case, each call timed once and
    # checked against the float64 reference: the suite must keep importing what it times
    import pathlib
    import subprocess

    pytest.importorskip("pytest_benchmark")
    root = pathlib.Path(__file__).resolve().parents[1]
    if not (root / "bench" / "bench_conv.py").exists():
        pytest.skip("no bench/ next to tests/ (an installed package)")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-disable",
                          "-k", "small-float32", "bench/bench_conv.py", "bench/bench_pool.py"],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
