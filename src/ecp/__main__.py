"""``python -m ecp``: the ``ecp`` command line."""
from .experiments.cli import console

console()
