"""The model pool on real llama.cpp models: lazy loading, LRU eviction under a budget, pinning."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tessera.config import FunctionModelConfig, LlamaCppModelConfig
from tessera.errors import ModelLoadError, UserError
from tessera.models.pool import ModelPool

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")


def local(path: Path, **extra: object) -> LlamaCppModelConfig:
    return LlamaCppModelConfig(backend="llama_cpp", path=path, n_ctx=256, max_tokens=2, **extra)


def loaded(pool: ModelPool) -> set[str]:
    return {s.name for s in pool.status() if s.loaded}


@pytest.fixture
def per_model(tiny_gguf: Path) -> int:
    with ModelPool({"m": local(tiny_gguf)}) as pool:
        return pool.get("m").estimate_ram_bytes()  # type: ignore[attr-defined, no-any-return]


def test_models_load_lazily_on_first_call(tiny_gguf: Path) -> None:
    with ModelPool({"a": local(tiny_gguf)}) as pool:
        model = pool.get("a")
        assert loaded(pool) == set()
        model.invoke("hi")
        assert loaded(pool) == {"a"}
        assert pool.get("a") is model


def test_least_recently_used_model_is_evicted_to_fit_the_budget(tiny_gguf: Path, per_model: int) -> None:
    configs = {name: local(tiny_gguf) for name in ("a", "b", "c")}
    with ModelPool(configs, memory_budget_bytes=int(per_model * 2.5)) as pool:
        pool.get("a").invoke("1")
        pool.get("b").invoke("2")
        pool.get("a").invoke("3")  # a is now more recent than b
        pool.get("c").invoke("4")
        assert loaded(pool) == {"a", "c"}
        assert pool.used_bytes <= pool.memory_budget_bytes


def test_keep_warm_models_are_never_evicted(tiny_gguf: Path, per_model: int) -> None:
    configs = {
        "pinned": local(tiny_gguf, keep_warm=True),
        "b": local(tiny_gguf),
        "c": local(tiny_gguf),
    }
    with ModelPool(configs, memory_budget_bytes=int(per_model * 2.5)) as pool:
        for name in ("pinned", "b", "c"):
            pool.get(name).invoke("x")
        assert loaded(pool) == {"pinned", "c"}


def test_a_busy_model_is_not_evicted_mid_generation(tiny_gguf: Path, per_model: int) -> None:
    configs = {name: local(tiny_gguf) for name in ("a", "b")}
    with ModelPool(configs, memory_budget_bytes=int(per_model * 1.5)) as pool:
        stream = pool.get("a").stream("a long story", max_tokens=50)
        next(stream)  # a is generating and holds its context
        pool.get("b").invoke("meanwhile")
        assert loaded(pool) == {"a", "b"}  # over budget for a moment, rather than breaking a
        list(stream)
        pool.get("b").invoke("again")


def test_a_model_larger_than_the_budget_is_refused_clearly(tiny_gguf: Path, per_model: int) -> None:
    with ModelPool({"big": local(tiny_gguf)}, memory_budget_bytes=per_model // 2) as pool:
        with pytest.raises(ModelLoadError, match="model 'big' needs about .* more than the memory budget"):
            pool.load("big")


def test_preload_loads_in_the_background(tiny_gguf: Path) -> None:
    with ModelPool({"a": local(tiny_gguf), "b": local(tiny_gguf)}) as pool:
        for future in pool.preload(["a", "b"]):
            future.result(timeout=30)
        assert loaded(pool) == {"a", "b"}


def test_unknown_model_names_the_choices(tiny_gguf: Path) -> None:
    with (
        ModelPool({"a": local(tiny_gguf)}) as pool,
        pytest.raises(UserError, match=r"unknown model 'z' \(known: a\)"),
    ):
        pool.get("z")


def test_get_is_thread_safe_and_builds_each_model_once() -> None:
    configs = {"f": FunctionModelConfig(backend="function", callable="tessera.testing.demo:echo")}
    pool = ModelPool(configs)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(pool.get("f"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in seen}) == 1


def test_status_reports_backend_and_queue(tiny_gguf: Path) -> None:
    configs = {
        "a": local(tiny_gguf),
        "f": FunctionModelConfig(backend="function", callable="tessera.testing.demo:echo"),
    }
    with ModelPool(configs) as pool:
        pool.load("a")
        status = {s.name: s for s in pool.status()}
        assert (status["a"].backend, status["a"].loaded, status["a"].queue) == (
            "llama_cpp",
            True,
            0,
        )
        assert status["a"].ram_bytes and status["a"].ram_bytes > tiny_gguf.stat().st_size
        assert (status["f"].backend, status["f"].loaded) == ("function", False)
