"""nas::mixed_op (+ mixed_op_backward) against the quark0/darts reference."""

import itertools
import math

import pytest
import torch

import nas
from nas.ops import _reference, mixed_op
from nas.ops.mixed_op import TOLERANCES, _native_available

from .conftest import devices

SIGNAL = ["avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"]
ALL = [op.value for op in nas.all_ops()]
PARAMETRIC = {"conv_3x3", "conv_5x5", "sep_conv_3x3", "sep_conv_5x5"}
# Tolerances by dtype: the kernel sums the K terms in another order than the reference.
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}

requires_native = pytest.mark.skipif(not _native_available(), reason="nas._C mixed_op not built")


def _inputs(shape, ops, dtype=torch.float64, device="cpu", seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype).to(device)
    alpha = torch.randn(len(ops), generator=g, dtype=dtype).to(device)
    params = [
        torch.randn(shape, generator=g, dtype=dtype).to(device) for op in ops if op in PARAMETRIC
    ]
    if grad:
        for t in [x, alpha, *params]:
            t.requires_grad_(True)
    return x, alpha, params


def _grads(fn, x, alpha, ops, params, cot):
    leaves = [t.detach().clone().requires_grad_(True) for t in [x, alpha, *params]]
    y = fn(leaves[0], leaves[1], ops, leaves[2:])
    grads = torch.autograd.grad(y, leaves, cot, allow_unused=True, materialize_grads=True)
    return y.detach(), grads


def _check(x, alpha, ops, params, seed=1):
    """Forward and every gradient of mixed_op vs the reference, shared random cotangent."""
    cot = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    cot = cot.to(x.device)
    y, grads = _grads(mixed_op, x, alpha, ops, params, cot)
    y_ref, grads_ref = _grads(_reference.mixed_op, x, alpha, ops, params, cot)
    tol = TOL[x.dtype]
    assert y.shape == x.shape and y.dtype == x.dtype
    torch.testing.assert_close(y, y_ref, **tol)
    names = ["x", "alpha"] + [f"param_outputs[{i}]" for i in range(len(params))]
    for name, got, ref in zip(names, grads, grads_ref, strict=True):
        torch.testing.assert_close(got, ref, **tol, msg=lambda m, n=name: f"d{n}: {m}")


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("N", [1, 2, 3, 7, 97])
@pytest.mark.parametrize("ops", [SIGNAL, ALL, ["max_pool_3x3", "conv_5x5", "avg_pool_3x3"]])
def test_matches_reference(device, dtype, N, ops):
    x, alpha, params = _inputs((3, N, 5), ops, dtype, device, seed=N)
    _check(x, alpha, ops, params)


def _conv_layout(params):
    """Param outputs stored as [B, D, N] and viewed as [B, N, D], as Conv1d(...).transpose(1, 2)
    returns them: the kernels mix these in their own layout (block transposes)."""
    return [p.transpose(1, 2).contiguous().transpose(1, 2) for p in params]


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
# N and D around the transpose block widths (2, 4, 8) and off them: full blocks, ragged
# edges on either side, and slabs narrower than one block.
@pytest.mark.parametrize("shape", [(2, 42, 16), (3, 7, 19), (2, 97, 9), (1, 1, 8), (2, 8, 8)])
def test_conv_layout_params_match_reference(device, dtype, shape):
    x, alpha, params = _inputs(shape, ALL, dtype, device, seed=shape[1])
    dn = _conv_layout(params)
    _check(x, alpha, ALL, dn)
    # dn and contiguous params mixed in one call.
    _check(x, alpha, ALL, [dn[0], params[1], dn[2], params[3]])
    ops = ["sep_conv_5x5", "max_pool_3x3"]
    x, alpha, params = _inputs(shape, ops, dtype, device, seed=shape[2])
    _check(x, alpha, ops, _conv_layout(params))


