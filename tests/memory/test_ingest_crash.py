"""Crash safety: a SIGKILLed ingest, run again, stores every file exactly once; a torn index is repaired."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from tessera.memory.ingest import IngestReport
from tessera.memory.knowledge import KnowledgeBase
from tessera.memory.store import KnowledgeStore, chunk_id
from tests.conftest import REPO, write_team
from tests.memory.test_ingest import source

DEMO = {"demo": {"backend": "function", "callable": "tessera.testing.demo:planner"}}


CORPUS_FILES = 3000
WORDS = (
    "alpha beta gamma delta omega river stone cloud maple ember frost harbor lantern meadow quartz".split()
)


def marker(n: int) -> str:
    """A word found in file ``n`` alone."""
    return f"mark{n:05d}q"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:data:`CORPUS_FILES` small files in 40 folders: some empty, most one chunk, some several."""
    rng = random.Random(20240611)
    root = tmp_path_factory.mktemp("corpus")
    for n in range(CORPUS_FILES):
        folder = root / f"part{n % 40:02d}"
        folder.mkdir(exist_ok=True)
        suffix = ".md" if n % 3 else ".txt"
        if n % 250 == 7:
            (folder / f"f{n:05d}{suffix}").write_text("")
            continue
        paragraphs = [f"# File {n}", f"The unique word {marker(n)} is here."]
        for _ in range(rng.choice([1, 1, 1, 2, 3, 6, 14])):
            paragraphs.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60))) + ".")
        (folder / f"f{n:05d}{suffix}").write_text("\n\n".join(paragraphs) + "\n")
    return root


def verify_stored_exactly_once(store: KnowledgeStore, folder: Path) -> None:
    """Every file under ``folder`` has a manifest entry with its sha256 and exactly the chunks it lists."""
    files = store.files()
    on_disk = {source(p): p for p in folder.rglob("*.*")}
    assert set(files) == set(on_disk)
    ids: dict[str, set[str]] = {}
    pairs: Counter[tuple[str, int]] = Counter()
    total = 0
    for record in store.records():
        src, index = str(record.metadata["source"]), int(record.metadata["chunk"])
        assert record.id == chunk_id(src, index)
        assert record.metadata["file_sha256"] == files[src].sha256
        ids.setdefault(src, set()).add(record.id)
        pairs[(src, index)] += 1
        total += 1
    assert [pair for pair, seen in pairs.items() if seen > 1] == []
    assert total == store.count() == sum(entry.chunks for entry in files.values())
    for src, entry in files.items():
        assert ids.get(src, set()) == {chunk_id(src, i) for i in range(entry.chunks)}, src
        assert entry.sha256 == hashlib.sha256(on_disk[src].read_bytes()).hexdigest(), src


