"""Small helpers for the words the CLI prints."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 model``, ``2 models``: the count and the noun in the right number (``many`` when not +s)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
