"""``ecp reproduce``: the paper's experiment matrix, its Tables 3-6 and Figures 5-10.

Runs both networks (one-conv, two-conv) with max pooling, average pooling, Random Pooling
(full convolution) with K = 0..3, ECP with K = 0..3 and easy average pooling (the convolution
and average pooling as one stride-2 convolution) -- 22 runs, all from the same seed, so
every run starts from the same weights and sees the same data order -- and writes into the
output folder:

- ``runs/<net>-<pool>[-k<K>].json``: one file per run (the keys of ``ecp train --json`` plus
  ``settings``). A run whose file exists with the same settings is not repeated: an interrupted
  reproduce resumes where it stopped.
- ``tables.md``: Tables 3-6 in Markdown, with the paper's columns; ``table3.csv`` .. ``table6.csv``.
- ``figure5.png`` .. ``figure10.png``: test accuracy per epoch (the paper's convergence figures),
  when matplotlib is installed (otherwise they are skipped, and the tables are still written).

``--policies`` adds the mode policies (not in the paper): for each network, ECP trained with a new
K per batch (``mode="per-batch"``) and tested with K = 0 or with the ensemble over the 4 modes
(:data:`POLICY_RUNS`, recorded as ``runs/<net>-ecp-per-batch-eval0.json`` and
``...-ensemble.json``), and Table 7 comparing them with max pooling, fixed-K ECP and easy average
pooling. The 22 runs of the default matrix and Tables 3-6 are the same with or without it.

Times in the tables are totals over all epochs of a run; speedups are the baseline's time
divided by the method's. Tables 3, 5 and 6 use ECP with K = 0, as the paper does; their blocks
against average pooling add an "Easy Ave Pooling" row (not in the paper: the same function as
average pooling, so its accuracy should match it to the rounding of training).

A run that diverges (its loss becomes NaN or infinite) is recorded like any other, with
``diverged`` and ``diverged_at``; the other runs go on, the tables say "diverged" in its row
(no accuracy, no speedups), and the command ends with exit status 3
(:data:`ecp.experiments.train_cli.EXIT_DIVERGED`) after writing every file. With the same
settings a recorded diverged run is not repeated: it would diverge again.

Before anything is trained, the output folder is checked (a file in its place, an unwritable
place, a directory where an output file goes), and the leftovers of killed runs are removed:
``write_atomic``'s temporary files whose process is gone, and ``runs/*.tmp`` files older than
this run.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Callable

import numpy as np

from .._threads import get_num_threads, set_num_threads
from . import train, train_cli
from ._files import check_output_dir, check_output_file, clean_leftovers, write_atomic, write_json
from ._progress import BatchBar
from ._results_md import update_section

__all__ = ["RUNS", "POLICY_RUNS", "run_name", "method_label", "run_matrix", "load_runs", "build_tables",
           "tables_markdown",
           "write_tables", "write_figures"]

NETS_ORDER = ("two-conv", "one-conv")  # two-conv first: Tables 3 and 4 need only it
TABLE_ECP_MODE = 0  # the ECP row of Tables 3, 5 and 6 (the paper's shows K = 0)


def _matrix():
    runs = []
    for net in NETS_ORDER:
        runs.append((net, "max", None))
        runs.append((net, "avg", None))
        runs += [(net, "random", k) for k in range(4)]
        runs += [(net, "ecp", k) for k in range(4)]
        runs.append((net, "easy-avg", None))
    return tuple(runs)


#: The 22 runs: (net, pool, mode).
RUNS = _matrix()

#: The runs ``--policies`` adds: (net, pool, mode, eval_mode).
POLICY_RUNS = tuple((net, "ecp", "per-batch", ev) for net in NETS_ORDER for ev in (0, "ensemble"))

#: Settings that must match for a recorded run to count (the data folder and the thread count
#: do not change the results; the thread count is recorded for information).
SETTING_KEYS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "seed", "dtype",
                "eval_batch_size", "limit_train", "limit_test")

DEFAULT_EPOCHS = 10
QUICK = {"epochs": 1, "limit_train": 10000, "limit_test": 2000}

#: The files written into the output folder, besides ``runs/``.
OUTPUT_FILES = ("tables.md",) + tuple(f"table{n}.csv" for n in range(3, 7)) + \
    tuple(f"figure{n}.png" for n in range(5, 11)) + ("table7.csv",)


def run_name(net: str, pool: str, mode: int | str | None, eval_mode: int | str | None = None) -> str:
    """Name a run, as its record's file stem.

    Parameters
    ----------
    net : str
        ``"one-conv"`` or ``"two-conv"``.
    pool : str
        ``"max"``, ``"avg"``, ``"random"``, ``"ecp"`` or ``"easy-avg"``.
    mode : int, "per-batch" or None
        Mode K (None for max, average and easy average pooling).
    eval_mode : int, "ensemble" or None
        The evaluation mode of a per-batch run.

    Returns
    -------
    str
        ``"<net>-<pool>"``, with ``"-k<K>"`` appended when ``mode`` is a K: ``two-conv-max``,
        ``one-conv-ecp-k3``; per-batch runs: ``two-conv-ecp-per-batch-eval0``,
        ``two-conv-ecp-per-batch-ensemble``.
    """
    if mode == "per-batch":
        return f"{net}-{pool}-per-batch-" + ("ensemble" if eval_mode == "ensemble" else f"eval{eval_mode}")
    return f"{net}-{pool}" + ("" if mode is None else f"-k{mode}")


def method_label(pool: str, mode: int | str | None, eval_mode: int | str | None = None) -> str:
    """Label a method as the paper's tables do.

    Parameters
    ----------
    pool : str
        ``"max"``, ``"avg"``, ``"random"``, ``"ecp"`` or ``"easy-avg"``.
    mode : int, "per-batch" or None
        Mode K (ignored for max, average and easy average pooling).
    eval_mode : int, "ensemble" or None
        The evaluation mode of a per-batch run.

    Returns
    -------
    str
        ``"Max Pooling"``, ``"Ave Pooling"``, ``"Easy Ave Pooling"``, ``"Random k=K"``, ``"ECP k=K"``,
        ``"ECP per-batch, test k=K"`` or ``"ECP per-batch, test ensemble"``.
    """
    if mode == "per-batch":
        return (f"{'Random' if pool == 'random' else 'ECP'} per-batch, test "
                + ("ensemble" if eval_mode == "ensemble" else f"k={eval_mode}"))
    return {"max": "Max Pooling", "avg": "Ave Pooling", "easy-avg": "Easy Ave Pooling"}.get(pool) or \
        f"{'Random' if pool == 'random' else 'ECP'} k={mode}"


# ------------------------------------------------------------------------------------- runs

def _settings(config, limit_train, limit_test):
    return {
        "epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
        "lr_decay": config.lr_decay, "lr_min": config.lr_min, "optimizer": config.optimizer,
        "momentum": config.momentum, "seed": config.seed,
        "dtype": config.dtype, "eval_batch_size": config.eval_batch_size,
        "limit_train": limit_train, "limit_test": limit_test,
    }


def _read_run(path):
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(obj, dict) or "settings" not in obj or "epochs" not in obj:
        return None
    return obj


def _same_settings(recorded, wanted):
    got = recorded.get("settings", {})
    return all(got.get(k) == wanted[k] for k in SETTING_KEYS)


def run_matrix(base_config: train.TrainConfig, out_dir: str | os.PathLike, load_dataset: Callable, *,
               limit_train: int | None = None, limit_test: int | None = None, log: Callable[[str], object] = print,
               progress: Callable | None = None, runs: tuple = RUNS) -> dict[str, dict]:
    """Train every run of ``runs`` not yet recorded in ``out_dir/runs`` with these settings.

    Parameters
    ----------
    base_config : ecp.experiments.train.TrainConfig
        Everything but net, pool and mode.
    out_dir : str or os.PathLike
        The output folder; ``runs/`` is created in it and each trained run's record is written to
        ``runs/<name>.json`` as soon as it finishes (atomically), so an interrupted matrix resumes.
    load_dataset : callable ``() -> ecp.experiments.data.Dataset``
        Called once, and only if some run must be trained.
    limit_train, limit_test : int or None
        Recorded in the settings (the dataset must have been cut accordingly).
    log : callable
        Receives one line of text per run (skipped, retrained, or its result).
    progress : callable or None
        Called during training as ``progress(label, batches_done, batches_total, mean_loss)``;
        its ``clear()`` method, when it has one, is called after each run.
    runs : tuple, default RUNS
        (net, pool, mode) or (net, pool, mode, eval_mode) tuples: :data:`RUNS`, with
        ``--policies`` followed by :data:`POLICY_RUNS`.

    Returns
    -------
    dict of str to dict
        Run name (:func:`run_name`) -> run record, as written to ``runs/<name>.json``: the keys
        of :func:`ecp.experiments.train.run` plus ``settings``. Every run of ``runs`` is present.
    """
    runs_dir = os.path.join(os.fspath(out_dir), "runs")
    os.makedirs(runs_dir, exist_ok=True)
    _clean(out_dir, runs_dir)
    wanted = _settings(base_config, limit_train, limit_test)
    dataset = None
    records = {}
    width = len(str(len(runs)))
    for i, run in enumerate(runs, 1):
        net, pool, mode, eval_mode = (tuple(run) + (None,))[:4]
        name = run_name(*run)
        path = os.path.join(runs_dir, name + ".json")
        head = f"[{i:>{width}}/{len(runs)}] {name:<18}"
        recorded = _read_run(path) if os.path.exists(path) else None
        if recorded is not None and _same_settings(recorded, wanted):
            records[name] = recorded
            log(f"{head} recorded in {path}: skipped")
            continue
        if recorded is not None:
            log(f"{head} recorded with other settings: training again")
        elif os.path.exists(path):
            log(f"{head} {path} is unreadable: training again")
        if dataset is None:
            dataset = load_dataset()
        config = train.TrainConfig(**{**base_config.__dict__, "net": net, "pool": pool, "mode": mode,
                                      "eval_mode": eval_mode})
        hook = None if progress is None else (
            lambda epoch, done, total, loss: progress(f"{head} epoch {epoch}/{config.epochs}", done, total, loss))
        t0 = time.perf_counter()
        result = train.run(config, dataset, on_batch=hook)
        wall = time.perf_counter() - t0
        record = dict(result)
        record["settings"] = dict(wanted, threads=get_num_threads())
        write_json(path, record)
        records[name] = record
        if progress is not None and hasattr(progress, "clear"):
            progress.clear()
        if result["diverged"]:
            log(f"{head} DIVERGED: {train_cli.describe_divergence(result['diverged_at'])}; recorded, going on "
                f"({wall:.0f} s)")
            continue
        first = result["first_epoch_at_98"]
        log(f"{head} best {100 * result['best_test_accuracy']:.2f}%  98% at epoch "
            f"{first if first is not None else '-'}  train {_total(result, 'train_time_s'):.1f} s  "
            f"test {_total(result, 'test_time_s'):.2f} s  conv {_total(result, 'conv_time_s'):.1f} s  "
            f"({wall:.0f} s)")
    return records


def _clean(out_dir, runs_dir):
    """Remove what killed runs left: temporary files of dead writers, and ``runs/*.tmp`` files
    from before this process (no live ecp writes such names)."""
    clean_leftovers(out_dir)
    clean_leftovers(runs_dir, stale_suffix=".tmp")


def diverged_runs(records: dict[str, dict]) -> dict[str, dict]:
    """Pick the runs that diverged.

    Parameters
    ----------
    records : dict of str to dict
        Run name -> record.

    Returns
    -------
    dict of str to dict
        Run name -> ``diverged_at`` (epoch, batch, loss) of each run whose record says it
        diverged, in the order of ``records``.
    """
    return {name: rec.get("diverged_at") or {"epoch": "?", "batch": "?", "loss": "?"}
            for name, rec in records.items() if rec.get("diverged")}


def load_runs(out_dir: str | os.PathLike, runs: tuple = RUNS) -> dict[str, dict]:
    """Read the run records already in an output folder, whatever their settings.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The output folder of :func:`run_matrix`.
    runs : tuple, default RUNS
        The runs to look for, as :func:`run_matrix` takes them.

    Returns
    -------
    dict of str to dict
        Run name -> record, for every run of ``runs`` whose ``runs/<name>.json`` is readable
        JSON with ``settings`` and ``epochs``; missing and unreadable files are left out.
    """
    runs_dir = os.path.join(os.fspath(out_dir), "runs")
    found = {}
    for run in runs:
        name = run_name(*run)
        rec = _read_run(os.path.join(runs_dir, name + ".json"))
        if rec is not None:
            found[name] = rec
    return found


# ----------------------------------------------------------------------------------- tables

def _total(record, key):
    return sum(e[key] for e in record["epochs"])


def _diverged_cell(record):
    at = record.get("diverged_at") or {}
    return f"epoch {at.get('epoch', '?')} batch {at.get('batch', '?')}" if record.get("diverged") else None


def _row(record, label, baseline, block):
    best = record["best_test_accuracy"]
    best = None if best is None or record.get("diverged") else 100 * best
    row = {
        "block": block, "method": label, "pool": record["pool"], "mode": record["mode"],
        "epochs_to_98": record["first_epoch_at_98"], "epochs_run": len(record["epochs"]),
        "train_time_s": _total(record, "train_time_s"), "test_time_s": _total(record, "test_time_s"),
        "conv_time_s": _total(record, "conv_time_s"), "best_accuracy_pct": best,
        "train_speedup": None, "test_speedup": None, "conv_speedup": None, "accuracy_delta_pts": None,
        "diverged": _diverged_cell(record),
    }
    if baseline is not None and row["diverged"] is None and not baseline.get("diverged"):
        for key in ("train", "test", "conv"):
            mine, base = row[f"{key}_time_s"], _total(baseline, f"{key}_time_s")
            row[f"{key}_speedup"] = base / mine if mine > 0 else None
        row["accuracy_delta_pts"] = best - 100 * baseline["best_test_accuracy"]
    return row


def _block(records, net, baseline_pool, members, block):
    base = records[run_name(net, baseline_pool, None)]
    rows = [_row(base, method_label(baseline_pool, None), None, block)]
    for member in members:
        rows.append(_row(records[run_name(net, *member)], method_label(*member), base, block))
    return rows


def build_tables(records: dict[str, dict], policies: bool = False) -> dict[int, tuple[str, list[dict]]]:
    """Build the paper's Tables 3-6 (and with ``policies`` Table 7) from the run records.

    Parameters
    ----------
    records : dict of str to dict
        Run name -> record, as :func:`run_matrix` or :func:`load_runs` return; all 22 runs are
        needed (and with ``policies`` those of :data:`POLICY_RUNS`).
    policies : bool, default False
        Add Table 7: per network, against max pooling, ECP with K = 0, ECP per-batch tested with
        K = 0 and with the ensemble, and easy average pooling.

    Returns
    -------
    dict of int to (str, list of dict)
        Table number (3..6, 7 with ``policies``) -> (title, rows). Each row is a dict: block, method, pool, mode,
        epochs_to_98 (None: not reached), epochs_run, train_time_s, test_time_s, conv_time_s
        (totals over the run, seconds), best_accuracy_pct, and against the block's baseline
        (None on the baseline row): train_speedup, test_speedup, conv_speedup (baseline time /
        this time; None when this time is 0) and accuracy_delta_pts; diverged (None, or
        ``"epoch E batch B"`` where the run's loss became non-finite: its row then has no best
        accuracy, and it and the rows measured against it as a baseline no speedups).

    Raises
    ------
    ValueError
        Some run is missing (the message lists them).
    """
    missing = [run_name(*r) for r in RUNS + (POLICY_RUNS if policies else ()) if run_name(*r) not in records]
    if missing:
        raise ValueError(f"runs missing for the tables: {', '.join(missing)}")
    ecp = [("ecp", TABLE_ECP_MODE)]
    ecp_avg = ecp + [("easy-avg", None)]   # against average pooling, easy average pooling too
    mode_rows = [("random", k) for k in range(4)] + [("ecp", k) for k in range(4)]
    tables = {
        3: ("Table 3: Overall time performance of ECP vs Max / Average Pooling (two-conv)",
            _block(records, "two-conv", "max", ecp, "vs Max Pooling")
            + _block(records, "two-conv", "avg", ecp_avg, "vs Ave Pooling")),
        4: ("Table 4: Random Pooling and ECP vs Max / Average Pooling under Mode K (two-conv)",
            _block(records, "two-conv", "max", mode_rows, "vs Max Pooling")
            + _block(records, "two-conv", "avg", mode_rows, "vs Ave Pooling")),
        5: ("Table 5: ECP vs Max Pooling under various convolution layers",
            _block(records, "one-conv", "max", ecp, "1 conv layer")
            + _block(records, "two-conv", "max", ecp, "2 conv layers")),
        6: ("Table 6: ECP vs Average Pooling under various convolution layers",
            _block(records, "one-conv", "avg", ecp_avg, "1 conv layer")
            + _block(records, "two-conv", "avg", ecp_avg, "2 conv layers")),
    }
    if policies:
        members = ecp + [("ecp", "per-batch", 0), ("ecp", "per-batch", "ensemble"), ("easy-avg", None)]
        tables[7] = ("Table 7: Mode policies (not in the paper): ECP with one K, a new K per batch tested with "
                     "K = 0 or the ensemble of the 4 modes, and easy average pooling, vs Max Pooling",
                     _block(records, "one-conv", "max", members, "1 conv layer")
                     + _block(records, "two-conv", "max", members, "2 conv layers"))
    return tables


def _cell(value, speedup):
    text = f"{value:.2f}"
    return text if speedup is None else f"{text} ({speedup:.2f}x)"


def _table_md(title, rows):
    head = ("| | Method | Epochs to 98% | Training time (s) | Testing time (s) | Pure conv time (s) | "
            "Best accuracy (%) |")
    lines = [f"### {title}", "", head, "|" + "---|" * 7]
    last_block = None
    for r in rows:
        block = r["block"] if r["block"] != last_block else ""
        last_block = r["block"]
        epochs98 = str(r["epochs_to_98"]) if r["epochs_to_98"] is not None else f">{r['epochs_run']}"
        if r["diverged"] is not None:
            epochs98, acc = "-", f"diverged ({r['diverged']})"
        else:
            acc = f"{r['best_accuracy_pct']:.2f}"
        if r["accuracy_delta_pts"] is not None:
            acc += f" ({r['accuracy_delta_pts']:+.2f})"
        lines.append(f"| {block} | {r['method']} | {epochs98} | {_cell(r['train_time_s'], r['train_speedup'])} | "
                     f"{_cell(r['test_time_s'], r['test_speedup'])} | {_cell(r['conv_time_s'], r['conv_speedup'])} | "
                     f"{acc} |")
    return "\n".join(lines)


def tables_markdown(tables: dict[int, tuple[str, list[dict]]], settings: dict | None = None) -> str:
    """Render the tables as one Markdown document.

    Parameters
    ----------
    tables : dict
        As :func:`build_tables` returns.
    settings : dict or None
        Shown as a "Settings:" line under the title when not empty.

    Returns
    -------
    str
        A ``#`` title, the settings, a paragraph on how to read the tables, then one ``###``
        section per table in table order; ends with a newline.
    """
    parts = ["# EasyConvPooling: the paper's Tables 3-6, reproduced with ecp", ""]
    if settings:
        parts.append("Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + ".")
        parts.append("")
    parts.append("Times are totals over all epochs of a run (training pass; evaluating the test set; time "
                 "inside the convolution kernels, forward and backward, during training). Speedups are the "
                 "baseline's time divided by the method's; accuracy differences are in points. "
                 "\"Epochs to 98%\" is the first epoch with a test accuracy of at least 98% (\">E\": not "
                 f"within the E epochs run). Tables 3, 5 and 6 show ECP with K = {TABLE_ECP_MODE}, as the paper does. "
                 "All runs start from the same weights and see the data in the same order; Random k=K and ECP "
                 "k=K compute the same function, so their accuracies differ only through rounding (the two "
                 "convolutions sum in different orders), which training amplifies.")
    for number in sorted(tables):
        parts += ["", _table_md(*tables[number])]
    return "\n".join(parts) + "\n"


CSV_COLUMNS = ("block", "method", "pool", "mode", "epochs_to_98", "epochs_run", "train_time_s", "train_speedup",
               "test_time_s", "test_speedup", "conv_time_s", "conv_speedup", "best_accuracy_pct",
               "accuracy_delta_pts", "diverged")


def _table_csv(rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]))
                         for k in CSV_COLUMNS})
    return buf.getvalue()


def write_tables(tables: dict[int, tuple[str, list[dict]]], out_dir: str | os.PathLike,
                 settings: dict | None = None) -> list[str]:
    """Write the tables as Markdown and CSV files, each atomically.

    Parameters
    ----------
    tables : dict
        As :func:`build_tables` returns.
    out_dir : str or os.PathLike
        An existing folder.
    settings : dict or None
        Passed to :func:`tables_markdown`.

    Returns
    -------
    list of str
        The paths written: ``tables.md`` then ``table<N>.csv`` per table (columns
        :data:`CSV_COLUMNS`; empty cells for None; ``diverged`` is ``epoch E batch B`` for a run
        that diverged).
    """
    out_dir = os.fspath(out_dir)
    paths = []
    md = os.path.join(out_dir, "tables.md")
    write_atomic(md, tables_markdown(tables, settings))
    paths.append(md)
    for number, (_, rows) in sorted(tables.items()):
        path = os.path.join(out_dir, f"table{number}.csv")
        write_atomic(path, _table_csv(rows))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------- figures

def _figure_specs():
    ks = range(4)
    return {
        5: ("Random Pooling convergence under Mode K (two-conv)", "two-conv", [("random", k) for k in ks]),
        6: ("ECP convergence under Mode K (two-conv)", "two-conv", [("ecp", k) for k in ks]),
        7: ("Random Pooling vs Average / Max Pooling (one-conv)", "one-conv",
            [("max", None), ("avg", None)] + [("random", k) for k in ks]),
        8: ("Random Pooling vs Average / Max Pooling (two-conv)", "two-conv",
            [("max", None), ("avg", None)] + [("random", k) for k in ks]),
        9: ("ECP vs Average / Max Pooling (one-conv)", "one-conv",
            [("max", None), ("avg", None)] + [("ecp", k) for k in ks]),
        10: ("ECP vs Average / Max Pooling (two-conv)", "two-conv",
             [("max", None), ("avg", None)] + [("ecp", k) for k in ks]),
    }


def write_figures(records: dict[str, dict], out_dir: str | os.PathLike) -> list[str] | None:
    """Plot Figures 5-10 (test accuracy per epoch) as PNG files, each written atomically.

    Parameters
    ----------
    records : dict of str to dict
        Run name -> record; a curve whose run is missing is left out of its figure.
    out_dir : str or os.PathLike
        An existing folder.

    Returns
    -------
    list of str or None
        The paths written (``figure5.png`` .. ``figure10.png``), or None when matplotlib is not
        installed.
    """
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    paths = []
    for number, (title, net, members) in _figure_specs().items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for pool, mode in members:
            rec = records.get(run_name(net, pool, mode))
            if rec is None:
                continue
            epochs = [e["epoch"] for e in rec["epochs"]]
            acc = [100 * e["test_accuracy"] for e in rec["epochs"]]
            baseline = pool in ("max", "avg")
            ax.plot(epochs, acc, marker="o", markersize=3 if baseline else 2.5,
                    linewidth=2.0 if baseline else 1.2, linestyle="-" if baseline or pool == "ecp" else "--",
                    label=method_label(pool, mode))
        ax.axhline(98.0, color="0.6", linewidth=0.8, linestyle=":")
        ax.set_title(f"Figure {number}: {title}", fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = os.path.join(os.fspath(out_dir), f"figure{number}.png")
        write_atomic(path, lambda f, fig=fig: fig.savefig(f, format="png"))
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------- CLI

def add_parser(subparsers):
    """Add ``ecp reproduce`` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's experiments and write its Tables 3-6 and Figures 5-10",
        description=(
            "Train both networks with max, average, random (K=0..3), ECP (K=0..3) and easy average "
            "pooling -- 22 runs "
            "from one seed -- and write the paper's Tables 3-6 (Markdown and CSV) and convergence "
            "Figures 5-10 (PNG, with matplotlib) into --out. Resumable: a run already recorded in "
            "OUT/runs with the same settings is not repeated."
        ),
        epilog=f"--quick: {QUICK['epochs']} epoch on the first {QUICK['limit_train']} training and "
               f"{QUICK['limit_test']} test images (explicit --epochs / --limit-* win). Exit status: 0 done; 2 bad "
               f"input; {train_cli.EXIT_DIVERGED} some run diverged (its loss became NaN or infinite): the other "
               "runs still ran, every file is written and the tables mark the diverged rows; 130 interrupted.",
    )
    p.add_argument("--out", metavar="DIR", default="ecp-reproduce",
                   help="output folder (default: ./ecp-reproduce)")
    p.add_argument("--quick", action="store_true", help="a run of minutes: subset of the data, 1 epoch")
    train_cli.add_common_arguments(p, epochs_default=None,
                               epochs_help=f"training epochs per run (default: {DEFAULT_EPOCHS}; 1 with --quick)")
    p.add_argument("--results-md", metavar="PATH", default=None,
                   help="replace the `ecp reproduce` section of this Markdown file (e.g. docs/results.md) with "
                        "the tables, stamped with the commit, date, machine and command")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.add_argument("--policies", action="store_true",
                   help=f"also train ECP with a new K per batch, tested with K=0 and with the ensemble of the 4 modes "
                        f"({len(POLICY_RUNS)} more runs), and write Table 7; the other runs and tables are unchanged")
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    """Run ``ecp reproduce`` (the function ``add_parser`` sets as ``func``); return the exit code."""
    epochs = args.epochs
    limit_train, limit_test = args.limit_train, args.limit_test
    if args.quick:
        epochs = epochs if epochs is not None else QUICK["epochs"]
        limit_train = limit_train if limit_train is not None else QUICK["limit_train"]
        limit_test = limit_test if limit_test is not None else QUICK["limit_test"]
    elif epochs is None:
        epochs = DEFAULT_EPOCHS
    args.epochs = epochs
    base = train_cli.config_from_args(args, net="two-conv", pool="max", mode=None)
    out_dir = args.out
    # Refused before any training: an --out that is a file or unwritable, a directory where an
    # output file goes, a --results-md that is a folder or in a missing or unwritable one.
    check_output_dir(out_dir, "--out", OUTPUT_FILES)
    runs_dir = os.path.join(out_dir, "runs")
    runs = RUNS + (POLICY_RUNS if getattr(args, "policies", False) else ())
    if os.path.exists(runs_dir):
        check_output_dir(runs_dir, "--out", tuple(run_name(*r) + ".json" for r in runs))
    if args.results_md is not None:
        check_output_file(args.results_md, "--results-md")
    if args.threads is not None:
        set_num_threads(args.threads)
    os.makedirs(out_dir, exist_ok=True)
    out = sys.stdout
    bar = BatchBar(sys.stderr, enabled=not args.no_progress)

    def _log(line):
        bar.clear()
        print(line, file=out, flush=True)

    def _load():
        from . import data

        return data.load_mnist(data.resolve_data_dir(args.data), limit_train=limit_train, limit_test=limit_test)

    settings = _settings(base, limit_train, limit_test)
    _log(f"ecp reproduce: {len(runs)} runs, {epochs} epoch{'s' if epochs != 1 else ''} each, "
        f"{base.optimizer} lr {base.lr:g}{train_cli._describe_decay(base)}, batch {base.batch_size}, "
        f"seed {base.seed}, {base.dtype}, "
        f"{get_num_threads()} threads"
        + (f"; first {limit_train} training images" if limit_train else "")
        + (f", first {limit_test} test images" if limit_test else "") + f"; output in {out_dir}")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverging run: reported below
        records = run_matrix(base, out_dir, _load, limit_train=limit_train, limit_test=limit_test, log=_log,
                             progress=bar if bar.enabled else None, runs=runs)
    tables = build_tables(records, policies=len(runs) > len(RUNS))
    shown = {k: v for k, v in settings.items() if v is not None}
    paths = write_tables(tables, out_dir, shown)
    print("", file=out)
    print(tables_markdown(tables, shown), file=out)
    print("wrote " + ", ".join(paths), file=out)
    figures = write_figures(records, out_dir)
    if figures is None:
        print("matplotlib is not installed: figures skipped (pip install matplotlib)", file=out)
    else:
        print("wrote " + ", ".join(figures), file=out)
    if args.results_md is not None:
        body = tables_markdown(tables, shown).split("\n", 2)[2]  # without the document's title
        update_section(args.results_md, "ecp reproduce", body, argv=getattr(args, "argv", None))
        print(f"wrote the ecp reproduce section of {args.results_md}", file=out)
    diverged = diverged_runs(records)
    if diverged:
        where = "; ".join(f"{name} at epoch {at['epoch']}, batch {at['batch']}" for name, at in diverged.items())
        print(f"ecp reproduce: error: {len(diverged)} of {len(runs)} runs diverged (the loss became NaN or "
              f"infinite): {where}; the tables mark them", file=sys.stderr, flush=True)
        return train_cli.EXIT_DIVERGED
    return 0
