"""GGUF export/load: the seed's byte layout, exact round trips, and hostile files.

The expected bytes are built here by a small independent encoder (``_gguf`` below,
written from the issue's format description), never by the code under test.
"""

from __future__ import annotations

import io
import json
import os
import struct

import numpy as np
import pytest
import torch

import nas
from nas import gguf_io
from nas.cli import main
from nas.gguf_io import (
    ExportConfig,
    GGUFFormatError,
    export_gguf,
    inspect_gguf,
    load_alphas,
    load_nas_arch_from_gguf,
    load_tensors,
    validate_export_round_trip,
)
from nas.space import DiscretizedArch, OpType, make_cell

# --------------------------------------------------------------------------------------
# An independent GGUF encoder (the oracle) and the worked example
# --------------------------------------------------------------------------------------


def _s(v: str | bytes) -> bytes:
    b = v.encode("utf-8") if isinstance(v, str) else v
    return struct.pack("<Q", len(b)) + b


def _u32(key: str, v: int) -> bytes:
    return _s(key) + struct.pack("<II", 4, v)


def _i64(key: str, v: int) -> bytes:
    return _s(key) + struct.pack("<Iq", 11, v)


def _str(key: str, v: str | bytes) -> bytes:
    return _s(key) + struct.pack("<I", 8) + _s(v)


def _tinfo(name: str | bytes, ggml_dims, ggml_type: int = 0, offset: int = 0) -> bytes:
    out = _s(name) + struct.pack("<I", len(ggml_dims))
    out += b"".join(struct.pack("<Q", d) for d in ggml_dims)
    return out + struct.pack("<IQ", ggml_type, offset)


def _gguf(kvs, tensors=(), *, infos=None, data=None, version: int = 3) -> bytes:
    """kvs: encoded key/values (a list, or a dict key -> bytes); tensors: (name, float32
    array) in file order, or raw ``infos`` (list of bytes) plus raw ``data``."""
    kvs = list(kvs.values()) if isinstance(kvs, dict) else list(kvs)
    if infos is None:
        infos, blob = [], b""
        for name, arr in tensors:
            infos.append(_tinfo(name, list(reversed(arr.shape)), 0, len(blob)))
            raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
            blob += raw + b"\0" * (-len(raw) % 32)
        data = blob
    head = b"GGUF" + struct.pack("<IQQ", version, len(infos), len(kvs))
    head += b"".join(kvs) + b"".join(infos)
    if infos:
        head += b"\0" * (-len(head) % 32)
    return head + (data or b"")


def _seed_kvs(num_nodes, edges, total_params, name="", **signal) -> dict[str, bytes]:
    kvs = {"general.architecture": _str("general.architecture", "nas")}
    if name:
        kvs["general.name"] = _str("general.name", name)
    kvs["nas.cell.num_nodes"] = _u32("nas.cell.num_nodes", num_nodes)
    kvs["nas.cell.num_edges"] = _u32("nas.cell.num_edges", len(edges))
    kvs["nas.total_params"] = _i64("nas.total_params", total_params)
    for i, (a, b, op) in enumerate(edges):
        for suffix, enc in (
            ("from", _u32(f"nas.cell.edge.{i}.from", a)),
            ("to", _u32(f"nas.cell.edge.{i}.to", b)),
            ("op", _str(f"nas.cell.edge.{i}.op", op)),
        ):
            kvs[f"nas.cell.edge.{i}.{suffix}"] = enc
    for key in ("hidden_dim", "num_layers", "input_features", "patch_len", "horizon_len"):
        if signal.get(key, 0) > 0:
            kvs[f"ts.signal.{key}"] = _u32(f"ts.signal.{key}", signal[key])
    return kvs


EDGES = [(0, 1, "conv_3x3"), (0, 2, "skip_connect"), (1, 2, "zero")]
CFG = ExportConfig(
    "nas-test-model", hidden_dim=128, num_layers=4, input_features=16, patch_len=32, horizon_len=8
)
SIGNAL = {
    "hidden_dim": 128,
    "num_layers": 4,
    "input_features": 16,
    "patch_len": 32,
    "horizon_len": 8,
}


def _arch(edges=EDGES, num_nodes=3, total_params=36864) -> DiscretizedArch:
    return DiscretizedArch(make_cell(num_nodes, edges), total_params)


def _weights() -> dict[str, np.ndarray]:
    # deliberately not in name order: the file must sort them
    return {
        "blk.1.weight": np.arange(5, 11, dtype=np.float32).reshape(2, 3),
        "blk.0.weight": np.arange(1, 5, dtype=np.float32).reshape(2, 2),
    }


