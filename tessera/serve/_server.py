"""Running an app under uvicorn: on a socket bound here (so ``port=0`` picks a free port), in the
foreground until SIGINT/SIGTERM, or on a background thread for tests and benchmarks."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import uvicorn

from tessera.errors import UserError

__all__ = ["RunningServer", "bind", "serve", "start_server"]

GRACE_S = 5
"""Longest a shutdown waits for requests in flight."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); a :class:`UserError` if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The ``/v1`` base URL a client uses for the server on ``sock``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT or SIGTERM and then returning (uvicorn re-raises them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def _server(app: Any, lifespan: Literal["on", "off"] = "off") -> _Server:
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=GRACE_S, lifespan=lifespan
    )
    return _Server(config)


def serve(
    app: Any,
    sock: socket.socket,
    on_ready: Callable[[str], None] | None = None,
    *,
    lifespan: Literal["on", "off"] = "off",
) -> None:
    """Serve ``app`` on ``sock`` (see :func:`bind`) until SIGINT or SIGTERM; ``on_ready(url)`` first.

    ``lifespan="on"`` runs the app's startup and shutdown (an MCP app starts its session manager there).
    """
    server = _server(app, lifespan)
    if on_ready is not None:
        on_ready(url_of(sock))  # the socket listens already: early clients wait in its backlog
    server.run(sockets=[sock])


class RunningServer:
    """A server on a background thread; ``url`` is its ``/v1`` base URL. Stop it with :meth:`stop`."""

    def __init__(self, app: Any, sock: socket.socket, lifespan: Literal["on", "off"] = "off") -> None:
        self.url = url_of(sock)
        self.app = app
        self._server = _server(app, lifespan)
        self._sock = sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="tessera-serve", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = GRACE_S + 2) -> None:
        """Stop serving and wait for the thread (at most ``timeout`` seconds)."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, lifespan: Literal["on", "off"] = "off"
) -> RunningServer:
    """Serve ``app`` on a background thread (``port=0``: a free port); returns at once."""
    return RunningServer(app, bind(host, port), lifespan)
