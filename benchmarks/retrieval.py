"""Tessera's knowledge base on msmarco-5k against plain bm25s and plain Chroma, measured in the same run.

Runs ``tessera bench retrieval`` (see ``tessera/bench/retrieval.py``) in lexical mode: the targets are an
nDCG@10 within 0.01 of plain bm25s on the same chunks, and a query p95 within 1.5x of it. With
``--tiny-embedder`` it also runs hybrid mode with a tiny random-weight sentence-transformer the test suite
builds (no download), which exercises the dense path and the Chroma baseline; its quality numbers mean
nothing, its latencies do.

    python benchmarks/retrieval.py [--data ../shared/data/msmarco-5k] [--tiny-embedder]
        [--out benchmarks/results/retrieval.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _stats import write_results

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "msmarco-5k")
    parser.add_argument("--tiny-embedder", action="store_true", help="also run hybrid with a tiny model")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "retrieval.json")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"{args.data}: no BEIR data here (expected corpus.jsonl, queries.jsonl, qrels/test.tsv)")

    from tessera.bench.retrieval import run_retrieval_bench

    files = (args.data / "corpus.jsonl", args.data / "queries.jsonl", args.data / "qrels" / "test.tsv")
    results = {"lexical": run_retrieval_bench(*files, mode="lexical")}
    if args.tiny_embedder:
        sys.path.insert(0, str(REPO))
        from tests.memory.tiny_st import build_tiny_sentence_transformer

        with tempfile.TemporaryDirectory() as tmp:
            model = build_tiny_sentence_transformer(Path(tmp) / "tiny-st")
            results["hybrid (tiny random embedder)"] = run_retrieval_bench(
                *files, mode="hybrid", embedder=str(model)
            )

    lexical = results["lexical"]
    ours, plain = lexical["tessera"], lexical["baselines"]["bm25s"]
    summary = {
        "ndcg@10_diff_vs_bm25s": round(ours["ndcg@10"] - plain["ndcg@10"], 4),
        "p95_ratio_vs_bm25s": round(ours["p95_ms"] / plain["p95_ms"], 3),
        "p50_ratio_vs_bm25s": round(ours["p50_ms"] / plain["p50_ms"], 3),
    }
    print(f"{'run / system':<44} {'nDCG@10':>8} {'R@100':>7} {'ingest s':>9} {'p50 ms':>8} {'p95 ms':>8}")
    for run, report in results.items():
        for name, row in [("tessera", report["tessera"]), *report["baselines"].items()]:
            label = f"{run} / {name}"
            if row.get("skipped"):
                print(f"{label:<44} skipped: {row['skipped']}")
                continue
            print(
                f"{label:<44} {row['ndcg@10']:>8.4f} {row['recall@100']:>7.4f} {row['ingest_s']:>9.2f}"
                f" {row['p50_ms']:>8.3f} {row['p95_ms']:>8.3f}"
            )
    print(
        f"lexical: nDCG@10 {summary['ndcg@10_diff_vs_bm25s']:+.4f} vs plain bm25s (target within 0.01), "
        f"p95 {summary['p95_ratio_vs_bm25s']:.2f}x (target <= 1.5x)"
    )
    write_results(args.out, {"summary": summary, "runs": results})


if __name__ == "__main__":
    main()