@pytest.mark.parametrize("device", devices())
def test_every_op_subset(device):
    # All 255 non-empty subsets of the 8 ops (single-op sets included), each in a
    # shuffled order so that alpha order and op code order differ.
    g = torch.Generator().manual_seed(0)
    for r in range(1, len(ALL) + 1):
        for subset in itertools.combinations(ALL, r):
            perm = torch.randperm(r, generator=g).tolist()
            ops = [subset[i] for i in perm]
            x, alpha, params = _inputs((2, 6, 3), ops, torch.float64, device, seed=r)
            _check(x, alpha, ops, params)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_ties_route_to_first_maximum(device, dtype):
    # Small integers make ties everywhere: the gradient must match max_pool1d's
    # (first maximum of each window wins) exactly, not just up to a tolerance.
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 3, (4, 9, 6), generator=g).to(dtype).to(device)
    for ops in (["max_pool_3x3"], ["max_pool_3x3", "avg_pool_3x3", "skip_connect"]):
        alpha = torch.zeros(len(ops), dtype=dtype, device=device)
        _check(x, alpha, ops, [])
    y, (dx, _) = _grads(
        mixed_op,
        x,
        torch.zeros(1, dtype=dtype, device=device),
        ["max_pool_3x3"],
        [],
        torch.ones_like(x),
    )
    # Each window sends its gradient (1) to exactly one element: dx sums to B*N*D.
    assert dx.sum().item() == x.numel()


@pytest.mark.parametrize("device", devices())
def test_non_contiguous_inputs(device):
    ops = ["conv_3x3", "avg_pool_3x3", "max_pool_3x3", "sep_conv_5x5", "skip_connect"]
    base = torch.randn(4, 6, 11, dtype=torch.float64, device=device)
    x = base.transpose(1, 2)[:, ::2]  # [4, 6, 6] with D not innermost
    assert not x.is_contiguous()
    alpha = torch.randn(10, dtype=torch.float64, device=device)[::2]
    # Conv outputs arrive as [B, D, N] tensors viewed as [B, N, D].
    params = [
        torch.randn(4, 6, 6, dtype=torch.float64, device=device).transpose(1, 2) for _ in range(2)
    ]
    _check(x, alpha, ops, params)


@pytest.mark.parametrize("device", devices())
def test_empty_and_degenerate_shapes(device):
    for shape in [(0, 7, 4), (1, 1, 1), (2, 1, 3)]:
        x, alpha, params = _inputs(shape, ALL, torch.float64, device)
        _check(x, alpha, ALL, params)


def test_float32_accumulation_close_to_float64():
    x, alpha, params = _inputs((64, 42, 16), ALL, torch.float64, seed=5)
    cot = torch.randn(x.shape, dtype=torch.float64)
    _, g64 = _grads(_reference.mixed_op, x, alpha, ALL, params, cot)
    _, g32 = _grads(
        mixed_op, x.float(), alpha.float(), ALL, [p.float() for p in params], cot.float()
    )
    torch.testing.assert_close(g32[1].double(), g64[1], rtol=1e-4, atol=1e-4)


def test_zero_op_is_exact_zero_with_inf():
    x = torch.tensor([[[math.inf], [1.0], [2.0]]])
    y = mixed_op(x, torch.tensor([0.0, 0.0]), ["zero", "max_pool_3x3"], [])
    assert torch.equal(y, torch.tensor([[[math.inf], [math.inf], [1.0]]]))


