"""GGUF export and load of a discovered architecture and its weights.

The file layout matches the seed's Go writer byte for byte (GGUF v3, little-endian):
metadata in this order: ``general.architecture`` = "nas", ``general.name`` (only when
non-empty), ``nas.cell.num_nodes`` u32, ``nas.cell.num_edges`` u32,
``nas.total_params`` i64, per edge i ``nas.cell.edge.{i}.from`` u32 / ``.to`` u32 /
``.op`` string, then the ``ts.signal.*`` u32 values that are > 0. Tensors are F32,
sorted by name (ascending bytes), dims in GGML order (reversed), alignment 32, every
tensor followed by zero padding; a file without tensors ends after its last key/value.
No ``general.alignment`` key. Extras (``ts.signal.num_heads``, ``ts.signal.stride``,
``ts.signal.lookback``, ``nas.schema_version``, ``nas.alphas``) appear only when the
caller asks for them.

Writing goes through gguf-py's ``GGUFWriter``; reading through ``GGUFReader``, after
:func:`_check_structure` has walked the file's header, key/values and tensor infos with
bounds checks, because gguf-py does not defend itself against hostile files (see there).
Every problem found while loading raises :class:`GGUFFormatError`.

``gguf`` is imported lazily, so ``import nas`` works where it is not installed.
"""

from __future__ import annotations

import io
import math
import operator
import os
import shutil
import struct
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, BinaryIO, Union

import numpy as np

from ._io import atomic_path
from .space import Cell, DiscretizedArch, Edge, OpType, as_op, parse_ops

if TYPE_CHECKING:
    import torch
    from gguf import GGUFReader

__all__ = [
    "ARCHITECTURE",
    "ExportConfig",
    "GGUFFormatError",
    "export_gguf",
    "inspect_gguf",
    "load_alphas",
    "load_nas_arch_from_gguf",
    "load_tensors",
    "validate_export_round_trip",
]

ARCHITECTURE = "nas"
ALIGNMENT = 32  # gguf's default; the seed never writes general.alignment
MAX_DIMS = 8  # more than GGML's 4, fewer than anything hostile
# gguf-py builds numpy objects per array element (~4 us and a few hundred bytes each,
# measured: 1M one-byte elements took 4.2 s): cap the total number of metadata array
# elements. A nas file holds num_edges * num_ops alphas at most (a few hundred).
MAX_ARRAY_ELEMENTS = 1 << 16

WeightLike = Union[np.ndarray, "torch.Tensor"]
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, "GGUFReader"]
Dest = Union[str, "os.PathLike[str]", BinaryIO]

# The ts.signal.* config fields, in the order the seed writes them.
_SIGNAL_FIELDS = ("hidden_dim", "num_layers", "input_features", "patch_len", "horizon_len")
# Extras, written only when > 0, after the seed's fields.
_EXTRA_SIGNAL_FIELDS = ("num_heads", "stride", "lookback")
_U32_MAX = (1 << 32) - 1
_I64_MAX = (1 << 63) - 1


class GGUFFormatError(ValueError):
    """A GGUF file that cannot be loaded: malformed, truncated, hostile, or not a
    ``nas`` export. The message names the problem (and the offset where it applies)."""


@dataclass(frozen=True)
class ExportConfig:
    """Hyperparameters stored beside the cell under ``ts.signal.*`` (each written only
    when > 0, so the default output matches the seed's). ``num_heads``, ``stride`` and
    ``lookback`` are extras the seed never wrote: they appear only when set."""

    model_name: str = ""
    hidden_dim: int = 0
    num_layers: int = 0
    input_features: int = 0
    patch_len: int = 0
    horizon_len: int = 0
    num_heads: int = 0
    stride: int = 0
    lookback: int = 0

    def validate(self) -> None:
        """ValueError naming the first field that cannot be written."""
        if not isinstance(self.model_name, str):
            raise ValueError(f"cfg.model_name must be a str, got {self.model_name!r}")
        try:
            self.model_name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"cfg.model_name {self.model_name!r} is not valid UTF-8") from None
        for name in _SIGNAL_FIELDS + _EXTRA_SIGNAL_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"cfg.{name} must be an integer, got {v!r}")
            if not 0 <= v <= _U32_MAX:
                raise ValueError(f"cfg.{name} is {v}, must be in [0, {_U32_MAX}] (a uint32)")


# --------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------