def _export_bytes(*args, **kwargs) -> bytes:
    buf = io.BytesIO()
    export_gguf(buf, *args, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def example() -> bytes:
    return _export_bytes(_arch(), CFG, _weights())


def _walk_header(data: bytes):
    """(kv keys in order, [(name, ggml_dims, type, offset)], end of the tensor infos)."""
    pos = 4
    version, n_t, n_kv = struct.unpack_from("<IQQ", data, pos)
    assert version == 3
    pos += 20

    def rd_str():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + n
        return data[pos - n : pos].decode()

    keys = []
    for _ in range(n_kv):
        keys.append(rd_str())
        (t,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if t == 8:
            rd_str()
        else:
            pos += {4: 4, 11: 8}[t]
    infos = []
    for _ in range(n_t):
        name = rd_str()
        (nd,) = struct.unpack_from("<I", data, pos)
        dims = struct.unpack_from(f"<{nd}Q", data, pos + 4)
        ttype, off = struct.unpack_from("<IQ", data, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        infos.append((name, dims, ttype, off))
    return keys, infos, pos


# --------------------------------------------------------------------------------------
# The seed's byte layout
# --------------------------------------------------------------------------------------


def test_worked_example_byte_figures(example):
    assert len(example) == 928
    keys, infos, end = _walk_header(example)
    assert len(keys) == 19
    assert keys[:5] == [
        "general.architecture",
        "general.name",
        "nas.cell.num_nodes",
        "nas.cell.num_edges",
        "nas.total_params",
    ]
    assert keys[5:8] == ["nas.cell.edge.0.from", "nas.cell.edge.0.to", "nas.cell.edge.0.op"]
    assert keys[-5:] == [f"ts.signal.{k}" for k in SIGNAL]
    assert "general.alignment" not in keys
    data_offset = end + (-end % 32)
    assert data_offset == 0x360
    assert [(n, d, t, o) for n, d, t, o in infos] == [
        ("blk.0.weight", (2, 2), 0, 0),
        ("blk.1.weight", (3, 2), 0, 32),  # row-major [2, 3] stored as GGML (3, 2)
    ]
    tensor0 = np.frombuffer(example, "<f4", 4, 0x360)
    tensor1 = np.frombuffer(example, "<f4", 6, 0x360 + 32)
    np.testing.assert_array_equal(tensor0, np.arange(1, 5))
    np.testing.assert_array_equal(tensor1, np.arange(5, 11))
    assert example[0x360 + 16 : 0x360 + 32] == bytes(16)  # padding after each tensor,
    assert example[0x360 + 32 + 24 :] == bytes(8)  # the last one too


def test_worked_example_matches_independent_encoder_byte_for_byte(example):
    w = _weights()
    expected = _gguf(
        _seed_kvs(3, EDGES, 36864, "nas-test-model", **SIGNAL),
        [("blk.0.weight", w["blk.0.weight"]), ("blk.1.weight", w["blk.1.weight"])],
    )
    assert example == expected


def test_no_config_no_tensors_is_519_bytes_without_padding():
    data = _export_bytes(_arch())
    assert len(data) == 519
    assert data == _gguf(_seed_kvs(3, EDGES, 36864))
    # it ends right after the last value: the string "zero", no padding
    assert data.endswith(_s("zero"))


def test_config_fields_written_only_when_positive_and_name_only_when_non_empty():
    cfg = ExportConfig(model_name="", hidden_dim=64, patch_len=16)
    data = _export_bytes(_arch(), cfg)
    keys, _, _ = _walk_header(data)
    assert "general.name" not in keys
    assert [k for k in keys if k.startswith("ts.")] == [
        "ts.signal.hidden_dim",
        "ts.signal.patch_len",
    ]
    assert data == _gguf(_seed_kvs(3, EDGES, 36864, hidden_dim=64, patch_len=16))


def test_edge_keys_use_plain_decimal_indices():
    edges = [(i, j, "zero") for i in range(5) for j in range(i + 1, 5)]  # 10 edges
    data = _export_bytes(_arch(edges, num_nodes=5))
    keys, _, _ = _walk_header(data)
    assert "nas.cell.edge.10.op" not in keys and "nas.cell.edge.9.op" in keys
    assert "nas.cell.edge.09.op" not in keys
    assert data == _gguf(_seed_kvs(5, edges, 36864))


def test_tensors_sorted_by_utf8_byte_order():
    names = ["b", "a.weight", "B", "\u00e9t\u00e9", "a", "z"]
    weights = {n: np.full(3, k, np.float32) for k, n in enumerate(names)}
    data = _export_bytes(_arch(), None, weights)
    _, infos, _ = _walk_header(data)
    got = [n for n, *_ in infos]
    assert got == sorted(names, key=lambda n: n.encode("utf-8"))
    assert got[0] == "B" and got[-1] == "\u00e9t\u00e9"
    loaded = load_tensors(data)
    for n, k in zip(names, range(len(names)), strict=True):
        np.testing.assert_array_equal(loaded[n], np.full(3, k, np.float32))


def test_gguf_py_reads_our_file(example, tmp_path):
    from gguf import GGUFReader

    path = tmp_path / "m.gguf"
    path.write_bytes(example)
    reader = GGUFReader(path)
    assert reader.fields["general.architecture"].contents() == "nas"
    assert reader.fields["nas.total_params"].contents() == 36864
    assert [t.name for t in reader.tensors] == ["blk.0.weight", "blk.1.weight"]
    assert list(reader.tensors[1].shape) == [3, 2]
    assert reader.data_offset == 0x360
    # and our loader accepts an open reader as the source
    arch, cfg = load_nas_arch_from_gguf(reader)
    assert arch == _arch() and cfg == CFG
    np.testing.assert_array_equal(load_tensors(reader)["blk.0.weight"], [[1, 2], [3, 4]])


# --------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------


def test_round_trip_every_source_kind(example, tmp_path):
    path = tmp_path / "m.gguf"
    export_gguf(path, _arch(), CFG, _weights())
    assert path.read_bytes() == example
    for src in (
        example,
        bytearray(example),
        memoryview(example),
        path,
        str(path),
        io.BytesIO(example),
    ):
        if isinstance(src, io.BytesIO):
            src.seek(0)
        arch, cfg = load_nas_arch_from_gguf(src)
        assert arch == _arch() and cfg == CFG
        assert all(isinstance(e.op, OpType) for e in arch.cell.edges)
    tensors = load_tensors(path)
    assert list(tensors) == ["blk.0.weight", "blk.1.weight"]
    for name, w in _weights().items():
        assert tensors[name].dtype == np.float32 and tensors[name].shape == w.shape
        np.testing.assert_array_equal(tensors[name], w)
    assert tensors["blk.0.weight"].flags.writeable  # a copy, not a view of the file


def test_round_trip_is_bitwise_for_odd_values_and_shapes():
    rng = np.random.default_rng(7)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4e38, -1.0], np.float32)
    weights = {
        "scalarish": np.array([2.5], np.float32),
        "special": special,
        "odd": rng.standard_normal((7, 1, 97)).astype(np.float32),
        "four_d": rng.standard_normal((2, 3, 5, 7)).astype(np.float32),
        "eight_d": rng.standard_normal((1, 2, 1, 2, 1, 2, 1, 3)).astype(np.float32),
        "noncontig": rng.standard_normal((6, 4)).astype(np.float32).T,
        "torch": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "bf16": torch.tensor([1.5, -3.0, 2.0**-10], dtype=torch.bfloat16),
        "grad": torch.ones(2, 2, requires_grad=True),
        "f64": rng.standard_normal(5),  # stored as F32
    }
    data = _export_bytes(_arch(), CFG, weights)
    back = load_tensors(data)
    for name, w in weights.items():
        want = np.asarray(w.detach().float() if isinstance(w, torch.Tensor) else w, np.float32)
        assert back[name].shape == want.shape, name
        assert back[name].tobytes() == np.ascontiguousarray(want).tobytes(), name
    validate_export_round_trip(_arch(), CFG, weights)


def test_shapes_reshape_flat_weights_like_the_seed():
    flat = {"w": np.arange(6, dtype=np.float32), "v": torch.ones(4)}
    shapes = {"w": [2, 3], "v": (4,)}
    data = _export_bytes(_arch(), None, flat, shapes)
    back = load_tensors(data)
    assert back["w"].shape == (2, 3) and back["v"].shape == (4,)
    np.testing.assert_array_equal(back["w"], np.arange(6).reshape(2, 3))
    validate_export_round_trip(_arch(), CFG, flat, shapes)
    # same bytes as the worked example when shapes describe flat weights
    w = {k: v.ravel() for k, v in _weights().items()}
    s = {k: list(v.shape) for k, v in _weights().items()}
    assert _export_bytes(_arch(), CFG, w, s) == _export_bytes(_arch(), CFG, _weights())


def test_validate_export_round_trip_reports_the_first_difference(monkeypatch):
    validate_export_round_trip(_arch(), CFG, _weights())
    real = gguf_io._read_arch_and_config

    def drop_patch_len(opened):
        arch, cfg = real(opened)
        return arch, ExportConfig(**{**cfg.__dict__, "patch_len": 0})

    monkeypatch.setattr(gguf_io, "_read_arch_and_config", drop_patch_len)
    with pytest.raises(ValueError, match=r"cfg.patch_len wrote 32, read 0"):
        validate_export_round_trip(_arch(), CFG, _weights())
    monkeypatch.setattr(gguf_io, "_read_arch_and_config", real)

    real_tensors = gguf_io._read_tensors

    def flip_one_bit(opened):
        out = real_tensors(opened)
        out["blk.1.weight"].view(np.uint32)[1, 2] ^= 1
        return out

    monkeypatch.setattr(gguf_io, "_read_tensors", flip_one_bit)
    with pytest.raises(ValueError, match=r"tensor 'blk.1.weight' at flat index 5"):
        validate_export_round_trip(_arch(), CFG, _weights())

    def transpose(opened):
        out = real_tensors(opened)
        out["blk.1.weight"] = np.ascontiguousarray(out["blk.1.weight"].reshape(3, 2))
        return out

    monkeypatch.setattr(gguf_io, "_read_tensors", transpose)
    with pytest.raises(ValueError, match=r"shape of 'blk.1.weight' wrote \[2, 3\], read \[3, 2\]"):
        validate_export_round_trip(_arch(), CFG, _weights())


def test_extras_only_on_request():
    default = _export_bytes(_arch(), CFG, _weights())
    cfg = ExportConfig(**{**CFG.__dict__, "num_heads": 4, "stride": 2})
    alphas = np.arange(3 * 4, dtype=np.float32).reshape(3, 4) / 7
    ops = ["avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"]
    extra = _export_bytes(_arch(), cfg, _weights(), schema_version=1, alphas=alphas, alpha_ops=ops)
    keys, _, _ = _walk_header(default)
    assert not any(
        k.endswith(("num_heads", "stride", "schema_version")) or "alphas" in k for k in keys
    )
    assert load_alphas(default) is None
    assert inspect_gguf(default)["schema_version"] is None
    assert inspect_gguf(extra)["schema_version"] == 1
    arch, got_cfg = load_nas_arch_from_gguf(extra)
    assert got_cfg == cfg and arch == _arch()
    got_alphas, got_ops = load_alphas(extra)
    assert got_alphas.tobytes() == alphas.tobytes()
    assert [op.value for op in got_ops] == ops
    assert load_tensors(extra).keys() == load_tensors(default).keys()
    with pytest.raises(ValueError, match=r"alphas must be \[num_edges\(3\), num_ops\]"):
        export_gguf(io.BytesIO(), _arch(), alphas=np.zeros((2, 4)), alpha_ops=ops)
    with pytest.raises(ValueError, match="alpha_ops has 3 ops, alphas has 4 columns"):
        export_gguf(io.BytesIO(), _arch(), alphas=alphas, alpha_ops=ops[:3])


# --------------------------------------------------------------------------------------
# Writing to paths and file objects
# --------------------------------------------------------------------------------------


def test_path_write_replaces_atomically_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"old")
    export_gguf(path, _arch(), CFG, _weights())
    assert os.listdir(tmp_path) == ["model.gguf"]
    assert len(path.read_bytes()) == 928
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(), not mkstemp's 0600

    def boom(tmp, *args):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(gguf_io, "_write_with_gguf", boom)
    with pytest.raises(OSError, match="disk full"):
        export_gguf(path, _arch(), CFG, _weights())
    assert os.listdir(tmp_path) == ["model.gguf"]
    assert len(path.read_bytes()) == 928  # the old file is untouched


