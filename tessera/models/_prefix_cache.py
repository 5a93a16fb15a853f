"""Saved KV states of repeated prompt prefixes, so prompts that interleave on one model skip their prefill.

llama-cpp-python reuses the longest common prefix with the *previous* prompt only: when a specialist, the
planner and another specialist take turns on one model, each of them prefills its system prompt again.
:class:`PrefixCache` keeps copies of the KV cache of one sequence (``llama_state_seq_get_data``: only the
cells in use, no logits buffer) keyed by their tokens, under a byte budget:

* after a prompt is evaluated, its whole state is kept as a *tail* entry;
* when a later prompt shares at least ``min_tokens`` leading tokens with the live context or an entry,
  that shared part is a stable prefix (a system prompt, tool descriptions): the longest match is
  restored, cut back to the shared part, kept as a *prefix* entry (replacing the tails it covers), and
  only the rest of the prompt is evaluated.

Eviction drops the oldest tails first, then the least recently used prefixes. The cached tokens are
exactly the KV values llama.cpp computed for them, so a restored prompt decodes like a fresh one.
"""

from __future__ import annotations

import ctypes
import time
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama

from tessera.models._prefix_disk import DiskStates, common_prefix, holds_nearly_all

__all__ = ["CacheCounters", "PrefixCache", "PrefixReusingLlama", "PromptStats"]

_SEQ = 0