def kill_once_grown(command: list[str], database: Path, grow_by: int) -> None:
    """Run ``command`` and SIGKILL it once the Chroma database has grown by ``grow_by`` bytes."""
    start = database.stat().st_size if database.exists() else 0
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (database.exists() and database.stat().st_size >= start + grow_by):
        if proc.poll() is not None:
            stdout, stderr = proc.communicate()
            pytest.fail(f"it finished before the kill: {stdout}{stderr}")
        assert time.monotonic() < deadline, "the ingest never wrote enough"
        time.sleep(0.005)
    time.sleep(random.uniform(0, 0.2))  # about one batch of files: land anywhere in it
    proc.send_signal(signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL and stdout == ""  # no summary line: it did not finish


def manifest_size(memory: Path) -> int:
    with KnowledgeStore(memory, "knowledge") as store:
        return len(store.files())


@pytest.mark.slow
@pytest.mark.parametrize(
    "kills",
    [[1_500_000], [10_000_000], [1_000_000] * 5],
    ids=["once-early", "once-late", "five-times"],
)
def test_an_ingest_killed_mid_way_and_run_again_stores_every_file_exactly_once(
    corpus: Path, tmp_path: Path, kills: list[int]
) -> None:
    team = write_team(tmp_path / "team.yaml", DEMO)
    memory = tmp_path / "state" / "memory"
    command = [sys.executable, "-m", "tessera.cli", "ingest", str(corpus), "--team", str(team)]
    finished = 0
    for grow_by in kills:
        kill_once_grown([*command, "-q"], memory / "chroma" / "chroma.sqlite3", grow_by)
        assert not (memory / "lexical" / "knowledge").exists()
        # a fresh reader may not yet see the killed writer's last logged batch (Chroma applies its log
        # on the next write), so the counts seen here are lower bounds
        finished, before = manifest_size(memory), finished
        assert before <= finished < CORPUS_FILES

    again = subprocess.run([*command, "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    report = IngestReport(**json.loads(again.stdout))
    assert (report.files, report.failed) == (CORPUS_FILES, [])
    assert finished <= report.skipped < CORPUS_FILES
    assert report.ingested == CORPUS_FILES - report.skipped

    with KnowledgeBase(memory, "knowledge") as kb:
        verify_stored_exactly_once(kb.store, corpus)
        files = kb.store.files().values()
        assert sum(1 for entry in files if entry.chunks == 0) == len(range(7, CORPUS_FILES, 250))
        assert max(entry.chunks for entry in files) >= 3
        for n in random.sample(range(CORPUS_FILES), 40):
            hits = kb.search(marker(n), 3)
            if n % 250 == 7:
                assert hits == []
            else:
                assert [Path(hit.source).stem for hit in hits] == [f"f{n:05d}"], n


def vector_segment(chroma: Path, collection: str) -> Path:
    """The folder of a collection's HNSW files (Chroma's ``segments`` table names it)."""
    with closing(sqlite3.connect(f"file:{chroma / 'chroma.sqlite3'}?mode=ro", uri=True)) as db:
        (segment,) = db.execute(
            "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
            "WHERE s.scope = 'VECTOR' AND c.name = ?",
            (collection,),
        ).fetchone()
    return chroma / segment


@pytest.mark.slow
def test_ingest_recovers_from_a_torn_chroma_index(tmp_path: Path) -> None:
    """A kill while Chroma saves its HNSW files (every 1000 vectors: header, data, lengths, links, then the
    id map) leaves a new header, half the new data and the old rest. This builds exactly that from two real
    saves, then expects the next ingest to repair the store rather than fail on every write."""
    docs = tmp_path / "docs"
    docs.mkdir()
    team = write_team(tmp_path / "team.yaml", DEMO)
    command = [sys.executable, "-m", "tessera.cli", "ingest", str(docs), "--team", str(team)]
    chroma = tmp_path / "state" / "memory" / "chroma"

    def add_files(numbers: range) -> dict[str, bytes]:
        for n in numbers:
            (docs / f"f{n:04d}.md").write_text(f"# File {n}\n\nThe word {marker(n)} is here.\n")
        out = subprocess.run([*command, "-q"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        folder = vector_segment(chroma, "knowledge")
        return {f.name: f.read_bytes() for f in folder.iterdir()}

    old, new = add_files(range(1100)), add_files(range(1100, 2200))
    elements, stride = (struct.unpack_from("<Q", new["header.bin"], 4 + 8 * i)[0] for i in (2, 3))
    old_elements = struct.unpack_from("<Q", old["header.bin"], 4 + 8 * 2)[0]
    assert old_elements < elements
    folder = vector_segment(chroma, "knowledge")
    (folder / "header.bin").write_bytes(new["header.bin"])
    (folder / "data_level0.bin").write_bytes(
        new["data_level0.bin"][: (old_elements + elements) // 2 * stride]
    )
    for name in ("length.bin", "link_lists.bin", "index_metadata.pickle"):
        (folder / name).write_bytes(old[name])
    (docs / "f0001.md").write_text("# File 1\n\nChanged after the crash.\n")

    again = subprocess.run([*command, "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["ingested"] >= 1
    with KnowledgeBase(tmp_path / "state" / "memory", "knowledge") as kb:
        verify_stored_exactly_once(kb.store, docs)
        assert [Path(hit.source).name for hit in kb.search("changed after the crash")] == ["f0001.md"]