def test_long_file_name(tmp_path):
    path = tmp_path / ("m" * 240 + ".gguf")  # the temp name must stay under NAME_MAX
    export_gguf(path, _arch())
    assert os.listdir(tmp_path) == [path.name] and len(path.read_bytes()) == 519


def test_file_object_destination(tmp_path):
    with open(tmp_path / "a.gguf", "wb") as f:
        f.write(b"prefix")
        export_gguf(f, _arch(), CFG, _weights())
    data = (tmp_path / "a.gguf").read_bytes()
    assert data[:6] == b"prefix" and len(data) == 6 + 928


# --------------------------------------------------------------------------------------
# Export errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"arch": _arch([(1, 0, "zero")])}, r"invalid cell: edge 0 \(1->0\) has src >= dst"),
        ({"arch": _arch([(0, 1, "bogus")])}, "unknown op 'bogus'"),
        ({"arch": "cell"}, "arch must be a DiscretizedArch, got str"),
        ({"arch": _arch(total_params=-1)}, r"total_params is -1"),
        ({"weights": {"w": np.float32(3.0)}}, "weight 'w' has no shape"),
        (
            {"weights": {"w": np.zeros((2, 0), np.float32)}},
            r"shape \[2, 0\]: every dim must be > 0",
        ),
        (
            {"weights": {"w": np.zeros(4)}, "shapes": {"w": [-2, -2]}},
            r"shapes\['w'\] is \[-2, -2\]",
        ),
        (
            {"weights": {"w": np.zeros(6)}, "shapes": {"w": [2, 2]}},
            r"\(4 values\) but weight 'w' has 6",
        ),
        ({"weights": {"w": np.zeros(6)}, "shapes": {"x": [6]}}, "'x', which is not in weights"),
        ({"weights": {"": np.zeros(2)}}, "non-empty strings"),
        ({"weights": {"\udcff": np.zeros(2)}}, "cannot be encoded as UTF-8"),
        ({"cfg": ExportConfig(model_name="\ud800")}, "cfg.model_name .* is not valid UTF-8"),
        ({"weights": {"w": np.zeros((1,) * 9)}}, "9 dims, at most 8"),
        ({"weights": {"w": np.array([True])}}, "dtype bool"),
        ({"cfg": ExportConfig(hidden_dim=-1)}, r"cfg.hidden_dim is -1"),
        ({"cfg": ExportConfig(patch_len=1 << 32)}, r"cfg.patch_len is 4294967296"),
        (
            {"weights": {"w": np.array([1.0, np.nan])}, "refuse_non_finite": True},
            "weight 'w' has a non-finite value at flat index 1",
        ),
        # float dims are an error, never truncated ([2.5, 2.4] once became [2, 2])
        (
            {"weights": {"w": np.zeros(6)}, "shapes": {"w": [2.5, 2.4]}},
            r"shapes\['w'\] must be a sequence of ints, got \[2.5, 2.4\]",
        ),
        (
            {"weights": {"w": np.zeros(6)}, "shapes": {"w": [2.0, 3.0]}},
            r"shapes\['w'\] must be a sequence of ints",
        ),
        ({"weights": {"w": np.zeros(6)}, "shapes": {"w": "23"}}, "sequence of ints"),
        # non-integer cell sizes and schema versions: ValueError, not struct.error
        ({"arch": _arch(num_nodes=3.0)}, "num_nodes must be an integer, got 3.0"),
        ({"arch": _arch([(0, 1.5, "zero")])}, r"edge 0 \(0->1.5\) must have integer nodes"),
        ({"arch": _arch(total_params=1.5)}, "total_params is 1.5"),
        ({"schema_version": 1.5}, r"schema_version is 1.5, must be an int"),
        ({"schema_version": "1"}, r"schema_version is '1', must be an int"),
        ({"schema_version": -1}, r"schema_version is -1"),
        (
            {
                "alphas": np.array([[0.0, np.nan]] * 3),
                "alpha_ops": ["zero", "skip_connect"],
                "refuse_non_finite": True,
            },
            r"alphas has a non-finite value nan at \[0, 1\]",
        ),  # fmt: skip
        (
            {"alphas": np.zeros((3, 2)), "alpha_ops": ["zero", "zero"]},
            "alpha_ops lists 'zero' more than once",
        ),
    ],
)
def test_export_errors(tmp_path, kwargs, match):
    args = {"arch": _arch(), "cfg": CFG, "weights": None, "shapes": None, **kwargs}
    path = tmp_path / "x.gguf"
    with pytest.raises(ValueError, match=match):
        export_gguf(path, **args)
    assert os.listdir(tmp_path) == []  # nothing written, no temp file left