def _weight_array(name: object, w: object, shape: Sequence[int] | None) -> np.ndarray:
    if not isinstance(name, str) or not name:
        raise ValueError(f"weight names must be non-empty strings, got {name!r}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"weight name {name!r} cannot be encoded as UTF-8") from None
    if hasattr(w, "detach") and hasattr(w, "cpu"):  # a torch.Tensor, without importing torch
        t = w.detach().cpu()  # type: ignore[union-attr]
        w = (t.float() if t.is_floating_point() else t).numpy()  # bf16/f16 -> f32 exactly
    arr = np.asarray(w)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"weight {name!r} has dtype {arr.dtype}, expected a real number type")
    if shape is not None:
        # operator.index, not int(): a float dim (2.5) is an error, never truncated
        try:
            if isinstance(shape, (str, bytes)) or any(isinstance(d, bool) for d in shape):
                raise TypeError
            dims = [operator.index(d) for d in shape]
        except TypeError:
            raise ValueError(
                f"shapes[{name!r}] must be a sequence of ints, got {shape!r}"
            ) from None
        if any(d <= 0 for d in dims):
            raise ValueError(f"shapes[{name!r}] is {dims}: every dim must be > 0")
        if math.prod(dims) != arr.size:
            raise ValueError(
                f"shapes[{name!r}] is {dims} ({math.prod(dims)} values) but weight {name!r} "
                f"has {arr.size} values"
            )
        arr = arr.reshape(dims)
    if arr.ndim == 0:
        raise ValueError(f"weight {name!r} has no shape (a scalar); give it one in shapes")
    if any(d <= 0 for d in arr.shape):
        raise ValueError(f"weight {name!r} has shape {list(arr.shape)}: every dim must be > 0")
    if arr.ndim > MAX_DIMS:
        raise ValueError(f"weight {name!r} has {arr.ndim} dims, at most {MAX_DIMS} are supported")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _prepare_weights(
    weights: Mapping[str, WeightLike] | None,
    shapes: Mapping[str, Sequence[int]] | None,
    refuse_non_finite: bool,
) -> list[tuple[str, np.ndarray]]:
    weights = {} if weights is None else weights
    shapes = {} if shapes is None else shapes
    for name in shapes:
        if name not in weights:
            raise ValueError(f"shapes has an entry for {name!r}, which is not in weights")
    out = []
    for name, w in weights.items():
        arr = _weight_array(name, w, shapes.get(name))
        if refuse_non_finite and not np.isfinite(arr).all():
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ValueError(f"weight {name!r} has a non-finite value at flat index {bad}")
        out.append((name, arr))
    # Ascending byte order of the UTF-8 names, like the seed (Go's sort.Strings).
    out.sort(key=lambda item: item[0].encode("utf-8"))
    return out


def _is_int(v: object) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


def _check_arch(arch: DiscretizedArch) -> None:
    if not isinstance(arch, DiscretizedArch):
        raise ValueError(f"arch must be a DiscretizedArch, got {type(arch).__name__}")
    arch.cell.validate()  # integer num_nodes, src and dst included
    if arch.cell.num_nodes > _U32_MAX:
        raise ValueError(f"cell num_nodes {arch.cell.num_nodes} does not fit in a uint32")
    tp = arch.total_params
    if not _is_int(tp) or not 0 <= tp <= _I64_MAX:
        raise ValueError(f"arch.total_params is {tp!r}, must be an int in [0, 2**63)")


def _prepare_alphas(
    alphas: np.ndarray | torch.Tensor | None,
    ops: Sequence[OpType | str] | None,
    num_edges: int,
    refuse_non_finite: bool,
) -> tuple[np.ndarray, list[OpType]] | None:
    if alphas is None:
        if ops is not None:
            raise ValueError("alpha_ops given without alphas")
        return None
    if hasattr(alphas, "detach"):
        alphas = alphas.detach().cpu().numpy()  # type: ignore[union-attr]
    a = np.asarray(alphas, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] != num_edges or a.shape[1] == 0:
        raise ValueError(
            f"alphas must be [num_edges({num_edges}), num_ops], got shape {list(a.shape)}"
        )
    if ops is None:
        raise ValueError("alphas need alpha_ops: the op of each alphas column")
    op_list = parse_ops(ops)  # a str is a comma-separated spec, never split into letters
    if len(op_list) != a.shape[1]:
        raise ValueError(f"alpha_ops has {len(op_list)} ops, alphas has {a.shape[1]} columns")
    if len(set(op_list)) != len(op_list):
        dup = next(op for op in op_list if op_list.count(op) > 1)
        raise ValueError(f"alpha_ops lists {dup.value!r} more than once")
    if refuse_non_finite and not np.isfinite(a).all():
        e, k = (int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"alphas has a non-finite value {a[e, k]} at [{e}, {k}]")
    return a, op_list


