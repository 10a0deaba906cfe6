"""The network layer: gradient checks (central differences, float64) of every layer and of the
paper's networks, ECP == full conv + random pooling, optimizers, seeding, errors."""
import dataclasses

import numpy as np
import pytest

import ecp
from ecp import nn
from ecp.nn import optim
from ecp.nn.models import NETS, POOLS, build_network, seed_streams
from gradcheck import numerical_grad

F64 = np.float64


@pytest.fixture(autouse=True)
def one_thread():
    """These tests make thousands of calls on tiny arrays, where threads only add overhead (and
    a lot of it on a busy machine); the kernels' threading has its own tests."""
    with ecp.num_threads(1):
        yield


def rng(seed=0):
    return np.random.default_rng(seed)


def numeric_grad(f, arr, indices, h=1e-6):
    """Central differences of the scalar f() with respect to arr.flat[i] for i in indices."""
    return numerical_grad(f, arr, eps=h, indices=indices)


def sample(size, count, seed=1):
    return np.sort(rng(seed).choice(size, size=min(size, count), replace=False))


def check_layer(layer, x, *, count=60, rtol=1e-6, atol=1e-8):
    """Gradient check of a layer: input and every parameter, loss = sum(forward(x) * R)."""
    y = layer(x.copy())
    r = rng(7).standard_normal(y.shape)

    def loss():
        return float(np.sum(layer(x.copy()) * r))

    layer(x.copy())
    dx = layer.backward(r.copy())
    grads = {k: v.copy() for k, v in layer.grads.items()}
    if dx is not None:
        idx = sample(x.size, count)
        np.testing.assert_allclose(dx.reshape(-1)[idx], numeric_grad(loss, x, idx), rtol=rtol, atol=atol)
    for name, p in layer.params.items():
        idx = sample(p.size, count)
        np.testing.assert_allclose(grads[name].reshape(-1)[idx], numeric_grad(loss, p, idx),
                                   rtol=rtol, atol=atol, err_msg=f"param {name}")
    return dx


# ------------------------------------------------------------------------- layer gradients

@pytest.mark.parametrize("padding", [0, 1, 2, (0, 1), (2, 1)])
def test_conv2d_gradients(padding):
    layer = nn.Conv2d(3, 4, 3, padding=padding, rng=1, dtype=F64)
    layer.params["b"][:] = rng(2).standard_normal(4)
    check_layer(layer, rng(3).standard_normal((2, 3, 7, 6)))


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, (1, 0), [0, 2]])
def test_easy_conv_pool_gradients(mode, padding):
    layer = nn.EasyConvPool2d(2, 3, 3, mode=mode, padding=padding, rng=1, dtype=F64)
    layer.params["b"][:] = rng(2).standard_normal(3)
    check_layer(layer, rng(3).standard_normal((2, 2, 9, 8)))


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("padding, size", [(0, (9, 8)), (1, (7, 10)), (2, (6, 5)), ((0, 2), (7, 6)),
                                           ((1, 0), (8, 9))])
