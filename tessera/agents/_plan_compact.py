"""The compact plan format: one line per subtask, instruction first, for planners that decode under a grammar.

A verbose JSON plan spends about 20 tokens of keys and punctuation on each subtask, and a small model decodes
every one of them. The compact format spends about 5::

    s1: Read the order number in /tmp/order.png. -> reader
    s2: Compute the square of the order number with Python and print it. -> coder (needs s1)
    s3: Say this aloud: {{s2}} -> speaker (needs s2)

The instruction comes before the specialist, so the model picks the specialist having just written what
the subtask does ("... with Python ..." -> the coder). Every line after the first says which earlier
results it needs (``none``, or ids): those, and the subtasks its instruction quotes as ``{{id}}``, are its
dependencies. A quoted result is filled in; the others are handed over beside the instruction. The GBNF
grammar admits only ids ``s1``, ``s2``, … in order, the team's specialists, earlier ids after ``needs``
and bounded one-line instructions, so every plan it admits parses (quotes of later subtasks are left to
validation).
"""

from __future__ import annotations

import json
import re

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from tessera.types import Plan, Subtask, references

__all__ = [
    "ARROW",
    "CODE_HINT",
    "CompactScanner",
    "compact_grammar",
    "compact_line",
    "fast_grammar",
    "fast_prompt",
    "one_line",
    "parse_compact",
]

ARROW = " -> "
"""Between a subtask's instruction and its specialist; an instruction cannot contain ``->``."""
MAX_INSTRUCTION = 300
"""Longest instruction in the compact format, in characters (the grammar's bound)."""

CODE_HINT = " Compute it with Python."
"""What the fast path's worked examples add after a task that is computed (see :func:`fast_prompt`)."""

NEWLINE = json.dumps("\n")
_BACK_REFERENCE = re.compile(
    r"\b(the|that|these|those|both)\s+(\w+\s+)?(results?|numbers?|texts?|counts?|values?|answer|outputs?)\b"
    r"(?!\s+(of|in)\b)|\bthat (is|many)\b",
    re.IGNORECASE,
)
"""A later subtask that refers back to an earlier result without naming it ("Count the words in the text."
after "Read the text in a.png.") is a dependency a small planner often leaves out: it gets them all."""
_LINE = re.compile(r"^s(\d+): (.+) -> (\S+?)(?: \(needs (none|s\d+(?:, s\d+)*)\))?$")


