"""ecp.torch: parity with F.conv2d slicing, autograd, custom-op registration, compile, modules, convert()."""
import doctest
import io
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install \"ecp[torch]\")")
F = torch.nn.functional
nn = torch.nn

import ecp.torch as et  # noqa: E402
from ecp.torch import _ops, _stride2  # noqa: E402
from ecp.torch import functional as etf  # noqa: E402


def reference(x, w, b, mode, padding):
    y = F.conv2d(x, w, b, padding=padding)
    ho, wo = y.shape[2] // 2, y.shape[3] // 2
    return y[:, :, mode // 2::2, mode % 2::2][:, :, :ho, :wo]


def tol(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}


def random_case(rng, dtype):
    n, c, o = (int(v) for v in rng.integers(1, 5, 3))
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    ph, pw = (int(v) for v in rng.integers(0, 3, 2))
    h = int(rng.integers(max(kh - 2 * ph + 1, 1), 14))
    w = int(rng.integers(max(kw - 2 * pw + 1, 1), 14))
    g = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
    x = torch.randn(n, c, h, w, generator=g, dtype=dtype)
    wt = torch.randn(o, c, kh, kw, generator=g, dtype=dtype)
    b = torch.randn(o, generator=g, dtype=dtype)
    return x, wt, b, (ph, pw)


# ---- import ------------------------------------------------------------------------------------

def test_import_ecp_does_not_import_torch():
    code = "import sys, ecp; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_without_torch_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import ecp.torch\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert 'pip install "ecp[torch]"' in out


def test_docstring_examples():
    for module in (etf, et.modules, et.conversion):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ---- parity ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(6))
def test_easy_conv2d_matches_slicing(dtype, seed):
    rng = np.random.default_rng(seed)
    x, w, b, (ph, pw) = random_case(rng, dtype)
    for mode in range(4):
        for padding in ((ph, pw), ph):
            for bias in (b, None):
                y = et.easy_conv2d(x, w, bias, mode=mode, padding=padding)
                assert y.dtype == dtype
                torch.testing.assert_close(y, reference(x, w, bias, mode, padding), **tol(dtype))


