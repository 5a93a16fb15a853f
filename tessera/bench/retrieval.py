"""``tessera bench retrieval``: Tessera's knowledge base on BEIR data, against plain bm25s and plain Chroma.

Each corpus document becomes a text file, and the real ``tessera ingest`` pipeline (chunking, Chroma, the
bm25s index) ingests the folder into a throw-away state dir. The baselines then index *the same chunks*,
read back from Tessera's store: plain bm25s with the same tokenizer, and a plain Chroma collection with
the same embedder. Chunk rankings become document rankings by first occurrence. Query latency is measured
per query, alternating between systems so that machine noise hits them alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from tessera.bench._beir import evaluate, load_corpus, load_qrels, load_queries, percentile_ms
from tessera.memory.ingest import ingest
from tessera.memory.knowledge import KnowledgeBase
from tessera.memory.lexical import tokenize

__all__ = ["run_retrieval_bench"]

ROUNDS = 5
DEPTH = 100


def run_retrieval_bench(
    corpus_path: Path,
    queries_path: Path,
    qrels_path: Path,
    *,
    mode: Literal["lexical", "dense", "hybrid"] = "lexical",
    embedder: str | None = None,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """Run the benchmark; the result has ``tessera`` and ``baselines`` (``bm25s``, ``chroma``) rows."""
    from tessera.errors import UserError
    from tessera.memory.embedder import load_embedder

    corpus = load_corpus(corpus_path)
    queries = load_queries(queries_path)
    qrels = load_qrels(qrels_path)
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    if mode != "lexical" and embedder is None:
        raise UserError(f"bench retrieval: --mode {mode} needs --embedder")
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        root = Path(tmp)
        docs_dir = root / "docs"
        docs_dir.mkdir()
        doc_of: dict[str, str] = {}
        for i, doc in enumerate(corpus):
            path = docs_dir / f"{i:07d}.txt"
            path.write_text(f"{doc.title}\n\n{doc.text}" if doc.title else doc.text, encoding="utf-8")
            doc_of[path.resolve().as_posix()] = doc.id
        loaded = load_embedder(embedder, cache_dir=root / "memory") if embedder else None
        with KnowledgeBase(root / "memory", "bench", mode=mode, embedder=loaded, writer=True) as kb:
            started = time.perf_counter()
            ingest(kb, [docs_dir], progress=False)
            kb.lexical()
            tessera_ingest = time.perf_counter() - started
            records = list(kb.lexical().records)
            systems: dict[str, tuple[Callable[[str], list[str]], float]] = {
                "tessera": (lambda q: _docs([h.source for h in kb.search(q, DEPTH)], doc_of), tessera_ingest),
                "bm25s": _plain_bm25s(records, doc_of),
            }
            skipped = {}
            if loaded is not None:
                inner = getattr(loaded, "inner", loaded)  # the baseline gets no embedding cache
                systems["chroma"] = _plain_chroma(records, doc_of, inner, root / "plain")
            else:
                skipped["chroma"] = "no embedder (pass --embedder for the dense baseline)"
            rows = _measure(systems, queries, qrels, rounds)
    for name, reason in skipped.items():
        rows[name] = {key: None for key in ("ndcg@10", "recall@100", "ingest_s", "p50_ms", "p95_ms")}
        rows[name]["skipped"] = reason
    return {
        "tessera": rows.pop("tessera"),
        "baselines": {"bm25s": rows["bm25s"], "chroma": rows["chroma"]},
        "mode": mode,
        "docs": len(corpus),
        "chunks": len(records),
        "queries": len(queries),
        "rounds": rounds,
    }


def _docs(sources: Sequence[str], doc_of: dict[str, str]) -> list[str]:
    seen: dict[str, None] = {}
    for source in sources:
        seen.setdefault(doc_of[source], None)
    return list(seen)


def _plain_bm25s(records: list[Any], doc_of: dict[str, str]) -> tuple[Callable[[str], list[str]], float]:
    import bm25s

    started = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(tokenize([r.text for r in records]), show_progress=False)
    seconds = time.perf_counter() - started
    sources = [str(r.metadata["source"]) for r in records]
    k = min(DEPTH, len(records))

    def query(text: str) -> list[str]:
        found, scores = retriever.retrieve(tokenize([text]), k=k, show_progress=False)
        return _docs([sources[int(i)] for i, s in zip(found[0], scores[0], strict=True) if s > 0], doc_of)

    return query, seconds


def _plain_chroma(
    records: list[Any], doc_of: dict[str, str], embedder: Any, path: Path
) -> tuple[Callable[[str], list[str]], float]:
    import chromadb
    from chromadb.config import Settings

    started = time.perf_counter()
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("plain", embedding_function=None, metadata={"hnsw:space": "cosine"})
    for start in range(0, len(records), 1000):
        batch = records[start : start + 1000]
        collection.add(
            ids=[r.id for r in batch],
            documents=[r.text for r in batch],
            embeddings=embedder.embed([r.text for r in batch]),
            metadatas=[{"source": r.metadata["source"]} for r in batch],
        )
    seconds = time.perf_counter() - started
    k = min(DEPTH, len(records))

    def query(text: str) -> list[str]:
        found = collection.query(query_embeddings=embedder.embed([text]), n_results=k, include=["metadatas"])
        metas = found["metadatas"] or [[]]
        return _docs([str(m["source"]) for m in metas[0]], doc_of)

    return query, seconds


def _measure(
    systems: dict[str, tuple[Callable[[str], list[str]], float]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    rounds: int,
) -> dict[str, dict[str, Any]]:
    names = list(systems)
    for name in names:  # warm up: first queries pay for lazy loads and caches
        for text in list(queries.values())[:3]:
            systems[name][0](text)
    runs: dict[str, dict[str, list[str]]] = {name: {} for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds):
        for i, (qid, text) in enumerate(queries.items()):
            order = names if (i + round_no) % 2 == 0 else names[::-1]
            for name in order:
                started = time.perf_counter()
                ranked = systems[name][0](text)
                samples[name].append(time.perf_counter() - started)
                runs[name][qid] = ranked
    rows = {}
    for name in names:
        scores = evaluate(runs[name], qrels)
        rows[name] = {
            "ndcg@10": round(scores["ndcg@10"], 4),
            "recall@100": round(scores["recall@100"], 4),
            "ingest_s": round(systems[name][1], 3),
            "p50_ms": round(percentile_ms(samples[name], 50), 3),
            "p95_ms": round(percentile_ms(samples[name], 95), 3),
            "mean_ms": round(statistics.fmean(samples[name]) * 1000, 3),
        }
    return rows