def test_easy_conv_pool_equals_conv_then_random_pool(mode, padding, size):
    """The fused layer against Conv2d + RandomPool2d with the same weights (odd maps included)."""
    x = rng(3).standard_normal((3, 2) + size)
    easy = nn.EasyConvPool2d(2, 4, 3, mode=mode, padding=padding, rng=9, dtype=F64)
    conv, pool = nn.Conv2d(2, 4, 3, padding=padding, rng=9, dtype=F64), nn.RandomPool2d(mode)
    np.testing.assert_array_equal(easy.params["w"], conv.params["w"])
    y = easy.forward(x)
    np.testing.assert_allclose(y, pool.forward(conv.forward(x)), rtol=1e-12, atol=1e-12)
    dy = rng(4).standard_normal(y.shape)
    np.testing.assert_allclose(easy.backward(dy), conv.backward(pool.backward(dy)), rtol=1e-12, atol=1e-12)
    for name in ("w", "b"):
        np.testing.assert_allclose(easy.grads[name], conv.grads[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [nn.Conv2d, nn.EasyConvPool2d])
def test_conv_layers_take_padding_as_an_int_or_a_pair(cls):
    """``padding`` an int or a pair (ph, pw): kept as given (a list as a tuple), shown by repr, the
    layer equal to the functional API with that padding; bad ones refused naming ``padding``."""
    extra = {"mode": 1} if cls is nn.EasyConvPool2d else {}
    x = rng(3).standard_normal((2, 2, 9, 8))
    for padding, kept in ((1, 1), (np.int64(2), 2), ((0, 2), (0, 2)), ([2, 1], (2, 1)), ((1, 1), (1, 1))):
        layer = cls(2, 3, 3, padding=padding, rng=1, dtype=F64, **extra)
        assert layer.padding == kept and type(layer.padding) is type(kept)
        assert f"padding={kept}," in repr(layer)
        w, b = layer.params["w"], layer.params["b"]
        want = (ecp.easy_conv2d(x, w, b, mode=1, padding=kept) if extra else ecp.conv2d(x, w, b, padding=kept))
        np.testing.assert_array_equal(layer.forward(x), want)
        dy = rng(4).standard_normal(want.shape)
        dx = layer.backward(dy)
        grads = (ecp.easy_conv2d_backward(dy, x, w, mode=1, padding=kept) if extra
                 else ecp.conv2d_backward(dy, x, w, padding=kept))
        for got, ref in zip((dx, layer.grads["w"], layer.grads["b"]), grads):
            np.testing.assert_array_equal(got, ref)
    assert repr(cls(2, 3, 3, padding=(0, 2), rng=1, **extra)).startswith(
        f"{cls.__name__}(2, 3, 3, {'mode=1, ' if extra else ''}padding=(0, 2), dtype=float32")
    for bad, error in ((-1, ValueError), ((1, -1), ValueError), ((1, 2, 3), ValueError), ([1], ValueError),
                       (1.5, TypeError), ((1, 0.5), TypeError), (None, TypeError), ("1", TypeError)):
        with pytest.raises(error, match="^padding must be an integer"):
            cls(2, 3, 3, padding=bad, rng=1, **extra)


def test_conv_input_grad_false_skips_dx_but_not_weights():
    x = rng(3).standard_normal((2, 1, 8, 8))
    for cls, kw in ((nn.Conv2d, {}), (nn.EasyConvPool2d, {"mode": 2})):
        a = cls(1, 3, 3, rng=5, dtype=F64, input_grad=False, **kw)
        b = cls(1, 3, 3, rng=5, dtype=F64, **kw)
        dy = rng(4).standard_normal(a.forward(x).shape)
        b.forward(x)
        assert a.backward(dy) is None
        assert b.backward(dy).shape == x.shape
        np.testing.assert_array_equal(a.grads["w"], b.grads["w"])
        np.testing.assert_array_equal(a.grads["b"], b.grads["b"])


@pytest.mark.parametrize("shape", [(2, 3, 6, 8), (1, 2, 7, 5)])
def test_pool_gradients(shape):
    x = rng(3).standard_normal(shape)
    for layer in [nn.MaxPool2d(), nn.AvgPool2d()] + [nn.RandomPool2d(k) for k in range(4)]:
        check_layer(layer, x)


def test_relu_gradients_and_inplace():
    x = rng(3).standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    check_layer(nn.ReLU(), x)
    # In place: same values, the input is overwritten, dy too.
    ref = nn.ReLU()
    inplace = nn.ReLU(inplace=True)
    xi = x.copy()
    y = inplace.forward(xi)
    assert y is xi
    np.testing.assert_array_equal(y, ref.forward(x))
    dy = rng(5).standard_normal(x.shape)
    expected = ref.backward(dy.copy())
    dyi = dy.copy()
    got = inplace.backward(dyi)
    assert got is dyi
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(x, x)  # non-inplace left x alone
    np.testing.assert_array_equal(ref.forward(x), np.maximum(x, 0))


def test_flatten_and_linear_gradients():
    x = rng(3).standard_normal((4, 2, 3, 3))
    fl = nn.Flatten()
    assert fl.forward(x).shape == (4, 18)
    check_layer(fl, x)
    for init in ("he", "lecun"):
        lin = nn.Linear(18, 5, rng=1, dtype=F64, init=init)
        lin.params["b"][:] = rng(2).standard_normal(5)
        check_layer(lin, rng(4).standard_normal((4, 18)))
    # init scales: He std sqrt(2/fan_in), LeCun sqrt(1/fan_in)
    big_he = nn.Linear(400, 300, rng=1, dtype=F64, init="he").params["w"]
    big_lc = nn.Linear(400, 300, rng=1, dtype=F64, init="lecun").params["w"]
    assert abs(big_he.std() - np.sqrt(2 / 400)) < 0.02 * np.sqrt(2 / 400)
    assert abs(big_lc.std() - np.sqrt(1 / 400)) < 0.02 * np.sqrt(1 / 400)


def test_softmax_cross_entropy_value_and_gradient():
    logits = rng(3).standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2], dtype=np.uint8)
    loss = nn.SoftmaxCrossEntropy()
    value = loss.forward(logits, labels)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])), rel=1e-12)
    grad = loss.backward()
    num = numeric_grad(lambda: nn.SoftmaxCrossEntropy().forward(logits, labels), logits, range(logits.size))
    np.testing.assert_allclose(grad.reshape(-1), num, rtol=1e-6, atol=1e-9)
    # Large logits stay finite.
    assert np.isfinite(nn.SoftmaxCrossEntropy().forward(np.array([[1e4, -1e4]]), np.array([1])))


# ------------------------------------------------------------------------ network gradients

@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("pool", POOLS)
def test_network_gradient_check(net, pool):
    """Whole network, float64: the gradient of the loss w.r.t. sampled parameters of every
    layer against central differences."""
    model = build_network(net, pool, mode=None if pool in ("max", "avg", "easy-avg") else 1, seed=3, dtype=F64)
    # Non-zero biases so that every parameter matters.
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][:] = rng(4).standard_normal(layer.params["b"].shape) * 0.1
    x = rng(5).random((3, 1, 28, 28))
    labels = np.array([1, 7, 3])
    loss = nn.SoftmaxCrossEntropy()

    def f():
        return loss.forward(model(x), labels)

    f()
    assert model.backward(loss.backward()) is None  # the first conv skips its input gradient
    analytic = model.flat_grads.copy()
    for i, layer in enumerate(model.layers):
        for name, p in layer.params.items():
            idx = sample(p.size, 12, seed=i)
            np.testing.assert_allclose(
                layer.grads[name].reshape(-1)[idx], numeric_grad(f, p, idx), rtol=1e-5, atol=1e-8,
                err_msg=f"{net}/{pool}: layer {i} {layer!r} param {name}")
    # The flat buffers are the layers' gradients.
    np.testing.assert_array_equal(model.flat_grads, analytic)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("mode", [0, 1, 2, 3, "random"])
def test_random_and_ecp_compute_the_same_function(net, mode):
    """Same seed: full conv + random pooling and ECP give the same outputs and gradients."""
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        full = build_network(net, "random", mode, seed=11, dtype=dtype)
        easy = build_network(net, "ecp", mode, seed=11, dtype=dtype)
        assert full.modes == easy.modes and len(full.modes) == (1 if net == "one-conv" else 2)
        np.testing.assert_array_equal(full.flat_params, easy.flat_params)
        x = rng(2).random((6, 1, 28, 28)).astype(dtype)
        labels = rng(3).integers(10, size=6)
        outs, grads = [], []
        for model in (full, easy):
            loss = nn.SoftmaxCrossEntropy()
            outs.append(model(x))
            loss.forward(outs[-1].copy(), labels)
            model.backward(loss.backward())
            grads.append(model.flat_grads.copy())
        scale = np.abs(outs[0]).max()
        np.testing.assert_allclose(outs[1], outs[0], rtol=tol, atol=tol * scale)
        np.testing.assert_allclose(grads[1], grads[0], rtol=tol, atol=tol * np.abs(grads[0]).max())
        np.testing.assert_allclose(easy.eval()(x), full.eval()(x), rtol=tol, atol=tol * scale)


