"""Replicas of one remote model: health checks, least-busy choice, and a cool-off for failed ones.

A model with several ``endpoints`` (the same model served on several devices) sends each request to the
healthy replica with the fewest requests in flight, round-robin among equals. A replica that fails to
answer (connection error, timeout, 5xx) goes into cool-off for ``cooloff_s`` and the request moves on to
the next one; a replica is probed (``GET <url>/models``) before its first use and when its cool-off ends.
A busy replica (429) is only skipped for that request. A stream fails over only while it has yielded
nothing. When every replica is down the model raises :class:`EndpointsUnreachable`, a
:class:`~tessera.errors.ModelUnreachable`, so a routed subtask falls back to a local tier. A model with a
single endpoint has no probes and no cool-off (routing has its own); its endpoint failing is a
:class:`~tessera.errors.ModelUnreachable` too, with the client's error as its cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from tessera.errors import ModelUnreachable
from tessera.models.base import note_endpoint

__all__ = ["EndpointsUnreachable", "ReplicaSet"]

PROBE_TIMEOUT_S = 2.0
"""Longest a health probe waits for an answer."""
T = TypeVar("T")


class EndpointsUnreachable(ModelUnreachable):
    """Every endpoint of a remote model is down or failed this request."""


@dataclass
class _Attempt:
    emitted: bool = False
    """A stream yielded something: too late to fail over."""
    ok: bool = False


@dataclass
class _Replica:
    url: str
    checked: bool = False
    down_until: float = 0.0
    in_flight: int = 0
    last_error: str = ""


class ReplicaSet:
    """The replicas of one model and what is known about each one's health.

    Args:
        urls: the replicas' base URLs (``http://host:port/v1``).
        cooloff_s: how long a replica that failed is skipped.
        api_key: sent with health probes.
        probe_timeout_s: the longest a health probe waits.
    """

    def __init__(
        self,
        urls: list[str],
        *,
        cooloff_s: float = 15.0,
        api_key: str | None = None,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._replicas = [_Replica(url) for url in urls]
        self.cooloff_s = cooloff_s
        self.api_key = api_key
        self.probe_timeout_s = probe_timeout_s
        self.fail_over = len(urls) > 1
        self._lock = threading.Lock()
        self._turn = 0

    @property
    def urls(self) -> list[str]:
        """Every replica's URL, in config order."""
        return [r.url for r in self._replicas]

    def unchecked(self) -> list[str]:
        """Replicas to probe before use: never checked, or out of their cool-off."""
        now = time.monotonic()
        with self._lock:
            return [r.url for r in self._replicas if not r.checked and r.down_until <= now]

    def probe(self, urls: list[str]) -> None:
        """Health-check ``urls`` at once; a replica that does not answer goes into cool-off."""
        if not urls:
            return
        if len(urls) == 1:
            results = [self._answers(urls[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(urls)) as pool:
                results = list(pool.map(self._answers, urls))
        for url, error in zip(urls, results, strict=True):
            if error is None:
                with self._lock:
                    self._get(url).checked = True
            else:
                self.mark_down(url, error)

    def health(self) -> dict[str, bool]:
        """Probe every replica now; URL -> whether it answers."""
        self.probe(self.urls)
        now = time.monotonic()
        with self._lock:
            return {r.url: r.down_until <= now for r in self._replicas}

    def order(self) -> list[str]:
        """The healthy replicas, least busy first, round-robin among equally busy ones."""
        now = time.monotonic()
        with self._lock:
            self._turn += 1
            n = len(self._replicas)
            rotated = [self._replicas[(self._turn + i) % n] for i in range(n)]
            healthy = [r for r in rotated if r.down_until <= now]
            return [r.url for r in sorted(healthy, key=lambda r: r.in_flight)]

    def begin(self, url: str) -> None:
        """A request to ``url`` starts."""
        with self._lock:
            self._get(url).in_flight += 1

    def end(self, url: str) -> None:
        """A request to ``url`` ended, however it went."""
        with self._lock:
            replica = self._get(url)
            replica.in_flight = max(0, replica.in_flight - 1)

    def mark_down(self, url: str, error: str) -> None:
        """Skip ``url`` for ``cooloff_s``; it is probed again before its next use."""
        with self._lock:
            replica = self._get(url)
            replica.down_until = time.monotonic() + self.cooloff_s
            replica.checked = False
            replica.last_error = error

    def unreachable(self, model_id: str, errors: dict[str, str]) -> EndpointsUnreachable:
        """The error for a request that no replica could serve (``errors``: what each one said)."""
        now = time.monotonic()
        parts = []
        with self._lock:
            for r in self._replicas:
                why = errors.get(r.url)
                if why is None and r.down_until > now:
                    why = f"in cool-off for {r.down_until - now:.0f}s after: {r.last_error}"
                parts.append(f"{r.url}: {why or 'busy'}")
        return EndpointsUnreachable(
            f"model {model_id!r}: all {len(self._replicas)} endpoint(s) are unreachable ({'; '.join(parts)})"
        )

    # -- running requests ---------------------------------------------------------------------------

    def call(self, fn: Callable[[str], T], model_id: str) -> tuple[str, T]:
        """``(url, fn(url))`` from the best healthy replica, failing over while they fail."""
        errors: dict[str, str] = {}
        self.probe(self.unchecked() if self.fail_over else [])
        for url in self._candidates():
            with self._attempt(url, errors) as attempt:
                result = fn(url)
            if attempt.ok:
                return url, result
        raise self.unreachable(model_id, errors)

    async def acall(self, fn: Callable[[str], Awaitable[T]], model_id: str) -> tuple[str, T]:
        """Async :meth:`call`."""
        errors: dict[str, str] = {}
        if self.fail_over and (pending := self.unchecked()):
            await asyncio.to_thread(self.probe, pending)
        for url in self._candidates():
            with self._attempt(url, errors) as attempt:
                result = await fn(url)
            if attempt.ok:
                return url, result
        raise self.unreachable(model_id, errors)

    def stream(self, fn: Callable[[str], Iterator[T]], model_id: str) -> Iterator[T]:
        """The items of ``fn(url)`` from the best healthy replica; fails over until the first item."""
        errors: dict[str, str] = {}
        self.probe(self.unchecked() if self.fail_over else [])
        for url in self._candidates():
            with self._attempt(url, errors) as attempt:
                for item in fn(url):
                    attempt.emitted = True
                    yield item
            if attempt.ok:
                return
        raise self.unreachable(model_id, errors)

    async def astream(self, fn: Callable[[str], AsyncIterator[T]], model_id: str) -> AsyncIterator[T]:
        """Async :meth:`stream`."""
        errors: dict[str, str] = {}
        if self.fail_over and (pending := self.unchecked()):
            await asyncio.to_thread(self.probe, pending)
        for url in self._candidates():
            with self._attempt(url, errors) as attempt:
                async for item in fn(url):
                    attempt.emitted = True
                    yield item
            if attempt.ok:
                return
        raise self.unreachable(model_id, errors)

    @contextlib.contextmanager
    def _attempt(self, url: str, errors: dict[str, str]) -> Iterator[_Attempt]:
        """One try on ``url``: counted as in flight; an error another replica may take is swallowed
        (``ok`` stays False), any other error propagates. Success reports the endpoint."""
        attempt = _Attempt()
        self.begin(url)
        try:
            yield attempt
        except Exception as exc:
            if attempt.emitted or not self._skip(url, exc, errors):
                if not self.fail_over and _unreachable(exc):
                    raise ModelUnreachable(f"{type(exc).__name__}: {exc}") from exc
                raise
            return
        finally:
            self.end(url)
        attempt.ok = True
        note_endpoint(url)

    def _candidates(self) -> list[str]:
        return self.order() if self.fail_over else self.urls

    def _skip(self, url: str, exc: Exception, errors: dict[str, str]) -> bool:
        """Whether another replica should take a request that failed on ``url`` with ``exc``.

        A replica that cannot be reached, times out or answers 5xx goes into cool-off; a busy one (429)
        is only skipped for this request; any other error (a bad request, a loop: 508) is the answer.
        """
        import openai

        if not self.fail_over:
            return False
        if isinstance(exc, openai.RateLimitError):
            errors[url] = "busy (HTTP 429)"
            return True
        if _unreachable(exc):
            why = f"{type(exc).__name__}: {exc}"
            errors[url] = why
            self.mark_down(url, why)
            return True
        return False

    def _get(self, url: str) -> _Replica:
        return next(r for r in self._replicas if r.url == url)

    def _answers(self, url: str) -> str | None:
        """None if ``url`` answers a health probe, else why not."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.get(f"{url.rstrip('/')}/models", headers=headers, timeout=self.probe_timeout_s)
        except httpx.HTTPError as exc:
            return f"health check failed: {type(exc).__name__}: {exc}"
        if response.status_code >= 500:
            return f"health check failed: HTTP {response.status_code}"
        return None


def _unreachable(exc: Exception) -> bool:
    """Whether ``exc`` says the endpoint did not answer: no connection, a timeout, a 5xx (not 508, a loop)."""
    import openai

    status = getattr(exc, "status_code", None)
    return isinstance(exc, openai.APIConnectionError) or (
        isinstance(exc, openai.InternalServerError) and status != 508
    )
