"""The ``ecp`` command line: ``ecp bench``, ``ecp train``, ``ecp reproduce``, ``ecp data download``.

Each subcommand's module provides ``add_parser(subparsers)``; the parser it adds sets ``func`` to
the function that runs it (returning an exit code). Errors a user can fix (bad input, missing or
corrupt files, a missing optional package) end the command with one line on stderr and exit
status 2; ``ECP_DEBUG=1`` shows the traceback instead.
"""
import argparse
import os
import sys

from .. import __version__

__all__ = ["main", "console", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """Build the ``ecp`` argument parser with every subcommand.

    Returns
    -------
    argparse.ArgumentParser
        The parser; a parsed subcommand's namespace has ``func``, the function that runs it.
    """
    from . import download, reproduce, train_cli
    from .bench import cli as bench_cli

    parser = argparse.ArgumentParser(
        prog="ecp",
        description="EasyConvPooling: Random Pooling with Easy Convolution, as fast native kernels.",
    )
    parser.add_argument("--version", action="version", version=f"ecp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench_cli.add_parser(sub)
    train_cli.add_parser(sub)
    reproduce.add_parser(sub)
    download.add_parser(sub)
    return parser


def _group_worker() -> bool:
    """Whether this process is one worker of a group of several (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def console() -> None:
    """The ``ecp`` program (the console script and ``python -m ecp``): :func:`main`, then exit.

    A worker of a group of several (``WORLD_SIZE`` > 1) leaves through ``os._exit`` once its
    output is flushed: by then every file it wrote is closed and its process group destroyed,
    and skipping the interpreter's teardown keeps gloo's threads from aborting the process
    while PyTorch's objects are destroyed (SIGABRT, "terminate called without an active
    exception", which turned a finished run into a failed one).
    """
    code = main()
    if _group_worker():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the ``ecp`` command.

    Parameters
    ----------
    argv : list of str or None
        The arguments after the program name; None: ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: the subcommand's (0 on success), 2 after an error a user can fix
        (ValueError, TypeError, OSError, ImportError: one line on stderr, or the traceback with
        ``ECP_DEBUG`` set), 130 on Ctrl-C.

    Raises
    ------
    SystemExit
        From argparse: status 0 after ``--help`` or ``--version``, 2 for unparsable flags.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line, for the stamp of docs/results.md
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("ecp: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError) as exc:
        if os.environ.get("ECP_DEBUG"):
            raise
        print(f"ecp {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
