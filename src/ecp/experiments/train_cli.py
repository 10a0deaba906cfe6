"""``ecp train``: its flags, the progress bar, the per-epoch lines and ``--json``.

The flags shared with ``ecp reproduce`` are added by :func:`add_common_arguments`; the training
itself is :func:`ecp.experiments.train.run`.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import numpy as np

from .._threads import get_num_threads, set_num_threads
from ..nn import models
from . import _args
from ._files import check_output_file, write_json
from ._progress import BatchBar
from .train import OPTIMIZERS, TrainConfig, run

if TYPE_CHECKING:
    from .data import Dataset

__all__ = ["EXIT_DIVERGED", "ENGINES", "add_parser", "add_common_arguments", "config_from_args", "load_data",
           "describe_divergence", "main"]

#: Exit status of ``ecp train`` / ``ecp reproduce`` when a run diverged (2 stays bad input).
EXIT_DIVERGED = 3

#: ``--engine``: ecp's NumPy layer stack, or PyTorch modules (:mod:`ecp.experiments.torch_train`).
ENGINES = ("numpy", "torch")


def _format_epoch(record: dict, epochs: int) -> str:
    """The line printed after an epoch."""
    return (f"epoch {record['epoch']}/{epochs}  loss {record['train_loss']:.4f}  "
            f"test accuracy {100 * record['test_accuracy']:.2f}%  train {record['train_time_s']:.2f} s  "
            f"test {record['test_time_s']:.2f} s"
            + (f"  conv {record['conv_time_s']:.2f} s" if record["conv_time_s"] is not None else ""))


def _describe_modes(modes: list, eval_modes: list | None = None) -> str:
    """``", mode K=1"`` (one K for every layer), per-layer Ks, or ``""`` without random pooling;
    with the evaluation mode when it differs from the training mode."""
    if not modes:
        return ""
    if modes[0] == "per-batch" and len(set(modes)) == 1:
        s = ", mode per-batch"
    else:
        s = f", mode K={modes[0]}" if len(set(modes)) == 1 else f", mode K={modes} (per layer)"
    if eval_modes and list(eval_modes) != list(modes):
        s += f", eval {eval_modes[0]}" if len(set(eval_modes)) == 1 else f", eval {eval_modes} (per layer)"
    return s


def _describe_decay(config: TrainConfig) -> str:
    """' x0.5/epoch (min 1e-05)', or '' for a constant rate."""
    return f" x{config.lr_decay:g}/epoch (min {config.lr_min:g})" if config.lr_decay != 1 else ""


def describe_divergence(at: dict) -> str:
    """Say where a run diverged.

    Parameters
    ----------
    at : dict
        A result's ``diverged_at``: ``epoch``, ``batch`` and ``loss``.

    Returns
    -------
    str
        ``"the loss became nan at epoch 1, batch 17"``.
    """
    return f"the loss became {at['loss']} at epoch {at['epoch']}, batch {at['batch']}"


def _describe_run(config: TrainConfig, modes: list, eval_modes: list | None = None) -> str:
    """One line: network, pooling, modes and training settings."""
    return (f"{config.net} / {config.pool}{_describe_modes(modes, eval_modes)}; {config.optimizer} lr {config.lr:g}"
            f"{_describe_decay(config)}"
            f"{f' momentum {config.momentum:g}' if config.momentum else ''}, batch {config.batch_size}, "
            f"seed {config.seed}, {config.dtype}, {get_num_threads()} threads")



def _mode_arg(text: str) -> int | str:
    """argparse type for --mode: an integer 0..3, 'random' or 'per-batch'."""
    if text in ("random", "per-batch"):
        return text
    if text in ("0", "1", "2", "3"):
        return int(text)
    raise argparse.ArgumentTypeError(f"expected 0, 1, 2, 3 or random, or per-batch, got {text!r}")


def _eval_mode_arg(text: str) -> int | str:
    """argparse type for --eval-mode: an integer 0..3 or 'ensemble'."""
    if text == "ensemble":
        return text
    if text in ("0", "1", "2", "3"):
        return int(text)
    raise argparse.ArgumentTypeError(f"expected 0, 1, 2, 3 or ensemble, got {text!r}")




def add_common_arguments(p: argparse.ArgumentParser, *, epochs_default: int | None,
                         epochs_help: str | None = None) -> None:
    """Add the flags shared by ``ecp train`` and ``ecp reproduce``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    epochs_default : int or None
        Default of ``--epochs`` (None lets the command choose later).
    epochs_help : str or None
        Help text of ``--epochs``; None: one that states ``epochs_default``.
    """
    p.add_argument("--epochs", type=_args.positive_int, default=epochs_default, metavar="E",
                   help=epochs_help or f"training epochs (default: {epochs_default})")
    p.add_argument("--batch-size", type=_args.positive_int, default=50, metavar="B",
                   help="training batch size (default: 50, the paper's)")
    p.add_argument("--lr", type=_args.positive_float, default=1e-3,
                   help="learning rate (default: 0.001, the paper's)")
    p.add_argument("--lr-decay", type=_args.decay_float, default=0.5, metavar="G",
                   help="multiply the learning rate by G after every epoch (default: 0.5; 1: constant)")
    p.add_argument("--lr-min", type=_args.nonnegative_float, default=1e-5, metavar="LR",
                   help="the decay stops at this rate (default: 1e-5)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                   help="adam (default) or sgd (plain SGD with the paper's batch 50 and lr 0.001)")
    p.add_argument("--paper-settings", action="store_true",
                   help="the paper's bare settings: plain SGD, batch 50, constant lr 0.001 (overrides "
                        "--optimizer, --batch-size, --lr, --lr-decay and --momentum)")
    p.add_argument("--momentum", type=_args.momentum_float, default=0.0,
                   help="SGD momentum (default: 0, plain SGD)")
    p.add_argument("--seed", type=_args.nonnegative_int, default=0,
                   help="seeds the weights, the random modes and the data order (default: 0)")
    p.add_argument("--data", metavar="DIR",
                   help="folder with the MNIST files (default: $ECP_DATA_DIR)")
    p.add_argument("--threads", type=_args.positive_int, metavar="N",
                   help="threads for the kernels and BLAS (default: all cores)")
    p.add_argument("--limit-train", type=_args.positive_int, metavar="N",
                   help="use only the first N training images (quick runs)")
    p.add_argument("--limit-test", type=_args.positive_int, metavar="N",
                   help="use only the first N test images (quick runs)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type (default: float32)")
    p.add_argument("--eval-batch-size", type=_args.positive_int, default=1000, metavar="B",
                   help="batch size for evaluating the test set (default: 1000)")


def add_parser(subparsers):
    """Add ``ecp train`` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "train",
        help="train one of the paper's networks on MNIST, timing it like the paper",
        description=(
            "Train the paper's one-conv or two-conv network on MNIST with max, average, random "
            "(full conv + random pooling), ECP (easy conv + random pooling) or easy average (conv + "
            "average pooling as one stride-2 conv) pooling. Each epoch "
            "reports the training loss, the test accuracy, the training pass time, the test time "
            "and the time inside the convolution kernels (the paper's PureConvTime)."
        ),
        epilog=("Defaults: Adam, lr 0.001 halved after every epoch (down to 1e-5), batch 50. The paper "
                "gives batch 50 and lr 0.001 but no optimiser or schedule: --paper-settings trains with "
                "plain SGD and those numbers, constant. Data: --data DIR or ECP_DATA_DIR; get MNIST "
                "with `ecp data download DIR`. Exit status: 0 done; 2 bad input (a flag, a missing or "
                f"corrupt data file, an unwritable --json); {EXIT_DIVERGED} the loss became NaN or infinite: "
                "training stopped there, and --json is still written, with diverged true and diverged_at "
                "naming the epoch and batch; 130 interrupted."),
    )
    p.add_argument("--net", choices=models.NETS, required=True, help="the network (paper's Tables 1 and 2)")
    p.add_argument("--pool", choices=models.POOLS, required=True,
                   help="max, avg, random (full conv then random pooling), ecp (easy conv) or easy-avg (conv and "
                        "average pooling as one stride-2 conv: avg's function at less cost)")
    p.add_argument("--mode", type=_mode_arg, metavar="{0,1,2,3,random,per-batch}",
                   help="mode K of random / ecp pooling (default: random, drawn once per layer from the seed); "
                        "per-batch: a new K per layer for every training batch")
    p.add_argument("--eval-mode", type=_eval_mode_arg, metavar="{0,1,2,3,ensemble}",
                   help="mode K of random / ecp pooling when testing (default: the training K; 0 for --mode "
                        "per-batch); ensemble (--mode per-batch only): the average of the logits over the 4 modes, "
                        "every layer taking the same K in each pass (4x the test cost)")
    add_common_arguments(p, epochs_default=5)
    p.add_argument("--json", metavar="PATH",
                   help="write the results as JSON to PATH: net, pool, mode (the K used, or per-batch; a list of "
                        "per-layer K when they differ; null for max/avg/easy-avg), eval_mode (the K of testing, or "
                        "ensemble; null for max/avg/easy-avg), epochs (per epoch: epoch, train_time_s, "
                        "test_time_s, conv_time_s, train_loss, test_accuracy), best_test_accuracy (0..1), "
                        "first_epoch_at_98 (or null), diverged (true/false), diverged_at (null, or the epoch, "
                        "batch and loss where the loss became NaN or infinite); strict JSON: no NaN")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    g = p.add_argument_group(
        "PyTorch engine",
        "--engine torch trains the same networks (same initial weights, modes and data order for a seed) as "
        "torch.nn + ecp.torch modules; the JSON gets engine, device and world_size, and conv_time_s is null. "
        "--nproc N starts N data-parallel workers (DistributedDataParallel: gloo on CPU, NCCL on CUDA) on this "
        "machine, each on its shard of every batch (the global batch stays --batch-size); rank 0 prints and "
        "writes --json; when one worker fails the others are stopped. Under torchrun (RANK, WORLD_SIZE, "
        "MASTER_ADDR, MASTER_PORT set) the command is one worker of torchrun's group: see docs/torch.md.")
    g.add_argument("--engine", choices=ENGINES, default="numpy",
                   help="numpy: ecp's own layer stack (default); torch: PyTorch modules")
    g.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="torch engine: where to train (default: cpu)")
    g.add_argument("--nproc", type=_args.positive_int, default=None, metavar="N",
                   help="torch engine: data-parallel worker processes on this machine (default: 1)")
    g.add_argument("--timeout", type=_args.positive_float, default=600.0, metavar="S",
                   help="torch engine, several workers: seconds a worker waits for the others (rendezvous, "
                        "each gradient exchange) before the group fails (default: 600)")
    p.set_defaults(func=main)
    return p


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """Build the training configuration from parsed flags.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags of ``ecp train`` or ``ecp reproduce`` (those of
        :func:`add_common_arguments`; ``net``, ``pool`` and ``mode`` default to two-conv, ecp
        and None when absent).
    **overrides
        Fields of :class:`~ecp.experiments.train.TrainConfig` set last, over the flags.

    Returns
    -------
    TrainConfig
        The validated configuration, with ``--paper-settings`` (plain SGD, batch 50, constant lr
        0.001, no momentum) applied over the individual flags.

    Raises
    ------
    ValueError, TypeError
        A field is out of range (from :meth:`TrainConfig.validate`).
    """
    fields = dict(
        net=getattr(args, "net", "two-conv"), pool=getattr(args, "pool", "ecp"), mode=getattr(args, "mode", None),
        eval_mode=getattr(args, "eval_mode", None),
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay,
        lr_min=args.lr_min, optimizer=args.optimizer, momentum=args.momentum, seed=args.seed,
        dtype=args.dtype, eval_batch_size=args.eval_batch_size,
    )
    if getattr(args, "paper_settings", False):
        fields.update(optimizer="sgd", batch_size=50, lr=1e-3, lr_decay=1.0, momentum=0.0)
    fields.update(overrides)
    return TrainConfig(**fields).validate()


