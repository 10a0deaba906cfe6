"""The ``ecp`` command line: ``ecp bench``, ``ecp train``, ``ecp reproduce``, ``ecp data download``.

Each subcommand lives in its own module, which provides ``add_parser(subparsers)``; the parser it
adds sets ``func`` to the function that runs it (returning an exit code).
"""
import argparse
import os
import sys

from .. import __version__


def build_parser():
    from . import benchmark, data, reproduce, train

    parser = argparse.ArgumentParser(
        prog="ecp",
        description="EasyConvPooling: Random Pooling with Easy Convolution, as fast native kernels.",
    )
    parser.add_argument("--version", action="version", version=f"ecp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    benchmark.add_parser(sub)
    train.add_parser(sub)
    reproduce.add_parser(sub)
    data.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("ecp: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as exc:
        # Bad input, missing or corrupt files: one clear line, no traceback.
        # ECP_DEBUG=1 shows the traceback instead.
        if os.environ.get("ECP_DEBUG"):
            raise
        print(f"ecp {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
