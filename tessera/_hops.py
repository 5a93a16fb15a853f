"""The loop guard between team servers: how many ``tessera serve --team`` servers a request has passed.

The server (:mod:`tessera.serve`) reads the header and sets :data:`current_hops` while it serves; an
OpenAI-compatible client (:mod:`tessera.models.openai`) sends one more on every request it makes meanwhile.
Both sides import it from here, so neither imports the other.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["HOPS_HEADER", "current_hops"]

HOPS_HEADER = "X-Tessera-Hops"
"""How many ``tessera serve --team`` servers a request has passed through."""
current_hops: ContextVar[int] = ContextVar("tessera_hops", default=0)
"""The hops of the request being served; requests made while serving it carry one more."""