def test_all_poolings_share_initial_weights_and_modes_follow_the_seed():
    ref = build_network("two-conv", "max", seed=5)
    for pool in POOLS:
        np.testing.assert_array_equal(build_network("two-conv", pool, seed=5).flat_params, ref.flat_params)
    assert not np.array_equal(build_network("two-conv", "max", seed=6).flat_params, ref.flat_params)
    # "random" draws one K per layer from the seed: reproducible, and over seeds every K and
    # unequal pairs appear.
    drawn = [tuple(build_network("two-conv", "ecp", "random", seed=s).modes) for s in range(40)]
    assert drawn == [tuple(build_network("two-conv", "random", seed=s).modes) for s in range(40)]
    assert {k for pair in drawn for k in pair} == {0, 1, 2, 3}
    assert any(a != b for a, b in drawn)
    assert build_network("one-conv", "max").modes == []
    assert len(seed_streams(0)) == 3


def test_network_shapes_and_dtypes():
    for net, flat in (("one-conv", 20 * 12 * 12), ("two-conv", 32 * 4 * 4)):
        for pool in POOLS:
            model = build_network(net, pool, mode=None if pool in ("max", "avg", "easy-avg") else 0)
            linear = [layer for layer in model.layers if isinstance(layer, nn.Linear)]
            assert [lin.params["w"].shape for lin in linear] == [(flat, 100), (100, 10)]
            out = model.eval()(np.zeros((2, 1, 28, 28), np.float32))
            assert out.shape == (2, 10) and out.dtype == np.float32
    m64 = build_network("one-conv", "ecp", 0, dtype=np.float64)
    assert m64.eval()(np.zeros((1, 1, 28, 28))).dtype == np.float64
    with pytest.raises(TypeError, match="dtype float64"):
        m64.forward(np.zeros((1, 1, 28, 28), np.float32))


def test_network_matches_pytorch(torch):
    """The two-conv max-pooling network against the same network in PyTorch."""
    F = torch.nn.functional
    model = build_network("two-conv", "max", seed=2, dtype=np.float64)
    x = rng(1).random((4, 1, 28, 28))
    labels = np.array([3, 1, 4, 1])
    loss = nn.SoftmaxCrossEntropy()
    value = loss.forward(model(x), labels)
    model.backward(loss.backward())
    conv1, _, _, conv2, _, _, _, fc1, _, fc2 = model.layers
    tp = {name: torch.tensor(layer.params[k], requires_grad=True)
          for name, layer, k in (("w1", conv1, "w"), ("b1", conv1, "b"), ("w2", conv2, "w"), ("b2", conv2, "b"),
                                 ("w3", fc1, "w"), ("b3", fc1, "b"), ("w4", fc2, "w"), ("b4", fc2, "b"))}
    h = F.relu(F.max_pool2d(F.conv2d(torch.tensor(x), tp["w1"], tp["b1"]), 2))
    h = F.relu(F.max_pool2d(F.conv2d(h, tp["w2"], tp["b2"]), 2)).flatten(1)
    h = F.relu(h @ tp["w3"] + tp["b3"]) @ tp["w4"] + tp["b4"]
    tloss = F.cross_entropy(h, torch.tensor(labels))
    tloss.backward()
    assert value == pytest.approx(tloss.item(), rel=1e-10)
    for name, layer, k in (("w1", conv1, "w"), ("b2", conv2, "b"), ("w3", fc1, "w"), ("w4", fc2, "w")):
        np.testing.assert_allclose(layer.grads[k], tp[name].grad.numpy(), rtol=1e-8, atol=1e-12)


# ------------------------------------------------------------------------------ optimizers

def test_sgd_plain_and_momentum():
    p0 = rng(1).standard_normal(6)
    g = rng(2).standard_normal(6)
    p = p0.copy()
    opt = optim.SGD([p], [g], lr=0.1)
    opt.step()
    np.testing.assert_allclose(p, p0 - 0.1 * g)
    p = p0.copy()
    opt = optim.SGD([p], [g], lr=0.1, momentum=0.9)
    opt.step()
    opt.step()
    v1 = -0.1 * g
    v2 = 0.9 * v1 - 0.1 * g
    np.testing.assert_allclose(p, p0 + v1 + v2)


def test_adam_matches_reference_and_pytorch(torch):
    p0 = rng(1).standard_normal(20)
    grads = [rng(10 + t).standard_normal(20) for t in range(5)]
    g = np.empty(20)
    p = p0.copy()
    opt = optim.Adam([p], [g], lr=0.01)
    m = v = 0
    ref = p0.copy()
    tp = torch.tensor(p0.copy(), requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.01)
    for t, gt in enumerate(grads, 1):
        g[:] = gt
        opt.step()
        m = 0.9 * m + 0.1 * gt
        v = 0.999 * v + 0.001 * gt * gt
        ref -= 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        tp.grad = torch.tensor(gt)
        topt.step()
    np.testing.assert_allclose(p, ref, rtol=1e-12)
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10)


def test_optimizers_minimise_a_quadratic():
    for make in (lambda p, g: optim.SGD([p], [g], lr=0.1, momentum=0.5),
                 lambda p, g: optim.Adam([p], [g], lr=0.05)):
        p = np.array([3.0, -2.0], np.float32)
        g = np.zeros_like(p)
        opt = make(p, g)
        for _ in range(300):
            g[:] = 2 * p
            opt.step()
        assert p.dtype == np.float32
        assert np.abs(p).max() < 1e-2


def test_optimizer_errors():
    p = np.zeros(3)
    with pytest.raises(ValueError, match="grads\\[0\\] must match"):
        optim.SGD([p], [np.zeros(4)])
    with pytest.raises(ValueError, match="lr must be"):
        optim.Adam([p], [np.zeros(3)], lr=0)
    with pytest.raises(ValueError, match="momentum must be"):
        optim.SGD([p], [np.zeros(3)], momentum=1.0)
    with pytest.raises(ValueError, match="same length"):
        optim.Adam([p], [])


# ---------------------------------------------------------------------- container, errors

