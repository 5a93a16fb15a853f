"""``tessera bench retrieval``: Tessera's knowledge base on BEIR data, against plain bm25s and plain Chroma.

Each corpus document becomes a text file, and the real ``tessera ingest`` pipeline (chunking, Chroma, the
bm25s index) ingests the folder *once* into a throw-away state dir; each retrieval mode (lexical, and with
an embedder dense and hybrid) then queries the same knowledge base. The baselines index *the same chunks*,
read back from Tessera's store: plain bm25s with the same tokenizer, and a plain Chroma collection with
the same embedder. Chunk rankings become document rankings by first occurrence. Query latency is measured
per query, alternating between systems so that machine noise hits them alike.

With hybrid among the modes, the report also has a ``fusion`` section: the fusion settings measured, the
hybrid-minus-best-single-mode nDCG@10 gap with a paired bootstrap 95% interval over queries, the
per-query oracle (the better of dense and lexical on each query: what choosing one list per query could
reach), and a sweep of nDCG@10 over fusion, dense weight and candidate depth, fused from candidates
fetched once per query.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tessera.bench._beir import evaluate, load_corpus, load_qrels, load_queries, ndcg_at_k, percentile_ms
from tessera.memory.ingest import ingest
from tessera.memory.knowledge import RRF_K, Fusion, KnowledgeBase, Mode, fuse
from tessera.memory.lexical import tokenize

__all__ = ["format_report", "run_retrieval_bench"]

ROUNDS = 5
DEPTH = 100
MODES: tuple[Mode, ...] = ("lexical", "dense", "hybrid")
SWEEP_FUSIONS: tuple[Fusion, ...] = ("rrf", "convex")
SWEEP_WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SWEEP_DEPTHS = (20, 50, 100)
BOOTSTRAP_SAMPLES = 2000
_METRICS = ("ndcg@10", "recall@100", "ingest_s", "p50_ms", "p95_ms")

Run = dict[str, list[str]]


def run_retrieval_bench(
    corpus_path: Path,
    queries_path: Path,
    qrels_path: Path,
    *,
    modes: Sequence[Mode] | None = None,
    embedder: str | None = None,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """Ingest once, query each mode; the result has ``tessera`` (one row per mode) and ``baselines``.

    Args:
        corpus_path, queries_path, qrels_path: The BEIR files.
        modes: Retrieval modes to measure (default: all three with an embedder, else lexical).
        embedder: The embedder spec for dense and hybrid (hub id or local path).
        rounds: Timed passes over the queries.

    Raises:
        UserError: A dense or hybrid mode without an embedder, or bad BEIR files.
    """
    from tessera.errors import UserError
    from tessera.memory.embedder import load_embedder

    modes = tuple(dict.fromkeys(modes)) if modes else (MODES if embedder else ("lexical",))
    if embedder is None and any(mode != "lexical" for mode in modes):
        raise UserError(
            f"bench retrieval: --mode {'/'.join(m for m in modes if m != 'lexical')} needs --embedder"
        )
    corpus = load_corpus(corpus_path)
    queries = load_queries(queries_path)
    qrels = load_qrels(qrels_path)
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
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
        with KnowledgeBase(root / "memory", "bench", embedder=loaded, writer=True) as kb:
            started = time.perf_counter()
            ingest(kb, [docs_dir], progress=False)
            kb.lexical()
            tessera_ingest = time.perf_counter() - started
            records = list(kb.lexical().records)
            systems: dict[str, tuple[Callable[[str], list[str]], float]] = {
                mode: (_tessera_query(kb, mode, doc_of), tessera_ingest) for mode in modes
            }
            systems["bm25s"] = _plain_bm25s(records, doc_of)
            skipped = {}
            if loaded is not None:
                inner = getattr(loaded, "inner", loaded)  # the baseline gets no embedding cache
                systems["chroma"] = _plain_chroma(records, doc_of, inner, root / "plain")
            else:
                skipped["chroma"] = "no embedder (pass --embedder for the dense baseline)"
            rows, runs = _measure(systems, queries, qrels, rounds)
            fusion = _fusion_report(kb, queries, qrels, runs, doc_of) if "hybrid" in modes else None
    for name, reason in skipped.items():
        rows[name] = {key: None for key in _METRICS}
        rows[name]["skipped"] = reason
    report: dict[str, Any] = {
        "tessera": {mode: rows[mode] for mode in modes},
        "baselines": {"bm25s": rows["bm25s"], "chroma": rows["chroma"]},
        "docs": len(corpus),
        "chunks": len(records),
        "queries": len(queries),
        "rounds": rounds,
    }
    if fusion is not None:
        report["fusion"] = fusion
    return report


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as table lines: one row per mode and baseline, then the fusion gap and sweep."""
    lines = [f"{'system':<18} {'nDCG@10':>8} {'R@100':>7} {'ingest s':>9} {'p50 ms':>8} {'p95 ms':>8}"]
    rows = [*((f"tessera {m}", row) for m, row in report["tessera"].items()), *report["baselines"].items()]
    for name, row in rows:
        if row.get("skipped"):
            lines.append(f"{name:<18} skipped: {row['skipped']}")
            continue
        lines.append(
            f"{name:<18} {row['ndcg@10']:>8.4f} {row['recall@100']:>7.4f} {row['ingest_s']:>9.2f}"
            f" {row['p50_ms']:>8.3f} {row['p95_ms']:>8.3f}"
        )
    fusion = report.get("fusion")
    if fusion is None:
        return lines
    gap, settings = fusion["gap"], fusion["settings"]
    lines.append(
        f"hybrid ({settings['fusion']}, dense_weight {settings['dense_weight']}, "
        f"{settings['candidates_per_list']} candidates per list) minus {gap['best_single']}: "
        f"{gap['diff']:+.4f} nDCG@10 (95% CI {gap['ci95'][0]:+.4f}..{gap['ci95'][1]:+.4f} over queries)"
    )
    lines.append(
        f"per-query oracle (the better of dense and lexical per query): {fusion['oracle_ndcg@10']:.4f}"
    )
    lines.append("nDCG@10 sweep (rows: fusion, candidates per list; columns: dense_weight)")
    lines.append(f"{'':<14}" + "".join(f"{w:>8}" for w in SWEEP_WEIGHTS))
    for name, by_depth in fusion["sweep"].items():
        for depth, by_weight in by_depth.items():
            lines.append(f"{name + ' ' + depth:<14}" + "".join(f"{v:>8.4f}" for v in by_weight.values()))
    return lines


