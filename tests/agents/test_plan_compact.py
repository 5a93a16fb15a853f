"""The compact plan format of grammar-decoding planners: one line per subtask, instruction first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from tessera.agents._plan_compact import CompactScanner, compact_grammar, fast_prompt, parse_compact
from tessera.agents.planner import make_plan, planner_messages, validate_plan
from tessera.config import SpecialistConfig
from tessera.models.function import FunctionModel
from tessera.types import Subtask

TEAM = {
    "coder": SpecialistConfig(description="Runs Python.", kind="coder", model="m"),
    "general": SpecialistConfig(description="Explains things.", model="m"),
}


class LinePlanner(FunctionModel):
    """A scripted planner that decodes "under a grammar": it replies with compact plan text, in pieces."""

    grammar_decoding: ClassVar[bool] = True
    replies: list[str]
    grammars: list[str]
    seen: list[Any]
    prefills: list[str]

    async def astream_grammar(self, value: Any, grammar: str, *, prefill: str = "") -> AsyncIterator[str]:
        self.grammars.append(grammar)
        self.seen.append(value)
        self.prefills.append(prefill)
        text = self.replies.pop(0)
        for start in range(0, len(text), 7):
            yield text[start : start + 7]


def line_planner(*replies: str) -> LinePlanner:
    return LinePlanner(lambda *_a, **_k: "unused", replies=list(replies), grammars=[], seen=[], prefills=[])


def test_lines_parse_with_dependencies_from_needs_and_quotes_only_on_earlier_ids() -> None:
    plan = parse_compact(
        "s1: Compute 2**10 with Python and print it. -> coder\n"
        "s2: What is the capital of Japan? -> general (needs none)\n"
        "s3: Say which is larger, {{s1}} or 1000. -> general (needs s2)\n"
        "s4: Explain {{s5}}. -> general (needs none)"
    )
    assert [(s.id, s.specialist, s.depends_on) for s in plan.subtasks] == [
        ("s1", "coder", []),
        ("s2", "general", []),
        ("s3", "general", ["s2", "s1"]),
        ("s4", "general", []),
    ]
    assert validate_plan(plan, TEAM, 4) == ["s4: quotes {{s5}} but does not depend on 's5'"]
    with pytest.raises(ValueError, match="not a plan line"):
        parse_compact("s1: no specialist here")


def test_a_later_subtask_that_refers_back_without_saying_so_depends_on_what_came_before() -> None:
    plan = parse_compact(
        "s1: Read the text in /tmp/sign.png. -> general\n"
        "s2: Read the text in /tmp/other.png. -> general (needs none)\n"
        "s3: Count the words in the text with Python. -> coder (needs none)"
    )
    assert [s.depends_on for s in plan.subtasks] == [[], [], ["s1", "s2"]]  # s2 does not refer back


def test_the_scanner_hands_out_each_subtask_when_its_line_ends() -> None:
    scanner = CompactScanner()
    assert scanner.feed("s1: Compute 7 * 6 with Python. -> co") == []
    assert [s.id for s in scanner.feed("der\ns2: Add 1 to {{s1}}. -> coder (ne")] == ["s1"]
    assert scanner.feed("eds s1)") == []
    assert [(s.id, s.depends_on) for s in scanner.finish()] == [("s2", ["s1"])]


def test_the_grammar_holds_ids_in_order_and_names_only_earlier_subtasks() -> None:
    grammar = compact_grammar(["coder", "general"], 3)
    assert 'root ::= l1 ("\\n" l2 ("\\n" l3)?)?' in grammar
    assert 'spec ::= "coder" | "general"' in grammar
    assert 'e3 ::= "s1" | "s2"' in grammar and 'e2 ::= "s1"\n' in grammar
    assert "text ::= tchar{1,300}" in grammar
    assert "text ::= tchar{1,44}" in compact_grammar(["coder"], 3, room=600)  # (600 - 72) // 12: it fits
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)  # llama.cpp accepts it


def test_a_grammar_planner_streams_a_compact_plan_and_gets_examples_as_turns() -> None:
    model = line_planner(
        "s1: Compute fib(20) with Python and print it. -> coder\n"
        "s2: Write a sentence about {{s1}}. -> general (needs s1)"
    )
    started: list[Subtask] = []
    outcome = asyncio.run(
        make_plan(
            model, "Compute fib(20), then write about it.", TEAM, max_subtasks=4, on_subtask=started.append
        )
    )
    assert outcome.attempts == 1 and not outcome.fallback
    assert [(s.id, s.depends_on) for s in started] == [("s1", []), ("s2", ["s1"])]
    assert [s.specialist for s in outcome.plan.subtasks] == ["coder", "general"]
    messages = model.seen[0]
    assert isinstance(messages[1], HumanMessage) and messages[1].content == "What is 17 factorial?"
    assert messages[2] == AIMessage(content="s1: Compute 17 factorial with Python and print it. -> coder")
    assert "l4 ::=" in model.grammars[0] and "l5 ::=" not in model.grammars[0]


def test_the_fast_path_prefills_the_task_and_decodes_only_the_specialist() -> None:
    model = line_planner(" -> coder")
    outcome = asyncio.run(
        make_plan(model, "How many  primes are below 1000?", TEAM, max_subtasks=4, fast_path=True)
    )
    assert outcome.fast and outcome.attempts == 1
    assert [(s.specialist, s.instruction) for s in outcome.plan.subtasks] == [
        ("coder", "How many  primes are below 1000?")
    ]
    assert model.prefills == ["s1: How many primes are below 1000?"]  # one line, as the examples
    assert model.grammars == ['root ::= " Compute it with Python."? " -> " ("coder" | "general")\n']


def test_the_fast_paths_examples_keep_their_one_step_tasks_word_for_word() -> None:
    messages = planner_messages("What is 2**40?", TEAM, max_subtasks=4, compact=True)
    shots, hinted = fast_prompt(messages)
    replies = {
        str(a.content): str(b.content)
        for a, b in zip(shots, shots[1:], strict=False)
        if isinstance(b, AIMessage)
    }
    assert (
        hinted
        and replies["What is 17 factorial?"] == "s1: What is 17 factorial? Compute it with Python. -> coder"
    )
    assert replies["What is the capital of Peru?"] == "s1: What is the capital of Peru? -> general"
    assert (
        len(
            replies[
                "Compute the 12th triangular number, then explain in one sentence what triangular numbers are."
            ].splitlines()
        )
        == 2
    )  # plans of several steps are as the full planner has them
    assert shots[0] == messages[0] and shots[-1] == messages[-1]
    without_coder = {"general": TEAM["general"]}
    assert not fast_prompt(planner_messages("t", without_coder, max_subtasks=4, compact=True))[1]


def test_json_planners_keep_the_json_prompt() -> None:
    system = str(planner_messages("t", TEAM, max_subtasks=3)[0].content)
    assert "Reply with JSON" in system and '"specialist": "coder"' in system
    compact = planner_messages("t", TEAM, max_subtasks=3, compact=True)
    assert "s1: <instruction> -> <specialist>" in str(compact[0].content)
    assert "Reply with JSON" not in str(compact[0].content)
