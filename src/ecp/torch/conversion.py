"""``convert()``: every conv -> [element-wise] -> pool chain of a model made EasyConvPooling.

Picking one pixel of each pooling window (2x2, or p x p of stride s: p up to 4, s up to p)
commutes with an element-wise function, so
``Conv2d -> f -> pool`` becomes ``EasyConvPool2d -> f``: the convolution computes only the
pixels that Random Pooling (mode K) keeps, and the pool goes. A max or average pool becomes
Random Pooling: the converted model is a different (cheaper) network, to be trained or fine-tuned
as such; in eval mode it computes exactly ``conv -> f -> random_pool2d(K)``.

With ``avg="exact"``, average pooling is kept exactly instead: it is linear, so
``Conv2d -> [BatchNorm2d in eval mode] -> [Identity / Dropout in eval mode] -> AvgPool2d``
becomes ``EasyConvPool2d(pool="avg")`` (the BatchNorm folded into its weight and bias) ->
[the Identity / Dropout layers], computing the same function within float rounding. A non-linear
layer, or a BatchNorm2d in training mode (batch statistics), between the conv and the average
pool leaves the chain unconverted (named in the report). BatchNorm folding happens in the
Sequential pass; the fx pass converts conv -> [Identity / Dropout] -> average pool chains.

Two passes: every ``nn.Sequential`` in the model (its children in order, the module tree and the
other layers' names kept), then, for a model that is not itself a Sequential, its ``forward``
through ``torch.fx`` (layers called as modules or the common functions: ``F.relu``,
``F.max_pool2d(x, 2)`` ...), which returns a ``torch.fx.GraphModule`` when it converted something.
"""
from __future__ import annotations

import copy
import dataclasses
import warnings

import torch
import torch.nn.functional as F
from torch import fx, nn

from .._validation import MAX_POOL_SIZE
from .modules import EasyConvPool2d, NeighborFill, RandomPool2d, _resolve_mode

__all__ = ["convert", "ConversionReport"]

ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_ELEMENTWISE_FUNCTIONS = {F.relu, torch.relu, F.leaky_relu, F.elu, F.gelu, F.silu, torch.tanh, F.tanh,
                          torch.sigmoid, F.sigmoid, F.dropout}
_ELEMENTWISE_METHODS = {"relu", "tanh", "sigmoid"}
# F.max_pool2d / F.avg_pool2d: (keyword, default) of their arguments after the input, in order
_POOL_FUNCTIONS = {
    F.max_pool2d: (("kernel_size", None), ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False),
                   ("return_indices", False)),
    F.avg_pool2d: (("kernel_size", None), ("stride", None), ("padding", 0), ("ceil_mode", False),
                   ("count_include_pad", True), ("divisor_override", None)),
}


