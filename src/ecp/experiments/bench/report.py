"""The text tables ``ecp bench`` prints (and puts in ``docs/results.md``)."""
from .._machine import blas_summary

__all__ = ["format_header", "format_shape", "format_summary", "format_report", "format_torch_module"]


def _num(value, suffix=""):
    """Three significant digits or more: 149, 23.2, 1.71, 0.214, 0.0186."""
    if value is None:
        return "-"
    a = abs(value)
    digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3 if a >= 0.1 else 4
    return f"{value:.{digits}f}{suffix}"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def format_header(record: dict) -> list[str]:
    """Format the lines printed before the per-shape tables.

    Parameters
    ----------
    record : dict
        A record from :func:`~ecp.experiments.bench.run_bench` (only ``config``, ``system`` and
        ``gemm`` are read, so it may still lack ``shapes``).

    Returns
    -------
    list of str
        The configuration, the CPU and library versions, a warning when the load average exceeds
        half the cores, the BLAS set-up and the measured GEMM rate; no trailing newlines.
    """
    cfg, sysinfo, gemm = record["config"], record["system"], record["gemm"]
    gemm_name = "SGEMM" if gemm["dtype"] == "float32" else "DGEMM"
    lines = [
        f"ecp {record['ecp_version']} bench: {cfg['dtype']}, {cfg['threads']} thread(s) "
        f"(ecp OpenMP {'on' if sysinfo['openmp_enabled'] else 'OFF'}, ecp threads "
        f"{sysinfo['ecp_num_threads']}, kernel ISA {sysinfo.get('kernel_isa', 'unknown')}, direct conv "
        f"kernels {'on' if sysinfo.get('conv_direct_kernels') else 'off'}), "
        f"mode K={cfg['mode']}; ms: median (min) of "
        f"{cfg['repeats']} runs after {cfg['warmup']} warm-up, contenders interleaved",
        f"CPU: {sysinfo['cpu_model']} ({sysinfo['cpu_count']} cores); NumPy {sysinfo['numpy']}, "
        f"SciPy {sysinfo['scipy']}, PyTorch {sysinfo['torch'] or 'not installed'}"
        + (f"; load average {sysinfo['loadavg'][0]:.2f} at the start" if sysinfo.get("loadavg")
           else ""),
    ]
    load, cores = sysinfo.get("loadavg"), sysinfo.get("cpu_count") or 1
    if load and load[0] > 0.5 * cores:
        lines.append(f"warning: the machine is busy (load {load[0]:.2f} on {cores} cores): "
                     "threads wait for time slices and timings are noisy")
    env = ", ".join(f"{k}={v}" for k, v in sysinfo["env"].items() if v is not None)
    lines.append("BLAS: " + "; ".join(blas_summary(sysinfo["threadpool_info"])) + (f" [{env}]" if env else ""))
    lines.append(
        f"{gemm_name} {gemm['m']}x{gemm['k']}x{gemm['n']}: ecp's BLAS (SciPy) "
        f"{gemm['ecp_blas']['gflops']:.1f} GFLOP/s, NumPy {gemm['numpy']['gflops']:.1f} GFLOP/s "
        f"(median of {gemm['runs']}); '% {gemm_name}' below is of ecp's BLAS rate")
    return lines


