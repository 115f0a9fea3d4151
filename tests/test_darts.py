import math

import pytest
import torch
from torch import nn

import nas
from nas import DARTSCell, DARTSLayer, DARTSOptimizer, OpType, SearchSpace, SuperNet
from nas.ops import _reference

SIGNAL = ["avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"]
ALL = [op.value for op in nas.all_ops()]

pytestmark = pytest.mark.filterwarnings("ignore:nas._C:RuntimeWarning")


class Scale(nn.Module):
    def __init__(self, s: float) -> None:
        super().__init__()
        self.s = s

    def forward(self, x):
        return self.s * x


class Tiny(nn.Module):
    """alpha over two Linear candidates, for exact second-order checks."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = DARTSLayer([nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2), nn.Tanh())])

    def forward(self, x):
        return self.layer(x)

    def arch_parameters(self):
        return self.layer.arch_parameters()

    def weight_parameters(self):
        return self.layer.weight_parameters()


# -- DARTSLayer -----------------------------------------------------------------


def test_layer_requires_two_candidates():
    for c in ([], ["skip_connect"], [nn.Identity()]):
        with pytest.raises(ValueError) as ei:
            DARTSLayer(c)
        assert str(ei.value) == "DARTSLayer requires at least 2 candidate operations"


def test_layer_api():
    layer = DARTSLayer(ALL, hidden=6)
    assert layer.fused and layer.op_type == "DARTSMixedOp"
    assert layer.attributes() == {"num_ops": 8}
    assert layer.alpha.shape == (8,) and layer.alpha.eq(0).all()
    torch.testing.assert_close(layer.weights(), torch.full((8,), 1 / 8))
    assert layer.arch_parameters() == [layer.alpha]
    n_weights = sum(p.numel() for p in layer.weight_parameters())
    assert n_weights == sum(nas.op_params_1d(6).values())
    assert all(p is not layer.alpha for p in layer.weight_parameters())
    assert layer.output_shape([4, 7, 6]) == (4, 7, 6)
    with pytest.raises(ValueError, match="hidden is required"):
        DARTSLayer(["conv_3x3", "zero"])
    with pytest.raises(ValueError, match="unknown op 'conv_7x7'"):
        DARTSLayer(["conv_7x7", "zero"])


def test_layer_output_shape_of_modules():
    layer = DARTSLayer([nn.Linear(5, 3), nn.Sequential(nn.Linear(5, 3), nn.ReLU())])
    assert not layer.fused and layer.output_shape((2, 5)) == (2, 3)
    assert layer.weight_parameters() == list(layer.candidates.parameters())
    bad = DARTSLayer([nn.Linear(5, 3), nn.Linear(5, 4)])
    with pytest.raises(
        ValueError, match=r"candidate 1 outputs shape \[2, 4\], candidate 0 \[2, 3\]"
    ):
        bad.output_shape((2, 5))


@pytest.mark.parametrize(
    "ops", [SIGNAL, ALL, ["conv_3x3", "skip_connect"], ["zero", "max_pool_3x3"]]
)
@pytest.mark.parametrize("N", [1, 7])
def test_fused_layer_matches_reference(ops, N):
    torch.manual_seed(0)
    layer = DARTSLayer(ops, hidden=5).double()
    with torch.no_grad():
        layer.alpha.copy_(torch.randn(len(ops)))
    x = torch.randn(3, N, 5, dtype=torch.float64)
    mods = iter(layer.candidates)
    outs = []
    for op in ops:
        o = nas.as_op(op)
        outs.append(
            nas.signal_ops.apply_parameter_free(o, x)
            if o in nas.signal_ops.PARAMETER_FREE_OPS
            else next(mods)(x)
        )
    w = torch.softmax(layer.alpha.detach(), 0)
    want = sum(wk * ok for wk, ok in zip(w, outs, strict=True))
    torch.testing.assert_close(layer(x), want)
    # the same through the public reference
    params = [m(x) for m in layer.candidates]
    torch.testing.assert_close(layer(x), _reference.mixed_op(x, layer.alpha, ops, params))


def test_duplicate_candidates_are_errors():
    # a repeated op gets two alphas for one op: the search would split its weight
    with pytest.raises(ValueError, match="duplicate op 'skip_connect' at positions 0 and 1"):
        DARTSLayer(["skip_connect", "skip_connect", "zero"])
    with pytest.raises(ValueError, match="duplicate op 'zero' at positions 1 and 2"):
        DARTSLayer(["skip_connect", OpType.ZERO, "zero"])
    m = nn.Identity()
    with pytest.raises(ValueError, match="duplicate module at positions 0 and 2"):
        DARTSLayer([m, nn.Identity(), m])
    assert not DARTSLayer([nn.Identity(), nn.Identity()]).fused  # equal, not the same


@pytest.mark.parametrize("hidden", [0, -3, 2.0, True, "4"])
def test_hidden_must_be_a_positive_int(hidden):
    match = f"hidden must be a positive integer, got {hidden!r}"
    with pytest.raises(ValueError, match=match):
        DARTSLayer(SIGNAL, hidden=hidden)
    with pytest.raises(ValueError, match=match):
        DARTSCell(SearchSpace(3, SIGNAL), hidden)  # parameter-free: hidden was never used
    with pytest.raises(ValueError, match=match):
        SuperNet(SearchSpace(3, SIGNAL), hidden)
    assert DARTSLayer(SIGNAL).alpha.shape == (4,)  # None: no op needs it


def _candidate_grads_scaled(layer, x, n_candidates):
    """Param grads of each candidate in the mix == w_k * grads of the candidate alone."""
    g = torch.randn_like(layer(x))
    w = torch.softmax(layer.alpha.detach(), 0)
    layer.zero_grad()
    (layer(x) * g).sum().backward()
    mixed = {id(p): p.grad.clone() for p in layer.weight_parameters()}
    return g, w, mixed


def test_candidate_gradients_scaled_by_weight_modules():
    torch.manual_seed(1)
    layer = DARTSLayer(
        [nn.Linear(4, 3), nn.Linear(4, 3), nn.Sequential(nn.Linear(4, 3), nn.Tanh())]
    )
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.3, -1.0, 2.0]))
    x = torch.randn(5, 4)
    g, w, mixed = _candidate_grads_scaled(layer, x, 3)
    for k, m in enumerate(layer.candidates):
        alone = torch.autograd.grad((m(x) * g).sum(), list(m.parameters()))
        for p, a in zip(m.parameters(), alone, strict=True):
            torch.testing.assert_close(mixed[id(p)], w[k] * a)
            assert not torch.allclose(mixed[id(p)], a)  # the seed's unscaled gradient


def test_candidate_gradients_scaled_by_weight_fused():
    torch.manual_seed(2)
    ops = ["conv_3x3", "sep_conv_5x5", "skip_connect", "zero", "conv_5x5"]
    layer = DARTSLayer(ops, hidden=4).double()
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.5, -0.2, 1.0, 0.0, -1.5]))
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    g, w, mixed = _candidate_grads_scaled(layer, x, len(ops))
    for k, m in zip([0, 1, 4], layer.candidates, strict=True):
        alone = torch.autograd.grad((m(x) * g).sum(), list(m.parameters()))
        for p, a in zip(m.parameters(), alone, strict=True):
            torch.testing.assert_close(mixed[id(p)], w[k] * a)


def test_alpha_gradient_formula():
    # dalpha_k = w_k * <g, o_k - y> (the seed's derivation)
    torch.manual_seed(3)
    layer = DARTSLayer(SIGNAL).double()
    with torch.no_grad():
        layer.alpha.copy_(torch.randn(4))
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    g = torch.randn(2, 7, 3, dtype=torch.float64)
    y = layer(x)
    (y * g).sum().backward()
    w = layer.weights()
    outs = [nas.signal_ops.apply_parameter_free(op, x) for op in SIGNAL]
    want = torch.stack([w[k] * (g * (outs[k] - y.detach())).sum() for k in range(4)])
    torch.testing.assert_close(layer.alpha.grad, want)


# -- DARTSOptimizer -----------------------------------------------------------------


def test_parity_check_first_order_sgd():
    layer = DARTSLayer([Scale(1.0), Scale(2.0)])
    opt = DARTSOptimizer(layer, weight_lr=0.1, alpha_lr=0.01)
    ones = torch.ones(4, 3)
    res = opt.step(ones, torch.full((4, 3), 2.0), ones, torch.full((4, 3), 2.0))
    torch.testing.assert_close(layer.alpha.detach(), torch.tensor([-0.0025, 0.0025]))
    assert res.train_loss == pytest.approx(0.25) and res.val_loss == pytest.approx(0.25)


@pytest.mark.parametrize("name", ["weight_lr", "alpha_lr"])
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_learning_rates_must_be_positive(name, bad):
    kw = {"weight_lr": 0.1, "alpha_lr": 0.1, name: bad}
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        DARTSOptimizer(Tiny(), **kw)


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="order must be 'first' or 'second', got 'third'"):
        DARTSOptimizer(Tiny(), 0.1, 0.1, order="third")
    with pytest.raises(ValueError, match="alpha_optimizer must be 'sgd' or 'adam', got 'rmsprop'"):
        DARTSOptimizer(Tiny(), 0.1, 0.1, alpha_optimizer="rmsprop")
    with pytest.raises(ValueError, match="arch_parameters"):
        DARTSOptimizer(nn.Linear(2, 2), 0.1, 0.1)
    with pytest.raises(ValueError, match="weight_lr must be finite"):
        DARTSOptimizer(Tiny(), math.inf, 0.1)
    # NaN decay or momentum passed `< 0` and turned every weight into NaN
    for name in ("weight_decay", "weight_momentum", "alpha_weight_decay"):
        for bad in (math.nan, -0.1, math.inf, "0.1"):
            with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
                DARTSOptimizer(Tiny(), 0.1, 0.1, **{name: bad})
    opt = DARTSOptimizer(Tiny(), 0.1, 0.1, loss=lambda p, t: (p - t) ** 2)
    x, y = torch.randn(4, 3), torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"loss must return a scalar tensor, got \(4, 2\)"):
        opt.step(x, y, x, y)


def test_adam_defaults_are_darts():
    opt = DARTSOptimizer(Tiny(), 0.025, alpha_optimizer="adam")
    group = opt.alpha_optimizer.param_groups[0]
    assert isinstance(opt.alpha_optimizer, torch.optim.Adam)
    assert group["lr"] == 3e-4 and group["betas"] == (0.5, 0.999)
    assert group["weight_decay"] == 1e-3


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    f = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return f(6, 3), f(6, 2), f(5, 3), f(5, 2)


def _exact_alpha_grad(model, data, xi, order, momentum=0.0, wd=0.0, loss=None):
    """d/dalpha L_val(w', alpha), w' = w - xi*(grad_w L_train + wd*w) (the first SGD
    step, with or without momentum), by autograd through the unrolled step (second
    order) or with w' held fixed (first order)."""
    loss = loss or nn.functional.mse_loss
    tx, ty, vx, vy = data
    names = dict(model.named_parameters())
    a_names = [n for n, p in names.items() if any(p is q for q in model.arch_parameters())]
    w_names = [n for n in names if n not in a_names]
    alpha = {n: names[n].detach().clone().requires_grad_() for n in a_names}
    w = {n: names[n].detach().clone().requires_grad_() for n in w_names}
    call = torch.func.functional_call
    lt = loss(call(model, {**alpha, **w}, (tx,)), ty)
    gw = torch.autograd.grad(lt, list(w.values()), create_graph=(order == "second"))
    w2 = {n: w[n] - xi * (g + wd * w[n]) for n, g in zip(w_names, gw, strict=True)}
    if order == "first":
        w2 = {n: v.detach() for n, v in w2.items()}
    lv = loss(call(model, {**alpha, **w2}, (vx,)), vy)
    return torch.autograd.grad(lv, list(alpha.values())), float(lt.detach()), float(lv.detach())


@pytest.mark.parametrize("order", ["first", "second"])
@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 0.01)])
def test_optimizer_alpha_gradient_vs_exact(order, momentum, wd):
    torch.manual_seed(4)
    model = Tiny().double()
    with torch.no_grad():
        model.layer.alpha.copy_(torch.tensor([0.4, -0.3]))
    data = _data()
    want, lt, lv = _exact_alpha_grad(model, data, 0.3, order, momentum, wd)
    opt = DARTSOptimizer(model, 0.3, 0.05, order=order, weight_momentum=momentum, weight_decay=wd)
    res = opt.step(*data)
    torch.testing.assert_close(model.layer.alpha.grad, want[0], rtol=1e-5, atol=1e-9)
    assert res.train_loss == pytest.approx(lt) and res.val_loss == pytest.approx(lv)
    if order == "second":  # the second-order term is not negligible here
        first, _, _ = _exact_alpha_grad(model, data, 0.3, "first", momentum, wd)
        assert (want[0] - first[0]).abs().max() > 1e-3


