"""Local models share the machine's cores: a llama.cpp generation holds as many cores as it has threads.

Two models generating at once with two threads each on a two-core machine are not faster than one after
the other: they are several times slower (llama.cpp's threads spin while they wait for each other). So
each generation takes its threads from one budget of physical cores and waits while the budget is spent;
two one-thread models still run side by side on two cores. Remote and function models take nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tessera._system import physical_cores

__all__ = ["CORES", "CoreBudget"]


class CoreBudget:
    """A counting semaphore of cores, taken ``n`` at a time (at most the whole budget)."""

    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self.used = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, cores: int) -> Iterator[None]:
        """Wait until ``cores`` are free, hold them for the block, then give them back."""
        wanted = max(1, min(cores, self.total))
        with self._changed:
            self._changed.wait_for(lambda: self.used + wanted <= self.total)
            self.used += wanted
        try:
            yield
        finally:
            with self._changed:
                self.used -= wanted
                self._changed.notify_all()


CORES = CoreBudget(physical_cores())
"""The process's budget: every local llama.cpp model of every team in this process draws from it."""