def test_sequential_flat_buffers_are_the_layers_parameters():
    model = build_network("one-conv", "ecp", 0, seed=1)
    conv = model.layers[0]
    assert np.shares_memory(conv.params["w"], model.flat_params)
    assert np.shares_memory(conv.grads["w"], model.flat_grads)
    model.flat_params[0] = 123.0
    assert conv.params["w"].reshape(-1)[0] == 123.0
    assert model.num_parameters == 20 * 25 + 20 + 2880 * 100 + 100 + 100 * 10 + 10
    assert model.parameters()[0] is model.flat_params and model.gradients()[0] is model.flat_grads
    x = rng(0).random((7, 1, 28, 28)).astype(np.float32)
    pred = model.predict(x, batch_size=3)
    np.testing.assert_array_equal(pred, model.eval()(x).argmax(1))
    with pytest.raises(TypeError, match="one dtype"):
        nn.Sequential([nn.Linear(2, 2, rng=0), nn.Linear(2, 2, rng=0, dtype=np.float64)])


@pytest.mark.parametrize("cls", [nn.Conv2d, nn.EasyConvPool2d])
def test_conv_layers_reuse_their_last_plan_only_while_it_fits(cls, monkeypatch):
    """A conv layer runs each call through the plan of its previous call when that fits (the fast
    path of a training loop) and through the checked path otherwise: after every change below
    the layer must give exactly what the public functions give for its current settings."""
    easy = cls is nn.EasyConvPool2d
    layer = cls(2, 3, 3, rng=1, dtype=F64, **({"mode": 1} if easy else {}))
    layer.params["b"][:] = rng(2).standard_normal(3)

    def check(x):
        w, b = layer.params["w"], layer.params["b"]
        grads = dict(layer.grads)
        y = layer.forward(x)
        want = (ecp.easy_conv2d(x, w, b, mode=layer.mode, padding=layer.padding) if easy
                else ecp.conv2d(x, w, b, padding=layer.padding))
        np.testing.assert_array_equal(y, want)
        dy = rng(4).standard_normal(y.shape)
        dx = layer.backward(dy)
        want = (ecp.easy_conv2d_backward(dy, x, w, mode=layer.mode, padding=layer.padding) if easy
                else ecp.conv2d_backward(dy, x, w, padding=layer.padding))
        for got, ref in zip((dx, layer.grads["w"], layer.grads["b"]), want):
            np.testing.assert_array_equal(got, ref)
        assert all(layer.grads[k] is grads[k] for k in grads)
        _, dw, db = layer._kernel_backward(dy, x)   # the kernels wrote the gradients in place
        assert dw is layer.grads["w"] and db is layer.grads["b"]
        assert all(p.tunables is ecp._dispatch.thresholds for p in layer._plans)
        return list(layer._plans)

    x = rng(3).standard_normal((2, 2, 9, 8))
    first = check(x)
    assert check(x.copy()) == first   # the same plans, reused
    if easy:
        layer.mode = 3
        assert check(x) != first
        for bad, error in ((None, TypeError), (2.0, TypeError), (4, ValueError)):
            layer.mode = bad
            with pytest.raises(error, match="mode must be an integer"):
                layer.forward(x)
        layer.mode = 2
    layer.padding = (0, 2)
    pair_plans = check(x)
    assert pair_plans[0].padding == (0, 2) and check(x) == pair_plans   # reused while it fits
    layer.padding = 1
    assert check(x) != pair_plans
    layer.padding = (1, 1)   # the same geometry as padding=1: its plan fits
    check(x)
    layer.padding = 1
    check(x)
    check(x[:1].copy())
    check(rng(5).standard_normal((2, 2, 11, 10)))
    check(np.asfortranarray(x))
    layer.params["w"] = layer.params["w"][:, :, ::-1]   # a view, not C-contiguous
    check(x)
    before = check(x)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(
        ecp._dispatch.thresholds, item_columns=ecp._dispatch.thresholds.item_columns + 1))
    assert check(x) != before
    with pytest.raises(TypeError, match="same dtype as x"):
        layer.forward(x.astype(np.float32))


def test_a_trained_network_pickles_and_copies(tmp_path):
    """Pickled or deep-copied after a training step (its conv layers then hold their last call
    plans), a network computes what the original does, and goes on training alike."""
    import copy
    import pickle
    net = build_network("two-conv", "ecp", 2, seed=0)
    x = rng(0).random((4, 1, 28, 28)).astype(np.float32)
    net.forward(x)
    net.backward(np.ones((4, 10), np.float32))
    path = tmp_path / "net.pkl"
    path.write_bytes(pickle.dumps(net))
    # a layer pickled before layers kept their plans (no _plans in its state) still runs
    old = net.layers[0].__dict__.copy()
    del old["_plans"]
    legacy = object.__new__(type(net.layers[0]))
    legacy.__setstate__(old)
    np.testing.assert_array_equal(legacy.forward(x), net.layers[0].forward(x))
    for other in (pickle.loads(path.read_bytes()), copy.deepcopy(net)):
        np.testing.assert_array_equal(other.forward(x), net.forward(x))
        other.backward(np.ones((4, 10), np.float32))
        net.backward(np.ones((4, 10), np.float32))
        np.testing.assert_array_equal(other.flat_grads, net.flat_grads)


def test_conv_seconds_accumulate():
    model = build_network("two-conv", "max", seed=0)
    assert model.conv_seconds == 0.0
    model.forward(np.zeros((2, 1, 28, 28), np.float32))
    after_forward = model.conv_seconds
    assert after_forward > 0
    model.backward(np.ones((2, 10), np.float32))
    assert model.conv_seconds > after_forward


def test_layer_errors():
    with pytest.raises(ValueError, match="mode must be an integer 0..3 or 'random'"):
        nn.RandomPool2d("sometimes")
    with pytest.raises(ValueError, match="mode must be an integer in 0..3"):
        nn.EasyConvPool2d(1, 1, 3, mode=4, rng=0)
    with pytest.raises(TypeError, match="needs a seeded generator"):
        nn.RandomPool2d("random")
    assert nn.RandomPool2d("random", rng=3).mode == nn.RandomPool2d("random", rng=3).mode
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        nn.Conv2d(1, 2, 3, rng=None)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.Linear(2, 2, rng=0, dtype=np.int32)
    with pytest.raises(RuntimeError, match="before a training forward"):
        nn.MaxPool2d().backward(np.zeros((1, 1, 1, 1)))
    conv = nn.Conv2d(1, 2, 3, rng=0)
    conv.eval()(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(RuntimeError, match="before a training forward"):
        conv.backward(np.zeros((1, 2, 3, 3), np.float32))
    with pytest.raises(TypeError, match="same dtype as x"):
        conv.forward(np.zeros((1, 1, 5, 5)))
    with pytest.raises(TypeError, match="Linear: x must have dtype float32"):
        nn.Linear(3, 2, rng=0).forward(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((2, 10)), np.array([0, 10]))
    with pytest.raises(ValueError, match="mode applies only"):
        build_network("two-conv", "max", mode=1)
    with pytest.raises(ValueError, match="pool must be one of"):
        build_network("two-conv", "stochastic")
    with pytest.raises(ValueError, match="net must be one of"):
        build_network("three-conv", "max")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda p, g: optim.Adam([p], [g], lr=0.01),
                                  lambda p, g: optim.SGD([p], [g], lr=0.1, momentum=0.9),
                                  lambda p, g: optim.SGD([p], [g], lr=0.1)],
                         ids=["adam", "sgd-momentum", "sgd"])
