"""``tessera chat``: a conversation with a team, one task per line, on one thread.

Each line that is not a slash command is a task, run with :meth:`Team.astream` on the conversation's
thread, so the team sees the earlier turns. While it runs, a live view shows the plan as a tree (each
subtask's state, model, seconds, tokens/s) and the answer as it is written. Ctrl-C stops the run and keeps
the conversation; Ctrl-D leaves. Input history is kept in ``<state_dir>/chat_history``.

With stdin not a terminal, each line of stdin is a line of the conversation and the output is plain.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Generator
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import click
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.text import Text

from tessera._async import iterate_sync
from tessera.cli._common import output_stream
from tessera.cli._run import checked_plan
from tessera.cli.chat._commands import run_command
from tessera.cli.chat._session import Turn, new_thread_id
from tessera.cli.chat._view import RunView, StreamedReply, plan_tree
from tessera.cli.chat._voice import speak_answer
from tessera.errors import TesseraError, UserError
from tessera.team import Team
from tessera.types import Approval, Plan

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.events import Event

__all__ = ["Chat", "chat"]

REFRESH_PER_SECOND = 8
KEYS_HINT = "Enter sends, Esc-Enter (or Meta-Enter) adds a line. /help for commands, Ctrl-D to exit"
PIPED_HINT = "reading lines from stdin (each a task or a /command); /help for commands"


@dataclass
class PlanQuestion:
    """A run waits for the user's verdict on ``plan``; :meth:`answer` lets it go on."""

    plan: Plan
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Approval]

    def answer(self, approval: Approval) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, approval)


def _settle(future: asyncio.Future[Approval], approval: Approval) -> None:
    if not future.done():
        future.set_result(approval)


