"""Old import paths of moved modules still work for one release, with a FutureWarning."""
import importlib
import sys

import pytest

from ecp import _compat


@pytest.mark.parametrize("old, new", sorted(_compat.MOVED_MODULES.items()))
def test_moved_module_imports_with_a_future_warning(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(FutureWarning, match=f"{old} has moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    sys.modules.pop(old, None)


def test_from_import_of_a_moved_module():
    sys.modules.pop("ecp.optim", None)
    with pytest.warns(FutureWarning, match="ecp.optim has moved"):
        from ecp import optim
    from ecp.nn import optim as new
    assert optim is new
    sys.modules.pop("ecp.optim", None)


def test_unknown_submodule_still_fails():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ecp.no_such_module")