def load_data(args: argparse.Namespace) -> Dataset:
    """Load MNIST as the flags say.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags; ``data`` (the folder, else ``$ECP_DATA_DIR``), ``limit_train`` and
        ``limit_test`` are read.

    Returns
    -------
    ecp.experiments.data.Dataset
        The uint8 images and the labels, cut to the limits.

    Raises
    ------
    FileNotFoundError
        No folder is given, or the MNIST files are not in it.
    ValueError
        A file is corrupt.
    """
    from . import data

    return data.load_mnist(data.resolve_data_dir(args.data), limit_train=args.limit_train,
                           limit_test=args.limit_test)


def _torch_setup(args: argparse.Namespace):
    """The torch engine's place and run arguments; (None, None) in the launcher of ``--nproc N`` workers."""
    import importlib.util

    from . import distributed

    if importlib.util.find_spec("torch") is None:
        raise ImportError('--engine torch needs PyTorch, which is not installed: pip install "ecp[torch]"')
    world = distributed.world_from_env()
    device = args.device or "cpu"
    if world is None:
        if (args.nproc or 1) > 1:
            if device == "cuda":
                from .torch_train import resolve_device

                resolve_device(device, distributed.World(0, args.nproc, 0, args.nproc))
            return None, None
        world = distributed.World()
    elif args.nproc is not None and args.nproc != world.size:
        raise ValueError(f"--nproc {args.nproc} disagrees with WORLD_SIZE={world.size} set by the launcher "
                         "(under torchrun, leave --nproc out)")
    from .torch_train import default_threads

    threads = args.threads if args.threads is not None else (default_threads(world) if world.size > 1 else None)
    return world, {"device": device, "world": world, "timeout_s": args.timeout, "threads": threads}


