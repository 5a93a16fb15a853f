"""Structured output as a stream (``astream_structured``): what the streaming planner reads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tessera.models.function import FunctionModel
from tessera.models.llama_cpp import LlamaCppChatModel
from tessera.types import Plan


async def test_llama_cpp_streams_grammar_constrained_json_in_pieces(tiny_gguf: Path) -> None:
    from tessera.models.base import json_schema_of

    model = LlamaCppChatModel(model_id="tiny", path=tiny_gguf, n_ctx=1024, max_tokens=200, seed=3)
    pieces = [p async for p in model.astream_structured("Plan something.", Plan)]
    assert len(pieces) > 3  # it arrives token by token, not at the end
    whole = model._structured(model._convert_input("Plan something.").to_messages(), json_schema_of(Plan))
    assert "".join(pieces) == whole.content  # the same generation (same seed), just in pieces
    assert whole.content.startswith('{"subtasks"')  # under the plan's grammar
    model.unload()


async def test_a_function_model_generator_streams_live() -> None:
    times: list[float] = []

    def slow(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> Any:
        assert schema is not None and "subtasks" in schema["properties"]
        for piece in ('{"subtasks": [', '{"id": "a", "specialist": "g", "instruction": "x"}', "]}"):
            time.sleep(0.2)
            yield piece

    async for _ in FunctionModel(slow).astream_structured("plan", Plan):
        times.append(time.monotonic())
    assert len(times) == 3 and times[-1] - times[0] > 0.3  # pieces arrived as yielded, not all at once


async def test_a_plain_function_reply_is_one_piece() -> None:
    model = FunctionModel(lambda messages, **kw: {"subtasks": []})
    assert [p async for p in model.astream_structured("plan", Plan)] == ['{"subtasks": []}']


async def test_a_prefilled_reply_is_in_the_prompt_and_only_the_rest_is_generated(tiny_gguf: Path) -> None:
    model = LlamaCppChatModel(model_id="tiny", path=tiny_gguf, n_ctx=1024, max_tokens=50, seed=3)
    grammar = 'root ::= " coder" | " general"\n'
    messages = model._convert_input("Pick one.").to_messages()
    plain = model._under_grammar(messages, grammar)
    prefill = "s1: Compute 2**20 with Python. ->"
    pieces = [p async for p in model.astream_grammar(messages, grammar, prefill=prefill)]
    whole = model._under_grammar(messages, grammar, prefill=prefill)
    assert "".join(pieces) == whole.content and whole.content in (" coder", " general")
    assert plain.usage_metadata and whole.usage_metadata
    with model._session() as llm:
        added = len(llm.tokenize(prefill.encode(), add_bos=False, special=False))
        assert "create_completion" not in vars(llm)  # the wrappers are gone after the call
    assert whole.usage_metadata["input_tokens"] == plain.usage_metadata["input_tokens"] + added
    model.unload()
