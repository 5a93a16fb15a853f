"""``tessera serve``: one of a team's models, or the whole team, as an OpenAI-compatible server."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click

from tessera.cli._common import load_team_file, team_option

__all__ = ["is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@team_option
@click.option("--model", "-m", "model_name", default=None, help="Serve this model; default: the whole team.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port."
)
@click.option(
    "--api-key-env",
    "api_key_env",
    default=None,
    metavar="VAR",
    help="Environment variable holding the API key clients must send (required off loopback).",
)
@click.option(
    "--max-body-kb", type=click.IntRange(min=1), default=1024, show_default=True, help="Largest request body."
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Requests at once (waiting ones included); more get 429.",
)
@click.option(
    "--max-hops",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Team mode: refuse requests that passed this many team servers (508).",
)
@click.option(
    "--mcp",
    "mcp_transport",
    is_flag=False,
    flag_value="stdio",
    default=None,
    type=click.Choice(["stdio", "http"]),
    help="Serve the team over MCP as the tool run_task: on stdio (--mcp), or streamable HTTP at "
    "http://HOST:PORT/mcp (--mcp http). Needs tessera[mcp].",
)
def serve(
    team_file: Path,
    model_name: str | None,
    host: str,
    port: int,
    api_key_env: str | None,
    max_body_kb: int,
    max_concurrency: int,
    max_hops: int,
    mcp_transport: str | None,
) -> None:
    """Serve a team's model (--model NAME), or the whole team, over an OpenAI-compatible HTTP API.

    It listens on loopback unless --host says otherwise; any other address needs --api-key-env.
    Endpoints: POST /v1/chat/completions, GET /v1/models, GET /health. Ctrl-C or SIGTERM stops it.
    With --mcp, the team is an MCP server instead (the same key rule over HTTP).
    """
    from tessera.errors import UserError

    if mcp_transport is not None and model_name is not None:
        raise UserError("--mcp serves the whole team as the tool run_task; leave out --model")

    api_key = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise UserError(f"--api-key-env: environment variable {api_key_env!r} is not set or empty")
    if not is_loopback(host) and api_key is None:
        raise UserError(
            f"--host {host}: listening beyond loopback needs an API key (--api-key-env VAR); refused"
        )
    from tessera.serve import ServeOptions, bind, create_app
    from tessera.serve import serve as run_server
    from tessera.team import Team

    team = Team(load_team_file(team_file, runnable=True))
    try:
        if mcp_transport is not None:
            from tessera.mcp.server import serve_mcp

            return serve_mcp(
                team,
                mcp_transport,
                host=host,
                port=port,
                api_key=api_key,
                max_concurrency=max_concurrency,
            )
        if model_name is not None:
            team.pool.load(model_name)  # unknown names fail here; weights are loaded before the first request
        options = ServeOptions(api_key, max_body_kb * 1024, max_concurrency, max_hops)
        app = create_app(team, model_name, options)
        sock = bind(host, port)
        what = (
            f"model {model_name!r} of team {team.config.name!r}"
            if model_name
            else f"team {team.config.name!r}"
        )

        def ready(url: str) -> None:
            click.echo(f"tessera serve: {what} on {url}", nl=True)
            click.echo("Ctrl-C stops it.", err=True)

        run_server(app, sock, on_ready=ready)
    finally:
        team.close()
    click.echo("tessera serve: stopped", err=True)
