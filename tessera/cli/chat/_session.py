"""What the chat's commands see of a conversation: :class:`ChatSession`, the shape that
:class:`~tessera.cli.chat._repl.Chat` has. The commands and the voice modes take this shape, not the
class, so they do not import the REPL that dispatches to them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console

    from tessera.cli.chat._view import RunView
    from tessera.config import TeamConfig
    from tessera.team import Team

__all__ = ["ChatSession", "Turn", "new_thread_id"]


@dataclass
class Turn:
    """One exchange of the conversation: what the user said and who answered what."""

    user: str
    answer: str
    by: str


def new_thread_id() -> str:
    """A fresh thread id for a new conversation."""
    return f"chat-{uuid.uuid4().hex[:8]}"


class ChatSession(Protocol):
    """One conversation with a team, as its ``/commands`` see and change it."""

    config: TeamConfig
    team: Team
    console: Console
    interactive: bool
    thread: str
    model: str | None
    last: RunView | None
    transcript: list[Turn]
    done: bool
    speak: bool

    def set_config(self, config: TeamConfig) -> None:
        """Use a changed config from now on."""

    def run_task(self, task: str) -> None:
        """Run ``task`` on the team and show it."""

    def ask_model(self, text: str) -> None:
        """Send ``text`` to the ``/model`` straight, bypassing the planner."""
