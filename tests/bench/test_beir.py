"""BEIR loaders and scores: hand-computed nDCG and recall, loader errors, the shared MS MARCO sample."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tessera.bench._beir import (
    BeirDoc,
    evaluate,
    load_corpus,
    load_qrels,
    load_queries,
    ndcg_at_k,
    percentile_ms,
    recall_at_k,
)
from tessera.errors import UserError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MSMARCO = SHARED / "data" / "msmarco-5k"

LOG2_3 = math.log2(3)  # 1.5849625007211562, the discount at rank 2


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# nDCG and recall, computed by hand. DCG = sum(rel_i / log2(i + 1)), i = 1-based rank.


def test_ndcg_hand_example_with_a_miss_and_an_unjudged_doc() -> None:
    # ranked b(1) x(0) a(2): DCG = 1/log2(2) + 0/log2(3) + 2/log2(4) = 1 + 0 + 1 = 2
    # ideal a(2) b(1):      IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.63093 = 2.63093
    # nDCG = 2 / 2.63093 = 0.76019 (pytrec_eval ndcg_cut_10 gives 0.7601875334318685)
    relevant = {"a": 2, "b": 1, "c": 0}
    assert ndcg_at_k(["b", "x", "a"], relevant) == pytest.approx(2 / (2 + 1 / LOG2_3))
    assert ndcg_at_k(["b", "x", "a"], relevant) == pytest.approx(0.7601875334318685)


def test_graded_relevance_order_matters() -> None:
    relevant = {"a": 2, "b": 1}
    # a(2) then b(1) is the ideal order: nDCG = 1
    assert ndcg_at_k(["a", "b"], relevant) == pytest.approx(1.0)
    # b(1) then a(2): DCG = 1/1 + 2/log2(3) = 2.26186; IDCG = 2 + 1/log2(3) = 2.63093; nDCG = 0.85972
    assert ndcg_at_k(["b", "a"], relevant) == pytest.approx((1 + 2 / LOG2_3) / (2 + 1 / LOG2_3))
    assert ndcg_at_k(["b", "a"], relevant) == pytest.approx(0.8597186998521972)
    # binary recall does not see the order
    assert recall_at_k(["b", "a"], relevant) == recall_at_k(["a", "b"], relevant) == 1.0


def test_cut_off_at_k() -> None:
    relevant = {"a": 1, "b": 1, "c": 1}
    # top 2 = x(0) a(1): DCG = 0 + 1/log2(3) = 0.63093; IDCG@2 = 1 + 1/log2(3) = 1.63093; nDCG = 0.38685
    assert ndcg_at_k(["x", "a", "b", "c"], relevant, k=2) == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))
    assert ndcg_at_k(["x", "a", "b", "c"], relevant, k=2) == pytest.approx(0.38685280723454163)
    # recall@2: 1 of 3 relevant found
    assert recall_at_k(["x", "a", "b", "c"], relevant, k=2) == pytest.approx(1 / 3)


def test_k_larger_than_the_ranked_list() -> None:
    relevant = {"a": 1, "b": 1}
    # ranked a(1) only: DCG = 1; IDCG = 1 + 1/log2(3) = 1.63093; nDCG = 0.61315; recall = 1/2
    assert ndcg_at_k(["a"], relevant, k=10) == pytest.approx(1 / (1 + 1 / LOG2_3))
    assert recall_at_k(["a"], relevant, k=100) == 0.5
    assert ndcg_at_k([], relevant) == 0.0
    assert recall_at_k([], relevant) == 0.0


def test_duplicates_count_once_and_take_no_slot() -> None:
    relevant = {"a": 1, "b": 1}
    # a a b -> a b: the ideal ranking, so 1.0 (counted twice it would be above 1)
    assert ndcg_at_k(["a", "a", "b"], relevant) == pytest.approx(1.0)
    # with k=2 the repeat does not push b out of the top 2
    assert ndcg_at_k(["a", "a", "b"], relevant, k=2) == pytest.approx(1.0)
    assert recall_at_k(["a", "a", "b"], relevant, k=2) == 1.0
    # a repeated relevant doc is still one of two
    assert recall_at_k(["a", "a"], relevant) == 0.5


def test_zero_and_negative_relevance_give_nothing() -> None:
    # ranked a(-1) b(1): DCG = 0 + 1/log2(3) = 0.63093; IDCG = 1; nDCG = 0.63093
    assert ndcg_at_k(["a", "b"], {"a": -1, "b": 1}) == pytest.approx(1 / LOG2_3)
    assert recall_at_k(["a", "b"], {"a": -1, "b": 1}) == 1.0
    # no relevant doc at all: 0.0 (evaluate skips such a query)
    assert ndcg_at_k(["a"], {"a": 0}) == 0.0
    assert recall_at_k(["a"], {"a": 0}) == 0.0
    assert ndcg_at_k(["a"], {}) == 0.0


def test_k_must_be_positive() -> None:
    with pytest.raises(UserError, match="k must be at least 1"):
        ndcg_at_k(["a"], {"a": 1}, k=0)
    with pytest.raises(UserError, match="k must be at least 1"):
        recall_at_k(["a"], {"a": 0}, k=0)


def test_evaluate_skips_queries_without_relevant_docs_and_scores_missing_ones_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}, "q3": {"c": 2}}
    run = {"q1": ["a"], "q2": ["b"], "q4": ["z"]}
    # q2 skipped (nothing relevant), q4 ignored (not judged); q1 perfect, q3 missing from the run
    assert evaluate(run, qrels) == {"ndcg@10": 0.5, "recall@100": 0.5}


def test_evaluate_means_per_query_scores() -> None:
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1, "d": 1}}
    run = {"q1": ["b", "a"], "q2": ["c"]}
    scores = evaluate(run, qrels)
    assert scores["ndcg@10"] == pytest.approx((0.8597186998521972 + 1 / (1 + 1 / LOG2_3)) / 2)
    assert scores["recall@100"] == pytest.approx((1.0 + 0.5) / 2)


def test_evaluate_needs_a_relevant_doc() -> None:
    with pytest.raises(UserError, match="no query in the qrels has a relevant document"):
        evaluate({"q": ["a"]}, {"q": {"a": 0}})


# percentile_ms


def test_percentile_interpolates_like_numpy() -> None:
    samples = [0.004, 0.001, 0.003, 0.002]  # seconds; sorted 1, 2, 3, 4 ms
    assert percentile_ms(samples, 0) == pytest.approx(1.0)
    assert percentile_ms(samples, 50) == pytest.approx(2.5)  # position 1.5
    assert percentile_ms(samples, 90) == pytest.approx(3.7)  # position 2.7: 3 + 0.7 * 1
    assert percentile_ms(samples, 100) == pytest.approx(4.0)
    assert percentile_ms([0.25], 95) == pytest.approx(250.0)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(UserError, match="no timing samples"):
        percentile_ms([], 50)
    with pytest.raises(UserError, match="between 0 and 100"):
        percentile_ms([0.1], 101)


# Loaders


def test_load_corpus_and_queries(tmp_path: Path) -> None:
    corpus = write(
        tmp_path / "corpus.jsonl",
        '{"_id": "d1", "title": "T", "text": "one"}\n\n{"_id": 2, "text": "two\u2028still two", "metadata": {}}\n',
    )
    assert load_corpus(corpus) == [BeirDoc("d1", "T", "one"), BeirDoc("2", "", "two\u2028still two")]
    queries = write(
        tmp_path / "queries.jsonl", '{"_id": "q1", "text": "what"}\r\n{"_id": "q2", "text": "why"}\r\n'
    )
    assert load_queries(queries) == {"q1": "what", "q2": "why"}


def test_load_qrels_with_and_without_header(tmp_path: Path) -> None:
    rows = "q1\td1\t1\nq1\td2\t2\n\nq2\td1\t0\n"
    expected = {"q1": {"d1": 1, "d2": 2}, "q2": {"d1": 0}}
    assert load_qrels(write(tmp_path / "plain.tsv", rows)) == expected
    assert load_qrels(write(tmp_path / "header.tsv", "query-id\tcorpus-id\tscore\n" + rows)) == expected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "queries.jsonl",
            '{"_id": "q1", "text": "a"}\n\n{"_id": "q2", "text": "b"}\nnot json\n',
            "queries.jsonl:4: not JSON",
        ),
        ("queries.jsonl", '["q1", "a"]\n', "queries.jsonl:1: not a JSON object"),
        ("queries.jsonl", '{"text": "a"}\n', 'queries.jsonl:1: missing "_id" (a string)'),
        ("queries.jsonl", '{"_id": "q1"}\n', 'queries.jsonl:1: "text" missing'),
        ("queries.jsonl", '{"_id": "q1", "text": 3}\n', 'queries.jsonl:1: "text" is not a string'),
        (
            "queries.jsonl",
            '{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n',
            "queries.jsonl:2: duplicate _id 'q1' (first on line 1)",
        ),
        ("queries.jsonl", "\n\n", "queries.jsonl: no queries"),
        (
            "corpus.jsonl",
            '{"_id": "d1", "title": 5, "text": "a"}\n',
            'corpus.jsonl:1: "title" is not a string',
        ),
        ("corpus.jsonl", "", "corpus.jsonl: no documents"),
        (
            "qrels.tsv",
            "q1\td1\t1\nq1\td2\t1\nq1 d3 1\n",
            "qrels.tsv:3: expected 3 columns (tab-separated), got 1",
        ),
        ("qrels.tsv", "q1\td1\t1\nq1\td2\tx\n", "qrels.tsv:2: score 'x' is not an integer"),
        ("qrels.tsv", "q1\td1\t1.5\n", "qrels.tsv: no judgements"),
        ("qrels.tsv", "q1\t\t1\n", "qrels.tsv:1: empty corpus-id"),
        (
            "qrels.tsv",
            "q1\td1\t1\nq1\td1\t2\n",
            "qrels.tsv:2: query 'q1', document 'd1' judged 2 here but 1 on line 1",
        ),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path / name, text)
    loader = {"queries.jsonl": load_queries, "corpus.jsonl": load_corpus, "qrels.tsv": load_qrels}[name]
    with pytest.raises(UserError) as caught:
        loader(path)
    assert str(caught.value) == f"{tmp_path / name}{message.removeprefix(name)}"
    assert "\n" not in str(caught.value)


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_bytes(b'{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": "\xff"}\n')
    with pytest.raises(UserError, match=r"queries\.jsonl:2: not UTF-8$"):
        load_queries(path)
    with pytest.raises(UserError, match=r"nope\.tsv: no such file$"):
        load_qrels(tmp_path / "nope.tsv")
    with pytest.raises(UserError, match="cannot read"):
        load_corpus(tmp_path)


def test_repeated_identical_judgement_is_kept_once(tmp_path: Path) -> None:
    assert load_qrels(write(tmp_path / "q.tsv", "q1\td1\t1\nq1\td1\t1\n")) == {"q1": {"d1": 1}}


# The shared MS MARCO sample


@pytest.fixture(scope="module")
def msmarco() -> Path:
    if not MSMARCO.is_dir():
        pytest.skip(f"{MSMARCO} is absent (the shared data folder is not beside the checkout)")
    return MSMARCO


def test_msmarco_sample_loads(msmarco: Path) -> None:
    corpus = load_corpus(msmarco / "corpus.jsonl")
    queries = load_queries(msmarco / "queries.jsonl")
    qrels = load_qrels(msmarco / "qrels" / "test.tsv")
    assert len(corpus) == 5000
    assert len({doc.id for doc in corpus}) == 5000
    assert len(queries) == 50
    assert set(qrels) <= set(queries)
    doc_ids = {doc.id for doc in corpus}
    assert all(doc_id in doc_ids for judged in qrels.values() for doc_id in judged)
    assert {rel for judged in qrels.values() for rel in judged.values()} <= {0, 1, 2, 3}
    assert len(qrels) == 43  # 7 of the 50 queries have no judgements
    # a run that ranks each query's judged docs best first: nDCG@10 is 1, and recall@100 is capped by the
    # queries with more than 100 relevant docs (up to 341), which can find only 100 of them
    perfect = {query_id: sorted(judged, key=lambda d: -judged[d]) for query_id, judged in qrels.items()}
    relevant_counts = [sum(rel > 0 for rel in judged.values()) for judged in qrels.values()]
    best_recall = sum(min(100, n) / n for n in relevant_counts) / len(relevant_counts)
    assert best_recall < 1.0
    assert evaluate(perfect, qrels) == {
        "ndcg@10": pytest.approx(1.0),
        "recall@100": pytest.approx(best_recall),
    }
