"""``python -m ecp``: the ``ecp`` command line."""
import sys

from .experiments.cli import main

sys.exit(main())
