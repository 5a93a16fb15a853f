"""The knowledge store: chunks in a Chroma collection, plus a manifest of the files they came from.

Data lives under ``<state_dir>/memory/chroma`` (a ``PersistentClient``), or on a ``chroma run`` server
when ``memory.chroma_url`` is set. Each collection ``NAME`` has a companion ``NAME-files`` that records,
per source file, its sha256 and chunk count. A file's manifest entry is written only after all its chunks
are, and removed before they are touched, so a process killed mid-ingest leaves the file without an entry
and the next ingest replaces whatever half of it landed: every file ends up stored exactly once.

Embeddings are always computed here and passed to Chroma explicitly; the collection also carries Tessera's
registered embedding function, so a reopened collection never falls back to Chroma's default one (which
downloads a model). A lexical-only store (no embedder) holds 1-d placeholder vectors and refuses dense
queries.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tessera.errors import MissingDependencyError, UserError
from tessera.memory._lock import WriterLock

if TYPE_CHECKING:
    from tessera.memory.embedder import Embedder

__all__ = ["FileEntry", "KnowledgeStore", "Metadata", "Record", "chroma_client", "chunk_id"]

Metadata = dict[str, str | int | float | bool]
NO_EMBEDDER = "none"
_PAGE = 1000


@dataclass(frozen=True)
class Record:
    """One stored chunk: its id, text and metadata (source, location, hashes, ingested_at, ...)."""

    id: str
    text: str
    metadata: Metadata


@dataclass(frozen=True)
class FileEntry:
    """What the store knows of one ingested file."""

    source: str
    sha256: str
    chunks: int
    ingested_at: float


def chunk_id(source: str, index: int) -> str:
    """A chunk's id: stable for a source and position, so a re-add overwrites rather than duplicates."""
    return f"{hashlib.sha1(source.encode()).hexdigest()[:16]}:{index}"


