"""Lexical retrieval with bm25s: works with no embedding model at all.

The index lives next to the Chroma data (``<state_dir>/memory/lexical/<collection>``) together with the
chunks' text and metadata, so a query never touches Chroma. It is keyed on the store's fingerprint: when
the index is missing or was built for other contents it is rebuilt from Chroma, which stays the source of
truth.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from tessera.errors import MissingDependencyError, UserError
from tessera.memory.store import Record

__all__ = ["TOKENIZER_VERSION", "LexicalIndex", "matches", "tokenize"]

TOKENIZER_VERSION = 2
"""Bumped when :func:`tokenize` changes, so saved indexes are rebuilt."""

_FINGERPRINT = "fingerprint.txt"
_RECORDS = "records.jsonl"


@cache
def _stemmer() -> Callable[..., Any] | None:
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english").stemWords  # type: ignore[no-any-return]


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError:
        raise MissingDependencyError("lexical retrieval needs bm25s: pip install bm25s PyStemmer") from None
    return bm25s


# bm25s's English list, plus the question and pronoun words that fill queries ("how do I ...").
_QUESTION_WORDS = (
    "how what why when where which who whom whose do does did doing done can could should would shall may "
    "might must i me my mine we us our ours you your yours he him his she her it its am been being have has "
    "had having get gets so than too very just about from up out over any all some more most other"
).split()


@cache
def _stopwords() -> tuple[str, ...]:
    from bm25s.stopwords import STOPWORDS_EN

    return tuple(sorted({*STOPWORDS_EN, *_QUESTION_WORDS}))


_TOKEN = r"(?u)[^\W_][^\W_]+"
"""Runs of two or more letters or digits: ``parse_config`` is two words, as a query would say it."""


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased words, English stop words removed, Snowball-stemmed (when PyStemmer is installed)."""
    return _bm25s().tokenize(  # type: ignore[no-any-return]
        list(texts),
        token_pattern=_TOKEN,
        stopwords=list(_stopwords()),
        stemmer=_stemmer(),
        return_ids=False,
        show_progress=False,
    )


class LexicalIndex:
    """A BM25 index over a store's chunks, with the chunks themselves kept for results."""

    def __init__(self, retriever: Any, records: list[Record], fingerprint: str) -> None:
        self.retriever = retriever
        self.records = records
        self.fingerprint = fingerprint

    @classmethod
    def build(cls, records: Sequence[Record], fingerprint: str = "") -> LexicalIndex:
        """Index ``records`` in memory."""
        bm25s = _bm25s()
        retriever = bm25s.BM25()
        records = list(records)
        if records:
            retriever.index(tokenize([r.text for r in records]), show_progress=False)
        return cls(retriever, records, fingerprint)

    def save(self, directory: Path) -> None:
        """Write the index atomically: readers see the old one or the new one, never half of either."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            if self.records:
                self.retriever.save(str(tmp), show_progress=False)
            with (tmp / _RECORDS).open("w", encoding="utf-8") as out:
                for r in self.records:
                    out.write(json.dumps({"id": r.id, "text": r.text, "metadata": r.metadata}) + "\n")
            (tmp / _FINGERPRINT).write_text(self.fingerprint, encoding="utf-8")
            old = directory.with_name(f".{directory.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            if directory.exists():
                directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none or it cannot be read (it is then rebuilt)."""
        try:
            fingerprint = (directory / _FINGERPRINT).read_text(encoding="utf-8")
            with (directory / _RECORDS).open(encoding="utf-8") as lines:
                records = [Record(**json.loads(line)) for line in lines]
            retriever = _bm25s().BM25.load(str(directory), show_progress=False) if records else None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(retriever, records, fingerprint)

    def search(
        self, query: str, k: int, where: Mapping[str, Any] | None = None
    ) -> list[tuple[Record, float]]:
        """The ``k`` best-scoring chunks that share at least one term with ``query``, best first."""
        n = len(self.records)
        if n == 0 or k <= 0:
            return []
        mask = None
        if where:
            import numpy as np

            mask = np.fromiter((matches(r.metadata, where) for r in self.records), dtype=np.float32, count=n)
            if not mask.any():
                return []
        docs, scores = self.retriever.retrieve(
            tokenize([query]), k=min(k, n), show_progress=False, weight_mask=mask
        )
        records = self.records
        return [(records[i], s) for i, s in zip(docs[0].tolist(), scores[0].tolist(), strict=True) if s > 0]


def matches(metadata: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """Evaluate a Chroma-style ``where`` filter on one chunk's metadata, as Chroma does for dense search.

    Supports ``{"field": value}``, ``{"field": {"$eq"|"$ne"|"$gt"|"$gte"|"$lt"|"$lte"|"$in"|"$nin": v}}``,
    ``{"$and": [...]}`` and ``{"$or": [...]}``.
    """
    for key, cond in where.items():
        if key == "$and":
            if not all(matches(metadata, c) for c in cond):
                return False
        elif key == "$or":
            if not any(matches(metadata, c) for c in cond):
                return False
        elif not _compare(metadata.get(key), cond):
            return False
    return True


def _compare(value: Any, cond: Any) -> bool:
    if not isinstance(cond, Mapping):
        return bool(value == cond)
    for op, arg in cond.items():
        if op == "$eq":
            ok = value == arg
        elif op == "$ne":
            ok = value != arg
        elif op == "$in":
            ok = value in arg
        elif op == "$nin":
            ok = value not in arg
        elif value is None:
            ok = False
        elif op == "$gt":
            ok = value > arg
        elif op == "$gte":
            ok = value >= arg
        elif op == "$lt":
            ok = value < arg
        elif op == "$lte":
            ok = value <= arg
        else:
            raise UserError(f"unsupported filter operator {op!r} (known: $eq $ne $gt $gte $lt $lte $in $nin)")
        if not ok:
            return False
    return True
