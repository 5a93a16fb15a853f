"""Demo function models: a team that runs with no download at all (``configs/offline.yaml``).

They are deterministic and honest about what they are: ``echo`` repeats the request, and answers a
structured request with the simplest JSON value that satisfies the schema. ``planner`` plans by rule, not
by understanding: it splits the task on sentence ends, ``;``, ``then`` and list items, picks each part's
specialist by word overlap with the descriptions in its prompt, and chains the parts joined by ``then``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Part", "echo", "example_for", "planner", "split_task"]

DEFAULT_MAX_SUBTASKS = 8
MAX_INSTRUCTION = 800

_SPECIALIST_LINE = re.compile(r"^\s*[-*]\s+([A-Za-z0-9_.-]+):\s*(.*)$")
_LIMIT = re.compile(r"at most (\d+)", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_THEN = re.compile(r"\s*,?\s+(?:and\s+)?then\s+", re.IGNORECASE)
_LEADING_THEN = re.compile(r"^(?:and\s+)?then\b[,:]?\s*", re.IGNORECASE)
_RESULT_LINE = re.compile(r"^\[([^\]/]+?)\s*/\s*([^\]]+?)\]\s?(.*)$")
_FAILED = re.compile(r"^\((failed|skipped):\s*(.*)\)$", re.DOTALL)
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an and are as at be by do does for from in into is it its of on or so that the then this to "
    "was what when which with you your".split()
)


def echo(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """Reply with the last user message (or, for structured output, a minimal valid JSON value)."""
    if schema is not None:
        return json.dumps(example_for(schema))
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    return f"echo: {last['content']}"


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """A rule-based planner, join judge and answer writer, for teams with no model weights.

    With a plan schema it returns a plan for the task in the first user message; with another schema (the
    join decision) it says done unless a result failed; with no schema it joins the results' outputs.
    """
    if schema is not None and "subtasks" in schema.get("properties", {}):
        return json.dumps(_plan(messages))
    if schema is not None:
        return json.dumps(_decide(messages, schema))
    return _compose(_last_user(messages))


@dataclass
class Part:
    """One piece of a task: its text, and whether it follows on from the piece before it."""

    text: str
    chained: bool = False


def split_task(task: str) -> list[Part]:
    """Split ``task`` on list items, sentence ends, ``;`` and ``then`` (which chains to the part before)."""
    chunks: list[str] = []
    prose: list[str] = []
    for line in task.splitlines():
        if _LIST_ITEM.match(line):
            chunks.extend([" ".join(prose), _LIST_ITEM.sub("", line, count=1)])
            prose = []
        else:
            prose.append(line.strip())
    chunks.append(" ".join(prose))
    parts: list[Part] = []
    for chunk in chunks:
        for sentence in _SENTENCE_END.split(chunk.strip()):
            for clause in sentence.split(";"):
                for i, piece in enumerate(_THEN.split(clause)):
                    chained = i > 0 or bool(_LEADING_THEN.match(piece.strip()))
                    text = _LEADING_THEN.sub("", piece.strip()).strip(" ,")
                    text = re.sub(r"^and\s+", "", text, flags=re.IGNORECASE)
                    if text:
                        parts.append(Part(text[:1].upper() + text[1:], chained and bool(parts)))
    if len(parts) > 1:  # "Do these:" only introduces the list that follows
        parts = [p for p in parts if not p.text.endswith(":")] or parts
    return parts or [Part(task.strip() or "(empty task)")]


def _plan(messages: list[dict[str, Any]]) -> dict[str, Any]:
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    specialists = _specialists(system)
    limit = _LIMIT.search(system)
    max_subtasks = int(limit.group(1)) if limit else DEFAULT_MAX_SUBTASKS
    parts = split_task(_task(_first_user(messages)))
    if len(parts) > max_subtasks:  # the last subtask takes on the rest, so no work is dropped
        keep, rest = parts[: max_subtasks - 1], parts[max_subtasks - 1 :]
        merged = rest[0].text + "".join(("; then " if p.chained else "; ") + p.text for p in rest[1:])
        parts = [*keep, Part(merged, rest[0].chained)]
    subtasks: list[dict[str, Any]] = []
    for index, part in enumerate(parts, start=1):
        deps = [f"s{index - 1}"] if part.chained and index > 1 else []
        quote = f"\n\nInput: {{{{{deps[0]}}}}}" if deps else ""
        subtasks.append(
            {
                "id": f"s{index}",
                "specialist": _pick(part.text, specialists),
                "instruction": part.text[: MAX_INSTRUCTION - len(quote)] + quote,
                "depends_on": deps,
            }
        )
    return {"subtasks": subtasks}


def _specialists(system: str) -> dict[str, str]:
    """The ``- name: description`` lines of the planner prompt, in order."""
    found: dict[str, str] = {}
    for line in system.splitlines():
        match = _SPECIALIST_LINE.match(line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found or {"general": ""}


def _pick(text: str, specialists: dict[str, str]) -> str:
    """The specialist whose name and description share most words with ``text``; ties go to the default."""
    default = "general" if "general" in specialists else next(iter(specialists))
    words = _words(text)
    best, best_score = default, 0
    for name, description in specialists.items():
        score = len(words & (_words(description) | _words(name.replace("_", " "))))
        if score > best_score:
            best, best_score = name, score
    return best


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOPWORDS}


def _stem(word: str) -> str:
    """A crude stem, so that "translate", "translates" and "translation" meet."""
    for suffix in ("ing", "ion", "es", "ed", "er", "e", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _decide(messages: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    if "done" not in schema.get("properties", {}):
        return dict(example_for(schema))
    failed = [
        f"{sid} {match.group(1)}: {match.group(2)}"
        for sid, _, body in _results(_last_user(messages))
        if (match := _FAILED.match(body))
    ]
    if not failed:
        return {"done": True, "reason": "every subtask succeeded"}
    return {"done": False, "reason": "; ".join(failed)[:300]}


def _compose(text: str) -> str:
    results = _results(text)
    outputs = [body for _, _, body in results if not _FAILED.match(body)]
    if outputs:
        return "\n\n".join(outputs)
    return "No subtask succeeded." if results else text


def _results(text: str) -> list[tuple[str, str, str]]:
    """``(id, specialist, output)`` for each ``[id / specialist] output`` entry, in id order."""
    entries: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        match = _RESULT_LINE.match(line)
        if match:
            entries.append((match.group(1), match.group(2), [match.group(3)]))
        elif entries:
            entries[-1][2].append(line)
    ordered = sorted(enumerate(entries), key=lambda e: (_number(e[1][0]), e[0]))
    return [(sid, who, "\n".join(lines).strip()) for _, (sid, who, lines) in ordered]


def _number(subtask_id: str) -> float:
    digits = re.fullmatch(r"[A-Za-z_]*(\d+)", subtask_id)
    return int(digits.group(1)) if digits else math.inf


def _task(content: str) -> str:
    """The task itself, without the context (earlier results) that a replan puts before it."""
    return content.rsplit("\n\nTask: ", 1)[-1] if "\n\nTask: " in content else content


def _first_user(messages: list[dict[str, Any]]) -> str:
    return str(next((m["content"] for m in messages if m.get("role") == "user"), ""))


def _last_user(messages: list[dict[str, Any]]) -> str:
    return str(next((m["content"] for m in reversed(messages) if m.get("role") == "user"), ""))


def example_for(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The simplest value that validates against ``schema`` (required fields only)."""
    defs = defs if defs is not None else {**schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return example_for(defs[str(schema["$ref"]).rsplit("/", 1)[-1]], defs)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return example_for(schema[key][0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_for(props[k], defs) for k in schema.get("required", []) if k in props}
    if kind == "array":
        item = schema.get("items", {})
        return [example_for(item, defs) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "string":
        return "x" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None