@pytest.mark.parametrize("fn", [mixed_op, _reference.mixed_op])
def test_bad_input(fn):
    x, alpha, _ = _inputs((2, 5, 3), SIGNAL)
    p = torch.randn(2, 5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"alpha length 3 does not match len\(ops\) = 4"):
        fn(x, alpha[:3], SIGNAL, [])
    with pytest.raises(ValueError, match=r"alpha must be a 1-D tensor"):
        fn(x, alpha.view(2, 2), SIGNAL, [])
    with pytest.raises(ValueError, match=r"ops has duplicate op 'zero' at positions 0 and 2"):
        fn(x, alpha[:3], ["zero", "skip_connect", "zero"], [])
    with pytest.raises(ValueError, match=r"ops\[1\]: unknown op 'pool'"):
        fn(x, alpha[:2], ["zero", "pool"], [])
    with pytest.raises(ValueError, match="at least one candidate"):
        fn(x, alpha[:0], [], [])
    with pytest.raises(
        ValueError, match=r"x must be a 3-D tensor \[B, N, D\], got shape \(10, 3\)"
    ):
        fn(x.view(10, 3), alpha, SIGNAL, [])
    with pytest.raises(
        ValueError,
        match=r"param_outputs has 0 tensor\(s\) but ops has 1 "
        r"parametric op\(s\) \(conv_3x3\)",
    ):
        fn(x, alpha[:2], ["conv_3x3", "zero"], [])
    with pytest.raises(ValueError, match=r"param_outputs has 1 tensor\(s\) but ops has 0"):
        fn(x, alpha[:2], ["avg_pool_3x3", "zero"], [p])
    with pytest.raises(
        ValueError,
        match=r"param_outputs\[0\] \(conv_3x3\) shape \(2, 5, 4\) "
        r"does not match x shape \(2, 5, 3\)",
    ):
        fn(x, alpha[:2], ["conv_3x3", "zero"], [torch.randn(2, 5, 4, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"param_outputs\[0\] \(conv_3x3\) must have x's dtype"):
        fn(x, alpha[:2], ["conv_3x3", "zero"], [p.float()])
    with pytest.raises(ValueError, match=r"alpha must have x's dtype"):
        fn(x, alpha.float(), SIGNAL, [])


def _aten_calls(fn):
    """The ops ``fn()`` dispatches (forward and backward), by name."""
    from torch.utils._python_dispatch import TorchDispatchMode

    calls = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            calls.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    with Record():
        fn()
    return calls


def test_uses_native_when_built():
    # The suite runs against a built package: the wrapper must dispatch to the fused
    # native op (pools computed inside it), not compute the reference's ATen pools.
    # (This compared _native_available() with has_native(), its own definition.)
    assert nas.has_native() and _native_available()
    x, alpha, params = _inputs((2, 5, 3), ALL, grad=True)
    y = mixed_op(x, alpha, ALL, params)
    fwd = _aten_calls(lambda: mixed_op(x, alpha, ALL, params))
    bwd = _aten_calls(lambda: y.sum().backward())
    assert "nas.mixed_op" in fwd and "nas.mixed_op_backward" in bwd, (fwd, bwd)
    pools = {"aten.avg_pool1d", "aten.max_pool1d", "aten.avg_pool2d", "aten.max_pool2d"}
    assert not pools & set(fwd + bwd), (fwd, bwd)
    # and the reference really is different code: it runs the ATen pools
    ref = _aten_calls(lambda: _reference.mixed_op(x, alpha, ALL, params))
    assert "nas.mixed_op" not in ref and any("pool" in c for c in ref), ref


def _op_args(ops, shape=(2, 5, 3), dtype=torch.float64, grad=False, seed=0):
    codes = [nas.all_ops().index(nas.as_op(op)) for op in ops]
    x, alpha, params = _inputs(shape, ops, dtype, seed=seed, grad=grad)
    return x, alpha, codes, params


@requires_native
@pytest.mark.parametrize("ops", [SIGNAL, ALL, ["max_pool_3x3"], ["conv_3x3", "zero"]])
def test_gradcheck_float64(ops):
    x, alpha, codes, params = _op_args(ops, (2, 4, 3), grad=True, seed=7)
    fn = lambda x, a, *p: torch.ops.nas.mixed_op(x, a, codes, list(p))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, alpha, *params))


@requires_native
@pytest.mark.parametrize(
    "ops,shape",
    [(SIGNAL, (2, 5, 3)), (ALL, (3, 7, 4)), (["skip_connect", "sep_conv_3x3"], (1, 1, 2))],
)
def test_opcheck(ops, shape):
    for grad in (False, True):
        args = _op_args(ops, shape, grad=grad)
        torch.library.opcheck(torch.ops.nas.mixed_op.default, args)
    x, alpha, codes, params = _op_args(ops, shape)
    g = torch.randn_like(x)
    torch.library.opcheck(torch.ops.nas.mixed_op_backward.default, (g, x, alpha, codes, params))
    # Conv outputs as they arrive from Conv1d(...).transpose(1, 2): [B, D, N] storage.
    dn = [p.transpose(1, 2).contiguous().transpose(1, 2) for p in params]
    torch.library.opcheck(torch.ops.nas.mixed_op_backward.default, (g, x, alpha, codes, dn))
    torch.library.opcheck(torch.ops.nas.mixed_op.default, (x, alpha, codes, dn))