def test_non_finite_values_are_kept_unless_refused():
    data = _export_bytes(_arch(), None, {"w": np.array([np.nan, np.inf], np.float32)})
    assert np.isnan(load_tensors(data)["w"][0])
    alphas = np.array([[0.0, np.nan]] * 3, np.float32)
    data = _export_bytes(_arch(), None, alphas=alphas, alpha_ops=["zero", "skip_connect"])
    assert np.isnan(load_alphas(data)[0][0, 1])


def test_integer_like_values_are_accepted():
    # numpy integers are integers; an alpha_ops string is an op spec, not letters
    w = {"w": np.arange(6.0)}
    data = _export_bytes(
        _arch(), None, w, {"w": (np.int64(2), np.int32(3))}, schema_version=np.uint32(2)
    )
    assert load_tensors(data)["w"].shape == (2, 3)
    data = _export_bytes(_arch(), None, alphas=np.zeros((3, 2)), alpha_ops="zero,skip_connect")
    assert load_alphas(data)[1] == [OpType.ZERO, OpType.SKIP_CONNECT]


# --------------------------------------------------------------------------------------
# Load errors: each named problem, on files built by the independent encoder
# --------------------------------------------------------------------------------------

EDGES4 = [(0, 1, "zero"), (0, 2, "zero"), (1, 2, "zero"), (2, 3, "conv_3x3")]