async def _run_events(
    team: Team, task: str, thread: str, *, ask: bool
) -> AsyncIterator[Event | PlanQuestion]:
    """The run's events, with a :class:`PlanQuestion` in between when a plan needs approval.

    The question goes to the consumer (the REPL's main thread, which owns the terminal) instead of being
    asked on the run's own thread, so Ctrl-C during the question cancels the run like any other time.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    async def approve(plan: Plan) -> Approval:
        future: asyncio.Future[Approval] = loop.create_future()
        queue.put_nowait(PlanQuestion(plan, loop, future))
        return await future

    async def pump() -> None:
        try:
            async for event in team.astream(task, thread, approve=approve if ask else None):
                queue.put_nowait(event)
        except Exception as exc:  # noqa: BLE001 - re-raised on the consumer's side
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(end)

    runner = asyncio.create_task(pump())
    try:
        while (item := await queue.get()) is not end:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        runner.cancel()
        with suppress(asyncio.CancelledError):
            await runner


class Chat:
    """One conversation with a team: its thread, the last run, the transcript, and the modes.

    Args:
        config: the team.
        thread: the thread id of an earlier conversation to continue (it must exist); a new one by default.
        console: where everything is drawn.
        interactive: stdin is a terminal, so a plan can be put to the user.
    """

    def __init__(
        self, config: TeamConfig, thread: str | None, console: Console, *, interactive: bool
    ) -> None:
        self.config = config
        self.team = Team(config)
        if thread is not None and self.team.get_run(thread) is None:
            raise UserError(
                f"no conversation with thread id {thread!r} in {self.team.checkpoint_path};"
                " leave out --thread to start a new one"
            )
        if config.runtime.preload:  # the first question should not wait for the planner's weights
            self.team.pool.preload([config.planner.model])
        self.thread = thread or new_thread_id()
        self.console = console
        self.interactive = interactive
        self.model: str | None = None
        """With ``/model NAME``: talk to that model directly, bypassing the planner."""
        self.last: RunView | None = None
        self.transcript: list[Turn] = []
        self.done = False
        self.speak = False
        """With ``/speak on``: each answer is also said into a WAV file."""

    def set_config(self, config: TeamConfig) -> None:
        """Use a changed config from now on (same models, so the warm pool is kept)."""
        self.config, self.team = config, Team(config, pool=self.team.pool)

    def prompt_text(self) -> str:
        return f"{self.config.name}{f'[{self.model}]' if self.model else ''}> "

    def banner(self) -> None:
        config = self.config
        title = Text(f"tessera chat · {config.name}", style="bold")
        if config.description:
            title.append(f" — {config.description}", style="dim")
        self.console.print(title)
        specialists = ", ".join(
            f"{name} ({spec.model or spec.tool or spec.kind})" for name, spec in config.specialists.items()
        )
        self.console.print(f"specialists: {specialists}")
        self.console.print(
            f"thread {self.thread}  [dim](tessera chat --thread {self.thread} continues it)[/dim]"
            + ("  [yellow]plans need approval[/yellow]" if config.planner.approve else "")
        )
        self.console.print(f"[dim]{KEYS_HINT if self.interactive else PIPED_HINT}[/dim]")

    def handle(self, line: str) -> None:
        """One line of input: a slash command, or a task (or, with ``/model``, a prompt)."""
        text = line.strip()
        if not text:
            return
        try:
            turns = len(self.transcript)
            if text.startswith("/"):
                run_command(self, text)
            elif self.model:
                self.ask_model(text)
            else:
                self.run_task(text)
            if self.speak and len(self.transcript) > turns:
                speak_answer(self, self.transcript[-1].answer)
        except TesseraError as exc:
            self.console.print(Text(f"error: {(str(exc).splitlines() or [type(exc).__name__])[0]}", "red"))
        except Exception as exc:  # noqa: BLE001 - a bug must not end the conversation
            if os.environ.get("TESSERA_DEBUG"):
                raise
            self.console.print(Text(f"internal error: {type(exc).__name__}: {exc}", "red"))

    def run_task(self, task: str) -> None:
        """Run ``task`` on the conversation's thread with a live view; Ctrl-C cancels it."""
        view = RunView(task, markdown=self.console.is_terminal)
        self.last = view
        ask = self.interactive and self.config.planner.approve
        events = cast(  # a generator: closing it cancels the run
            "Generator[Event | PlanQuestion, None, None]",
            iterate_sync(lambda: _run_events(self.team, task, self.thread, ask=ask)),
        )
        live = self._live(view)
        try:
            for item in events:
                if isinstance(item, PlanQuestion):
                    if live:
                        live.stop()
                    item.answer(self.decide(item.plan))
                    live = self._live(view)  # a new one: a restarted Live would erase the question
                else:
                    view.apply(item)
        except (KeyboardInterrupt, EOFError):
            if live:
                live.stop()
            events.close()
            view.cancel()
            self.console.print(view.final())
            self.console.print(Text("cancelled: the run was stopped (Ctrl-C)", "yellow"))
            return
        finally:
            if live:
                live.stop()
            events.close()
        self.console.print(view.final())
        result = view.result
        if result is None:
            return
        if result.status == "awaiting_approval":
            self.console.print(
                f"the plan awaits approval: tessera resume --team FILE {result.thread_id}"
                " --accept | --reject REASON | --edit FILE"
            )
        summary = result.failure_summary()
        if summary and result.status != "awaiting_approval":
            self.console.print(Text(summary, "yellow" if result.status == "partial" else "red"))
        for note in result.notes:
            self.console.print(Text(f"note: {note}", "dim"))
        if result.status in ("done", "partial"):
            self.transcript.append(Turn(task, result.answer, self.config.name))

    def ask_model(self, text: str) -> None:
        """Send ``text`` straight to the ``/model`` model, streaming its reply."""
        from tessera.cli.prompt import run_prompt

        assert self.model is not None
        reply = StreamedReply()
        live = self._live(reply)
        try:
            result = run_prompt(
                self.config, self.model, text, on_token=reply.pieces.append, pool=self.team.pool
            )
        except KeyboardInterrupt:
            if live:
                live.stop()
            self.console.print(Text("cancelled (Ctrl-C)", "yellow"))
            return
        finally:
            if live:
                live.stop()
        self.console.print(Markdown(result.text) if self.console.is_terminal else Text(result.text))
        rate = f", {result.tokens_per_s:,.1f} tokens/s" if result.tokens_per_s else ""
        self.console.print(
            Text(f"{result.model}: {result.tokens} tokens in {result.seconds:.2f}s{rate}", style="dim")
        )
        self.transcript.append(Turn(text, result.text, self.model))

    def decide(self, plan: Plan) -> Approval:
        """Show ``plan`` and ask: accept, edit (in $EDITOR, or as one line of JSON) or reject.

        An edit that cannot run is shown with its problem, and editing again reopens it, not the proposal.
        """
        self.console.print(plan_tree(plan, label="proposed plan"))
        text = json.dumps(plan.model_dump(mode="json"), indent=2)
        while True:
            choice = self.question("[a]ccept, [e]dit or [r]eject? [a] ").lower() or "a"
            if choice in ("a", "accept"):
                return Approval.accept()
            if choice in ("r", "reject"):
                return Approval.reject(self.question("reason: "))
            if choice not in ("e", "edit"):
                continue
            text = self._edit(text)
            try:
                edited = checked_plan(text, "the edited plan", self.config)
            except UserError as exc:
                self.console.print(Text(str(exc), "red"))
                continue
            self.console.print(plan_tree(edited, label="edited plan"))
            return Approval.edit(edited)

    def question(self, text: str) -> str:
        """One line from the terminal, in raw mode: Ctrl-C is a key there, so it always cancels."""
        from prompt_toolkit import prompt

        return prompt(text).strip()

    def _edit(self, text: str) -> str:
        """``text`` (a plan's JSON) after the user edited it."""
        path = self.config.resolved_state_dir / f"plan-{self.thread}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        try:
            click.edit(filename=str(path), extension=".json")
        except click.ClickException as exc:  # no usable editor: take the plan inline
            self.console.print(Text(f"{exc.format_message()}; paste the plan as one line of JSON", "dim"))
            path.write_text(self.question("plan: "), encoding="utf-8")
        return path.read_text(encoding="utf-8")

    def _live(self, renderable: Any) -> Live | None:
        if not self.console.is_terminal:
            return None
        live = Live(renderable, console=self.console, refresh_per_second=REFRESH_PER_SECOND, transient=True)
        live.start()
        return live

    def close(self) -> None:
        self.team.close()


def chat(config: TeamConfig, thread: str | None = None) -> None:
    """Run the REPL until Ctrl-D, ``/exit`` or the end of stdin."""
    interactive = sys.stdin.isatty()
    plain = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    console = Console(file=output_stream(), no_color=plain, highlight=False)
    session = Chat(config, thread, console, interactive=interactive)
    try:
        session.banner()
        if interactive:
            _prompt_loop(session)
        else:
            for line in sys.stdin:
                session.handle(line)
                if session.done:
                    break
    finally:
        session.close()


def _prompt_loop(session: Chat) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    bindings = KeyBindings()

    @bindings.add("enter")
    def _submit(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    history = session.config.resolved_state_dir / "chat_history"
    history.parent.mkdir(parents=True, exist_ok=True)
    prompt: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)),
        multiline=True,
        key_bindings=bindings,
        prompt_continuation=lambda width, line, soft: "." * (width - 1) + " ",
    )
    while not session.done:
        try:
            line = prompt.prompt(session.prompt_text())
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        try:
            session.handle(line)
        except KeyboardInterrupt:  # a second Ctrl-C while a run was stopping, or during a command
            session.console.print(Text("interrupted", "yellow"))
