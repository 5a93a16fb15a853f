"""MCP servers as tools: a specialist's ``mcp`` entries become langchain-core tools for one subtask.

A team lists servers under ``mcp.servers`` (a ``command`` started over stdio, or a streamable HTTP ``url``);
a specialist names the servers (all their tools) or single tools (``server/tool``) it may call, and gets
only those. :func:`mcp_tools` connects to them when a subtask of that specialist starts and disconnects when
it ends, so every stdio server it started is stopped (stdin closed, then SIGTERM, then SIGKILL).

Nothing can hang a run: starting and listing tools are bounded by ``start_timeout_s``, each call by
``call_timeout_s``, and closing by :data:`CLOSE_TIMEOUT_S`. A server that does not start fails the subtask
with one line naming it (and the last line it wrote on stderr); one that stops while the subtask still calls
it fails the subtask too, after the model has been told the tool is gone.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, StructuredTool

from tessera.mcp import McpError, require_mcp

if TYPE_CHECKING:
    from tessera.config import McpServerConfig, TeamConfig

__all__ = ["CLOSE_TIMEOUT_S", "mcp_tools"]

CLOSE_TIMEOUT_S = 8.0
"""How long a server may take to stop (the SDK gives a stdio server 2 s after stdin closes, then signals)."""


@asynccontextmanager
async def mcp_tools(config: TeamConfig, specialist: str) -> AsyncIterator[list[BaseTool]]:
    """The MCP tools ``specialist`` may call, connected for the duration of the ``async with`` block.

    Raises :class:`McpError` when a server does not start, lacks a tool the specialist names, offers a
    tool under a name another of its servers uses, or stopped while the block was calling it.
    """
    entries = config.specialists[specialist].mcp
    if not entries:
        yield []
        return
    require_mcp()
    wanted: dict[str, set[str] | None] = {}
    for entry in entries:
        server, _, tool = entry.partition("/")
        if not tool:
            wanted[server] = None
        elif wanted.get(server, set()) is not None:
            wanted.setdefault(server, set()).add(tool)  # type: ignore[union-attr]
    connections = [_Connection(name, config.mcp.servers[name]) for name in wanted]
    try:
        listed = await asyncio.gather(*(c.start() for c in connections), return_exceptions=True)
        for item in listed:
            if isinstance(item, BaseException):
                raise item
        tools = _select(connections, [t for t in listed if not isinstance(t, BaseException)], wanted)
        yield tools
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    failures = [c.failure for c in connections if c.failure]
    if failures:
        raise McpError(failures[0])


def _select(
    connections: list[_Connection], listed: list[list[Any]], wanted: dict[str, set[str] | None]
) -> list[BaseTool]:
    tools: list[BaseTool] = []
    owner: dict[str, str] = {}
    for conn, offered in zip(connections, listed, strict=True):
        names = {t.name for t in offered}
        missing = sorted((wanted[conn.name] or set()) - names)
        if missing:
            has = ", ".join(sorted(names)) or "none"
            raise McpError(f"mcp server {conn.name!r} has no tool {missing[0]!r} (it has: {has})")
        for tool in offered:
            if wanted[conn.name] is not None and tool.name not in wanted[conn.name]:  # type: ignore[operator]
                continue
            if tool.name in owner:
                raise McpError(
                    f"mcp servers {owner[tool.name]!r} and {conn.name!r} both offer a tool {tool.name!r}; "
                    f"name one of them as 'server/tool'"
                )
            owner[tool.name] = conn.name
            tools.append(_as_tool(conn, tool))
    return tools


def _as_tool(conn: _Connection, tool: Any) -> BaseTool:
    async def call(**arguments: Any) -> str:
        return await conn.call(tool.name, arguments)

    return StructuredTool(
        name=tool.name,
        description=tool.description or tool.title or tool.name,
        args_schema=tool.inputSchema,
        coroutine=call,
        metadata={"mcp_server": conn.name},
    )


class _Connection:
    """One server for one subtask. A holder task owns the transport and session (the SDK's anyio task
    groups must be entered and left by one task), so a server that crashes cannot cancel the subtask."""

    def __init__(self, name: str, config: McpServerConfig) -> None:
        self.name = name
        self.config = config
        self.session: Any = None
        self.failure: str | None = None
        """Why a call failed because the server had stopped: the subtask fails with it."""
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._task: asyncio.Task[None] | None = None
        self._stderr: Any = None

    @property
    def label(self) -> str:
        command = os.path.basename(self.config.command or "")
        where = self.config.url or shlex.join([command, *(os.path.basename(a) for a in self.config.args)])
        return f"mcp server {self.name!r} ({where if len(where) <= 60 else where[:57] + '...'})"

    async def start(self) -> list[Any]:
        """Start or connect, initialize, and list the tools, within ``start_timeout_s``."""
        self._task = asyncio.create_task(self._hold(), name=f"tessera-mcp-{self.name}")
        limit = self.config.start_timeout_s
        try:
            async with asyncio.timeout(limit):
                return await asyncio.shield(self._ready)
        except TimeoutError:
            raise McpError(f"{self.label} did not start within {limit:g}s{self._stderr_tail()}") from None

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Call ``tool``; its text, or ``error: ...`` when the tool says it failed."""
        import anyio
        from mcp.shared.exceptions import McpError as SdkError
        from mcp.types import CONNECTION_CLOSED

        session, limit = self.session, self.config.call_timeout_s
        if self.failure is not None:
            raise McpError(self.failure)
        if session is None:
            raise McpError(self._gone("is not running"))
        try:
            async with asyncio.timeout(limit + 5):  # the SDK's own read timeout should fire first
                result = await session.call_tool(
                    tool, arguments, read_timeout_seconds=timedelta(seconds=limit)
                )
        except TimeoutError:
            raise McpError(f"mcp server {self.name!r}: {tool} did not answer within {limit:g}s") from None
        except Exception as exc:  # noqa: BLE001 - told apart below: a stopped server, or a failed call
            closed = isinstance(
                exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream
            )
            closed = closed or (isinstance(exc, SdkError) and exc.error.code == CONNECTION_CLOSED)
            if closed or self._task is None or self._task.done() or self.session is None:
                raise McpError(self._gone(f"stopped ({_describe(exc)})")) from None
            raise McpError(f"mcp server {self.name!r}: {tool}: {_describe(exc)}") from None
        text = _result_text(result)
        return f"error: {text}" if result.isError else text

    def _gone(self, what: str) -> str:
        self.failure = f"{self.label} {what}{self._stderr_tail()}"
        return self.failure

    async def close(self) -> None:
        """Disconnect and stop the server; never waits longer than :data:`CLOSE_TIMEOUT_S` (then cancels)."""
        task = self._task
        if task is None:
            return
        if self.session is None:
            task.cancel()  # still starting, or already gone
        self._stop.set()
        _, pending = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
        if pending:
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
        if self._stderr is not None:
            self._stderr.close()

    async def _hold(self) -> None:
        from mcp import ClientSession

        try:
            async with (
                self._transport() as (read, write),
                ClientSession(
                    read, write, read_timeout_seconds=timedelta(seconds=self.config.start_timeout_s)
                ) as session,
            ):
                await session.initialize()
                tools = await _list_tools(session)
                self.session = session
                self._ready.set_result(tools)
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001 - reported through _ready, or by the next call
            if not self._ready.done():
                self._ready.set_exception(McpError(self._start_failure(exc)))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.session = None

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        config = self.config
        if config.url is not None:
            import httpx
            from mcp.client.streamable_http import streamable_http_client

            timeout = httpx.Timeout(config.call_timeout_s, connect=config.start_timeout_s)
            async with (
                httpx.AsyncClient(headers=config.headers, timeout=timeout) as client,
                streamable_http_client(config.url, http_client=client) as (read, write, _),
            ):
                yield read, write
            return
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        params = StdioServerParameters(
            command=config.command or "", args=config.args, env=config.env or None, cwd=config.cwd
        )
        async with stdio_client(params, errlog=self._stderr) as (read, write):
            yield read, write

    def _start_failure(self, exc: BaseException) -> str:
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
            return f"{self.label} could not be started: {_describe(exc)}"
        if isinstance(exc, asyncio.CancelledError):
            return f"{self.label} was stopped before it was ready{self._stderr_tail()}"
        if self.config.command is not None and "Connection closed" in _describe(exc):
            return f"{self.label} exited at start-up{self._stderr_tail()}"
        return f"{self.label} stopped before it was ready ({_describe(exc)}){self._stderr_tail()}"

    def _stderr_tail(self) -> str:
        """``; its stderr ends: <last line>`` for a stdio server that wrote something, else ``""``."""
        if self._stderr is None or self._stderr.closed:
            return ""
        fd = self._stderr.fileno()
        size = os.fstat(fd).st_size
        text = os.pread(fd, 4096, max(0, size - 4096)).decode("utf-8", "replace")  # the child owns the offset
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return f"; its stderr ends: {lines[-1][:200]}" if lines else ""


async def _list_tools(session: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    while True:
        page = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
        tools.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return tools


def _result_text(result: Any) -> str:
    """A call's content as text: text blocks as they are, other blocks named, structured content as JSON."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            parts.append(getattr(resource, "text", None) or f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        else:
            parts.append(f"[{kind} {getattr(block, 'mimeType', '')}]".replace(" ]", "]"))
    if not parts and result.structuredContent is not None:
        parts.append(json.dumps(result.structuredContent, ensure_ascii=False))
    return "\n".join(parts)


def _describe(exc: BaseException) -> str:
    """One line for an exception, looking inside anyio's exception groups for the real cause."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (inner or list(exc.exceptions))[0]
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