def test_second_order_on_supernet_vs_exact(monkeypatch):
    # The optimizer needs only first derivatives (the Hessian-vector product is a
    # finite difference), so it runs on the fused op; the exact value differentiates
    # through a gradient, so it is computed with the twice-differentiable reference.
    torch.manual_seed(5)
    space = SearchSpace(3, ["conv_3x3", "sep_conv_3x3", "avg_pool_3x3", "skip_connect", "zero"])
    model = SuperNet(space, hidden=3, num_layers=2).double()
    with torch.no_grad():
        model.alpha.copy_(torch.randn(3, 5))
    g = torch.Generator().manual_seed(6)
    data = [torch.randn(2, 5, 3, generator=g, dtype=torch.float64) for _ in range(4)]
    with monkeypatch.context() as m:
        m.setattr(nas.ops, "mixed_op", _reference.mixed_op)
        want, _, _ = _exact_alpha_grad(model, data, 0.1, "second")
    DARTSOptimizer(model, 0.1, 0.01, order="second").step(*data)
    torch.testing.assert_close(model.alpha.grad, want[0], rtol=1e-4, atol=1e-8)


def test_second_order_restores_unrolled_weights():
    torch.manual_seed(7)
    model = Tiny().double()
    data = _data(1)
    ref = Tiny().double()
    ref.load_state_dict(model.state_dict())
    DARTSOptimizer(model, 0.2, 0.1, order="second").step(*data)
    DARTSOptimizer(ref, 0.2, 0.1, order="first").step(*data)
    for p, q in zip(model.weight_parameters(), ref.weight_parameters(), strict=True):
        torch.testing.assert_close(p, q)  # the same inner step; only alpha differs


