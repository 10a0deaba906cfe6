"""Old import paths of moved modules still work for one release, with a FutureWarning."""
import importlib
import sys

import pytest

from ecp import _compat


def _forget(old):
    """Undo an earlier import of ``old`` (the module entry and the package attribute)."""
    sys.modules.pop(old, None)
    parent, _, child = old.rpartition(".")
    if hasattr(sys.modules[parent], child):
        delattr(sys.modules[parent], child)


@pytest.mark.parametrize("old, new", sorted(_compat.MOVED_MODULES.items()))
def test_moved_module_imports_with_a_future_warning(old, new):
    _forget(old)
    with pytest.warns(FutureWarning, match=f"{old} has moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    _forget(old)


def test_from_import_of_a_moved_module():
    _forget("ecp.optim")
    with pytest.warns(FutureWarning, match="ecp.optim has moved"):
        from ecp import optim
    from ecp.nn import optim as new
    assert optim is new
    _forget("ecp.optim")


def test_unknown_submodule_still_fails():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ecp.no_such_module")
