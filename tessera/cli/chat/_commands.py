"""The slash commands of ``tessera chat``: each a small function ``(chat, argument)`` in :data:`COMMANDS`."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from tessera.cli.chat._session import new_thread_id
from tessera.cli.chat._view import plan_tree, trace_view
from tessera.cli.chat._voice import listen, set_speak

if TYPE_CHECKING:
    from tessera.cli.chat._session import ChatSession

__all__ = ["COMMANDS", "run_command"]


@dataclass(frozen=True)
class Command:
    """A slash command: what it runs, its argument, and one line of help."""

    run: Callable[[ChatSession, str], None]
    usage: str
    help: str


def run_command(chat: ChatSession, line: str) -> None:
    """Run one ``/command argument`` line (an unknown command gets a one-line hint)."""
    name, _, argument = line[1:].partition(" ")
    command = COMMANDS.get(name.lower())
    if command is None:
        chat.console.print(Text(f"unknown command /{name}; /help lists them", "yellow"))
        return
    command.run(chat, argument.strip())


def _say(chat: ChatSession, text: str, style: str = "") -> None:
    chat.console.print(Text(text, style))


def show_help(chat: ChatSession, _: str) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    for command in COMMANDS.values():
        table.add_row(Text(command.usage, "bold"), command.help)
    chat.console.print(table)
    _say(chat, "Any other line is a task for the team, on this conversation's thread.", "dim")


def show_team(chat: ChatSession, _: str) -> None:
    config = chat.config
    specialists = Table("specialist", "kind", "model", "description", box=None, pad_edge=False)
    for name, spec in config.specialists.items():
        specialists.add_row(name, spec.kind, spec.model or f"tool: {spec.tool}", spec.description)
    models = Table("model", "backend", "source", "loaded", box=None, pad_edge=False)
    loaded = {status.name: status for status in chat.team.pool.status()}
    for name, model in config.models.items():
        source = getattr(model, "callable", None) or getattr(model, "path", None)
        source = source or getattr(model, "repo", None) or getattr(model, "base_url", None)
        source = source or ", ".join(getattr(model, "endpoints", []))
        status = loaded.get(name)
        state = "-" if model.backend != "llama_cpp" else ("yes" if status and status.loaded else "no")
        models.add_row(name, model.backend, str(source), state)
    chat.console.print(specialists)
    chat.console.print(models)
    _say(chat, f"planner: {config.planner.model}; approve plans: {'on' if config.planner.approve else 'off'}")


def show_plan(chat: ChatSession, _: str) -> None:
    if chat.last is None or chat.last.plan is None:
        _say(chat, "no plan yet: send a task first", "yellow")
        return
    chat.console.print(plan_tree(chat.last.plan, chat.last.states, label=f"plan for: {chat.last.task}"))


def show_trace(chat: ChatSession, _: str) -> None:
    if chat.last is None or chat.last.result is None:
        _say(chat, "no finished run yet: send a task first", "yellow")
        return
    chat.console.print(trace_view(chat.last.result, chat.last.started))


def ingest_paths(chat: ChatSession, argument: str) -> None:
    from tessera._progress import quiet
    from tessera.memory.ingest import ingest
    from tessera.memory.knowledge import KnowledgeBase

    paths = [Path(p) for p in shlex.split(argument)]
    if not paths:
        _say(chat, "usage: /ingest PATH...", "yellow")
        return
    memory = chat.config.memory
    with KnowledgeBase.for_team(chat.config, writer=True) as kb:
        report = ingest(
            kb,
            paths,
            ignore=memory.ignore,
            chunk_chars=memory.chunk_chars,
            overlap=memory.chunk_overlap,
            progress=not quiet(),
        )
    _say(chat, report.summary())


def search(chat: ChatSession, query: str) -> None:
    from tessera.memory.knowledge import KnowledgeBase

    if not query:
        _say(chat, "usage: /search QUERY", "yellow")
        return
    with KnowledgeBase.for_team(chat.config) as kb:
        hits = kb.search(query, 5)
    if not hits:
        _say(chat, "no relevant chunks", "dim")
    for n, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())
        chat.console.print(Text(f"{n}. {hit.citation()}", "bold"))
        _say(chat, f"   {snippet[:200]}{'…' if len(snippet) > 200 else ''}")


def show_memory(chat: ChatSession, _: str) -> None:
    from tessera.memory.recall import LongTermMemory

    items = LongTermMemory.for_team(chat.config).all()
    for item in items:
        _say(chat, f"{item.id}  {item.kind:<7}  {item.text}")
    if not items:
        _say(chat, "no memories", "dim")


def set_approve(chat: ChatSession, argument: str) -> None:
    if argument not in ("on", "off"):
        state = "on" if chat.config.planner.approve else "off"
        _say(chat, f"plan approval is {state}; usage: /approve on|off", "yellow")
        return
    planner = chat.config.planner.model_copy(update={"approve": argument == "on"})
    chat.set_config(chat.config.model_copy(update={"planner": planner}))
    if argument == "on" and not chat.interactive:
        _say(chat, "plan approval on: without a terminal, runs stop at the plan", "yellow")
    else:
        _say(chat, f"plan approval {argument}")


def set_model(chat: ChatSession, name: str) -> None:
    if not name:
        chat.model = None
        _say(chat, "back to the team: tasks go to the planner")
        return
    if name not in chat.config.models:
        _say(chat, f"unknown model {name!r} (known: {', '.join(chat.config.models)})", "yellow")
        return
    chat.model = name
    _say(chat, f"talking to {name} directly; /model alone goes back to the team")


def save(chat: ChatSession, argument: str) -> None:
    if not argument:
        _say(chat, "usage: /save FILE", "yellow")
        return
    path = Path(argument).expanduser()
    lines = [f"# tessera chat: team {chat.config.name}, thread {chat.thread}", ""]
    for turn in chat.transcript:
        lines += ["## You", "", turn.user, "", f"## {turn.by}", "", turn.answer, ""]
    try:
        path.write_text("\n".join(lines), encoding="utf-8")
    except OSError as exc:
        _say(chat, f"cannot save to {path}: {exc.strerror or type(exc).__name__}", "red")
        return
    _say(chat, f"saved {len(chat.transcript)} turns to {path}")


def reset(chat: ChatSession, _: str) -> None:
    chat.thread, chat.transcript, chat.last = new_thread_id(), [], None
    _say(chat, f"new conversation: thread {chat.thread}")


def leave(chat: ChatSession, _: str) -> None:
    chat.done = True


COMMANDS: dict[str, Command] = {
    "help": Command(show_help, "/help", "this list"),
    "team": Command(show_team, "/team", "the specialists and models"),
    "plan": Command(show_plan, "/plan", "the last plan, as a tree"),
    "trace": Command(show_trace, "/trace", "the last run's timings and critical path"),
    "ingest": Command(ingest_paths, "/ingest PATH...", "add files and folders to the knowledge base"),
    "search": Command(search, "/search QUERY", "the knowledge base's best chunks"),
    "memory": Command(show_memory, "/memory", "what the team remembers long-term"),
    "approve": Command(set_approve, "/approve on|off", "ask before each plan runs"),
    "model": Command(set_model, "/model [NAME]", "talk to one model directly; alone: back to the team"),
    "listen": Command(listen, "/listen FILE", "transcribe an audio file and send it as the next turn"),
    "speak": Command(set_speak, "/speak on|off", "say each answer into a WAV file (tools.tts)"),
    "save": Command(save, "/save FILE", "the conversation as markdown"),
    "reset": Command(reset, "/reset", "start a new conversation (a new thread)"),
    "exit": Command(leave, "/exit", "leave (or Ctrl-D)"),
}