def _kvs(**replace) -> dict[str, bytes]:
    kvs = _seed_kvs(4, EDGES4, 100)
    for key, enc in replace.items():
        key = key.replace("__", ".")
        if enc is None:
            del kvs[key]
        else:
            kvs[key] = enc
    return kvs


def _expect(data: bytes, match: str, loader=load_nas_arch_from_gguf) -> None:
    with pytest.raises(GGUFFormatError, match=match):
        loader(data)


def test_valid_hand_built_file_loads():
    arch, cfg = load_nas_arch_from_gguf(_gguf(_kvs()))
    assert arch == _arch(EDGES4, num_nodes=4, total_params=100) and cfg == ExportConfig()


@pytest.mark.parametrize(
    "kvs, match",
    [
        (_kvs(nas__cell__num_nodes=None), "^missing nas.cell.num_nodes metadata$"),
        (_kvs(nas__cell__num_edges=None), "^missing nas.cell.num_edges metadata$"),
        (_kvs(nas__total_params=None), "^missing nas.total_params metadata$"),
        (_kvs(**{"nas__cell__edge__3__op": None}), "^missing nas.cell.edge.3.op metadata$"),
        (_kvs(**{"nas__cell__edge__1__from": None}), "^missing nas.cell.edge.1.from metadata$"),
        (_kvs(**{"general__architecture": None}), "^missing general.architecture metadata$"),
        (
            _kvs(**{"general__architecture": _str("general.architecture", "llama")}),
            "general.architecture is 'llama', expected 'nas'",
        ),
        (
            _kvs(nas__total_params=_u32("nas.total_params", 100)),
            "nas.total_params has type UINT32, expected INT64",
        ),
        (_kvs(nas__total_params=_i64("nas.total_params", -5)), "nas.total_params is -5"),
        (
            _kvs(nas__cell__num_nodes=_i64("nas.cell.num_nodes", 4)),
            "nas.cell.num_nodes has type INT64, expected UINT32",
        ),
        (
            _kvs(**{"nas__cell__edge__0__op": _u32("nas.cell.edge.0.op", 3)}),
            "nas.cell.edge.0.op has type UINT32, expected STRING",
        ),
        (
            _kvs(**{"ts__signal__patch_len": _str("ts.signal.patch_len", "32")}),
            "ts.signal.patch_len has type STRING, expected UINT32",
        ),
        (
            _kvs(**{"general__name": _u32("general.name", 1)}),
            "general.name has type UINT32, expected STRING",
        ),
        (
            _kvs(nas__cell__num_edges=_u32("nas.cell.num_edges", 0xFFFFFFFF)),
            "nas.cell.num_edges is 4294967295, more edges than the file's 16 key/values",
        ),
        (
            _kvs(nas__cell__num_edges=_u32("nas.cell.num_edges", 5)),
            "^missing nas.cell.edge.4.from metadata$",
        ),
        (
            _kvs(**{"nas__cell__edge__3__to": _u32("nas.cell.edge.3.to", 2)}),
            r"^loaded cell is not valid: edge 3 \(2->2\) has src >= dst",
        ),
        (
            _kvs(nas__cell__num_nodes=_u32("nas.cell.num_nodes", 3)),
            r"^loaded cell is not valid: edge 3 \(2->3\) has dst >= num_nodes \(3\)",
        ),
        (
            _kvs(**{"nas__cell__edge__2__op": _str("nas.cell.edge.2.op", "conv_7x7")}),
            "^loaded cell is not valid: .*unknown op 'conv_7x7'",
        ),
    ],
)
def test_metadata_errors(kvs, match):
    _expect(_gguf(kvs), match)


