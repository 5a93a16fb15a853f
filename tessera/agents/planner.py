"""The planner: a task in, a validated DAG of subtasks out.

The plan is decoded as structured output, so even a tiny model returns parseable JSON. It is then validated
(unknown specialist, duplicate id, dangling or self dependency, cycle, a ``{{ref}}`` to a subtask that is
not a dependency, too many subtasks). A plan that fails goes back to the planner once with the reasons; if
the repair fails too, the task falls back to one subtask on the most general specialist. Planning never
crashes a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import ValidationError

from tessera.agents._plan_compact import (
    CompactScanner,
    compact_grammar,
    fast_grammar,
    fast_prompt,
    one_line,
    parse_compact,
)
from tessera.agents._plan_prompt import (
    examples_for,
    is_single_step,
    plan_schema,
    rules_and_shots,
    specialist_schema,
)
from tessera.agents._plan_stream import PlanScanner
from tessera.models.base import TesseraChatModel, validate_output
from tessera.types import Plan, Subtask, references

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from tessera.config import SpecialistConfig

__all__ = [
    "PlanOutcome",
    "make_plan",
    "normalize_plan",
    "normalize_references",
    "planner_messages",
    "validate_plan",
]

PLANNER_PROMPT = """You are the planner of a team of specialists. Break the user's task into subtasks.
Each subtask goes to exactly one specialist. Independent subtasks run in parallel, so only add a dependency
when a subtask needs another's result; quote that result in the instruction as {{{{id}}}}.
Use as few subtasks as the task needs (at most {max_subtasks}).

Specialists:
{specialists}

{reply}"""

JSON_REPLY = """Reply with JSON:
{"subtasks": [{"id": "s1", "specialist": "...", "instruction": "...", "depends_on": []}]}"""

COMPACT_REPLY = """Reply with one line per subtask, in order: s1: <instruction> -> <specialist>
Each instruction is one line, complete enough to do on its own. From s2 on, each line ends with the
earlier results it needs: (needs s1), (needs s1, s2), or (needs none) to run at once, in parallel.
It then sees those results; {{s1}} puts s1's result inside the instruction."""


def validate_plan(plan: Plan, specialists: Mapping[str, object], max_subtasks: int) -> list[str]:
    """Every reason ``plan`` cannot run, one line each (empty when it is valid)."""
    problems: list[str] = []
    ids = [s.id for s in plan.subtasks]
    if len(ids) > max_subtasks:
        problems.append(f"too many subtasks: {len(ids)} (at most {max_subtasks})")
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            problems.append(f"duplicate subtask id {task_id!r}")
        seen.add(task_id)
    known = sorted(specialists)
    for sub in plan.subtasks:
        if sub.specialist not in specialists:
            problems.append(f"{sub.id}: unknown specialist {sub.specialist!r} (known: {', '.join(known)})")
        for dep in sub.depends_on:
            if dep == sub.id:
                problems.append(f"{sub.id}: depends on itself")
            elif dep not in seen:
                problems.append(f"{sub.id}: depends on {dep!r}, which is not in the plan")
        for ref in references(sub.instruction):
            if ref not in sub.depends_on:
                problems.append(f"{sub.id}: quotes {{{{{ref}}}}} but does not depend on {ref!r}")
    cycle = _find_cycle(plan.subtasks)
    if cycle:
        problems.append("dependency cycle: " + " -> ".join(cycle))
    return problems


def _find_cycle(subtasks: list[Subtask]) -> list[str]:
    graph = {s.id: [d for d in s.depends_on if d != s.id] for s in subtasks}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep in graph and dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return []


