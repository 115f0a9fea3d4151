"""Pure-PyTorch references of every native op: the spec.

Tests compare the kernels against these, benchmarks time against them, and they are
the fallback when ``nas._C`` is missing. Clear and vectorised, never fast tricks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..optypes import OpType, all_ops, as_op, edge_list


def space_size(num_ops: int, num_edges: int) -> int:
    """num_ops ** num_edges as an exact Python int."""
    return int(num_ops) ** int(num_edges)


def decode_cells(indices: torch.Tensor, num_ops: int, num_edges: int) -> torch.Tensor:
    """indices: Tensor[n] int64 -> Tensor[n, num_edges] int64 op codes.

    The mixed-radix digits of each index in base ``num_ops``, last edge fastest.
    """
    if indices.dim() != 1:
        raise ValueError(f"indices must be a 1-D tensor [n], got shape {tuple(indices.shape)}")
    if indices.dtype != torch.int64:
        raise ValueError(f"indices must be int64, got {indices.dtype}")
    if num_ops < 1:
        raise ValueError(f"num_ops must be >= 1, got {num_ops}")
    if num_edges < 0:
        raise ValueError(f"num_edges must be >= 0, got {num_edges}")
    size = space_size(num_ops, num_edges)
    if indices.numel():
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"cell index {bad} is out of range [0, {num_ops}**{num_edges})")
    out = torch.empty((indices.numel(), num_edges), dtype=torch.int64, device=indices.device)
    v = indices.clone()
    for e in range(num_edges - 1, -1, -1):
        out[:, e] = v % num_ops
        v = v // num_ops
    return out


# ---------------------------------------------------------------------------------
# The parameter-free candidate ops on signal tensors x: [B, N, D] (batch x series,
# patches, hidden), along N: what nas::mixed_op computes inside its kernel, and what
# nas.signal_ops builds its modules from (it re-exports these).

PARAMETER_FREE_OPS: tuple[OpType, ...] = (
    OpType.AVG_POOL_3X3,
    OpType.MAX_POOL_3X3,
    OpType.SKIP_CONNECT,
    OpType.ZERO,
)


def _check_signal(x: torch.Tensor) -> None:
    if x.dim() != 3:
        raise ValueError(
            f"x must be [B, N, D] (batch x series, patches, hidden), got {tuple(x.shape)}"
        )


def avg_pool_3(x: torch.Tensor) -> torch.Tensor:
    """x: Tensor[B, N, D] -> mean over the valid part of each 3-wide window along N."""
    _check_signal(x)
    y = F.avg_pool1d(x.transpose(1, 2), 3, stride=1, padding=1, count_include_pad=False)
    return y.transpose(1, 2)


def max_pool_3(x: torch.Tensor) -> torch.Tensor:
    """x: Tensor[B, N, D] -> max over the valid part of each 3-wide window along N."""
    _check_signal(x)
    return F.max_pool1d(x.transpose(1, 2), 3, stride=1, padding=1).transpose(1, 2)


def apply_parameter_free(op: OpType | str, x: torch.Tensor) -> torch.Tensor:
    """The reference of a parameter-free op on x: Tensor[B, N, D]."""
    op = as_op(op)
    if op == OpType.AVG_POOL_3X3:
        return avg_pool_3(x)
    if op == OpType.MAX_POOL_3X3:
        return max_pool_3(x)
    if op == OpType.SKIP_CONNECT:
        return x
    if op == OpType.ZERO:
        return torch.zeros_like(x)
    raise ValueError(f"op {op.value!r} has parameters; build it with build_op()")


# Half types mixed_op accepts (computed in float32 by the native kernels).
HALF_DTYPES = (torch.bfloat16, torch.float16)

# Parametric op codes (index in nas.all_ops()): their outputs come from ATen modules
# and are passed in; every other op is computed from x (apply_parameter_free).
_MIXED_INLINE = tuple(op.value for op in PARAMETER_FREE_OPS)


def mixed_op_codes(
    x: torch.Tensor,
    alpha: torch.Tensor,
    ops: Sequence[object],
    param_outputs: Sequence[torch.Tensor],
) -> list[int]:
    """Validate mixed_op's arguments; return the op codes (index in nas.all_ops()).

    Shared by the reference and the native wrapper so both reject the same inputs
    with the same messages (ValueError naming the argument and the value).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a 3-D tensor [B, N, D], got shape {shape}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    if isinstance(ops, str):
        raise ValueError(f"ops must be a sequence of op names, got the string {ops!r}")
    ops = list(ops)
    if not ops:
        raise ValueError("ops must name at least one candidate op, got []")
    order = all_ops()
    codes: list[int] = []
    for i, op in enumerate(ops):
        try:
            t = as_op(op)
        except ValueError as exc:
            raise ValueError(f"ops[{i}]: {exc}") from None
        code = order.index(t)
        if code in codes:
            raise ValueError(
                f"ops has duplicate op {t.value!r} at positions {codes.index(code)} and {i}"
            )
        codes.append(code)
    if not isinstance(alpha, torch.Tensor) or alpha.dim() != 1:
        shape = tuple(alpha.shape) if isinstance(alpha, torch.Tensor) else type(alpha).__name__
        raise ValueError(f"alpha must be a 1-D tensor [K] of logits, got shape {shape}")
    if alpha.shape[0] != len(codes):
        raise ValueError(f"alpha length {alpha.shape[0]} does not match len(ops) = {len(codes)}")
    # A half-type x may keep float32 logits (what autocast leaves an nn.Parameter as).
    alpha_dtype_ok = alpha.dtype == x.dtype or (
        x.dtype in HALF_DTYPES and alpha.dtype == torch.float32
    )
    if not alpha_dtype_ok or alpha.device != x.device:
        raise ValueError(
            f"alpha must have x's dtype (or float32 for a bfloat16/float16 x) and device "
            f"({x.dtype}, {x.device}), got ({alpha.dtype}, {alpha.device})"
        )
    parametric = [order[c].value for c in codes if order[c].value not in _MIXED_INLINE]
    param_outputs = list(param_outputs)
    if len(param_outputs) != len(parametric):
        raise ValueError(
            f"param_outputs has {len(param_outputs)} tensor(s) but ops has "
            f"{len(parametric)} parametric op(s) ({', '.join(parametric) or 'none'})"
        )
    for p, out in enumerate(param_outputs):
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x.shape):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"param_outputs[{p}] ({parametric[p]}) shape {shape} does not match "
                f"x shape {tuple(x.shape)}"
            )
        if out.dtype != x.dtype or out.device != x.device:
            raise ValueError(
                f"param_outputs[{p}] ({parametric[p]}) must have x's dtype and device "
                f"({x.dtype}, {x.device}), got ({out.dtype}, {out.device})"
            )
    return codes


