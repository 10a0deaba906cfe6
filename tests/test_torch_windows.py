"""Pooling windows in ``ecp.torch``: the functional ops (kernels and the plain-PyTorch fallback)
against PyTorch's convolution + pooling, gradients (gradcheck), the modules' windows and mode
policies over p^2 modes, and ``convert()`` of MaxPool2d / AvgPool2d windows."""
import re

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install \"ecp[torch]\")")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import ecp.torch as et  # noqa: E402
from ecp.torch import _stride2  # noqa: E402

WINDOWS = [(p, s) for p in range(1, 5) for s in range(1, p + 1)]


def _inputs(seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 13, 12, generator=g, dtype=dtype)
    w = torch.randn(4, 3, 3, 2, generator=g, dtype=dtype)
    b = torch.randn(4, generator=g, dtype=dtype)
    return x, w, b


@pytest.mark.parametrize("p,s", WINDOWS)
def test_functional_ops_every_window_match_pytorch(p, s):
    x, w, b = _inputs(p * 10 + s)
    full = F.conv2d(x, w, b, padding=(1, 0))
    ho, wo = (full.shape[2] - p) // s + 1, (full.shape[3] - p) // s + 1
    kw = dict(pool_size=p, pool_stride=s)
    for k in range(p * p):
        want = full[:, :, k // p::s, k % p::s][:, :, :ho, :wo]
        for got in (et.easy_conv2d(x, w, b, k, (1, 0), **kw),
                    _stride2.easy_conv2d_window(x, w, b, k, p, s, 1, 0)):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(et.random_pool2d(full, k, **kw), want)
        torch.testing.assert_close(_stride2.random_pool2d_window(full, k, p, s), want)
    want = F.avg_pool2d(full, p, s)
    for got in (et.easy_avg_conv2d(x, w, b, (1, 0), **kw), _stride2.easy_avg_conv2d_window(x, w, b, p, s, 1, 0)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p,s", [(3, 2), (3, 3), (4, 3), (2, 1)])
def test_functional_ops_gradcheck(p, s):
    x, w, b = _inputs(p + s)
    x, w, b = x[:1, :2, :9, :8].clone(), w[:2, :2].clone(), b[:2].clone()
    for t in (x, w, b):
        t.requires_grad_(True)
    kw = dict(pool_size=p, pool_stride=s)
    assert torch.autograd.gradcheck(lambda a, c, d: et.easy_conv2d(a, c, d, p * p - 1, 1, **kw), (x, w, b))
    assert torch.autograd.gradcheck(lambda a, c, d: et.easy_avg_conv2d(a, c, d, (0, 1), **kw), (x, w, b))
    assert torch.autograd.gradcheck(lambda a: et.random_pool2d(a, 1, **kw), (x,))
    # the custom ops (tracing and compiling take them): the same gradients as the eager path
    y = torch.ops.ecp.easy_conv2d(x, w, b, 2, 1, 1, p, s)
    gy = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, w, b), gy)
    want = torch.autograd.grad(et.easy_conv2d(x, w, b, 2, 1, **kw), (x, w, b), gy)
    for g, r in zip(got, want):
        assert torch.equal(g, r)


def test_custom_ops_with_windows_pass_opcheck():
    x, w, b = _inputs(3, torch.float32)
    x.requires_grad_(True)
    torch.library.opcheck(torch.ops.ecp.easy_conv2d.default, (x, w, b, 4, 1, 1, 3, 2))
    torch.library.opcheck(torch.ops.ecp.easy_avg_conv2d.default, (x, w, b, 0, 1, 3, 3))
    torch.library.opcheck(torch.ops.ecp.random_pool2d.default, (x, 7, 4, 1))