_VALUE_OF_TYPE = {  # a well-formed value of every GGUF type
    0: struct.pack("<B", 3), 1: struct.pack("<b", 3), 2: struct.pack("<H", 3),
    3: struct.pack("<h", 3), 4: struct.pack("<I", 3), 5: struct.pack("<i", 3),
    6: struct.pack("<f", 3), 7: struct.pack("<?", True), 8: _s("3"),
    9: struct.pack("<IQI", 4, 1, 3), 10: struct.pack("<Q", 3), 11: struct.pack("<q", 3),
    12: struct.pack("<d", 3),
}  # fmt: skip


def test_every_known_key_with_every_value_type():
    base = _seed_kvs(4, EDGES4, 100, "m", **SIGNAL)
    wanted = {"general.architecture": 8, "general.name": 8, "nas.total_params": 11}
    checked = 0
    for key in base:
        want = wanted.get(key, 8 if key.endswith(".op") else 4)
        for vtype, value in _VALUE_OF_TYPE.items():
            if vtype == want:
                continue
            kvs = {**base, key: _s(key) + struct.pack("<I", vtype) + value}
            with pytest.raises(GGUFFormatError, match=f"^{key} has type .*, expected"):
                load_nas_arch_from_gguf(_gguf(kvs))
            checked += 1
    assert checked == len(base) * 12


def test_wrong_file_level_problems():
    good = _gguf(_kvs())
    _expect(b"", "truncated file: magic")
    _expect(b"GGML" + good[4:], r"not a GGUF file: magic is b'GGML'")
    _expect(
        good[:4] + struct.pack("<I", 1) + good[8:], "unsupported GGUF version 1; expected 2 or 3"
    )
    _expect(good[:4] + struct.pack("<I", 4) + good[8:], "unsupported GGUF version 4")
    _expect(good[:4] + struct.pack(">I", 3) + good[8:], r"version 50331648 \(a big-endian file")
    v2 = good[:4] + struct.pack("<I", 2) + good[8:]
    assert load_nas_arch_from_gguf(v2)[0].total_params == 100  # v2 has the same layout
    kvs = list(_kvs().values())
    body = b"".join(kvs)
    _expect(
        b"GGUF" + struct.pack("<IQQ", 3, 0, 2**63) + body,
        "claims 0 tensors and 9223372036854775808",
    )
    _expect(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 17) + body, "claims 1099511627776 tensors")


def test_hostile_values():
    kvs = _kvs()
    # a key whose length claims far more bytes than the file has
    bad_len = struct.pack("<Q", 2**62) + b"nas.x"
    _expect(_gguf([*kvs.values(), bad_len]), "claims 4611686018427387904 bytes, only 5 remain")
    # duplicate key
    _expect(_gguf([*kvs.values(), kvs["nas.total_params"]]), "duplicate key 'nas.total_params'")
    # non-UTF-8 key, string value, tensor name
    _expect(_gguf([*kvs.values(), _u32("x", 1).replace(b"x", b"\xff")]), "is not valid UTF-8")
    _expect(
        _gguf(_kvs(general__name=_str("general.name", b"\xc3\x28"))),
        "string value of 'general.name' at offset \\d+ is not valid UTF-8",
    )
    _expect(
        _gguf(kvs, infos=[_tinfo(b"\xfe", [4])], data=bytes(16)),
        "name of tensor 0 at offset \\d+ is not valid UTF-8",
    )
    # unknown value type, empty key
    _expect(
        _gguf([*kvs.values(), _s("x") + struct.pack("<I", 13)]), "key 'x' has unknown value type 13"
    )
    _expect(_gguf([*kvs.values(), _u32("", 1)]), "has an empty key")


def _array(key: str, etype: int, n: int, payload: bytes = b"") -> bytes:
    return _s(key) + struct.pack("<IIQ", 9, etype, n) + payload