def test_any_loss_callable():
    layer = DARTSLayer([Scale(1.0), Scale(3.0)])
    opt = DARTSOptimizer(layer, 0.1, 0.5, loss=lambda p, t: (p - t).abs().mean())
    x = torch.ones(2, 2)
    res = opt.step(x, x, x, x)  # y = 2 > 1: the L1 loss pushes toward Scale(1)
    assert res.val_loss == pytest.approx(1.0)
    assert layer.alpha[0] > layer.alpha[1]


def test_search_finds_the_generating_op():
    torch.manual_seed(8)
    layer = DARTSLayer(SIGNAL)
    opt = DARTSOptimizer(layer, 0.1, 1.0)
    for _ in range(30):
        x = torch.randn(8, 9, 4)
        v = torch.randn(8, 9, 4)
        opt.step(x, nas.signal_ops.max_pool_3(x), v, nas.signal_ops.max_pool_3(v))
    assert int(layer.weights().argmax()) == SIGNAL.index("max_pool_3x3")


# -- DARTSCell / SuperNet -------------------------------------------------------------


def _cell_reference(cell, x, alpha):
    """The cell by the reference mixed op, node by node."""
    nodes = [x]
    for j in range(1, cell.space.num_nodes):
        acc = 0
        for e, (i, d) in enumerate(cell.space.edges):
            if d == j:
                params = [m(nodes[i]) for m in cell.edge_ops[e]]
                acc = acc + _reference.mixed_op(nodes[i], alpha[e], cell.space.ops, params)
        nodes.append(acc)
    return nodes[-1]


