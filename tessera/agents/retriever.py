"""The retriever specialist: answers from the team's knowledge base, citing its sources.

It searches the knowledge base with the instruction, numbers the best ``memory.top_k`` chunks as sources
(``[1] docs/guide.md:40-62``), and asks its model to answer from those sources only, citing them by number.
The sources list is appended to the answer, and returned as the ``sources`` artifact. When nothing relevant
is found it says so and does not call the model, so it cannot invent an answer. Without a model it answers
extractively: the numbered chunks themselves.
"""

from __future__ import annotations

import asyncio
import re

from tessera.agents.base import Specialist, SpecialistRun
from tessera.agents.specialist import run_specialist
from tessera.memory.knowledge import format_sources, knowledge_base

__all__ = ["RETRIEVER_PROMPT", "Retriever"]

RETRIEVER_PROMPT = (
    "You answer questions from the numbered sources you are given, and from nothing else. Answer in one or "
    "two sentences that state the facts themselves (numbers, names, places) as the sources give them, and "
    "cite each with its source number in square brackets, like [1] or [2][3]. If the sources do not "
    "contain the answer, say that the knowledge base does not answer it."
)
NOTHING_FOUND = "The knowledge base has nothing relevant to this question, so I cannot answer it from there."

_CITED = re.compile(r"\[(\d{1,2})\]")
_WORDS = re.compile(r"\w{2,}")


class Retriever(Specialist):
    """Search, then answer from the top chunks with ``[n]`` citations (see the module docstring)."""

    manages_attempts = True

    async def run(self, instruction: str) -> SpecialistRun:
        ctx = self.ctx
        hits = ctx.scratch.get("hits")
        if hits is None:  # an escalated retry keeps the sources the smaller tier searched for
            kb = await asyncio.to_thread(knowledge_base, ctx.team)
            top_k = ctx.team.memory.top_k
            hits = ctx.scratch["hits"] = await asyncio.to_thread(kb.search, instruction, top_k)
        if not hits:
            return SpecialistRun(output=NOTHING_FOUND, attempts=1, artifacts={"sources": []})
        sources = [
            {"n": n, "citation": hit.citation(), "source": hit.source, "location": hit.location}
            for n, hit in enumerate(hits, start=1)
        ]
        if ctx.model is None:
            return SpecialistRun(output=format_sources(hits), attempts=1, artifacts={"sources": sources})
        spec = ctx.spec
        if spec.system_prompt is None:
            spec = spec.model_copy(update={"system_prompt": RETRIEVER_PROMPT})
        prompt = f"Sources:\n\n{format_sources(hits)}\n\nQuestion: {instruction}"
        run = await run_specialist(spec, ctx.model, prompt, on_token=ctx.on_token)
        if run.error is None and not _WORDS.search(_CITED.sub("", run.output)):
            run.error = f"the answer only cites sources and says nothing: {run.output.strip()[:60]!r}"
        if run.error is None:
            cited = {int(n) for n in _CITED.findall(run.output) if 1 <= int(n) <= len(hits)}
            listed = [s for s in sources if s["n"] in cited] or sources
            run.output = (
                run.output.rstrip()
                + "\n\nSources:\n"
                + "\n".join(f"[{s['n']}] {s['citation']}" for s in listed)
            )
        run.artifacts["sources"] = sources
        return run
