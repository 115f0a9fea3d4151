"""Differentiable architecture search (DARTS, Liu et al. 2019) on signal tensors.

* :class:`DARTSLayer`: one mixed op, y = sum_k softmax(alpha)_k * op_k(x), over K >= 2
  candidates (op names or arbitrary modules), with its own alpha: Tensor[K].
* :class:`DARTSCell` / :class:`SuperNet`: the supernet of a :class:`~nas.SearchSpace`:
  every edge (i, j) of a cell is a mixed op over the space's ops, node j = sum_{i<j}
  mixed(node i), and one alpha: Tensor[E, K] is shared by all stacked cells (DARTS'
  weight sharing: one architecture, trained for every layer at once). The cell is
  batched by default: the conv ops of all edges into a node run as one convolution
  with alpha-weighted, folded kernels (same math; see :class:`DARTSCell`).
* :class:`DARTSOptimizer`: the bilevel step, first or second order.

When every candidate is a named op, the mix is the fused native op
``nas.ops.mixed_op``: the parameter-free candidates (pools, skip, zero) are computed
inside it and never stored; the parametric ones (convs) run in ATen and only their
outputs are mixed. With arbitrary modules the mix is plain PyTorch. Either way
autograd scales the gradient reaching candidate k's parameters by w_k (the output is
sum_k w_k o_k, so dL/do_k = w_k dL/dy), which the seed forgot.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import ops as _ops
from .costs import op_params_1d
from .discretize import discretize
from .signal_ops import _KERNEL, PARAMETER_FREE_OPS, ConvOp, ParameterFreeOp, build_op
from .space import DiscretizedArch, OpType, SearchSpace, as_op

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _parametric_modules(ops: Sequence[OpType], hidden: int | None) -> nn.ModuleList:
    """The modules of the parametric ops in ``ops``, in order (conv_*, sep_conv_*)."""
    mods = nn.ModuleList()
    for op in ops:
        if op in PARAMETER_FREE_OPS:
            continue
        if hidden is None:
            raise ValueError(f"hidden is required to build the parametric op {op.value!r}")
        mods.append(build_op(op, hidden))
    return mods


def _check_hidden(hidden: object, required: bool = True) -> int | None:
    """hidden (D) as a positive int; None only where no op needs it."""
    if hidden is None and not required:
        return None
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
    return hidden


def _mixed(
    x: torch.Tensor, alpha: torch.Tensor, ops: Sequence[OpType], modules: nn.ModuleList
) -> torch.Tensor:
    """The fused mixed op on x: Tensor[B, N, D] with alpha: Tensor[K] over named ops."""
    return _ops.mixed_op(x, alpha, ops, [m(x) for m in modules])


class DARTSLayer(nn.Module):
    """A DARTS mixed op: y = sum_k softmax(alpha)_k * candidate_k(x).

    candidates: K >= 2 op names / OpTypes (built with ``build_op(op, hidden)``) or
    nn.Modules that map x to outputs of one shape. With only (distinct) named ops, x is
    Tensor[B, N, D] and the mix runs in the fused ``nas.ops.mixed_op``; otherwise it is
    ``sum_k w_k * candidate_k(x)`` in PyTorch, for any x the modules accept.
    alpha: Parameter[K], zeros at start (uniform weights).
    """

    op_type: str = "DARTSMixedOp"

    def __init__(
        self, candidates: Sequence[OpType | str | nn.Module], hidden: int | None = None
    ) -> None:
        super().__init__()
        candidates = list(candidates)
        if len(candidates) < 2:
            raise ValueError("DARTSLayer requires at least 2 candidate operations")
        hidden = _check_hidden(hidden, required=False)
        keys = [id(c) if isinstance(c, nn.Module) else as_op(c) for c in candidates]
        for i, key in enumerate(keys):  # one alpha per candidate: a repeat is a mistake
            if key in keys[:i]:
                what = f"op {key.value!r}" if isinstance(key, OpType) else "module"
                raise ValueError(
                    f"candidates has duplicate {what} at positions {keys.index(key)} and {i}"
                )
        named = all(not isinstance(c, nn.Module) for c in candidates)
        ops = [as_op(c) for c in candidates] if named else None
        self.fused = named
        self.ops: tuple[OpType, ...] | None = tuple(ops) if self.fused else None  # type: ignore[arg-type]
        self.num_ops = len(candidates)
        self.alpha = nn.Parameter(torch.zeros(self.num_ops))
        if self.fused:
            self.candidates = _parametric_modules(self.ops, hidden)  # type: ignore[arg-type]
        else:
            mods = []
            for c in candidates:
                if isinstance(c, nn.Module):
                    mods.append(c)
                else:
                    op = as_op(c)
                    mods.append(ParameterFreeOp(op) if op in PARAMETER_FREE_OPS else None)
                    if mods[-1] is None:
                        if hidden is None:
                            raise ValueError(
                                f"hidden is required to build the parametric op {op.value!r}"
                            )
                        mods[-1] = build_op(op, hidden)
            self.candidates = nn.ModuleList(mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor[B, N, D] (fused path) or any input of the modules -> the mix."""
        if self.fused:
            return _mixed(x, self.alpha, self.ops, self.candidates)  # type: ignore[arg-type]
        w = torch.softmax(self.alpha, dim=0)
        outs = torch.stack([m(x) for m in self.candidates])  # [K, *out]
        return torch.tensordot(w.to(outs.dtype), outs, dims=1)

    def weights(self) -> torch.Tensor:
        """softmax(alpha): Tensor[K], detached."""
        return torch.softmax(self.alpha.detach(), dim=0)

    def arch_parameters(self) -> list[nn.Parameter]:
        """[alpha]: what the DARTS outer step trains."""
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter of the candidates (what the inner step trains)."""
        return list(self.candidates.parameters())

    def attributes(self) -> dict[str, int]:
        return {"num_ops": self.num_ops}

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """The output shape for an input of ``input_shape``: the candidates' common
        output shape (computed on the meta device: no data, no FLOPs)."""
        shape = tuple(int(s) for s in input_shape)
        if self.fused:
            if len(shape) != 3:
                raise ValueError(f"input_shape must be [B, N, D], got {list(shape)}")
            return shape
        x = torch.empty(shape, device="meta")
        shapes = []
        for m in self.candidates:
            state = {k: v.to("meta") for k, v in m.named_parameters()}
            state.update({k: v.to("meta") for k, v in m.named_buffers()})
            shapes.append(tuple(torch.func.functional_call(m, state, (x,)).shape))
        for k, s in enumerate(shapes[1:], 1):
            if s != shapes[0]:
                raise ValueError(
                    f"candidate {k} outputs shape {list(s)}, candidate 0 {list(shapes[0])}"
                )
        return shapes[0]

    def extra_repr(self) -> str:
        names = ", ".join(op.value for op in self.ops) if self.ops else "modules"
        return f"num_ops={self.num_ops}, fused={self.fused}, ops=[{names}]"


def _dense_kernel(module: nn.Module, width: int) -> torch.Tensor:
    """The parametric op ``module`` (ConvOp or SepConvOp) as one dense Conv1d weight
    Tensor[D_out, D_in, width], centred (zero taps added on both sides when its kernel is
    narrower): conv(relu(x), kernel, padding=width // 2) is the op's output. A separable
    op's kernel is pointwise[o, d] * depthwise[d, t]. Built from the parameters inside
    the graph, so autograd sends each parameter exactly its own gradient (the added zero
    taps are constants, not parameters)."""
    if isinstance(module, ConvOp):
        w = module.conv.weight  # [D, D, k]
    else:
        # [D_out, D_in, 1] * [1, D_in, k]
        w = module.pointwise.weight * module.depthwise.weight.transpose(0, 1)
    pad = (width - w.shape[-1]) // 2
    return F.pad(w, (pad, pad)) if pad else w


def _conv_nlc(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Conv1d along N of x: Tensor[B, N, C] (contiguous) with weight: Tensor[D, C, k]
    (odd k, zero padding k // 2) -> Tensor[B, N, D], contiguous.

    Eager runs it as a channels-last Conv2d over [B, C, 1, N]: x and the result are that
    layout's memory as they are (no transposing copies), and oneDNN's channels-last
    convolution, forward and backward, is about twice as fast as the [B, C, N] one at
    these sizes (bench/RESULTS.md). Under torch.compile it is a plain Conv1d: inductor
    (torch 2.13, CPU) miscomputes the gradient of a weight that reaches a channels-last
    Conv2d through an index (``k[[0]].transpose(0, 1).flatten(1, 2).unsqueeze(2)``)
    and corrupts the heap doing so."""
    pad = weight.shape[-1] // 2
    if torch.compiler.is_compiling():
        return F.conv1d(x.transpose(1, 2), weight, padding=pad).transpose(1, 2)
    y = F.conv2d(x.transpose(1, 2).unsqueeze(2), weight.unsqueeze(2), padding=(0, pad))
    return y.squeeze(2).transpose(1, 2)


class DARTSCell(nn.Module):
    """The supernet cell of ``space``: every edge (i, j) mixes all the space's ops.

    node 0 = x; node j = sum_{i<j} mixed_op(node_i, alpha[e_ij], space.ops, outputs
    of edge e_ij's parametric ops); the output is the last node. The cell owns the
    parametric ops of every edge (independent weights per edge: ``edge_ops[e]``, one
    module per parametric op, in op order) but no alpha: the caller passes
    alpha: Tensor[E, K], so stacked cells can share one.

    ``batched=True`` (the default) computes the same function with far fewer, larger
    kernels. Every parametric op is ReLU then a linear convolution along N, so the
    weighted sum of an edge's conv ops is ONE convolution of relu(node_i) with the
    weighted sum of their kernels (:func:`_dense_kernel`; a separable op's kernel is
    pointwise x depthwise, a 3-wide one is centred in the widest), and the edges into
    node j add up to one convolution of cat_i relu(node_i) (channels) with those
    kernels concatenated along the input channels: one Conv1d per node. ReLU runs once
    per node. The parameter-free ops of each edge still mix in the fused
    ``nas.ops.mixed_op``, over [free ops..., zero] with the zero logit replaced by
    logsumexp(logits of the conv ops and zero), which gives each free op exactly its
    softmax(alpha[e]) weight. Only float rounding differs from ``batched=False`` (the
    per-edge path: each op's module on each edge, then the fused mix), gradients
    included (tests/test_darts_batched.py), for finite inputs (a 3-wide op's added
    zero taps meet the inputs two positions away: 0 * inf is NaN); the parameters,
    ``state_dict`` names and the discrete model are the same either way.
    """

    def __init__(self, space: SearchSpace, hidden: int, *, batched: bool = True) -> None:
        super().__init__()
        hidden = _check_hidden(hidden)  # also SuperNet's check
        if space.num_nodes < 2:
            raise ValueError(f"DARTSCell needs a space with >= 2 nodes, got {space.num_nodes}")
        if space.num_ops < 2:
            raise ValueError(
                f"DARTSCell requires at least 2 candidate operations, the space has {space.num_ops}"
            )
        self.space = space
        self.batched = bool(batched)
        self.ops: tuple[OpType, ...] = tuple(space.ops)
        self.edge_ops = nn.ModuleList(
            _parametric_modules(self.ops, hidden) for _ in range(space.num_edges)
        )
        # for node j: the (edge index, source node) pairs of its incoming edges, by source
        self._incoming = [
            sorted(((e, i) for e, (i, d) in enumerate(space.edges) if d == j), key=lambda t: t[1])
            for j in range(space.num_nodes)
        ]
        # batched path: alpha columns of the conv ops, of the free ops but zero, and of
        # the ops whose softmax mass the zero slot of the free mix stands for
        self._conv_k = [k for k, op in enumerate(self.ops) if op not in PARAMETER_FREE_OPS]
        self._free_k = [
            k for k, op in enumerate(self.ops) if op in PARAMETER_FREE_OPS and op != OpType.ZERO
        ]
        self._sink_k = [k for k, op in enumerate(self.ops) if k not in self._free_k]
        self._free_ops = tuple(self.ops[k] for k in self._free_k) + (OpType.ZERO,)
        self._width = max((_KERNEL[self.ops[k]] for k in self._conv_k), default=0)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """x: Tensor[B, N, D]; alpha: Tensor[E, K] logits -> Tensor[B, N, D]."""
        E, K = self.space.num_edges, self.space.num_ops
        if tuple(alpha.shape) != (E, K):
            raise ValueError(
                f"alpha shape {tuple(alpha.shape)} does not match "
                f"[num_edges({E}), num_ops({K})] = [{E}, {K}]"
            )
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a 3-D tensor [B, N, D], got shape {shape}")
        if self.batched and self._conv_k:
            return self._forward_batched(x, alpha)
        nodes = [x]
        for j in range(1, self.space.num_nodes):
            terms = [
                _mixed(nodes[i], alpha[e], self.ops, self.edge_ops[e]) for e, i in self._incoming[j]
            ]
            nodes.append(terms[0] if len(terms) == 1 else torch.stack(terms).sum(0))
        return nodes[-1]

    def _edge_kernels(self, alpha: torch.Tensor) -> torch.Tensor:
        """sum over edge e's conv ops of softmax(alpha[e])_k * kernel_k:
        Tensor[E, D_out, D_in, width]."""
        w = torch.softmax(alpha, dim=1)[:, self._conv_k]  # [E, P]
        kernels = torch.stack(
            [torch.stack([_dense_kernel(m, self._width) for m in mods]) for mods in self.edge_ops]
        )  # [E, P, D, D, width]
        return torch.einsum("ep,epoiw->eoiw", w.to(kernels.dtype), kernels)

    def _forward_batched(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """The batched cell (class docstring): x: Tensor[B, N, D], alpha: Tensor[E, K]."""
        kernels = self._edge_kernels(alpha)
        free = bool(self._free_k)
        if free:
            # [E, F + 1]: the free ops' logits, then the zero slot holding the rest
            free_alpha = torch.cat(
                [alpha[:, self._free_k], torch.logsumexp(alpha[:, self._sink_k], 1, keepdim=True)],
                dim=1,
            )
        nodes = [x]
        relus: list[torch.Tensor] = []  # relu(node_i): Tensor[B, N, D]
        for j in range(1, self.space.num_nodes):
            relus.append(F.relu(nodes[j - 1]))
            incoming = self._incoming[j]
            src = [i for _, i in incoming]
            inp = relus[src[0]] if len(src) == 1 else torch.cat([relus[i] for i in src], 2)
            # [D_out, len(src) * D_in, width]: input channels ordered like inp's
            weight = kernels[[e for e, _ in incoming]].transpose(0, 1).flatten(1, 2)
            node = _conv_nlc(inp, weight)
            if free:
                for e, i in incoming:
                    node = _ops.mixed_op(nodes[i], free_alpha[e], self._free_ops, []) + node
            nodes.append(node)
        return nodes[-1]


class SuperNet(nn.Module):
    """``num_layers`` stacked :class:`DARTSCell` sharing ONE alpha: Parameter[E, K].

    forward: x: Tensor[B, N, D] -> Tensor[B, N, D]; each cell is followed by a
    LayerNorm(hidden) (the ops hold no normalisation): x <- norm(cell(x)). With
    ``residual=True`` (what the signal model uses) each layer is pre-norm residual
    instead, x <- x + cell(norm(x)), so a cell of zero edges leaves the layer an
    identity and the search weighs every cell against "no cell". Because alpha is
    shared, its gradient is the sum of the gradients each cell sends it.
    """

    def __init__(
        self, space: SearchSpace, hidden: int, num_layers: int = 1, *, residual: bool = False
    ) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        self.space = space
        self.hidden = hidden
        self.residual = bool(residual)
        self.cells = nn.ModuleList(DARTSCell(space, hidden) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_layers))
        self.alpha = nn.Parameter(torch.zeros(space.num_edges, space.num_ops))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for cell, norm in zip(self.cells, self.norms, strict=True):
            x = x + cell(norm(x), self.alpha) if self.residual else norm(cell(x, self.alpha))
        return x

    def weights(self) -> torch.Tensor:
        """softmax(alpha) per edge: Tensor[E, K], detached."""
        return torch.softmax(self.alpha.detach(), dim=1)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def discretize(
        self, max_params: int = 0, *, rule: str = "argmax", fit_budget: bool = False
    ) -> DiscretizedArch:
        """The cell alpha selects (:func:`nas.discretize`), with params counted for the
        1-D ops at this hidden size (``op_params_1d(hidden)``), per cell."""
        return discretize(
            self.alpha,
            self.space,
            max_params,
            rule=rule,
            fit_budget=fit_budget,
            params=op_params_1d(self.hidden),
        )


class DARTSStepResult(NamedTuple):
    """The losses of one bilevel step: training loss before the weight update,
    validation loss after it (the one alpha was stepped on)."""

    train_loss: float
    val_loss: float


def _check_lr(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not value > 0:  # NaN is not positive
        raise ValueError(f"{name} must be positive, got {value!r}")
    if math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def _check_finite(tensors: Sequence[torch.Tensor], what: str, outcome: str) -> None:
    """FloatingPointError naming ``what`` when any of ``tensors`` is NaN or inf."""
    for t in tensors:
        if not _finite(t.detach()):
            bad = "nan" if bool(torch.isnan(t).any()) else "inf"
            raise FloatingPointError(f"{what} is {bad} at this step; {outcome}")


def _grads(
    loss: torch.Tensor, params: Sequence[torch.Tensor], retain_graph: bool = False
) -> list[torch.Tensor]:
    gs = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs, strict=True)]


