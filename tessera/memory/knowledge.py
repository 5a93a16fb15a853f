"""A team's knowledge base: the Chroma store, its bm25s index, and hybrid search over both.

``retrieval: lexical`` ranks with bm25s alone, ``dense`` with Chroma's vectors alone, and ``hybrid`` fuses
the two lists of candidates (the top ``memory.fusion_depth`` of each, at least ``k``). A hit only counts
when it is relevant at all: a lexical hit must share a term with the query, a dense hit must reach
``memory.min_similarity``. So an unrelated question finds nothing, and the retriever says so.

Two fusions, chosen by ``memory.fusion``, both weighing the dense list by ``memory.dense_weight`` ``w``
(0.5 weighs the lists alike):

- ``rrf`` (the default), reciprocal-rank fusion: each list adds ``2w / (60 + rank)`` (dense) or
  ``2(1 - w) / (60 + rank)`` (lexical). It uses ranks only, so it needs no score calibration; at
  ``w = 0.5`` it is plain RRF.
- ``convex``, a convex combination of scores: each list's scores are min-max normalised over its
  candidates, then ``w * dense + (1 - w) * lexical`` (a list that missed the chunk adds 0). It keeps how
  far apart the scores are, which ranks lose, but depends more on ``w``.

``benchmarks/retrieval.py`` sweeps both over ``w`` and the depth; the README reports what it found.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tessera.memory.lexical import TOKENIZER_VERSION, LexicalIndex
from tessera.memory.store import KnowledgeStore, Record

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.memory.embedder import Embedder

__all__ = [
    "Fusion",
    "Hit",
    "KnowledgeBase",
    "Mode",
    "convex",
    "display_source",
    "format_sources",
    "fuse",
    "knowledge_base",
    "rrf",
]

Mode = Literal["hybrid", "dense", "lexical"]
Fusion = Literal["rrf", "convex"]
RRF_K = 60
Fused = list[tuple[Record, float, list[int | None]]]
"""Fused records, best first: each with its fused score and its 1-based rank in each list (None: absent)."""


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


def rrf(rankings: list[list[Record]], k: int, weights: Sequence[float] | None = None) -> Fused:
    """Reciprocal-rank fusion: each list adds ``weight / (60 + rank)``; the ``k`` best records.

    Args:
        rankings: Lists of records, each best first.
        k: How many fused records to return.
        weights: One weight per list (default 1 each).
    """
    weights = [1.0] * len(rankings) if weights is None else weights
    scored = [
        [(record, weight / (RRF_K + rank)) for rank, record in enumerate(ranking, start=1)]
        for ranking, weight in zip(rankings, weights, strict=True)
    ]
    return _sum_scores(scored, k)


def convex(scored: list[list[tuple[Record, float]]], k: int, weights: Sequence[float]) -> Fused:
    """Convex combination of min-max normalised scores: the ``k`` best records.

    Each list's scores are mapped onto [0, 1] over that list (best 1, worst 0; a list whose scores are all
    equal gives each 1), then weighted and summed. A record absent from a list gets nothing from it.

    Args:
        scored: Lists of ``(record, score)``, each best first, higher scores better.
        k: How many fused records to return.
        weights: One weight per list, usually summing to 1.
    """
    normalised = []
    for hits, weight in zip(scored, weights, strict=True):
        scores = [score for _, score in hits]
        low, high = (min(scores), max(scores)) if scores else (0.0, 0.0)
        span = high - low
        normalised.append([(r, weight * ((s - low) / span if span > 0 else 1.0)) for r, s in hits])
    return _sum_scores(normalised, k)


def _sum_scores(scored: list[list[tuple[Record, float]]], k: int) -> Fused:
    """Sum each record's scores over the lists; ties sort by id so the order is deterministic."""
    scores: dict[str, float] = {}
    ranks: dict[str, list[int | None]] = {}
    by_id: dict[str, Record] = {}
    for which, hits in enumerate(scored):
        for rank, (record, score) in enumerate(hits, start=1):
            by_id.setdefault(record.id, record)
            scores[record.id] = scores.get(record.id, 0.0) + score
            ranks.setdefault(record.id, [None] * len(scored))[which] = rank
    best = sorted(scores, key=lambda rid: (-scores[rid], rid))[:k]
    return [(by_id[rid], scores[rid], ranks[rid]) for rid in best]


