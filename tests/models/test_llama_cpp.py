"""The llama_cpp backend on real llama.cpp: a generated random-weight GGUF and the shared stories model."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Literal

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from tessera.errors import ModelDownloadError, ModelLoadError
from tessera.models.llama_cpp import LlamaCppChatModel

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")


@pytest.fixture(scope="module")
def tiny(tiny_gguf: Path) -> LlamaCppChatModel:
    model = LlamaCppChatModel(model_id="tiny", path=tiny_gguf, n_ctx=1024, max_tokens=16, temperature=1.0)
    model.load()
    return model


def test_chat_uses_the_models_own_template(tiny: LlamaCppChatModel) -> None:
    reply = tiny.invoke([SystemMessage(content="Be brief."), HumanMessage(content="hello")])
    assert isinstance(reply.content, str)
    usage = reply.usage_metadata
    assert usage is not None and 1 <= usage["output_tokens"] <= 16
    chatml = (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    )
    llm = tiny.load()
    assert usage["input_tokens"] == len(llm.tokenize(chatml.encode(), add_bos=False, special=True))
    assert reply.response_metadata["model"] == "tiny"


def test_stream_matches_invoke_for_the_same_seed(tiny: LlamaCppChatModel) -> None:
    whole = tiny.invoke("tell me a story", seed=7, max_tokens=12)
    chunks = [c.content for c in tiny.stream("tell me a story", seed=7, max_tokens=12)]
    assert len([c for c in chunks if c]) >= 2
    assert "".join(str(c) for c in chunks) == whole.content


def test_max_tokens_is_respected(tiny: LlamaCppChatModel) -> None:
    reply = tiny.invoke("go on", max_tokens=3)
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] <= 3


class Step(BaseModel):
    id: str = Field(max_length=6)
    kind: Literal["search", "code", "write"]
    done: bool
    priority: int = Field(ge=1, le=5)
    depends_on: list[str] = Field(default_factory=list, max_length=3)


class Plan(BaseModel):
    title: str
    steps: list[Step] = Field(max_length=3)
    confidence: float
    note: str | None = None


def test_structured_output_validates_100_of_100_at_temperature_1(
    tiny: LlamaCppChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A random-weight model emits garbage tokens; the grammar must still force valid, bounded JSON."""
    monkeypatch.setattr(tiny, "structured_retries", 0)  # every try is one generation, no second chance
    structured = tiny.with_structured_output(Plan, include_raw=True)
    kinds: set[str] = set()
    for i in range(100):
        out = structured.invoke([HumanMessage(content=f"plan #{i}")], temperature=1.0)
        raw_text = out["raw"].content
        json.loads(raw_text)  # strict: no raw control characters
        plan = out["parsed"]
        assert isinstance(plan, Plan)
        assert all(1 <= s.priority <= 5 for s in plan.steps)
        kinds.update(s.kind for s in plan.steps)
    assert kinds, "the model never produced a step: the test would not exercise nested objects"


def test_structured_output_on_the_async_path(tiny: LlamaCppChatModel) -> None:
    async def run() -> list[Plan]:
        structured = tiny.with_structured_output(Plan)
        return list(await asyncio.gather(*(structured.ainvoke(f"p{i}") for i in range(4))))

    assert all(isinstance(p, Plan) for p in asyncio.run(run()))


def test_concurrent_calls_on_one_model_are_serialized(tiny: LlamaCppChatModel) -> None:
    """One llama.cpp context is not thread-safe: concurrent calls must queue, and give what serial calls give."""
    prompts = [f"question {i}" for i in range(6)]
    serial = [tiny.invoke(p, seed=3, max_tokens=8).content for p in prompts]

    async def together() -> list[str]:
        replies = await asyncio.gather(*(tiny.ainvoke(p, seed=3, max_tokens=8) for p in prompts))
        return [str(r.content) for r in replies]

    assert asyncio.run(together()) == serial
    assert tiny.queue_length == 0