def mixed_op(
    x: torch.Tensor,
    alpha: torch.Tensor,
    ops: Sequence[object],
    param_outputs: Sequence[torch.Tensor],
) -> torch.Tensor:
    """The DARTS mixed op, as quark0/darts computes it: sum_k softmax(alpha)_k * op_k(x).

    x: Tensor[B, N, D]; alpha: Tensor[K] logits; ops: the K candidate ops (OpType or
    name, no duplicates) in alpha order; param_outputs: Tensor[B, N, D] outputs of the
    parametric candidates (conv_*, sep_conv_*), in the order they appear in ``ops``.
    op_k(x) is nas.signal_ops.apply_parameter_free for the parameter-free ops and the
    next param_output for the parametric ones. Returns Tensor[B, N, D].
    """
    codes = mixed_op_codes(x, alpha, ops, param_outputs)
    order = all_ops()
    # Half types: weights rounded to x's dtype, every product and sum in x's dtype (the
    # low-precision reference of the tolerance rule in nas/ops/mixed_op.py).
    weights = torch.softmax(alpha, dim=0).to(x.dtype)
    outs = iter(param_outputs)
    terms = []
    for k, code in enumerate(codes):
        op = order[code]
        o = apply_parameter_free(op, x) if op.value in _MIXED_INLINE else next(outs)
        terms.append(weights[k] * o)
    return sum(terms[1:], terms[0])


