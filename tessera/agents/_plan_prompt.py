"""What the planner is shown and held to: few-shot examples from the team, a plan schema, the fast path.

Small planners pick the wrong specialist and write plans that cannot run. Three things help, each cheap:

- **Examples built from the team's own specialists** (as TinyAgent and LLMCompiler do in context): a
  computation goes to the coder, an explanation to the general specialist, a chain quotes ``{{s1}}``.
- **A schema that only admits runnable plans**, for backends that decode under a grammar: ids ``s1``,
  ``s2``, … in order, specialists from the team, dependencies on earlier ids only, bounded instructions.
  Such a plan needs no repair round trip. Other backends (function models) keep the plain ``Plan`` schema.
- **A fast path for one-step tasks**: a short task with no sign of several steps skips writing a plan; the
  planner only names the specialist (a few tokens under an enum grammar) and the task is its instruction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tessera.agents._plan_compact import compact_line
from tessera.types import Subtask

if TYPE_CHECKING:
    from tessera.config import SpecialistConfig

__all__ = ["examples_for", "is_single_step", "plan_schema", "rules_and_shots", "specialist_schema"]

MAX_INSTRUCTION = 400
"""Longest instruction a grammar-bound plan may carry (characters); long inputs are quoted, not copied."""

_SEVERAL_STEPS = re.compile(
    r"\b(then|after that|afterwards|next|finally|and also|as well as|both|each|every|first|second)\b"
    r"|;|\n|\b\d\)\s|\bstep\b",
    re.IGNORECASE,
)
_VERB = (
    r"(compute|calculate|write|explain|describe|read|say|speak|translate|summari[sz]e|find|search|list|"
    r"count|convert|check|tell|give|draw|answer|look up|create|make|turn|save|run)"
)
_QUESTION = r"(what|which|who|whom|whose|where|when|why|how)"
"""A second question after "and" or a comma: "What is 2**20, and which client …" is two steps."""
_AND_VERB = re.compile(rf"(,|\band\b)\s+(also\s+)?{_VERB}\b|\band\s+(also\s+)?{_QUESTION}\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]\s+[A-Z]")
_ANSWER_FORM = re.compile(
    r"(?<=[.!?])\s+(answer|reply|respond|be|keep it|give only|only give|just give)\b[^.!?\n]*[.!?]?\s*$",
    re.IGNORECASE,
)
"""A last sentence that only says how to answer ("Answer in one word.") is not a step of its own."""


def is_single_step(task: str, *, max_chars: int = 300) -> bool:
    """A conservative guess that ``task`` is one step: short, one sentence (and perhaps one more that only
    says how to answer), no "then", no "and <verb>"."""
    text = task.strip()
    if not text or len(text) > max_chars:
        return False
    if _SEVERAL_STEPS.search(text) or _AND_VERB.search(text):
        return False
    return not _SENTENCE_END.search(_ANSWER_FORM.sub("", text))


def specialist_schema(names: list[str]) -> dict[str, Any]:
    """``{"specialist": one of names}``: the fast path's whole output."""
    return {
        "type": "object",
        "properties": {"specialist": {"enum": names}},
        "required": ["specialist"],
        "additionalProperties": False,
    }


def plan_schema(names: list[str], max_subtasks: int) -> dict[str, Any]:
    """A JSON schema whose every instance is a runnable plan (up to quotes of later subtasks).

    ``subtasks`` is a tuple of 1 to ``max_subtasks`` items: the k-th has id ``sk`` and may depend only on
    ``s1`` … ``s(k-1)``, so there are no unknown ids, duplicates, self-dependencies or cycles. (The grammar
    makes the items after the first optional: see :func:`tessera.models._schema.schema_to_grammar`.)
    """

    def subtask(k: int) -> dict[str, Any]:
        earlier = [f"s{j}" for j in range(1, k)]
        depends: dict[str, Any] = (
            {"type": "array", "items": {"enum": earlier}, "maxItems": len(earlier)}
            if earlier
            else {"type": "array", "items": {"enum": ["s0"]}, "maxItems": 0}
        )
        return {
            "type": "object",
            "properties": {
                "id": {"const": f"s{k}"},
                "specialist": {"enum": names},
                "instruction": {"type": "string", "minLength": 1, "maxLength": MAX_INSTRUCTION},
                "depends_on": depends,
            },
            "required": ["id", "specialist", "instruction", "depends_on"],
            "additionalProperties": False,
        }

    subtasks = {
        "type": "array",
        "prefixItems": [subtask(k) for k in range(1, max_subtasks + 1)],
        "items": False,
        "minItems": 1,
    }
    return {
        "type": "object",
        "properties": {"subtasks": subtasks},
        "required": ["subtasks"],
        "additionalProperties": False,
    }


