"""The knowledge store on real Chroma: one writer at a time, read-only readers, whole-file replacement,
reopening (in this process and a fresh one), embedder checks, and the bm25s index rebuilt from Chroma."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tessera.errors import UserError
from tessera.memory._lock import StoreLockedError
from tessera.memory.embedder import Embedder
from tessera.memory.ingest import ingest
from tessera.memory.knowledge import KnowledgeBase
from tessera.memory.store import FileEntry, KnowledgeStore, Metadata, Record, chunk_id
from tests.conftest import REPO, run_cli, write_team
from tests.memory.test_loaders import text_pdf

DEMO = {"demo": {"backend": "function", "callable": "tessera.testing.demo:planner"}}

HOLDER = """
import sys, time
from pathlib import Path
from tessera.memory.store import KnowledgeStore

store = KnowledgeStore(Path(sys.argv[1]), "knowledge", writer=True)
store.replace_file("/held/notes.md", "f" * 64, [("the lighthouse keeper logs every storm", {"location": "1"})])
print("ready", flush=True)
time.sleep(300)
"""

DUMP = """
import json, sys
from pathlib import Path
from tessera.memory.store import KnowledgeStore

with KnowledgeStore(Path(sys.argv[1]), "knowledge") as store:
    files = {s: [e.sha256, e.chunks, e.ingested_at] for s, e in store.files().items()}
    records = sorted([r.id, r.text, r.metadata] for r in store.records())