# ---------------------------------------------------------------------------------
# Exhaustive enumeration (nas::enumerate_*). The arithmetic is the spec, shared by the
# CPU and CUDA kernels bit for bit: a cell's edges split into the outer edges and the
# inner block of the last m = enumerate_inner_edges(num_ops, num_edges) edges;
#   outer_f = sum over outer edges of T[op, f], left to right from 0.0,
#   inner_f = the same over the inner edges (under prune_dead, dead edges add 0.0),
#   feature_f = outer_f + inner_f,
#   score = ((bias + c_0 * outer_0) + c_1 * outer_1 + ...) + ((0.0 + c_0 * inner_0) + ...)
# every product and sum rounded to float64 (no fused multiply-add). For integer-valued
# tables (FLOPs, bytes, params) the feature sums are exact whatever the order.

_INNER_CELLS_MAX = 4096
_INNER_EDGES_MAX = 12
_MAX_NODES = 11
_CHUNK = 1 << 20


def enumerate_inner_edges(num_ops: int, num_edges: int) -> int:
    """m, the number of trailing edges in the inner block: the largest m <= num_edges
    with num_ops ** m <= 4096 and m <= 12 (the cap binds only for a one-op space)."""
    m, cells = 0, 1
    while m < num_edges and m < _INNER_EDGES_MAX and cells * num_ops <= _INNER_CELLS_MAX:
        cells *= num_ops
        m += 1
    return m


