"""A team as an MCP server: one tool, ``run_task(task) -> answer``, on the SDK's FastMCP.

``tessera serve --mcp`` serves it over stdio (an MCP client starts the process) and ``--mcp http`` over
streamable HTTP at ``http://HOST:PORT/mcp``. The tool's text is the answer; its structured content is the
run: ``answer``, ``status``, ``plan``, ``subtasks`` (each with its output, model, status and error),
``replans``, ``timings`` and ``notes``. A run with no answer (``failed``, ``rejected``, ``interrupted``), or
a task the team refuses, is a tool error whose text says why.

Over HTTP the same rule as the OpenAI-compatible server applies: loopback by default, any other address only
with an API key that every request carries as ``Authorization: Bearer <key>``, checked by the same guard
(which also logs each request on stderr and limits requests in flight). On loopback, the SDK's DNS-rebinding
protection accepts only loopback ``Host`` headers.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from tessera._output import write_line
from tessera.errors import UserError
from tessera.mcp import require_mcp

require_mcp()  # this module is imported only to serve over MCP

from mcp.server.fastmcp import FastMCP  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402
from mcp.types import CallToolResult, TextContent, ToolAnnotations  # noqa: E402

if TYPE_CHECKING:
    from tessera.team import Team
    from tessera.types import RunResult

__all__ = ["create_mcp_server", "run_payload", "serve_mcp"]

RUN_TASK_DESCRIPTION = (
    "Give a task to the team '{name}'{about}. A planner splits it into subtasks for the team's specialists "
    "({specialists}), they run (in parallel where they can), and the team writes one answer. Returns the "
    "answer as text; the plan and each subtask's result are in the structured content."
)


def create_mcp_server(team: Team, *, host: str = "127.0.0.1", loopback: bool = True) -> FastMCP:
    """The FastMCP server for ``team``, with its one tool ``run_task``.

    ``loopback=False`` (a server on another address, behind an API key) turns off the SDK's DNS-rebinding
    protection, which would refuse every ``Host`` that is not a loopback name.
    """
    config = team.config
    security = None if loopback else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server = FastMCP(
        f"tessera {config.name}",
        instructions=config.description or None,
        host=host,
        log_level="WARNING",
        transport_security=security,
    )
    about = f" ({config.description.rstrip('.')})" if config.description else ""
    description = RUN_TASK_DESCRIPTION.format(
        name=config.name, about=about, specialists=", ".join(config.specialists)
    )

    @server.tool(
        name="run_task",
        description=description,
        annotations=ToolAnnotations(title=f"Run a task on team {config.name}", openWorldHint=True),
    )
    async def run_task(task: str) -> CallToolResult:
        from tessera.team import check_task

        try:
            check_task(config, task)
        except UserError as exc:
            return CallToolResult(content=[TextContent(type="text", text=str(exc))], isError=True)
        result = await team.arun(task)
        payload = run_payload(result)
        if result.answer and result.status in ("done", "partial"):
            text = result.answer
            return CallToolResult(content=[TextContent(type="text", text=text)], structuredContent=payload)
        why = result.failure_summary() or "; ".join(result.notes) or "no answer"
        text = f"the run is {result.status}: {why}"
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structuredContent=payload, isError=True
        )

    return server


def run_payload(result: RunResult) -> dict[str, Any]:
    """The structured content of a ``run_task`` result: the RunResult without its trace."""
    data = result.to_json()
    data.pop("trace", None)
    return data


def serve_mcp(
    team: Team,
    transport: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    max_concurrency: int = 8,
) -> None:
    """Serve ``team`` over MCP in the foreground: on stdin/stdout until it closes, or over HTTP until
    SIGINT or SIGTERM. Status lines go to stderr (over stdio, stdout carries only the protocol)."""
    if transport not in ("stdio", "http"):
        raise UserError(f"MCP transport {transport!r}: use stdio or http")
    loopback = _loopback(host)
    if transport == "http" and not loopback and api_key is None:
        raise UserError(
            f"--host {host}: listening beyond loopback needs an API key (--api-key-env VAR); refused"
        )
    server = create_mcp_server(team, host=host, loopback=loopback)
    for handler in logging.getLogger().handlers:  # FastMCP's handler; libraries log DEBUG records to it
        handler.setLevel(max(handler.level, logging.WARNING))
    logging.getLogger("mcp.server.streamable_http").addFilter(_not_a_client_leaving)
    name = team.config.name
    if transport == "stdio":
        import anyio

        write_line(f"tessera serve: team {name!r} over MCP on stdio (tool run_task)", err=True)
        try:
            anyio.run(server.run_stdio_async)
        except KeyboardInterrupt:
            pass
        return
    from tessera.serve import ServeOptions, bind, serve
    from tessera.serve._common import Load, _Guard

    sock = bind(host, port)
    options = ServeOptions(api_key=api_key, max_concurrency=max_concurrency)
    app = _Guard(server.streamable_http_app(), options, Load())

    def ready(url: str) -> None:
        write_line(f"tessera serve: team {name!r} over MCP on {url.removesuffix('/v1')}/mcp (tool run_task)")
        write_line("Ctrl-C stops it.", err=True)

    serve(app, sock, on_ready=ready, lifespan="on")
    write_line("tessera serve: stopped", err=True)


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _not_a_client_leaving(record: logging.LogRecord) -> bool:
    """Drop the SDK's traceback for an event stream whose client disconnected (a normal end, not an error)."""
    import anyio

    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, anyio.ClosedResourceError | anyio.BrokenResourceError)
