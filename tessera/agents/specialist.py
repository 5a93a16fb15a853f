"""Running one subtask on its specialist: the model, its system prompt, its tools, its limits.

A specialist gets ``max_attempts`` tries of at most ``timeout_s`` each. A model call that raises, times
out or answers with nothing is a failed attempt. Tool calls loop until the model answers in text (bounded).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from tessera.agents.base import SpecialistRun
from tessera.agents.checks import echo_problem
from tessera.errors import SpecialistError, SpecialistTimeout
from tessera.tracing import record_span

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool

    from tessera.config import SpecialistConfig

__all__ = ["SpecialistRun", "run_specialist", "stream_reply"]

MAX_TOOL_STEPS = 8
_NOT_AN_ANSWER = (
    "Your reply repeated the instructions instead of doing the task. Reply with the result itself."
)


async def run_specialist(
    spec: SpecialistConfig,
    model: BaseChatModel,
    instruction: str,
    *,
    tools: list[BaseTool] | None = None,
    on_token: Callable[[str], None] | None = None,
) -> SpecialistRun:
    """Run ``instruction`` on ``model`` with the specialist's prompt, tools and limits.

    With ``on_token`` the model is streamed and each piece of text is passed on as it arrives (a failed
    attempt's pieces are followed by the next attempt's).
    """
    run = SpecialistRun()
    messages: list[BaseMessage] = [HumanMessage(content=instruction)]
    if spec.system_prompt:
        messages.insert(0, SystemMessage(content=spec.system_prompt))
    try:
        bound: Any = model.bind_tools(tools) if tools else model
    except Exception as exc:  # noqa: BLE001 - no attempt can run; the subtask says why in one line
        run.error = _cannot_bind(model, tools or [], exc)
        return run
    for attempt in range(1, spec.max_attempts + 1):
        run.attempts = attempt
        try:
            async with asyncio.timeout(spec.timeout_s):  # no extra Task per attempt, unlike wait_for
                text = await _converse(bound, list(messages), tools or [], run, on_token)
        except TimeoutError:
            run.failure = SpecialistTimeout(f"timed out after {spec.timeout_s:g}s")
            run.error = str(run.failure)
            continue
        except Exception as exc:  # noqa: BLE001 - any failure of the model counts as a failed attempt
            run.error, run.failure = f"{type(exc).__name__}: {exc}", exc
            continue
        problem = echo_problem(text, system_prompt=spec.system_prompt, instruction=instruction)
        if problem is not None:
            run.error, run.failure = problem, SpecialistError(problem)
            if problem != "empty answer" and not any(m.content == _NOT_AN_ANSWER for m in messages):
                messages.append(HumanMessage(content=_NOT_AN_ANSWER))  # the next attempt hears why
            continue
        run.output, run.error, run.failure = text, None, None
        return run
    return run


def _cannot_bind(model: BaseChatModel, tools: list[BaseTool], exc: Exception) -> str:
    """One line on why ``model`` cannot take ``tools`` (LangChain's default ``bind_tools`` says nothing)."""
    name = getattr(model, "model_id", None) or type(model).__name__
    names = ", ".join(t.name for t in tools)
    if isinstance(exc, NotImplementedError):
        why = str(exc) or f"{type(model).__name__} does not implement bind_tools"
        return f"model {name!r} cannot call tools ({names}): {why}"
    return f"model {name!r} cannot take the tools ({names}): {type(exc).__name__}: {exc}"


async def _converse(
    model: Any,
    messages: list[BaseMessage],
    tools: list[BaseTool],
    run: SpecialistRun,
    on_token: Callable[[str], None] | None,
) -> str:
    by_name = {t.name: t for t in tools}
    for _ in range(MAX_TOOL_STEPS):
        started = time.time()
        try:
            reply: AIMessage = await (
                model.ainvoke(messages) if on_token is None else stream_reply(model, messages, on_token)
            )
        finally:
            record_span("call", started, time.time(), call="model")
        usage = reply.usage_metadata
        run.tokens += int(usage["output_tokens"]) if usage else 0
        if not reply.tool_calls:
            return reply.content if isinstance(reply.content, str) else str(reply.content)
        messages.append(reply)
        for call in reply.tool_calls:
            tool = by_name.get(call["name"])
            started = time.time()
            if tool is None:
                result: Any = f"error: no tool named {call['name']!r} (available: {', '.join(by_name)})"
            else:
                try:
                    result = await tool.ainvoke(call["args"])
                except Exception as exc:  # noqa: BLE001 - the model sees the tool's error and can recover
                    result = f"error: {type(exc).__name__}: {exc}"
            record_span("tool", started, time.time(), tool=call["name"])
            messages.append(ToolMessage(content=str(result), tool_call_id=call["id"] or call["name"]))
    raise RuntimeError(f"no answer after {MAX_TOOL_STEPS} tool steps")


async def stream_reply(model: Any, messages: list[BaseMessage], on_token: Callable[[str], None]) -> AIMessage:
    """Stream ``model``'s reply, passing text pieces to ``on_token``; return the whole message."""
    whole: Any = None
    async for chunk in model.astream(messages):
        if isinstance(chunk.content, str) and chunk.content:
            on_token(chunk.content)
        whole = chunk if whole is None else whole + chunk
    if whole is None:
        return AIMessage(content="")
    return AIMessage(
        content=whole.content,
        tool_calls=whole.tool_calls,
        usage_metadata=whole.usage_metadata,
        response_metadata=whole.response_metadata,
    )