def _launch_workers(args: argparse.Namespace) -> int:
    """Start ``--nproc`` copies of this very command as one group; their common exit status."""
    from . import distributed

    argv = getattr(args, "argv", None)
    if argv is None:
        raise ValueError("--nproc needs the command line (run it through ecp.experiments.cli.main)")
    try:
        codes = distributed.launch([sys.executable, "-m", "ecp", *argv], args.nproc)
    except distributed.WorkerFailed as exc:
        print(f"ecp train: error: {exc}", file=sys.stderr, flush=True)
        return exc.status if exc.status > 0 else 1
    return codes[0]


def main(args: argparse.Namespace) -> int:
    """Run ``ecp train``: train, print each epoch and the summary, write ``--json``.

    Parameters
    ----------
    args : argparse.Namespace
        Flags parsed by the parser :func:`add_parser` adds.

    Returns
    -------
    int
        The exit status: 0, or :data:`EXIT_DIVERGED` when the loss became NaN or infinite
        (training stops at that batch, one line on stderr names the epoch and the batch, and
        ``--json`` is written all the same). Errors are raised; :func:`ecp.experiments.cli.main`
        turns them into status 2.

    Raises
    ------
    ValueError, TypeError
        A bad flag value, or a ``--json`` path that is a folder, lies in a missing folder or an
        unwritable one, before any training.
    FileNotFoundError
        The MNIST files are missing.
    """
    config = config_from_args(args)
    engine = getattr(args, "engine", "numpy")
    if engine != "torch":
        for flag, value in (("--device", getattr(args, "device", None)), ("--nproc", getattr(args, "nproc", None))):
            if value is not None:
                raise ValueError(f"{flag} needs --engine torch (got --engine {engine})")
    if args.json:
        check_output_file(args.json, "--json")  # refused before the data is even read
    world = run_kwargs = None
    if engine == "torch":
        world, run_kwargs = _torch_setup(args)
        if world is None:   # the launcher of --nproc N workers
            load_data(args)   # a missing data file is one error here, not one per worker
            return _launch_workers(args)
    elif args.threads is not None:
        set_num_threads(args.threads)
    dataset = load_data(args)
    reporting = world is None or world.rank == 0
    out = sys.stdout
    bar = BatchBar(sys.stderr, enabled=not args.no_progress and reporting)

    def _on_start(net):
        if not reporting:
            return
        where = "" if run_kwargs is None else (f"; torch engine on {run_kwargs['device']}, "
                                               f"{world.size} worker{'s' if world.size > 1 else ''}")
        run = _describe_run(config, net.modes, getattr(net, "eval_modes", None))
        print(f"ecp train: {run}{where}; {len(dataset.train_labels)} training / "
              f"{len(dataset.test_labels)} test images", file=out, flush=True)

    def _on_batch(epoch, done, total, loss):
        bar(f"epoch {epoch}/{config.epochs}", done, total, loss)

    def _on_epoch(record):
        if not reporting:
            return
        bar.clear()
        print(_format_epoch(record, config.epochs), file=out, flush=True)

    if run_kwargs is None:
        train_run = run
    else:
        from . import torch_train

        def train_run(*a, **kw):
            return torch_train.run(*a, **kw, **run_kwargs)

    # A diverging run overflows on its way to the non-finite loss it is stopped at: that loss
    # is reported once below, not as NumPy's warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = train_run(config, dataset, on_start=_on_start, on_batch=_on_batch if bar.enabled else None,
                           on_epoch=_on_epoch)
    bar.clear()
    if not reporting:
        return EXIT_DIVERGED if result["diverged"] else 0
    if result["best_test_accuracy"] is not None:
        first = result["first_epoch_at_98"]
        print(f"best test accuracy {100 * result['best_test_accuracy']:.2f}%; first epoch >= 98%: "
              f"{first if first is not None else 'none'}", file=out, flush=True)
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}", file=out, flush=True)
    if result["diverged"]:
        print(f"ecp train: error: {describe_divergence(result['diverged_at'])}: training stopped (the run "
              f"diverged; try a smaller --lr than {config.lr:g})", file=sys.stderr, flush=True)
        return EXIT_DIVERGED
    return 0