class DARTSOptimizer:
    """DARTS' bilevel optimizer over a model with ``arch_parameters()`` (alpha) and
    ``weight_parameters()`` (w).

    ``step(train_x, train_y, val_x, val_y)``:
    1. inner: w <- SGD step on L_train(w, alpha) (lr ``weight_lr``, optional momentum
       and weight decay), or an Adam step with ``weight_optimizer="adam"``;
    2. outer: alpha <- step of the alpha optimizer ("sgd", the seed, or "adam", DARTS'
       choice: betas (0.5, 0.999), weight decay 1e-3) on the validation loss at the
       updated weights w'.

    order="first": the alpha gradient is dL_val(w', alpha)/dalpha (w' held fixed).
    order="second": w' = w - xi * grad_w L_train(w, alpha) (+ terms that do not depend
    on alpha) is the unrolled step DARTS differentiates through, xi = weight_lr:
        dL_val/dalpha - xi * grad^2_{alpha,w} L_train(w, alpha) . grad_w' L_val(w', alpha)
    with the Hessian-vector product by central finite differences at the pre-step
    weights, w +- eps * v, v = grad_w' L_val, eps = 0.01 / ||v||.
    """

    def __init__(
        self,
        model: nn.Module,
        weight_lr: float,
        alpha_lr: float = 3e-4,
        *,
        loss: LossFn | None = None,
        order: str = "first",
        alpha_optimizer: str = "sgd",
        weight_optimizer: str = "sgd",
        weight_momentum: float = 0.0,
        weight_decay: float = 0.0,
        alpha_betas: tuple[float, float] = (0.5, 0.999),
        alpha_weight_decay: float | None = None,
    ) -> None:
        self.weight_lr = _check_lr("weight_lr", weight_lr)
        self.alpha_lr = _check_lr("alpha_lr", alpha_lr)
        if order not in ("first", "second"):
            raise ValueError(f"order must be 'first' or 'second', got {order!r}")
        if weight_optimizer not in ("sgd", "adam"):
            raise ValueError(f"weight_optimizer must be 'sgd' or 'adam', got {weight_optimizer!r}")
        if alpha_optimizer not in ("sgd", "adam"):
            raise ValueError(f"alpha_optimizer must be 'sgd' or 'adam', got {alpha_optimizer!r}")
        if not callable(getattr(model, "arch_parameters", None)) or not callable(
            getattr(model, "weight_parameters", None)
        ):
            raise ValueError("model must have arch_parameters() and weight_parameters()")
        self.model = model
        self.loss: LossFn = loss if loss is not None else F.mse_loss
        if not callable(self.loss):
            raise ValueError(f"loss must be callable, got {loss!r}")
        self.order = order
        # Data-parallel search: a hook that averages gradients (and loss values) over
        # the processes, applied before any check or update so every process decides
        # alike (nas.search sets it under torch.distributed; None: one process).
        self.reduce: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None
        self.alphas = list(model.arch_parameters())
        self.weights = list(model.weight_parameters())
        if not self.alphas:
            raise ValueError("model.arch_parameters() is empty: nothing to search")
        ids = {id(p) for p in self.alphas}
        if any(id(p) in ids for p in self.weights):
            raise ValueError("a parameter is in both arch_parameters() and weight_parameters()")
        for name, v in (
            ("weight_decay", weight_decay),
            ("weight_momentum", weight_momentum),
            ("alpha_weight_decay", 0.0 if alpha_weight_decay is None else alpha_weight_decay),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")  # NaN too
        self.weight_optimizer: torch.optim.Optimizer | None = None
        if self.weights and weight_optimizer == "adam":
            self.weight_optimizer = torch.optim.Adam(
                self.weights, lr=self.weight_lr, weight_decay=weight_decay
            )
        elif self.weights:
            self.weight_optimizer = torch.optim.SGD(
                self.weights, lr=self.weight_lr, momentum=weight_momentum, weight_decay=weight_decay
            )
        if alpha_optimizer == "adam":
            wd = 1e-3 if alpha_weight_decay is None else alpha_weight_decay
            self.alpha_optimizer: torch.optim.Optimizer = torch.optim.Adam(
                self.alphas, lr=self.alpha_lr, betas=alpha_betas, weight_decay=wd
            )
        else:
            wd = 0.0 if alpha_weight_decay is None else alpha_weight_decay
            self.alpha_optimizer = torch.optim.SGD(self.alphas, lr=self.alpha_lr, weight_decay=wd)

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.loss(self.model(x), y)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"loss must return a scalar tensor, got {shape}")
        return out.reshape(())

    def step(
        self,
        train_x: torch.Tensor,
        train_y: torch.Tensor,
        val_x: torch.Tensor,
        val_y: torch.Tensor,
    ) -> DARTSStepResult:
        """One bilevel step; returns (train_loss, val_loss).

        The step is all or nothing: a non-finite value in an input or target is a
        ValueError naming the argument, and a non-finite loss or gradient a
        FloatingPointError naming the cause; either way no weight, alpha or optimizer
        state has changed (one NaN would otherwise spread into every weight and alpha).
        """
        for name, t in (
            ("train_x", train_x), ("train_y", train_y), ("val_x", val_x), ("val_y", val_y)
        ):  # fmt: skip
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not _finite(t):
                raise ValueError(
                    f"{name} has non-finite values (NaN or inf); the step was not taken"
                )
        second = self.order == "second" and bool(self.weights)
        w_old = [p.detach().clone() for p in self.weights]  # to restore on refusal

        # inner: the weights, on the training loss (checked before anything changes)
        train_loss = self._loss(train_x, train_y)
        (shown_train,) = self._reduced([train_loss.detach()])
        _check_finite([shown_train], "training loss", "weights and alpha were left unchanged")
        if self.weight_optimizer is not None:
            g_w = self._reduced(_grads(train_loss, self.weights))
            _check_finite(g_w, "weight gradient", "weights and alpha were left unchanged")
            opt_state = copy.deepcopy(self.weight_optimizer.state_dict())
            old_grads = [p.grad for p in self.weights]
            for p, g in zip(self.weights, g_w, strict=True):
                p.grad = g
            self.weight_optimizer.step()

        # outer: alpha, on the validation loss at the updated weights
        try:
            val_loss = self._loss(val_x, val_y)
            how = "the weight step was undone; alpha was left unchanged"
            (shown_val,) = self._reduced([val_loss.detach()])
            _check_finite([shown_val], "validation loss", how)
            if second:
                gs = _grads(val_loss, self.alphas + self.weights)
                d_alpha, v = gs[: len(self.alphas)], gs[len(self.alphas) :]
                hv = self._hessian_vector(v, w_old, train_x, train_y)
                d_alpha = [g - self.weight_lr * h for g, h in zip(d_alpha, hv, strict=True)]
            else:
                d_alpha = self._reduced(_grads(val_loss, self.alphas))
            _check_finite(d_alpha, "alpha gradient", how)
        except BaseException:
            if self.weight_optimizer is not None:
                with torch.no_grad():
                    for p, p0, g0 in zip(self.weights, w_old, old_grads, strict=True):
                        p.copy_(p0)
                        p.grad = g0
                self.weight_optimizer.load_state_dict(opt_state)
            raise
        for a, g in zip(self.alphas, d_alpha, strict=True):
            a.grad = g
        self.alpha_optimizer.step()
        return DARTSStepResult(float(shown_train), float(shown_val))

    def _reduced(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return tensors if self.reduce is None else self.reduce(tensors)

    def _hessian_vector(
        self,
        v: list[torch.Tensor],
        w_at: list[torch.Tensor],
        train_x: torch.Tensor,
        train_y: torch.Tensor,
    ) -> list[torch.Tensor]:
        """grad^2_{alpha,w} L_train(w_at, alpha) . v by central differences,
        eps = 0.01 / ||v||; the weights are restored afterwards."""
        norm = torch.sqrt(sum((g.detach().double() ** 2).sum() for g in v))
        if not norm > 0:  # v == 0: the product is 0
            return [torch.zeros_like(a) for a in self.alphas]
        eps = 0.01 / float(norm)
        w_now = [p.detach().clone() for p in self.weights]
        grads = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, p0, d in zip(self.weights, w_at, v, strict=True):
                    p.copy_(p0 + (sign * eps) * d)
            grads.append(_grads(self._loss(train_x, train_y), self.alphas))
        with torch.no_grad():
            for p, p1 in zip(self.weights, w_now, strict=True):
                p.copy_(p1)
        return [(gp - gm) / (2 * eps) for gp, gm in zip(grads[0], grads[1], strict=True)]
