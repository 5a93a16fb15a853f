"""``tessera serve``: a team's model, or a whole team, behind an OpenAI-compatible HTTP API.

Two modes, one Python entry point::

    from tessera import Team
    from tessera.serve import ServeOptions, create_app, start_server

    team = Team.from_yaml("team.yaml")
    app = create_app(team, model="coder")           # one model of the team; model=None: the whole team
    with start_server(app) as server:               # a free loopback port, on a background thread
        print(server.url)                           # http://127.0.0.1:PORT/v1

``serve(app, bind(host, port), on_ready=print)`` serves in the foreground until SIGINT or SIGTERM, as
the CLI does. Both modes answer ``POST /v1/chat/completions`` (streamed or not), ``GET /v1/models`` and
``GET /health``; :class:`ServeOptions` sets the API key, the body size and concurrency limits, and the
hop limit of team mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tessera.errors import MissingDependencyError

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError:
    raise MissingDependencyError(
        'tessera serve needs fastapi and uvicorn: pip install "tessera[server]"'
    ) from None

from tessera.serve._common import ServeOptions
from tessera.serve._model_app import create_model_app
from tessera.serve._server import RunningServer, bind, serve, start_server
from tessera.serve._team_app import create_team_app

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tessera.team import Team

__all__ = [
    "RunningServer",
    "ServeOptions",
    "bind",
    "create_app",
    "create_model_app",
    "create_team_app",
    "serve",
    "start_server",
]


def create_app(team: Team, model: str | None = None, options: ServeOptions | None = None) -> FastAPI:
    """The app for ``team``: its model ``model`` (from the team's pool), or with ``model=None`` the team.

    Args:
        team: a :class:`~tessera.Team`; its pool keeps models warm between requests.
        model: a model name in the team config, or None to serve the whole team as one model.
        options: API key and limits (defaults: no key, 1 MiB bodies, 8 requests at once, 4 hops).
    """
    if model is None:
        return create_team_app(team, options)
    return create_model_app(team.pool, model, options)
