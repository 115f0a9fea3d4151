"""Pictures of a search run, and one self-contained ``report.html`` that shows them.

:func:`write_report` draws, into the run folder (PNG via matplotlib, each written to a
temporary name and renamed):

* ``cell.png``: the found cell as a DAG (nodes, edges labelled with their ops, zero
  and dead edges dropped);
* ``alphas.png``: softmax(alpha) per edge over the search, one panel per edge, for the
  best trial;
* ``losses.png``: the search's training/validation losses per trial, and the
  retraining's per-epoch training loss and validation MSE;
* ``forecast.png``: forecast vs truth for a few test windows (first series);

and ``report.html``, which embeds them (base64) with the trial table, so a run can be
read in a browser without a server.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ._io import atomic_path
from .space import Cell, OpType

_OP_COLOURS = {
    OpType.CONV_3X3: "#1f77b4",
    OpType.CONV_5X5: "#17becf",
    OpType.SEP_CONV_3X3: "#2ca02c",
    OpType.SEP_CONV_5X5: "#bcbd22",
    OpType.AVG_POOL_3X3: "#ff7f0e",
    OpType.MAX_POOL_3X3: "#d62728",
    OpType.SKIP_CONNECT: "#9467bd",
    OpType.ZERO: "#7f7f7f",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def plot_cell(cell: Cell, path: str, title: str = "") -> None:
    """The cell as a DAG: nodes on a line (0 = input, last = output), each non-zero
    edge an arc labelled with its op."""
    plt = _pyplot()
    n = cell.num_nodes
    fig, ax = plt.subplots(figsize=(max(4.0, 1.9 * n), 3.2))
    xs = np.arange(n, dtype=float)
    edges = [e for e in cell.edges if e.op != OpType.ZERO]
    for k, e in enumerate(edges):
        span = e.dst - e.src
        height = 0.35 * span * (1 if k % 2 == 0 else -1)
        t = np.linspace(0, 1, 50)
        x = xs[e.src] + (xs[e.dst] - xs[e.src]) * t
        y = height * 4 * t * (1 - t)
        colour = _OP_COLOURS.get(e.op, "black") if isinstance(e.op, OpType) else "black"
        ax.plot(x, y, color=colour, lw=2)
        ax.annotate("", xy=(x[-1], y[-1]), xytext=(x[-4], y[-4]),
                    arrowprops={"arrowstyle": "->", "color": colour, "lw": 2})  # fmt: skip
        ax.text(x[25], y[25] + (0.06 if height >= 0 else -0.12), str(e.op), ha="center",
                fontsize=9, color=colour)  # fmt: skip
    for i in range(n):
        name = "in" if i == 0 else "out" if i == n - 1 else str(i)
        ax.scatter([xs[i]], [0], s=900, color="white", edgecolor="black", zorder=3)
        ax.text(xs[i], 0, name, ha="center", va="center", zorder=4, fontsize=10)
    if not edges:
        ax.text(xs.mean(), 0.3, "no live edge: every layer is the identity (residual only)",
                ha="center", fontsize=9)  # fmt: skip
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-0.35 * n, 0.35 * n)
    ax.axis("off")
    ax.set_title(title or f"cell ({n} nodes)")
    _save(fig, path)


def plot_alphas(
    history: Sequence[Mapping[str, Any]],
    edges: Sequence[tuple[int, int]],
    ops: Sequence[OpType],
    path: str,
    title: str = "",
) -> None:
    """softmax(alpha) per edge over the search steps (one panel per edge)."""
    plt = _pyplot()
    steps = [h["step"] for h in history]
    w = np.array([h["weights"] for h in history])  # [T, E, K]
    cols = min(3, len(edges))
    rows = math.ceil(len(edges) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False)
    for e, (i, j) in enumerate(edges):
        ax = axes[e // cols][e % cols]
        for k, op in enumerate(ops):
            ax.plot(steps, w[:, e, k], label=op.value, color=_OP_COLOURS.get(op))
        ax.set_title(f"edge {i}->{j}", fontsize=10)
        ax.set_ylim(0, 1)
        ax.set_xlabel("step", fontsize=8)
    for e in range(len(edges), rows * cols):
        axes[e // cols][e % cols].axis("off")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title or "softmax(alpha) per edge")
    fig.tight_layout()
    _save(fig, path)


def plot_losses(
    trials: Sequence[Mapping[str, Any]], retrain: Sequence[Mapping[str, Any]], path: str
) -> None:
    """Search losses per trial (left) and the retraining curves (right)."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    for t in trials:
        h = t["history"]
        if not h:
            continue
        a.plot(
            [p["step"] for p in h], [p["train_loss"] for p in h], label=f"trial {t['trial']} train"
        )
        val = [(p["step"], p["val_loss"]) for p in h if p["val_loss"] is not None]
        if val:
            a.plot(*zip(*val, strict=True), "--", label=f"trial {t['trial']} val")
    a.set_xlabel("search step")
    a.set_ylabel("MSE")
    a.set_title("search (supernet)")
    a.legend(fontsize=7)
    if retrain:
        ep = [r["epoch"] for r in retrain]
        b.plot(ep, [r["train_loss"] for r in retrain], "o-", label="train")
        b.plot(ep, [r["val_mse"] for r in retrain], "s-", label="validation")
        b.legend(fontsize=8)
    b.set_xlabel("epoch")
    b.set_title("retraining (discrete model)")
    fig.tight_layout()
    _save(fig, path)