def _write_with_gguf(
    path: str,
    arch: DiscretizedArch,
    cfg: ExportConfig,
    tensors: list[tuple[str, np.ndarray]],
    schema_version: int | None,
    alphas: tuple[np.ndarray, list[OpType]] | None,
) -> None:
    from gguf import GGUFValueType, GGUFWriter

    # GGUFWriter adds general.architecture itself, first; no add_custom_alignment, so
    # no general.alignment key (the seed has none) and the default alignment of 32.
    writer = GGUFWriter(path, ARCHITECTURE)
    try:
        if cfg.model_name:  # add_string drops empty strings anyway; be explicit
            writer.add_string("general.name", cfg.model_name)
        cell = arch.cell
        writer.add_uint32("nas.cell.num_nodes", cell.num_nodes)
        writer.add_uint32("nas.cell.num_edges", len(cell.edges))
        writer.add_int64("nas.total_params", int(arch.total_params))
        for i, e in enumerate(cell.edges):
            writer.add_uint32(f"nas.cell.edge.{i}.from", e.src)
            writer.add_uint32(f"nas.cell.edge.{i}.to", e.dst)
            writer.add_string(f"nas.cell.edge.{i}.op", str(e.op))
        for name in _SIGNAL_FIELDS + _EXTRA_SIGNAL_FIELDS:
            value = int(getattr(cfg, name))
            if value > 0:
                writer.add_uint32(f"ts.signal.{name}", value)
        if schema_version is not None:
            writer.add_uint32("nas.schema_version", int(schema_version))
        if alphas is not None:
            a, ops = alphas
            writer.add_key_value(
                "nas.alphas",
                [float(x) for x in a.ravel()],
                GGUFValueType.ARRAY,
                sub_type=GGUFValueType.FLOAT32,
            )
            writer.add_key_value(
                "nas.alphas.ops",
                [op.value for op in ops],
                GGUFValueType.ARRAY,
                sub_type=GGUFValueType.STRING,
            )
        for name, arr in tensors:
            writer.add_tensor(name, arr)  # reverses the shape to GGML order itself
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        if tensors:
            writer.write_tensors_to_file()  # tensor infos, padding, data + padding each
        else:
            # write_tensors_to_file() pads to 32 even with no tensors; the seed's files
            # end right after the last key/value, so write only the (empty) infos.
            writer.write_ti_data_to_file()
    finally:
        writer.close()


def export_gguf(
    dest: Dest,
    arch: DiscretizedArch,
    cfg: ExportConfig | None = None,
    weights: Mapping[str, WeightLike] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    refuse_non_finite: bool = False,
    schema_version: int | None = None,
    alphas: np.ndarray | torch.Tensor | None = None,
    alpha_ops: Sequence[OpType | str] | None = None,
) -> None:
    """Write ``arch``, ``cfg`` and ``weights`` as a GGUF v3 file, byte-compatible with
    the seed's ``ExportGGUF``.

    dest: a path (written to a temporary file in the same folder, then renamed) or a
        writable binary file object.
    weights: name -> array or tensor, any real dtype, stored as F32 in row-major shape
        ``w.shape``; ``shapes[name]``, when given, reshapes a weight (its product must
        equal the weight's length, e.g. a flat ``Tensor[6]`` with shape ``[2, 3]``).
    refuse_non_finite: raise on NaN/inf weights or alphas (off by default, like the
        seed).
    schema_version, alphas (``Tensor[num_edges, num_ops]``, with ``alpha_ops`` naming
        its columns): extras the seed never wrote (``nas.schema_version`` u32,
        ``nas.alphas`` f32 array, ``nas.alphas.ops`` string array); only written
        when given.

    Raises ValueError (before anything is written) for an invalid cell, a weight
    without a shape, a zero or negative dim, a shape that disagrees with its weight,
    or a config value that is not a uint32.
    """
    cfg = ExportConfig() if cfg is None else cfg
    if not isinstance(cfg, ExportConfig):
        raise ValueError(f"cfg must be an ExportConfig, got {type(cfg).__name__}")
    _check_arch(arch)
    cfg.validate()
    if schema_version is not None and not (
        _is_int(schema_version) and 0 <= schema_version <= _U32_MAX
    ):
        raise ValueError(f"schema_version is {schema_version!r}, must be an int in [0, 2**32)")
    extra_alphas = _prepare_alphas(alphas, alpha_ops, len(arch.cell.edges), refuse_non_finite)
    tensors = _prepare_weights(weights, shapes, refuse_non_finite)

    if hasattr(dest, "write"):
        # GGUFWriter writes to paths only (numpy's tofile needs a real file): write a
        # private temporary file, then copy it into the caller's file object.
        fd, tmp = tempfile.mkstemp(prefix="nas-export-", suffix=".gguf")
        os.close(fd)
        try:
            _write_with_gguf(tmp, arch, cfg, tensors, schema_version, extra_alphas)
            with open(tmp, "rb") as f:
                shutil.copyfileobj(f, dest)  # type: ignore[arg-type]
        finally:
            os.unlink(tmp)
        return

    with atomic_path(os.fspath(dest)) as tmp:  # type: ignore[arg-type]
        _write_with_gguf(tmp, arch, cfg, tensors, schema_version, extra_alphas)


