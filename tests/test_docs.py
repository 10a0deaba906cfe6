"""The examples in the docstrings and in README.md run and say what they claim."""
import doctest
import pathlib
import re

import pytest

import ecp
import ecp.activation
import ecp.conv
import ecp.pool
import ecp.testing

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", [ecp.conv, ecp.pool, ecp.activation, ecp.testing], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_readme_api_example_runs():
    text = README.read_text()
    block = re.search(r"## The API in a minute\s+```python\n(.*?)```", text, re.S)
    assert block, "README.md lost its API example"
    exec(compile(block.group(1), "README.md", "exec"), {})


def test_readme_names_the_public_api():
    text = README.read_text()
    for name in ("conv2d", "easy_conv2d", "neighbor_fill", "random_pool2d", "max_pool2d", "avg_pool2d"):
        assert hasattr(ecp, name) and name in text


PUBLIC = ([f"ecp.{n}" for n in ecp.__all__ if callable(getattr(ecp, n))]
          + [f"ecp.testing.{n}" for n in ecp.testing.__all__])
# numpydoc checks every public docstring passes: present, every parameter documented (and no
# other), with a type and a description, Returns documented, a one-line summary.
NUMPYDOC_CHECKS = {"GL08", "PR01", "PR02", "PR03", "PR04", "PR06", "PR07", "RT01", "RT03", "SS01", "YD01"}


@pytest.mark.parametrize("name", PUBLIC)
def test_public_docstrings_pass_numpydoc(name):
    validate = pytest.importorskip("numpydoc.validate").validate
    errors = [e for e in validate(name)["errors"] if e[0] in NUMPYDOC_CHECKS]
    assert not errors, errors


def test_all_lists_only_the_public_api():
    """Every name in ``__all__`` exists and is not private; ecp.testing is a public submodule."""
    for module in (ecp, ecp.conv, ecp.pool, ecp.activation, ecp.testing):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
            assert not name.startswith("_") or name == "__version__", (module.__name__, name)
    assert "testing" in ecp.__all__ and ecp.testing.__name__ == "ecp.testing"
