"""Ingesting folders into a real knowledge base: incremental, pruning, bad files, the CLI, and a kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.memory.ingest import ingest
from tessera.memory.knowledge import KnowledgeBase
from tessera.memory.store import Record, chunk_id
from tests.conftest import REPO, run_cli, write_team
from tests.memory.test_loaders import encrypted_copy, text_pdf

DEMO = {"demo": {"backend": "function", "callable": "tessera.testing.demo:planner"}}

GUIDE = """# Guide

Tessera runs a team of small local models. This guide mentions the xylophone once.

## Installing

Install it with pip. Then write a team file and point the configuration at it.

## Configuration

The configuration lives in a YAML file. Every section is checked before anything runs.
"""

APP = '''"""The app."""


def load_configuration(path):
    """Read the configuration file and return the walrus settings."""
    return open(path).read()


def main():
    print(load_configuration("team.yaml"))
'''

TREE = {
    "docs/guide.md": GUIDE,
    "docs/notes.txt": "Notes\n=====\n\nThe quokka is a small marsupial.\n",
    "docs/api.rst": "API\n===\n\nThe zeppelin endpoint returns JSON.\n",
    "docs/page.html": "<html><body>\n<h1>Page</h1>\n<p>Marmalade on toast.</p>\n</body></html>\n",
    "src/app.py": APP,
    "nested/deeper/more.md": "# More\n\nA hedgehog sleeps under the leaves.\n",
    "node_modules/pkg/readme.md": "# Pkg\n\nA forbidden word lives here.\n",
    "drafts/secret.md": "# Secret\n\nA clandestine plan.\n",
    ".tesseraignore": "# not ready yet\ndrafts/\n",
}
INGESTED = ["docs/api.rst", "docs/guide.md", "docs/notes.txt", "docs/page.html", "nested/deeper/more.md"]
INGESTED += ["report.pdf", "src/app.py"]


def make_tree(root: Path) -> Path:
    """The folder tree of :data:`TREE`, plus a PDF and an unsupported image."""
    for name, text in TREE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "report.pdf").write_bytes(text_pdf([["Quarterly revenue grew."], ["The outlook is stable."]]))
    (root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    return root


def source(path: Path) -> str:
    return path.resolve().as_posix()


def sources(kb: KnowledgeBase, query: str, k: int = 10) -> list[str]:
    return [hit.source for hit in kb.search(query, k)]


def chunks_of(kb: KnowledgeBase) -> dict[str, Record]:
    return {r.id: r for r in kb.store.records()}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree")


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    with KnowledgeBase(tmp_path / "memory", "knowledge", writer=True) as opened:
        yield opened


# --- incremental ingest ---------------------------------------------------------------------------------------


def test_a_folder_tree_is_ingested_skipping_ignored_and_unsupported_files(
    tree: Path, kb: KnowledgeBase
) -> None:
    report = ingest(kb, [tree], progress=False)

    assert (report.files, report.ingested, report.skipped, report.pruned, report.failed) == (7, 7, 0, 0, [])
    files = kb.store.files()
    assert sorted(files) == sorted(source(tree / name) for name in INGESTED)
    for name in INGESTED:
        assert files[source(tree / name)].sha256 == hashlib.sha256((tree / name).read_bytes()).hexdigest()
    assert report.chunks == kb.store.count() == sum(entry.chunks for entry in files.values())
    assert all(entry.chunks >= 1 for entry in files.values())
    kinds = {(r.metadata["source"], r.metadata["kind"], r.metadata["format"]) for r in kb.store.records()}
    assert {(Path(str(s)).name, k, f) for s, k, f in kinds} == {
        ("guide.md", "prose", "markdown"),
        ("notes.txt", "prose", "text"),
        ("api.rst", "prose", "rst"),
        ("page.html", "prose", "html"),
        ("app.py", "code", "python"),
        ("more.md", "prose", "markdown"),
        ("report.pdf", "pdf", "pdf"),
    }
    assert sources(kb, "hedgehog") == [source(tree / "nested/deeper/more.md")]
    assert sources(kb, "revenue") == [source(tree / "report.pdf")]
    assert sources(kb, "marmalade") == [source(tree / "docs/page.html")]
    assert sources(kb, "forbidden") == [] and sources(kb, "clandestine") == []
    assert (kb.lexical_dir / "fingerprint.txt").is_file()
    assert report.summary().startswith("7 files, 7 ingested (") and ", 0 unchanged in " in report.summary()


def test_reingesting_unchanged_files_writes_nothing(tree: Path, kb: KnowledgeBase) -> None:
    ingest(kb, [tree], progress=False)
    files, records = kb.store.files(), chunks_of(kb)
    stamp = (kb.lexical_dir / "fingerprint.txt").stat().st_mtime_ns

    again = ingest(kb, [tree], progress=False)

    assert (again.files, again.ingested, again.chunks, again.skipped, again.failed) == (7, 0, 0, 7, [])
    assert kb.store.files() == files  # same ingested_at: no manifest entry was rewritten
    assert chunks_of(kb) == records  # nor any chunk
    assert (kb.lexical_dir / "fingerprint.txt").stat().st_mtime_ns == stamp


def test_a_changed_file_alone_is_reingested_and_its_old_chunks_are_gone(
    tree: Path, kb: KnowledgeBase
) -> None:
    ingest(kb, [tree], chunk_chars=200, overlap=50, progress=False)
    guide = source(tree / "docs/guide.md")
    before = chunks_of(kb)
    old_guide = [r for r in before.values() if r.metadata["source"] == guide]
    assert len(old_guide) >= 3 and sources(kb, "xylophone") == [guide]

    (tree / "docs/guide.md").write_text("# Guide\n\nNow it mentions a trombone instead.\n")
    report = ingest(kb, [tree], chunk_chars=200, overlap=50, progress=False)

    assert (report.ingested, report.skipped, report.chunks) == (1, 6, 1)
    after = chunks_of(kb)
    new_guide = [r for r in after.values() if r.metadata["source"] == guide]
    assert [r.id for r in new_guide] == [chunk_id(guide, 0)]
    assert not any("xylophone" in r.text for r in after.values())
    assert sources(kb, "xylophone") == [] and sources(kb, "trombone") == [guide]
    assert {rid: r for rid, r in after.items() if r.metadata["source"] != guide} == {
        rid: r for rid, r in before.items() if r.metadata["source"] != guide
    }
    entry = kb.store.files()[guide]
    assert (entry.sha256, entry.chunks) == (
        hashlib.sha256((tree / "docs/guide.md").read_bytes()).hexdigest(),
        1,
    )


def test_deleted_files_are_pruned_only_when_asked_and_only_under_the_given_folders(
    tree: Path, tmp_path: Path, kb: KnowledgeBase
) -> None:
    sibling = tmp_path / "tree2"  # shares a prefix with tree, but is not under it
    sibling.mkdir()
    (sibling / "other.md").write_text("# Other\n\nAn okapi in the forest.\n")
    ingest(kb, [tree, sibling], progress=False)
    notes, app, other = (
        source(tree / "docs/notes.txt"),
        source(tree / "src/app.py"),
        source(sibling / "other.md"),
    )
    (tree / "docs/notes.txt").unlink()

    kept = ingest(kb, [tree], progress=False)
    assert (kept.files, kept.pruned) == (6, 0)
    assert notes in kb.store.files() and sources(kb, "quokka") == [notes]

    (tree / ".tesseraignore").write_text("drafts/\nsrc/\n")  # app.py is now ignored
    pruned = ingest(kb, [tree], prune=True, progress=False)

    assert (pruned.files, pruned.pruned, pruned.ingested) == (5, 2, 0)
    files = kb.store.files()
    assert notes not in files and app not in files and other in files
    assert not any(r.metadata["source"] in (notes, app) for r in kb.store.records())
    assert sources(kb, "quokka") == [] and sources(kb, "walrus") == [] and sources(kb, "okapi") == [other]
    assert kb.store.count() == sum(entry.chunks for entry in files.values())


def test_bad_files_are_reported_and_skipped_and_nothing_stored_is_lost(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nThe albatross glides for hours.\n")
    (docs / "latin.txt").write_bytes("Café crème, s'il vous plaît.".encode("latin-1"))
    plain = docs / "plain.pdf"
    plain.write_bytes(text_pdf([["A secret ledger."]]))
    encrypted_copy(plain, docs / "locked.pdf", user_password="secret")
    plain.unlink()
    blob = tmp_path / "blob.dat"
    blob.write_bytes(b"header\x00\x01\x02binary")
    errors: list[tuple[str, str]] = []

    report = ingest(kb, [docs, blob], progress=False, on_error=lambda s, r: errors.append((s, r)))

    expected = {"blob.dat": "binary file", "latin.txt": "not UTF-8 text", "locked.pdf": "encrypted pdf"}
    assert {Path(s).name: reason for s, reason in errors} == expected
    assert {Path(s).name: reason for s, reason in report.failed} == expected
    assert {s for s, _ in report.failed} == {
        source(blob),
        source(docs / "latin.txt"),
        source(docs / "locked.pdf"),
    }
    assert (report.files, report.ingested, report.skipped) == (4, 1, 0)
    good = source(docs / "good.md")
    assert list(kb.store.files()) == [good] and sources(kb, "albatross") == [good]
    records = chunks_of(kb)

    (docs / "good.md").write_bytes("# Good\n\nNow in latin-1: déjà vu.\n".encode("latin-1"))
    errors.clear()
    broken = ingest(kb, [docs], prune=True, progress=False, on_error=lambda s, r: errors.append((s, r)))

    assert {Path(s).name: reason for s, reason in errors} == {
        "good.md": "not UTF-8 text",
        "latin.txt": "not UTF-8 text",
        "locked.pdf": "encrypted pdf",
    }
    assert (broken.ingested, broken.pruned, len(broken.failed)) == (0, 0, 3)
    assert chunks_of(kb) == records and sources(kb, "albatross") == [good]
    assert kb.store.files()[good].sha256 != hashlib.sha256((docs / "good.md").read_bytes()).hexdigest()

    (docs / "latin.txt").write_text("Café crème, now in UTF-8.\n")
    fixed = ingest(kb, [docs], progress=False, on_error=lambda s, r: None)
    assert (fixed.ingested, len(fixed.failed)) == (1, 2)
    assert sources(kb, "crème") == [source(docs / "latin.txt")]


# --- the CLI ----------------------------------------------------------------------------------------------------


def test_cli_ingest_prints_a_json_summary_and_no_progress_bar_when_quiet(tree: Path, tmp_path: Path) -> None:
    team = write_team(tmp_path / "team.yaml", DEMO)
    noisy = {"TESSERA_QUIET": "0"}

    out = run_cli("ingest", str(tree), "--team", str(team), "--json", env=noisy)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    data = json.loads(out.stdout)
    assert set(data) == {"files", "ingested", "chunks", "skipped", "pruned", "failed", "seconds"}
    assert (data["files"], data["ingested"], data["skipped"], data["pruned"], data["failed"]) == (
        7,
        7,
        0,
        0,
        [],
    )
    assert data["chunks"] >= 7 and 0 < data["seconds"] < 60

    quiet = run_cli("ingest", str(tree), "--team", str(team), "-q", env=noisy)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert re.fullmatch(r"7 files, 0 ingested \(0 chunks\), 7 unchanged in \d+\.\ds\n", quiet.stdout)

    (tree / "docs/notes.txt").write_text("Notes\n=====\n\nThe quokka moved.\n")
    shown = run_cli("ingest", str(tree), "--team", str(team), env=noisy)
    assert shown.returncode == 0
    assert shown.stderr == ""  # stderr is a pipe, not a terminal: no tqdm bar
    assert shown.stdout.startswith("7 files, 1 ingested (1 chunk), 6 unchanged in ")


def test_cli_ingest_draws_its_bar_only_on_a_terminal(tree: Path, tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    team = write_team(tmp_path / "team.yaml", DEMO)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # tqdm draws nothing in 0 cols
    with subprocess.Popen(
        [sys.executable, "-m", "tessera.cli", "ingest", str(tree), "--team", str(team)],
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "TESSERA_QUIET": "0"},
        cwd=REPO,
    ) as proc:
        os.close(slave)
        terminal = b""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            terminal += data
        assert proc.wait(timeout=60) == 0
    os.close(master)
    assert b"ingest:" in terminal and b"file" in terminal  # the tqdm bar


def test_cli_ingest_of_only_bad_files_fails_naming_each(tmp_path: Path) -> None:
    team = write_team(tmp_path / "team.yaml", DEMO)
    blob = tmp_path / "blob.dat"
    blob.write_bytes(b"\x00\x01\x02")
    out = run_cli("ingest", str(blob), "--team", str(team), "-q")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"skipped {source(blob)}: binary file"]
    assert out.stdout.startswith("1 file, 0 ingested (0 chunks), 0 unchanged, 1 failed in ")


@pytest.fixture
def searchable(tree: Path, tmp_path: Path) -> Path:
    """A team whose knowledge base holds :data:`TREE`, cut small so the guide has several chunks."""
    team = write_team(
        tmp_path / "team.yaml", DEMO, memory={"long_term": False, "chunk_chars": 200, "chunk_overlap": 0}
    )
    out = run_cli("ingest", str(tree), "--team", str(team), "-q")
    assert out.returncode == 0, out.stderr
    return team


def test_cli_search_json_ranks_chunks_with_their_citations(searchable: Path, tree: Path) -> None:
    out = run_cli("search", "configuration file", "--team", str(searchable), "--json", "-k", "3")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [row["rank"] for row in rows] == [1, 2, 3]
    assert [row["score"] for row in rows] == sorted((row["score"] for row in rows), reverse=True)
    guide = tree / "docs/guide.md"
    lines = guide.read_text().split("\n")
    for row in rows:
        assert row["citation"] == f"{row['source']}:{row['location']}"  # tmp_path is not under the cwd
        assert "configuration" in row["text"].lower()
        if row["source"] == source(guide):
            start, _, end = row["location"].partition("-")
            assert row["text"] == "\n".join(lines[int(start) - 1 : int(end or start)])
    assert {Path(row["source"]).name for row in rows} == {"guide.md", "app.py"}


def test_cli_search_citations_are_relative_to_the_working_directory(searchable: Path, tree: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tessera.cli", "search", "xylophone", "--team", str(searchable), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["source"] == source(tree / "docs/guide.md")
    assert re.fullmatch(r"docs/guide\.md:\d+-\d+", row["citation"]), row["citation"]
    assert row["citation"] == f"docs/guide.md:{row['location']}"


def test_cli_search_where_filters_on_metadata(searchable: Path) -> None:
    everything = json.loads(run_cli("search", "configuration", "--team", str(searchable), "--json").stdout)
    assert {Path(row["source"]).suffix for row in everything} == {".md", ".py"}
    out = run_cli(
        "search", "configuration", "--team", str(searchable), "--json", "--where", '{"kind": "code"}'
    )
    assert out.returncode == 0, out.stderr
    code = json.loads(out.stdout)
    assert code and {Path(row["source"]).name for row in code} == {"app.py"}
    nothing = run_cli("search", "configuration", "--team", str(searchable), "--where", '{"kind": "pdf"}')
    assert nothing.returncode == 0 and nothing.stdout == "" and "no relevant chunks" in nothing.stderr


def test_cli_search_on_an_empty_knowledge_base_says_to_ingest(tmp_path: Path) -> None:
    team = write_team(tmp_path / "team.yaml", DEMO)
    out = run_cli("search", "configuration", "--team", str(team))
    assert out.returncode == 0 and out.stdout == ""
    assert (
        out.stderr.strip()
        == f"the knowledge base is empty; add documents first: tessera ingest PATH --team {team}"
    )


@pytest.mark.parametrize("where", ["{bad json", "[1, 2]"])
def test_cli_search_bad_where_exits_2_naming_it(searchable: Path, where: str) -> None:
    out = run_cli("search", "configuration", "--team", str(searchable), "--where", where)
    assert out.returncode == 2 and out.stdout == ""
    assert "Traceback" not in out.stderr
    assert "--where" in out.stderr.strip().splitlines()[-1]


def test_cli_search_bad_where_is_a_one_line_error(searchable: Path) -> None:
    out = run_cli("search", "configuration", "--team", str(searchable), "--where", "{bad json")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