print(json.dumps({"files": files, "records": records, "count": store.count()}))
"""


class HashEmbedder(Embedder):
    """A real, deterministic embedder: each word hashed into one of ``dim`` buckets, then normalized."""

    def __init__(self, name: str = "v1", dim: int = 16) -> None:
        self.id, self.spec, self.dim = f"hash:{name}", f"hash-{name}", dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vector = [0.0] * self.dim
            for word in text.lower().split():
                vector[zlib.crc32(word.encode()) % self.dim] += 1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            out.append([x / norm for x in vector])
        return out


def pieces(*texts: str) -> list[tuple[str, Metadata]]:
    """Chunks for ``replace_file``: one line each, numbered from 1."""
    return [(text, {"location": str(n), "start_line": n, "end_line": n}) for n, text in enumerate(texts, 1)]


def snapshot(store: KnowledgeStore) -> tuple[dict[str, FileEntry], dict[str, tuple[str, Metadata]]]:
    """Everything a store holds: its manifest and its chunks by id."""
    return dict(store.files()), {r.id: (r.text, r.metadata) for r in store.records()}


def by_source(store: KnowledgeStore, source: str) -> list[Record]:
    return sorted((r for r in store.records() if r.metadata["source"] == source), key=lambda r: r.id)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "state" / "memory"


@pytest.fixture
def holder(root: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the writer lock on ``root`` (with one file stored), until SIGKILLed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


# --- one writer ----------------------------------------------------------------------------------------------


def test_a_second_writer_in_this_process_is_refused_until_the_first_closes(root: Path) -> None:
    first = KnowledgeStore(root, "knowledge", writer=True)
    with pytest.raises(StoreLockedError) as caught:
        KnowledgeStore(root, "knowledge", writer=True)
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message and "memory.chroma_url" in message
    assert str(root / "chroma") in message
    assert isinstance(caught.value, UserError)
    first.close()
    with KnowledgeStore(root, "knowledge", writer=True) as second:
        second.replace_file("/a.md", "a" * 64, pieces("after the first writer closed"))
        assert second.count() == 1


def test_a_writer_in_another_process_locks_out_this_one_and_the_cli_until_it_is_killed(
    root: Path, tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(StoreLockedError, match=rf"\(pid {holder.pid}\).*memory\.chroma_url"):
        KnowledgeStore(root, "knowledge", writer=True)

    team = write_team(tmp_path / "team.yaml", DEMO)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nsome text\n")
    out = run_cli("ingest", str(docs), "--team", str(team), "-q")
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"pid {holder.pid}" in lines[0] and "memory.chroma_url" in lines[0]
    assert out.stdout == ""

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with KnowledgeStore(root, "knowledge", writer=True) as store:  # the kernel dropped the flock
        assert (root / "chroma.lock").read_text() == str(os.getpid())
        assert set(store.files()) == {"/held/notes.md"}  # what the holder wrote is kept
    out = run_cli("ingest", str(docs), "--team", str(team), "-q")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1 file, 1 ingested")


def test_readers_work_while_another_process_writes(
    root: Path, tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with KnowledgeStore(root, "knowledge") as store:
        assert set(store.files()) == {"/held/notes.md"}
        assert [r.text for r in store.records()] == ["the lighthouse keeper logs every storm"]
    with KnowledgeBase(root, "knowledge") as kb:
        assert [h.source for h in kb.search("lighthouse storm")] == ["/held/notes.md"]
    team = write_team(tmp_path / "team.yaml", DEMO)
    out = run_cli("search", "lighthouse", "--team", str(team), "--json")
    assert out.returncode == 0, out.stderr
    assert [row["source"] for row in json.loads(out.stdout)] == ["/held/notes.md"]
    assert holder.poll() is None


def test_a_read_only_store_refuses_every_write(root: Path) -> None:
    with KnowledgeStore(root, "knowledge", writer=True) as store:
        store.replace_file("/a.md", "a" * 64, pieces("kept as it was"))
    reader = KnowledgeStore(root, "knowledge")
    before = snapshot(reader)
    writes = [
        lambda: reader.replace_file("/b.md", "b" * 64, pieces("never stored")),
        lambda: reader.replace_files([("/b.md", "b" * 64, pieces("never stored"))]),
        lambda: reader.remove_files(["/a.md"]),
        reader.reset,
    ]
    for write in writes:
        with pytest.raises(UserError, match="read-only"):
            write()
    assert snapshot(reader) == before
    with KnowledgeStore(root, "knowledge", writer=True) as writer:  # the reader holds no lock
        writer.replace_file("/b.md", "b" * 64, pieces("stored by the writer"))
    assert set(reader.files()) == {"/a.md", "/b.md"}
    reader.close()


# --- replacing files -----------------------------------------------------------------------------------------


def test_replace_file_replaces_every_old_chunk(root: Path) -> None:
    with KnowledgeStore(root, "knowledge", writer=True) as store:
        store.replace_file("/keep.md", "k" * 64, pieces("a neighbour that stays"))
        store.replace_file("/doc.md", "1" * 64, pieces(*(f"old line {n}" for n in range(5))))
        assert [r.id for r in by_source(store, "/doc.md")] == [chunk_id("/doc.md", i) for i in range(5)]
        neighbour = by_source(store, "/keep.md")

        store.replace_file("/doc.md", "2" * 64, pieces("new first", "new second"))

        new = by_source(store, "/doc.md")
        assert [r.id for r in new] == [chunk_id("/doc.md", 0), chunk_id("/doc.md", 1)]
        assert [r.text for r in new] == ["new first", "new second"]
        assert {r.metadata["file_sha256"] for r in new} == {"2" * 64}
        assert [r.metadata["chunk"] for r in new] == [0, 1]
        assert not any("old line" in r.text for r in store.records())
        assert store.count() == 3
        entry = store.files()["/doc.md"]
        assert (entry.sha256, entry.chunks) == ("2" * 64, 2)
        assert by_source(store, "/keep.md") == neighbour


def test_replace_files_with_no_chunks_records_an_empty_file(root: Path) -> None:
    with KnowledgeStore(root, "knowledge", writer=True) as store:
        store.replace_file("/empty.md", "e" * 64, [])
        store.replace_files([("/a.md", "a" * 64, pieces("one")), ("/b.md", "b" * 64, [])])
        assert {s: e.chunks for s, e in store.files().items()} == {"/empty.md": 0, "/a.md": 1, "/b.md": 0}
        assert store.count() == 1
        store.remove_files(["/a.md", "/empty.md"])
        assert set(store.files()) == {"/b.md"} and store.count() == 0


def test_every_ingested_chunk_carries_its_metadata(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    guide = docs / "guide.md"
    sections = [
        f"## Part {n}\n\n" + "\n".join(f"Line {n}.{i} of the guide." for i in range(30)) for n in range(4)
    ]
    guide.write_text("# Guide\n\n" + "\n\n".join(sections) + "\n")
    report_pdf = docs / "report.pdf"
    report_pdf.write_bytes(text_pdf([["Revenue grew by ten percent."], ["The outlook is stable."]]))
    started = time.time()
    with KnowledgeBase(tmp_path / "memory", "knowledge", writer=True) as kb:
        ingest(kb, [docs], chunk_chars=400, overlap=100, progress=False)
        records = list(kb.store.records())
    finished = time.time()

    lines = guide.read_text().split("\n")
    text_chunks = [r for r in records if r.metadata["source"] == guide.resolve().as_posix()]
    pdf_chunks = [r for r in records if r.metadata["source"] == report_pdf.resolve().as_posix()]
    assert len(text_chunks) > 3 and len(pdf_chunks) == 2
    assert len(text_chunks) + len(pdf_chunks) == len(records)
    for record, path in [*((r, guide) for r in text_chunks), *((r, report_pdf) for r in pdf_chunks)]:
        meta = record.metadata
        assert meta["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert meta["sha256"] == hashlib.sha256(record.text.encode()).hexdigest()
        assert started <= float(meta["ingested_at"]) <= finished
        assert record.id == chunk_id(str(meta["source"]), int(meta["chunk"]))
    for record in text_chunks:
        meta = record.metadata
        start, end = int(meta["start_line"]), int(meta["end_line"])
        assert meta["location"] == (f"{start}-{end}" if end != start else str(start))
        assert record.text == "\n".join(lines[start - 1 : end])
        assert (meta["kind"], meta["format"]) == ("prose", "markdown") and "page" not in meta
    assert sorted(int(r.metadata["page"]) for r in pdf_chunks) == [1, 2]
    for record in pdf_chunks:
        assert record.metadata["location"] == f"p{record.metadata['page']}"
        assert "start_line" not in record.metadata and record.metadata["kind"] == "pdf"


# --- reopening ----------------------------------------------------------------------------------------------


def test_a_reopened_store_sees_the_same_files_and_records_here_and_in_a_fresh_process(root: Path) -> None:
    with KnowledgeStore(root, "knowledge", writer=True) as store:
        store.replace_files(
            [
                (f"/docs/{n}.md", f"{n}" * 64, pieces(*(f"file {n} line {i}" for i in range(n + 1))))
                for n in range(5)
            ]
        )
        store.remove_files(["/docs/2.md"])
        files, records = snapshot(store)
    assert len(files) == 4 and len(records) == 1 + 2 + 4 + 5

    with KnowledgeStore(root, "knowledge") as again:
        assert snapshot(again) == (files, records)
        assert again.count() == len(records)

    out = subprocess.run(
        [sys.executable, "-c", DUMP, str(root)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    fresh = json.loads(out.stdout)
    assert fresh["count"] == len(records)
    assert fresh["files"] == {s: [e.sha256, e.chunks, e.ingested_at] for s, e in files.items()}
    assert fresh["records"] == sorted([rid, text, meta] for rid, (text, meta) in records.items())


def test_a_collection_reopened_with_another_embedder_is_refused(root: Path) -> None:
    with KnowledgeStore(root, "knowledge", writer=True) as store:
        store.replace_file("/a.md", "a" * 64, pieces("lexical only"))
    with pytest.raises(UserError, match=r"was embedded with 'none', not 'hash:v1'.*--reset"):
        KnowledgeStore(root, "knowledge", embedder=HashEmbedder())
    with KnowledgeStore(root, "knowledge") as same:
        assert same.count() == 1
        with pytest.raises(UserError, match="no embedder, so dense retrieval is unavailable"):
            same.dense("lexical", 3)

    with KnowledgeStore(root, "dense", embedder=HashEmbedder(), writer=True) as store:
        store.replace_file("/b.md", "b" * 64, pieces("river stones", "mountain goats"))
    with pytest.raises(UserError, match=r"was embedded with 'hash:v1', not 'hash:v2'"):
        KnowledgeStore(root, "dense", embedder=HashEmbedder("v2"))
    with pytest.raises(UserError, match=r"was embedded with 'hash:v1', not 'none'"):
        KnowledgeStore(root, "dense")
    with KnowledgeStore(root, "dense", embedder=HashEmbedder()) as same:
        (best, similarity), _ = same.dense("mountain goats", 2)
        assert best.text == "mountain goats" and similarity == pytest.approx(1.0, abs=1e-5)


def test_an_empty_collection_made_without_an_embedder_can_be_filled_by_one(root: Path) -> None:
    KnowledgeStore(root, "knowledge").close()  # a reader (say `tessera search`) came first
    with KnowledgeStore(root, "knowledge", embedder=HashEmbedder(), writer=True) as store:
        store.replace_file("/b.md", "b" * 64, pieces("river stones", "mountain goats"))
    with KnowledgeStore(root, "knowledge", embedder=HashEmbedder()) as again:
        assert again.dense("river stones", 1)[0][0].text == "river stones"
    with pytest.raises(UserError, match=r"was embedded with 'hash:v1', not 'none'"):
        KnowledgeStore(root, "knowledge")


def test_an_emptied_collection_can_change_embedder(root: Path) -> None:
    with KnowledgeStore(root, "knowledge", embedder=HashEmbedder(dim=16), writer=True) as store:
        store.replace_file("/a.md", "a" * 64, pieces("sixteen dimensions"))
        store.remove_files(["/a.md"])
    with KnowledgeStore(root, "knowledge", embedder=HashEmbedder("v2", dim=8), writer=True) as store:
        store.replace_file("/a.md", "a" * 64, pieces("eight dimensions"))
        assert store.dense("eight dimensions", 1)[0][0].text == "eight dimensions"


# --- the lexical index ----------------------------------------------------------------------------------------


def ranked(kb: KnowledgeBase, query: str) -> list[tuple[str, float]]:
    return [(hit.record.id, round(hit.score, 6)) for hit in kb.search(query, 10)]


@pytest.fixture
def filled(root: Path) -> Path:
    """A store with a few files and a saved lexical index."""
    with KnowledgeBase(root, "knowledge", writer=True) as kb:
        kb.store.replace_files(
            [
                ("/notes/tides.md", "1" * 64, pieces("tides follow the moon", "spring tides are high")),
                ("/notes/storms.md", "2" * 64, pieces("storms push the tides higher", "wind and rain")),
                ("/notes/birds.md", "3" * 64, pieces("gulls follow the fishing boats")),
            ]
        )
        kb.refresh()
    return root


def test_a_deleted_lexical_index_is_rebuilt_from_chroma_with_the_same_results(filled: Path) -> None:
    queries = ["tides moon", "follow", "wind", "no such words here"]
    with KnowledgeBase(filled, "knowledge") as kb:
        lexical_dir = kb.lexical_dir
        before = [ranked(kb, q) for q in queries]
    assert [len(r) for r in before] == [3, 2, 1, 0]

    shutil.rmtree(lexical_dir)
    with KnowledgeBase(filled, "knowledge") as reader:
        assert [ranked(reader, q) for q in queries] == before
    assert not lexical_dir.exists()  # a reader does not write it
    with KnowledgeBase(filled, "knowledge", writer=True) as writer:
        assert [ranked(writer, q) for q in queries] == before
    assert (lexical_dir / "fingerprint.txt").is_file()
    with KnowledgeBase(filled, "knowledge") as reader:
        assert [ranked(reader, q) for q in queries] == before


def test_a_stale_lexical_index_is_rebuilt_when_another_writer_added_a_file(filled: Path) -> None:
    with KnowledgeBase(filled, "knowledge") as kb:
        lexical_dir = kb.lexical_dir
        saved = (lexical_dir / "fingerprint.txt").read_text()
        assert kb.search("lighthouse") == []
    with KnowledgeStore(filled, "knowledge", writer=True) as other:  # writes, but leaves the index alone
        other.replace_file("/notes/light.md", "4" * 64, pieces("the lighthouse guides boats past the tides"))
    assert (lexical_dir / "fingerprint.txt").read_text() == saved

    with KnowledgeBase(filled, "knowledge", writer=True) as kb:
        assert [h.source for h in kb.search("lighthouse")] == ["/notes/light.md"]
        assert {h.source for h in kb.search("tides")} == {
            "/notes/tides.md",
            "/notes/storms.md",
            "/notes/light.md",
        }
        rebuilt = ranked(kb, "tides boats")
    assert (lexical_dir / "fingerprint.txt").read_text() != saved
    with KnowledgeBase(filled, "knowledge") as reader:  # loads what the writer saved
        assert ranked(reader, "tides boats") == rebuilt


def test_a_long_lived_reader_sees_what_a_writer_ingests(filled: Path, tmp_path: Path) -> None:
    reader = KnowledgeBase(filled, "knowledge")
    assert reader.search("heron") == []
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "heron.md").write_text("# Herons\n\nA heron waits in the shallows.\n")
    with KnowledgeBase(filled, "knowledge", writer=True) as writer:
        ingest(writer, [docs], progress=False)
    assert [h.source for h in reader.search("heron")] == [(docs / "heron.md").resolve().as_posix()]
    reader.close()