def test_hostile_arrays():
    kvs = list(_kvs().values())
    # gguf-py 0.19.0 alone loops 2**62 times here (each read past the end returns an
    # empty array and never advances): it must fail at once instead
    _expect(
        _gguf([*kvs, _array("x", 0, 2**62)]),
        "array 'x' at offset \\d+ claims 4611686018427387904 elements",
    )
    _expect(_gguf([*kvs, _array("x", 8, 2**61)]), "claims 2305843009213693952 elements of STRING")
    _expect(_gguf([*kvs, _array("x", 9, 1, struct.pack("<IQ", 0, 0))]), "array of arrays")
    _expect(_gguf([*kvs, _array("x", 42, 1, b"\0")]), "arrays of unknown value type 42")
    n = gguf_io.MAX_ARRAY_ELEMENTS + 1
    _expect(_gguf([*kvs, _array("x", 0, n, bytes(n))]), f"more than {n - 1} elements in total")
    # a sane array of strings is fine (and ignored)
    ok = _array("x", 8, 2, _s("a") + _s("bc"))
    assert load_nas_arch_from_gguf(_gguf([*kvs, ok]))[0].total_params == 100


def test_hostile_tensor_infos():
    kvs = _kvs()
    d16 = bytes(16)
    cases = [
        ([_tinfo("w", [0, 4])], d16, r"tensor 'w' has a zero dimension \(shape \[4, 0\]\)"),
        ([_tinfo("w", [1] * 9)], d16, "tensor 'w' has n_dims 9, expected 1..8"),
        ([_tinfo("w", [])], d16, "tensor 'w' has n_dims 0"),
        ([_tinfo("w", [4], ggml_type=1)], d16, r"GGML type 1; only F32 \(0\) is supported"),
        ([_tinfo("w", [4], ggml_type=99)], d16, "GGML type 99"),
        ([_tinfo("w", [4], offset=8)], d16 * 2, "data offset 8 is not a multiple of 32"),
        ([_tinfo("w", [4]), _tinfo("w", [4], offset=32)], d16 * 4, "duplicate tensor name 'w'"),
        ([_tinfo("w", [16]), _tinfo("v", [4], offset=32)], d16 * 6, "'v' data overlaps"),
        ([_tinfo("w", [5])], d16, "truncated file: tensor 'w' needs bytes up to"),
        (
            [_tinfo("w", [2**32, 2**32])],
            d16,
            "truncated file: tensor 'w'",
        ),  # uint64 wraps in gguf-py
        ([_tinfo("w", [4], offset=2**63)], d16, "truncated file: tensor 'w'"),
    ]
    for infos, data, match in cases:
        blob = _gguf(kvs, infos=infos, data=data)
        _expect(blob, match, load_tensors)
        _expect(blob, match, load_nas_arch_from_gguf)  # a wrong file is wrong for both
    # a tensor count the infos cannot satisfy
    body = b"".join(kvs.values()) + _tinfo("w", [4])
    blob = b"GGUF" + struct.pack("<IQQ", 3, 2, len(kvs)) + body
    _expect(blob, "truncated file: name of tensor 1 length", load_tensors)


def _with_tensor_count(data: bytes, n: int) -> bytes:
    return data[:8] + struct.pack("<Q", n) + data[16:]


def test_layout_must_add_up_exactly(example):
    # the header's tensor count disagrees with the layout: one changed byte used to
    # return tensor-info bytes as weights, and a count of 0 loaded with no tensors
    for n, match in [
        (1, r"\d+ unexpected bytes after the last tensor's padding"),
        (0, r"\d+ unexpected bytes after the tensor infos"),
        (3, "tensor '' has n_dims 0"),  # data read as a third tensor info
    ]:
        _expect(_with_tensor_count(example, n), match, load_tensors)
        _expect(_with_tensor_count(example, n), match, load_nas_arch_from_gguf)
    # bytes missing from the last padding, or extra bytes after it
    _expect(example[:-1], "the last tensor's padding ends at offset 928, the file has 927")
    for extra in (b"\0", bytes(32), b"junk"):
        _expect(example + extra, f"{len(extra)} unexpected bytes after the last tensor's padding")
    # tensors must tile the data section: no gap before or between them
    kvs = _kvs()
    gap = _gguf(kvs, infos=[_tinfo("w", [4], offset=32)], data=bytes(64))
    _expect(gap, "tensor 'w' data starts at offset 32, expected 0", load_tensors)
    two = [_tinfo("w", [4]), _tinfo("v", [4], offset=64)]
    _expect(_gguf(kvs, infos=two, data=bytes(96)), "'v' data starts at offset 64, expected 32")


def test_tensorless_files_end_after_the_infos_or_their_padding():
    seed = _export_bytes(_arch())  # the seed's layout: no padding at all
    assert load_nas_arch_from_gguf(seed)[0] == _arch()
    padded = seed + bytes(-len(seed) % 32)  # gguf-py's write_tensors_to_file pads
    assert len(padded) > len(seed) and load_tensors(padded) == {}
    _expect(seed + b"\0", "1 unexpected bytes after the tensor infos")
    _expect(padded + bytes(32), "57 unexpected bytes after the tensor infos at offset 519")


def test_load_alphas_rejects_duplicate_ops():
    kvs = list(_kvs().values())
    flat = _s("nas.alphas") + struct.pack("<IIQ", 9, 6, 8) + bytes(32)
    ops = _array("nas.alphas.ops", 8, 2, _s("zero") + _s("zero"))
    with pytest.raises(GGUFFormatError, match="nas.alphas.ops lists 'zero' more than once"):
        load_alphas(_gguf([*kvs, flat, ops]))


