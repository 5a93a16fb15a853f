"""The Model Context Protocol, both ways, on the official ``mcp`` SDK (``pip install "tessera[mcp]"``).

- :mod:`tessera.mcp.client`: the tools of the MCP servers a team lists (``mcp.servers``) become
  langchain-core tools for the specialists that name them (``specialists.<name>.mcp``).
- :mod:`tessera.mcp.server`: a team as an MCP server with one tool, ``run_task`` (``tessera serve --mcp``).

Nothing here imports ``mcp`` until a server is started, so a team without MCP never needs it.
"""

from __future__ import annotations

from tessera.errors import AgentRunError, MissingDependencyError

__all__ = ["McpError", "require_mcp"]


class McpError(AgentRunError):
    """An MCP server did not start, stopped, or failed a call; the message names the server."""


def require_mcp() -> None:
    """Raise :class:`MissingDependencyError` saying how to install the SDK when it is absent."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise MissingDependencyError('MCP needs the mcp SDK: pip install "tessera[mcp]"') from None