@dataclasses.dataclass
class ConversionReport:
    """What :func:`convert` did: the chains it converted and those it left, with the reason.

    Attributes
    ----------
    converted : list of tuple of str
        The qualified names of each converted chain's layers, conv first, pool last (a function
        call is named by its graph node).
    skipped : list of (tuple of str, str)
        Each conv -> ... -> pool chain left as it was: its layers' names, and why.
    """

    converted: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)

    def _skip(self, layers, reason):
        if all(layers != seen for seen, _ in self.skipped):
            self.skipped.append((tuple(layers), reason))

    def __str__(self) -> str:
        lines = [f"converted {len(self.converted)} chain(s)"]
        lines += ["  " + " -> ".join(chain) for chain in self.converted]
        lines += [f"left {len(self.skipped)} chain(s) unconverted"]
        lines += [f"  {' -> '.join(chain)}: {reason}" for chain, reason in self.skipped]
        return "\n".join(lines)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _conv_padding(conv):
    """The conv's (ph, pw), or None when it pads differently on the two sides."""
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        kh, kw = conv.kernel_size
        return (kh // 2, kw // 2) if kh % 2 and kw % 2 else None
    return _pair(conv.padding)


def _conv_problem(conv):
    """Why ``conv`` cannot become an EasyConvPool2d, or None."""
    if type(conv) is not nn.Conv2d:
        return f"{type(conv).__name__} is a subclass of Conv2d (its forward may differ)"
    for name, value in (("stride", conv.stride), ("dilation", conv.dilation)):
        if _pair(value) != (1, 1):
            return f"the conv has {name}={value}, not 1"
    if conv.groups != 1:
        return f"the conv has groups={conv.groups}, not 1"
    if conv.padding_mode != "zeros":
        return f"the conv pads with padding_mode={conv.padding_mode!r}, not zeros"
    if _conv_padding(conv) is None:
        return "the conv has padding='same' with an even kernel (uneven padding)"
    return None


def _window(kernel_size, stride):
    """The pool's (p, s): its square kernel side and square stride (None or [] mean the kernel's)."""
    p = _pair(kernel_size)[0]
    return p, (p if stride is None or stride == [] else _pair(stride)[0])


def _pool_args_problem(kind, kernel_size, stride, padding, dilation, ceil_mode, extra):
    kh, kw = _pair(kernel_size)
    if kh != kw or not (isinstance(kh, int) and 1 <= kh <= MAX_POOL_SIZE):
        return f"the {kind} has kernel_size={kernel_size}, not a square window of side 1..{MAX_POOL_SIZE}"
    if stride is not None and stride != []:
        sh, sw = _pair(stride)
        if sh != sw or not (isinstance(sh, int) and 1 <= sh <= kh):
            return f"the {kind} has stride={stride}, not one stride in 1..{kh} (at most the kernel_size)"
    if _pair(padding) != (0, 0):
        return f"the {kind} has padding={padding}, not 0"
    if _pair(dilation) != (1, 1):
        return f"the {kind} has dilation={dilation}, not 1"
    if ceil_mode:
        return f"the {kind} has ceil_mode=True"
    return extra


def _module_window(pool):
    return _window(pool.kernel_size, pool.stride)


def _pool_problem(pool):
    kind = type(pool).__name__
    if type(pool) not in _POOLS:
        return f"{kind} is a subclass of a pool (its forward may differ)"
    if isinstance(pool, nn.MaxPool2d):
        extra = "the MaxPool2d returns indices" if pool.return_indices else None
        return _pool_args_problem(kind, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode,
                                  extra)
    extra = f"the AvgPool2d has divisor_override={pool.divisor_override}" if pool.divisor_override else None
    return _pool_args_problem(kind, pool.kernel_size, pool.stride, pool.padding, 1, pool.ceil_mode, extra)


def _exact_avg_problem(mids, names):
    """Why the layers ``mids`` between a conv and an AvgPool2d (qualified ``names``) keep the
    chain from an exact conversion, or None."""
    for m, name in zip(mids, names):
        kind = type(m).__name__
        if type(m) is nn.BatchNorm2d:
            if m.training:
                return (f"BatchNorm2d ({name}) is in training mode (it normalises with batch statistics): "
                        "call model.eval() before convert(avg='exact')")
            if m.running_mean is None or m.running_var is None:
                return f"BatchNorm2d ({name}) has no running statistics (track_running_stats=False)"
        elif type(m) is nn.Dropout:
            if m.training:
                return f"Dropout ({name}) is in training mode: call model.eval() before convert(avg='exact')"
        elif type(m) is not nn.Identity:
            return (f"{kind} ({name}) between the conv and the average pool is not linear: avg='exact' converts "
                    "Conv2d -> [BatchNorm2d (eval)] -> [Identity / Dropout (eval)] -> AvgPool2d only")
    return None


def _avg_from_conv(conv, batchnorms=(), window=(2, 2)):
    """An EasyConvPool2d(pool="avg") over ``window`` (p, s) computing ``conv`` then the eval-mode
    ``batchnorms`` (folded into its weight and bias; without them it holds ``conv``'s own Parameters)."""
    layer = EasyConvPool2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=_conv_padding(conv),
                           bias=conv.bias is not None or bool(batchnorms), device="meta", dtype=conv.weight.dtype,
                           pool="avg", pool_size=window[0], pool_stride=window[1])
    if not batchnorms:
        layer.weight, layer.bias = conv.weight, conv.bias
        return layer.train(conv.training)
    with torch.no_grad():
        w = conv.weight.detach().clone()
        b = conv.bias.detach().clone() if conv.bias is not None else torch.zeros_like(w[:, 0, 0, 0])
        for bn in batchnorms:
            scale = torch.rsqrt(bn.running_var.to(w.dtype) + bn.eps)
            if bn.affine:
                scale = scale * bn.weight.to(w.dtype)
            shift = -bn.running_mean.to(w.dtype) * scale + (bn.bias.to(w.dtype) if bn.affine else 0)
            w, b = w * scale[:, None, None, None], b * scale + shift
    layer.weight, layer.bias = nn.Parameter(w), nn.Parameter(b)
    return layer.train(conv.training)