@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_easy_conv2d_any_layout(layout):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 11, 13, generator=g)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
        w = torch.randn(5, 4, 3, 3, generator=g).to(memory_format=torch.channels_last)
    else:
        x = torch.randn(3, 4, 22, 13, generator=g)[:, :, ::2]
        w = torch.randn(5, 3, 4, 3, generator=g).transpose(1, 2)
    for mode in range(4):
        torch.testing.assert_close(et.easy_conv2d(x, w, None, mode, 1), reference(x, w, None, mode, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(4))
def test_stride2_formulation_matches_slicing(dtype, seed):
    """The plain-PyTorch path (what CUDA, MPS, bf16 and half run), checked on CPU."""
    x, w, b, (ph, pw) = random_case(np.random.default_rng(100 + seed), dtype)
    for mode in range(4):
        y = _stride2.easy_conv2d(x, w, b, mode // 2, mode % 2, ph, pw)
        torch.testing.assert_close(y, reference(x, w, b, mode, (ph, pw)), **tol(dtype))
        assert y.data_ptr() != 0 and y._base is not None  # a view of the convolution's output, not a copy


def test_other_dtypes_take_the_pytorch_path():
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(2, 3, 10, 9, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    for mode in range(4):
        y = et.easy_conv2d(x.bfloat16(), w.bfloat16(), None, mode, (1, 0))
        assert y.dtype == torch.bfloat16
        torch.testing.assert_close(y.float(), reference(x, w, None, mode, (1, 0)), rtol=0.05, atol=0.1)
        torch.testing.assert_close(et.random_pool2d(x.bfloat16(), mode), x.bfloat16()[:, :, mode // 2::2,
                                   mode % 2::2][:, :, :5, :4])


def test_padding_pairs_run_on_the_kernels():
    """Equal and unequal pairs alike run on ecp's kernels on CPU (never the PyTorch formulation)."""
    x, w = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3)
    calls = []
    original = etf._stride2.easy_conv2d
    try:
        etf._stride2.easy_conv2d = lambda *a: calls.append(a) or original(*a)
        for padding in ((1, 1), (1, 2), (0, 2)):
            y = et.easy_conv2d(x, w, padding=padding)
            ref = F.conv2d(x, w, padding=padding)[:, :, 0::2, 0::2]
            torch.testing.assert_close(y, ref[:, :, :y.shape[2], :y.shape[3]])
    finally:
        etf._stride2.easy_conv2d = original
    assert calls == [] and _ops.KERNELS_TAKE_PADDING_PAIRS


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eager_path_equals_the_custom_op(dtype):
    """Eager calls skip the custom op's dispatch (ecp.torch._ops.EagerEasyConv2d): same bits, same gradients."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 11, 10, generator=g, dtype=dtype)
    w = torch.randn(6, 4, 3, 3, generator=g, dtype=dtype)
    b = torch.randn(6, generator=g, dtype=dtype)
    outs = []
    for fn in (lambda *a: _ops.EagerEasyConv2d.apply(*a), lambda *a: torch.ops.ecp.easy_conv2d(*a)):
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        y = fn(xs, ws, bs, 2, 1, 0)
        y.backward(torch.ones_like(y))
        outs.append((y.detach(), xs.grad, ws.grad, bs.grad))
    for a, c in zip(*outs):
        assert torch.equal(a, c)
    assert etf._eager(x, torch.nn.Parameter(w), None)

    class Marked(torch.Tensor):
        pass

    assert not etf._eager(x.as_subclass(Marked))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_pool_and_fill_match_slicing(dtype):
    g = torch.Generator().manual_seed(3)
    for h, w in ((2, 2), (7, 9), (10, 5)):
        x = torch.randn(2, 3, h, w, generator=g, dtype=dtype)
        for mode in range(4):
            ref = x[:, :, mode // 2::2, mode % 2::2][:, :, :h // 2, :w // 2]
            assert torch.equal(et.random_pool2d(x, mode), ref)
            assert torch.equal(et.random_pool2d(x.transpose(2, 3), mode),
                               x.transpose(2, 3)[:, :, mode // 2::2, mode % 2::2][:, :, :w // 2, :h // 2])
        y = et.random_pool2d(x)
        for size in (None, (h, w)):
            fill = et.neighbor_fill(y, size)
            hh, ww = size or (2 * (h // 2), 2 * (w // 2))
            rows = torch.arange(hh).div(2, rounding_mode="floor").clamp(max=h // 2 - 1)
            cols = torch.arange(ww).div(2, rounding_mode="floor").clamp(max=w // 2 - 1)
            assert torch.equal(fill, y[:, :, rows][:, :, :, cols])
            assert torch.equal(_stride2.neighbor_fill(y, hh, ww), fill)


# ---- autograd and registration -----------------------------------------------------------------

def test_gradcheck_float64():
    g = torch.Generator().manual_seed(4)
    for mode, padding in ((0, 0), (1, 1), (2, (1, 2)), (3, 2)):
        x = torch.randn(2, 3, 7, 8, generator=g, dtype=torch.float64, requires_grad=True)
        w = torch.randn(4, 3, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
        b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, w, b: et.easy_conv2d(x, w, b, mode, padding), (x, w, b))
        assert torch.autograd.gradcheck(lambda x: et.random_pool2d(x, mode), (x,))
        y = torch.randn(2, 3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda y: et.neighbor_fill(y, (7, 8)), (y,))


def test_gradients_match_pytorch_and_skip_unneeded():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, 9, 10, generator=g, requires_grad=True)
    w = torch.randn(4, 2, 3, 3, generator=g, requires_grad=True)
    b = torch.randn(4, generator=g, requires_grad=True)
    et.easy_conv2d(x, w, b, 3, 1).square().sum().backward()
    grads = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    reference(x, w, b, 3, 1).square().sum().backward()
    for got, t in zip(grads, (x, w, b)):
        torch.testing.assert_close(got, t.grad, rtol=1e-4, atol=1e-4)
    xc = x.detach()
    w.grad = None
    et.easy_conv2d(xc, w, None, 0, 0).sum().backward()  # no dx wanted, no bias
    assert w.grad is not None and xc.grad is None


def test_opcheck():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 8, 7, generator=g, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, generator=g, requires_grad=True)
    b = torch.randn(4, generator=g, requires_grad=True)
    torch.library.opcheck(torch.ops.ecp.easy_conv2d.default, (x, w, b, 1, 1, 1))
    torch.library.opcheck(torch.ops.ecp.easy_conv2d.default, (x.double(), w.double(), None, 2, 0, 0))
    torch.library.opcheck(torch.ops.ecp.random_pool2d.default, (x, 3))
    torch.library.opcheck(torch.ops.ecp.neighbor_fill.default, (x, 17, 14))
    dy = torch.randn(2, 4, 4, 3, generator=g)
    torch.library.opcheck(torch.ops.ecp.easy_conv2d_backward.default, (dy, x.detach(), w.detach(), 1, 1, 1, True))
    torch.library.opcheck(torch.ops.ecp.random_pool2d_backward.default, (dy, 0, 9, 7))
    torch.library.opcheck(torch.ops.ecp.neighbor_fill_backward.default, (dy,))


def test_torch_compile_and_fx_see_one_op():
    torch._dynamo.reset()
    model = nn.Sequential(et.EasyConvPool2d(3, 8, 3, padding=1, mode=1), nn.ReLU(), et.RandomPool2d(2),
                          et.NeighborFill())
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    y = compiled(x)
    torch.testing.assert_close(y, model(x))
    y.sum().backward()
    assert model[0].weight.grad is not None and x.grad is not None
    exported = torch.export.export(model, (x.detach(),))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert {"ecp.easy_conv2d.default", "ecp.random_pool2d.default", "ecp.neighbor_fill.default"} <= targets
    assert not any("convolution" in t for t in targets)


# ---- modules -----------------------------------------------------------------------------------

def test_module_initialisation_is_conv2ds():
    torch.manual_seed(7)
    conv = nn.Conv2d(3, 5, (3, 2))
    torch.manual_seed(7)
    layer = et.EasyConvPool2d(3, 5, (3, 2), mode="random")
    assert torch.equal(layer.weight, conv.weight) and torch.equal(layer.bias, conv.bias)
    assert layer.k in range(4) and int(layer.mode) == layer.k
    assert f"mode={layer.k}" in repr(layer) and "mode=2" in repr(et.RandomPool2d(2))
    assert et.EasyConvPool2d(1, 1, 1, bias=False, mode=0).bias is None
    ks = {et.EasyConvPool2d(1, 1, 1).k for _ in range(40)}
    assert ks == {0, 1, 2, 3}


def test_state_dict_round_trip_keeps_the_mode():
    saved = io.BytesIO()
    model = nn.Sequential(et.EasyConvPool2d(2, 3, 3, mode=3), et.RandomPool2d(1))
    torch.save(model.state_dict(), saved)
    fresh = nn.Sequential(et.EasyConvPool2d(2, 3, 3, mode=0), et.RandomPool2d(0))
    fresh.load_state_dict(torch.load(io.BytesIO(saved.getvalue())))
    assert (fresh[0].k, fresh[1].k) == (3, 1)
    x = torch.randn(1, 2, 10, 10)
    assert torch.equal(fresh(x), model(x))
    assert "0.mode" in model.state_dict() and "1.mode" in model.state_dict()


def test_module_forward_matches_functional():
    layer = et.EasyConvPool2d(2, 3, 3, padding=(1, 2), mode=2, dtype=torch.float64)
    x = torch.randn(2, 2, 9, 8, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(x, layer.weight, layer.bias, 2, (1, 2)))


# ---- convert -----------------------------------------------------------------------------------

def _vgg_like():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.Dropout(), nn.AvgPool2d(2)),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),   # BN between: stays
        nn.Conv2d(8, 8, 3, stride=2), nn.MaxPool2d(2, 2, ceil_mode=True),               # strided: stays
        nn.Flatten(),
    )


def test_convert_sequential():
    torch.manual_seed(8)
    model = _vgg_like().eval()
    converted, report = et.convert(model, mode=1, return_report=True)
    assert converted is not model and isinstance(model[0], nn.Conv2d)   # not in place
    assert isinstance(converted[0], et.EasyConvPool2d) and isinstance(getattr(converted, "3")[0], et.EasyConvPool2d)
    assert torch.equal(converted[0].weight, model[0].weight) and converted[0].k == 1
    assert report.converted == [("0", "1", "2"), ("3.0", "3.1", "3.2", "3.3")]
    assert [(chain, reason.split(" ")[0]) for chain, reason in report.skipped] == [
        (("4", "5", "6", "7"), "BatchNorm2d"), (("8", "9"), "the")]
    assert "stride=(2, 2)" in report.skipped[1][1] and "BatchNorm2d" in str(report)
    x = torch.randn(2, 3, 32, 32)
    expected = model[0](x).relu()
    expected = et.random_pool2d(expected, 1)
    blk = model[3]
    expected = et.random_pool2d(F.leaky_relu(blk[0](expected), 0.1), 1)
    expected = model[9](model[8](model[7](model[6](model[5](model[4](expected)))))).flatten(1)
    torch.testing.assert_close(converted(x), expected)
    with pytest.warns(UserWarning, match="BatchNorm2d"):
        et.convert(model)
    same = et.convert(model, mode=0, inplace=True, return_report=True)[0]
    assert same is model and isinstance(model[0], et.EasyConvPool2d)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 8, 3, padding="same")
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = self.pool(torch.tanh(self.conv2(x)))
        y = self.conv3(x)
        x = F.avg_pool2d(y, 2, ceil_mode=True) + 0 * y.sum()   # output used twice: stays
        return self.fc(x.flatten(1))


def test_convert_fx_traced_model():
    torch.manual_seed(9)
    model = Net().eval()
    converted, report = et.convert(model, mode=2, return_report=True)
    assert isinstance(converted, torch.fx.GraphModule)
    assert isinstance(converted.conv1, et.EasyConvPool2d) and isinstance(converted.conv2, et.EasyConvPool2d)
    assert isinstance(converted.conv3, nn.Conv2d) and converted.conv2.padding == (1, 1)
    assert len(report.converted) == 2 and report.skipped[0][0][0] == "conv3"
    assert "also used" in report.skipped[0][1]
    x = torch.randn(2, 1, 28, 28)
    h = et.random_pool2d(F.relu(model.conv1(x)), 2)
    h = et.random_pool2d(torch.tanh(model.conv2(h)), 2)
    y = model.conv3(h)
    expected = model.fc((F.avg_pool2d(y, 2, ceil_mode=True) + 0 * y.sum()).flatten(1))
    torch.testing.assert_close(converted(x), expected)
    converted(x).sum().backward()
    assert converted.conv1.weight.grad is not None


def test_convert_untraceable_model_reports_and_keeps_sequentials():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))

        def forward(self, x):
            return self.body(x) if x.sum() > 0 else -self.body(x)

    converted, report = et.convert(Branchy(), mode=0, return_report=True)
    assert isinstance(converted.body[0], et.EasyConvPool2d)
    assert report.skipped and "torch.fx cannot trace" in report.skipped[0][1]


# ---- bad input ---------------------------------------------------------------------------------

def test_bad_input_names_the_argument():
    x, w = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3)
    cases = [
        (lambda: et.easy_conv2d(x[0], w), ValueError, "input must be a 4-D"),
        (lambda: et.easy_conv2d(x.numpy(), w), TypeError, "input must be a torch.Tensor"),
        (lambda: et.easy_conv2d(x.int(), w), TypeError, "input must have a floating-point"),
        (lambda: et.easy_conv2d(x, w.double()), TypeError, "weight must have the same dtype"),
        (lambda: et.easy_conv2d(x, w, torch.zeros(2)), ValueError, "bias must have shape"),
        (lambda: et.easy_conv2d(x, w, torch.zeros(3, device="meta")), ValueError, "bias must be on the device"),
        (lambda: et.easy_conv2d(x, w[:, :1]), ValueError, "weight has 1 input channels"),
        (lambda: et.easy_conv2d(x, w, mode=4), ValueError, "mode must be an integer in 0..3"),
        (lambda: et.easy_conv2d(x, w, mode=1.0), TypeError, "mode must be an integer"),
        (lambda: et.easy_conv2d(x, w, padding=-1), ValueError, "padding must be an integer >= 0"),
        (lambda: et.easy_conv2d(x, w, padding=(1, -1)), ValueError, r"padding\[1\]"),
        (lambda: et.easy_conv2d(x, w, padding=(1, 1, 1)), ValueError, "padding must be"),
        (lambda: et.easy_conv2d(x[:, :, :3, :8], w), ValueError, "too small to pool"),
        (lambda: et.random_pool2d(x[:, :, :1], 0), ValueError, "too small to pool"),
        (lambda: et.random_pool2d(x, -1), ValueError, "mode"),
        (lambda: et.neighbor_fill(x, (19, 16)), ValueError, "size must be"),
        (lambda: et.EasyConvPool2d(2, 3, 3, mode="max"), ValueError, "mode must be"),
        (lambda: et.EasyConvPool2d(2, 3, 0), ValueError, "kernel_size"),
        (lambda: et.RandomPool2d(5), ValueError, "mode"),
        (lambda: et.convert(object()), TypeError, "model must be"),
        (lambda: et.convert(nn.Sequential(), mode=16), ValueError, "mode must be an integer in 0..15"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


# ---- easy average pooling ----------------------------------------------------------------------

def avg_reference(x, w, b, padding):
    return F.avg_pool2d(F.conv2d(x, w, b, padding=padding), 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(6))
def test_easy_avg_conv2d_matches_conv_then_avg_pool(dtype, seed):
    x, w, b, padding = random_case(np.random.default_rng(100 + seed), dtype)
    want = avg_reference(x, w, b, padding)
    torch.testing.assert_close(et.easy_avg_conv2d(x, w, b, padding), want, **tol(dtype))
    torch.testing.assert_close(_stride2.easy_avg_conv2d(x, w, b, *padding), want, **tol(dtype))
    torch.testing.assert_close(et.easy_avg_conv2d(x, w, None, padding), avg_reference(x, w, None, padding),
                               **tol(dtype))


def test_easy_avg_conv2d_gradients_and_ops():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 9, 8, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: et.easy_avg_conv2d(*a, (1, 0)), (x, w, b))
    y = et.easy_avg_conv2d(x, w, b, 1)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((y * gy).sum(), (x, w, b))
    want = torch.autograd.grad((avg_reference(x, w, b, 1) * gy).sum(), (x, w, b))
    for got, ref in zip(grads, want):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    torch.library.opcheck(torch.ops.ecp.easy_avg_conv2d.default, (x.float(), w.float(), b.float(), 1, 0))
    torch.library.opcheck(torch.ops.ecp.easy_avg_conv2d.default, (x.detach(), w.detach(), None, 0, 2))
    torch.library.opcheck(torch.ops.ecp.easy_avg_conv2d_backward.default,
                          (gy.detach(), x.detach(), w.detach(), 1, 1, True))
    # other dtypes take the PyTorch formulation
    xb, wb = x.detach().bfloat16(), w.detach().bfloat16()
    torch.testing.assert_close(et.easy_avg_conv2d(xb, wb).float(), avg_reference(xb, wb, None, 0).float(),
                               rtol=0.05, atol=0.1)


def test_easy_avg_module():
    torch.manual_seed(3)
    layer = et.EasyConvPool2d(3, 5, 3, padding=1, pool="avg")
    assert layer.k is None and "mode" not in layer.state_dict() and repr(layer).endswith("pool='avg')")
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 5, 3, padding=1)
    torch.testing.assert_close(layer.weight, conv.weight)
    x = torch.randn(2, 3, 11, 10)
    torch.testing.assert_close(layer(x), F.avg_pool2d(conv(x), 2), rtol=1e-5, atol=1e-5)
    clone = et.EasyConvPool2d(3, 5, 3, padding=1, pool="avg")
    clone.load_state_dict(layer.state_dict())
    torch.testing.assert_close(clone(x), layer(x))
    with pytest.raises(ValueError, match="mode applies only"):
        et.EasyConvPool2d(3, 5, 3, mode=1, pool="avg")
    with pytest.raises(ValueError, match="pool must be"):
        et.EasyConvPool2d(3, 5, 3, pool="max")
    assert et.EasyConvPool2d(3, 5, 3, mode=2).k == 2   # random pooling unchanged
    exported = torch.export.export(nn.Sequential(layer, nn.ReLU()), (x,))
    assert "ecp.easy_avg_conv2d.default" in {str(n.target) for n in exported.graph.nodes}


def _bn(channels, seed):
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(channels, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(channels, generator=g))
        bn.running_mean.copy_(torch.randn(channels, generator=g))
        bn.running_var.copy_(torch.rand(channels, generator=g) + 0.5)
    return bn


def test_convert_avg_exact_folds_batchnorm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), _bn(6, 1), nn.Dropout(0.3), nn.AvgPool2d(2), nn.ReLU(),
                        nn.Conv2d(6, 4, 5, bias=False), nn.AvgPool2d(2, 2), nn.Flatten(), nn.Identity()).eval()
    x = torch.randn(2, 3, 17, 16)
    out, report = et.convert(net, avg="exact", return_report=True)
    assert len(report.converted) == 2 and not report.skipped
    assert [type(m).__name__ for m in out] == ["EasyConvPool2d", "Dropout", "ReLU", "EasyConvPool2d", "Flatten",
                                               "Identity"]
    assert out[0].pool == "avg" and out[0].bias is not None
    assert out[3].bias is None   # no BatchNorm: the conv's own Parameters
    torch.testing.assert_close(out[3].weight, net[5].weight, rtol=0, atol=0)
    torch.testing.assert_close(out(x), net(x), rtol=1e-5, atol=1e-5)
    # default: average pools become random pooling, and the BatchNorm chain is left
    out2, report2 = et.convert(net, mode=0, return_report=True)
    assert all(m.pool == "random" for m in out2 if isinstance(m, et.EasyConvPool2d))
    assert len(report2.skipped) == 1 and "BatchNorm2d" in report2.skipped[0][1]


def test_convert_avg_exact_refusals():
    bn_train = nn.Sequential(nn.Conv2d(3, 6, 3), _bn(6, 1), nn.AvgPool2d(2))
    _, report = et.convert(bn_train, avg="exact", return_report=True)
    assert not report.converted and "training mode" in report.skipped[0][1]
    relu = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AvgPool2d(2)).eval()
    _, report = et.convert(relu, avg="exact", return_report=True)
    assert not report.converted and "not linear" in report.skipped[0][1]
    # max pools still become random pooling under avg="exact"
    mx = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.MaxPool2d(2))
    out, report = et.convert(mx, mode=1, avg="exact", return_report=True)
    assert len(report.converted) == 1 and out[0].k == 1
    with pytest.raises(ValueError, match="avg must be"):
        et.convert(mx, avg="yes")


def test_convert_avg_exact_fx():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return F.avg_pool2d(self.drop(self.conv(x)), 2).relu()

    torch.manual_seed(1)
    net = Net().eval()
    x = torch.randn(2, 2, 10, 9)
    out, report = et.convert(net, avg="exact", return_report=True)
    assert len(report.converted) == 1 and out.conv.pool == "avg"
    torch.testing.assert_close(out(x), net(x), rtol=1e-5, atol=1e-5)


def test_torch_engine_builds_easy_avg_as_the_numpy_avg_net():
    import numpy as np

    from ecp.experiments.torch_train import build_torch_network
    from ecp.nn.models import build_network
    model = build_torch_network("two-conv", "easy-avg", seed=4, dtype="float64")
    assert [m.pool for m in model if isinstance(m, et.EasyConvPool2d)] == ["avg", "avg"]
    x = np.random.default_rng(0).random((3, 1, 28, 28))
    # (the torch engine's layers are built in float32, then cast: the weights carry float32 rounding)
    want = build_network("two-conv", "avg", seed=4, dtype=np.float64).eval()(x)
    torch.testing.assert_close(model(torch.from_numpy(x)).detach(), torch.from_numpy(want), rtol=1e-5, atol=1e-6)


# ---- mode policies -------------------------------------------------------------------------------

def _draws(module, x, n=12):
    seen = []
    module.train()
    for _ in range(n):
        y = module(x)
        seen.append(next(k for k in range(4) if torch.equal(y, etf.random_pool2d(x, k)))
                    if isinstance(module, et.RandomPool2d) else None)
    return seen


def test_torch_per_batch_draws_differ_and_follow_the_generator():
    x = torch.arange(2 * 16.0).reshape(1, 2, 4, 4)
    a = _draws(et.RandomPool2d("per-batch", generator=torch.Generator().manual_seed(7)), x)
    b = _draws(et.RandomPool2d("per-batch", generator=torch.Generator().manual_seed(7)), x)
    c = _draws(et.RandomPool2d("per-batch", generator=torch.Generator().manual_seed(8)), x)
    assert a == b and a != c and len(set(a)) > 1
    torch.manual_seed(3)
    d = _draws(et.RandomPool2d("per-batch"), x)   # default: seeded from torch's generator
    torch.manual_seed(3)
    assert _draws(et.RandomPool2d("per-batch"), x) == d
    m = et.RandomPool2d("per-batch", eval_mode=2).eval()
    assert torch.equal(m(x), etf.random_pool2d(x, 2))


def test_torch_per_batch_backward_uses_the_k_of_its_forward():
    torch.manual_seed(0)
    layer = et.EasyConvPool2d(3, 4, 3, padding=1, mode="per-batch", dtype=torch.float64,
                              generator=torch.Generator().manual_seed(1))
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    seen = set()
    for _ in range(6):
        layer.zero_grad()
        y = layer(x)
        k = next(k for k in range(4) if torch.allclose(y, reference(x, layer.weight, layer.bias, k, 1)))
        seen.add(k)
        layer(x)   # a later forward does not change the K of the first one's backward
        y.sum().backward()
        w = layer.weight.detach().clone().requires_grad_(True)
        reference(x, w, layer.bias.detach(), k, 1).sum().backward()
        torch.testing.assert_close(layer.weight.grad, w.grad)
    assert len(seen) > 1


def test_torch_ensemble_is_the_mean_of_the_four_fixed_k_outputs():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        et.EasyConvPool2d(1, 4, 5, mode="per-batch", eval_mode="ensemble"), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3), et.RandomPool2d("per-batch", eval_mode="ensemble"), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(6 * 5 * 5, 10)).double().eval()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    outs = []
    for k in range(4):
        fixed = torch.nn.Sequential(et.EasyConvPool2d(1, 4, 5, mode=k), torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3),
                                    et.RandomPool2d(k), torch.nn.ReLU(), torch.nn.Flatten(),
                                    torch.nn.Linear(6 * 5 * 5, 10)).double().eval()
        fixed.load_state_dict({n: (torch.tensor(k) if n.endswith("mode") else v)
                               for n, v in net.state_dict().items()})
        outs.append(fixed(x))
    ens = et.ensemble(net)
    torch.testing.assert_close(ens(x), torch.stack(outs).mean(0))
    assert all(m._ensemble_k is None for m in net.modules() if hasattr(m, "_ensemble_k"))
    with pytest.raises(RuntimeError, match="ecp.torch.ensemble"):
        net(x)
    # any model with random-pooling modules, a converted one too
    conv = et.convert(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5), torch.nn.MaxPool2d(2)).eval(), mode=0)
    assert et.ensemble(conv)(x.float()).shape == (3, 4, 12, 12)


def test_torch_ensemble_docstring_example():
    from ecp.torch import ensembling

    result = doctest.testmod(ensembling, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_torch_mode_policy_state_dict_repr_and_errors():
    a = et.EasyConvPool2d(2, 3, 3, mode="per-batch", eval_mode=2)
    assert repr(a) == "EasyConvPool2d(2, 3, kernel_size=(3, 3), padding=(0, 0), mode='per-batch', eval_mode=2)"
    assert list(a.state_dict()) == ["weight", "bias", "mode"] and int(a.mode) == 2
    b = et.EasyConvPool2d(2, 3, 3, mode=0)
    b.load_state_dict(a.state_dict())   # loads into a fixed-K module that evaluates the same
    x = torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(a.eval()(x), b.eval()(x))
    assert repr(et.RandomPool2d(1, eval_mode=3)) == "RandomPool2d(mode=1, eval_mode=3)"
    with pytest.raises(ValueError, match='eval_mode="ensemble" needs mode="per-batch"'):
        et.RandomPool2d(1, eval_mode="ensemble")
    with pytest.raises(ValueError, match="eval_mode must be"):
        et.RandomPool2d("per-batch", eval_mode="mean")
    with pytest.raises(ValueError, match="eval_mode"):
        et.EasyConvPool2d(2, 3, 3, mode="per-batch", eval_mode=4)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        et.RandomPool2d("per-batch", generator=3)
    with pytest.raises(ValueError, match="generator applies only"):
        et.RandomPool2d(1, generator=torch.Generator())
    with pytest.raises(ValueError, match='apply only to pool="random"'):
        et.EasyConvPool2d(2, 3, 3, pool="avg", eval_mode=1)
    with pytest.raises(ValueError, match="no ecp.torch random-pooling module"):
        et.ensemble(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        et.ensemble(lambda x: x)


@pytest.mark.mnist
def test_torch_engine_per_batch_ensemble(mnist_path):
    from ecp.experiments import data, torch_train, train

    config = train.TrainConfig(net="one-conv", pool="ecp", mode="per-batch", eval_mode="ensemble", epochs=1)
    result = torch_train.run(config, data.load_mnist(mnist_path, limit_train=1000, limit_test=300))
    assert (result["mode"], result["eval_mode"]) == ("per-batch", "ensemble")
    assert result["epochs"][0]["test_accuracy"] > 0.3
