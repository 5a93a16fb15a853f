"""Async code from synchronous callers: run a coroutine to completion, or iterate an async iterator."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, or the same in a fresh thread when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def iterate_sync(factory: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
    """Iterate an async iterator from synchronous code: it runs on its own loop in a helper thread.

    Items arrive as they are produced. Closing the returned generator early cancels the async side.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()
    handle: dict[str, Any] = {}

    async def pump() -> None:
        handle["task"] = asyncio.current_task()
        handle["loop"] = asyncio.get_running_loop()
        async for item in factory():
            items.put(("item", item))
            if stop.is_set():
                break

    def target() -> None:
        try:
            asyncio.run(pump())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            items.put(("error", exc))
        items.put(("end", None))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    interrupted = False
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if thread.is_alive():
            stop.set()
            loop = handle.get("loop")
            if loop is not None and handle.get("task") is not None:
                loop.call_soon_threadsafe(handle["task"].cancel)
            # After Ctrl-C, the helper may be blocked where no cancel reaches it (a prompt reading the
            # terminal): it is a daemon, so give it a moment and let the process go on without it.
            thread.join(timeout=2.0 if interrupted else None)