@requires_native
def test_param_grad_keeps_conv_layout():
    # A [B, D, N]-stored param output gets its gradient in the same layout (no
    # transposing copy in autograd or the conv backward); other layouts get contiguous.
    x, alpha, codes, params = _op_args(ALL, (3, 7, 4))
    dn = params[0].transpose(1, 2).contiguous().transpose(1, 2)
    odd = torch.randn(3, 7, 8, dtype=torch.float64)[:, :, ::2]
    g = torch.randn_like(x)
    _, _, grads = torch.ops.nas.mixed_op_backward(g, x, alpha, codes, [dn, odd, *params[2:]])
    assert grads[0].stride() == dn.stride()
    assert grads[1].is_contiguous() and grads[2].is_contiguous()


@requires_native
def test_torch_compile_fullgraph():
    ops = ["conv_3x3", "avg_pool_3x3", "max_pool_3x3", "skip_connect"]
    x, alpha, params = _inputs((3, 7, 4), ops, torch.float32)

    def f(x, alpha, p):
        return mixed_op(x * 2, alpha, ops, [p]).relu().sum()

    fn = torch.compile(f, fullgraph=True)
    xs = [t.clone().requires_grad_(True) for t in (x, alpha, params[0])]
    got = fn(*xs)
    got.backward()
    ref = [t.clone().requires_grad_(True) for t in (x, alpha, params[0])]
    want = _reference.mixed_op(ref[0] * 2, ref[1], ops, [ref[2]]).relu().sum()
    want.backward()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    for a, b in zip(xs, ref, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)


@requires_native
def test_native_op_rejects_bad_codes():
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"op_codes\[1\] = 8 is not an op code"):
        torch.ops.nas.mixed_op(x, torch.zeros(2), [4, 8], [])
    with pytest.raises(ValueError, match="op_codes has duplicate op code 6 at position 1"):
        torch.ops.nas.mixed_op(x, torch.zeros(2), [6, 6], [])
    with pytest.raises(ValueError, match=r"alpha length 3 does not match len\(op_codes\) = 2"):
        torch.ops.nas.mixed_op(x, torch.zeros(3), [6, 7], [])
    with pytest.raises(ValueError, match="param_outputs has 0 tensor"):
        torch.ops.nas.mixed_op(x, torch.zeros(2), [0, 7], [])
    f8 = torch.float8_e4m3fn
    with pytest.raises(ValueError, match="x must be float32, float64, bfloat16 or float16"):
        torch.ops.nas.mixed_op(x.to(f8), torch.zeros(1).to(f8), [6], [])
    with pytest.raises(ValueError, match="x must be float32, float64, bfloat16 or float16"):
        torch.ops.nas.mixed_op(x.int(), torch.zeros(1).int(), [6], [])
    with pytest.raises(ValueError, match=r"grad shape \[2, 5, 4\] does not match x shape"):
        torch.ops.nas.mixed_op_backward(torch.randn(2, 5, 4), x, torch.zeros(1), [6], [])
    with pytest.raises(ValueError, match="x must be float32, float64, bfloat16 or float16"):
        mixed_op(x.to(f8), torch.zeros(1).to(f8), ["skip_connect"], [])
    # float32 logits are allowed with a half-type x only; half logits need x's dtype.
    with pytest.raises(ValueError, match=r"alpha must have x's dtype \(or float32"):
        torch.ops.nas.mixed_op(x.double(), torch.zeros(1), [6], [])
    with pytest.raises(ValueError, match=r"alpha must have x's dtype \(or float32"):
        torch.ops.nas.mixed_op(x.bfloat16(), torch.zeros(1).half(), [6], [])
    with pytest.raises(ValueError, match=r"alpha must have x's dtype \(or float32"):
        mixed_op(x.bfloat16(), torch.zeros(1).double(), ["skip_connect"], [])