def _mode_problem(mode, window):
    """Why a fixed ``mode`` cannot serve a pool of ``window`` (p, s): K outside 0..p^2-1; or None."""
    p = window[0]
    if mode != "random" and mode >= p * p:
        return f"mode={mode} is outside 0..{p * p - 1}, the modes of the pool's {p}x{p} window"
    return None


def _easy_from_conv(conv, mode, window=(2, 2)):
    """An EasyConvPool2d over ``window`` (p, s) holding ``conv``'s own Parameters (no
    initialisation drawn)."""
    k = _resolve_mode(mode, window[0] * window[0])
    layer = EasyConvPool2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=_conv_padding(conv),
                           bias=conv.bias is not None, mode=k, device="meta", dtype=conv.weight.dtype,
                           pool_size=window[0], pool_stride=window[1])
    layer.weight = conv.weight
    layer.bias = conv.bias
    layer.mode = torch.tensor(k, dtype=torch.int64, device=conv.weight.device)
    return layer.train(conv.training)


def _convert_sequential(seq, prefix, mode, avg, report):
    names = list(seq._modules)
    mods = [seq._modules[name] for name in names]
    dropped = set()
    i = 0
    while i < len(mods):
        if not isinstance(mods[i], nn.Conv2d):
            i += 1
            continue
        j = i + 1
        while j < len(mods) and type(mods[j]) in ELEMENTWISE:
            j += 1
        end = j
        while end < len(mods) and not isinstance(mods[end], (nn.Conv2d, nn.Sequential, *_POOLS)):
            end += 1
        if end == len(mods) or not isinstance(mods[end], _POOLS):
            i += 1
            continue
        chain = tuple(prefix + names[n] for n in range(i, end + 1))
        if avg == "exact" and isinstance(mods[end], nn.AvgPool2d):
            problem = (_conv_problem(mods[i]) or _pool_problem(mods[end])
                       or _exact_avg_problem(mods[i + 1:end], chain[1:-1]))
            if problem:
                report._skip(chain, problem)
            else:
                bns = [m for m in mods[i + 1:end] if type(m) is nn.BatchNorm2d]
                seq._modules[names[i]] = _avg_from_conv(mods[i], bns, _module_window(mods[end]))
                dropped.update(names[n] for n in range(i + 1, end + 1) if type(mods[n]) in (nn.BatchNorm2d, *_POOLS))
                report.converted.append(chain)
        elif end != j:
            report._skip(chain, f"{type(mods[j]).__name__} ({prefix}{names[j]}) between the conv and the pool "
                                "is not element-wise")
        else:
            problem = (_conv_problem(mods[i]) or _pool_problem(mods[end])
                       or _mode_problem(mode, _module_window(mods[end])))
            if problem:
                report._skip(chain, problem)
            else:
                seq._modules[names[i]] = _easy_from_conv(mods[i], mode, _module_window(mods[end]))
                dropped.add(names[end])
                report.converted.append(chain)
        i = end + 1
    if dropped:
        seq._modules = type(seq._modules)((n, m) for n, m in seq._modules.items() if n not in dropped)


class _Tracer(fx.Tracer):
    """Keeps ecp's modules whole (their forward checks shapes, which a symbolic trace cannot)."""

    def is_leaf_module(self, m, module_qualified_name):
        return isinstance(m, (EasyConvPool2d, RandomPool2d, NeighborFill)) or super().is_leaf_module(
            m, module_qualified_name)


def _node_kind(gm, node):
    """("conv" | "elementwise" | "pool" | None, problem of the pool or None) of a graph node."""
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if isinstance(m, nn.Conv2d):
            return "conv", None
        if type(m) in ELEMENTWISE:
            return "elementwise", None
        if isinstance(m, _POOLS):
            return "pool", _pool_problem(m)
    elif node.op == "call_function":
        if node.target in _ELEMENTWISE_FUNCTIONS:
            return "elementwise", None
        if node.target in _POOL_FUNCTIONS:
            spec = _POOL_FUNCTIONS[node.target]
            values = dict(spec)
            values.update(zip([k for k, _ in spec], node.args[1:]))
            values.update(node.kwargs)
            if node.target is F.max_pool2d:
                extra = "F.max_pool2d returns indices" if values["return_indices"] else None
                return "pool", _pool_args_problem("max_pool2d", values["kernel_size"], values["stride"],
                                                  values["padding"], values["dilation"], values["ceil_mode"], extra)
            extra = f"F.avg_pool2d has divisor_override={values['divisor_override']}" if values[
                "divisor_override"] else None
            return "pool", _pool_args_problem("avg_pool2d", values["kernel_size"], values["stride"], values["padding"],
                                              1, values["ceil_mode"], extra)
    elif node.op == "call_method" and node.target in _ELEMENTWISE_METHODS:
        return "elementwise", None
    return None, None