def _tessera_query(kb: KnowledgeBase, mode: Mode, doc_of: dict[str, str]) -> Callable[[str], list[str]]:
    return lambda text: _docs([h.source for h in kb.search(text, DEPTH, mode=mode)], doc_of)


def _fusion_report(
    kb: KnowledgeBase,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    runs: dict[str, Run],
    doc_of: dict[str, str],
) -> dict[str, Any]:
    """The fusion section of the report (see the module docstring)."""
    scored = [qid for qid, judged in qrels.items() if any(rel > 0 for rel in judged.values())]
    per_query = {
        mode: [ndcg_at_k(runs[mode].get(qid, ()), qrels[qid], 10) for qid in scored]
        for mode in ("lexical", "dense", "hybrid")
    }
    best = max(("dense", "lexical"), key=lambda mode: statistics.fmean(per_query[mode]))
    diffs = [h - b for h, b in zip(per_query["hybrid"], per_query[best], strict=True)]
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(BOOTSTRAP_SAMPLES))
    oracle = statistics.fmean(
        max(d, lx) for d, lx in zip(per_query["dense"], per_query["lexical"], strict=True)
    )
    candidates = {qid: kb.candidates(text, max(SWEEP_DEPTHS)) for qid, text in queries.items()}
    sweep: dict[str, dict[str, dict[str, float]]] = {}
    for fusion in SWEEP_FUSIONS:
        for depth in SWEEP_DEPTHS:
            row = sweep.setdefault(fusion, {}).setdefault(str(depth), {})
            for weight in SWEEP_WEIGHTS:
                run = {
                    qid: _docs(
                        [
                            h.source
                            for h in fuse(
                                lex[:depth], dense[:depth], DEPTH, fusion=fusion, dense_weight=weight
                            )
                        ],
                        doc_of,
                    )
                    for qid, (lex, dense) in candidates.items()
                }
                row[str(weight)] = round(evaluate(run, qrels)["ndcg@10"], 4)
    return {
        "settings": {
            "fusion": kb.fusion,
            "dense_weight": kb.dense_weight,
            "candidates_per_list": max(DEPTH, kb.fusion_depth),
            "min_similarity": kb.min_similarity,
            "rrf_k": RRF_K,
        },
        "gap": {
            "best_single": best,
            "diff": round(statistics.fmean(diffs), 4),
            "ci95": [round(means[int(0.025 * len(means))], 4), round(means[int(0.975 * len(means)) - 1], 4)],
        },
        "oracle_ndcg@10": round(oracle, 4),
        "sweep": sweep,
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
) -> tuple[dict[str, dict[str, Any]], dict[str, Run]]:
    """Score and time each system; return its row and its ranked documents per query."""
    names = list(systems)
    for name in names:  # warm up: first queries pay for lazy loads and caches
        for text in list(queries.values())[:3]:
            systems[name][0](text)
    runs: dict[str, Run] = {name: {} for name in names}
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
    return rows, runs