def fuse(
    lexical: list[tuple[Record, float]],
    dense: list[tuple[Record, float]],
    k: int,
    *,
    fusion: Fusion = "rrf",
    dense_weight: float = 0.5,
) -> list[Hit]:
    """Hybrid hits from lexical and dense candidates (each best first), as the module docstring describes.

    Args:
        lexical: ``(record, bm25 score)`` pairs.
        dense: ``(record, cosine similarity)`` pairs.
        k: How many hits to return.
        fusion: ``rrf`` (ranks) or ``convex`` (normalised scores).
        dense_weight: The dense list's share, from 0 to 1.
    """
    if fusion == "rrf":
        weights = [2 * (1 - dense_weight), 2 * dense_weight]
        fused = rrf([[r for r, _ in lexical], [r for r, _ in dense]], k, weights)
    elif fusion == "convex":
        fused = convex([lexical, dense], k, [1 - dense_weight, dense_weight])
    else:
        from tessera.errors import UserError

        raise UserError(f"unknown fusion {fusion!r} (known: rrf, convex)")
    return [Hit(record, score, lexical_rank=ranks[0], dense_rank=ranks[1]) for record, score, ranks in fused]


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
        fusion: Fusion = "rrf",
        dense_weight: float = 0.5,
        fusion_depth: int = 50,
        writer: bool = False,
    ) -> None:
        from tessera.errors import UserError

        if fusion not in ("rrf", "convex"):
            raise UserError(f"unknown fusion {fusion!r} (known: rrf, convex)")
        if not 0 <= dense_weight <= 1:
            raise UserError(f"dense_weight must be between 0 and 1, got {dense_weight}")
        if fusion_depth < 1:
            raise UserError(f"fusion_depth must be at least 1, got {fusion_depth}")
        self.root = root
        self.mode: Mode = mode
        self.min_similarity = min_similarity
        self.fusion: Fusion = fusion
        self.dense_weight = dense_weight
        self.fusion_depth = fusion_depth
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
            fusion=memory.fusion,
            dense_weight=memory.dense_weight,
            fusion_depth=memory.fusion_depth,
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
        if mode == "dense":
            dense = self.dense_candidates(query, k, where_dict)
            return [Hit(record, sim, dense_rank=i) for i, (record, sim) in enumerate(dense, start=1)]
        lexical, dense = self.candidates(query, max(k, self.fusion_depth), where_dict)
        return fuse(lexical, dense, k, fusion=self.fusion, dense_weight=self.dense_weight)

    def candidates(
        self, query: str, depth: int, where: Mapping[str, Any] | None = None
    ) -> tuple[list[tuple[Record, float]], list[tuple[Record, float]]]:
        """What hybrid search fuses: the top ``depth`` lexical ``(record, score)`` and dense hits."""
        where_dict = dict(where) if where else None
        return self.lexical().search(query, depth, where_dict), self.dense_candidates(
            query, depth, where_dict
        )

    def dense_candidates(
        self, query: str, depth: int, where: dict[str, Any] | None = None
    ) -> list[tuple[Record, float]]:
        """The top ``depth`` dense ``(record, cosine similarity)`` hits that reach ``min_similarity``."""
        return [(r, sim) for r, sim in self.store.dense(query, depth, where) if sim >= self.min_similarity]

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


_OPEN: dict[tuple[Path, str], KnowledgeBase] = {}
_OPEN_LOCK = threading.Lock()


def knowledge_base(team: TeamConfig) -> KnowledgeBase:
    """The team's knowledge base, opened read-only once per process and shared by all subtasks."""
    key = (team.resolved_state_dir, team.memory.collection)
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = KnowledgeBase.for_team(team)
        return _OPEN[key]


def format_sources(hits: list[Hit]) -> str:
    """The numbered sources, each with its citation line and text, for the model's prompt."""
    return "\n\n".join(f"[{n}] {hit.citation()}\n{hit.text.strip()}" for n, hit in enumerate(hits, start=1))
