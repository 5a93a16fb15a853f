"""KV states of long prompts saved on disk, so that a new process restores a planner's prompt instead of
prefilling it.

A :class:`~tessera.models._prefix_cache.PrefixCache` lives as long as its process, and every ``tessera
run`` is a new process: it prefilled the planner's 800-token prompt again (8.5 s of a 1.5B's time on two
cores) before it could write the first token of a plan. :class:`DiskStates` keeps the states of prompts of
at least ``min_tokens`` tokens in a folder, one file each (the tokens, then the sequence's KV cells), keyed
by everything the cells depend on: the llama.cpp build, the model file and the context size. A prompt that
shares a long start with a saved one restores it and evaluates only the rest, exactly as the in-memory cache
does. The folder is bounded (the least recently used files go first); writes are atomic, so processes that
share the folder never read half a file, and a file that does not restore is deleted.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["DiskStates", "common_prefix", "disk_key", "holds_nearly_all"]

_MAGIC = b"TESSERA-KV1\n"
_COUNT = struct.Struct("<I")


def disk_key(model_path: Path, n_ctx: int) -> str:
    """The folder name for one model file at one context size, under one llama.cpp build."""
    import llama_cpp

    stat = model_path.stat()
    text = f"{llama_cpp.__version__}|{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{n_ctx}"
    return f"{model_path.stem[:40]}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class DiskStates:
    """Saved states of long prompts in ``folder``, at most ``capacity_bytes`` in all."""

    def __init__(self, folder: Path, capacity_bytes: int, *, min_tokens: int = 256) -> None:
        self.folder = folder
        self.capacity_bytes = capacity_bytes
        self.min_tokens = min_tokens

    def best(self, prompt: np.ndarray, *, better_than: int) -> tuple[np.ndarray, bytes] | None:
        """The saved ``(tokens, state)`` sharing the longest start with ``prompt``, if longer than
        ``better_than`` tokens and at least ``min_tokens``."""
        best_path, best_tokens, best_shared = None, None, max(better_than, self.min_tokens - 1)
        for path, tokens in self._headers():
            shared = common_prefix(tokens, prompt)
            if shared > best_shared:
                best_path, best_tokens, best_shared = path, tokens, shared
        if best_path is None or best_tokens is None:
            return None
        try:
            data = best_path.read_bytes()
            best_path.touch()  # recently used: evicted last
        except OSError:
            return None
        return best_tokens, data[len(_MAGIC) + _COUNT.size + 4 * len(best_tokens) :]

    def covers(self, tokens: np.ndarray) -> bool:
        """Whether a saved state already holds nearly all of ``tokens`` (no point saving them again)."""
        return any(holds_nearly_all(saved, tokens) for _, saved in self._headers())

    def put(self, tokens: np.ndarray, state: bytes | bytearray | memoryview) -> bool:
        """Save ``state`` for ``tokens`` (unless it is too short or too big); False when it was not saved."""
        if len(tokens) < self.min_tokens or len(state) > self.capacity_bytes:
            return False
        name = hashlib.sha256(np.asarray(tokens, dtype="<i4").tobytes()).hexdigest()[:24] + ".kv"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + _COUNT.pack(len(tokens)))
                out.write(np.asarray(tokens, dtype="<i4").tobytes())
                out.write(state)
            os.replace(tmp, self.folder / name)
        except OSError:
            return False
        self._evict(keep=self.folder / name)
        return True

    def drop(self, tokens: np.ndarray) -> None:
        """Delete the saved state of exactly ``tokens`` (it did not restore)."""
        for path, saved in self._headers():
            if len(saved) == len(tokens) and common_prefix(saved, tokens) == len(tokens):
                path.unlink(missing_ok=True)

    def drop_extensions(self, prefix: np.ndarray) -> None:
        """Delete the saved states of longer prompts that start with ``prefix`` (it is saved itself)."""
        for path, saved in self._headers():
            if len(saved) > len(prefix) and common_prefix(saved, prefix) == len(prefix):
                path.unlink(missing_ok=True)

    def _headers(self) -> list[tuple[Path, np.ndarray]]:
        found: list[tuple[Path, np.ndarray]] = []
        try:
            paths = sorted(self.folder.glob("*.kv"))
        except OSError:
            return found
        for path in paths:
            try:
                with path.open("rb") as data:
                    if data.read(len(_MAGIC)) != _MAGIC:
                        continue
                    (count,) = _COUNT.unpack(data.read(_COUNT.size))
                    tokens = np.frombuffer(data.read(4 * count), dtype="<i4").astype(np.intc)
            except (OSError, struct.error, ValueError):
                continue
            if len(tokens) == count:
                found.append((path, tokens))
        return found

    def _evict(self, keep: Path) -> None:
        files: list[tuple[int, int, Path]] = []
        for path in self.folder.glob("*.kv"):
            try:
                stat = path.stat()
            except OSError:  # another process evicted it
                continue
            files.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.capacity_bytes:
                return
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


def holds_nearly_all(saved: np.ndarray, tokens: np.ndarray) -> bool:
    """Whether a state saved for ``saved`` starts ``tokens`` and lacks at most a few of them (the larger of
    16 and a tenth): saving ``tokens`` as well would add little."""
    need = len(tokens) - max(16, len(tokens) // 10)
    return len(saved) >= need and common_prefix(saved, tokens) == len(saved)