@pytest.mark.parametrize("num_nodes", [2, 4])
def test_cell_matches_reference(num_nodes):
    torch.manual_seed(9)
    space = SearchSpace(num_nodes, ALL)
    cell = DARTSCell(space, 4).double()
    alpha = torch.randn(space.num_edges, 8, dtype=torch.float64)
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    torch.testing.assert_close(cell(x, alpha), _cell_reference(cell, x, alpha))
    with pytest.raises(ValueError, match=r"alpha shape \(\d+, 3\) does not match"):
        cell(x, alpha[:, :3])


def test_cell_errors():
    with pytest.raises(ValueError, match="at least 2 candidate operations, the space has 1"):
        DARTSCell(SearchSpace(3, ["zero"]), 4)
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        SuperNet(SearchSpace(3, SIGNAL), 4, 0)


def test_supernet_shares_one_alpha_and_its_grad_is_the_sum_over_cells():
    torch.manual_seed(10)
    space = SearchSpace(3, ["conv_3x3", "avg_pool_3x3", "skip_connect", "zero"])
    net = SuperNet(space, 4, num_layers=3).double()
    with torch.no_grad():
        net.alpha.copy_(torch.randn(3, 4))
    assert net.arch_parameters() == [net.alpha]
    names = {n for n, _ in net.named_parameters()}
    assert len(net.weight_parameters()) == len(names) - 1
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    g = torch.randn(2, 6, 4, dtype=torch.float64)
    (net(x) * g).sum().backward()
    # the same network with a private copy of alpha per cell
    copies = [net.alpha.detach().clone().requires_grad_() for _ in range(3)]
    h = x
    for cell, norm, a in zip(net.cells, net.norms, copies, strict=True):
        h = norm(cell(h, a))
    (h * g).sum().backward()
    per_cell = torch.stack([a.grad for a in copies])
    assert (per_cell[0] - per_cell[1]).abs().max() > 1e-6  # the cells differ
    torch.testing.assert_close(net.alpha.grad, per_cell.sum(0))