def test_general_alignment_is_honoured_and_checked():
    kvs = list(_kvs().values())
    al = _u32("general.alignment", 64)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kvs) + 1) + b"".join(kvs) + al
    head += _tinfo("w", [2])
    head += b"\0" * (-len(head) % 64)
    blob = head + struct.pack("<2f", 1.5, -2.0) + bytes(56)  # padded to 64, like the data
    np.testing.assert_array_equal(load_tensors(blob)["w"], [1.5, -2.0])
    _expect(blob[:-24], "the last tensor's padding ends at", load_tensors)  # padded to 32 only
    _expect(
        _gguf([*kvs, _u32("general.alignment", 48)]), "general.alignment is 48, not a power of two"
    )
    _expect(_gguf([*kvs, _i64("general.alignment", 32)]), "general.alignment has type INT64")


def test_gguf_py_errors_are_wrapped(monkeypatch):
    import gguf

    class Broken:
        def __init__(self, *_a, **_k):
            raise IndexError("index 0 is out of bounds")

    monkeypatch.setattr(gguf, "GGUFReader", Broken)
    _expect(_gguf(_kvs()), "gguf-py could not read the file: index 0 is out of bounds")


def test_bad_source_type():
    with pytest.raises(ValueError, match="src must be a path, bytes"):
        load_tensors(12)
    with pytest.raises(GGUFFormatError, match="is empty"):
        load_tensors(os.devnull)


# --------------------------------------------------------------------------------------
# Fuzz: truncation at every offset, random byte flips (fixed seeds)
# --------------------------------------------------------------------------------------


def _load_both(data: bytes) -> None:
    load_nas_arch_from_gguf(data)
    load_tensors(data)


def test_fuzz_truncated_at_every_offset(example):
    # "truncation at any byte" includes the last tensor's padding (0x360 + 32 + 24 on)
    for k in range(len(example)):
        cut = example[:k]
        with pytest.raises(GGUFFormatError):
            load_tensors(cut)
        with pytest.raises(GGUFFormatError):
            load_nas_arch_from_gguf(cut)


def test_fuzz_truncated_files_on_disk(example, tmp_path):
    path = tmp_path / "t.gguf"
    for k in range(0, 0x360 + 32 + 24, 7):  # the path route (np.memmap) too
        path.write_bytes(example[:k])
        with pytest.raises(GGUFFormatError):
            load_tensors(path)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fuzz_random_mutations(example, seed):
    rng = np.random.default_rng(seed)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(150):
        data = bytearray(example)
        kind = rng.integers(4)
        if kind == 0:  # flip one bit
            pos = int(rng.integers(len(data)))
            data[pos] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # a few random bytes
            for pos in rng.integers(len(data), size=int(rng.integers(1, 5))):
                data[int(pos)] = int(rng.integers(256))
        elif kind == 2:  # a huge or boundary 64-bit value somewhere in the header
            pos = int(rng.integers(0x360 - 8))
            vals = [2**64 - 1, 2**63, 2**32, 2**31 - 1, 0, 1, 0x360]
            val = vals[int(rng.integers(len(vals)))]
            data[pos : pos + 8] = val.to_bytes(8, "little")
        else:  # drop or duplicate a slice
            a = int(rng.integers(len(data)))
            b = min(len(data), a + int(rng.integers(1, 64)))
            data = data[:a] + data[b:] if rng.integers(2) else data[:b] + data[a:]
        try:
            _load_both(bytes(data))
            outcomes["ok"] += 1
        except GGUFFormatError:
            outcomes["error"] += 1
    # both paths were exercised: some mutations hit tensor data only
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


# --------------------------------------------------------------------------------------
# nas inspect, and the package exports
# --------------------------------------------------------------------------------------


def test_inspect_table_and_json(example, tmp_path, capsys):
    path = tmp_path / "m.gguf"
    path.write_bytes(example)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "architecture:  nas" in out and "nas-test-model" in out
    assert "edge 1: 0 -> 2  skip_connect" in out and "36,864" in out
    assert "hidden_dim=128 num_layers=4 input_features=16 patch_len=32 horizon_len=8" in out
    assert "blk.1.weight  2x3" in out and "data at byte 864" in out
    assert main(["inspect", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"file": str(path), **inspect_gguf(path)}
    assert doc["num_key_values"] == 19 and doc["size_bytes"] == 928 and doc["data_offset"] == 0x360
    assert [t["offset"] for t in doc["tensors"]] == [0, 32]
    assert doc["tensors"][1]["shape"] == [2, 3]
    assert doc["cell"]["edges"][2] == [1, 2, "zero"]
    assert doc["config"]["patch_len"] == 32


def test_inspect_errors_are_one_line(example, tmp_path, capsys):
    path = tmp_path / "bad.gguf"
    path.write_bytes(example[:300])
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas inspect: error: header claims 2 tensors and 19 key/values")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["inspect", str(tmp_path / "missing.gguf")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_public_exports():
    assert nas.GGUFFormatError is GGUFFormatError and issubclass(GGUFFormatError, ValueError)
    for name in (
        "ExportConfig",
        "export_gguf",
        "load_nas_arch_from_gguf",
        "load_tensors",
        "validate_export_round_trip",
        "inspect_gguf",
    ):
        assert getattr(nas, name) is getattr(gguf_io, name)
