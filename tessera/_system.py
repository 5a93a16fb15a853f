"""Facts about this machine: physical cores and physical memory, with no third-party imports."""

from __future__ import annotations

import os
from functools import cache


@cache
def physical_cores() -> int:
    """Physical CPU cores (not hyper-threads) available to this process; at least 1."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores: set[tuple[str, str]] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            physical = core = ""
            for line in fh:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "physical id":
                    physical = value
                elif key == "core id":
                    core = value
                elif not key and core:
                    cores.add((physical, core))
                    physical = core = ""
            if core:
                cores.add((physical, core))
    except OSError:
        pass
    count = len(cores) or (available or 1)
    return max(1, min(count, available or count))


@cache
def total_memory_bytes() -> int:
    """Physical memory in bytes (8 GiB if it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30