def test_supernet_discretize_counts_1d_params():
    space = SearchSpace(3, ALL)
    net = SuperNet(space, 8, num_layers=2)
    with torch.no_grad():
        net.alpha[:, 2] = 1.0  # sep_conv_3x3 everywhere
    arch = net.discretize()
    assert all(e.op == OpType.SEP_CONV_3X3 for e in arch.cell.edges)
    assert arch.total_params == 3 * (3 * 8 + 8 * 8)
    fitted = net.discretize(100, fit_budget=True)
    assert fitted.total_params <= 100
    # the discretized cell runs as a CellModule with the same shapes
    out = nas.signal_ops.CellModule(arch.cell, 8)(torch.randn(2, 5, 8))
    assert out.shape == (2, 5, 8)
    assert sum(p.numel() for p in nas.signal_ops.CellModule(arch.cell, 8).parameters()) == (
        arch.total_params
    )


def test_supernet_search_learns_the_generating_op():
    # data made by max_pool -> LayerNorm, twice: the supernet (one edge, two cells
    # sharing alpha, DARTS' second-order Adam settings) must come to prefer max_pool
    def target(x):
        for _ in range(2):
            x = torch.nn.functional.layer_norm(nas.signal_ops.max_pool_3(x), x.shape[-1:])
        return x

    torch.manual_seed(11)
    net = SuperNet(SearchSpace(2, SIGNAL), 4, num_layers=2)
    opt = DARTSOptimizer(net, 0.05, 3e-2, order="second", alpha_optimizer="adam")
    losses = []
    for _ in range(30):
        x, v = torch.randn(8, 9, 4), torch.randn(8, 9, 4)
        losses.append(opt.step(x, target(x), v, target(v)).val_loss)
    w = net.weights()[0]
    assert int(w.argmax()) == SIGNAL.index("max_pool_3x3"), w
    assert w.max() > 0.5 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) < sum(losses[:5])
    assert net.discretize().cell.edges[0].op == OpType.MAX_POOL_3X3