def test_window_errors_name_the_argument():
    x, w, b = _inputs(4)
    cases = [
        (lambda: et.easy_conv2d(x, w, mode=9, pool_size=3, pool_stride=2), ValueError,
         "mode must be an integer in 0..8"),
        (lambda: et.easy_conv2d(x, w, pool_size=5), ValueError, "pool_size must be an integer in 1..4"),
        (lambda: et.easy_conv2d(x, w, pool_size=3, pool_stride=4), ValueError,
         "pool_stride must be an integer in 1..3"),
        (lambda: et.easy_avg_conv2d(x, w, pool_size=2.0), TypeError, "pool_size must be an integer"),
        (lambda: et.random_pool2d(x, 0, pool_size=3, pool_stride=0), ValueError, "pool_stride"),
        (lambda: et.random_pool2d(x[:, :, :2], 0, pool_size=3, pool_stride=1), ValueError,
         "too small to pool with a 3x3"),
        (lambda: et.easy_conv2d(x[:, :, :4], w, pool_size=4, pool_stride=1), ValueError, "pool_size=4"),
        (lambda: et.EasyConvPool2d(3, 4, 3, mode=9, pool_size=3), ValueError, "mode must be an integer in 0..8"),
        (lambda: et.EasyConvPool2d(3, 4, 3, pool="avg", pool_size=3, pool_stride=4), ValueError, "pool_stride"),
        (lambda: et.RandomPool2d(0, eval_mode=16, pool_size=4, pool_stride=4), ValueError,
         "eval_mode must be an integer in 0..15"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


@pytest.mark.parametrize("p,s", [(3, 2), (2, 1), (4, 4)])
def test_modules_with_windows(p, s):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 14, 14, dtype=torch.float64)
    layer = et.EasyConvPool2d(3, 4, 3, padding=1, mode=p * p - 1, dtype=torch.float64, pool_size=p, pool_stride=s)
    assert repr(layer).endswith(f"mode={p * p - 1}, pool_size={p}, pool_stride={s})")
    full = F.conv2d(x, layer.weight, layer.bias, padding=1)
    k = p * p - 1
    ho, wo = (14 - p) // s + 1, (14 - p) // s + 1
    torch.testing.assert_close(layer(x), full[:, :, k // p::s, k % p::s][:, :, :ho, :wo])
    avg = et.EasyConvPool2d(3, 4, 3, padding=1, pool="avg", dtype=torch.float64, pool_size=p, pool_stride=s)
    assert "pool='avg', pool_size=" in repr(avg)
    torch.testing.assert_close(avg(x), F.avg_pool2d(F.conv2d(x, avg.weight, avg.bias, padding=1), p, s))
    pool = et.RandomPool2d(k, pool_size=p, pool_stride=s)
    torch.testing.assert_close(pool(full), full[:, :, k // p::s, k % p::s][:, :, :ho, :wo])
    # the state_dict's mode loads back within 0..p^2-1
    other = et.RandomPool2d(0, pool_size=p, pool_stride=s)
    other.load_state_dict(pool.state_dict())
    assert other.k == k


def test_per_batch_and_ensemble_over_nine_modes():
    torch.manual_seed(1)
    net = nn.Sequential(et.EasyConvPool2d(1, 2, 3, mode="per-batch", eval_mode="ensemble", dtype=torch.float64,
                                          generator=torch.Generator().manual_seed(3), pool_size=3, pool_stride=2),
                        nn.Flatten())
    x = torch.randn(2, 1, 11, 11, dtype=torch.float64)
    layer = net[0]
    seen = set()
    for _ in range(80):   # training forwards draw K in 0..8
        y = net(x)
        matches = [k for k in range(9)
                   if torch.equal(y, et.easy_conv2d(x, layer.weight, layer.bias, k, pool_size=3,
                                                    pool_stride=2).flatten(1))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(range(9))
    net.eval()
    with pytest.raises(RuntimeError, match="ensemble"):
        net(x)
    want = sum(et.easy_conv2d(x, layer.weight, layer.bias, k, pool_size=3, pool_stride=2).flatten(1)
               for k in range(9)) / 9
    torch.testing.assert_close(et.ensemble(net)(x), want)


@pytest.mark.parametrize("p,s", WINDOWS)
def test_convert_max_and_avg_pool_windows(p, s):
    torch.manual_seed(p * 10 + s)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(p, s),
                        nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.AvgPool2d(p, s), nn.Flatten()).double().eval()
    with torch.no_grad():
        net[4].running_mean.uniform_(-1, 1)
        net[4].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 2, 30, 29, dtype=torch.float64)
    k = p * p - 1
    converted, report = et.convert(net, mode=k, avg="exact", return_report=True)
    assert len(report.converted) == 2 and not report.skipped
    assert (converted[0].pool_size, converted[0].pool_stride, converted[0].k) == (p, s, k)
    h = F.relu(net[0](x))
    h = h[:, :, k // p::s, k % p::s][:, :, :(30 - p) // s + 1, :(29 - p) // s + 1]
    torch.testing.assert_close(converted(x), net[6](net[5](net[4](net[3](h)))), rtol=1e-12, atol=1e-12)


def test_convert_leaves_other_pools_and_says_why():
    def chain(pool):
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), pool)
    cases = [(nn.MaxPool2d(3, 2, padding=1), "padding=1"), (nn.MaxPool2d(3, 2, ceil_mode=True), "ceil_mode"),
             (nn.MaxPool2d(2, dilation=2), "dilation=2"), (nn.MaxPool2d(5), "kernel_size=5"),
             (nn.AvgPool2d(2, 3), "stride=3"), (nn.MaxPool2d((2, 3)), r"kernel_size=\(2, 3\)"),
             (nn.AvgPool2d(3, (1, 2)), r"stride=\(1, 2\)")]
    for pool, why in cases:
        converted, report = et.convert(chain(pool), return_report=True)
        assert not report.converted and len(report.skipped) == 1
        assert re.search(why, report.skipped[0][1]), report.skipped[0][1]
        assert type(converted[2]) is type(pool)
    # a fixed K outside a window's modes: that chain stays (named), the others convert
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3), nn.MaxPool2d(3, 1))
    converted, report = et.convert(net, mode=5, return_report=True)
    assert report.converted == [("2", "3")]
    assert "mode=5 is outside 0..3" in report.skipped[0][1]


def test_convert_traced_forward_with_function_pools():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return F.max_pool2d(torch.relu(self.conv(x)), 3, 2)

    torch.manual_seed(2)
    net = Net().double()
    converted, report = et.convert(net, mode=8, return_report=True)
    assert len(report.converted) == 1
    x = torch.randn(1, 1, 12, 12, dtype=torch.float64)
    torch.testing.assert_close(converted(x), torch.relu(net.conv(x))[:, :, 2::2, 2::2][:, :, :4, :4])
