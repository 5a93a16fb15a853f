"""A small GGUF header reader: enough to reject bad files clearly and to estimate a model's RAM.

llama.cpp's own loader reports a broken file as a bare "failed to load model". Reading the header first
lets Tessera say *what* is wrong (not GGUF at all, truncated) and size the KV cache before loading.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tessera.errors import ModelLoadError

_MAGIC = b"GGUF"
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}  # fmt: skip
_STRING, _ARRAY = 8, 9
# ggml tensor types: (elements per block, bytes per block). Unknown types skip the size check.
_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8),
    28: (1, 8), 29: (256, 56), 30: (1, 2),
}  # fmt: skip
_MAX_STRING = 1 << 24  # a longer "string" means the file is not what it claims to be


@dataclass
class GGUFInfo:
    """What the header of a GGUF file says."""

    path: Path
    version: int
    metadata: dict[str, Any]
    file_size: int
    data_end: int | None = None  # where the last tensor ends, when every tensor type is known
    tensor_count: int = 0
    skipped_arrays: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_value(self, key: str, default: int = 0) -> int:
        value = self.metadata.get(f"{self.architecture}.{key}", default)
        if isinstance(value, list):  # per-layer values (some architectures)
            return int(max(value)) if value else default
        return int(value)

    @property
    def context_length(self) -> int:
        return self.arch_value("context_length", 0)

    def kv_cache_bytes(self, n_ctx: int, bytes_per_element: int = 2) -> int:
        """Size of an f16 KV cache for ``n_ctx`` tokens."""
        n_layer = self.arch_value("block_count", 0)
        n_embd = self.arch_value("embedding_length", 0)
        n_head = max(self.arch_value("attention.head_count", 1), 1)
        n_head_kv = self.arch_value("attention.head_count_kv", n_head) or n_head
        k_len = self.arch_value("attention.key_length", n_embd // n_head)
        v_len = self.arch_value("attention.value_length", n_embd // n_head)
        return n_layer * n_ctx * n_head_kv * (k_len + v_len) * bytes_per_element

    def estimate_ram_bytes(self, n_ctx: int, extra: int = 0) -> int:
        """Weights + KV cache + ~10% compute buffers + ``extra`` (e.g. a prefix cache)."""
        weights = self.file_size
        return int((weights + self.kv_cache_bytes(n_ctx)) * 1.1) + extra


def read_gguf(path: str | Path) -> GGUFInfo:
    """Read a GGUF header; raise :class:`ModelLoadError` naming the file if it is missing or broken."""
    file = Path(path)
    if not file.exists():
        raise ModelLoadError(f"{file}: no such file")
    if not file.is_file():
        raise ModelLoadError(f"{file}: not a file")
    size = file.stat().st_size
    try:
        with file.open("rb") as fh:
            return _parse(file, fh, size)
    except (struct.error, EOFError):
        raise ModelLoadError(f"{file}: truncated GGUF file (header ends early, {size} bytes)") from None
    except UnicodeDecodeError:
        raise ModelLoadError(f"{file}: corrupt GGUF header (invalid text in metadata)") from None
    except OSError as exc:
        raise ModelLoadError(f"{file}: cannot read: {exc.strerror or exc}") from None


def _parse(file: Path, fh: BinaryIO, size: int) -> GGUFInfo:
    magic = fh.read(4)
    if magic != _MAGIC:
        raise ModelLoadError(f"{file}: not a GGUF file (starts with {magic!r}, expected b'GGUF')")
    (version,) = _unpack(fh, "<I", 4)
    if version not in (2, 3):
        raise ModelLoadError(f"{file}: unsupported GGUF version {version} (expected 2 or 3)")
    n_tensors, n_kv = _unpack(fh, "<QQ", 16)
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ModelLoadError(f"{file}: corrupt GGUF header ({n_tensors} tensors, {n_kv} keys)")
    info = GGUFInfo(path=file, version=version, metadata={}, file_size=size, tensor_count=n_tensors)
    for _ in range(n_kv):
        key = _string(fh)
        (vtype,) = _unpack(fh, "<I", 4)
        info.metadata[key] = _value(fh, vtype, key, info)
    alignment = int(info.metadata.get("general.alignment", 32))
    end = 0
    known = True
    for _ in range(n_tensors):
        _string(fh)
        (n_dims,) = _unpack(fh, "<I", 4)
        if n_dims > 8:
            raise ModelLoadError(f"{file}: corrupt GGUF tensor table ({n_dims} dimensions)")
        dims = _unpack(fh, f"<{n_dims}Q", 8 * n_dims)
        ttype, offset = _unpack(fh, "<IQ", 12)
        elements = 1
        for d in dims:
            elements *= d
        block = _TYPE_SIZES.get(ttype)
        if block is None:
            known = False
            continue
        end = max(end, offset + elements // block[0] * block[1])
    data_start = -(-fh.tell() // alignment) * alignment
    if known:
        info.data_end = data_start + end
        if info.data_end > size:
            raise ModelLoadError(
                f"{file}: truncated GGUF file ({size} bytes, its tensors need {info.data_end})"
            )
    return info


def _unpack(fh: BinaryIO, fmt: str, n: int) -> tuple[Any, ...]:
    data = fh.read(n)
    if len(data) != n:
        raise EOFError
    return struct.unpack(fmt, data)


def _string(fh: BinaryIO) -> str:
    (n,) = _unpack(fh, "<Q", 8)
    if n > _MAX_STRING:
        raise EOFError
    data = fh.read(n)
    if len(data) != n:
        raise EOFError
    return data.decode("utf-8")


def _value(fh: BinaryIO, vtype: int, key: str, info: GGUFInfo) -> Any:
    if vtype in _SCALARS:
        fmt, n = _SCALARS[vtype]
        return _unpack(fh, fmt, n)[0]
    if vtype == _STRING:
        return _string(fh)
    if vtype == _ARRAY:
        itype, count = _unpack(fh, "<IQ", 12)
        if count > 50_000_000:
            raise EOFError
        if itype in _SCALARS:
            fmt, n = _SCALARS[itype]
            if count > 64:  # large arrays (token scores, types) are skipped, not decoded
                fh.seek(n * count, 1)
                info.skipped_arrays[key] = count
                return []
            return list(_unpack(fh, f"<{count}{fmt[1]}", n * count))
        if itype == _STRING:
            if count > 64:
                for _ in range(count):
                    (n,) = _unpack(fh, "<Q", 8)
                    fh.seek(n, 1)
                info.skipped_arrays[key] = count
                return []
            return [_string(fh) for _ in range(count)]
        raise ModelLoadError(f"{info.path}: corrupt GGUF metadata (array of type {itype} in {key!r})")
    raise ModelLoadError(f"{info.path}: corrupt GGUF metadata (value type {vtype} in {key!r})")
