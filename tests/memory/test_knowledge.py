"""Search over a real knowledge base: filters, dense and hybrid fusion, and the repository's own docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.config import load_team
from tessera.errors import UserError
from tessera.memory.ingest import ingest
from tessera.memory.knowledge import RRF_K, KnowledgeBase, convex, fuse, rrf
from tessera.memory.store import Record
from tests.conftest import REPO, run_cli, write_team
from tests.memory.conftest import env_restored

DOCS = {
    "guide/install.md": "# Install\n\nRun pip install tessera to install the package.\n\n"
    "## Upgrade\n\nUpgrade with pip install --upgrade tessera.\n",
    "guide/chroma.md": "# Storage\n\nThe chroma vector store keeps embeddings on disk.\n",
    "src/parser.py": "def parse_config(text):\n    '''Parse a config file.'''\n    return text.split()\n",
    "src/lexer.py": "def tokenize_source(text):\n    '''Split source into tokens.'''\n    return list(text)\n",
    "notes.txt": "Meeting notes: the parser team meets on Tuesdays.\n",
}


def make_docs(root: Path) -> Path:
    for rel, text in DOCS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_filters_restrict_lexical_results_by_metadata(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs")
    with KnowledgeBase(tmp_path / "memory", writer=True) as kb:
        ingest(kb, [docs], progress=False)
        everything = {Path(h.source).name for h in kb.search("parser config parse", 10)}
        code = kb.search("parser config parse", 10, {"kind": "code"})
        prose = kb.search("parser config parse", 10, {"kind": {"$ne": "code"}})
        one_file = kb.search("install", 10, {"source": (docs / "guide/install.md").as_posix()})
        either = kb.search("parse parser tokens", 10, {"$or": [{"format": "python"}, {"format": "text"}]})
    assert {"parser.py", "notes.txt"} <= everything
    assert [Path(h.source).name for h in code] == ["parser.py"]
    assert [Path(h.source).name for h in prose] == ["notes.txt"]
    assert one_file and all(h.source.endswith("guide/install.md") for h in one_file)
    assert {Path(h.source).name for h in either} == {"parser.py", "lexer.py", "notes.txt"}


def test_nothing_shares_a_term_so_nothing_is_found(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "memory", writer=True) as kb:
        ingest(kb, [make_docs(tmp_path / "docs")], progress=False)
        assert kb.search("quantum chromodynamics lattice", 5) == []
        assert kb.search("install", 5, {"kind": "nonexistent"}) == []


def test_rrf_sums_reciprocal_ranks_across_lists() -> None:
    a, b, c, d = (Record(x, x, {}) for x in "abcd")
    fused = rrf([[a, b, c], [c, d]], k=4)
    scores = {r.id: score for r, score, _ in fused}
    assert scores["c"] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert scores["a"] == pytest.approx(1 / (RRF_K + 1))
    # found by both beats first place in one; b and d tie (second in one list each) and sort by id
    assert [r.id for r, _, _ in fused] == ["c", "a", "b", "d"]
    assert {r.id: ranks for r, _, ranks in fused}["d"] == [None, 2]


def test_dense_search_with_a_real_sentence_transformer(tmp_path: Path, st_embedder) -> None:
    with KnowledgeBase(tmp_path / "memory", mode="dense", embedder=st_embedder, writer=True) as kb:
        ingest(kb, [make_docs(tmp_path / "docs")], progress=False)
        hits = kb.search("chroma vector store embeddings", 3)
        assert hits[0].source.endswith("guide/chroma.md")
        assert all(h.dense_rank is not None and h.lexical_rank is None for h in hits)
        assert hits[0].score == pytest.approx(max(h.score for h in hits))


def test_hybrid_is_the_rrf_fusion_of_the_lexical_and_dense_rankings(tmp_path: Path, st_embedder) -> None:
    kb = KnowledgeBase(
        tmp_path / "memory", mode="hybrid", embedder=st_embedder, min_similarity=-1, writer=True
    )
    with kb:
        ingest(kb, [make_docs(tmp_path / "docs")], progress=False)
        query = "pip install the parser"
        lexical = kb.search(query, 50, mode="lexical")
        dense = kb.search(query, 50, mode="dense")
        hybrid = kb.search(query, 50)
    expected = rrf([[h.record for h in lexical], [h.record for h in dense]], 50)
    assert [h.record.id for h in hybrid] == [r.id for r, _, _ in expected]
    assert [h.score for h in hybrid] == pytest.approx([s for _, s, _ in expected])
    # dense (with no similarity floor) ranks every chunk, so hybrid includes chunks no query word is in
    lexical_ids = {h.record.id for h in lexical}
    assert any(h.record.id not in lexical_ids and h.lexical_rank is None for h in hybrid)
    assert len(hybrid) == len(dense) > len(lexical) > 0
    both = [h for h in hybrid if h.lexical_rank and h.dense_rank]
    assert both and hybrid[0] in both


def test_hybrid_keeps_a_lexical_hit_the_dense_floor_drops(tmp_path: Path, st_embedder) -> None:
    kb = KnowledgeBase(
        tmp_path / "memory", mode="hybrid", embedder=st_embedder, min_similarity=0.999, writer=True
    )
    with kb:
        ingest(kb, [make_docs(tmp_path / "docs")], progress=False)
        hits = kb.search("Tuesdays", 5)
    assert [Path(h.source).name for h in hits] == ["notes.txt"]
    assert hits[0].lexical_rank == 1 and hits[0].dense_rank is None


def test_weighted_rrf_scales_each_lists_reciprocal_ranks() -> None:
    a, b, c = (Record(x, x, {}) for x in "abc")
    fused = rrf([[a, b], [b, c]], k=3, weights=[0.5, 1.5])
    scores = {r.id: score for r, score, _ in fused}
    assert scores == pytest.approx(
        {"a": 0.5 / (RRF_K + 1), "b": 0.5 / (RRF_K + 2) + 1.5 / (RRF_K + 1), "c": 1.5 / (RRF_K + 2)}
    )
    assert [r.id for r, _, _ in fused] == ["b", "c", "a"]  # the heavier list's second place beats a


def test_convex_normalises_each_list_then_weighs_it() -> None:
    a, b, c, d = (Record(x, x, {}) for x in "abcd")
    # bm25 scores 12, 8, 2 map to 1, 0.6, 0; the lone dense hit maps to 1 whatever its similarity
    fused = convex([[(a, 12.0), (b, 8.0), (c, 2.0)], [(b, 0.41)]], k=4, weights=[0.3, 0.7])
    scores = {r.id: score for r, score, _ in fused}
    assert scores == pytest.approx({"b": 0.3 * 0.6 + 0.7, "a": 0.3, "c": 0.0})
    assert [r.id for r, _, _ in fused] == ["b", "a", "c"]
    assert {r.id: ranks for r, _, ranks in fused} == {"b": [2, 1], "a": [1, None], "c": [3, None]}
    assert convex([[(a, 0.5), (d, 0.5)], []], k=2, weights=[1.0, 1.0])[0][1] == 1.0  # all equal: all 1


def test_fuse_weighs_the_dense_list_by_its_share() -> None:
    a, b, c, d = (Record(x, x, {}) for x in "abcd")
    lexical, dense = [(a, 9.0), (b, 3.0)], [(c, 0.8), (b, 0.6), (a, 0.2)]
    plain = fuse(lexical, dense, 3)
    assert [(h.record.id, h.score) for h in plain] == [
        (r.id, pytest.approx(s)) for r, s, _ in rrf([[a, b], [c, b, a]], 3)
    ]
    assert [h.record.id for h in fuse(lexical, dense, 3, dense_weight=1.0)] == ["c", "b", "a"]
    assert [h.record.id for h in fuse(lexical, dense, 3, dense_weight=0.0)][:2] == ["a", "b"]
    apart = [(c, 0.9), (d, 0.5)]  # no chunk in both lists: the heavier list's first place wins
    for fusion in ("rrf", "convex"):
        assert fuse(lexical, apart, 1, fusion=fusion, dense_weight=0.2)[0].record.id == "a"
        assert fuse(lexical, apart, 1, fusion=fusion, dense_weight=0.8)[0].record.id == "c"
    # convex at 0.5: a = (1 + 0) / 2, c = (0 + 1) / 2 (a tie, broken by id), b = (0 + 0.4 / 0.6) / 2
    hits = fuse(lexical, dense, 3, fusion="convex", dense_weight=0.5)
    assert [(h.record.id, h.lexical_rank, h.dense_rank) for h in hits] == [
        ("a", 1, 3),
        ("c", None, 1),
        ("b", 2, 2),
    ]
    assert [h.score for h in hits] == pytest.approx([0.5, 0.5, 1 / 3])


def test_hybrid_search_fuses_the_configured_depth_with_the_configured_fusion(
    tmp_path: Path, st_embedder
) -> None:
    kb = KnowledgeBase(
        tmp_path / "memory",
        mode="hybrid",
        embedder=st_embedder,
        min_similarity=-1,
        fusion="convex",
        dense_weight=0.7,
        fusion_depth=2,
        writer=True,
    )
    with kb:
        ingest(kb, [make_docs(tmp_path / "docs")], progress=False)
        query = "install the parser package"
        hits = kb.search(query, 2)
        lexical, dense = kb.candidates(query, 2)
        deeper = kb.search(query, 4)  # k above the depth: each list gives k candidates
        everything = kb.candidates(query, 50)
    assert len(lexical) == len(dense) == 2
    expected = fuse(lexical, dense, 2, fusion="convex", dense_weight=0.7)
    assert [(h.record.id, h.score) for h in hits] == [(h.record.id, pytest.approx(h.score)) for h in expected]
    assert all((h.lexical_rank or 0) <= 2 and (h.dense_rank or 0) <= 2 for h in hits)
    assert [h.record.id for h in deeper] == [
        h.record.id for h in fuse(everything[0][:4], everything[1][:4], 4, fusion="convex", dense_weight=0.7)
    ]


def test_for_team_takes_the_fusion_settings_and_rejects_bad_ones(tmp_path: Path, tiny_st_model: Path) -> None:
    memory = {"embedder": str(tiny_st_model), "fusion": "convex", "dense_weight": 0.25, "fusion_depth": 7}
    team = write_team(
        tmp_path / "team.yaml",
        {"demo": {"backend": "function", "callable": "tessera.testing.demo:planner"}},
        memory={**memory, "long_term": False},
    )
    with env_restored("HF_HUB_OFFLINE"), KnowledgeBase.for_team(load_team(team)) as kb:
        assert (kb.mode, kb.fusion, kb.dense_weight, kb.fusion_depth) == ("hybrid", "convex", 0.25, 7)
    with pytest.raises(UserError, match="dense_weight must be between 0 and 1, got 1.5"):
        KnowledgeBase(tmp_path / "other", dense_weight=1.5)
    with pytest.raises(UserError, match="fusion_depth must be at least 1, got 0"):
        KnowledgeBase(tmp_path / "other", fusion_depth=0)
    with pytest.raises(UserError, match="unknown fusion 'borda' \\(known: rrf, convex\\)"):
        KnowledgeBase(tmp_path / "other", fusion="borda")  # type: ignore[arg-type]


QUERIES = {
    "bubblewrap sandbox unprivileged uid process limit": "tessera/tools/sandbox.py",
    "read text from images and scanned PDFs with tesseract": "tessera/tools/ocr.py",
    "a custom speech engine class that synthesizes text to a WAV file": "tessera/tools/tts.py",
    "reciprocal rank fusion of lexical and dense rankings": "tessera/memory/knowledge.py",
    "HumanEval canonical solutions pass@1": "tessera/bench/humaneval.py",
    "second writer lock on the Chroma path": "tessera/memory/_lock.py",
    "how are plans validated for cycles": "tessera/agents/planner.py",
    "checkpoint resume after a crash": "tessera/team.py",
}


def test_search_on_this_repositorys_docs_puts_the_right_file_first(tmp_path: Path) -> None:
    team = write_team(
        tmp_path / "team.yaml",
        {"demo": {"backend": "function", "callable": "tessera.testing.demo:planner"}},
        specialists={"docs": {"description": "answers from docs", "kind": "retriever"}},
    )
    out = run_cli("ingest", "README.md", "tessera", "--team", str(team), "-q", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ingested"] > 40 and report["failed"] == []
    query, expected = next(iter(QUERIES.items()))
    out = run_cli("search", query, "--team", str(team), "-k", "3", "--json")
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert hits[0]["citation"].split(":")[0] == expected, [h["citation"] for h in hits]
    assert hits[0]["source"] == (REPO / expected).as_posix()
    with KnowledgeBase.for_team(load_team(team)) as kb:  # the same search, in-process for the rest
        for query, expected in QUERIES.items():
            found = [h.source for h in kb.search(query, 3)]
            assert found[0] == (REPO / expected).as_posix(), (query, found)