class KnowledgeStore:
    """Chunks of ingested files in one Chroma collection (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        collection: str = "knowledge",
        *,
        embedder: Embedder | None = None,
        chroma_url: str | None = None,
        writer: bool = False,
    ) -> None:
        self.root = root
        self.name = collection
        self.embedder = embedder
        self.embedder_id = embedder.id if embedder is not None else NO_EMBEDDER
        self.chroma_url = chroma_url
        self._lock = WriterLock(root / "chroma") if writer and chroma_url is None else None
        if self._lock is not None:
            self._lock.acquire()
        try:
            self._client = chroma_client(root / "chroma", chroma_url)
            self._chunks = self._collection(collection, embedder)
            self._files = self._collection(f"{collection}-files", None)
        except BaseException:
            self.close()
            raise
        self._check_embedder()

    # -- reading ---------------------------------------------------------------------------------------

    def files(self) -> dict[str, FileEntry]:
        """Every completely ingested file, by source."""
        found: dict[str, FileEntry] = {}
        for ids, metas in self._pages(self._files, ["metadatas"]):
            for source, meta in zip(ids, metas, strict=True):
                found[source] = FileEntry(
                    source, str(meta["sha256"]), int(meta["chunks"]), float(meta["ingested_at"])
                )
        return found

    def records(self) -> Iterator[Record]:
        """Every stored chunk, a page at a time."""
        for ids, docs, metas in self._pages(self._chunks, ["documents", "metadatas"]):
            for rid, doc, meta in zip(ids, docs, metas, strict=True):
                yield Record(rid, doc or "", dict(meta or {}))

    def count(self) -> int:
        """How many chunks are stored."""
        return int(self._chunks.count())

    def fingerprint(self) -> str:
        """Changes whenever the set of stored files or their contents does (the lexical index keys on it)."""
        digest = hashlib.sha256()
        for entry in sorted(self.files().values(), key=lambda e: e.source):
            digest.update(f"{entry.source}\0{entry.sha256}\0{entry.chunks}\n".encode())
        return digest.hexdigest()[:32]

    def dense(self, query: str, n: int, where: dict[str, Any] | None = None) -> list[tuple[Record, float]]:
        """The ``n`` chunks nearest to ``query``, with cosine similarity, best first."""
        if self.embedder is None:
            raise UserError(
                f"knowledge base '{self.name}' has no embedder, so dense retrieval is unavailable; set "
                "memory.embedder or use memory.retrieval: lexical"
            )
        total = self.count()
        if total == 0 or n <= 0:
            return []
        query_embedder = getattr(self.embedder, "inner", self.embedder)  # no cache write per query
        vector = query_embedder.embed([query])[0]
        found = self._chunks.query(
            query_embeddings=[vector],
            n_results=min(n, total),
            where=where or None,
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for rid, doc, meta, dist in zip(
            found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0], strict=True
        ):
            hits.append((Record(rid, doc or "", dict(meta or {})), 1.0 - float(dist)))
        return hits

    # -- writing ---------------------------------------------------------------------------------------

    def replace_file(self, source: str, sha256: str, chunks: Sequence[tuple[str, Metadata]]) -> None:
        """Store ``chunks`` (text, metadata) as the whole content of ``source``, replacing what was there."""
        self.replace_files([(source, sha256, chunks)])

    def replace_files(self, files: Sequence[tuple[str, str, Sequence[tuple[str, Metadata]]]]) -> None:
        """:meth:`replace_file` for several files at once: a handful of Chroma writes instead of four each.

        Manifest entries go first and come back last, so a crash anywhere in between leaves these files
        unlisted, and the next ingest replaces them whole.
        """
        self._require_writer()
        if files:
            self._adopt_if_empty()
            self._repairing(self._replace_files, files)

    def _replace_files(self, files: Sequence[tuple[str, str, Sequence[tuple[str, Metadata]]]]) -> None:
        sources = [source for source, _, _ in files]
        self._files.delete(ids=sources)
        self._chunks.delete(where={"source": {"$in": sources}})
        now = time.time()
        ids: list[str] = []
        texts: list[str] = []
        metas: list[Metadata] = []
        for source, sha256, chunks in files:
            for i, (text, meta) in enumerate(chunks):
                ids.append(chunk_id(source, i))
                texts.append(text)
                metas.append(
                    {
                        **meta,
                        "source": source,
                        "file_sha256": sha256,
                        "sha256": hashlib.sha256(text.encode()).hexdigest(),
                        "ingested_at": now,
                        "chunk": i,
                    }
                )
        vectors = self._embed(texts)
        for start in range(0, len(ids), _PAGE):
            end = start + _PAGE
            self._chunks.add(
                ids=ids[start:end],
                documents=texts[start:end],
                embeddings=vectors[start:end],
                metadatas=metas[start:end],
            )
        self._files.add(
            ids=sources,
            documents=sources,
            embeddings=[[1.0]] * len(files),
            metadatas=[
                {"sha256": sha, "chunks": len(chunks), "ingested_at": now} for _, sha, chunks in files
            ],
        )

    def remove_files(self, sources: Sequence[str]) -> None:
        """Forget ``sources`` and their chunks."""
        self._require_writer()
        if sources:
            self._repairing(self._remove_files, list(sources))

    def _remove_files(self, sources: list[str]) -> None:
        self._files.delete(ids=sources)
        self._chunks.delete(where={"source": {"$in": sources}})

    def reset(self) -> None:
        """Drop the collection and its manifest (``tessera ingest --reset``)."""
        self._require_writer()
        for name in (self.name, f"{self.name}-files"):
            try:
                self._client.delete_collection(name)
            except Exception:  # chroma raises several types for a missing collection
                pass
        self._chunks = self._collection(self.name, self.embedder)
        self._files = self._collection(f"{self.name}-files", None)

    def close(self) -> None:
        """Release the writer lock."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> KnowledgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------

    def _collection(self, name: str, embedder: Embedder | None) -> Any:
        from tessera.memory._chroma_ef import embedding_function

        function = embedding_function(embedder.spec if embedder is not None else None, embedder)
        metadata = {"hnsw:space": "cosine", "tessera:embedder": self.embedder_id if embedder else NO_EMBEDDER}
        return self._client.get_or_create_collection(name, embedding_function=function, metadata=metadata)

    def _check_embedder(self) -> None:
        stored = (self._chunks.metadata or {}).get("tessera:embedder", NO_EMBEDDER)
        if stored != self.embedder_id and self.count() > 0:
            raise UserError(
                f"knowledge base '{self.name}' was embedded with {stored!r}, not {self.embedder_id!r}; "
                "re-ingest it with `tessera ingest PATH --reset`, or use another memory.collection"
            )

    def _adopt_if_empty(self) -> None:
        """Recreate an empty collection made for another embedder (by a reader, say) before writing to it.

        Otherwise it keeps the other embedder's label (and, once it held vectors, their size) for good.
        """
        if (self._chunks.metadata or {}).get("tessera:embedder", NO_EMBEDDER) == self.embedder_id:
            return
        self._check_embedder()  # raises unless it is still empty
        self._client.delete_collection(self.name)
        self._chunks = self._collection(self.name, self.embedder)

    def _repairing(self, write: Callable[[Any], None], arg: Any) -> None:
        """Run a write; if Chroma's vector index was torn by a killed writer, rebuild it and retry once."""
        try:
            write(arg)
        except Exception as exc:
            if not _torn_index(exc):
                raise
            self.repair()
            write(arg)

    def repair(self) -> None:
        """Rebuild both collections from the records Chroma keeps in SQLite.

        A writer killed while Chroma saves its HNSW files (every 1000 vectors) can leave them torn, after
        which every write fails. The records themselves are intact, and vectors come back from the
        embedding cache, so rebuilding loses nothing.
        """
        self._require_writer()
        print(
            f"{self.root}: rebuilding the vector index of '{self.name}' (a writer was killed)",
            file=sys.stderr,
        )
        for name, embedder in ((self.name, self.embedder), (f"{self.name}-files", None)):
            old = self._chunks if name == self.name else self._files
            rows = [
                row
                for page in self._pages(old, ["documents", "metadatas"])
                for row in zip(*page, strict=True)
            ]
            self._client.delete_collection(name)
            new = self._collection(name, embedder)
            for start in range(0, len(rows), _PAGE):
                ids, docs, metas = (list(column) for column in zip(*rows[start : start + _PAGE], strict=True))
                vectors = self._embed(docs) if embedder is not None else [[1.0]] * len(docs)
                new.add(ids=ids, documents=docs, embeddings=vectors, metadatas=metas)
            if name == self.name:
                self._chunks = new
            else:
                self._files = new

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if self.embedder is None:
            return [[1.0] for _ in texts]
        return self.embedder.embed(texts) if texts else []

    def _require_writer(self) -> None:
        if self._lock is None and self.chroma_url is None:
            raise UserError("this knowledge store was opened read-only")

    @staticmethod
    def _pages(collection: Any, include: list[str]) -> Iterator[tuple[Any, ...]]:
        offset = 0
        while True:
            page = collection.get(include=include, limit=_PAGE, offset=offset)
            if not page["ids"]:
                return
            yield (page["ids"], *(page[key] for key in include))
            offset += len(page["ids"])


def _torn_index(exc: Exception) -> bool:
    """Chroma's error for an HNSW index a killed writer left half-saved."""
    return type(exc).__name__ == "InternalError" and "hnsw" in str(exc).lower()


def chroma_client(path: Path, url: str | None) -> Any:
    """A Chroma client: persistent at ``path``, or over HTTP to ``url`` (telemetry off either way)."""
    try:
        import chromadb
        from chromadb.config import Settings
    except ImportError:
        raise MissingDependencyError("the knowledge base needs chromadb: pip install chromadb") from None
    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if url is None:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise UserError(f"memory.chroma_url: not a URL: {url!r}")
    try:
        return chromadb.HttpClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=settings,
        )
    except Exception as exc:  # connection errors come in many types
        raise UserError(f"memory.chroma_url: cannot reach {url}: {exc}") from None
