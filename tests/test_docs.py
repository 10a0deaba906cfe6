"""The examples in the docstrings and in README.md run and say what they claim."""
import doctest
import pathlib
import re

import pytest

import ecp
import ecp.conv
import ecp.pool

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", [ecp.conv, ecp.pool], ids=lambda m: m.__name__)
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
