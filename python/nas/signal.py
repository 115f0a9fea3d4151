"""The PatchTST-like signal forecaster that the search runs and exports.

``SignalModel``: x: Tensor[B, L, F] (look-back L, F series) -> Tensor[B, H, F].

1. RevIN (instance normalisation): each series of each sample is standardised by its
   own mean and std over the look-back (detached, eps 1e-5), then scaled by a learnable
   per-series affine (``revin.weight``/``revin.bias``, F each); the output is
   de-normalised with the same statistics at the end.
2. Channel-independent patching: each series on its own, [B * F, L], cut into
   N = (L - P) // S + 1 patches of length P with stride S (P = patch_len, S = stride).
3. Linear patch embedding P -> D plus a learned position embedding [N, D]:
   x: Tensor[B * F, N, D].
4. ``num_layers`` cells (the backbone): pre-norm residual layers
   ``x <- x + cell(LayerNorm(x))``. In the supernet every cell is a
   :class:`~nas.DARTSCell` and all of them share ONE alpha [num_edges, num_ops]
   (:class:`~nas.SuperNet` with ``residual=True``); in the discrete model every
   layer runs the same :class:`~nas.Cell` (zero edges dropped, dead nodes pruned),
   each layer with its own weights.
5. Head: flatten [N * D] -> Linear -> H, back to [B, H, F], de-normalised.

``SignalModel.state_dict()`` names are the GGUF tensor names (see README, "GGUF
tensors of a trained model"); :func:`build_discrete_model` + ``load_state_dict``
rebuild a trained model from them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .darts import SuperNet
from .signal_ops import CellModule
from .space import Cell, OpType, SearchSpace

_EPS = 1e-5


def num_patches(lookback: int, patch_len: int, stride: int) -> int:
    """N = (L - P) // S + 1: the patches of a look-back (ValueError if P > L)."""
    for name, v in (("lookback", lookback), ("patch_len", patch_len), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if patch_len > lookback:
        raise ValueError(f"patch_len {patch_len} is longer than the lookback {lookback}")
    return (lookback - patch_len) // stride + 1


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al. 2022) over the time axis of
    x: Tensor[B, L, F], with a learnable affine per series."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + _EPS).detach()
        return (x - mean) / std * self.weight + self.bias, mean, std

    def denormalise(self, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return (y - self.bias) / (self.weight + _EPS * _EPS) * std + mean


class CellStack(nn.Module):
    """The discrete backbone: ``num_layers`` copies of one cell (own weights each),
    pre-norm residual like the supernet: x <- x + cell(LayerNorm(x))."""

    def __init__(self, cell: Cell, hidden: int, num_layers: int) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        self.cell = cell.pruned()
        # Only the live, non-zero edges become modules: zero edges add nothing.
        live = Cell(cell.num_nodes, tuple(e for e in self.cell.edges if e.op != OpType.ZERO))
        self.live_cell = live
        # A cell without live edges makes every layer the identity: no modules at all.
        layers = num_layers if live.edges else 0
        self.num_layers = num_layers
        self.cells = nn.ModuleList(CellModule(live, hidden) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for cell, norm in zip(self.cells, self.norms, strict=True):
            x = x + cell(norm(x))
        return x


class SignalModel(nn.Module):
    """The forecaster: x: Tensor[B, L, F] -> Tensor[B, H, F] (see the module docstring).

    backbone: a module on Tensor[B * F, N, D] (a residual :class:`~nas.SuperNet` while
    searching, a :class:`CellStack` once discretized).
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        lookback: int,
        horizon: int,
        num_features: int,
        patch_len: int,
        stride: int,
        hidden: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_patches = num_patches(lookback, patch_len, stride)
        for name, v in (("horizon", horizon), ("num_features", num_features), ("hidden", hidden)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.lookback, self.horizon, self.num_features = lookback, horizon, num_features
        self.patch_len, self.stride, self.hidden = patch_len, stride, hidden
        self.revin = RevIN(num_features)
        self.embed = nn.Linear(patch_len, hidden)
        self.pos = nn.Parameter(torch.empty(self.num_patches, hidden).uniform_(-0.02, 0.02))
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_patches * hidden, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor[B, L, F] -> Tensor[B, H, F]."""
        if x.dim() != 3 or x.shape[1] != self.lookback or x.shape[2] != self.num_features:
            raise ValueError(
                f"x must be [B, lookback={self.lookback}, features={self.num_features}], "
                f"got {list(x.shape)}"
            )
        b = x.shape[0]
        z, mean, std = self.revin.normalise(x)
        z = z.transpose(1, 2).reshape(b * self.num_features, self.lookback)  # [B*F, L]
        patches = z.unfold(1, self.patch_len, self.stride)  # [B*F, N, P]
        h = self.dropout(self.embed(patches) + self.pos)  # [B*F, N, D]
        h = self.backbone(h)
        y = self.head(self.dropout(h.reshape(h.shape[0], -1)))  # [B*F, H]
        y = y.reshape(b, self.num_features, self.horizon).transpose(1, 2)  # [B, H, F]
        return self.revin.denormalise(y, mean, std)

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the architecture's alpha (what the inner step trains)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def arch_parameters(self) -> list[nn.Parameter]:
        """[alpha] of a supernet backbone; [] for a discrete model."""
        alpha = getattr(self.backbone, "alpha", None)
        return [alpha] if isinstance(alpha, nn.Parameter) else []

    def num_parameters(self) -> int:
        """Trainable parameters, alpha excluded."""
        return sum(p.numel() for p in self.weight_parameters())

    def hyperparameters(self) -> dict[str, int]:
        return {
            "lookback": self.lookback,
            "horizon": self.horizon,
            "num_features": self.num_features,
            "patch_len": self.patch_len,
            "stride": self.stride,
            "hidden": self.hidden,
        }


def build_supernet_model(
    space: SearchSpace,
    *,
    lookback: int,
    horizon: int,
    num_features: int,
    patch_len: int,
    stride: int,
    hidden: int,
    num_layers: int,
    dropout: float = 0.0,
) -> SignalModel:
    """The search model: a residual :class:`~nas.SuperNet` (one shared alpha) backbone."""
    backbone = SuperNet(space, hidden, num_layers, residual=True)
    return SignalModel(
        backbone,
        lookback=lookback,
        horizon=horizon,
        num_features=num_features,
        patch_len=patch_len,
        stride=stride,
        hidden=hidden,
        dropout=dropout,
    )


def build_discrete_model(
    cell: Cell,
    *,
    lookback: int,
    horizon: int,
    num_features: int,
    patch_len: int,
    stride: int,
    hidden: int,
    num_layers: int,
    dropout: float = 0.0,
) -> SignalModel:
    """The exported model: ``num_layers`` layers of ``cell`` (pruned, zero edges
    dropped) in the same network."""
    cell.validate()
    return SignalModel(
        CellStack(cell, hidden, num_layers),
        lookback=lookback,
        horizon=horizon,
        num_features=num_features,
        patch_len=patch_len,
        stride=stride,
        hidden=hidden,
        dropout=dropout,
    )


def fixed_parameters(
    *, lookback: int, horizon: int, num_features: int, patch_len: int, stride: int, hidden: int
) -> int:
    """Parameters outside the cells: RevIN, embedding, positions and head."""
    n = num_patches(lookback, patch_len, stride)
    return 2 * num_features + (patch_len + 1) * hidden + n * hidden + (n * hidden + 1) * horizon


def model_tensors(model: SignalModel) -> Mapping[str, torch.Tensor]:
    """The tensors an export stores: every parameter and buffer by its state_dict
    name (the architecture's alpha excluded)."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith("alpha")}
