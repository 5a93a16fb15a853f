"""The ``knowledge`` tool: search the team's knowledge base (``tessera ingest``) from any specialist.

A ``general`` specialist that lists ``tools: [knowledge]`` can look things up as it works; the ``retriever``
kind is the specialist that does nothing else. As a ``kind: tool`` agent it returns the numbered chunks
for the instruction, with their citations.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from tessera.tools.base import ToolEnv

__all__ = ["KnowledgeArgs", "make_tool", "run_for_agent"]

DESCRIPTION = (
    "Search the team's knowledge base (ingested documents and code). Returns the most relevant passages, "
    "numbered, each with its source file and lines; cite them as [n] path:lines."
)
NOTHING = "no relevant passages in the knowledge base"


class KnowledgeArgs(BaseModel):
    """The ``knowledge`` tool's arguments."""

    query: str = Field(description="What to look for, in a few words.", max_length=500)
    k: int = Field(5, ge=1, le=20, description="How many passages.")


def _search(env: ToolEnv, query: str, k: int) -> tuple[str, list[dict[str, Any]]]:
    from tessera.memory.knowledge import format_sources, knowledge_base

    hits = knowledge_base(env.config).search(query, k)
    sources = [{"n": n, "citation": h.citation(), "source": h.source} for n, h in enumerate(hits, 1)]
    return (format_sources(hits) if hits else NOTHING), sources


def make_tool(env: ToolEnv) -> BaseTool:
    """The ``knowledge`` tool over the team's ``memory.collection``."""

    def knowledge(query: str, k: int = 5) -> str:
        return _search(env, query, k)[0]

    async def aknowledge(query: str, k: int = 5) -> str:
        return (await asyncio.to_thread(_search, env, query, k))[0]

    return StructuredTool.from_function(
        func=knowledge,
        coroutine=aknowledge,
        name="knowledge",
        description=DESCRIPTION,
        args_schema=KnowledgeArgs,
    )


async def run_for_agent(env: ToolEnv, instruction: str) -> tuple[str, dict[str, Any]]:
    """Run ``knowledge`` for a tool agent: the passages for the instruction, and their sources."""
    text, sources = await asyncio.to_thread(_search, env, instruction, env.config.memory.top_k)
    return text, {"sources": sources}