def _state(opt):
    """Every parameter, gradient and optimizer state tensor of a DARTSOptimizer, cloned."""
    out = [p.detach().clone() for p in opt.weights + opt.alphas]
    out += [None if p.grad is None else p.grad.clone() for p in opt.weights + opt.alphas]
    for o in (opt.weight_optimizer, opt.alpha_optimizer):
        for st in o.state.values():
            out += [v.clone() if torch.is_tensor(v) else v for v in st.values()]
    return out


def _assert_bitwise_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if torch.is_tensor(x):
            assert torch.equal(x.view(-1).view(torch.uint8), y.view(-1).view(torch.uint8))
        else:
            assert x == y


@pytest.mark.parametrize("order", ["first", "second"])
def test_step_on_non_finite_data_is_refused_and_changes_nothing(order):
    torch.manual_seed(12)
    net = SuperNet(SearchSpace(3, ["conv_3x3", "max_pool_3x3", "zero"]), 4)
    opt = DARTSOptimizer(net, 0.05, 3e-3, order=order, alpha_optimizer="adam",
                         weight_momentum=0.9)  # fmt: skip
    x, y = torch.randn(4, 6, 4), torch.randn(4, 6, 4)
    opt.step(x, y, x, y)  # momentum buffers and Adam moments exist now
    before = _state(opt)
    for k, name in enumerate(["train_x", "train_y", "val_x", "val_y"]):
        args = [x, y, x, y]
        args[k] = args[k].clone()
        args[k][1, 2, 3] = float("nan") if k % 2 else float("inf")
        with pytest.raises(ValueError, match=f"{name} has non-finite values"):
            opt.step(*args)
        _assert_bitwise_equal(_state(opt), before)


@pytest.mark.parametrize("order", ["first", "second"])
def test_non_finite_loss_or_gradient_refuses_the_whole_step(order):
    torch.manual_seed(13)
    net = SuperNet(SearchSpace(3, ["conv_3x3", "max_pool_3x3", "zero"]), 4)
    x, y = torch.randn(4, 6, 4), torch.randn(4, 6, 4)
    calls, fail = [0], {}  # loss calls in this step; call number -> how it fails

    def loss(p, t):
        calls[0] += 1
        how = fail.get(calls[0])
        if how == "grad":  # a finite loss whose gradient is NaN
            p.register_hook(lambda g: torch.full_like(g, float("nan")))
        out = torch.nn.functional.mse_loss(p, t)
        return out * float(how) if how in ("nan", "inf") else out

    opt = DARTSOptimizer(net, 0.05, 3e-3, order=order, alpha_optimizer="adam",
                         weight_momentum=0.9, loss=loss)  # fmt: skip
    opt.step(x, y, x, y)  # momentum buffers and Adam moments exist now
    cases = [
        ({1: "nan"}, "training loss is nan at this step; weights and alpha were left unchanged"),
        ({1: "grad"}, "weight gradient is nan at this step; weights and alpha were left"),
        ({2: "inf"}, "validation loss is inf at this step; the weight step was undone; alpha"),
        ({2: "grad"}, "alpha gradient is nan at this step; the weight step was undone"),
    ]
    if order == "second":  # the Hessian-vector product's losses (train loss at w +- eps v)
        cases.append(({3: "nan"}, "alpha gradient is nan at this step; the weight step was"))
    for f, match in cases:
        before = _state(opt)
        calls[0], fail = 0, f
        with pytest.raises(FloatingPointError, match=match):
            opt.step(x, y, x, y)
        _assert_bitwise_equal(_state(opt), before)
        fail = {}
    calls[0] = 0
    assert math.isfinite(opt.step(x, y, x, y).val_loss)  # and it still steps


