"""Tessera's Chroma embedding function, registered so a reopened collection rebuilds it from its config.

Chroma stores each collection's embedding function by name and config. Without one, ``get_collection``
and ``get_or_create_collection`` silently use Chroma's default function, which downloads a model; a
collection created with :class:`TesseraEmbeddingFunction` instead reopens with it (from ``{"spec": ...}``)
in any process that has imported this module, and the model loads only when something is embedded.

Chroma 1.5 keeps ``collection._embedding_function`` as its default function on such a reopened collection
but embeds with the one rebuilt from the stored config, and it rebuilds that on *every* ``add`` or
``query``. So loaded embedders are kept per spec for the life of the process: the rebuilt functions share
them instead of loading the model again each time.

A lexical-only knowledge base has no embedding model (spec ``None``): its collection holds a constant
1-d placeholder vector ``[1.0]`` per chunk. Dense search over placeholders is meaningless, and the store
refuses it.

Importing chromadb takes about a second, so this module is separate from :mod:`tessera.memory.embedder`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from tessera.memory.embedder import Embedder, load_embedder

__all__ = ["PLACEHOLDER", "TesseraEmbeddingFunction", "embedding_function"]

PLACEHOLDER = [1.0]
_LOADED: dict[str, Embedder] = {}
_LOADED_LOCK = threading.Lock()


@register_embedding_function
class TesseraEmbeddingFunction(EmbeddingFunction[Documents]):
    """Embeds documents with the Tessera embedder named by ``spec``, or placeholders when it is None.

    Args:
        spec: An embedder spec for :func:`~tessera.memory.embedder.load_embedder`, or None for a
            lexical-only collection.
        embedder: An already loaded embedder for ``spec``, shared from now on by every function built for
            ``spec`` in this process (rather than loading a second copy).
        cache_dir: Where a lazily loaded embedder caches its vectors (None: no cache).
    """

    def __init__(
        self, spec: str | None = None, *, embedder: Embedder | None = None, cache_dir: Path | None = None
    ) -> None:
        self.spec = spec
        self.cache_dir = cache_dir
        if spec is not None and embedder is not None:
            with _LOADED_LOCK:
                _LOADED[spec] = embedder

    def __call__(self, input: Documents) -> Embeddings:
        """One float32 vector per document: the embedder's, or ``[1.0]`` without one."""
        if self.spec is None:
            return [np.array(PLACEHOLDER, dtype=np.float32) for _ in input]
        vectors = self.embedder().embed(list(input))
        return [np.asarray(vector, dtype=np.float32) for vector in vectors]

    def embedder(self) -> Embedder:
        """The embedder for :attr:`spec`: the one already loaded in this process, else loaded now."""
        if self.spec is None:
            raise ValueError("a lexical-only collection has no embedder")
        with _LOADED_LOCK:
            embedder = _LOADED.get(self.spec)
            if embedder is None:
                embedder = load_embedder(self.spec, cache_dir=self.cache_dir)
                if embedder is None:
                    raise ValueError(f"embedder spec {self.spec!r} names no embedder")
                _LOADED[self.spec] = embedder
            return embedder

    @property
    def loaded(self) -> bool:
        """Whether :meth:`embedder` would return at once, without loading a model."""
        return self.spec is None or self.spec in _LOADED

    @staticmethod
    def name() -> str:
        """The name Chroma files this function under."""
        return "tessera"

    def get_config(self) -> dict[str, Any]:
        """What Chroma stores to rebuild this function: the spec only (no paths of this machine's cache)."""
        return {"spec": self.spec}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> TesseraEmbeddingFunction:
        """Rebuild from :meth:`get_config`'s output; cheap, since the model loads lazily."""
        spec = config.get("spec")
        return TesseraEmbeddingFunction(spec if isinstance(spec, str) else None)

    def default_space(self) -> Space:
        """Vectors are normalized, so cosine distance is the natural one."""
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        """On unit vectors all three spaces rank neighbours the same way."""
        return ["cosine", "ip", "l2"]


def embedding_function(
    spec: str | None, embedder: Embedder | None = None, cache_dir: Path | None = None
) -> TesseraEmbeddingFunction:
    """The embedding function for ``spec``, reusing ``embedder`` when it is already loaded.

    Args:
        spec: The embedder spec, or None for a lexical-only collection (placeholder vectors). When None
            but ``embedder`` is given, the embedder's own spec is used.
        embedder: An embedder already loaded for ``spec``.
        cache_dir: Where an embedder loaded later (by this function) caches its vectors.
    """
    if spec is None and embedder is not None:
        spec = embedder.spec
    return TesseraEmbeddingFunction(spec, embedder=embedder, cache_dir=cache_dir)
