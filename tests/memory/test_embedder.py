"""Embedders: a real local sentence-transformers model, llama.cpp on a tiny GGUF, the cache, Chroma."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from tessera.errors import ModelDownloadError, ModelLoadError
from tessera.memory.embedder import (
    CachedEmbedder,
    Embedder,
    LlamaCppEmbedder,
    SentenceTransformerEmbedder,
    load_embedder,
)
from tests.conftest import REPO

DOCS = [
    "chroma is a vector store for embeddings and documents",
    "the cat sat on the mat in the garden",
    "a bubblewrap sandbox limits processes memory and network",
    "the weather today is sunny with a light wind",
]


class CountingEmbedder(Embedder):
    """A real embedder (character-trigram hashing) that records every batch it is asked to embed."""

    def __init__(self, name: str = "count", dim: int = 16) -> None:
        self.id, self.spec, self.dim = f"count:{name}", name, dim
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            vector = [0.0] * self.dim
            for i in range(max(len(text) - 2, 1)):
                vector[zlib.crc32(text[i : i + 3].encode()) % self.dim] += 1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            out.append([x / norm for x in vector])
        return out


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _nearest(embedder: Embedder, query: str, docs: list[str]) -> str:
    q, *vectors = embedder.embed([query, *docs])
    return max(zip(docs, vectors, strict=True), key=lambda pair: _dot(q, pair[1]))[0]


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"} | env
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=full, cwd=REPO
    )


# --- sentence-transformers --------------------------------------------------------------------------


def test_local_folder_loads_fast_and_restores_hf_hub_offline(
    tiny_st_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    started = time.monotonic()
    embedder = SentenceTransformerEmbedder(str(tiny_st_model), threads=1)
    assert time.monotonic() - started < 5
    assert os.environ["HF_HUB_OFFLINE"] == "0"  # offline only for the load: later hub downloads still work
    assert embedder.id == f"st:{tiny_st_model.resolve()}"
    assert embedder.spec == str(tiny_st_model.resolve())
    assert embedder.dim == 64


def test_vectors_are_normalized_deterministic_and_sized(st_embedder: Embedder) -> None:
    vectors = st_embedder.embed(DOCS + [DOCS[0]])
    assert len(vectors) == len(DOCS) + 1
    assert all(len(v) == 64 and math.isclose(_dot(v, v), 1.0, rel_tol=1e-4) for v in vectors)
    assert vectors[0] == pytest.approx(vectors[-1], abs=1e-6)
    assert vectors[0] != pytest.approx(vectors[1], abs=1e-3)
    assert st_embedder.embed([]) == []


def test_shared_words_are_nearest(st_embedder: Embedder) -> None:
    assert _nearest(st_embedder, "chroma vector store", DOCS) == DOCS[0]
    assert _nearest(st_embedder, "sandbox processes", DOCS) == DOCS[2]
    assert _nearest(st_embedder, "sunny weather", DOCS) == DOCS[3]


def test_embedding_leaves_torch_threads_as_they_were(tiny_st_model: Path) -> None:
    import torch

    before = torch.get_num_threads()
    embedder = SentenceTransformerEmbedder(str(tiny_st_model), threads=before + 1)
    embedder.embed(["one", "two"])
    assert torch.get_num_threads() == before


def test_local_folder_loads_in_a_fresh_process_with_a_hub_that_never_answers(tiny_st_model: Path) -> None:
    code = (
        "import time, os, sentence_transformers; from tessera.memory.embedder import load_embedder; "
        f"t = time.monotonic(); e = load_embedder({str(tiny_st_model)!r}); v = e.embed(['hello world']); "
        "print(round(time.monotonic() - t, 2), len(v[0]), os.environ.get('HF_HUB_OFFLINE', 'unset'))"
    )
    with socket.socket() as silent:  # accepts connections (in the kernel's backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        result = _run(code, HF_ENDPOINT=f"http://127.0.0.1:{silent.getsockname()[1]}")
    assert result.returncode == 0, result.stderr
    seconds, dim, offline = result.stdout.split()
    assert float(seconds) < 5 and dim == "64" and offline == "unset"


def test_hub_id_with_hf_hub_offline_and_nothing_cached_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_MODEL_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelDownloadError) as caught:
        load_embedder("BAAI/bge-small-en-v1.5")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "'BAAI/bge-small-en-v1.5'" in message and "\n" not in message
    assert "HF_HUB_OFFLINE is set; set memory.embedder to a local sentence-transformers folder" in message


@pytest.mark.parametrize(("server", "limit_s"), [("refusing", 5), ("silent", 10)])
def test_hub_id_with_the_hub_unreachable_fails_fast_and_leaves_nothing(
    server: str, limit_s: float, tmp_path: Path
) -> None:
    code = (
        "import time; from tessera.memory.embedder import load_embedder; t = time.monotonic()\n"
        "try:\n    load_embedder('BAAI/bge-small-en-v1.5')\n"
        "except Exception as exc:\n    print(round(time.monotonic() - t, 2), type(exc).__name__, exc)\n"
    )
    with socket.socket() as silent:  # "silent" accepts connections but never answers a request
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1] if server == "silent" else 9  # nothing listens on 9
        env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "TESSERA_MODEL_CACHE": str(tmp_path / "cache")}
        result = _run(code, **env)
    assert result.returncode == 0, result.stderr
    seconds, kind, message = result.stdout.strip().split(" ", 2)
    assert float(seconds) < limit_s and kind == "ModelDownloadError"
    assert message.startswith("embedder 'BAAI/bge-small-en-v1.5': cannot download (no network?")
    assert message.endswith(
        "set memory.embedder to a local sentence-transformers folder, or run where the hub is reachable"
    )
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("spec", ["./no-such-model", "/no/such/model", "~/no-such-model", "a/b/c"])
def test_missing_local_path_is_a_load_error(
    spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match=f"^{spec}: no such embedder folder$"):
        load_embedder(spec)


def test_a_file_is_not_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="not a sentence-transformers folder"):
        load_embedder(str(tmp_path / "model.bin"))


# --- llama.cpp ------------------------------------------------------------------------------------


def test_llama_cpp_embedder_on_tiny_gguf(tiny_gguf: Path) -> None:
    embedder = load_embedder(str(tiny_gguf))
    assert isinstance(embedder, LlamaCppEmbedder)
    assert embedder.id == f"gguf:{tiny_gguf.resolve()}" and embedder.dim == 64
    vectors = embedder.embed(DOCS + [DOCS[1]])
    assert all(len(v) == 64 and math.isclose(_dot(v, v), 1.0, rel_tol=1e-4) for v in vectors)
    assert vectors[1] == pytest.approx(vectors[-1], abs=1e-5)
    assert _nearest(embedder, "chroma vector store", DOCS) == DOCS[0]
    assert embedder.embed([]) == []


def test_missing_gguf_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        load_embedder(str(tmp_path / "absent.gguf"))


# --- the cache --------------------------------------------------------------------------------------


def test_cache_computes_each_text_once(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path / "e.sqlite")
    first = cached.embed(["a cat", "a dog"])
    second = cached.embed(["a cat", "a dog"])
    assert inner.calls == [["a cat", "a dog"]]
    assert first == second
    assert (cached.hits, cached.misses) == (2, 2)
    assert (cached.id, cached.spec, cached.dim) == (inner.id, inner.spec, inner.dim)


def test_cache_sends_only_misses_in_one_batch(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path / "e.sqlite")
    cached.embed(["one", "two"])
    mixed = cached.embed(["two", "three", "one", "four", "three"])
    assert inner.calls[1:] == [["three", "four"]]
    assert mixed[1] == mixed[4]
    expected = CountingEmbedder().embed(["two", "three", "one", "four", "three"])
    assert all(got == pytest.approx(want, abs=1e-7) for got, want in zip(mixed, expected, strict=True))


def test_cache_survives_a_new_instance_and_rounds_like_float32(tmp_path: Path) -> None:
    first = CachedEmbedder(CountingEmbedder(), tmp_path / "e.sqlite")
    computed = first.embed(["persisted text"])
    first.close()
    inner = CountingEmbedder()
    again = CachedEmbedder(inner, tmp_path / "e.sqlite")
    assert again.embed(["persisted text"]) == computed
    assert inner.calls == [] and again.hits == 1
    assert computed[0] != inner.embed(["persisted text"])[0]  # stored as float32, not float64
    assert computed[0] == pytest.approx(inner.embed(["persisted text"])[0], abs=1e-7)
    again.close()
    assert again.embed(["persisted text", "new"]) == [computed[0], again.embed(["new"])[0]]  # reopens


def test_cache_keys_include_the_embedder_id(tmp_path: Path) -> None:
    CachedEmbedder(CountingEmbedder("a"), tmp_path / "e.sqlite").embed(["same text"])
    other = CountingEmbedder("b")
    CachedEmbedder(other, tmp_path / "e.sqlite").embed(["same text"])
    assert other.calls == [["same text"]]


def test_load_embedder_wraps_in_a_cache(tiny_st_model: Path, tmp_path: Path) -> None:
    assert load_embedder(None) is None
    embedder = load_embedder(str(tiny_st_model), cache_dir=tmp_path / "state")
    assert isinstance(embedder, CachedEmbedder) and isinstance(embedder.inner, SentenceTransformerEmbedder)
    assert embedder.embed(["x"]) == embedder.embed(["x"]) and embedder.hits == 1
    assert (tmp_path / "state" / "embeddings.sqlite").is_file()


def test_module_imports_no_heavy_library() -> None:
    heavy = ("torch", "sentence_transformers", "transformers", "chromadb", "llama_cpp", "huggingface_hub")
    code = f"import sys, tessera.memory.embedder; print([m for m in {heavy!r} if m in sys.modules])"
    assert _run(code).stdout.strip() == "[]"


# --- Chroma -----------------------------------------------------------------------------------------


def _client(path: Path):  # type: ignore[no-untyped-def]
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


def test_reopened_collection_rebuilds_the_tessera_function(
    tiny_st_model: Path, st_embedder: Embedder, tmp_path: Path
) -> None:
    from tessera.memory._chroma_ef import TesseraEmbeddingFunction, embedding_function

    spec = str(tiny_st_model.resolve())
    shared = CachedEmbedder(st_embedder, tmp_path / "e.sqlite")
    function = embedding_function(spec, shared)
    assert function.embedder() is shared and function.get_config() == {"spec": spec}
    created = _client(tmp_path).get_or_create_collection("docs", embedding_function=function)
    created.add(ids=[str(i) for i in range(len(DOCS))], documents=DOCS)  # no embeddings passed
    assert shared.misses == len(DOCS)

    reopened = _client(tmp_path).get_collection("docs")  # no embedding function passed
    assert reopened.configuration_json["embedding_function"]["name"] == "tessera"
    rebuilt = reopened.configuration["embedding_function"]
    assert isinstance(rebuilt, TesseraEmbeddingFunction) and rebuilt is not function
    assert rebuilt.get_config() == {"spec": spec}
    found = reopened.query(query_texts=["chroma vector store"], n_results=2)
    assert found["documents"] is not None and found["documents"][0][0] == DOCS[0]
    assert shared.misses == len(DOCS) + 1  # the query was embedded by the shared Tessera embedder


def test_building_from_config_loads_nothing(tmp_path: Path) -> None:
    from tessera.memory._chroma_ef import TesseraEmbeddingFunction

    function = TesseraEmbeddingFunction.build_from_config({"spec": str(tmp_path / "not-loaded-yet")})
    assert not function.loaded
    assert function.default_space() == "cosine" and "cosine" in function.supported_spaces()
    with pytest.raises(ModelLoadError, match="no such embedder folder"):
        function(["only now does it load"])


def test_lexical_only_collection_holds_placeholders(tmp_path: Path) -> None:
    from tessera.memory._chroma_ef import TesseraEmbeddingFunction, embedding_function

    function = embedding_function(None)
    assert [list(v) for v in function(["a", "b"])] == [[1.0], [1.0]]
    _client(tmp_path).get_or_create_collection("lex", embedding_function=function).add(
        ids=["1"], documents=["x"]
    )
    reopened = _client(tmp_path).get_collection("lex")
    rebuilt = reopened.configuration["embedding_function"]
    assert isinstance(rebuilt, TesseraEmbeddingFunction) and rebuilt.get_config() == {"spec": None}
    reopened.add(ids=["2"], documents=["y"])
    stored = reopened.get(ids=["1", "2"], include=["embeddings"])["embeddings"]
    assert stored is not None and [list(v) for v in stored] == [[1.0], [1.0]]