def test_fused_optimizer_step_matches_the_numpy_expressions(make, dtype):
    """C-contiguous parameters take the fused kernel (ecp/_kernels/_optim.pyx), other layouts the
    NumPy expressions: the same updates, to rounding."""
    p0 = rng(3).standard_normal((6, 7)).astype(dtype)
    grads = [rng(30 + t).standard_normal((6, 7)).astype(dtype) for t in range(4)]
    fused, g1 = p0.copy(), np.empty_like(p0)
    strided, g2 = np.asfortranarray(p0), np.asfortranarray(np.empty_like(p0))
    assert not strided.flags.c_contiguous
    o1, o2 = make(fused, g1), make(strided, g2)
    for gt in grads:
        g1[:] = gt
        g2[:] = gt
        o1.step()
        o2.step()
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(fused, strided, rtol=tol, atol=tol)
    assert not np.array_equal(fused, p0)


# ------------------------------------------------------------- conventions, old spellings

def test_layers_call_train_and_eval():
    """``layer(x)`` is ``forward(x)``; ``train()`` / ``eval()`` return the layer and set ``training``,
    through every layer of a Sequential; evaluation mode caches nothing for backward."""
    x = rng(3).standard_normal((2, 1, 8, 8))
    conv = nn.Conv2d(1, 2, 3, rng=0, dtype=F64)
    assert conv.training is True
    np.testing.assert_array_equal(conv(x), conv.forward(x))
    assert conv.eval() is conv and conv.training is False
    conv(x)
    with pytest.raises(RuntimeError, match="before a training forward"):
        conv.backward(np.zeros((2, 2, 6, 6)))
    assert conv.train() is conv and conv.training is True
    assert conv.train(False).training is False
    model = build_network("one-conv", "ecp", 1, seed=0)
    assert model.training and all(layer.training for layer in model.layers)
    assert model.eval() is model
    assert not model.training and not any(layer.training for layer in model.layers)
    xb = rng(0).random((3, 1, 28, 28)).astype(np.float32)
    evaluated = model(xb)
    with pytest.raises(RuntimeError, match="before a training forward"):
        model.backward(np.ones((3, 10), np.float32))
    assert model.train() is model and all(layer.training for layer in model.layers)
    np.testing.assert_array_equal(model(xb), evaluated)   # the modes differ only in what they cache
    model.backward(np.ones((3, 10), np.float32))
    loss = nn.SoftmaxCrossEntropy()
    assert loss(evaluated, np.arange(3)) == nn.SoftmaxCrossEntropy().forward(evaluated, np.arange(3))


def test_predict_restores_each_layers_mode():
    model = build_network("one-conv", "max", seed=0)
    model.layers[-1].eval()
    x = rng(0).random((5, 1, 28, 28)).astype(np.float32)
    before = [layer.training for layer in model.layers]
    pred = model.predict(x, batch_size=2)
    assert [layer.training for layer in model.layers] == before and model.training
    np.testing.assert_array_equal(pred, model.eval()(x).argmax(1))


@pytest.mark.parametrize("old, new", [("Conv2D", "Conv2d"), ("EasyConvPool2D", "EasyConvPool2d"),
                                      ("RandomPool2D", "RandomPool2d"), ("MaxPool2D", "MaxPool2d"),
                                      ("AvgPool2D", "AvgPool2d")])
def test_old_class_names_warn_and_give_the_new_class(old, new):
    import ecp.nn.layers
    for module in (nn, ecp.nn.layers):
        with pytest.warns(FutureWarning, match=f"ecp.nn.{old} is renamed ecp.nn.{new}"):
            cls = getattr(module, old)
        assert cls is getattr(nn, new)
    with pytest.warns(FutureWarning):
        from ecp.nn import Conv2D  # noqa: F401
    with pytest.raises(AttributeError):
        nn.Conv3D   # noqa: B018
    assert old not in nn.__all__ and new in nn.__all__


def test_forward_training_argument_warns_and_overrides_for_one_call():
    x = rng(3).standard_normal((2, 1, 8, 8))
    conv = nn.Conv2d(1, 2, 3, rng=0, dtype=F64).eval()
    with pytest.warns(FutureWarning, match=r"forward\(x, training\) is deprecated"):
        y = conv.forward(x, True)
    assert conv.training is False   # the mode itself is unchanged
    np.testing.assert_array_equal(y, conv(x))
    with pytest.warns(FutureWarning):
        conv.forward(x, training=True)
    conv.backward(np.ones_like(y))   # that call cached its input
    with pytest.warns(FutureWarning):
        conv.train().forward(x, training=False)
    with pytest.raises(RuntimeError, match="before a training forward"):
        conv.backward(np.ones_like(y))
    model = build_network("two-conv", "random", 2, seed=1)
    xb = rng(0).random((2, 1, 28, 28)).astype(np.float32)
    with pytest.warns(FutureWarning, match=r"Sequential.forward\(x, training\)"):
        out = model.forward(xb, False)
    assert model.training and all(layer.training for layer in model.layers)
    with pytest.raises(RuntimeError, match="before a training forward"):
        model.backward(np.ones((2, 10), np.float32))
    np.testing.assert_array_equal(out, model(xb))


