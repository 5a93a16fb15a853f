"""Tool calling for the ``llama_cpp`` backend: the prompt, the request, and the calls read back.

The protocol is Hermes / Qwen2.5's. The tools' signatures go into the system prompt; the model calls a tool
by answering ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` (one or more blocks, nothing
else), and each result comes back as ``<tool_response>...</tool_response>`` in a user turn.

* **Prompt.** When the GGUF's own chat template speaks this protocol (it lists the tools, and renders
  an assistant's calls in ``<tool_call>`` tags and tool results in ``<tool_response>`` tags, as Qwen2.5's
  does), llama-cpp-python renders the conversation with it, tools included. Otherwise the same text is
  written into plain system, assistant and user messages, so any chat template carries it.
* **Grammar.** The reply is decoded under :mod:`tessera.models._tool_grammar`'s grammar: text, or calls
  that fit the tools' schemas, never a malformed call.
* **Length.** ``max_tokens`` is raised to the longest call the grammar allows, so no call is cut off; a
  plain-text answer still stops at the model's own ``max_tokens`` (:class:`TextLimit`).
* **Repeats.** A reply that only repeats calls already answered in the conversation is dropped, and the
  model answers from the results instead (:func:`repeat_guard`).
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, ToolCallChunk
from langchain_core.messages.tool import tool_call

from tessera.errors import StructuredOutputError
from tessera.models._llama_stream import TokenTap
from tessera.models._tool_grammar import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    Tools,
    may_be_call,
    reply_grammar,
)

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = [
    "TextLimit",
    "ToolRequest",
    "has_tool_turns",
    "hermes_messages",
    "read_tool_calls",
    "repeat_answered",
    "repeat_guard",
    "speaks_tool_calls",
    "tool_call_chunks",
    "tool_request",
]

DEFAULT_SYSTEM = "You are a helpful assistant."
TOOLS_INTRO = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_OUTRO = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
    "<args-json-object>}\n</tool_call>"
)
_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"\s*(.*?)\s*" + re.escape(TOOL_CALL_CLOSE), re.DOTALL)


# -- the prompt -------------------------------------------------------------------------------------------


@dataclass
class ToolRequest:
    """A chat completion's arguments for a call with tools (or a history that holds tool turns)."""

    messages: list[dict[str, Any]]
    params: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    """``tools=`` for a template that renders them."""
    grammar: str | None = None
    limit: TextLimit | None = None
    """The tap that keeps a text answer to the model's ``max_tokens`` (set when tools are bound)."""


def has_tool_turns(messages: list[dict[str, Any]]) -> bool:
    """Whether an OpenAI-style history holds tool calls or tool results."""
    return any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)


def tool_request(
    llm: Llama,
    messages: list[dict[str, Any]],
    tools: Tools | None,
    params: dict[str, Any],
    tap: TokenTap | None,
) -> ToolRequest:
    """The request for ``messages`` (OpenAI-style) on ``llm``: in its own template, or in plain Hermes text.

    With ``tools``, also the reply's grammar, ``max_tokens`` raised to the longest call it allows, and a
    :class:`TextLimit` in place of ``tap``.
    """
    specs = tools.tools if tools is not None and tools.listed else None
    if speaks_tool_calls(llm):
        request = ToolRequest([_arguments_as_objects(m) for m in messages], dict(params))
        if specs:
            request.extra["tools"] = specs
        listed = json.dumps(specs or []) + TOOLS_INTRO + TOOLS_OUTRO
    else:
        request, listed = ToolRequest(hermes_messages(messages, specs), dict(params)), ""
    if tools is not None:
        room = llm.n_ctx() - _prompt_tokens(llm, request.messages, listed)
        request.grammar, longest = reply_grammar(tools, room)
        asked = int(params.get("max_tokens") or room)
        request.limit = TextLimit(tap, asked)
        request.params["max_tokens"] = max(asked, longest or 0)
    return request


def speaks_tool_calls(llm: Llama) -> bool:
    """Whether ``llm`` renders chats with its GGUF template and that template speaks the Hermes protocol."""
    if getattr(llm, "chat_handler", None) is not None or llm.chat_format != "chat_template.default":
        return False
    template = llm.metadata.get("tokenizer.chat_template")
    return bool(template) and template_speaks_tool_calls(str(template))