# --------------------------------------------------------------------------------------
# Structural validation (before gguf-py sees the bytes)
# --------------------------------------------------------------------------------------

_GGUF_MAGIC = b"GGUF"
_T_STRING, _T_ARRAY = 8, 9
# value type -> size in bytes of the fixed-size scalar types
_SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_TYPE_NAMES = {
    0: "UINT8",
    1: "INT8",
    2: "UINT16",
    3: "INT16",
    4: "UINT32",
    5: "INT32",
    6: "FLOAT32",
    7: "BOOL",
    8: "STRING",
    9: "ARRAY",
    10: "UINT64",
    11: "INT64",
    12: "FLOAT64",
}
_GGML_F32 = 0
_MIN_KV_BYTES = 8 + 4 + 1  # empty key is rejected, but count it as the lower bound
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8  # name len, n_dims, one dim, type, offset


@dataclass(frozen=True)
class _TensorInfo:
    name: str
    dims: tuple[int, ...]  # GGML order (fastest first)
    ggml_type: int
    offset: int  # relative to the data section
    nbytes: int


@dataclass(frozen=True)
class _Structure:
    version: int
    kv_count: int
    value_types: dict[str, int]  # key -> GGUF value type
    tensors: list[_TensorInfo]  # in file order
    data_offset: int
    size: int


class _Cursor:
    """Bounds-checked little-endian reads from a buffer."""

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise GGUFFormatError(
                f"truncated file: {what} at offset {self.pos} needs {n} bytes, "
                f"only {self.size - self.pos} remain (file is {self.size} bytes)"
            )

    def u32(self, what: str) -> int:
        self.need(4, what)
        (v,) = struct.unpack_from("<I", self.buf, self.pos)
        self.pos += 4
        return int(v)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (v,) = struct.unpack_from("<Q", self.buf, self.pos)
        self.pos += 8
        return int(v)

    def string(self, what: str) -> str:
        start = self.pos
        n = self.u64(f"{what} length")
        if n > self.size - self.pos:
            raise GGUFFormatError(
                f"truncated or corrupt file: {what} at offset {start} claims {n} bytes, "
                f"only {self.size - self.pos} remain"
            )
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFFormatError(f"{what} at offset {start} is not valid UTF-8") from None

    def skip(self, n: int, what: str) -> None:
        self.need(n, what)
        self.pos += n


def _type_name(t: int) -> str:
    return _TYPE_NAMES.get(t, f"type {t}")


