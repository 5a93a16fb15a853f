"""Long prompts' KV states saved on disk (``prefix_cache_dir``): a new model restores them, on real llama.cpp."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from tessera.models.llama_cpp import LlamaCppChatModel

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

from tessera.models._prefix_disk import DiskStates, disk_key  # noqa: E402 - needs llama_cpp

PLANNER = "You are the planner. Split the task into subtasks and return them as JSON only. " * 4
SHORT = "Be brief."


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf", reason="the gguf package writes the test models: pip install gguf")
    from tessera.testing.tiny import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "small.gguf", n_embd=256, n_layer=4, seed=3)


def make(path: Path, **extra: Any) -> LlamaCppChatModel:
    fields: dict[str, Any] = {"n_ctx": 2048, "n_threads": 1, "max_tokens": 8, "temperature": 0.0, **extra}
    model = LlamaCppChatModel(model_id="m", path=path, **fields)
    model.load()
    return model


def ask(model: LlamaCppChatModel, system: str, user: str) -> AIMessage:
    reply = model.invoke([SystemMessage(content=system), HumanMessage(content=user)])
    assert isinstance(reply, AIMessage) and reply.usage_metadata is not None
    return reply


def cached(reply: AIMessage) -> int:
    assert reply.usage_metadata is not None
    return int(reply.usage_metadata.get("input_token_details", {}).get("cache_read", -1))


def saved(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.kv"))


def test_a_new_model_restores_a_long_prompt_that_an_earlier_one_saved(
    small_gguf: Path, tmp_path: Path
) -> None:
    first = make(small_gguf, prefix_cache_dir=tmp_path)
    assert cached(ask(first, PLANNER, "build a website")) == 0
    assert len(saved(tmp_path)) == 1
    first.unload()
    second = make(small_gguf, prefix_cache_dir=tmp_path)  # a new context, as in a new process
    reply = ask(second, PLANNER, "build a shop")
    system = len(second.load().tokenize(PLANNER.encode(), add_bos=False, special=False))
    assert system <= cached(reply) < reply.usage_metadata["input_tokens"]  # type: ignore[index]
    assert second.prefix_cache is not None and second.prefix_cache.counters.disk_restores == 1
    plain = make(small_gguf, prefix_cache_mb=0)
    assert reply.content == ask(plain, PLANNER, "build a shop").content  # decodes like a fresh prefill
    (kept,) = saved(tmp_path)  # the part the two prompts share replaced the first whole prompt
    third = make(small_gguf, prefix_cache_dir=tmp_path)
    assert cached(ask(third, PLANNER, "build a desk")) >= system
    assert saved(tmp_path) == [kept]  # the saved part holds nearly all of each new prompt


def test_short_prompts_stay_in_memory_only(small_gguf: Path, tmp_path: Path) -> None:
    model = make(small_gguf, prefix_cache_dir=tmp_path)
    ask(model, SHORT, "hi")
    assert saved(tmp_path) == []


def test_a_state_that_does_not_restore_is_deleted_and_the_prompt_is_prefilled(
    small_gguf: Path, tmp_path: Path
) -> None:
    ask(make(small_gguf, prefix_cache_dir=tmp_path), PLANNER, "build a website")
    (path,) = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\xff" * (len(data) - len(data) // 2))  # cells now garbage
    model = make(small_gguf, prefix_cache_dir=tmp_path)
    reply = ask(model, PLANNER, "build a shop")
    assert cached(reply) < 32
    assert reply.content == ask(make(small_gguf, prefix_cache_mb=0), PLANNER, "build a shop").content
    assert [p.read_bytes() != data for p in saved(tmp_path)] == [True]  # replaced by a good state
    assert cached(ask(make(small_gguf, prefix_cache_dir=tmp_path), PLANNER, "build a desk")) >= 256


def test_the_folder_keeps_the_most_recently_used_states_within_its_bound(tmp_path: Path) -> None:
    disk = DiskStates(tmp_path, capacity_bytes=5000, min_tokens=4)  # two files of about 1.9 KB
    prompts = [np.arange(k, k + 100, dtype=np.intc) for k in (0, 1000, 2000)]
    assert disk.put(prompts[0], b"a" * 1500) and disk.put(prompts[1], b"b" * 1500)
    for path in saved(tmp_path):  # both look old; then the first one is used
        os.utime(path, ns=(1, 1))
    found = disk.best(np.arange(0, 150, dtype=np.intc), better_than=0)
    assert found is not None and len(found[0]) == 100 and found[1] == b"a" * 1500
    assert disk.put(prompts[2], b"c" * 1500)
    assert disk.best(prompts[1], better_than=0) is None  # the least recently used went
    assert (
        disk.best(prompts[0], better_than=0) is not None and disk.best(prompts[2], better_than=0) is not None
    )
    assert not disk.put(np.arange(3, dtype=np.intc), b"x")  # shorter than min_tokens
    assert not disk.put(prompts[0], b"x" * 6000)  # bigger than the bound


def test_the_folder_is_keyed_by_the_model_file_and_context(small_gguf: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(small_gguf.read_bytes())
    key = disk_key(copy, 2048)
    assert key != disk_key(copy, 4096) and key != disk_key(small_gguf, 2048)
    os.utime(copy, ns=(10**18, 10**18))  # the file changed
    assert disk_key(copy, 2048) != key
