"""``tessera bench retrieval`` end to end on a tiny BEIR set: one ingest, every mode, the fusion sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.bench.retrieval import SWEEP_DEPTHS, SWEEP_WEIGHTS, format_report, run_retrieval_bench
from tessera.errors import UserError
from tests.memory.conftest import env_restored
from tests.memory.tiny_st import build_tiny_sentence_transformer

DOCS = {
    "d1": "install the package with pip and upgrade it later",
    "d2": "the parser team meets on tuesdays to read meeting notes",
    "d3": "chroma is a vector store for embeddings and documents",
    "d4": "boil pasta for nine minutes in salted water",
    "d5": "the weather today is sunny with a light wind",
    "d6": "a bubblewrap sandbox limits processes memory and network",
}
QUERIES = {
    "q1": "pip install package",
    "q2": "vector store embeddings",
    "q3": "pasta water",
    "q4": "unjudged",
    "q5": "the team reads notes in the garden with the cat and the weather",
    "q6": "memory of the documents and the network",
}
QRELS = (
    "q1\td1\t2\nq2\td3\t1\nq2\td6\t0\nq3\td4\t1\n"
    "q5\td5\t1\nq5\td2\t2\nq5\td4\t1\nq6\td6\t1\nq6\td3\t3\nq6\td1\t1\n"
)


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("beir")
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in DOCS.items()))
    queries = root / "queries.jsonl"
    queries.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in QUERIES.items()))
    qrels = root / "test.tsv"
    qrels.write_text(QRELS)
    return corpus, queries, qrels


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers")
    with env_restored("HF_HUB_OFFLINE"):
        return str(build_tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "tiny-st"))


def test_one_run_measures_every_mode_and_sweeps_the_fusion(
    beir: tuple[Path, Path, Path], tiny_model: str
) -> None:
    with env_restored("HF_HUB_OFFLINE"):
        report = run_retrieval_bench(*beir, embedder=tiny_model, rounds=1)
    assert list(report["tessera"]) == ["lexical", "dense", "hybrid"]
    assert (report["docs"], report["chunks"], report["queries"]) == (6, 6, 5)
    rows = report["tessera"]
    assert len({row["ingest_s"] for row in rows.values()}) == 1  # one ingest serves every mode
    assert rows["lexical"]["ndcg@10"] == report["baselines"]["bm25s"]["ndcg@10"] < 1.0
    assert rows["dense"]["ndcg@10"] == pytest.approx(report["baselines"]["chroma"]["ndcg@10"])
    fusion = report["fusion"]
    assert fusion["settings"] == {
        "fusion": "rrf",
        "dense_weight": 0.5,
        "candidates_per_list": 100,
        "min_similarity": 0.3,
        "rrf_k": 60,
    }
    sweep = fusion["sweep"]
    assert set(sweep) == {"rrf", "convex"}
    assert all(list(by_weight) == [str(w) for w in SWEEP_WEIGHTS] for by_weight in sweep["rrf"].values())
    assert list(sweep["convex"]) == [str(d) for d in SWEEP_DEPTHS]
    # the sweep fuses the same candidates as the hybrid mode: its cell for the measured settings agrees
    assert sweep["rrf"]["100"]["0.5"] == rows["hybrid"]["ndcg@10"]
    assert sweep["convex"]["100"]["0.5"] != sweep["rrf"]["100"]["0.5"]  # the fusions differ here
    best = max(rows["dense"]["ndcg@10"], rows["lexical"]["ndcg@10"])
    assert fusion["gap"]["diff"] == pytest.approx(rows["hybrid"]["ndcg@10"] - best, abs=1e-3)
    low, high = fusion["gap"]["ci95"]
    assert low <= fusion["gap"]["diff"] <= high
    assert fusion["oracle_ndcg@10"] >= best
    lines = format_report(report)
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["tessera", "lexical"],
        ["tessera", "dense"],
        ["tessera", "hybrid"],
    ]
    assert any(line.startswith("convex 100") for line in lines)


def test_without_an_embedder_only_lexical_runs(beir: tuple[Path, Path, Path]) -> None:
    report = run_retrieval_bench(*beir, rounds=1)
    assert list(report["tessera"]) == ["lexical"] and "fusion" not in report
    assert report["baselines"]["chroma"]["skipped"].startswith("no embedder")
    assert any("skipped: no embedder" in line for line in format_report(report))
    with pytest.raises(UserError, match="--mode dense/hybrid needs --embedder"):
        run_retrieval_bench(*beir, modes=["lexical", "dense", "hybrid"])
