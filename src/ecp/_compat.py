"""Old import paths of modules that moved, kept for one release with a FutureWarning.

ecp 0.2 split the package by role (see docs/architecture.md): the network stack went to
``ecp.nn`` and the command-line tools to ``ecp.experiments``. ``import ecp.optim`` and the like
still work until ecp 0.3: a finder on ``sys.meta_path`` maps each old name to the module that
now holds it (the same module object, so state and ``isinstance`` checks are shared).
"""
import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED_MODULES = {
    "ecp.optim": "ecp.nn.optim",
    "ecp.models": "ecp.nn.models",
    "ecp.train": "ecp.experiments.train",
    "ecp.benchmark": "ecp.experiments.bench",
    "ecp.reproduce": "ecp.experiments.reproduce",
    "ecp.data": "ecp.experiments.data",
    "ecp.cli": "ecp.experiments.cli",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new_name):
        self.new_name = new_name

    def create_module(self, spec):
        warnings.warn(
            f"{spec.name} has moved to {self.new_name}; the old import path is removed in ecp 0.3",
            FutureWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.new_name)

    def exec_module(self, module):
        """Nothing to run: ``create_module`` returned the already imported new module."""


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new_name = MOVED_MODULES.get(fullname)
        if new_name is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new_name))


def install():
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