def format_shape(rec: dict, record: dict) -> list[str]:
    """Format the table of one shape: rows of quantities, columns forward / backward.

    Parameters
    ----------
    rec : dict
        One entry of ``record["shapes"]``.
    record : dict
        The whole record (for the dtype and the GEMM name).

    Returns
    -------
    list of str
        A heading line then the aligned table; the PyTorch rows appear only when ``rec`` holds
        PyTorch timings, the memory rows only when it holds memory figures.
    """
    tim = rec["timings"]
    g, pct, sp, mem = rec["gflops"], rec["pct_of_gemm"] or {}, rec["speedup"], rec["memory_mb"]
    gemm_name = "SGEMM" if record["gemm"]["dtype"] == "float32" else "DGEMM"

    def _ms(prefix):
        return [_num(tim[f"{prefix}_{d}"]["median_ms"]) + f" ({_num(tim[f'{prefix}_{d}']['min_ms'])})"
                for d in ("forward", "backward")]

    def _pair(values, kind, fmt):
        return [fmt(values.get(f"{kind}_{d}")) for d in ("forward", "backward")]

    def _speed(key):
        return [_ratio(sp[f"{key}_{d}"]) for d in ("forward", "backward")]

    rows = [
        ("full conv", "ms", *_ms("full")),
        ("easy conv (ECP layer)", "ms", *_ms("easy")),
        ("easy speedup over full", "", _ratio(sp["forward"]), _ratio(sp["backward"])),
        ("full conv", "GFLOP/s", *_pair(g, "full", _num)),
        ("easy conv", "GFLOP/s", *_pair(g, "easy", _num)),
        ("full conv", f"% {gemm_name}", *_pair(pct, "full", lambda v: _num(v, "%"))),
        ("easy conv", f"% {gemm_name}", *_pair(pct, "easy", lambda v: _num(v, "%"))),
    ]
    if mem is not None:
        rows += [
            ("full conv peak memory", "MB", *_pair(mem, "full", _num)),
            ("easy conv peak memory", "MB", *_pair(mem, "easy", _num)),
            ("easy / full memory", "", *_pair(mem, "ratio", _ratio)),
        ]
    rows += [
        ("ecp conv + max-pool", "ms", *_ms("ecp_conv_maxpool")),
        ("ECP layer speedup", "vs ecp conv+mp", *_speed("layer_vs_ecp_conv_maxpool")),
    ]
    if "easy_avg_forward" in tim:
        rows += [
            ("ecp conv + avg-pool", "ms", *_ms("ecp_conv_avgpool")),
            ("easy avg (conv+avg-pool fused)", "ms", *_ms("easy_avg")),
            ("easy avg speedup", "vs ecp conv+ap", *_speed("easy_avg_vs_ecp_conv_avgpool")),
        ]
    if "torch_conv_forward" in tim:
        rows += [
            ("PyTorch conv", "ms", *_ms("torch_conv")),
            ("PyTorch conv + max-pool", "ms", *_ms("torch_conv_maxpool")),
            ("PyTorch stride-2 conv", "ms", *_ms("torch_stride2")),
            ("ECP layer speedup", "vs torch conv+mp", *_speed("layer_vs_torch_conv_maxpool")),
            ("easy conv speedup", "vs torch stride-2", *_speed("easy_vs_torch_stride2")),
        ]
    head = (f"{rec['name']}: x {tuple(rec['x_shape'])}, w {tuple(rec['w_shape'])}, padding "
            f"{rec['padding']} -> full {tuple(rec['full_shape'])}, easy {tuple(rec['easy_shape'])}"
            f"  [{record['config']['dtype']}, kernels: forward {rec['kernels']['forward']} (easy "
            f"{rec['kernels']['easy_forward']}), backward {rec['kernels']['backward']}; results verified]")
    lw = max(len(r[0]) for r in rows)
    uw = max(len(r[1]) for r in rows)
    cw = max([len("backward")] + [len(c) for r in rows for c in r[2:]])
    lines = [head, f"  {'':<{lw}}  {'':<{uw}}  {'forward':>{cw}}  {'backward':>{cw}}"]
    for label, unit, fwd, bwd in rows:
        lines.append(f"  {label:<{lw}}  {unit:<{uw}}  {fwd:>{cw}}  {bwd:>{cw}}")
    return lines


