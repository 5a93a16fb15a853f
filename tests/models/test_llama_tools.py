"""Tool calling on the llama_cpp backend: the generated tiny GGUF, and the real Qwen2.5-Coder-0.5B."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from tessera.config import SpecialistConfig, TeamConfig
from tessera.models._llama_tools import hermes_messages, read_tool_calls, repeat_guard
from tessera.models._tool_grammar import TOOL_CALL_OPEN, Tools, openai_tools
from tessera.models.base import to_openai_messages
from tessera.models.llama_cpp import LlamaCppChatModel
from tessera.models.pool import ModelPool
from tessera.testing.tiny import CHATML_TEMPLATE
from tests import fakes
from tests.conftest import write_team
from tests.test_real_models import default_team, pool  # noqa: F401

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
real = [pytest.mark.real_models, pytest.mark.slow]


class Address(BaseModel):
    city: str = Field(max_length=10)
    zip: int
    root: bool = False  # named as the grammar's start rule is


class Order(BaseModel):
    """Place an order."""

    item: str = Field(max_length=12)
    quantity: int = Field(ge=1, le=9)
    price: float
    size: Literal["S", "M", "L"]
    express: bool = False
    tags: list[str] = Field(default_factory=list, max_length=2)
    address: Address


@tool(args_schema=Order)
def order(**fields: Any) -> str:
    """Place an order."""
    return "ordered: " + ", ".join(sorted(fields))


@tool
def echo(text: str) -> str:
    """Say ``text`` back."""
    return text


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS: list[BaseTool] = [order, echo]


@pytest.fixture(scope="module")
def tiny(tiny_gguf: Path) -> LlamaCppChatModel:
    model = LlamaCppChatModel(model_id="tiny", path=tiny_gguf, n_ctx=2048, max_tokens=16, temperature=1.0)
    model.load()
    return model


def _check_call(call: dict[str, Any], allowed: list[BaseTool]) -> None:
    """The call names one of ``allowed``, its arguments validate against that tool's schema, and it runs."""
    by_name = {t.name: t for t in allowed}
    assert call["name"] in by_name and call["id"]
    chosen = by_name[call["name"]]
    jsonschema.validate(call["args"], convert_to_openai_tool(chosen)["function"]["parameters"])
    chosen.invoke(call["args"])


@pytest.mark.parametrize(
    ("choice", "seeds"), [("any", range(6)), ("order", range(3)), ("auto", range(4)), ("none", range(2))]
)
def test_every_reply_is_text_or_a_valid_call(tiny: LlamaCppChatModel, choice: str, seeds: range) -> None:
    bound = tiny.bind_tools(TOOLS, tool_choice=choice)
    allowed = [t for t in TOOLS if choice in ("any", "auto", t.name)]
    for seed in seeds:
        reply = bound.invoke("Order a small red shirt for Paris.", seed=seed)
        assert isinstance(reply, AIMessage)
        if reply.tool_calls:
            assert choice != "none" and reply.content == ""
            assert reply.response_metadata["finish_reason"] == "tool_calls"
            for call in reply.tool_calls:
                _check_call(call, allowed)
        else:
            assert choice in ("auto", "none"), f"seed {seed}: no call under tool_choice={choice!r}"
            text = str(reply.content)
            assert text and TOOL_CALL_OPEN not in text
            assert choice == "none" or not text.startswith("{")


def test_parallel_calls_are_each_valid(tiny: LlamaCppChatModel) -> None:
    bound = tiny.bind_tools([add], tool_choice="any")
    counts = []
    for seed in range(4):
        reply = bound.invoke("add", seed=seed)
        counts.append(len(reply.tool_calls))
        for call in reply.tool_calls:
            _check_call(call, [add])
    assert max(counts) >= 2, counts  # seed 1 writes two calls on this model