def test_repeated_system_prompt_is_not_prefilled_again(tiny: LlamaCppChatModel) -> None:
    llm = tiny.load()
    system = SystemMessage(content="You are a careful assistant who checks every step. " * 10)

    def prefilled(question: str) -> int:
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        tiny.invoke([system, HumanMessage(content=question)], max_tokens=2)
        return int(llama_cpp.llama_perf_context(llm._ctx.ctx).n_p_eval)

    first = prefilled("first question")
    second = prefilled("a different question")
    assert second < first / 4, (first, second)


def test_unload_frees_and_the_next_call_reloads(tiny_gguf: Path) -> None:
    model = LlamaCppChatModel(model_id="t", path=tiny_gguf, n_ctx=256, max_tokens=2)
    model.invoke("a")
    assert model.loaded
    model.unload()
    assert not model.loaded
    model.invoke("b")
    assert model.loaded
    model.unload()


def test_ram_estimate_counts_weights_and_kv_cache(tiny_gguf: Path) -> None:
    small = LlamaCppChatModel(model_id="s", path=tiny_gguf, n_ctx=256)
    large = LlamaCppChatModel(model_id="l", path=tiny_gguf, n_ctx=2048)
    size = tiny_gguf.stat().st_size
    assert small.estimate_ram_bytes() > size
    # 2 layers x 2048 ctx x 4 heads x (16 + 16) dims x 2 bytes: the KV cache grows with n_ctx
    assert large.estimate_ram_bytes() - small.estimate_ram_bytes() == pytest.approx(
        1.1 * 2 * (2048 - 256) * 4 * 32 * 2, rel=0.01
    )


def test_n_threads_defaults_to_physical_cores(tiny: LlamaCppChatModel) -> None:
    from tessera._system import physical_cores

    assert tiny.load().context_params.n_threads == physical_cores()


def test_stories_model_tells_a_story(stories_gguf: Path) -> None:
    model = LlamaCppChatModel(model_id="stories", path=stories_gguf, n_ctx=512, max_tokens=40, seed=1)
    reply = model.invoke("Once upon a time")
    words = str(reply.content).split()
    assert len(words) >= 5
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 10
    model.unload()


# -- errors ------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    model = LlamaCppChatModel(model_id="m", path=tmp_path / "nope.gguf")
    with pytest.raises(ModelLoadError, match=r"nope\.gguf: no such file"):
        model.load()


def test_random_bytes_are_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "random.gguf"
    bad.write_bytes(bytes(range(256)) * 100)
    with pytest.raises(ModelLoadError, match=r"random\.gguf: not a GGUF file"):
        LlamaCppChatModel(model_id="m", path=bad).load()


@pytest.mark.parametrize("keep", [10, 200, 0.6])
def test_truncated_gguf(tmp_path: Path, tiny_gguf: Path, keep: float) -> None:
    data = tiny_gguf.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    with pytest.raises(ModelLoadError, match=r"cut\.gguf: truncated GGUF file"):
        LlamaCppChatModel(model_id="m", path=cut).load()


def test_hub_download_offline_fails_fast_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TESSERA_MODEL_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: as good as offline
    model = LlamaCppChatModel(model_id="m", repo="Qwen/Qwen2.5-0.5B-Instruct-GGUF", file="x.gguf")
    started = time.monotonic()
    with pytest.raises(ModelDownloadError, match=r"Qwen2\.5-0\.5B-Instruct-GGUF/x\.gguf: cannot download"):
        model.load()
    assert time.monotonic() - started < 5
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_hub_download_with_hf_hub_offline_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TESSERA_MODEL_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = LlamaCppChatModel(model_id="m", repo="org/repo", file="m.gguf")
    with pytest.raises(ModelDownloadError, match="set `path:` to a local GGUF file"):
        model.load()


def test_a_cancelled_generation_stops_at_once_and_quietly(
    tiny: LlamaCppChatModel, capfd: pytest.CaptureFixture[str]
) -> None:
    """Cancelling raises between two tokens: no reply of max_tokens, no per-token ctypes tracebacks."""
    import threading

    from tessera.models.llama_cpp import GenerationCancelled

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(GenerationCancelled):
        tiny.invoke("go on", max_tokens=200, cancel=cancel)
    err = capfd.readouterr().err
    assert "Exception ignored" not in err and "GenerationCancelled" not in err, err
    assert tiny.invoke("go on", max_tokens=3).usage_metadata is not None  # the model is free again