def plot_forecast(
    model: torch.nn.Module, data: Any, path: str, windows: int = 4, series: int = 0
) -> None:
    """Forecast vs truth for ``windows`` test windows spread over the test split."""
    plt = _pyplot()
    n = data.num_windows("test")
    idx = np.linspace(0, n - 1, min(windows, n)).astype(np.int64)
    x, y = data.windows("test", idx)
    model.eval()
    with torch.no_grad():
        p = model(x)
    fig, axes = plt.subplots(1, len(idx), figsize=(4 * len(idx), 3), squeeze=False)
    L, H = x.shape[1], y.shape[1]
    name = data.columns[series] if hasattr(data, "columns") else str(series)
    for k, ax in enumerate(axes[0]):
        ax.plot(np.arange(L), x[k, :, series].numpy(), color="grey", lw=1, label="input")
        ax.plot(np.arange(L, L + H), y[k, :, series].numpy(), color="black", lw=1.2, label="truth")
        ax.plot(np.arange(L, L + H), p[k, :, series].numpy(), color="#d62728", lw=1.2,
                label="forecast")  # fmt: skip
        ax.set_title(f"test window {int(idx[k])}", fontsize=9)
        ax.set_xlim(max(0, L - 2 * H), L + H)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"series {name!r} (normalised)")
    fig.tight_layout()
    _save(fig, path)


def _img(path: str, alt: str) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    alt = html.escape(alt)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        f"<figcaption>{alt}</figcaption></figure>"
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def write_report(out: Any, data: Any, folder: str | os.PathLike[str]) -> dict[str, str]:
    """Draw the pictures of a :class:`~nas.SignalSearchOutput` (and its data, for the
    forecast) into ``folder`` and write ``report.html``; returns name -> path."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    doc = out.to_dict()
    best = getattr(out, "best", None)  # None for `nas train` (a TrainedCell)
    files = {k: os.path.join(folder, f"{k}.png") for k in ("cell", "alphas", "losses")}
    what = "found cell" if best is not None else "cell"
    plot_cell(out.arch.cell, files["cell"], f"{what}: {doc['cell_text']}")
    if best is not None and best.history:
        space = out.config.space()
        plot_alphas(best.history, space.edges, space.ops, files["alphas"],
                    f"softmax(alpha) per edge, trial {best.trial}")  # fmt: skip
    else:
        files.pop("alphas")
    plot_losses(doc["trials"], doc["retrain_history"], files["losses"])
    if hasattr(data, "windows") and out.test_metrics is not None:
        files["forecast"] = os.path.join(folder, "forecast.png")
        plot_forecast(out.model, data, files["forecast"])
    rows = "".join(
        f"<tr><td>{t['trial']}</td><td>{t['seed']}</td><td>{_fmt(t['final_loss'])}</td>"
        f"<td>{_fmt(t['metric'])}</td><td><code>{_fmt(t['cell']['text'] if t['cell'] else None)}"
        f"</code></td><td>{_fmt(t['reason'] or 'ok')}</td><td>{t['seconds']:.1f}</td></tr>"
        for t in doc["trials"]
    )
    test = (
        f"test MSE {doc['test_mse']:.4f}, MAE {doc['test_mae']:.4f} over all "
        f"{doc['test_windows']:,} test windows (normalised scale)"
        if doc["test_mse"] is not None
        else "no test split"
    )
    src = html.escape(str((doc.get("data") or {}).get("source", "")))
    tm = doc["timings"]
    timing = (f"search {tm['search_s']:.1f} s, " if "search_s" in tm else "") + (
        f"training {tm['retrain_s']:.1f} s"
    )
    trials = (
        "<h2>Trials</h2>\n<table><tr><th>trial</th><th>seed</th><th>final loss (val MSE)"
        "</th><th>metric</th><th>discretized cell</th><th>status</th><th>seconds</th></tr>"
        f"{rows}</table>"
        if rows
        else ""
    )
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>nas search report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
img{{max-width:100%}}figure{{margin:1.5em 0}}figcaption{{color:#555;font-size:90%}}</style>
</head><body>
<h1>nas search report</h1>
<p>data: <code>{src}</code><br>
cell: <code>{html.escape(doc["cell_text"])}</code> ({out.arch.cell.num_nodes} nodes),
{doc["params"]:,} parameters<br>{test}<br>
{timing}</p>
{trials}
{"".join(_img(p, k) for k, p in files.items())}
</body></html>
"""
    files["report"] = os.path.join(folder, "report.html")
    with atomic_path(files["report"]) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(body)
    return files