def test_the_package_itself_raises_no_future_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        for pool in POOLS:
            model = build_network("two-conv", pool, seed=0)
            x = rng(0).random((2, 1, 28, 28)).astype(np.float32)
            loss = nn.SoftmaxCrossEntropy()
            loss(model(x), np.array([1, 2]))
            model.backward(loss.backward())
            model.predict(x)
            repr(model)


# A network pickled by ecp 0.1 (module ``ecp.nn``, class names ``Conv2D`` ...; zlib, base64): made at
# commit 504a1b3 by pickle.dumps((net, nn.SoftmaxCrossEntropy()), protocol=4) with net = the
# Sequential that test_a_network_pickled_by_ecp_0_1_loads builds with the old names.
OLD_PICKLE = (
    "eNrtVltMFFcY3l1uZdmS4gXWCtEmrEGrtIG2MQU9LYu1dXBKIW1J2mY6uzvLbJmdHWZmKWsxyh3KWC8cQwgYU4sNhijVxKJ0m1O1VBRsuQRphA"
    "cu1orlARTRXu3sLApdA9GmTXzgf9hk5z/nv3z/951ztvvvvaZTKSYFUmYulmWhpE2nsp0UK9pIBlbClflwK4yRAhnSRfECfA/G0PJao4PNiUue"
    "dgdxpMViYzMhppICLKKLo6AUwDrtnAve/V8JJY11LSwvK4VpMAbzk9SJEMfxTXdkU34wlQhNktbGck6RyORJCyyXAjmSJ+2CkkP9IZTClZixhN"
    "nBU7F2JyMXyfOknERH8JTZwQoi7zSLci76cSmItXidlXJVxdCoNkFvanUMpsHUmB/mJ0J6QblxV323HqvNOAJu7M77OG+oEbUmV1ekpHWDF7R/"
    "Nu984xCoFxpHEld2oM41RYU7OluA4bWsvKaGYVCkj9jXsqcflBavCsMSelD8eCPnDh9G7r7QkUsXutCrWfnnL1+vBA3u4y1vlY+j7Ns9B9/ObE"
    "YD+JZ4S9sQOjAR+vShiIvoD7yAhlkdqJLIiBxafAZBDxByufRSOspTOr1sqnBMU6xU/ITKxzw7nFKABzUFLFp/317fplWPmHlaoA0P27JOHnoO"
    "IXhmL3e+8a5T0hC5EJcCCY4hWYW1OE45TTJ1dWkka3HYUx0OZiaB/e0OCwUxtbxFoEmZrriy2j+NSnlzBs1lcjKkmYJlcgLX1JrQDaTg8gjCJy"
    "YdgqlpHb2AXlxGh88+E829mSQtV6tUF5N/G7Bu/RosGtMwT5V2AtPBuLCCODcIbh3r/7W9D93qk9YLqd3gmUlNS3XIGVCr3xk2efU7tGb10r/e"
    "aWsF6/YO1j4XiYD9x5poZslJsKzdsMOQWQj2hR94fVf6WTAGzw5qmR9Q9DZptO5CA2ruOYcH7fkWhV5h378jnQPBNdvU41EVwJD46dGOiRPogx"
    "UlRuORDvSFe1GScP04OlX7/c22BCtwbU+N+ayoCeVfM2Sk1vSBnMmSmtAtPaC6Yu3Yxl9GER6ru21ccRl9UpV1+mr3YWTdb53I9juNlkgR655M"
    "OAZuZnyUnltxDIwNTVZFVl0Bn2sDvow62Ys67O7lYuQ36PmAukvLz/8ETC/l1Z2oagODmtHdWZvawb+iCb36gfGft/9BpvSL95RJJ+B0olePdB"
    "KmURQUvJnM9RXkY4SNtdjMlABx2ugVWvDLOZn/XCZ7BI8n6BWGFEWK9f0emGJjKZKflqQsR8nfxtpE+VpiKLOThXOo00ONEqWrZzc3F/4sRp4C"
    "twbK4lfV96I06gbPHe1CC7X9jev3/46+iu6iCt6dAD29h3ObhkdmZamfFyX9XOjOytYZ9fxXU3uwehJk/CkFuxCrDDQxdSnfH86ohEvSa1SqR+"
    "1O9e1s/pyd+5z1xethFTAXoyStQiPva2VOFs3bvM16LnlO+IXpDqtoJ3ONvEMQNrAi7+Bc05eIhuDkV2AQwZAmihE877USGPs3VI+j0A=="
)


def test_a_network_pickled_by_ecp_0_1_loads():
    import base64
    import pickle
    import zlib
    with pytest.warns(FutureWarning, match="renamed"):
        old, old_loss = pickle.loads(zlib.decompress(base64.b64decode("".join(OLD_PICKLE))))
    net = nn.Sequential([
        nn.Conv2d(1, 2, 3, rng=0, dtype=F64, input_grad=False), nn.RandomPool2d(1), nn.ReLU(inplace=True),
        nn.EasyConvPool2d(2, 2, 3, mode=2, padding=1, rng=1, dtype=F64), nn.MaxPool2d(), nn.AvgPool2d(),
        nn.Flatten(), nn.Linear(2, 3, rng=2, dtype=F64, init="lecun"),
    ])
    assert [type(layer) for layer in old.layers] == [type(layer) for layer in net.layers]
    assert type(old) is nn.Sequential and type(old_loss) is nn.SoftmaxCrossEntropy
    assert repr(old) == repr(net)
    np.testing.assert_array_equal(old.flat_params, net.flat_params)
    assert old.training and all(layer.training for layer in old.layers)
    x = rng(5).random((2, 1, 20, 20))
    np.testing.assert_array_equal(old(x), net(x))
    labels = np.array([0, 2])
    for model in (old, net):
        old_loss(model(x), labels)
        model.backward(old_loss.backward())
    np.testing.assert_array_equal(old.flat_grads, net.flat_grads)
    # the buffers are shared again: an optimizer step over parameters() moves the layers
    optim.SGD(old.parameters(), old.gradients(), lr=0.1).step()
    assert np.shares_memory(old.layers[0].params["w"], old.flat_params)
    assert not np.array_equal(old.layers[0].params["w"], net.layers[0].params["w"])
    np.testing.assert_array_equal(old.predict(x), old.eval()(x).argmax(1))