def test_a_call_is_never_cut_by_max_tokens_but_text_is(tiny: LlamaCppChatModel) -> None:
    call = tiny.bind_tools([order], tool_choice="any").invoke("order", seed=4, max_tokens=4)
    assert len(call.tool_calls) >= 1
    _check_call(call.tool_calls[0], [order])
    assert call.usage_metadata is not None and call.usage_metadata["output_tokens"] > 4
    text = tiny.bind_tools([order]).invoke("order", seed=1, max_tokens=4)
    assert not text.tool_calls and text.usage_metadata is not None
    assert text.usage_metadata["output_tokens"] <= 4
    if text.usage_metadata["output_tokens"] == 4:
        assert text.response_metadata["finish_reason"] == "length"


def test_streamed_replies_match_invoked_ones(tiny: LlamaCppChatModel) -> None:
    calls = tiny.bind_tools([order], tool_choice="any")
    chunks = list(calls.stream("order", seed=2))
    assert all(c.content == "" for c in chunks)
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    invoked = calls.invoke("order", seed=2)
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [
        (c["name"], c["args"]) for c in invoked.tool_calls
    ]
    texts = tiny.bind_tools([order], tool_choice="none")
    streamed = "".join(str(c.content) for c in texts.stream("hello", seed=3))
    assert streamed == texts.invoke("hello", seed=3).content


def test_a_template_without_tools_gets_the_hermes_format_in_plain_messages(tiny: LlamaCppChatModel) -> None:
    history: list[BaseMessage] = [
        SystemMessage(content="Be brief."),
        HumanMessage(content="add 2 and 3"),
        AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
        ToolMessage(content="5", tool_call_id="c1"),
    ]
    reply = tiny.bind_tools([add]).invoke(history, max_tokens=1)
    listed = json.dumps(convert_to_openai_tool(add), ensure_ascii=False)
    expected = (
        "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the "
        "user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        f"{listed}\n</tools>\n\nFor each function call, return a json object with function name and "
        "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\nadd 2 and 3<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
        "<|im_end|>\n<|im_start|>user\n<tool_response>\n5\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    llm = tiny.load()
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == len(llm.tokenize(expected.encode(), special=True))


class Sum(BaseModel):
    total: int
    note: str = Field(max_length=20)


def test_structured_output_after_tool_turns_keeps_its_grammar(tiny: LlamaCppChatModel) -> None:
    history: list[BaseMessage] = [
        HumanMessage(content="add 2 and 3"),
        AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
        ToolMessage(content="5", tool_call_id="c1"),
    ]
    for seed in range(3):
        assert isinstance(tiny.with_structured_output(Sum).invoke(history, seed=seed), Sum)


def test_tool_choice_must_name_a_bound_tool(tiny: LlamaCppChatModel) -> None:
    with pytest.raises(ValueError, match="tool_choice 'nope'.*order, echo"):
        tiny.bind_tools(TOOLS, tool_choice="nope")


def test_a_call_that_repeats_one_already_answered_turns_into_an_answer() -> None:
    history = to_openai_messages(
        [
            HumanMessage(content="add 2 and 3"),
            AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
            ToolMessage(content="5", tool_call_id="c1"),
        ]
    )
    tools = Tools(openai_tools([add]))
    again = AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c2"}])
    other = AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 5, "b": 1}, "id": "c3"}])
    answer_only = repeat_guard(again, history, tools)
    assert answer_only is not None and answer_only.choice == "none" and not answer_only.listed
    assert repeat_guard(other, history, tools) is None


def test_a_reply_that_is_only_a_fenced_json_call_is_read_as_that_call() -> None:
    """Qwen2.5-Coder often writes its call as a ```json block instead of <tool_call> under tool_choice auto."""
    tools = Tools(openai_tools([add]))
    fenced = AIMessage(content='```json\n{\n  "name": "add",\n  "arguments": {"a": 2, "b": 3}\n}\n```')
    reply = read_tool_calls(fenced, "m", tools)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 2, "b": 3})]
    for text in (
        '```json\n{"name": "mul", "arguments": {"a": 2}}\n```',  # not a bound tool: text
        'Call it so:\n```json\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n```',  # prose around it
        '```json\n{"name": "add", "arguments": "2, 3"}\n```',
    ):
        assert read_tool_calls(AIMessage(content=text), "m", tools).content == text
    none = Tools(openai_tools([add]), choice="none")
    assert read_tool_calls(fenced, "m", none).content == fenced.content