def planner_messages(
    task: str,
    specialists: Mapping[str, SpecialistConfig],
    *,
    max_subtasks: int,
    system_prompt: str | None = None,
    context: str | None = None,
    examples: bool = True,
    compact: bool = False,
) -> list[BaseMessage]:
    """The planner's prompt: the team's specialists, worked examples that use them, then the task.

    With ``compact``, the reply format and the examples are the compact plan format's.
    """
    listing = "\n".join(f"- {name}: {spec.description}" for name, spec in specialists.items())
    system = (system_prompt or PLANNER_PROMPT).format(
        specialists=listing, max_subtasks=max_subtasks, reply=COMPACT_REPLY if compact else JSON_REPLY
    )
    user = task if not context else f"{context}\n\nTask: {task}"
    if not compact:
        shots = examples_for(specialists) if examples else ""
        if shots:
            system = f"{system}\n\n{shots}"
        return [SystemMessage(content=system), HumanMessage(content=user)]
    # Compact plans have no closing bracket: worked examples as earlier turns teach the model to end
    # its reply after the plan (text examples would have it go on to the next "Task:").
    rules, pairs = rules_and_shots(specialists, compact=True) if examples else ([], [])
    if rules:
        system = f"{system}\n\n" + "\n".join(rules)
    turns: list[BaseMessage] = []
    for example, plan in pairs:
        turns += [HumanMessage(content=example), AIMessage(content=plan)]
    return [SystemMessage(content=system), *turns, HumanMessage(content=user)]


@dataclass
class PlanOutcome:
    """A plan that can run, and how it came about."""

    plan: Plan
    attempts: int
    problems: list[str] = field(default_factory=list)
    """The validation problems of the rejected attempts."""
    fallback: bool = False
    """True when both attempts failed and the plan is the single-subtask fallback."""
    fast: bool = False
    """True when the fast path planned a one-step task: the planner only named the specialist."""


def general_specialist(specialists: Mapping[str, SpecialistConfig]) -> str:
    """The fallback specialist: a ``general`` one, else the first that runs a model (pinned or routed)."""
    models = [name for name, spec in specialists.items() if spec.kind != "tool"]  # pinned or routed
    general = [name for name in models if specialists[name].kind == "general"]
    return (general or models or list(specialists))[0]


async def make_plan(
    model: BaseChatModel,
    task: str,
    specialists: Mapping[str, SpecialistConfig],
    *,
    max_subtasks: int,
    system_prompt: str | None = None,
    context: str | None = None,
    on_subtask: Callable[[Subtask], None] | None = None,
    examples: bool = True,
    fast_path: bool = False,
) -> PlanOutcome:
    """Plan ``task``: one try, one repair with the reasons, then a single-subtask fallback.

    A model that decodes under a grammar (``constrained_decoding``) is held to :func:`plan_schema`, so its
    plan is runnable by construction. With ``fast_path``, such a model only names the specialist of a task
    that :func:`is_single_step` judges to be one step, and the task is the instruction. With
    ``on_subtask``, the plan is streamed and each subtask is passed to it the moment it is complete
    (before the plan is validated: the caller decides what may start).
    """
    compact = bool(getattr(model, "grammar_decoding", False)) and isinstance(model, TesseraChatModel)
    messages = planner_messages(
        task, specialists, max_subtasks=max_subtasks, system_prompt=system_prompt, context=context,
        examples=examples, compact=compact,
    )  # fmt: skip
    constrained = bool(getattr(model, "constrained_decoding", False))
    names = list(specialists)
    if (compact or constrained) and fast_path and is_single_step(task):
        try:
            chosen_name = await _fast_specialist(model, messages, names, compact, task)
        except Exception:  # noqa: BLE001 - the full planner below still gets its chance
            pass
        else:  # is_single_step: the task is short, so it is the instruction, word for word
            plan = Plan(subtasks=[Subtask(id="s1", specialist=chosen_name, instruction=task)])
            if on_subtask is not None:
                on_subtask(plan.subtasks[0])
            return PlanOutcome(plan=plan, attempts=1, fast=True)
    schema: dict[str, Any] | type[Plan] = plan_schema(names, max_subtasks) if constrained else Plan
    problems: list[str] = []
    for attempt in (1, 2):
        try:
            if compact:
                assert isinstance(model, TesseraChatModel)
                plan = await _compact_plan(model, messages, names, max_subtasks, on_subtask)
            elif on_subtask is not None and isinstance(model, TesseraChatModel):
                plan = await _streamed_plan(model, messages, on_subtask, schema)
            else:
                plan = Plan.model_validate(await model.with_structured_output(schema).ainvoke(messages))
                plan = normalize_plan(plan)
        except Exception as exc:  # noqa: BLE001 - a broken planner falls back, it does not crash the run
            errors = [f"planner failed: {type(exc).__name__}: {exc}"]
        else:
            errors = validate_plan(plan, specialists, max_subtasks)
            if not errors:
                return PlanOutcome(plan=plan, attempts=attempt, problems=problems)
            messages = [
                *messages,
                HumanMessage(
                    content="That plan cannot run:\n- "
                    + "\n- ".join(errors)
                    + "\nReply with a corrected plan."
                ),
            ]
        problems.extend(errors)
    fallback = Plan(subtasks=[Subtask(id="s1", specialist=general_specialist(specialists), instruction=task)])
    return PlanOutcome(plan=fallback, attempts=2, problems=problems, fallback=True)