def _skip_value(cur: _Cursor, vtype: int, key: str, budget: list[int]) -> None:
    if vtype in _SCALAR_SIZE:
        cur.skip(_SCALAR_SIZE[vtype], f"value of {key!r}")
    elif vtype == _T_STRING:
        cur.string(f"string value of {key!r}")
    elif vtype == _T_ARRAY:
        at = cur.pos
        etype = cur.u32(f"array element type of {key!r}")
        n = cur.u64(f"array length of {key!r}")
        if etype == _T_ARRAY:
            raise GGUFFormatError(f"key {key!r} at offset {at} is an array of arrays (unsupported)")
        if etype not in _SCALAR_SIZE and etype != _T_STRING:
            raise GGUFFormatError(f"key {key!r} has arrays of unknown value type {etype}")
        min_size = _SCALAR_SIZE.get(etype, 8)
        if n * min_size > cur.size - cur.pos:
            raise GGUFFormatError(
                f"array {key!r} at offset {at} claims {n} elements of {_type_name(etype)}, "
                f"more than the {cur.size - cur.pos} remaining bytes can hold"
            )
        budget[0] -= n
        if budget[0] < 0:
            raise GGUFFormatError(
                f"metadata arrays hold more than {MAX_ARRAY_ELEMENTS} elements in total "
                f"(array {key!r} has {n}); this loader refuses such files"
            )
        if etype == _T_STRING:
            for i in range(n):  # n <= remaining / 8, so bounded by the file size
                cur.string(f"element {i} of array {key!r}")
        else:
            cur.skip(n * min_size, f"array {key!r}")
    else:
        raise GGUFFormatError(f"key {key!r} has unknown value type {vtype}")


