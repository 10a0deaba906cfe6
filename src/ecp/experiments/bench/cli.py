"""``ecp bench``: its flags, its progress line, the tables on stdout, ``--json`` and ``--results-md``."""
import sys

from .. import _args
from .._files import check_output_file, write_json
from .._progress import StatusLine
from .._results_md import update_section
from .contention import DEFAULT_CONTENTION_GEMM, format_contention, run_contention
from .report import format_header, format_report, format_shape, format_summary, format_torch_module
from .run import DEFAULT_GEMM_SIZE, DEFAULT_REPEATS, DEFAULT_WARMUP, gemm_dims, run_bench
from .shapes import _CUSTOM_FORMAT, DEFAULT_SHAPES, SHAPES, parse_shapes
from .verify import VerificationError

__all__ = ["add_parser"]


def _measure(args, label, run, format_lines):
    """Run ``run(progress)`` behind a progress line, print ``format_lines(record)`` and write
    ``--json``; the record, or None after a VerificationError (reported on stderr)."""
    progress = StatusLine(label, enabled=not args.quiet)
    try:
        record = run(progress)
    except VerificationError as exc:
        progress.clear()
        print(f"ecp bench: error: {exc}", file=sys.stderr)
        return None
    finally:
        progress.clear()
    print("\n".join(format_lines(record)))
    if args.json is not None:
        write_json(args.json, record, indent=1)
        print(f"\nwrote {args.json}")
    return record


def _run_contention(args, shapes):
    if args.results_md is not None:
        raise ValueError("--results-md does not take the --contention tables (use --json)")
    if args.json is not None:
        check_output_file(args.json, "--json")
    gemm = gemm_dims(args.gemm_size or DEFAULT_CONTENTION_GEMM, option="--gemm-size")
    if len(set(gemm)) != 1:
        raise ValueError(f"--gemm-size with --contention must be one size M (a square product), got {args.gemm_size!r}")
    record = _measure(args, "ecp bench --contention", lambda progress: run_contention(
        shapes, args.dtype, args.threads, args.repeats, warmup=args.warmup, mode=args.mode, gemm_size=gemm[0],
        use_torch=not args.no_torch, progress=progress), format_contention)
    return 0 if record is not None else 1


def _run_torch_module(args):
    from .torch_module import run_torch_module

    if args.results_md is not None:
        raise ValueError("--results-md does not take the --torch-module table (use --json)")
    if args.contention:
        raise ValueError("--torch-module and --contention are separate runs: give one")
    if args.json is not None:
        check_output_file(args.json, "--json")
    record = _measure(args, "ecp bench --torch-module", lambda progress: run_torch_module(
        args.threads, args.repeats, args.warmup, mode=args.mode, progress=progress), format_torch_module)
    return 0 if record is not None else 1


def _run(args):
    # Everything is checked before the first measurement: a bad flag costs no time.
    shapes = parse_shapes(args.shapes, option="--shapes")
    if args.torch_module:
        return _run_torch_module(args)
    if args.contention:
        return _run_contention(args, shapes)
    gemm = gemm_dims(args.gemm_size or DEFAULT_GEMM_SIZE, option="--gemm-size")
    if args.json is not None:
        check_output_file(args.json, "--json")
    if args.results_md is not None:
        check_output_file(args.results_md, "--results-md")
    printed_header = []

    def run(progress):
        def on_shape(rec, record):
            progress.clear()
            if not printed_header:
                print("\n".join(format_header(record)) + "\n")
                printed_header.append(True)
            print("\n".join(format_shape(rec, record)) + "\n", flush=True)

        return run_bench(shapes, args.dtype, args.threads, args.repeats, warmup=args.warmup, mode=args.mode,
                         gemm_size=gemm, use_torch=not args.no_torch, memory=not args.no_memory,
                         progress=progress, on_shape=on_shape)

    record = _measure(args, "ecp bench", run, format_summary)
    if record is None:
        return 1
    if args.results_md is not None:
        update_section(args.results_md, "ecp bench", "```text\n" + format_report(record) + "\n```\n",
                       argv=getattr(args, "argv", None))
        print(f"\nwrote the ecp bench section of {args.results_md}")
    return 0


def add_parser(subparsers):
    """Add the ``bench`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "bench",
        help="time the convolution kernels against SGEMM and PyTorch",
        description=(
            "Time full convolution and Easy Convolution (forward and backward), the ECP layer vs "
            "convolution + max-pool, and PyTorch's equivalents when installed, per layer shape; "
            "report ms, speedups, GFLOP/s, % of the SGEMM rate measured in the same run, and "
            "peak memory. Results are checked before they are timed."),
    )
    p.add_argument("--shapes", nargs="+", default=list(DEFAULT_SHAPES), metavar="SHAPE",
                   help=f"layer shapes: {', '.join(SHAPES)} (also comma-joined) or custom "
                        f"{_CUSTOM_FORMAT}, e.g. 8,16,32,32:32,3,3:1 (default: all four names)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", metavar="N", type=_args.positive_int, default=None,
                   help="threads for ecp, the BLAS and PyTorch (default: ecp.get_num_threads())")
    p.add_argument("--repeats", metavar="R", type=_args.positive_int, default=DEFAULT_REPEATS,
                   help=f"timed runs per kernel, median reported (default {DEFAULT_REPEATS})")
    p.add_argument("--warmup", metavar="W", type=_args.nonnegative_int, default=DEFAULT_WARMUP,
                   help=f"untimed calls first (default {DEFAULT_WARMUP})")
    p.add_argument("--mode", type=int, choices=range(4), default=3, metavar="K",
                   help="mode K of Easy Convolution, 0..3 (default 3)")
    p.add_argument("--gemm-size", default=None, metavar="M[,K,N]",
                   help=f"GEMM measured for the reference rate (default {DEFAULT_GEMM_SIZE})")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write a machine-readable record (timings, BLAS and thread setup)")
    p.add_argument("--results-md", metavar="PATH", default=None,
                   help="replace the `ecp bench` section of this Markdown file (e.g. docs/results.md) "
                        "with the tables, stamped with the commit, date, machine and command")
    p.add_argument("--contention", action="store_true",
                   help="time ecp (and PyTorch) on 1 vs the default threads: idle, beside a busy process "
                        "of its own, and right after a NumPy matrix product (--gemm-size, default "
                        f"{DEFAULT_CONTENTION_GEMM} here); prints the slowdown ratios")
    p.add_argument("--torch-module", action="store_true",
                   help="time a PyTorch training step (forward, backward, SGD) of the two-conv network and of a "
                        "VGG-like stack (3 blocks of conv3x3-ReLU-conv3x3-ReLU-maxpool, 64/128/256 channels, 32x32, "
                        "batch 64) as plain PyTorch and after ecp.torch.convert(mode=--mode), side by side, on the "
                        "CPU and on CUDA when available (needs PyTorch)")
    p.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=_run)
    return p