def _node_window(gm, node):
    """The (p, s) of a pool node (a module or an F.max_pool2d / F.avg_pool2d call) without problem."""
    if node.op == "call_module":
        return _module_window(gm.get_submodule(node.target))
    spec = _POOL_FUNCTIONS[node.target]
    values = dict(spec)
    values.update(zip([k for k, _ in spec], node.args[1:]))
    values.update(node.kwargs)
    return _window(values["kernel_size"], values["stride"])


def _only_input(node, prev):
    """Whether ``prev`` is ``node``'s first argument and no other node feeds it."""
    others = [a for a in list(node.args[1:]) + list(node.kwargs.values()) if isinstance(a, fx.Node)]
    return bool(node.args) and node.args[0] is prev and not others


def _is_avg_pool(gm, node):
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), nn.AvgPool2d)
    return node.op == "call_function" and node.target is F.avg_pool2d


def _convert_graph(model, mode, avg, report):
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # noqa: BLE001  (any failure of a user's forward under tracing)
        report._skip((type(model).__name__,), f"torch.fx cannot trace its forward ({type(exc).__name__}: "
                                              f"{exc}); only its nn.Sequential parts were converted")
        return model
    gm = fx.GraphModule(model, graph, class_name=type(model).__name__)
    calls = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    changed = False
    for node in list(gm.graph.nodes):
        if _node_kind(gm, node)[0] != "conv":
            continue
        chain, cur, pool, problem = [node], node, None, None
        while True:
            users = list(cur.users)
            kinds = [_node_kind(gm, u) for u in users]
            if len(users) != 1:
                if any(kind == "pool" for kind, _ in kinds):
                    pool = next(u for u, (kind, _) in zip(users, kinds) if kind == "pool")
                    problem = f"the full-size output of {cur.name} is also used by {len(users) - 1} other node(s)"
                break
            (kind, pool_problem), nxt = kinds[0], users[0]
            if kind == "elementwise" and _only_input(nxt, cur):
                chain.append(nxt)
                cur = nxt
                continue
            if kind == "pool" and _only_input(nxt, cur):
                pool, problem = nxt, pool_problem
            break
        if pool is None:
            continue
        names = tuple(n.target if n.op == "call_module" else n.name for n in [*chain, pool])
        problem = problem or _conv_problem(gm.get_submodule(node.target))
        if problem is None and calls[node.target] > 1:
            problem = f"the conv {node.target} is called {calls[node.target]} times"
        exact = avg == "exact" and _is_avg_pool(gm, pool)
        if problem is None and exact:
            mids = chain[1:]
            if any(n.op != "call_module" for n in mids):
                problem = (f"{next(n.name for n in mids if n.op != 'call_module')} between the conv and the average "
                           "pool is a function call: avg='exact' keeps only Identity / Dropout (eval) modules there")
            else:
                problem = _exact_avg_problem([gm.get_submodule(n.target) for n in mids], names[1:-1])
                if problem is None and any(type(gm.get_submodule(n.target)) is nn.BatchNorm2d for n in mids):
                    problem = "BatchNorm2d outside an nn.Sequential is not folded (only the Sequential pass folds it)"
        window = None if problem else _node_window(gm, pool)
        if problem is None and not exact:
            problem = _mode_problem(mode, window)
        if problem:
            report._skip(names, problem)
            continue
        conv = gm.get_submodule(node.target)
        new = _avg_from_conv(conv, (), window) if exact else _easy_from_conv(conv, mode, window)
        gm.set_submodule(node.target, new, strict=False)
        pool.replace_all_uses_with(cur)
        gm.graph.erase_node(pool)
        report.converted.append(names)
        changed = True
    if not changed:
        return model
    gm.graph.lint()
    gm.recompile()
    return gm