@requires_native
def test_cpu_baseline_path_matches_reference():
    # The CPU kernels have AVX2 and baseline (SSE2) entry points chosen at run time;
    # NAS_CPU_BASELINE=1 forces the baseline one. Check it in a fresh process.
    import os
    import subprocess
    import sys

    code = (
        "import torch, nas\n"
        "from tests.test_mixed_op import ALL, SIGNAL, _check, _inputs\n"
        "for ops in (ALL, SIGNAL, ['max_pool_3x3']):\n"
        "    for N in (1, 2, 7, 97):\n"
        "        for dt in (torch.float32, torch.float64):\n"
        "            x, a, p = _inputs((3, N, 13), ops, dt, seed=N)\n"
        "            _check(x, a, ops, p)\n"
        "from tests.test_mixed_op import _conv_layout\n"
        "for shape in ((2, 42, 16), (3, 7, 19), (2, 97, 9)):\n"
        "    for dt in (torch.float32, torch.float64):\n"
        "        x, a, p = _inputs(shape, ALL, dt, seed=shape[1])\n"
        "        _check(x, a, ALL, _conv_layout(p))\n"
        "x = torch.randint(0, 3, (4, 9, 6)).double()\n"
        "_check(x, torch.zeros(1, dtype=torch.float64), ['max_pool_3x3'], [])\n"
        "print('ok')\n"
    )
    env = dict(os.environ, NAS_CPU_BASELINE="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@requires_native
def test_double_backward_raises():
    x = torch.randn(2, 5, 3, requires_grad=True)
    a = torch.zeros(4, requires_grad=True)
    y = mixed_op(x, a, SIGNAL, [])
    (ga,) = torch.autograd.grad(y.square().sum(), a, create_graph=True)
    with pytest.raises(RuntimeError, match="does not support double backward"):
        ga.sum().backward()


# ---------------------------------------------------------------------------------
# Mixed precision (bf16 / fp16) against the float64 reference, with the tolerance rule
# of nas.ops.mixed_op.TOLERANCES; autocast; the backward's output_mask.

HALF = [torch.bfloat16, torch.float16]


def _assert_within(got, ref64, ref_low, tol, name):
    """|got - ref64| <= atol + rtol |ref64| + lowprec |ref_low - ref64|, elementwise."""
    assert got.shape == ref64.shape, (name, got.shape, ref64.shape)
    err = (got.double() - ref64).abs()
    bound = tol.atol + tol.rtol * ref64.abs() + tol.lowprec * (ref_low.double() - ref64).abs()
    bad = err > bound
    assert not bad.any(), (
        f"{name}: {int(bad.sum())} of {err.numel()} elements out of tolerance; worst "
        f"err {float((err - bound).max()):.3g} over its bound"
    )


def _check_half(x, alpha, ops, params, seed=1):
    """mixed_op on half inputs (alpha float32 or x's dtype) vs the float64 reference on
    the same (upcast) inputs, forward and every gradient, shared cotangent."""
    tol = TOLERANCES[x.dtype]
    cot = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)).to(x.dtype)
    y, grads = _grads(mixed_op, x, alpha, ops, params, cot)
    up = [t.double() for t in (x, alpha, *params)]
    y64, g64 = _grads(_reference.mixed_op, up[0], up[1], ops, up[2:], cot.double())
    y_lo, g_lo = _grads(_reference.mixed_op, x, alpha, ops, params, cot)
    assert y.dtype == x.dtype and grads[1].dtype == alpha.dtype
    _assert_within(y, y64, y_lo, tol, "y")
    names = ["x", "alpha"] + [f"param_outputs[{i}]" for i in range(len(params))]
    for name, got, ref, low in zip(names, grads, g64, g_lo, strict=True):
        assert got.dtype == (alpha.dtype if name == "alpha" else x.dtype), name
        _assert_within(got, ref, low, tol, f"d{name}")
    return y, grads, y64, y_lo