def _check_structure(buf: memoryview) -> _Structure:
    """Walk the header, key/values and tensor infos with every count, length and offset
    checked against the bytes actually present, and the tensors checked against what
    ``nas`` accepts (F32, 1..8 dims, no zero dim, aligned, in bounds, no overlap).

    Why not leave this to gguf-py's GGUFReader (0.19.0)? On hostile input it
    misbehaves: its reads past the end return *empty* arrays instead of failing, so
    an array whose claimed length exceeds the file loops that many times (2**64 in the
    worst case) appending empty parts, never advancing; truncated strings are accepted
    short; a dims product that overflows uint64 wraps; n_dims is unbounded; big-endian
    files are guessed from the version's low half; and duplicate keys raise KeyError,
    bad UTF-8 UnicodeDecodeError, unknown types plain ValueError. Everything after this
    walk is bounded by the file size, and whatever the reader still raises is wrapped.
    """
    cur = _Cursor(buf)
    cur.need(4, "magic")
    magic = bytes(buf[0:4])
    if magic != _GGUF_MAGIC:
        raise GGUFFormatError(f"not a GGUF file: magic is {magic!r}, expected b'GGUF'")
    cur.pos = 4
    version = cur.u32("version")
    if version not in (2, 3):
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        hint = " (a big-endian file: unsupported)" if swapped in (2, 3) else ""
        raise GGUFFormatError(f"unsupported GGUF version {version}{hint}; expected 2 or 3")
    n_tensors = cur.u64("tensor count")
    n_kv = cur.u64("key/value count")
    room = cur.size - cur.pos
    if n_kv * _MIN_KV_BYTES + n_tensors * _MIN_TENSOR_INFO_BYTES > room:
        raise GGUFFormatError(
            f"header claims {n_tensors} tensors and {n_kv} key/values, more than the "
            f"{room} bytes after the header can hold"
        )

    value_types: dict[str, int] = {}
    budget = [MAX_ARRAY_ELEMENTS]
    alignment = ALIGNMENT
    for i in range(n_kv):
        at = cur.pos
        key = cur.string(f"key of key/value {i}")
        if not key:
            raise GGUFFormatError(f"key/value {i} at offset {at} has an empty key")
        if key in value_types:
            raise GGUFFormatError(f"duplicate key {key!r} at offset {at}")
        vtype = cur.u32(f"value type of {key!r}")
        value_at = cur.pos
        _skip_value(cur, vtype, key, budget)
        value_types[key] = vtype
        if key == "general.alignment":
            if vtype != 4:
                raise GGUFFormatError(
                    f"general.alignment has type {_type_name(vtype)}, expected UINT32"
                )
            (alignment,) = struct.unpack_from("<I", buf, value_at)
            if alignment == 0 or alignment & (alignment - 1):
                raise GGUFFormatError(f"general.alignment is {alignment}, not a power of two")

    tensors: list[_TensorInfo] = []
    names: set[str] = set()
    for i in range(n_tensors):
        at = cur.pos
        name = cur.string(f"name of tensor {i}")
        if name in names:
            raise GGUFFormatError(f"duplicate tensor name {name!r} at offset {at}")
        names.add(name)
        n_dims = cur.u32(f"n_dims of tensor {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise GGUFFormatError(f"tensor {name!r} has n_dims {n_dims}, expected 1..{MAX_DIMS}")
        dims = tuple(cur.u64(f"dim {d} of tensor {name!r}") for d in range(n_dims))
        ggml_type = cur.u32(f"type of tensor {name!r}")
        offset = cur.u64(f"data offset of tensor {name!r}")
        if 0 in dims:
            shape = list(reversed(dims))
            raise GGUFFormatError(f"tensor {name!r} has a zero dimension (shape {shape})")
        if ggml_type != _GGML_F32:
            raise GGUFFormatError(
                f"tensor {name!r} has GGML type {ggml_type}; only F32 (0) is supported"
            )
        if offset % alignment:
            raise GGUFFormatError(
                f"tensor {name!r} data offset {offset} is not a multiple of {alignment}"
            )
        tensors.append(_TensorInfo(name, dims, ggml_type, offset, math.prod(dims) * 4))

    data_offset = cur.pos + (-cur.pos) % alignment
    end = 0
    for t in sorted(tensors, key=lambda t: t.offset):
        if t.offset < end:
            raise GGUFFormatError(f"tensor {t.name!r} data overlaps the previous tensor's")
        if data_offset + t.offset + t.nbytes > cur.size:
            raise GGUFFormatError(
                f"truncated file: tensor {t.name!r} needs bytes up to "
                f"{data_offset + t.offset + t.nbytes}, the file has {cur.size}"
            )
        if t.offset != end + (-end) % alignment:
            raise GGUFFormatError(
                f"tensor {t.name!r} data starts at offset {t.offset}, expected "
                f"{end + (-end) % alignment}: tensor data must follow without gaps"
            )
        end = t.offset + t.nbytes
    # The layout must add up exactly: with tensors, the file ends with the last one's
    # padding; without, right after the tensor infos (the seed's files) or after the
    # padding to the (empty) data section (gguf-py's write_tensors_to_file). A tensor
    # count that disagrees with the infos shows up here as bytes missing or left over
    # (infos read as data, or data that no tensor claims).
    expected = data_offset + end + (-end) % alignment if tensors else cur.pos
    what = "the last tensor's padding" if tensors else "the tensor infos"
    if not tensors and cur.size == data_offset:
        expected, what = data_offset, "the padding after the tensor infos"
    if cur.size < expected:
        raise GGUFFormatError(
            f"truncated file: {what} ends at offset {expected}, the file has {cur.size} bytes"
        )
    if cur.size > expected:
        raise GGUFFormatError(
            f"{cur.size - expected} unexpected bytes after {what} at offset {expected} "
            f"(the header claims {n_tensors} tensors and {n_kv} key/values)"
        )
    return _Structure(version, n_kv, value_types, tensors, data_offset, cur.size)


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


@dataclass
class _Opened:
    reader: GGUFReader
    structure: _Structure


def _reader_from(obj: Any) -> GGUFReader:
    from gguf import GGUFReader

    try:
        return GGUFReader(obj)  # obj: a path or a real file object (np.memmap maps it)
    except Exception as exc:  # gguf-py raises ValueError/KeyError/IndexError/...: wrap
        raise GGUFFormatError(f"gguf-py could not read the file: {exc}") from exc


def _open(src: Source) -> _Opened:
    """Validate ``src`` structurally, then hand it to GGUFReader."""
    from gguf import GGUFReader

    if isinstance(src, GGUFReader):
        return _Opened(src, _check_structure(memoryview(np.asarray(src.data, dtype=np.uint8))))
    if hasattr(src, "read"):
        src = src.read()  # type: ignore[union-attr]
        if not isinstance(src, (bytes, bytearray)):
            raise ValueError(f"src.read() returned {type(src).__name__}, expected bytes")
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = memoryview(src).cast("B")
        structure = _check_structure(data)
        # GGUFReader memory-maps a file, so give it one (unlinked at close).
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.flush()
            return _Opened(_reader_from(f), structure)
    if not isinstance(src, (str, os.PathLike)):
        raise ValueError(
            f"src must be a path, bytes, a binary file object or a gguf.GGUFReader, "
            f"got {type(src).__name__}"
        )
    with open(src, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise GGUFFormatError(f"{os.fspath(src)!r} is empty (0 bytes), not a GGUF file")
        mm = np.memmap(f, dtype=np.uint8, mode="r")
        structure = _check_structure(memoryview(mm))
        del mm
        return _Opened(_reader_from(f), structure)


def _field(opened: _Opened, key: str, vtype: int, required: bool = True) -> Any:
    field = opened.reader.fields.get(key)
    if field is None:
        if required:
            raise GGUFFormatError(f"missing {key} metadata")
        return None
    actual = opened.structure.value_types[key]
    if actual != vtype:
        raise GGUFFormatError(f"{key} has type {_type_name(actual)}, expected {_type_name(vtype)}")
    try:
        return field.contents()
    except Exception as exc:
        raise GGUFFormatError(f"cannot read {key}: {exc}") from exc


_U32, _I64 = 4, 11


def _read_arch_and_config(opened: _Opened) -> tuple[DiscretizedArch, ExportConfig]:
    arch_name = _field(opened, "general.architecture", _T_STRING)
    if arch_name != ARCHITECTURE:
        raise GGUFFormatError(f"general.architecture is {arch_name!r}, expected {ARCHITECTURE!r}")
    num_nodes = _field(opened, "nas.cell.num_nodes", _U32)
    num_edges = _field(opened, "nas.cell.num_edges", _U32)
    if 3 * num_edges > opened.structure.kv_count:  # 3 keys per edge: don't loop 2**32 times
        raise GGUFFormatError(
            f"nas.cell.num_edges is {num_edges}, more edges than the file's "
            f"{opened.structure.kv_count} key/values can describe"
        )
    total_params = _field(opened, "nas.total_params", _I64)
    if total_params < 0:
        raise GGUFFormatError(f"nas.total_params is {total_params}, must be >= 0")
    edges = []
    for i in range(num_edges):
        src = _field(opened, f"nas.cell.edge.{i}.from", _U32)
        dst = _field(opened, f"nas.cell.edge.{i}.to", _U32)
        op = _field(opened, f"nas.cell.edge.{i}.op", _T_STRING)
        edges.append(Edge(src, dst, op))
    cell = Cell(num_nodes, tuple(edges))
    try:
        cell.validate()
    except ValueError as exc:
        reason = str(exc).removeprefix("invalid cell: ")
        raise GGUFFormatError(f"loaded cell is not valid: {reason}") from None
    name = _field(opened, "general.name", _T_STRING, required=False)
    values = {}
    for key in _SIGNAL_FIELDS + _EXTRA_SIGNAL_FIELDS:
        v = _field(opened, f"ts.signal.{key}", _U32, required=False)
        values[key] = 0 if v is None else int(v)
    cfg = ExportConfig(model_name=name or "", **values)
    return DiscretizedArch(cell, int(total_params)), cfg


def _read_tensors(opened: _Opened) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    try:
        by_name = {t.name: t for t in opened.reader.tensors}
        for info in opened.structure.tensors:
            t = by_name[info.name]
            # t.data is a read-only memmap already in row-major (numpy) order.
            arr = np.array(t.data, dtype=np.float32, copy=True)
            out[info.name] = arr.reshape(tuple(reversed(info.dims)))
    except GGUFFormatError:
        raise
    except Exception as exc:
        raise GGUFFormatError(f"cannot read tensor data: {exc}") from exc
    return out


def load_nas_arch_from_gguf(src: Source) -> tuple[DiscretizedArch, ExportConfig]:
    """(arch, cfg) from a ``nas`` GGUF file: a path, bytes, a binary file object or an
    open ``gguf.GGUFReader``. Raises GGUFFormatError naming the problem, e.g.
    "missing nas.cell.edge.3.op metadata" or "loaded cell is not valid: ..."."""
    return _read_arch_and_config(_open(src))


def load_tensors(src: Source) -> dict[str, np.ndarray]:
    """Every tensor of a GGUF file: name -> float32 array in row-major shape (GGML dims
    reversed), copied out of the file, in file order. Raises GGUFFormatError."""
    return _read_tensors(_open(src))


def load_alphas(src: Source) -> tuple[np.ndarray, list[OpType]] | None:
    """The extra ``nas.alphas`` (``Tensor[num_edges, num_ops]`` float32) and the op of
    each column, or None when the file has none. Raises GGUFFormatError."""
    opened = _open(src)
    arch, _ = _read_arch_and_config(opened)
    flat = _field(opened, "nas.alphas", _T_ARRAY, required=False)
    if flat is None:
        return None
    ops = _field(opened, "nas.alphas.ops", _T_ARRAY)
    field_types = opened.reader.fields["nas.alphas"].types
    if field_types[-1] != 6 or not all(isinstance(op, str) for op in ops):
        raise GGUFFormatError("nas.alphas must be a FLOAT32 array, nas.alphas.ops a STRING array")
    num_edges = len(arch.cell.edges)
    if not ops or len(flat) != num_edges * len(ops):
        raise GGUFFormatError(
            f"nas.alphas has {len(flat)} values, expected num_edges({num_edges}) * "
            f"len(nas.alphas.ops)({len(ops)})"
        )
    try:
        op_list = [as_op(op) for op in ops]
    except ValueError as exc:
        raise GGUFFormatError(f"nas.alphas.ops: {exc}") from None
    if len(set(op_list)) != len(op_list):
        dup = next(op for op in op_list if op_list.count(op) > 1)
        raise GGUFFormatError(f"nas.alphas.ops lists {dup.value!r} more than once")
    return np.asarray(flat, dtype=np.float32).reshape(num_edges, len(ops)), op_list


def inspect_gguf(src: Source) -> dict[str, Any]:
    """A JSON-able summary of a ``nas`` GGUF file: version, architecture, config and
    the tensor table (row-major shapes, offsets relative to the data section)."""
    opened = _open(src)
    arch, cfg = _read_arch_and_config(opened)
    s = opened.structure
    return {
        "version": s.version,
        "size_bytes": s.size,
        "num_key_values": s.kv_count,
        "architecture": ARCHITECTURE,
        "model_name": cfg.model_name,
        "cell": {
            "num_nodes": arch.cell.num_nodes,
            "edges": [[e.src, e.dst, str(e.op)] for e in arch.cell.edges],
        },
        "total_params": arch.total_params,
        "config": {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "model_name"},
        "schema_version": _field(opened, "nas.schema_version", _U32, required=False),
        "data_offset": s.data_offset,
        "tensors": [
            {
                "name": t.name,
                "shape": list(reversed(t.dims)),
                "type": "F32",
                "offset": t.offset,
                "nbytes": t.nbytes,
            }
            for t in s.tensors
        ],
    }


# --------------------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------------------


def validate_export_round_trip(
    arch: DiscretizedArch,
    cfg: ExportConfig | None = None,
    weights: Mapping[str, WeightLike] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> None:
    """Export to memory, load back, and compare every field of ``arch`` and ``cfg``
    and every tensor's name, shape and bits. Raises ValueError naming the first
    difference (the seed compared neither input_features, patch_len, horizon_len
    nor shapes, nor the tensors)."""
    cfg = ExportConfig() if cfg is None else cfg
    buf = io.BytesIO()
    export_gguf(buf, arch, cfg, weights, shapes)
    data = buf.getvalue()
    got_arch, got_cfg = load_nas_arch_from_gguf(data)
    got_tensors = load_tensors(data)

    def differ(what: str, wrote: object, read: object) -> ValueError:
        return ValueError(f"round trip differs: {what} wrote {wrote!r}, read {read!r}")

    if got_arch.cell.num_nodes != arch.cell.num_nodes:
        raise differ("cell.num_nodes", arch.cell.num_nodes, got_arch.cell.num_nodes)
    if len(got_arch.cell.edges) != len(arch.cell.edges):
        raise differ("cell num_edges", len(arch.cell.edges), len(got_arch.cell.edges))
    for i, (a, b) in enumerate(zip(arch.cell.edges, got_arch.cell.edges, strict=True)):
        if (a.src, a.dst, str(a.op)) != (b.src, b.dst, str(b.op)):
            raise differ(f"edge {i}", (a.src, a.dst, str(a.op)), (b.src, b.dst, str(b.op)))
    if got_arch.total_params != arch.total_params:
        raise differ("total_params", arch.total_params, got_arch.total_params)
    for f in fields(ExportConfig):
        if getattr(cfg, f.name) != getattr(got_cfg, f.name):
            raise differ(f"cfg.{f.name}", getattr(cfg, f.name), getattr(got_cfg, f.name))
    expected = dict(_prepare_weights(weights, shapes, refuse_non_finite=False))
    if list(got_tensors) != list(expected):
        raise differ("tensor names", list(expected), list(got_tensors))
    for name, want in expected.items():
        got = got_tensors[name]
        if got.shape != want.shape:
            raise differ(f"shape of {name!r}", list(want.shape), list(got.shape))
        if got.tobytes() != want.tobytes():
            k = int(np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))[0])
            raise differ(f"tensor {name!r} at flat index {k}", want.ravel()[k], got.ravel()[k])