def normalize_references(subtask: Subtask, earlier: Collection[str]) -> Subtask:
    """Read a quote the way its writer meant it: a plan never needs a round trip for these.

    Small planners quote the subtask's own id (``s1`` writing "… {{s1}}"), or quote an earlier subtask
    without listing it in ``depends_on``. A quote of itself is removed; a quote of an earlier subtask
    becomes a dependency. Quotes of later or unknown ids stay, for validation to reject.
    """
    instruction = subtask.instruction
    depends = list(subtask.depends_on)
    for ref in references(instruction):
        if ref == subtask.id:
            instruction = instruction.replace(f"{{{{{ref}}}}}", "").strip()
        elif ref in earlier and ref not in depends:
            depends.append(ref)
    if instruction == subtask.instruction and depends == subtask.depends_on:
        return subtask
    return subtask.model_copy(
        update={"instruction": instruction or subtask.instruction, "depends_on": depends}
    )


def normalize_plan(plan: Plan) -> Plan:
    """:func:`normalize_references` over every subtask, in order."""
    seen: list[str] = []
    subtasks = []
    for sub in plan.subtasks:
        subtasks.append(normalize_references(sub, seen))
        seen.append(sub.id)
    return plan.model_copy(update={"subtasks": subtasks})


async def _fast_specialist(
    model: BaseChatModel, messages: list[BaseMessage], names: list[str], compact: bool, task: str
) -> str:
    """The specialist for a one-step task: the end of a one-line compact plan, or ``{"specialist": …}``.

    The fast path keeps the task word for word as the instruction, so in the compact format the reply is
    prefilled with ``s1: <task>`` and the model decodes only what follows: at most a short hint that the
    task is computed, then the specialist's name (see :func:`fast_prompt`).
    """
    if compact:
        assert isinstance(model, TesseraChatModel)
        shots, hinted = fast_prompt(messages)
        prefill = f"s1: {one_line(task)}"
        grammar = fast_grammar(names, hint=hinted)
        text = "".join([piece async for piece in model.astream_grammar(shots, grammar, prefill=prefill)])
        return parse_compact(prefill + text).subtasks[0].specialist
    chosen = await model.with_structured_output(specialist_schema(names)).ainvoke(messages)
    assert isinstance(chosen, dict)
    return str(chosen["specialist"])


async def _compact_plan(
    model: TesseraChatModel,
    messages: list[BaseMessage],
    names: list[str],
    max_subtasks: int,
    on_subtask: Callable[[Subtask], None] | None,
) -> Plan:
    """A plan in the compact format, each subtask passed to ``on_subtask`` as soon as its line ends."""
    scanner = CompactScanner()
    seen: list[str] = []
    room = await asyncio.to_thread(model.output_room, messages)
    async for piece in model.astream_grammar(messages, compact_grammar(names, max_subtasks, room)):
        for subtask in scanner.feed(piece):
            if on_subtask is not None:
                on_subtask(normalize_references(subtask, seen))
            seen.append(subtask.id)
    for subtask in scanner.finish():
        if on_subtask is not None:
            on_subtask(normalize_references(subtask, seen))
        seen.append(subtask.id)
    return normalize_plan(parse_compact(scanner.text))


async def _streamed_plan(
    model: TesseraChatModel,
    messages: list[BaseMessage],
    on_subtask: Callable[[Subtask], None],
    schema: dict[str, Any] | type[Plan] = Plan,
) -> Plan:
    scanner = PlanScanner()
    seen: list[str] = []
    async for piece in model.astream_structured(messages, schema):
        for item in scanner.feed(piece):
            try:
                subtask = Subtask.model_validate(item)
            except ValidationError:
                continue  # the whole plan's validation reports it
            on_subtask(normalize_references(subtask, seen))
            seen.append(subtask.id)
    parsed = validate_output(AIMessage(content=scanner.text), schema, strict=model.strict_json)
    return normalize_plan(Plan.model_validate(parsed))