def test_an_unpickled_or_copied_network_trains_its_layers():
    """Pickling copies views as separate arrays; Sequential shares its flat buffers again, so an
    optimizer over ``parameters()`` still updates the layers."""
    import copy
    import pickle
    net = build_network("one-conv", "ecp", 0, seed=0)
    x = rng(0).random((4, 1, 28, 28)).astype(np.float32)
    labels = np.arange(4)
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        for layer in other.layers:
            for name in layer.params:
                assert np.shares_memory(layer.params[name], other.flat_params)
                assert np.shares_memory(layer.grads[name], other.flat_grads)
        for model in (net, other):
            loss = nn.SoftmaxCrossEntropy()
            loss(model(x), labels)
            model.backward(loss.backward())
        np.testing.assert_array_equal(other.flat_grads, net.flat_grads)
        before = other(x)
        optim.Adam(other.parameters(), other.gradients(), lr=0.01).step()
        assert not np.array_equal(other(x), before)


# --------------------------------------------------- optimizer steps against their formulas

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "F"])
def test_sgd_momentum_steps_match_the_formula(dtype, layout):
    """v = momentum * v - lr * g; p += v, over several steps with changing gradients (fused
    kernel for C order, the NumPy path for F order); no PyTorch needed."""
    p0 = rng(1).standard_normal((3, 4))
    grads = [rng(20 + t).standard_normal((3, 4)) for t in range(5)]
    p = np.array(p0, dtype=dtype, order=layout)
    g = np.zeros_like(p)
    opt = optim.SGD([p], [g], lr=0.05, momentum=0.9)
    ref, v = p0.copy(), np.zeros_like(p0)
    for gt in grads:
        g[...] = gt
        opt.step()
        v = 0.9 * v - 0.05 * gt.astype(dtype)
        ref += v
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(p, ref, rtol=tol, atol=tol)
    assert opt.steps == 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "F"])