@functools.lru_cache(maxsize=16)
def template_speaks_tool_calls(template: str) -> bool:
    """Render a probe conversation with ``template``: does it list tools and use the tags?"""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    probe: Any = {"type": "function", "function": {"name": "tessera_probe", "parameters": {"type": "object"}}}
    call = {"id": "c1", "type": "function", "function": {"name": "tessera_probe", "arguments": {"x": 1}}}
    chat: Any = [
        {"role": "system", "content": "SYSTEM"},
        {"role": "user", "content": "USER"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "RESULT", "tool_call_id": "c1"},
    ]
    try:
        text = Jinja2ChatFormatter(template, eos_token="", bos_token="")(messages=chat, tools=[probe]).prompt
    except Exception:  # noqa: BLE001 - a template that cannot render this does not speak the protocol
        return False
    expected = (
        '"tessera_probe"',
        f'{TOOL_CALL_OPEN}\n{{"name": "tessera_probe", "arguments": {{"x": 1}}}}\n{TOOL_CALL_CLOSE}',
        "<tool_response>\nRESULT\n</tool_response>",
    )
    return all(part in text for part in expected) and text.index('"tessera_probe"') < text.index("USER")


def _arguments_as_objects(message: dict[str, Any]) -> dict[str, Any]:
    """OpenAI sends a call's arguments as a JSON string; chat templates (``| tojson``) expect the object."""
    if not message.get("tool_calls"):
        return message
    calls = []
    for call in message["tool_calls"]:
        function = dict(call.get("function") or {})
        if isinstance(function.get("arguments"), str):
            function["arguments"] = json.loads(function["arguments"] or "{}")
        calls.append({**call, "function": function})
    return {**message, "content": message.get("content") or "", "tool_calls": calls}


def hermes_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The Hermes protocol written into plain messages, for chat templates that know nothing of tools.

    The tools follow the system prompt; an assistant's calls are ``<tool_call>`` blocks in its text; a run
    of tool results is one user turn of ``<tool_response>`` blocks. On a ChatML template this renders
    exactly what Qwen2.5's own template renders.
    """
    out: list[dict[str, Any]] = []
    after_tool = False
    for message in messages:
        role, content = message.get("role"), message.get("content") or ""
        if role == "tool":
            block = f"<tool_response>\n{content}\n</tool_response>"
            if after_tool:
                out[-1] = {"role": "user", "content": f"{out[-1]['content']}\n{block}"}
            else:
                out.append({"role": "user", "content": block})
            after_tool = True
            continue
        after_tool = False
        if role == "assistant" and message.get("tool_calls"):
            calls = [_call_text(c) for c in _arguments_as_objects(message)["tool_calls"]]
            content = "\n".join([content, *calls] if content else calls)
        out.append({"role": role, "content": content})
    if tools is not None:
        listed = TOOLS_INTRO + "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools) + TOOLS_OUTRO
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{listed}"}
        else:
            out.insert(0, {"role": "system", "content": f"{DEFAULT_SYSTEM}\n\n{listed}"})
    return out


def _call_text(call: dict[str, Any]) -> str:
    function = call["function"]
    body = json.dumps({"name": function["name"], "arguments": function["arguments"]}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}\n{body}\n{TOOL_CALL_CLOSE}"


def _prompt_tokens(llm: Llama, messages: list[dict[str, Any]], extra: str) -> int:
    """An upper estimate of the prompt's tokens: the contents, ``extra`` and template overhead."""
    text = "\n".join([*(str(m.get("content") or "") for m in messages), extra])
    return len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)) + 16 * len(messages)


# -- reading the reply ------------------------------------------------------------------------------------


def read_tool_calls(
    message: AIMessage, model_id: str, tools: Tools, limit: TextLimit | None = None
) -> AIMessage:
    """The reply as LangChain expects it: ``tool_calls`` (with ids) when the model called tools.

    A text answer that ``limit`` stopped is reported as cut (``finish_reason: length``).

    Raises:
        StructuredOutputError: a call did not finish (the context ran out, or the generation was cut).
    """
    text = message.content if isinstance(message.content, str) else ""
    metadata = dict(message.response_metadata)
    if tools.choice != "none" and (fenced := _fenced_call(text, tools)) is not None:
        text = fenced
    if tools.choice == "none" or not text or not may_be_call(text):
        if limit is not None and limit.fired:
            metadata["finish_reason"] = "length"
        return message.model_copy(update={"response_metadata": metadata})
    blocks = _BLOCK.findall(text) if text.startswith(TOOL_CALL_OPEN) else [text]
    calls = []
    try:
        for block in blocks:
            data = json.loads(block)
            call_id = f"call_{uuid.uuid4().hex[:24]}"
            calls.append(tool_call(name=data["name"], args=data["arguments"], id=call_id))
    except (json.JSONDecodeError, KeyError, TypeError):
        calls = []
    if not calls or text.count(TOOL_CALL_OPEN) > len(calls):
        reason = metadata.get("finish_reason")
        raise StructuredOutputError(
            f"model {model_id!r}: its tool call did not finish ({reason}): {text[:120]!r}"
        )
    metadata["finish_reason"] = "tool_calls"
    return AIMessage(
        content="",
        tool_calls=calls,
        usage_metadata=message.usage_metadata,
        response_metadata=metadata,
    )