def format_summary(record: dict) -> list[str]:
    """Format the speedups of every shape side by side.

    Parameters
    ----------
    record : dict
        A finished record from :func:`~ecp.experiments.bench.run_bench`.

    Returns
    -------
    list of str
        Two heading lines, then two lines per shape: speedups from the median times and from the
        minimum times; ``-`` where a ratio is unavailable.
    """
    has_torch = any("torch_conv_forward" in r["timings"] for r in record["shapes"])
    cols = ["easy/full fwd", "easy/full bwd", "layer vs ecp c+mp fwd", "bwd", "easy-avg vs c+ap fwd", "bwd"]
    keys = ["forward", "backward", "layer_vs_ecp_conv_maxpool_forward",
            "layer_vs_ecp_conv_maxpool_backward", "easy_avg_vs_ecp_conv_avgpool_forward",
            "easy_avg_vs_ecp_conv_avgpool_backward"]
    if has_torch:
        cols += ["layer vs torch c+mp fwd", "bwd"]
        keys += ["layer_vs_torch_conv_maxpool_forward", "layer_vs_torch_conv_maxpool_backward"]
    nw = max([len("shape")] + [len(r["name"]) for r in record["shapes"]]) + len(" (min)")
    lines = ["summary: speedups (x, higher is faster for ecp's easy conv / ECP layer), from the "
             "median times and from the minimum times (less sensitive to a busy machine)",
             "  " + f"{'shape':<{nw}}" + "".join(f"  {c:>{max(len(c), 6)}}" for c in cols)]
    for r in record["shapes"]:
        for stat, label in (("speedup", r["name"]), ("speedup_min", f"{r['name']} (min)")):
            lines.append("  " + f"{label:<{nw}}" + "".join(
                f"  {_ratio(r[stat].get(k)):>{max(len(c), 6)}}" for c, k in zip(cols, keys)))
    return lines


def format_report(record: dict) -> str:
    """Format the whole text report of a finished run.

    Parameters
    ----------
    record : dict
        A finished record from :func:`~ecp.experiments.bench.run_bench`.

    Returns
    -------
    str
        :func:`format_header`, every :func:`format_shape` table and :func:`format_summary`,
        separated by blank lines, without a trailing newline.
    """
    lines = format_header(record) + [""]
    for rec in record["shapes"]:
        lines += format_shape(rec, record) + [""]
    return "\n".join(lines + format_summary(record))


def format_torch_module(record: dict) -> list[str]:
    """Format the ``--torch-module`` table: per network and device, the two steps and their ratio.

    Parameters
    ----------
    record : dict
        A record from :func:`run_torch_module`.

    Returns
    -------
    list of str
        A header line, the load average, then one line per network and device; no trailing newlines.
    """
    cfg, sysinfo = record["config"], record["system"]
    load = sysinfo.get("loadavg")
    end = sysinfo.get("loadavg_end")
    lines = [f"ecp {record['ecp_version']} bench --torch-module: training step (forward, loss, backward, SGD), "
             f"plain PyTorch vs ecp.torch.convert(mode={cfg['mode']}); {cfg['threads']} thread(s); ms: median (min) "
             f"of {cfg['repeats']} steps after {cfg['warmup']} warm-up, interleaved; PyTorch {sysinfo['torch']}",
             f"CPU: {sysinfo['cpu_model']} ({sysinfo['cpu_count']} cores)"
             + (f"; load average {load[0]:.2f} at the start" if load else "")
             + (f", {end[0]:.2f} at the end" if end else ""),
             "",
             f"  {'network':<10}{'device':<8}{'input':<18}{'chains':>7}{'original ms':>20}{'converted ms':>20}"
             f"{'speedup':>9}{'(min)':>8}"]
    for m in record["models"]:
        t = m["timings"]
        cells = [f"{t[k]['median_ms']:.2f} ({t[k]['min_ms']:.2f})" for k in ("original", "converted")]
        lines.append(f"  {m['name']:<10}{m['device']:<8}{'x'.join(map(str, m['input_shape'])):<18}"
                     f"{m['converted_chains']:>7}{cells[0]:>20}{cells[1]:>20}{m['speedup']:>8.2f}x"
                     f"{m['speedup_min']:>7.2f}x")
    return lines
