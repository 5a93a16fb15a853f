"""A small MCP server on the SDK's FastMCP: the tools of examples/mcp/team.yaml. Runs over stdio."""

from mcp.server.fastmcp import FastMCP

server = FastMCP("calc", log_level="WARNING")


@server.tool()
def multiply(a: int, b: int) -> int:
    """Multiply two integers exactly."""
    return a * b


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers exactly."""
    return a + b


if __name__ == "__main__":
    server.run()
