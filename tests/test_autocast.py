"""The DARTS step and the signal supernet under torch.autocast("cpu", bfloat16): the
fused mixed op runs in bf16 (float32 accumulation), the architecture and weight
parameters stay float32, and the losses and updates track the float32 run."""

import copy

import pytest
import torch

import nas
from nas.ops.mixed_op import _native_available

requires_native = pytest.mark.skipif(not _native_available(), reason="nas._C mixed_op not built")
ALL = [op.value for op in nas.all_ops()]


def _mixed_op_dtypes(fn):
    """The dtypes of x and alpha of every nas.mixed_op call fn() makes."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if str(func.overloadpacket) == "nas.mixed_op":
                seen.append((args[0].dtype, args[1].dtype))
            return func(*args, **(kwargs or {}))

    with Record():
        out = fn()
    return seen, out


def _step_both(model, make_opt, data):
    """One optimizer step in float32 and one under bf16 autocast, from the same state."""
    runs = {}
    for name in ("fp32", "bf16"):
        m = copy.deepcopy(model)
        opt = make_opt(m)
        if name == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                seen, res = _mixed_op_dtypes(lambda o=opt: o.step(*data))
        else:
            seen, res = _mixed_op_dtypes(lambda o=opt: o.step(*data))
        runs[name] = (m, res, seen)
    return runs


def _check_runs(runs, model):
    (m32, r32, seen32), (m16, r16, seen16) = runs["fp32"], runs["bf16"]
    assert seen32 and all(d == (torch.float32, torch.float32) for d in seen32)
    # Under autocast every mixed op ran in bf16 with float32 logits.
    assert seen16 and all(d == (torch.bfloat16, torch.float32) for d in seen16), seen16
    assert r16.train_loss == pytest.approx(r32.train_loss, rel=0.02)
    assert r16.val_loss == pytest.approx(r32.val_loss, rel=0.02)
    (a0,) = model.arch_parameters()
    (a32,) = m32.arch_parameters()
    (a16,) = m16.arch_parameters()
    assert a16.dtype == torch.float32 and a16.grad.dtype == torch.float32
    # alpha moved, and in the same direction as in float32 (bf16 keeps ~3 digits).
    d32, d16 = (a32 - a0).detach().flatten(), (a16 - a0).detach().flatten()
    assert d16.abs().sum() > 0
    cos = torch.nn.functional.cosine_similarity(d32.double(), d16.double(), dim=0)
    assert cos > 0.95, float(cos)
    for p in m16.weight_parameters():
        assert p.dtype == torch.float32


@requires_native
@pytest.mark.parametrize("order", ["first", "second"])
def test_darts_step_under_bf16_autocast(order):
    torch.manual_seed(0)
    model = nas.SuperNet(nas.SearchSpace(3, ALL), 16, num_layers=2, residual=True)
    data = [torch.randn(8, 42, 16) for _ in range(4)]

    def make_opt(m):
        return nas.DARTSOptimizer(m, 0.025, 0.1, order=order, alpha_optimizer="sgd")

    _check_runs(_step_both(model, make_opt, data), model)


@requires_native
def test_signal_supernet_under_bf16_autocast():
    torch.manual_seed(1)
    model = nas.build_supernet_model(
        nas.SearchSpace(3, ALL), lookback=96, horizon=24, num_features=3, patch_len=16,
        stride=8, hidden=16, num_layers=2,
    )  # fmt: skip
    x = torch.randn(4, 96, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        seen, y16 = _mixed_op_dtypes(lambda: model(x))
    assert seen and all(d == (torch.bfloat16, torch.float32) for d in seen)
    y32 = model(x)
    assert y16.shape == y32.shape == (4, 24, 3)
    torch.testing.assert_close(y16.float(), y32, rtol=0.05, atol=0.05)
    data = [torch.randn(4, 96, 3), torch.randn(4, 24, 3), torch.randn(4, 96, 3),
            torch.randn(4, 24, 3)]  # fmt: skip

    def make_opt(m):
        return nas.DARTSOptimizer(m, 0.01, 0.1, alpha_optimizer="sgd")

    _check_runs(_step_both(model, make_opt, data), model)
