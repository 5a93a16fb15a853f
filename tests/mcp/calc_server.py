"""A real MCP server for the tests, on the SDK's FastMCP.

``python calc_server.py`` serves over stdio; ``python calc_server.py http PORT`` over streamable HTTP on
127.0.0.1:PORT; ``python calc_server.py crash`` exits at start-up, as a misconfigured server does.
"""

from __future__ import annotations

import os
import sys

from mcp.server.fastmcp import Context, FastMCP

server = FastMCP("calc", log_level="WARNING")


@server.tool()
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@server.tool()
def whoami() -> str:
    """Say which process answers, and what its environment holds."""
    return f"pid {os.getpid()} secret={os.environ.get('CALC_SECRET', '')}"


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The value of an HTTP request header this call came with."""
    request = ctx.request_context.request
    return request.headers.get(name, "(none)") if request is not None else "(not HTTP)"


@server.tool()
def die() -> str:
    """Exit the server process at once, as a crash would."""
    os._exit(3)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "crash":
        sys.exit("calc_server: refusing to start: CALC_CONFIG is not set")
    if mode == "http":
        server.settings.port = int(sys.argv[2])
        server.run("streamable-http")
    else:
        server.run()
