from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from tessera.config import FunctionModelConfig
from tessera.errors import AgentRunError, ModelLoadError, StructuredOutputError
from tessera.models import build_model
from tessera.models.function import FunctionModel, ScriptedModel


class Answer(BaseModel):
    text: str
    score: int = Field(ge=0, le=10)


def test_callable_gets_openai_style_messages_and_options() -> None:
    seen: list[Any] = []

    def fn(messages: list[dict[str, Any]], **kw: Any) -> str:
        seen.append((messages, kw))
        return "ok"

    reply = FunctionModel(fn).invoke([("system", "be kind"), ("user", "hi")], max_tokens=5)
    assert reply.content == "ok"
    assert seen == [
        (
            [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}],
            {"max_tokens": 5},
        )
    ]


def test_structured_output_passes_the_schema_and_validates() -> None:
    def fn(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **kw: Any) -> str:
        assert schema is not None and schema["properties"]["score"]["maximum"] == 10
        return json.dumps({"text": "fine", "score": 7})

    assert FunctionModel(fn).with_structured_output(Answer).invoke("rate it") == Answer(text="fine", score=7)


def test_invalid_output_is_retried_once_with_the_reason() -> None:
    model = ScriptedModel(['{"text": "x", "score": 99}', {"text": "y", "score": 3}])
    assert model.with_structured_output(Answer).invoke("q") == Answer(text="y", score=3)
    retry_messages, _ = model.calls[1]
    assert "score" in retry_messages[-1]["content"] and "invalid" in retry_messages[-1]["content"]


def test_output_still_invalid_after_the_retry_raises() -> None:
    model = ScriptedModel(["not json", '{"text": 1}'], model_id="bad")
    with pytest.raises(StructuredOutputError, match="model 'bad': output failed the schema 2 time"):
        model.with_structured_output(Answer).invoke("q")


def test_raw_control_characters_are_rejected_as_invalid_json() -> None:
    model = ScriptedModel(['{"text": "a\x01b", "score": 1}'], structured_retries=0)
    with pytest.raises(StructuredOutputError, match="not valid JSON"):
        model.with_structured_output(Answer).invoke("q")


def test_dict_schema_returns_a_validated_dict() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    model = ScriptedModel(['{"n": "x"}', '{"n": 2}'])
    assert model.with_structured_output(schema).invoke("q") == {"n": 2}


def test_async_callable_and_async_generator() -> None:
    async def fn(messages: list[dict[str, Any]], **kw: Any) -> str:
        await asyncio.sleep(0)
        return "async " + messages[-1]["content"]

    async def gen(messages: list[dict[str, Any]], **kw: Any) -> Any:
        for piece in ("a", "b", "c"):
            yield piece

    assert asyncio.run(FunctionModel(fn).ainvoke("x")).content == "async x"
    assert FunctionModel(fn).invoke("y").content == "async y"

    async def stream() -> list[str]:
        return [str(c.content) async for c in FunctionModel(gen).astream("q") if c.content]

    assert asyncio.run(stream()) == ["a", "b", "c"]


def test_generator_streams_token_by_token() -> None:
    def fn(messages: list[dict[str, Any]], **kw: Any) -> Any:
        yield from ["Hel", "lo"]

    model = FunctionModel(fn)
    assert [c.content for c in model.stream("x") if c.content] == ["Hel", "lo"]
    assert model.invoke("x").content == "Hello"


def test_tool_calls_round_trip() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    def fn(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kw: Any) -> AIMessage:
        assert tools and tools[0]["function"]["name"] == "add"
        return AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}])

    reply = FunctionModel(fn).bind_tools([add]).invoke("2+3?")
    assert reply.tool_calls[0]["name"] == "add"
    assert add.invoke(reply.tool_calls[0]["args"]) == 5


def test_scripted_model_refuses_to_run_past_its_script() -> None:
    model = ScriptedModel(["one"], model_id="s")
    assert model.invoke("a").content == "one"
    with pytest.raises(AgentRunError, match="script exhausted after 1 call"):
        model.invoke("b")


def test_from_config_imports_the_callable() -> None:
    model = build_model("echo", FunctionModelConfig(backend="function", callable="tessera.testing.demo:echo"))
    assert model.invoke("hello").content == "echo: hello"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
        ("tessera.testing.demo:nope", "has no attribute 'nope'"),
        ("tessera.testing.demo:__doc__", "is not callable"),
    ],
)
def test_bad_callable_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=f"models.x.callable: .*{message}"):
        build_model("x", FunctionModelConfig(backend="function", callable=spec))