def test_adam_steps_match_the_formula_with_bias_correction(dtype, layout):
    """Adam's update, bias correction included, against the formula of Kingma & Ba in float64
    over several steps (fused kernel for C order, the NumPy path for F order); no PyTorch needed.
    The first step moves every parameter by about lr: without the correction it would be
    about lr * (1 - b1) / sqrt(1 - b2) = 3.2 lr."""
    lr, b1, b2, eps = 0.01, 0.8, 0.99, 1e-8
    p0 = rng(1).standard_normal((3, 4))
    grads = [rng(10 + t).standard_normal((3, 4)) for t in range(6)]
    p = np.array(p0, dtype=dtype, order=layout)
    g = np.zeros_like(p)
    opt = optim.Adam([p], [g], lr=lr, betas=(b1, b2), eps=eps)
    ref, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, gt in enumerate(grads, 1):
        gt = gt.astype(dtype).astype(np.float64)
        g[...] = gt
        opt.step()
        m = b1 * m + (1 - b1) * gt
        v = b2 * v + (1 - b2) * gt * gt
        ref -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        if t == 1:
            np.testing.assert_allclose(np.abs(p - p0), lr, rtol=1e-4)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(p, ref, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- easy average pooling

@pytest.mark.parametrize("padding", [0, 1, (1, 0)])
def test_easy_avg_conv_pool_gradients(padding):
    layer = nn.EasyAvgConvPool2d(2, 3, 3, padding=padding, rng=1, dtype=F64)
    layer.params["b"][:] = rng(2).standard_normal(3)
    check_layer(layer, rng(3).standard_normal((2, 2, 9, 8)))


@pytest.mark.parametrize("dtype, tol", [(F64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("padding, size", [(0, (9, 8)), (2, (6, 5)), ((0, 2), (7, 6))])
def test_easy_avg_conv_pool_equals_conv_then_avg_pool(padding, size, dtype, tol):
    """The fused layer against Conv2d + AvgPool2d with the same weights, twice (plans reused)."""
    easy = nn.EasyAvgConvPool2d(2, 4, 3, padding=padding, rng=9, dtype=dtype)
    conv, pool = nn.Conv2d(2, 4, 3, padding=padding, rng=9, dtype=dtype), nn.AvgPool2d()
    np.testing.assert_array_equal(easy.params["w"], conv.params["w"])
    for seed in (3, 4):
        x = rng(seed).standard_normal((3, 2) + size).astype(dtype)
        y = easy.forward(x)
        np.testing.assert_allclose(y, pool.forward(conv.forward(x)), rtol=tol, atol=tol)
        dy = rng(seed + 10).standard_normal(y.shape).astype(dtype)
        np.testing.assert_allclose(easy.backward(dy), conv.backward(pool.backward(dy)), rtol=tol, atol=tol)
        for name in ("w", "b"):
            np.testing.assert_allclose(easy.grads[name], conv.grads[name], rtol=tol, atol=tol * 10)
    assert repr(easy).startswith("EasyAvgConvPool2d(2, 4, 3, padding=")


@pytest.mark.parametrize("net", NETS)
def test_avg_and_easy_avg_compute_the_same_function(net):
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        full = build_network(net, "avg", seed=11, dtype=dtype)
        easy = build_network(net, "easy-avg", seed=11, dtype=dtype)
        assert easy.modes == [] and isinstance(easy.layers[0], nn.EasyAvgConvPool2d)
        np.testing.assert_array_equal(full.flat_params, easy.flat_params)
        x = rng(2).random((6, 1, 28, 28)).astype(dtype)
        labels = rng(3).integers(10, size=6)
        outs, grads = [], []
        for model in (full, easy):
            loss = nn.SoftmaxCrossEntropy()
            outs.append(model(x))
            loss.forward(outs[-1].copy(), labels)
            model.backward(loss.backward())
            grads.append(model.flat_grads.copy())
        scale = np.abs(outs[0]).max()
        np.testing.assert_allclose(outs[1], outs[0], rtol=tol, atol=tol * scale)
        np.testing.assert_allclose(grads[1], grads[0], rtol=tol, atol=tol * np.abs(grads[0]).max())


def test_easy_avg_network_refuses_a_mode():
    with pytest.raises(ValueError, match="mode"):
        build_network("one-conv", "easy-avg", 1)


# ---- mode policies: per-batch training, fixed or ensemble evaluation ---------------------------

def _x(shape=(3, 1, 28, 28), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("pool", ["ecp", "random"])
def test_per_batch_draws_differ_across_batches_and_follow_the_seed(pool):
    def draws(seed):
        net = build_network("two-conv", pool, "per-batch", seed=seed)
        seen = []
        for _ in range(12):
            net(_x())
            seen.append(tuple(layer.last_mode for layer in net.layers if hasattr(layer, "mode")))
        return seen

    a = draws(0)
    assert len({ks[0] for ks in a}) > 1 and len({ks[1] for ks in a}) > 1   # a new K per batch, per layer
    assert a == draws(0) and a != draws(1)
    net = build_network("two-conv", pool, "per-batch", seed=0)
    assert net.modes == ["per-batch", "per-batch"] and net.eval_modes == [0, 0]
    # the same weights as the fixed-K networks of that seed
    assert np.array_equal(net.flat_params, build_network("two-conv", pool, seed=0).flat_params)


@pytest.mark.parametrize("cls", ["EasyConvPool2d", "RandomPool2d"])
def test_per_batch_backward_uses_the_k_of_its_forward(cls):
    x = np.random.default_rng(1).standard_normal((2, 3, 10, 10))
    seen = set()
    for seed in range(8):
        if cls == "EasyConvPool2d":
            layer = nn.EasyConvPool2d(3, 4, 3, mode="per-batch", rng=seed, dtype=np.float64)
            y = layer(x)
            k = layer.last_mode
            fixed = nn.EasyConvPool2d(3, 4, 3, mode=k, rng=0, dtype=np.float64)
            fixed.params["w"][...] = layer.params["w"]
        else:
            layer = nn.RandomPool2d("per-batch", rng=seed)
            y = layer(x)
            k = layer.last_mode
            fixed = nn.RandomPool2d(k)
        dy = np.random.default_rng(2).standard_normal(y.shape)
        np.testing.assert_allclose(y, fixed(x), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.backward(dy), fixed.backward(dy), rtol=1e-12, atol=1e-12)
        if cls == "EasyConvPool2d":
            np.testing.assert_allclose(layer.grads["w"], fixed.grads["w"], rtol=1e-12, atol=1e-12)
        layer.eval()(x)   # an evaluation forward (K = eval_mode) leaves last_mode alone
        assert layer.last_mode == k
        seen.add(k)
    assert len(seen) > 1


@pytest.mark.parametrize("net_name", NETS)
@pytest.mark.parametrize("pool", ["ecp", "random"])
def test_ensemble_is_the_mean_of_the_four_fixed_k_logits(net_name, pool):
    x = _x((5, 1, 28, 28))
    ens = build_network(net_name, pool, "per-batch", seed=3, eval_mode="ensemble", dtype=np.float64)
    fixed = [build_network(net_name, pool, "per-batch", seed=3, eval_mode=k, dtype=np.float64).eval()(x.astype(float))
             for k in range(4)]
    np.testing.assert_allclose(ens.eval()(x.astype(float)), np.mean(fixed, axis=0), rtol=1e-12, atol=1e-12)
    assert ens.predict(x.astype(float)).tolist() == np.mean(fixed, axis=0).argmax(1).tolist()
    assert ens.eval_modes == ["ensemble"] * len(ens.modes)
    assert all(getattr(layer, "_ensemble_k", None) is None for layer in ens.layers)
    ens.train()
    assert ens(x.astype(float)).shape == (5, 10)   # training: one pass with drawn Ks


def test_eval_mode_fixed_k_and_defaults():
    x = _x()
    layer = nn.EasyConvPool2d(1, 4, 5, mode="per-batch", eval_mode=2, rng=0)
    ref = nn.EasyConvPool2d(1, 4, 5, mode=2, rng=0)
    ref.params["w"][...] = layer.params["w"]
    np.testing.assert_array_equal(layer.eval()(x), ref.eval()(x))
    assert nn.EasyConvPool2d(1, 4, 5, mode="per-batch", rng=0).eval_mode == 0
    assert nn.EasyConvPool2d(1, 4, 5, mode=3, rng=0).eval_mode == 3
    assert nn.RandomPool2d(1, eval_mode=2).eval()(x).tolist() == nn.RandomPool2d(2)(x).tolist()
    assert repr(nn.RandomPool2d("per-batch", rng=0, eval_mode="ensemble")) == \
        "RandomPool2d(mode='per-batch', eval_mode='ensemble')"
    assert repr(nn.RandomPool2d(1)) == "RandomPool2d(mode=1)"


def test_mode_policy_errors():
    with pytest.raises(ValueError, match="eval_mode='ensemble' needs mode='per-batch'"):
        nn.EasyConvPool2d(1, 4, 5, mode=1, eval_mode="ensemble", rng=0)
    with pytest.raises(ValueError, match="eval_mode='ensemble' needs mode='per-batch'"):
        build_network("two-conv", "ecp", seed=0, eval_mode="ensemble")
    with pytest.raises(ValueError, match="eval_mode must be an integer 0..3"):
        nn.RandomPool2d("per-batch", rng=0, eval_mode="all")
    with pytest.raises(ValueError, match="eval_mode"):
        nn.RandomPool2d("per-batch", rng=0, eval_mode=4)
    with pytest.raises(TypeError, match="per-batch.*needs a seeded generator"):
        nn.RandomPool2d("per-batch")
    with pytest.raises(ValueError, match="eval_mode applies only to pool 'random' or 'ecp'"):
        build_network("two-conv", "max", seed=0, eval_mode=1)
    layer = nn.RandomPool2d("per-batch", rng=0, eval_mode="ensemble").eval()
    with pytest.raises(RuntimeError, match="through ecp.nn.Sequential"):
        layer(_x())


def test_a_per_batch_network_pickles_and_goes_on_drawing_the_same_ks():
    import pickle

    net = build_network("one-conv", "ecp", "per-batch", seed=0, eval_mode="ensemble")
    net(_x())
    copy = pickle.loads(pickle.dumps(net))
    a, b = [], []
    for _ in range(5):
        net(_x())
        copy(_x())
        a.append(net.layers[0].last_mode)
        b.append(copy.layers[0].last_mode)
    assert a == b
    np.testing.assert_array_equal(net.eval()(_x()), copy.eval()(_x()))