def _check_enumerate(
    op_features: torch.Tensor,
    coeffs: torch.Tensor,
    bias: float,
    num_nodes: int,
    zero_op: int,
    start: int,
    count: int,
    low: torch.Tensor | None = None,
    high: torch.Tensor | None = None,
) -> int:
    """The kernels' entry checks (same conditions, same argument names); returns E."""
    if op_features.dim() != 2:
        raise ValueError(
            f"op_features must be a 2-D tensor [num_ops, F], got {tuple(op_features.shape)}"
        )
    if op_features.dtype != torch.float64:
        raise ValueError(f"op_features must be float64, got {op_features.dtype}")
    num_ops, nf = op_features.shape
    if num_ops < 1:
        raise ValueError("op_features has no rows: the op list is empty")
    if nf < 1:
        raise ValueError(f"op_features has no feature columns, got {tuple(op_features.shape)}")
    if coeffs.dtype != torch.float64:
        raise ValueError(f"coeffs must be float64, got {coeffs.dtype}")
    if coeffs.dim() < 1 or coeffs.shape[-1] != nf:
        raise ValueError(
            f"coeffs must have {nf} entries per row (op_features has {nf} columns), "
            f"got shape {tuple(coeffs.shape)}"
        )
    if not np.isfinite(bias):
        raise ValueError(f"bias must be finite, got {bias}")
    if not 2 <= num_nodes <= _MAX_NODES:
        raise ValueError(f"num_nodes must be in [2, {_MAX_NODES}], got {num_nodes}")
    if not -1 <= zero_op < num_ops:
        raise ValueError(f"zero_op must be -1 (none) or in [0, {num_ops}), got {zero_op}")
    num_edges = num_nodes * (num_nodes - 1) // 2
    size = space_size(num_ops, num_edges)
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if start + count > min(size, 2**63 - 1):
        raise ValueError(
            f"range [{start}, {start + count}) is past num_cells = {num_ops}**{num_edges} = {size}"
        )
    for name, t in (("op_features", op_features), ("coeffs", coeffs)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite, got {t.tolist()}")
    if low is not None and high is not None:
        for name, t in (("low", low), ("high", high)):
            if t.dim() != 1 or t.shape[0] != nf or t.dtype != torch.float64:
                raise ValueError(
                    f"{name} must be a float64 tensor [{nf}] (one bound per feature), "
                    f"got {t.dtype} {tuple(t.shape)}"
                )
        for f in range(nf):
            lo, hi = float(low[f]), float(high[f])
            if np.isnan(lo) or np.isnan(hi):
                raise ValueError(f"constraint bounds of feature {f} must not be NaN")
            if lo > hi:
                raise ValueError(f"constraint on feature {f} is empty: low {lo} > high {hi}")
    return num_edges


def _codes(indices: np.ndarray, num_ops: int, num_edges: int) -> np.ndarray:
    """[n] int64 cell indices -> [n, num_edges] op codes (last edge fastest)."""
    codes = np.empty((indices.shape[0], num_edges), dtype=np.int64)
    v = indices.astype(np.int64, copy=True)
    for e in range(num_edges - 1, -1, -1):
        codes[:, e] = v % num_ops
        v //= num_ops
    return codes


def _liveness(codes: np.ndarray, zero_op: int, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(nonzero, alive), both [n, E] bool: edge e is not the zero op; edge e joins two
    live nodes (on a non-zero path from node 0 to the last node)."""
    edges = edge_list(num_nodes)
    n = codes.shape[0]
    nz = codes != zero_op
    fwd = np.zeros((n, num_nodes), dtype=bool)
    fwd[:, 0] = True
    for j in range(1, num_nodes):
        for e, (a, b) in enumerate(edges):
            if b == j:
                fwd[:, j] |= nz[:, e] & fwd[:, a]
    bwd = np.zeros((n, num_nodes), dtype=bool)
    bwd[:, -1] = True
    for i in range(num_nodes - 2, -1, -1):
        for e, (a, b) in enumerate(edges):
            if a == i:
                bwd[:, i] |= nz[:, e] & bwd[:, b]
    live = fwd & bwd
    alive = np.stack([live[:, a] & live[:, b] for a, b in edges], axis=1)
    return nz, alive


def enumerate_filter(
    num_ops: int,
    num_nodes: int,
    zero_op: int,
    indices: np.ndarray,
    connected_only: bool,
    distinct: bool,
) -> np.ndarray:
    """[n] bool: the cells passing the enumerate ops' filters. connected_only: some
    edge is live (the output depends on the input); distinct: every non-zero edge is
    live (one cell per class of cells that prune alike). The zero pattern decides both,
    whatever prune_dead is; without a zero op every cell passes."""
    keep = np.ones(indices.shape[0], dtype=bool)
    if zero_op < 0 or not (connected_only or distinct):
        return keep
    ne = num_nodes * (num_nodes - 1) // 2
    nz, alive = _liveness(_codes(indices, num_ops, ne), zero_op, num_nodes)
    if connected_only:
        keep &= alive.any(axis=1)
    if distinct:
        keep &= ~(nz & ~alive).any(axis=1)
    return keep


def enumerate_eval(
    op_features: np.ndarray,
    coeffs: np.ndarray,
    bias: float,
    num_nodes: int,
    zero_op: int,
    prune_dead: bool,
    indices: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised spec of one chunk of cells.

    op_features [K, F], coeffs [R, F] (R score rows), indices [n] int64 ->
    (features [n, F], scores [n, R], canonical [n] bool: every edge touching a dead
    node carries the zero op, one cell per class of cells that prune alike).
    """
    k, nf = op_features.shape
    edges = edge_list(num_nodes)
    ne = len(edges)
    m = enumerate_inner_edges(k, ne)
    n = indices.shape[0]
    codes = _codes(indices, k, ne)
    prune = prune_dead and zero_op >= 0
    alive = np.ones((n, ne), dtype=bool)
    canonical = np.ones(n, dtype=bool)
    if prune:
        nz, alive = _liveness(codes, zero_op, num_nodes)
        canonical = ~(nz & ~alive).any(axis=1)
    outer = np.zeros((n, nf))
    inner = np.zeros((n, nf))
    for e in range(ne):
        col = op_features[codes[:, e]]
        if prune:
            col = np.where(alive[:, e : e + 1], col, 0.0)
        if e < ne - m:
            outer = outer + col
        else:
            inner = inner + col
    feats = outer + inner
    r = coeffs.shape[0]
    scores = np.empty((n, r))
    for row in range(r):
        so = np.full(n, float(bias))
        si = np.zeros(n)
        for f in range(nf):
            so = so + coeffs[row, f] * outer[:, f]
            si = si + coeffs[row, f] * inner[:, f]
        scores[:, row] = so + si
    return feats, scores, canonical


def _chunks(start: int, count: int, chunk: int = _CHUNK):
    end = start + count
    for a in range(start, end, chunk):
        yield np.arange(a, min(a + chunk, end), dtype=np.int64)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def _ok(feats: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return ((feats >= low) & (feats <= high)).all(axis=1)


def enumerate_score_cells(
    op_features: torch.Tensor,
    coeffs: torch.Tensor,
    bias: float,
    num_nodes: int,
    zero_op: int,
    prune_dead: bool,
    start: int,
    count: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference of nas::enumerate_score_cells: (features [count, F], scores [count])."""
    _check_enumerate(op_features, coeffs, bias, num_nodes, zero_op, start, count)
    if coeffs.dim() != 1:
        raise ValueError(f"coeffs must be 1-D [F], got {tuple(coeffs.shape)}")
    t, c = _np(op_features), _np(coeffs)[None, :]
    fs, ss = [np.zeros((0, t.shape[1]))], [np.zeros(0)]
    for idx in _chunks(start, count):
        f, s, _ = enumerate_eval(t, c, bias, num_nodes, zero_op, prune_dead, idx)
        fs.append(f)
        ss.append(s[:, 0])
    dev = op_features.device
    return torch.from_numpy(np.concatenate(fs)).to(dev), torch.from_numpy(np.concatenate(ss)).to(
        dev
    )


def _best_k(key: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest (key, idx) pairs, in order."""
    if key.shape[0] > k:
        kth = np.partition(key, k - 1)[k - 1]
        keep = np.nonzero(key <= kth)[0]
        key, idx, pos = key[keep], idx[keep], keep
    else:
        pos = np.arange(key.shape[0])
    order = np.lexsort((idx, key))[:k]
    return pos[order]


def enumerate_top_k(
    op_features: torch.Tensor,
    coeffs: torch.Tensor,
    bias: float,
    low: torch.Tensor,
    high: torch.Tensor,
    num_nodes: int,
    zero_op: int,
    prune_dead: bool,
    start: int,
    count: int,
    k: int,
    largest: bool,
    connected_only: bool = False,
    distinct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference of nas::enumerate_top_k (chunked numpy; also the benchmark baseline)."""
    _check_enumerate(op_features, coeffs, bias, num_nodes, zero_op, start, count, low, high)
    if coeffs.dim() != 1:
        raise ValueError(f"coeffs must be 1-D [F], got {tuple(coeffs.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    t, c, lo, hi = _np(op_features), _np(coeffs)[None, :], _np(low), _np(high)
    best_s, best_i = np.zeros(0), np.zeros(0, dtype=np.int64)
    for idx in _chunks(start, count):
        f, s, _ = enumerate_eval(t, c, bias, num_nodes, zero_op, prune_dead, idx)
        ok = _ok(f, lo, hi) & enumerate_filter(
            t.shape[0], num_nodes, zero_op, idx, connected_only, distinct
        )
        cs = np.concatenate([best_s, s[ok, 0]])
        ci = np.concatenate([best_i, idx[ok]])
        pos = _best_k(-cs if largest else cs, ci, k)
        best_s, best_i = cs[pos], ci[pos]
    f, s, _ = enumerate_eval(t, c, bias, num_nodes, zero_op, prune_dead, best_i)
    dev = op_features.device
    return (
        torch.from_numpy(best_i).to(dev),
        torch.from_numpy(s[:, 0].copy()).to(dev),
        torch.from_numpy(f).to(dev),
    )


def enumerate_count(
    op_features: torch.Tensor,
    coeffs: torch.Tensor,
    bias: float,
    low: torch.Tensor,
    high: torch.Tensor,
    num_nodes: int,
    zero_op: int,
    prune_dead: bool,
    start: int,
    count: int,
    bins: int,
    hist_min: float,
    hist_max: float,
    connected_only: bool = False,
    distinct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference of nas::enumerate_count: (hist [bins + 2], totals [2] = (count, distinct))."""
    _check_enumerate(op_features, coeffs, bias, num_nodes, zero_op, start, count, low, high)
    if coeffs.dim() != 1:
        raise ValueError(f"coeffs must be 1-D [F], got {tuple(coeffs.shape)}")
    if bins < 0:
        raise ValueError(f"bins must be >= 0, got {bins}")
    if bins > 0 and not (np.isfinite(hist_min) and np.isfinite(hist_max) and hist_min < hist_max):
        raise ValueError(
            f"histogram range must be finite with hist_min < hist_max, got [{hist_min}, {hist_max}]"
        )
    t, c, lo, hi = _np(op_features), _np(coeffs)[None, :], _np(low), _np(high)
    hist = np.zeros(bins + 2, dtype=np.int64)
    total = n_distinct = 0
    for idx in _chunks(start, count):
        f, s, canon = enumerate_eval(t, c, bias, num_nodes, zero_op, prune_dead, idx)
        ok = _ok(f, lo, hi) & enumerate_filter(
            t.shape[0], num_nodes, zero_op, idx, connected_only, distinct
        )
        total += int(ok.sum())
        n_distinct += int((ok & canon).sum())
        if bins > 0:
            sc = s[ok, 0]
            tt = (sc - hist_min) / (hist_max - hist_min) * float(bins)
            mid = 1 + np.minimum(bins - 1, np.floor(np.where(sc >= hist_min, tt, 0.0))).astype(
                np.int64
            )
            b = np.where(sc < hist_min, 0, np.where(~(sc < hist_max), bins + 1, mid))
            hist += np.bincount(b, minlength=bins + 2)
    dev = op_features.device
    return torch.from_numpy(hist).to(dev), torch.tensor([total, n_distinct], device=dev)


def pareto_merge(
    a: np.ndarray, b: np.ndarray, idx: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The non-dominated distinct (a, b) pairs (both minimised) among the given points,
    each with its lowest index and its summed count, sorted by a."""
    if a.shape[0] == 0:
        return a, b, idx, counts
    order = np.lexsort((idx, b, a))
    a, b, idx, counts = a[order], b[order], idx[order], counts[order]
    first = np.ones(a.shape[0], dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    starts = np.nonzero(first)[0]
    sums = np.add.reduceat(counts, starts)
    ga, gb, gi = a[starts], b[starts], idx[starts]
    prev_min = np.minimum.accumulate(np.concatenate([[np.inf], gb[:-1]]))
    keep = gb < prev_min
    return ga[keep], gb[keep], gi[keep], sums[keep]


def enumerate_pareto(
    op_features: torch.Tensor,
    objectives: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    num_nodes: int,
    zero_op: int,
    prune_dead: bool,
    start: int,
    count: int,
    connected_only: bool = False,
    distinct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference of nas::enumerate_pareto: (indices [n], values [n, 2], counts [n])."""
    _check_enumerate(op_features, objectives, 0.0, num_nodes, zero_op, start, count, low, high)
    if objectives.dim() != 2 or objectives.shape[0] != 2:
        raise ValueError(
            f"objectives must be [2, F] (two rows of coefficients), got {tuple(objectives.shape)}"
        )
    t, c, lo, hi = _np(op_features), _np(objectives), _np(low), _np(high)
    fa, fb = np.zeros(0), np.zeros(0)
    fi, fn = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for idx in _chunks(start, count):
        f, s, _ = enumerate_eval(t, c, 0.0, num_nodes, zero_op, prune_dead, idx)
        ok = _ok(f, lo, hi) & enumerate_filter(
            t.shape[0], num_nodes, zero_op, idx, connected_only, distinct
        )
        fa, fb, fi, fn = pareto_merge(
            np.concatenate([fa, s[ok, 0]]),
            np.concatenate([fb, s[ok, 1]]),
            np.concatenate([fi, idx[ok]]),
            np.concatenate([fn, np.ones(int(ok.sum()), dtype=np.int64)]),
        )
    dev = op_features.device
    return (
        torch.from_numpy(fi).to(dev),
        torch.from_numpy(np.stack([fa, fb], axis=1).reshape(-1, 2)).to(dev),
        torch.from_numpy(fn).to(dev),
    )


def enumerate_search_top_k(
    op_features: torch.Tensor,
    coeffs: torch.Tensor,
    bias: float,
    low: torch.Tensor,
    high: torch.Tensor,
    num_nodes: int,
    k: int,
    largest: bool,
    max_nodes: int,
    zero_op: int = -1,
    connected_only: bool = False,
    distinct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference of nas::enumerate_search_top_k: the exhaustive top-k, as op codes
    (only for spaces whose indices fit in int64)."""
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
    _check_enumerate(op_features, coeffs, bias, num_nodes, zero_op, 0, 0, low, high)
    num_edges = num_nodes * (num_nodes - 1) // 2
    size = space_size(op_features.shape[0], num_edges)
    if size >= 2**63:
        raise ValueError(f"the reference cannot scan {size} cells (indices pass int64)")
    idx, s, f = enumerate_top_k(
        op_features, coeffs, bias, low, high, num_nodes, zero_op, False, 0, size, k, largest,
        connected_only, distinct,
    )  # fmt: skip
    return decode_cells(idx.cpu(), op_features.shape[0], num_edges).to(idx.device), s, f


def enumerate_brute_force(
    space, op_features: np.ndarray, coeffs: np.ndarray, bias: float, prune_dead: bool
) -> list[tuple[list[float], float, bool]]:
    """Plain Python over ``space.enumerate()``: per cell in index order, (features,
    score, canonical). The clearest statement of the spec, for tiny spaces only."""
    edges = space.edges
    ne, nn = len(edges), space.num_nodes
    m = enumerate_inner_edges(space.num_ops, ne)
    zero = space.ops.index(OpType.ZERO) if OpType.ZERO in space.ops else -1
    nf = op_features.shape[1]
    out = []
    for cell in space.enumerate():
        codes = space.codes(cell)
        alive_edge = [True] * ne
        nz = [c != zero for c in codes]
        if prune_dead and zero >= 0:
            fwd = {0}
            for j in range(1, nn):
                if any(nz[e] and b == j and a in fwd for e, (a, b) in enumerate(edges)):
                    fwd.add(j)
            bwd = {nn - 1}
            for i in range(nn - 2, -1, -1):
                if any(nz[e] and a == i and b in bwd for e, (a, b) in enumerate(edges)):
                    bwd.add(i)
            live = fwd & bwd
            alive_edge = [a in live and b in live for a, b in edges]
        canonical = not any(nz[e] and not alive_edge[e] for e in range(ne))
        outer = [0.0] * nf
        inner = [0.0] * nf
        for e in range(ne):
            for f in range(nf):
                v = float(op_features[codes[e], f]) if alive_edge[e] else 0.0
                if e < ne - m:
                    outer[f] = outer[f] + v
                else:
                    inner[f] = inner[f] + v
        so, si = float(bias), 0.0
        for f in range(nf):
            so = so + float(coeffs[f]) * outer[f]
            si = si + float(coeffs[f]) * inner[f]
        out.append(([outer[f] + inner[f] for f in range(nf)], so + si, canonical))
    return out