def test_named_candidates_go_through_nas_ops_mixed_op(monkeypatch):
    calls = []
    real = nas.ops.mixed_op

    def spy(x, alpha, ops, param_outputs):
        calls.append((tuple(ops), len(param_outputs)))
        return real(x, alpha, ops, param_outputs)

    monkeypatch.setattr(nas.ops, "mixed_op", spy)
    DARTSLayer(["conv_3x3", "skip_connect", "sep_conv_3x3"], hidden=3)(torch.randn(1, 4, 3))
    assert calls == [((OpType.CONV_3X3, OpType.SKIP_CONNECT, OpType.SEP_CONV_3X3), 2)]
    calls.clear()
    SuperNet(SearchSpace(3, SIGNAL), 3, num_layers=2)(torch.randn(1, 4, 3))
    assert len(calls) == 2 * 3  # one fused mix per edge per cell
    calls.clear()
    DARTSLayer([Scale(1.0), Scale(2.0)])(torch.randn(1, 4, 3))
    assert calls == []  # arbitrary modules mix in PyTorch


def test_supernet_compiles_fullgraph():
    torch.manual_seed(12)
    net = SuperNet(SearchSpace(3, ["conv_3x3", "avg_pool_3x3", "skip_connect", "zero"]), 4, 1)
    with torch.no_grad():
        net.alpha.copy_(torch.randn(3, 4))
    x = torch.randn(2, 5, 4)
    y = torch.compile(net, fullgraph=True)(x)
    y.square().sum().backward()
    compiled_grad = net.alpha.grad.clone()
    net.zero_grad()
    want = net(x)
    want.square().sum().backward()
    torch.testing.assert_close(y, want)
    torch.testing.assert_close(compiled_grad, net.alpha.grad)


def _layer_reference(layer, x, ops):
    """sum_k w_k op_k(x), each parametric op's module taken in ops order."""
    mods = iter(layer.candidates)
    w = torch.softmax(layer.alpha, 0)
    total = 0
    for k, op in enumerate(ops):
        o = nas.as_op(op)
        if o in nas.signal_ops.PARAMETER_FREE_OPS:
            out = nas.signal_ops.apply_parameter_free(o, x)
        else:
            out = next(mods)(x)
        total = total + w[k] * out
    return total


def test_fused_layer_every_op_subset_and_order():
    import itertools

    torch.manual_seed(13)
    gen = torch.Generator().manual_seed(14)
    subsets = [s for r in range(2, 9) for s in itertools.combinations(ALL, r)]
    subsets += [tuple(ALL[i] for i in torch.randperm(8, generator=gen)[:r]) for r in (3, 5, 8)]
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    g = torch.randn(2, 5, 3, dtype=torch.float64)
    for ops in subsets:
        layer = DARTSLayer(ops, hidden=3).double()
        with torch.no_grad():
            layer.alpha.copy_(torch.randn(len(ops), generator=gen))
        y = layer(x)
        want = _layer_reference(layer, x, ops)
        torch.testing.assert_close(y, want, msg=lambda m, ops=ops: f"{ops}: {m}")
        got = torch.autograd.grad((y * g).sum(), [layer.alpha, *layer.weight_parameters()])
        ref = torch.autograd.grad((want * g).sum(), [layer.alpha, *layer.weight_parameters()])
        for a, b in zip(got, ref, strict=True):
            torch.testing.assert_close(a, b, msg=lambda m, ops=ops: f"{ops}: {m}")


def test_cell_with_ops_in_non_canonical_order():
    torch.manual_seed(15)
    space = SearchSpace(3, ["zero", "sep_conv_5x5", "max_pool_3x3", "conv_3x3"])
    cell = DARTSCell(space, 3).double()
    alpha = torch.randn(3, 4, dtype=torch.float64)
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    torch.testing.assert_close(cell(x, alpha), _cell_reference(cell, x, alpha))
