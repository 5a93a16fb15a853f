"""One writer per Chroma path.

Two processes writing one Chroma ``PersistentClient`` path silently corrupt its index, so every writer
holds an exclusive ``flock`` on ``<path>.lock`` for as long as it writes. The kernel drops the lock when the
process dies, even by SIGKILL, so a crashed ingest never leaves the store locked. A second writer fails at
once with an error that says who holds the lock and what to do instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tessera.errors import UserError

__all__ = ["StoreLockedError", "WriterLock"]


class StoreLockedError(UserError):
    """Another process is writing this knowledge base."""


class WriterLock:
    """An exclusive, non-blocking, crash-safe lock on a store directory."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.path = store_dir.with_name(store_dir.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StoreLockedError` naming the holder's pid."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreLockedError(
                f"{self.store_dir}: another process (pid {holder}) is writing this knowledge base; wait for "
                "it to finish, or set memory.chroma_url to a `chroma run` server for several writers"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (also dropped by the kernel when the process exits)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None
