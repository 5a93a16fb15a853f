"""``tessera chat``: the REPL (:mod:`._repl`), its ``/commands`` (:mod:`._commands`), its live view
(:mod:`._view`) and its voice modes (:mod:`._voice`)."""

from tessera.cli.chat._repl import Chat, chat
from tessera.cli.chat._session import ChatSession, Turn, new_thread_id

__all__ = ["Chat", "ChatSession", "Turn", "chat", "new_thread_id"]
