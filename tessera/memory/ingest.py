"""``tessera ingest``: files and folders into the knowledge base, incrementally and crash-safely.

A file whose bytes hash to what the store already holds is skipped without being parsed. A changed file
replaces all its old chunks. With ``prune``, files under the given folders that are gone (or now ignored)
are removed. A bad file (binary, undecodable, encrypted pdf) is reported and skipped; the rest goes on and
nothing already stored is touched. See :mod:`tessera.memory.store` for why a killed ingest can simply be
run again.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tessera._words import plural
from tessera.memory.chunking import chunk
from tessera.memory.knowledge import KnowledgeBase, display_source
from tessera.memory.loaders import DEFAULT_IGNORE, BadFile, discover, load
from tessera.memory.store import Metadata

__all__ = ["IngestReport", "ingest"]

BATCH_FILES = 64
BATCH_CHUNKS = 512
"""Files are written to the store in batches of this many files or chunks, whichever comes first."""


@dataclass
class IngestReport:
    """What one ingest did."""

    files: int = 0
    ingested: int = 0
    chunks: int = 0
    skipped: int = 0
    pruned: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the end of ``tessera ingest``."""
        parts = [
            plural(self.files, "file"),
            f"{self.ingested} ingested ({plural(self.chunks, 'chunk')})",
            f"{self.skipped} unchanged",
        ]
        if self.pruned:
            parts.append(f"{self.pruned} pruned")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts) + f" in {self.seconds:.1f}s"


def ingest(
    kb: KnowledgeBase,
    paths: Sequence[Path],
    *,
    prune: bool = False,
    ignore: Sequence[str] = (),
    chunk_chars: int = 1500,
    overlap: int = 200,
    progress: bool = True,
    on_error: Callable[[str, str], None] | None = None,
) -> IngestReport:
    """Ingest ``paths`` (files or folders) into ``kb``, which must be opened as the writer."""
    start = time.perf_counter()
    report = IngestReport()
    roots = [p.expanduser().resolve() for p in paths]
    files = list(discover(roots, [*DEFAULT_IGNORE, *ignore]))
    known = kb.store.files()
    seen: set[str] = set()
    report_error = on_error or _print_error
    bar = _bar(len(files), progress)
    pending: list[tuple[str, str, list[tuple[str, Metadata]]]] = []

    def flush() -> None:
        kb.store.replace_files(pending)
        report.ingested += len(pending)
        report.chunks += sum(len(chunks) for _, _, chunks in pending)
        pending.clear()

    try:
        for path in files:
            source = path.resolve().as_posix()
            seen.add(source)
            report.files += 1
            bar.set_postfix_str(path.name[-30:], refresh=False)
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                entry = known.get(source)
                if entry is not None and entry.sha256 == digest:
                    report.skipped += 1
                    continue
                doc = load(path)
                pieces = chunk(doc, max_chars=chunk_chars, overlap=overlap)
            except (BadFile, OSError) as exc:
                report.failed.append((source, _reason(exc)))
                report_error(display_source(source), _reason(exc))
                continue
            finally:
                bar.update(1)
            pending.append((source, digest, [(p.text, _metadata(p, doc.kind, doc.format)) for p in pieces]))
            if len(pending) >= BATCH_FILES or sum(len(c) for _, _, c in pending) >= BATCH_CHUNKS:
                flush()
        flush()
        if prune:
            report.pruned = _prune(kb, roots, known, seen)
    finally:
        bar.close()
        if report.ingested or report.pruned or not kb.lexical_dir.exists():
            kb.refresh()
    report.seconds = time.perf_counter() - start
    return report


def _prune(kb: KnowledgeBase, roots: list[Path], known: Mapping[str, object], seen: set[str]) -> int:
    prefixes = [r.as_posix().rstrip("/") + "/" for r in roots if r.is_dir()]
    singles = {r.as_posix() for r in roots if not r.is_dir()}
    gone = [
        source
        for source in known
        if source not in seen and (source in singles or any(source.startswith(p) for p in prefixes))
    ]
    kb.store.remove_files(gone)
    return len(gone)


def _metadata(piece: object, kind: str, fmt: str) -> Metadata:
    meta: Metadata = {"kind": kind, "format": fmt, "location": str(getattr(piece, "location", ""))}
    for key in ("start_line", "end_line", "page", "heading"):
        value = getattr(piece, key, None)
        if value is not None:
            meta[key] = value
    return meta


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _print_error(source: str, reason: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"skipped {source}: {reason}", file=sys.stderr)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, show: bool) -> _NoBar:
    from tessera._progress import show_progress

    if not (show and show_progress()):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="ingest", unit="file", file=sys.stderr, leave=False)  # type: ignore[no-any-return]
