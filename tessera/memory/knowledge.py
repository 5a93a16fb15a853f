"""A team's knowledge base: the Chroma store, its bm25s index, and hybrid search over both.

``retrieval: lexical`` ranks with bm25s alone, ``dense`` with Chroma's vectors alone, and ``hybrid`` fuses
the two rankings with reciprocal-rank fusion (RRF): each list contributes ``1 / (60 + rank)``. A hit only
counts when it is relevant at all: a lexical hit must share a term with the query, a dense hit must reach
``memory.min_similarity``. So an unrelated question finds nothing, and the retriever says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tessera.memory.lexical import TOKENIZER_VERSION, LexicalIndex
from tessera.memory.store import KnowledgeStore, Record

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.memory.embedder import Embedder

__all__ = ["Hit", "KnowledgeBase", "Mode", "display_source", "rrf"]

Mode = Literal["hybrid", "dense", "lexical"]
RRF_K = 60


@dataclass(slots=True)
class Hit:
    """One search result: a chunk, its fused score, and its rank in each list that found it (1-based)."""

    record: Record
    score: float
    lexical_rank: int | None = None
    dense_rank: int | None = None

    @property
    def text(self) -> str:
        """The chunk's text."""
        return self.record.text

    @property
    def source(self) -> str:
        """The absolute path of the file the chunk came from."""
        return str(self.record.metadata.get("source", "?"))

    @property
    def location(self) -> str:
        """Line range (``40-62``) or page (``p3``) within the source."""
        return str(self.record.metadata.get("location", ""))

    def citation(self) -> str:
        """``docs/guide.md:40-62``: the source relative to the working directory when it is inside it."""
        where = display_source(self.source)
        return f"{where}:{self.location}" if self.location else where


def display_source(source: str) -> str:
    """A stored absolute path, relative to the working directory when it lies beneath it."""
    try:
        return Path(source).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return source


def rrf(rankings: list[list[Record]], k: int) -> list[tuple[Record, float, list[int | None]]]:
    """Reciprocal-rank fusion of several rankings: the ``k`` best records, their scores and per-list ranks."""
    scores: dict[str, float] = {}
    ranks: dict[str, list[int | None]] = {}
    by_id: dict[str, Record] = {}
    for which, ranking in enumerate(rankings):
        for rank, record in enumerate(ranking, start=1):
            by_id.setdefault(record.id, record)
            scores[record.id] = scores.get(record.id, 0.0) + 1.0 / (RRF_K + rank)
            ranks.setdefault(record.id, [None] * len(rankings))[which] = rank
    best = sorted(scores, key=lambda rid: (-scores[rid], rid))[:k]
    return [(by_id[rid], scores[rid], ranks[rid]) for rid in best]


class KnowledgeBase:
    """Search (and, with ``writer=True``, ingest into) one collection of a team's knowledge base."""

    def __init__(
        self,
        root: Path,
        collection: str = "knowledge",
        *,
        mode: Mode = "lexical",
        embedder: Embedder | None = None,
        chroma_url: str | None = None,
        min_similarity: float = 0.3,
        writer: bool = False,
    ) -> None:
        self.root = root
        self.mode: Mode = mode
        self.min_similarity = min_similarity
        self.store = KnowledgeStore(root, collection, embedder=embedder, chroma_url=chroma_url, writer=writer)
        self.writer = writer
        self._lexical: LexicalIndex | None = None
        self._lexical_stamp: tuple[int, int] | None = None

    @classmethod
    def for_team(
        cls, config: TeamConfig, *, collection: str | None = None, writer: bool = False
    ) -> KnowledgeBase:
        """The knowledge base under ``<state_dir>/memory`` as the team's ``memory:`` section configures it."""
        from tessera.memory.embedder import load_embedder

        memory = config.memory
        root = config.resolved_state_dir / "memory"
        embedder = load_embedder(memory.embedder, cache_dir=root) if memory.embedder else None
        return cls(
            root,
            collection or memory.collection,
            mode=memory.mode,
            embedder=embedder,
            chroma_url=memory.chroma_url,
            min_similarity=memory.min_similarity,
            writer=writer,
        )

    @property
    def lexical_dir(self) -> Path:
        """Where the bm25s index of this collection is saved."""
        return self.root / "lexical" / self.store.name

    def lexical(self) -> LexicalIndex:
        """The bm25s index, loaded from disk, or rebuilt from Chroma when it is missing or out of date."""
        stamp = _stamp(self.lexical_dir)
        if self._lexical is not None and stamp == self._lexical_stamp:
            return self._lexical
        fingerprint = self._fingerprint()
        index = LexicalIndex.load(self.lexical_dir)
        if index is None or index.fingerprint != fingerprint:
            index = LexicalIndex.build(list(self.store.records()), fingerprint)
            if self.writer:
                index.save(self.lexical_dir)
                stamp = _stamp(self.lexical_dir)
        self._lexical, self._lexical_stamp = index, stamp
        return index

    def refresh(self) -> None:
        """Rebuild and save the lexical index after a write (the writer calls this)."""
        self._lexical = None
        index = LexicalIndex.build(list(self.store.records()), self._fingerprint())
        index.save(self.lexical_dir)
        self._lexical, self._lexical_stamp = index, _stamp(self.lexical_dir)

    def _fingerprint(self) -> str:
        return f"{self.store.fingerprint()}-t{TOKENIZER_VERSION}"

    def search(
        self, query: str, k: int = 5, where: Mapping[str, Any] | None = None, *, mode: Mode | None = None
    ) -> list[Hit]:
        """The ``k`` most relevant chunks for ``query``, best first, optionally filtered by metadata."""
        mode = mode or self.mode
        where_dict = dict(where) if where else None
        if mode == "lexical":
            found = self.lexical().search(query, k, where_dict)
            return [Hit(record, score, lexical_rank=i) for i, (record, score) in enumerate(found, start=1)]
        pool = k if mode == "dense" else max(k * 2, 50)  # fusion looks deeper than k into each list
        dense = [
            (r, sim) for r, sim in self.store.dense(query, pool, where_dict) if sim >= self.min_similarity
        ]
        if mode == "dense":
            return [Hit(record, sim, dense_rank=i) for i, (record, sim) in enumerate(dense[:k], start=1)]
        lexical = [r for r, _ in self.lexical().search(query, pool, where_dict)]
        return [
            Hit(record, score, lexical_rank=ranks[0], dense_rank=ranks[1])
            for record, score, ranks in rrf([lexical, [r for r, _ in dense]], k)
        ]

    def close(self) -> None:
        """Release the writer lock, if held."""
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stamp(directory: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(directory / "fingerprint.txt")
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns)
