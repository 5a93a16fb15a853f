"""Checks on a subtask's output after its specialist finished: the output's schema, and a verifier.

A failed check makes the attempt a failure, exactly like an exception: a routed subtask escalates to the
next tier (see :mod:`tessera.graphs.nodes`).

- ``specialists.<name>.output_schema``: the output must be JSON matching this JSON Schema (a fenced
  ```json block is accepted).
- ``specialists.<name>.verifier: other``: the other specialist's model reads the instruction and the output
  and says ok or not, with a reason. A verifier that cannot answer does not fail the work it checks.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["VERIFY_PROMPT", "Verdict", "echo_problem", "schema_problem", "verify"]

VERIFY_PROMPT = (
    "You check a teammate's work. Read the task and the output. Say ok only if the output does the whole "
    "task correctly; otherwise say what is wrong in one sentence. Reply with JSON."
)
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


_WORD = re.compile(r"\w+")


def _words(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def echo_problem(output: str, *, system_prompt: str | None, instruction: str) -> str | None:
    """Why ``output`` is not an answer (one line), or None: empty, or an echo of its own prompt.

    Small models sometimes reply with a line of their system prompt ("No preamble, no description of what
    you did.") or repeat the instruction back. Such output is a failure, so that routing escalates it,
    never a result. An echo is an output of at least four words that is wholly part of the system prompt,
    or the whole instruction repeated (at least six words); a short quote of the instruction ("Say hi" ->
    "hi") is an answer.
    """
    if not output.strip():
        return "empty answer"
    said = _words(output)
    count = said.count(" ") + 1 if said else 0
    if system_prompt and count >= 4 and said in _words(system_prompt):
        return f"the answer only repeats the specialist's system prompt: {output.strip()[:80]!r}"
    if count >= 6 and said == _words(instruction):
        return "the answer only repeats its instruction"
    return None


class Verdict(BaseModel):
    """A verifier's judgement of one output."""

    ok: bool
    reason: str = Field("", max_length=300)


def schema_problem(schema: dict[str, Any], output: str) -> str | None:
    """Why ``output`` breaks ``schema`` (one line), or None when it matches."""
    import jsonschema

    fenced = _FENCE.match(output)
    text = fenced.group(1) if fenced else output
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"output breaks its schema: not JSON ({exc.msg} at char {exc.pos})"
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"output breaks its schema: {where}: {exc.message}"
    except jsonschema.SchemaError as exc:
        return f"output_schema is not a valid JSON Schema: {exc.message}"
    return None


async def verify(model: BaseChatModel, instruction: str, output: str) -> Verdict:
    """Ask ``model`` whether ``output`` does ``instruction``."""
    from langchain_core.messages import HumanMessage, SystemMessage

    verdict = await model.with_structured_output(Verdict).ainvoke(
        [
            SystemMessage(content=VERIFY_PROMPT),
            HumanMessage(content=f"Task:\n{instruction[:4000]}\n\nOutput:\n{output[:6000]}"),
        ]
    )
    return Verdict.model_validate(verdict)
