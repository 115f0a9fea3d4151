"""The signal pipeline: model, config, determinism, failed trials, export + load_model."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import nas
from nas.data import WindowedSeries
from nas.signal import CellStack, RevIN, build_discrete_model, fixed_parameters, num_patches

L, H, P, S, D = 24, 6, 8, 4, 8


def _data(n: int = 600, f: int = 2, seed: int = 0, batch: int = 8) -> WindowedSeries:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    x = np.sin(t / (3.0 + np.arange(f))) + 0.1 * rng.standard_normal((n, f))
    return WindowedSeries(x, L, H, batch)


def _cfg(**kw) -> nas.SignalSearchConfig:
    base = dict(
        num_trials=2,
        search_steps=6,
        warmup_steps=2,
        lookback=L,
        horizon_len=H,
        patch_len=P,
        stride=S,
        hidden_dim=D,
        num_layers=2,
        batch_size=8,
        retrain_epochs=2,
        max_params=0,
        seed=0,
    )
    base.update(kw)
    return nas.SignalSearchConfig(**base)


# -- the model -------------------------------------------------------------------------


def test_revin_round_trip():
    rev = RevIN(3)
    with torch.no_grad():
        rev.weight.uniform_(0.5, 2.0)
        rev.bias.uniform_(-1.0, 1.0)
    x = torch.randn(4, 20, 3, dtype=torch.float64) * 5 + 3
    z, mean, std = rev.to(torch.float64).normalise(x)
    torch.testing.assert_close(rev.denormalise(z, mean, std), x)
    # normalised per sample and series before the affine
    plain, _, _ = RevIN(3).to(torch.float64).normalise(x)
    torch.testing.assert_close(plain.mean(1), torch.zeros(4, 3, dtype=torch.float64))


def test_discrete_model_shapes_and_params():
    cell = nas.make_cell(3, [(0, 1, "conv_3x3"), (1, 2, "sep_conv_3x3"), (0, 2, "zero")])
    m = build_discrete_model(cell, lookback=L, horizon=H, num_features=3, patch_len=P,
                             stride=S, hidden=D, num_layers=2)  # fmt: skip
    assert m(torch.randn(5, L, 3)).shape == (5, H, 3)
    n = num_patches(L, P, S)
    assert n == (L - P) // S + 1
    cells = 2 * (3 * D * D + (3 * D + D * D)) + 2 * 2 * D  # two layers + their LayerNorms
    fixed = fixed_parameters(lookback=L, horizon=H, num_features=3, patch_len=P, stride=S,
                             hidden=D)  # fmt: skip
    assert m.num_parameters() == fixed + cells


def test_dead_edges_and_zero_edges_build_no_modules():
    # 0->1 conv, but node 1 never reaches the output (1->2 is zero): node 1 is dead
    cell = nas.make_cell(3, [(0, 1, "conv_3x3"), (0, 2, "avg_pool_3x3"), (1, 2, "zero")])
    stack = CellStack(cell, D, 2)
    assert nas.format_cell(stack.cell) == "0->2:avg_pool_3x3"
    assert sum(p.numel() for p in stack.parameters()) == 2 * 2 * D  # LayerNorms only
    empty = CellStack(nas.make_cell(3, [(0, 1, "conv_3x3")]), D, 2)
    x = torch.randn(2, 5, D)
    assert torch.equal(empty(x), x) and not list(empty.parameters())


def test_model_rejects_wrong_input_shape():
    m = build_discrete_model(nas.make_cell(2, []), lookback=L, horizon=H, num_features=2,
                             patch_len=P, stride=S, hidden=D, num_layers=1)  # fmt: skip
    with pytest.raises(ValueError, match=r"x must be \[B, lookback=24, features=2\]"):
        m(torch.randn(2, L + 1, 2))
    with pytest.raises(ValueError, match="patch_len 30 is longer than the lookback 24"):
        num_patches(24, 30, 4)


def test_supernet_shares_one_alpha_across_layers():
    m = nas.build_supernet_model(nas.SearchSpace(3, ["conv_3x3", "skip_connect", "zero"]),
                                 lookback=L, horizon=H, num_features=2, patch_len=P, stride=S,
                                 hidden=D, num_layers=3)  # fmt: skip
    (alpha,) = m.arch_parameters()
    assert alpha.shape == (3, 3)
    assert all(id(p) != id(alpha) for p in m.weight_parameters())
    m(torch.randn(2, L, 2)).square().mean().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0


# -- config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_trials", 0, "num_trials must be at least 1"),
        ("search_steps", 0, "search_steps must be at least 1"),
        ("weight_lr", 0.0, "weight_lr must be positive"),
        ("weight_lr", float("nan"), "weight_lr must be positive"),
        ("alpha_lr", -1.0, "alpha_lr must be positive"),
        ("max_params", -1, "max_params must be >= 0"),
        ("patch_len", 0, "patch_len must be at least 1"),
        ("horizon_len", 0, "horizon_len must be at least 1"),
        ("hidden_dim", 2.5, "hidden_dim must be an integer"),
        ("num_layers", 0, "num_layers must be at least 1"),
        ("seed", -3, "seed must be >= 0"),
        ("order", 3, "order must be 1 or 2"),
        ("alpha_optimizer", "rmsprop", "alpha_optimizer must be 'adam' or 'sgd'"),
        ("discretize_rule", "best", "discretize_rule must be one of argmax, darts"),
        ("latency_weight", -0.1, "latency_weight must be a finite number >= 0"),
        ("metric", "accuracy", "metric must be one of inverse_loss, sharpe"),
        ("dropout", 1.0, r"dropout must be in \[0, 1\)"),
        ("patch_len", 100, "patch_len 100 is longer than the lookback 24"),
        ("search_space", nas.SearchSpace(3, ["zero"]), "needs >= 2 nodes and >= 2 ops"),
        ("device", "gpu7", "device 'gpu7' is not a torch device"),
    ],
)
def test_config_messages(field, value, message):
    cfg = dataclasses.replace(_cfg(), **{field: value})
    with pytest.raises(ValueError, match=message):
        nas.run_signal_nas(cfg, _data())


def test_data_must_match_the_config():
    with pytest.raises(ValueError, match="the data's lookback is 24, the config's 30"):
        nas.run_signal_nas(_cfg(lookback=30), _data())
    with pytest.raises(ValueError, match="input_features is 5, the data has 2 series"):
        nas.run_signal_nas(_cfg(input_features=5), _data())
    with pytest.raises(ValueError, match="max_params 100 is below the"):
        nas.run_signal_nas(_cfg(max_params=100), _data())


def test_sharpe_ratio():
    assert nas.sharpe_ratio([0.1, 0.2, 0.3]) == 2.0000000000000004
    assert nas.sharpe_ratio([]) == 0.0 and nas.sharpe_ratio([1.0]) == 0.0
    assert nas.sharpe_ratio([0.5, 0.5, 0.5]) == 0.0  # std < 1e-12
    r = np.array([0.3, -0.1, 0.25, 0.05])
    assert nas.sharpe_ratio(r) == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-15)


# -- runs ------------------------------------------------------------------------------


def _state(out: nas.SignalSearchOutput) -> dict[str, torch.Tensor]:
    return out.model.state_dict()


def test_same_seed_same_result_bitwise_and_seed_zero_is_deterministic():
    a = nas.run_signal_nas(_cfg(seed=0), _data())
    b = nas.run_signal_nas(_cfg(seed=0), _data())
    for ra, rb in zip(a.all_results, b.all_results, strict=True):
        assert ra.seed == rb.seed and ra.final_loss == rb.final_loss
        assert np.array_equal(ra.alpha, rb.alpha)
    sa, sb = _state(a), _state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.test_metrics == b.test_metrics
    # trials differ from each other (own seed and initialisation)
    assert not np.array_equal(a.all_results[0].alpha, a.all_results[1].alpha)
    c = nas.run_signal_nas(_cfg(seed=1), _data())
    assert not np.array_equal(a.all_results[0].alpha, c.all_results[0].alpha)


def test_seed_none_is_random_and_recorded():
    a = nas.run_signal_nas(_cfg(seed=None, num_trials=1), _data())
    assert isinstance(a.config.seed, int)
    b = nas.run_signal_nas(_cfg(seed=a.config.seed, num_trials=1), _data())
    assert np.array_equal(a.best.alpha, b.best.alpha)


def test_best_is_lowest_final_loss_and_metric_is_inverse_loss():
    out = nas.run_signal_nas(_cfg(num_trials=3), _data())
    losses = [r.final_loss for r in out.all_results]
    assert out.best.final_loss == min(losses)
    assert out.best.trial == losses.index(min(losses))
    for r in out.all_results:
        assert r.metric == 1.0 / (1.0 + r.final_loss)
        assert r.arch is not None and r.alpha.shape == (6, 4)


class _Exploding(WindowedSeries):
    """Finite data that overflows float32 losses in the given trials."""

    def __init__(self, bad_trials, **kw):
        self.bad_trials, self.trial = set(bad_trials), -2  # the constructor reseeds once
        super().__init__(_data().series.numpy(), L, H, 8, **kw)

    def reseed(self, seed):
        self.trial += 1
        super().reseed(seed)

    def train_batch(self):
        x, y = super().train_batch()
        return (x, y * 1e30) if self.trial in self.bad_trials else (x, y)


def test_a_diverging_trial_is_recorded_and_the_others_go_on(caplog):
    with caplog.at_level("WARNING", logger="nas"):
        out = nas.run_signal_nas(_cfg(num_trials=3), _Exploding({1}))
    bad = out.all_results[1]
    warned = [r for r in caplog.records if r.name == "nas.search"]
    assert [r.getMessage() for r in warned] == [f"trial 1 failed: {bad.reason}"]
    assert bad.failed and "diverged" in bad.reason and "loss" in bad.reason
    assert math.isnan(bad.final_loss) and bad.arch is None
    assert not out.all_results[0].failed and not out.all_results[2].failed
    assert out.best.trial in (0, 2)
    doc = out.to_dict()
    json.dumps(doc, allow_nan=False)  # strict JSON even with a failed trial
    assert doc["trials"][1]["final_loss"] is None


def test_all_trials_failed_is_an_error():
    with pytest.raises(RuntimeError, match="all 2 trials failed: trial 0: diverged"):
        nas.run_signal_nas(_cfg(), _Exploding({0, 1}))


def test_every_test_window_is_evaluated():
    data = _data()
    out = nas.run_signal_nas(_cfg(num_trials=1), data)
    n = data.num_windows("test")
    assert out.test_metrics["windows"] == n
    x, y = data.windows("test", np.arange(n))
    with torch.no_grad():
        err = (out.model(x) - y).double()
    assert out.test_metrics["mse"] == pytest.approx(float(err.square().mean()), rel=1e-12)
    assert out.test_metrics["mae"] == pytest.approx(float(err.abs().mean()), rel=1e-12)


def test_budget_is_respected_and_counts_the_whole_model():
    space = nas.SearchSpace(3, ["conv_5x5", "conv_3x3", "skip_connect", "zero"])
    fixed = fixed_parameters(lookback=L, horizon=H, num_features=2, patch_len=P, stride=S,
                             hidden=D)  # fmt: skip
    budget = fixed + 2 * 2 * D + 2 * 3 * D * D  # room for one conv_3x3 per layer
    out = nas.run_signal_nas(_cfg(search_space=space, max_params=budget), _data())
    assert out.arch.total_params <= budget
    assert out.arch.total_params == out.model.num_parameters()


def test_export_and_load_model_reproduce_predictions_exactly(tmp_path):
    space = nas.SearchSpace(3, ["conv_3x3", "sep_conv_3x3", "avg_pool_3x3", "zero"])
    data = _data()
    out = nas.run_signal_nas(_cfg(search_space=space, num_trials=1), data)
    paths = out.save(tmp_path / "run")
    model = nas.load_model(paths["model"])
    x, _ = data.windows("test", np.arange(data.num_windows("test")))
    with torch.no_grad():
        assert torch.equal(model(x), out.model(x))
    arch, cfg = nas.load_nas_arch_from_gguf(paths["model"])
    assert arch == out.arch and cfg == out.export_config and cfg.lookback == L
    alphas, ops = nas.load_alphas(paths["model"])
    np.testing.assert_array_equal(alphas, out.best.alpha.astype(np.float32))
    assert ops == list(space.ops)
    doc = json.loads((tmp_path / "run" / "result.json").read_text())
    assert doc["test_mse"] == out.test_metrics["mse"]
    assert doc["cell_text"] == nas.format_cell(out.arch.cell)
    assert len(doc["trials"]) == 1 and doc["params"] == out.model.num_parameters()


def test_load_model_refuses_a_plain_export(tmp_path):
    path = tmp_path / "plain.gguf"
    nas.export_gguf(str(path), nas.DiscretizedArch(nas.make_cell(2, []), 0),
                    nas.ExportConfig(hidden_dim=8))  # fmt: skip
    with pytest.raises(nas.GGUFFormatError, match="not a trained signal model"):
        nas.load_model(str(path))


def test_latency_penalty_pushes_alpha_to_cheap_ops():
    space = nas.SearchSpace(2, ["conv_5x5", "zero"])
    kw = dict(search_space=space, num_trials=1, search_steps=30, warmup_steps=0, alpha_lr=0.05,
              retrain_epochs=0)  # fmt: skip
    plain = nas.run_signal_nas(_cfg(**kw), _data())
    costly = nas.run_signal_nas(_cfg(**kw, latency_weight=5.0), _data())
    # same seed, same data: only the penalty differs; it lowers conv_5x5's logit
    d_plain = plain.best.alpha[0, 0] - plain.best.alpha[0, 1]
    d_costly = costly.best.alpha[0, 0] - costly.best.alpha[0, 1]
    assert d_costly < d_plain - 0.5


def test_train_cell_trains_a_given_cell_like_the_pipeline(tmp_path):
    data = _data()
    cell = nas.make_cell(4, [(0, 1, "max_pool_3x3"), (1, 3, "skip_connect"), (0, 3, "zero")])
    tc = nas.train_cell(_cfg(), data, cell)
    assert nas.format_cell(tc.arch.cell) == "0->1:max_pool_3x3,1->3:skip_connect"
    assert tc.test_metrics["windows"] == data.num_windows("test")
    assert tc.history and tc.history[-1]["epoch"] <= 2
    again = nas.train_cell(_cfg(), data, cell)
    assert again.val_metrics == tc.val_metrics  # seeded by cfg.seed
    tc.export(tmp_path / "m.gguf")
    x, _ = data.windows("val", np.arange(10))
    with torch.no_grad():
        assert torch.equal(nas.load_model(str(tmp_path / "m.gguf"))(x), tc.model(x))