def compact_grammar(names: list[str], max_subtasks: int, room: int | None = None) -> str:
    """GBNF for 1 to ``max_subtasks`` lines ``sK: <instruction> -> <specialist>``, ids in order.

    With ``room`` (tokens left in the context), instructions are bounded so that the longest plan fits
    (at four tokens a character, the worst case of byte-level tokenizers).
    """
    chars = MAX_INSTRUCTION
    if room is not None:
        chars = max(8, min(chars, (room - 24 * max_subtasks) // (4 * max_subtasks)))
    specialists = " | ".join(json.dumps(name) for name in names)
    rules = [f"spec ::= {specialists}"]
    # A character of an instruction: printable, not a newline, and a "-" never followed by ">".
    rules.append(r"tchar ::= [^\x00-\x1F\x2D] | [\x2D] [^\x00-\x1F\x2D\x3E]")
    rules.append(f"text ::= tchar{{1,{chars}}}")
    rules.append(f'l1 ::= "s1: " text {json.dumps(ARROW)} spec')
    for k in range(2, max_subtasks + 1):
        earlier = " | ".join(json.dumps(f"s{j}") for j in range(1, k))
        rules.append(f'l{k} ::= "s{k}: " text {json.dumps(ARROW)} spec " (needs " u{k} ")"')
        rules.append(f'u{k} ::= "none" | e{k} (", " e{k}){{0,{k - 2}}}')
        rules.append(f"e{k} ::= {earlier}")
    # No newline after the last line: a plan ends where its last specialist's name does, as the worked
    # examples do (after a newline, a small model tends to go on writing lines).
    tail = ""
    for k in range(max_subtasks, 1, -1):
        tail = f"({NEWLINE} l{k}{' ' + tail if tail else ''})?"
    rules.insert(0, f"root ::= l1{' ' + tail if tail else ''}")
    return "\n".join(rules) + "\n"


def fast_grammar(names: list[str], *, hint: bool) -> str:
    """GBNF for what follows ``s1: <task>`` on the fast path: optionally :data:`CODE_HINT`, then
    ``-> <specialist>``."""
    specialists = " | ".join(json.dumps(name) for name in names)
    optional = f"{json.dumps(CODE_HINT)}? " if hint else ""
    return f"root ::= {optional}{json.dumps(ARROW)} ({specialists})\n"


def one_line(text: str) -> str:
    """``text`` as a compact plan's instruction: one line, and no arrow but the plan's own."""
    return " ".join(text.split()).replace("->", "\u2192")


def fast_prompt(messages: list[BaseMessage]) -> tuple[list[BaseMessage], bool]:
    """The compact planner's prompt as the fast path uses it, and whether it shows :data:`CODE_HINT`.

    The fast path keeps a one-step task word for word, so each one-step worked example does too: else a
    task kept word for word looks like the examples that go to ``general`` (the only ones that keep
    theirs) and "What is 17 factorial?" went there. Where an example's own instruction computed with
    Python, its line keeps that as a short hint after the task, so the model still says how the task is
    done before it names the specialist. On the task suite's 8 one-step computations, the 1.5B sent 4 to
    ``general`` with the examples as the full planner has them, 2 with them word for word, none with the
    hint.
    """
    shots = list(messages)
    hinted = False
    for k in range(1, len(shots)):
        asked, reply = shots[k - 1], shots[k]
        if not (isinstance(asked, HumanMessage) and isinstance(reply, AIMessage)):
            continue
        try:
            plan = parse_compact(str(reply.content))
        except ValueError:
            continue
        if len(plan.subtasks) == 1:
            subtask = plan.subtasks[0]
            hint = CODE_HINT if "Python" in subtask.instruction else ""
            hinted = hinted or bool(hint)
            line = f"s1: {one_line(str(asked.content))}{hint}{ARROW}{subtask.specialist}"
            shots[k] = AIMessage(content=line)
    return shots, hinted


def compact_line(subtask: Subtask) -> str:
    """``subtask`` as one line of the compact format (for the planner's worked examples)."""
    uses = f" (needs {', '.join(subtask.depends_on) or 'none'})" if subtask.id != "s1" else ""
    return f"{subtask.id}: {subtask.instruction}{ARROW}{subtask.specialist}{uses}"


def _subtask(line: str, earlier: list[str]) -> Subtask | None:
    match = _LINE.match(line.strip())
    if match is None:
        return None
    number, instruction, specialist, uses = match.groups()
    task_id = f"s{number}"
    named = [*(uses.split(", ") if uses and uses != "none" else []), *references(instruction)]
    depends = [ref for ref in dict.fromkeys(named) if ref in earlier]
    if not depends and earlier and _BACK_REFERENCE.search(instruction):
        depends = list(earlier)  # "Add the two numbers", "how many weeks that is": it needs what came before
    return Subtask(id=task_id, specialist=specialist, instruction=instruction.strip(), depends_on=depends)


def parse_compact(text: str) -> Plan:
    """The plan in compact ``text``; raise ``ValueError`` naming a line that is not ``sK: … -> name``."""
    subtasks: list[Subtask] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        subtask = _subtask(line, [s.id for s in subtasks])
        if subtask is None:
            raise ValueError(f"not a plan line (sK: instruction -> specialist): {line[:80]!r}")
        subtasks.append(subtask)
    if not subtasks:
        raise ValueError("the plan has no subtasks")
    return Plan(subtasks=subtasks)


class CompactScanner:
    """Feed it text pieces; it returns each subtask the moment its line is complete."""

    def __init__(self) -> None:
        self.text = ""
        self._done = 0
        self._ids: list[str] = []

    def finish(self) -> list[Subtask]:
        """The generation ended: the last line is complete too."""
        return self.feed("\n")

    def feed(self, piece: str) -> list[Subtask]:
        self.text += piece
        found: list[Subtask] = []
        while (end := self.text.find("\n", self._done)) != -1:
            line, self._done = self.text[self._done : end], end + 1
            subtask = _subtask(line, self._ids) if line.strip() else None
            if subtask is not None:
                found.append(subtask)
                self._ids.append(subtask.id)
        return found