_FENCED = re.compile(r"^\s*```(?:json)?\s*\n?(\{.*\})\s*```\s*$", re.DOTALL)


def _fenced_call(text: str, tools: Tools) -> str | None:
    """The call in a reply that is only a JSON block ``{"name": <a bound tool>, "arguments": {...}}``.

    Under ``tool_choice: auto`` the grammar lets a model answer in text, and Qwen2.5-Coder often writes its
    call as a fenced JSON block instead of ``<tool_call>``; such a reply is read as the call it spells out.
    """
    match = _FENCED.match(text)
    if match is None:
        return None
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError:
        return None
    names = {str(t["function"]["name"]) for t in tools.tools}
    if (
        not isinstance(data, dict)
        or data.get("name") not in names
        or not isinstance(data.get("arguments"), dict)
    ):
        return None
    return json.dumps({"name": data["name"], "arguments": data["arguments"]})


def repeat_guard(reply: AIMessage, history: list[dict[str, Any]], tools: Tools) -> Tools | None:
    """When ``reply`` only repeats calls the history already holds, the tools to answer with instead.

    A small model at temperature 0 that asks again for a result it has asks forever (Qwen2.5-Coder-0.5B
    does, with its tools listed); it then answers from the results, with the tools no longer listed.
    """
    if not reply.tool_calls or not tools.listed:
        return None
    made = [
        (call["function"]["name"], call["function"]["arguments"])
        for message in history
        for call in _arguments_as_objects(message).get("tool_calls") or []
    ]
    if not all((c["name"], c["args"]) in made for c in reply.tool_calls):
        return None
    return replace(tools, choice="none", listed=False)


def repeat_answered(repeat: AIMessage, answer: AIMessage) -> AIMessage:
    """``answer``, counting the tokens of the dropped ``repeat`` too and naming what it repeated."""
    usage: dict[str, Any] = dict(answer.usage_metadata or {})
    dropped: dict[str, Any] = dict(repeat.usage_metadata or {})
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        usage[key] = usage.get(key, 0) + dropped.get(key, 0)
    metadata = {**answer.response_metadata, "dropped_repeated_calls": [c["name"] for c in repeat.tool_calls]}
    return answer.model_copy(update={"usage_metadata": usage, "response_metadata": metadata})


def tool_call_chunks(message: AIMessage) -> list[ToolCallChunk]:
    """A finished message's tool calls as the chunks a stream ends with."""
    return [
        ToolCallChunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
        for i, c in enumerate(message.tool_calls)
    ]


class TextLimit(TokenTap):
    """A token tap that also stops a plain-text answer at ``limit`` tokens.

    With tools bound, ``max_tokens`` is raised so that the longest call fits; this keeps a text answer to
    the model's own ``max_tokens`` all the same. A tool call (the reply starts with ``<tool_call>`` or
    ``{``) runs on to the end its grammar bounds. (llama-cpp-python reports a stop by a stopping criterion as
    ``finish_reason: stop``; :func:`read_tool_calls` makes it ``length``.)
    """

    def __init__(self, tap: TokenTap | None, limit: int) -> None:
        super().__init__(cancel=tap.cancel if tap else None, on_text=tap.on_text if tap else None)
        self.limit = limit
        self.prompt_tokens: int | None = None
        self.fired = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        super().__call__(input_ids, logits)
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)
        # it sees the tokens evaluated so far: ``limit`` made means the next one is not kept
        if len(input_ids) - self.prompt_tokens < self.limit or self._llm is None:
            return False
        head = self._llm.detokenize(list(input_ids[self.prompt_tokens :])[:16]).decode("utf-8", "ignore")
        self.fired = not may_be_call(head)
        return self.fired
