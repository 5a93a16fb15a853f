"""BEIR-format retrieval data and the scores a retrieval benchmark reports.

A BEIR dataset is a folder with ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``; tab-separated,
graded relevance, with or without a header line). The loaders turn any bad line into one
:class:`~tessera.errors.UserError` naming the file and line (``queries.jsonl:7: not JSON``).

The scores follow BEIR, which uses ``pytrec_eval``: nDCG with linear gains (a document judged 2 is worth
twice one judged 1) and a ``log2(rank + 1)`` discount, and recall as the share of a query's relevant
documents found in the top ``k``. Queries without a relevant document are left out of the means, as
``pytrec_eval`` leaves out queries it has no judgements for.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessera.errors import UserError

__all__ = [
    "BeirDoc",
    "evaluate",
    "load_corpus",
    "load_qrels",
    "load_queries",
    "ndcg_at_k",
    "percentile_ms",
    "recall_at_k",
]

_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class BeirDoc:
    """One corpus document; ``title`` is ``""`` when the dataset has none (as in MS MARCO)."""

    id: str
    title: str
    text: str


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` for each non-blank line, split on ``\\n`` only.

    ``str.splitlines`` would also split on characters such as U+2028 that JSON strings may hold raw (the
    MS MARCO corpus has some), so the file is split on newlines and each line decoded on its own.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for number, chunk in enumerate(raw.split(b"\n"), 1):
        try:
            line = chunk.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{path}:{number}: not UTF-8") from None
        if line.strip():
            yield number, line.rstrip("\r")


def _json_rows(path: Path, fields: Sequence[str]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Yield ``(line number, id, row)`` per JSON object line, checking ``_id`` and the text ``fields``.

    ``_id`` may be a string or an integer (yielded as a string); each of ``fields`` must be a string,
    except ``title``, which may be missing or null. An ``_id`` seen twice is an error.
    """
    first_seen: dict[str, int] = {}
    for number, line in _lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{path}:{number}: not JSON") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: not a JSON object")
        raw_id = row.get("_id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
            raise UserError(f'{path}:{number}: missing "_id" (a string)')
        for name in fields:
            value = row.get(name)
            if name == "title" and value is None:
                continue
            if not isinstance(value, str):
                problem = "missing" if name not in row else "is not a string"
                raise UserError(f'{path}:{number}: "{name}" {problem}')
        doc_id = str(raw_id)
        if doc_id in first_seen:
            raise UserError(f"{path}:{number}: duplicate _id {doc_id!r} (first on line {first_seen[doc_id]})")
        first_seen[doc_id] = number
        yield number, doc_id, row


def load_corpus(path: str | Path) -> list[BeirDoc]:
    """Read ``corpus.jsonl`` in file order.

    Args:
        path: The JSON Lines file; each line an object with ``_id``, ``text`` and optionally ``title``.

    Returns:
        One :class:`BeirDoc` per non-blank line.

    Raises:
        UserError: The file is missing or empty, or a line is not a JSON object with a unique ``_id`` and
            a string ``text``; the message names the file and line.
    """
    path = Path(path)
    docs = [
        BeirDoc(id=doc_id, title=row.get("title") or "", text=row["text"])
        for _, doc_id, row in _json_rows(path, ("title", "text"))
    ]
    if not docs:
        raise UserError(f"{path}: no documents")
    return docs


def load_queries(path: str | Path) -> dict[str, str]:
    """Read ``queries.jsonl`` into ``{query id: text}``, in file order.

    Args:
        path: The JSON Lines file; each line an object with ``_id`` and ``text``.

    Returns:
        The queries' texts by id.

    Raises:
        UserError: The file is missing or empty, or a line is not a JSON object with a unique ``_id`` and
            a string ``text``; the message names the file and line.
    """
    path = Path(path)
    queries = {query_id: row["text"] for _, query_id, row in _json_rows(path, ("text",))}
    if not queries:
        raise UserError(f"{path}: no queries")
    return queries


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a qrels TSV file into ``{query id: {corpus id: relevance}}``.

    Each line is ``query-id<TAB>corpus-id<TAB>score`` with an integer score. The first line is taken for
    a header (and skipped) when its third column is not an integer, so files with and without the BEIR
    header ``query-id corpus-id score`` both load. A pair judged twice with the same score is kept once;
    judged twice with different scores, it is an error.

    Args:
        path: The TSV file, e.g. ``qrels/test.tsv``.

    Returns:
        The judgements by query, then by document; scores may be 0 or negative (not relevant).

    Raises:
        UserError: The file is missing or has no judgements, or a line does not have three columns, has an
            empty id or a non-integer score, or contradicts an earlier line; the message names the file
            and line.
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    first_seen: dict[tuple[str, str], int] = {}
    for index, (number, line) in enumerate(_lines(path)):
        columns = [column.strip() for column in line.split("\t")]
        if len(columns) != 3:
            raise UserError(f"{path}:{number}: expected 3 columns (tab-separated), got {len(columns)}")
        query_id, doc_id, score = columns
        if not _INTEGER.fullmatch(score):
            if index == 0:
                continue
            raise UserError(f"{path}:{number}: score {score!r} is not an integer")
        if not query_id or not doc_id:
            raise UserError(f"{path}:{number}: empty {'query-id' if not query_id else 'corpus-id'}")
        judged = qrels.setdefault(query_id, {})
        relevance = int(score)
        if doc_id in judged and judged[doc_id] != relevance:
            first = first_seen[(query_id, doc_id)]
            raise UserError(
                f"{path}:{number}: query {query_id!r}, document {doc_id!r} judged {relevance} here "
                f"but {judged[doc_id]} on line {first}"
            )
        first_seen.setdefault((query_id, doc_id), number)
        judged[doc_id] = relevance
    if not qrels:
        raise UserError(f"{path}: no judgements")
    return qrels


def _check_k(k: int) -> None:
    """Reject a cut-off below 1."""
    if k < 1:
        raise UserError(f"k must be at least 1, got {k}")


def _top_k(ranked: Sequence[str], k: int) -> list[str]:
    """The first ``k`` distinct ids of ``ranked``: a repeated id keeps its first rank and takes no slot."""
    top: list[str] = []
    seen: set[str] = set()
    for doc_id in ranked:
        if doc_id not in seen:
            seen.add(doc_id)
            top.append(doc_id)
            if len(top) == k:
                break
    return top


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with graded, linear gains, as BEIR reports it (``pytrec_eval``'s ``ndcg_cut``).

    ``DCG = sum(rel_i / log2(i + 1))`` over ranks ``i = 1..k``, where ``rel_i`` is the judged relevance of
    the document at rank ``i`` (0 if unjudged or judged 0 or below). The ideal DCG ranks the judged
    relevances, largest first. A document repeated in ``ranked`` counts once, at its first rank.

    Args:
        ranked: Document ids, best first.
        relevant: A query's judgements, ``{corpus id: relevance}``.
        k: The cut-off rank.

    Returns:
        A score in [0, 1]; 0.0 when no document is relevant (:func:`evaluate` skips such queries).
    """
    _check_k(k)
    gains = sorted((rel for rel in relevant.values() if rel > 0), reverse=True)[:k]
    ideal = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, 1))
    if ideal == 0:
        return 0.0
    top = _top_k(ranked, k)
    found = sum(max(relevant.get(doc_id, 0), 0) / math.log2(rank + 1) for rank, doc_id in enumerate(top, 1))
    return found / ideal


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    """The share of a query's relevant documents (relevance above 0) found in the top ``k`` of ``ranked``.

    Args:
        ranked: Document ids, best first; a repeated id counts once.
        relevant: A query's judgements, ``{corpus id: relevance}``.
        k: The cut-off rank.

    Returns:
        A score in [0, 1]; 0.0 when no document is relevant (:func:`evaluate` skips such queries).
    """
    _check_k(k)
    wanted = {doc_id for doc_id, rel in relevant.items() if rel > 0}
    if not wanted:
        return 0.0
    return sum(doc_id in wanted for doc_id in _top_k(ranked, k)) / len(wanted)


def evaluate(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean nDCG@10 and recall@100 of a run, over the queries that have a relevant document.

    A query in ``qrels`` whose judgements are all 0 or below is skipped (no score is defined for it); one
    missing from ``run`` scores 0; a query in ``run`` but not in ``qrels`` is ignored.

    Args:
        run: Each query's ranked document ids, best first.
        qrels: The judgements, as :func:`load_qrels` returns them.

    Returns:
        ``{"ndcg@10": mean, "recall@100": mean}``.

    Raises:
        UserError: No query in ``qrels`` has a relevant document.
    """
    scored = [query_id for query_id, judged in qrels.items() if any(rel > 0 for rel in judged.values())]
    if not scored:
        raise UserError("no query in the qrels has a relevant document (relevance above 0)")
    ndcg = sum(ndcg_at_k(run.get(query_id, ()), qrels[query_id], 10) for query_id in scored)
    recall = sum(recall_at_k(run.get(query_id, ()), qrels[query_id], 100) for query_id in scored)
    return {"ndcg@10": ndcg / len(scored), "recall@100": recall / len(scored)}


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of timings in seconds, in milliseconds.

    Linear interpolation between the closest ranks, as ``numpy.percentile``'s default: with ``n`` sorted
    samples the percentile sits at position ``(n - 1) * q / 100``. (``benchmarks/_stats.py`` has the same
    rule for the scripts, but it is outside the package.)

    Args:
        samples_s: Timings in seconds, in any order.
        q: The percentile, from 0 to 100 (50 is the median, 95 is p95), not a fraction.

    Returns:
        The percentile in milliseconds.

    Raises:
        UserError: ``samples_s`` is empty or ``q`` is outside [0, 100].
    """
    if not samples_s:
        raise UserError("no timing samples")
    if not 0 <= q <= 100:
        raise UserError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(samples_s)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return value * 1000.0