@requires_native
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("alpha_fp32", [True, False])
@pytest.mark.parametrize("shape", [(3, 1, 5), (3, 7, 5), (2, 42, 16), (2, 97, 9)])
@pytest.mark.parametrize("ops", [SIGNAL, ALL, ["max_pool_3x3", "conv_5x5", "avg_pool_3x3"]])
def test_half_matches_float64_reference(dtype, alpha_fp32, shape, ops):
    x, alpha, params = _inputs(shape, ops, torch.float64, seed=shape[1])
    x, params = x.to(dtype), [p.to(dtype) for p in params]
    alpha = alpha.float() if alpha_fp32 else alpha.to(dtype)
    _check_half(x, alpha, ops, params)
    if params:  # conv outputs in their [B, D, N] storage
        _check_half(x, alpha, ops, _conv_layout(params))


@requires_native
@pytest.mark.parametrize("dtype", HALF)
def test_half_accumulates_in_float32(dtype):
    # Large D*N: a half-precision sum of the s_k would be far off; float32 accumulation
    # keeps dalpha within float32 rounding of the float64 reference (on the same
    # rounded inputs), much closer than the low-precision reference gets.
    x, alpha, params = _inputs((16, 97, 64), ALL, torch.float64, seed=11)
    x, params, alpha = x.to(dtype), [p.to(dtype) for p in params], alpha.float()
    _, grads, _, _ = _check_half(x, alpha, ALL, params)
    cot = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    up = [t.double() for t in (x, alpha, *params)]
    _, g64 = _grads(_reference.mixed_op, up[0], up[1], ALL, up[2:], cot.double())
    torch.testing.assert_close(grads[1].double(), g64[1], rtol=1e-4, atol=1e-4)


@requires_native
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("ops,shape", [(SIGNAL, (2, 5, 3)), (ALL, (3, 7, 4))])
def test_half_opcheck(dtype, ops, shape):
    for grad in (False, True):
        x, alpha, codes, params = _op_args(ops, shape, grad=False)
        args = [x.to(dtype), alpha.float(), codes, [p.to(dtype) for p in params]]
        for t in (args[0], args[1], *args[3]):
            t.requires_grad_(grad)
        torch.library.opcheck(torch.ops.nas.mixed_op.default, tuple(args))
    x, alpha, codes, params = _op_args(ops, shape)
    x, params = x.to(dtype), [p.to(dtype) for p in params]
    g = torch.randn_like(x)
    for a in (alpha.float(), alpha.to(dtype)):
        torch.library.opcheck(torch.ops.nas.mixed_op_backward.default, (g, x, a, codes, params))
        torch.library.opcheck(
            torch.ops.nas.mixed_op_backward.default,
            (g, x, a, codes, _conv_layout(params), [False, True, False]),
        )


@requires_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("dn", [False, True])
def test_backward_output_mask(dtype, dn):
    # Each of the 8 masks: the gradients asked for equal the full backward's bit for bit
    # (same arithmetic), the others come back empty; opcheck checks the fake agrees.
    x, alpha, codes, params = _op_args(ALL, (3, 42, 16), torch.float64, seed=4)
    x, params = x.to(dtype), [p.to(dtype) for p in params]
    alpha = alpha.float() if dtype == torch.bfloat16 else alpha.to(dtype)
    if dn:
        params = _conv_layout(params)
    g = torch.randn_like(x)
    full = torch.ops.nas.mixed_op_backward(g, x, alpha, codes, params)
    for mask in itertools.product([False, True], repeat=3):
        dx, da, dps = torch.ops.nas.mixed_op_backward(g, x, alpha, codes, params, list(mask))
        assert torch.equal(dx, full[0]) if mask[0] else dx.shape == (0,)
        assert torch.equal(da, full[1]) if mask[1] else da.shape == (0,)
        if mask[2]:
            assert len(dps) == len(params)
            for got, want in zip(dps, full[2], strict=True):
                assert torch.equal(got, want) and got.stride() == want.stride()
        else:
            assert list(dps) == []
    torch.library.opcheck(
        torch.ops.nas.mixed_op_backward.default, (g, x, alpha, codes, params, [True, False, True])
    )


