"""Search over a real knowledge base: filters, dense and hybrid fusion, and the repository's own docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.config import load_team
from tessera.memory.ingest import ingest
from tessera.memory.knowledge import RRF_K, KnowledgeBase, rrf
from tessera.memory.store import Record
from tests.conftest import REPO, run_cli, write_team

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


QUERIES = {
    "bubblewrap sandbox unprivileged uid process limit": "tessera/tools/sandbox.py",
    "read text from images and scanned PDFs with tesseract": "tessera/tools/ocr.py",
    "espeak-ng speech synthesis to a WAV file": "tessera/tools/tts.py",
    "reciprocal rank fusion of lexical and dense rankings": "tessera/memory/knowledge.py",
    "HumanEval canonical solutions pass@1": "tessera/bench/humaneval.py",
    "second writer lock on the Chroma path": "tessera/memory/_lock.py",
    "how are plans validated for cycles": "tessera/agents/planner.py",
    "checkpoint resume after a crash": "tessera/team.py",
}


def test_search_on_this_repositorys_docs_puts_the_right_file_first(tmp_path: Path) -> None:
    team = write_team(
        tmp_path / "team.yaml",
        {"demo": {"backend": "function", "callable": "tessera.models.demo:planner"}},
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