@dataclass
class PromptStats:
    """What happened to the last prompt: its size, how much was reused, when its first token came."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    first_token_at: float | None = None


@dataclass
class _Entry:
    tokens: np.ndarray
    state: ctypes.Array[ctypes.c_uint8]
    tail: bool


@dataclass
class CacheCounters:
    """Running totals, for tests and benchmarks."""

    restores: int = 0
    saves: int = 0
    evictions: int = 0
    reused_tokens: int = 0
    skipped_too_big: int = 0
    disk_restores: int = 0
    disk_saves: int = 0


class PrefixCache:
    """LRU store of KV states for one llama.cpp context, bounded by ``capacity_bytes``.

    Not thread-safe: the model's lock serializes every use, as it does for the context itself.
    """

    def __init__(self, capacity_bytes: int, *, min_tokens: int = 32, disk: DiskStates | None = None) -> None:
        self.capacity_bytes = capacity_bytes
        self.min_tokens = min_tokens
        self.disk = disk
        """Where long prompts' states are also saved, for later processes (see ``_prefix_disk``)."""
        self.counters = CacheCounters()
        self.enabled = capacity_bytes > 0
        self._entries: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()

    @staticmethod
    def supports(llm: Llama) -> bool:
        """Whether a context can be cut back to a prefix: not for recurrent or sliding-window memory."""
        model = llm.model
        recurrent = llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model)
        return not recurrent and llama_cpp.llama_model_n_swa(model) == 0

    @property
    def used_bytes(self) -> int:
        """Bytes held by saved states now."""
        return sum(len(e.state) for e in self._entries.values())

    def keys(self) -> list[tuple[tuple[int, ...], bool]]:
        """Saved token sequences with whether each is a tail, oldest first."""
        return [(k, e.tail) for k, e in self._entries.items()]

    def clear(self) -> None:
        """Drop every saved state."""
        self._entries.clear()

    def prepare(self, llm: Llama, tokens: Sequence[int]) -> int:
        """Before ``tokens`` are evaluated: restore or keep the best prefix; return how many are reused."""
        if not self.enabled or len(tokens) < 2:
            return 0
        prompt = np.asarray(tokens, dtype=np.intc)
        live = common_prefix(llm.input_ids[: llm.n_tokens], prompt)
        best_key, best = None, live
        for key, entry in self._entries.items():
            shared = common_prefix(entry.tokens, prompt)
            if shared > best:
                best_key, best = key, shared
        from_disk = self._from_disk(prompt, best)
        if from_disk is not None:
            best_key, best = from_disk
        reuse = min(best, len(prompt) - 1)
        if reuse < self.min_tokens:
            return min(live, len(prompt) - 1)
        if best_key is not None and not self._restore(llm, best_key):
            if from_disk is not None and self.disk is not None:
                self.disk.drop(np.asarray(best_key, dtype=np.intc))  # saved by another build or model
            return 0
        if not self._truncate(llm, reuse):
            return 0
        self.counters.reused_tokens += reuse
        self._keep_prefix(llm, prompt[:reuse])
        return reuse

    def save_tail(self, llm: Llama) -> None:
        """After a prompt is evaluated: keep its state for later prompts that share its start (on disk
        too, for later processes, when it is long and no saved state holds it already)."""
        if not (self.enabled and llm.n_tokens >= self.min_tokens):
            return
        tokens = np.array(llm.input_ids[: llm.n_tokens], dtype=np.intc)
        self._save(llm, tokens, tail=True)
        disk = self.disk
        if disk is None or len(tokens) < disk.min_tokens or disk.covers(tokens):
            return
        entry = self._entries.get(tuple(tokens.tolist()))
        state = entry.state if entry is not None else self._state(llm)
        if state is not None and disk.put(tokens, memoryview(state).cast("B")):
            self.counters.disk_saves += 1

    def _from_disk(self, prompt: np.ndarray, better_than: int) -> tuple[tuple[int, ...], int] | None:
        """Load the disk's best state for ``prompt`` as a tail entry: ``(key, shared tokens)``."""
        if self.disk is None:
            return None
        found = self.disk.best(prompt, better_than=better_than)
        if found is None:
            return None
        tokens, data = found
        key = tuple(tokens.tolist())
        self._entries[key] = _Entry(tokens, (ctypes.c_uint8 * len(data)).from_buffer_copy(data), True)
        self.counters.disk_restores += 1
        self._evict(keep=key)
        return key, common_prefix(tokens, prompt)

    def _keep_prefix(self, llm: Llama, prefix: np.ndarray) -> None:
        key = tuple(prefix.tolist())
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        if not self._covered(prefix) and self._save(llm, prefix, tail=False):
            for other in [k for k, e in self._entries.items() if e.tail and k[: len(key)] == key]:
                del self._entries[other]
            disk = self.disk
            if disk is not None and len(prefix) >= disk.min_tokens and not disk.covers(prefix):
                # the stable part of prompts that later processes will share: keep it instead of the
                # whole prompts it came from, which each carried a task of their own
                if disk.put(prefix, memoryview(self._entries[key].state).cast("B")):
                    self.counters.disk_saves += 1
                    disk.drop_extensions(prefix)

    def _covered(self, tokens: np.ndarray) -> bool:
        """Whether a saved entry already holds nearly all of ``tokens`` (no point saving them again)."""
        return any(holds_nearly_all(entry.tokens, tokens) for entry in self._entries.values())

    def _save(self, llm: Llama, tokens: np.ndarray, *, tail: bool) -> bool:
        key = tuple(tokens.tolist())
        if key in self._entries or (tail and self._covered(tokens)):
            return False
        if llama_cpp.llama_state_seq_get_size(llm.ctx, _SEQ) > self.capacity_bytes:
            self.counters.skipped_too_big += 1
            return False
        state = self._state(llm)
        if state is None:
            return False
        self._entries[key] = _Entry(tokens, state, tail)
        self.counters.saves += 1
        self._evict(keep=key)
        return True

    @staticmethod
    def _state(llm: Llama) -> ctypes.Array[ctypes.c_uint8] | None:
        """A copy of the live sequence's KV cells (None when llama.cpp gives none)."""
        size = llama_cpp.llama_state_seq_get_size(llm.ctx, _SEQ)
        state: ctypes.Array[ctypes.c_uint8] = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(llm.ctx, state, size, _SEQ))
        if written == 0:
            return None
        if written < size:
            state = (ctypes.c_uint8 * written).from_buffer_copy(state)
        return state

    def _evict(self, keep: tuple[int, ...]) -> None:
        while self.used_bytes > self.capacity_bytes:
            victims = [k for k, e in self._entries.items() if e.tail and k != keep]
            victims = victims or [k for k in self._entries if k != keep]
            if not victims:
                return
            del self._entries[victims[0]]
            self.counters.evictions += 1

    def _restore(self, llm: Llama, key: tuple[int, ...]) -> bool:
        entry = self._entries[key]
        self._entries.move_to_end(key)
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if memory is not None:
            llama_cpp.llama_memory_seq_rm(memory, _SEQ, 0, -1)
        llm.n_tokens = 0
        if llama_cpp.llama_state_seq_set_data(llm.ctx, entry.state, len(entry.state), _SEQ) == 0:
            del self._entries[key]
            return False
        n = len(entry.tokens)
        llm.input_ids[:n] = entry.tokens
        llm.n_tokens = n
        self.counters.restores += 1
        return True

    def _truncate(self, llm: Llama, keep: int) -> bool:
        """Cut the context back to its first ``keep`` tokens; turn the cache off where that cannot work."""
        if llm.n_tokens <= keep:
            return True
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if memory is None or not llama_cpp.llama_memory_seq_rm(memory, _SEQ, keep, -1):
            self.enabled = False  # memory that cannot be cut back: fall back to full prefills
            self.clear()
            llm.reset()
            return False
        llm.n_tokens = keep
        return True


class PrefixReusingLlama(Llama):
    """A ``Llama`` whose prompts go through a :class:`PrefixCache` and that times its first token."""

    prefix_cache: PrefixCache | None = None
    last_prompt: PromptStats = PromptStats()

    def generate(
        self, tokens: Sequence[int], *args: Any, **kwargs: Any
    ) -> Generator[int, Sequence[int] | None, None]:
        tokens = list(tokens)
        stats = PromptStats(prompt_tokens=len(tokens))
        self.last_prompt = stats
        if self.prefix_cache is not None:
            stats.cached_tokens = self.prefix_cache.prepare(self, tokens)
        else:
            live = common_prefix(self.input_ids[: self.n_tokens], np.asarray(tokens, dtype=np.intc))
            stats.cached_tokens = min(live, max(len(tokens) - 1, 0))
        inner = super().generate(tokens, *args, **kwargs)
        try:
            first = next(inner)
        except StopIteration:
            return
        stats.first_token_at = time.time()
        if self.prefix_cache is not None:
            self.prefix_cache.save_tail(self)
        sent = yield first
        while True:
            try:
                token = inner.send(sent)
            except StopIteration:
                return
            sent = yield token