def _backward_masks(x, alpha, params):
    """The output_mask autograd passes to nas.mixed_op_backward, and the gradients."""
    from torch.utils._python_dispatch import TorchDispatchMode

    masks = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if str(func.overloadpacket) == "nas.mixed_op_backward":
                # an all-True mask is the schema default and may be left out
                masks.append(list(args[5]) if len(args) > 5 else [True] * 3)
            return func(*args, **(kwargs or {}))

    y = mixed_op(x, alpha, ALL, params)
    with Record():
        y.square().sum().backward()
    return masks


@requires_native
@pytest.mark.parametrize("needs", list(itertools.product([False, True], repeat=3))[1:])
def test_backward_computes_only_needed_grads(needs):
    x, alpha, params = _inputs((2, 9, 8), ALL, torch.float64, seed=2)
    x.requires_grad_(needs[0])
    alpha.requires_grad_(needs[1])
    dn = _conv_layout(params)
    for p in dn:
        p.requires_grad_(needs[2])
    assert _backward_masks(x, alpha, dn) == [list(needs)]
    # And the gradients that were computed are right (param grads keep the conv layout
    # even when the param outputs were not saved, i.e. alpha needs no grad).
    ref = [t.detach().clone().requires_grad_(r) for t, r in zip([x, alpha], needs, strict=False)]
    refp = [p.detach().clone().requires_grad_(needs[2]) for p in dn]
    _reference.mixed_op(ref[0], ref[1], ALL, refp).square().sum().backward()
    for got, want in zip([x, alpha, *dn], [*ref, *refp], strict=True):
        if want.grad is None:
            assert got.grad is None
        else:
            torch.testing.assert_close(got.grad, want.grad, rtol=1e-12, atol=1e-12)
    if needs[2]:
        assert all(p.grad.stride() == p.stride() for p in dn)


@requires_native
@pytest.mark.parametrize("direct", [False, True])
def test_autocast_cpu_bf16(direct):
    # Under autocast, Conv1d outputs are bf16 and x / alpha stay float32: the wrapper
    # and the op itself cast x (and the param outputs) to bf16, keep alpha float32.
    torch.manual_seed(0)
    ops = ["conv_3x3", "avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"]
    x = torch.randn(4, 42, 16, requires_grad=True)
    alpha = torch.randn(len(ops), requires_grad=True)
    conv = torch.nn.Conv1d(16, 16, 3, padding=1)
    codes = [nas.all_ops().index(nas.as_op(op)) for op in ops]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        p = conv(x.transpose(1, 2)).transpose(1, 2)
        assert p.dtype == torch.bfloat16 and x.dtype == torch.float32
        if direct:
            y = torch.ops.nas.mixed_op(x, alpha, codes, [p])
        else:
            y = mixed_op(x, alpha, ops, [p])
    assert y.dtype == torch.bfloat16
    y.float().square().sum().backward()
    assert x.grad.dtype == torch.float32 and alpha.grad.dtype == torch.float32
    # The same computation by hand: bf16 inputs, float64 reference, tolerance rule.
    xb, pb = x.detach().bfloat16(), p.detach()
    y64 = _reference.mixed_op(xb.double(), alpha.detach().double(), ops, [pb.double()])
    y_lo = _reference.mixed_op(xb, alpha.detach(), ops, [pb])
    _assert_within(y.detach(), y64, y_lo, TOLERANCES[torch.bfloat16], "y")
    x2 = x.detach().clone().requires_grad_(True)
    a2 = alpha.detach().clone().requires_grad_(True)
    ref = _reference.mixed_op(x2, a2, ops, [conv(x2.transpose(1, 2)).transpose(1, 2)])
    ref.square().sum().backward()
    # bf16 forward/backward vs float32 end to end: bf16's ~3 significant digits.
    torch.testing.assert_close(alpha.grad, a2.grad, rtol=0.05, atol=0.5)
    torch.testing.assert_close(x.grad, x2.grad, rtol=0.05, atol=0.1)