class _NoTools(BaseChatModel):
    """A chat model with LangChain's default ``bind_tools`` (which raises a bare NotImplementedError)."""

    @property
    def _llm_type(self) -> str:
        return "no-tools"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="hi"))])


def test_a_specialist_whose_model_cannot_call_tools_says_so_in_one_line() -> None:
    from tessera.agents.specialist import run_specialist

    spec = SpecialistConfig(description="d", model="m", tools=["python"])
    run = asyncio.run(run_specialist(spec, _NoTools(), "compute", tools=[add]))
    assert run.error == "model '_NoTools' cannot call tools (add): _NoTools does not implement bind_tools"
    assert run.attempts == 0 and run.output == ""


# -- the real Qwen2.5-Coder-0.5B ----------------------------------------------------------------------


@pytest.mark.real_models
@pytest.mark.slow
def test_qwen_renders_tools_with_its_own_template_as_the_hermes_fallback_does(pool: ModelPool) -> None:  # noqa: F811
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = pool.get("small")
    assert isinstance(model, LlamaCppChatModel)
    history: list[BaseMessage] = [
        SystemMessage(content="Be brief."),
        HumanMessage(content="add 2 and 3, then 4 and 5"),
        AIMessage(
            content="",
            tool_calls=[
                {"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"},
                {"name": "add", "args": {"a": 4, "b": 5}, "id": "c2"},
            ],
        ),
        ToolMessage(content="5", tool_call_id="c1"),
        ToolMessage(content="9", tool_call_id="c2"),
    ]
    reply = model.bind_tools([add]).invoke(history)
    llm = model.load()
    specs = openai_tools([add])
    chat = to_openai_messages(history)
    for message in chat:  # templates take a call's arguments as an object, as transformers passes them
        for call in message.get("tool_calls", []):
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    native = Jinja2ChatFormatter(llm.metadata["tokenizer.chat_template"], "", "")(messages=chat, tools=specs)
    fallback = Jinja2ChatFormatter(CHATML_TEMPLATE, "", "")(
        messages=hermes_messages(to_openai_messages(history), specs)
    )
    assert native.prompt == fallback.prompt
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == len(llm.tokenize(native.prompt.encode(), special=True))
    assert "14" in str(reply.content) or reply.tool_calls  # 5 + 9, or another call; never malformed


@pytest.mark.real_models
@pytest.mark.slow
def test_a_team_specialist_on_the_05b_calls_python_and_answers(
    default_team: TeamConfig,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tessera import Team

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    small = default_team.models["small"].model_dump(mode="json", exclude_none=True)
    path = write_team(
        tmp_path / "team.yaml",
        {"planner": {"backend": "function", "callable": "tests.fakes:planner"}, "small": small},
        specialists={
            "calc": {
                "description": "Computes with Python.",
                "model": "small",
                "tools": ["python"],
                "timeout_s": 300,
            }
        },
    )
    task = "Print 2**20 with the python tool and reply with the number."
    fakes.PLANS[task] = {
        "subtasks": [{"id": "s1", "specialist": "calc", "instruction": task, "depends_on": []}]
    }
    team = Team.from_yaml(path)
    try:
        result = team.run(task)
    finally:
        team.close()
    (sub,) = result.subtasks
    assert sub.status == "done", sub.error
    assert "1048576" in sub.output
    assert result.trace is not None
    assert [s for s in result.trace.spans if s.kind == "tool" and s.attrs.get("tool") == "python"]


@pytest.mark.real_models
@pytest.mark.slow
def test_langgraphs_prebuilt_react_agent_runs_on_the_05b(pool: ModelPool) -> None:  # noqa: F811
    from langgraph.prebuilt import create_react_agent

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    agent = create_react_agent(pool.get("small"), [multiply])
    state = agent.invoke({"messages": [("user", "What is 1234 times 5678? Use the multiply tool.")]})
    messages = state["messages"]
    assert any(isinstance(m, ToolMessage) and m.content == "7006652" for m in messages)
    assert isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls
    assert "7006652" in str(messages[-1].content).replace(",", "")
