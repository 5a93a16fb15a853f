"""Tessera's knowledge base on msmarco-5k in lexical, dense and hybrid mode, one ingest, one run.

Runs ``tessera bench retrieval`` (see ``tessera/bench/retrieval.py``) with all-MiniLM-L6-v2 (or
``--embedder``): the corpus is ingested once, then each mode is queried, alongside plain bm25s and plain
Chroma on the same chunks. The targets: lexical nDCG@10 within 0.01 of plain bm25s with a query p95 within
1.5x of it, and hybrid nDCG@10 at least 0.02 above the better of dense and lexical. The fusion sweep
(nDCG@10 over fusion, dense weight and candidate depth) is printed and saved, to show how much the
settings matter; the defaults are not picked from it (with 43 judged queries, its best cell is mostly
noise).

    HF_HUB_OFFLINE=1 python benchmarks/retrieval.py [--data ../shared/data/msmarco-5k]
        [--embedder sentence-transformers/all-MiniLM-L6-v2] [--out benchmarks/results/retrieval.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _stats import write_results

REPO = Path(__file__).resolve().parent.parent
HYBRID_TARGET = 0.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "msmarco-5k")
    parser.add_argument("--embedder", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "retrieval.json")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"{args.data}: no BEIR data here (expected corpus.jsonl, queries.jsonl, qrels/test.tsv)")

    from tessera.bench.retrieval import format_report, run_retrieval_bench

    files = (args.data / "corpus.jsonl", args.data / "queries.jsonl", args.data / "qrels" / "test.tsv")
    report = run_retrieval_bench(*files, embedder=args.embedder)
    ours, plain = report["tessera"], report["baselines"]
    best_single = max(ours["dense"]["ndcg@10"], ours["lexical"]["ndcg@10"])
    summary = {
        "embedder": args.embedder,
        "ndcg@10": {mode: row["ndcg@10"] for mode, row in ours.items()},
        "hybrid_minus_best_single": round(ours["hybrid"]["ndcg@10"] - best_single, 4),
        "hybrid_target_met": ours["hybrid"]["ndcg@10"] >= best_single + HYBRID_TARGET,
        "lexical_ndcg@10_diff_vs_bm25s": round(ours["lexical"]["ndcg@10"] - plain["bm25s"]["ndcg@10"], 4),
        "lexical_p95_ratio_vs_bm25s": round(ours["lexical"]["p95_ms"] / plain["bm25s"]["p95_ms"], 3),
        "dense_ndcg@10_diff_vs_chroma": round(ours["dense"]["ndcg@10"] - plain["chroma"]["ndcg@10"], 4),
    }
    for line in format_report(report):
        print(line)
    print(
        f"lexical: nDCG@10 {summary['lexical_ndcg@10_diff_vs_bm25s']:+.4f} vs plain bm25s (target within "
        f"0.01), p95 {summary['lexical_p95_ratio_vs_bm25s']:.2f}x (target <= 1.5x); dense: nDCG@10 "
        f"{summary['dense_ndcg@10_diff_vs_chroma']:+.4f} vs plain Chroma"
    )
    print(
        f"hybrid: {summary['hybrid_minus_best_single']:+.4f} nDCG@10 vs the better of dense and lexical "
        f"(target +{HYBRID_TARGET}: {'met' if summary['hybrid_target_met'] else 'not met'})"
    )
    write_results(args.out, {"summary": summary, "report": report})


if __name__ == "__main__":
    main()
