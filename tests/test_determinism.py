"""Deterministic mode: under ECP_DETERMINISTIC=1 / ecp.set_deterministic(True) the work plan, and so the
result bits, depend on the shapes alone, not on the machine's core count; without it the plan follows the cores."""
import numpy as np
import pytest

import ecp
from ecp import _dispatch, _plans

# (x shape, w shape, padding): the paper's conv1 and conv2 and a 3x3 layer (BLAS dW), batches large
# enough that the item count depends on the cores.
SHAPES = [((50, 1, 28, 28), (20, 1, 5, 5), 0), ((24, 20, 12, 12), (50, 20, 5, 5), 0),
          ((12, 16, 14, 14), (32, 16, 3, 3), 1)]
CORES = (2, 3, 16)


@pytest.fixture(autouse=True)
def _restore():
    saved = _dispatch.thresholds
    yield
    ecp.set_deterministic(False)
    _dispatch.thresholds = saved
    _plans.cache_clear()


def _plans_and_bits(monkeypatch, cores, flag, x_shape, w_shape, padding):
    monkeypatch.setattr(_dispatch, "_cores", lambda: cores)
    ecp.set_deterministic(flag)
    t = _dispatch.thresholds
    full_hw = (x_shape[2] + 2 * padding - w_shape[2] + 1, x_shape[3] + 2 * padding - w_shape[3] + 1)
    plan = (_dispatch.plan_forward(x_shape, w_shape, "f", full_hw, full_hw[1], 1, t),
            _dispatch.plan_forward(x_shape, w_shape, "f", full_hw, full_hw[1] // 2, 2, t),
            _dispatch.plan_backward(x_shape, w_shape, "f", full_hw, 1, t),
            _dispatch.plan_backward(x_shape, w_shape, "f", full_hw, 2, t))
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    y = ecp.conv2d(x, w, b, padding=padding)
    ye = ecp.easy_conv2d(x, w, b, mode=3, padding=padding)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dye = rng.standard_normal(ye.shape).astype(np.float32)
    grads = ecp.conv2d_backward(dy, x, w, padding=padding) + ecp.easy_conv2d_backward(dye, x, w, mode=3,
                                                                                      padding=padding)
    return plan, [a.tobytes() for a in (y, ye, *grads)]


@pytest.mark.parametrize("x_shape, w_shape, padding", SHAPES)
def test_deterministic_plan_and_bits_ignore_the_cores(monkeypatch, x_shape, w_shape, padding):
    runs = [_plans_and_bits(monkeypatch, c, True, x_shape, w_shape, padding) for c in CORES]
    for plan, bits in runs[1:]:
        assert plan == runs[0][0]
        assert bits == runs[0][1]
    assert runs[0][0][2][3] == _dispatch.DETERMINISTIC_CORES   # the dW slots


@pytest.mark.parametrize("x_shape, w_shape, padding", SHAPES)
def test_default_plan_follows_the_cores(monkeypatch, x_shape, w_shape, padding):
    plans = {c: _plans_and_bits(monkeypatch, c, False, x_shape, w_shape, padding)[0] for c in CORES}
    for c, plan in plans.items():
        assert plan[2][3] == c and plan[3][3] == c    # one dW slot per core
        for _kernel, items, *_ in plan:
            assert items % c == 0 or items == x_shape[0]


def test_set_deterministic_replaces_the_table_and_checks_its_argument():
    before = _dispatch.thresholds
    ecp.set_deterministic(True)
    assert _dispatch.deterministic() is True
    assert _dispatch.thresholds is not before and _dispatch.thresholds.cores == _dispatch.DETERMINISTIC_CORES
    ecp.set_deterministic(False)
    assert _dispatch.deterministic() is False and _dispatch.thresholds.cores == _dispatch._cores()
    with pytest.raises(TypeError, match="flag must be a bool, got int"):
        ecp.set_deterministic(1)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False),
                                             ("off", False)])
def test_environment_variable(monkeypatch, value, expected):
    monkeypatch.setenv("ECP_DETERMINISTIC", value)
    assert _dispatch._env_deterministic() is expected


def test_bad_environment_variable_names_it(monkeypatch):
    monkeypatch.setenv("ECP_DETERMINISTIC", "maybe")
    with pytest.raises(ValueError, match="ECP_DETERMINISTIC must be 1 or 0.*got 'maybe'"):
        _dispatch._env_deterministic()
