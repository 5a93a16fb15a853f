"""Memory fixtures: a real sentence-transformers model built locally in seconds (nothing downloaded)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.memory.tiny_st import build_tiny_sentence_transformer

if TYPE_CHECKING:
    from tessera.memory.embedder import SentenceTransformerEmbedder


@contextmanager
def env_restored(name: str) -> Iterator[None]:
    """Put an environment variable back as it was (loading a local model sets HF_HUB_OFFLINE for good)."""
    before = os.environ.get(name)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@pytest.fixture(scope="session")
def tiny_st_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a tiny random-weight sentence-transformers model (64-d, mean pooling)."""
    pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers")
    with env_restored("HF_HUB_OFFLINE"):
        return build_tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "tiny-st")


@pytest.fixture(scope="session")
def st_embedder(tiny_st_model: Path) -> SentenceTransformerEmbedder:
    """The tiny model loaded once for the session."""
    from tessera.memory.embedder import SentenceTransformerEmbedder

    with env_restored("HF_HUB_OFFLINE"):
        return SentenceTransformerEmbedder(str(tiny_st_model))