def _kinds(specialists: Mapping[str, SpecialistConfig]) -> dict[str, str]:
    """The first specialist of each well-known kind (``tool`` kinds by their tool)."""
    found: dict[str, str] = {}
    for name, spec in specialists.items():
        kind = f"tool:{spec.tool}" if spec.kind == "tool" else spec.kind
        found.setdefault(kind, name)
    return found


def examples_for(specialists: Mapping[str, SpecialistConfig]) -> str:
    """Routing rules and worked examples (JSON plans) for this team; "" if it has none of the known kinds."""
    rules, shots = rules_and_shots(specialists)
    if not shots and not rules:
        return ""
    lines = [*rules, "", "Examples:"] if rules else ["Examples:"]
    for task, plan in shots:
        lines += [f"Task: {task}", plan]
    return "\n".join(lines)


def rules_and_shots(
    specialists: Mapping[str, SpecialistConfig], *, compact: bool = False
) -> tuple[list[str], list[tuple[str, str]]]:
    """Routing rules by specialist kind, and worked examples ``(task, plan)`` that use this team's names.

    Plans are written in the compact format with ``compact``, else as JSON.
    """

    def _plan_json(*subtasks: tuple[str, str, list[str]]) -> str:
        items = [
            Subtask(id=f"s{k}", specialist=who, instruction=what, depends_on=deps)
            for k, (who, what, deps) in enumerate(subtasks, 1)
        ]
        if compact:
            return "\n".join(compact_line(item) for item in items)
        return json.dumps({"subtasks": [item.model_dump() for item in items]}, ensure_ascii=False)

    kinds = _kinds(specialists)
    coder, general = kinds.get("coder"), kinds.get("general")
    reader, speaker, researcher = kinds.get("tool:ocr"), kinds.get("tool:tts"), kinds.get("retriever")
    shots: list[tuple[str, str]] = []
    if coder:
        shots.append(
            (
                "What is 17 factorial?",
                _plan_json((coder, "Compute 17 factorial with Python and print it.", [])),
            )
        )
        shots.append(
            (
                "How many vowels are there in 'programming language'?",
                _plan_json(
                    (coder, "Count the vowels in 'programming language' with Python and print it.", [])
                ),
            )
        )
    if general:
        shots.append(
            (
                "What is the capital of Peru?",
                _plan_json((general, "What is the capital of Peru?", [])),
            )
        )
    if coder and general:
        shots.append(
            (
                "Compute the 12th triangular number, then explain in one sentence what triangular "
                "numbers are.",
                _plan_json(
                    (coder, "Compute the 12th triangular number with Python and print it.", []),
                    (general, "Explain in one sentence what triangular numbers are.", []),
                ),
            )
        )
    if coder and general:
        shots.append(
            (
                "Compute 2**16 and 3**10 with Python, then tell me in one sentence which is larger.",
                _plan_json(
                    (coder, "Compute 2**16 with Python and print it.", []),
                    (coder, "Compute 3**10 with Python and print it.", []),
                    (general, "Which is larger, {{s1}} or {{s2}}? Answer in one sentence.", ["s1", "s2"]),
                ),
            )
        )
    if researcher:
        shots.append(
            (
                "What does our handbook say about parking?",
                _plan_json((researcher, "What does the handbook say about parking?", [])),
            )
        )
    if reader and speaker:
        shots.append(
            (
                "Turn the words on the poster /tmp/poster.jpg into speech.",
                _plan_json(
                    (reader, "Read the text in /tmp/poster.jpg.", []),
                    (speaker, "Say this aloud: {{s1}}", ["s1"]),
                ),
            )
        )
    if general and coder:
        shots.append(
            (
                "Count the words in 'a b c d', then write a haiku that uses that number.",
                _plan_json(
                    (coder, "Count the words in 'a b c d' with Python and print the count.", []),
                    (general, "Write a haiku that uses the number {{s1}}.", ["s1"]),
                ),
            )
        )
    rules = []
    if coder:
        rules.append(
            f"Anything with numbers, counting, math, dates or exact text processing goes to {coder}."
        )
    if researcher:
        rules.append(f"Questions about our own documents (handbook, guides, policies) go to {researcher}.")
    if reader:
        rules.append(f"Reading the text of an image or scan goes to {reader}.")
    if speaker:
        rules.append(f"Saying something aloud goes to {speaker}.")
    if listener := kinds.get("tool:asr"):
        rules.append(f"Transcribing a recording (a wav, flac, mp3 or ogg file) goes to {listener}.")
    return rules, shots