def convert(model: nn.Module, mode: int | str = "random", inplace: bool = False, *, avg: str = "random",
            return_report: bool = False) -> nn.Module | tuple[nn.Module, ConversionReport]:
    """Replace every conv -> [element-wise layers] -> pool chain by EasyConvPool2d -> [the same layers].

    A chain is ``nn.Conv2d`` (stride 1, dilation 1, groups 1, zero padding), then any number of
    element-wise layers (ReLU, LeakyReLU, ELU, GELU, SiLU, Tanh, Sigmoid, Identity, Dropout), then
    ``nn.MaxPool2d`` or ``nn.AvgPool2d`` of a square p x p window, p in 1..4, with one stride s in
    1..p (default: p), no padding, no dilation, ceil_mode False. It becomes an
    :class:`EasyConvPool2d` of that window (``pool_size=p, pool_stride=s``) holding the conv's own
    weight and bias Parameters, then the same element-wise layers; the pool goes (it becomes Random
    Pooling, mode K in 0..p^2-1). Chains that break a rule (a BatchNorm between conv and pool, a
    strided conv, groups, padding, ceil_mode, dilation, a window above 4x4 or a stride above it, a
    conv output used elsewhere ...) stay as they are and are named, with the reason, in the report.

    Parameters
    ----------
    model : nn.Module
        The model. Its ``nn.Sequential`` parts are converted in place of their layers; a model
        whose ``forward`` is not a plain Sequential is also traced with ``torch.fx``.
    mode : int 0..15 or "random", default "random"
        Mode K of every new layer; ``"random"`` draws one K per layer from torch's generator (in
        0..p^2-1 for its window). A chain whose window has no mode K (p^2 <= K) stays, named in
        the report.
    inplace : bool, default False
        Convert ``model`` itself (its Parameters stay the same objects) instead of a deep copy.
    avg : {"random", "exact"}, default "random"
        What an average pool becomes: Random Pooling like a max pool (``"random"``: every
        element-wise chain converts, and a model converted before this option existed converts
        the same), or exact average pooling (``"exact"``): ``Conv2d -> [BatchNorm2d (eval)] ->
        [Identity / Dropout (eval)] -> AvgPool2d`` becomes ``EasyConvPool2d(pool="avg")`` with
        the BatchNorm folded into its weight and bias (new Parameters then), the same function
        within float rounding; other chains ending in an average pool stay (in the report).
        ``mode`` does not apply to these layers.
    return_report : bool, default False
        Also return the :class:`ConversionReport`. Without it, chains left unconverted are named
        in a ``UserWarning``.

    Returns
    -------
    model : nn.Module
        The converted model: ``model`` (or its copy) changed in place, or a ``torch.fx.GraphModule``
        when the fx pass converted a chain outside the Sequentials.
    report : ConversionReport
        With ``return_report=True`` only.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.
    ValueError
        If ``mode`` is not an integer in 0..15 or "random", or ``avg`` not "random" or "exact".

    Examples
    --------
    >>> import torch, ecp.torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    >>> ecp.torch.convert(net, mode=0)
    Sequential(
      (0): EasyConvPool2d(1, 4, kernel_size=(3, 3), padding=(1, 1), mode=0)
      (1): ReLU()
      (3): Flatten(start_dim=1, end_dim=-1)
    )
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if mode != "random":
        _resolve_mode(mode, MAX_POOL_SIZE * MAX_POOL_SIZE)  # the error now, not at the first chain
    elif not isinstance(mode, str):
        raise TypeError(f'mode must be an integer in 0..{MAX_POOL_SIZE ** 2 - 1} or "random", got {mode!r}')
    if avg not in ("random", "exact"):
        raise ValueError(f'avg must be "random" or "exact", got {avg!r}')
    if not inplace:
        model = copy.deepcopy(model)
    report = ConversionReport()
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Sequential):
            _convert_sequential(module, f"{name}." if name else "", mode, avg, report)
    if not isinstance(model, nn.Sequential):
        model = _convert_graph(model, mode, avg, report)
    if return_report:
        return model, report
    if report.skipped:
        warnings.warn(f"ecp.torch.convert left {len(report.skipped)} chain(s) unconverted:\n"
                      + "\n".join(f"  {' -> '.join(c)}: {r}" for c, r in report.skipped), UserWarning, stacklevel=2)
    return model
