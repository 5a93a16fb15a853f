"""Build the orchestration graph: plan -> [approve] -> run_subtask x N (Send) -> join -> (plan | answer).

:func:`graph_builder` returns the uncompiled ``StateGraph`` (to compile with a checkpointer of your
choice; its ``context_schema`` is :class:`~tessera.graphs.context.RunContext`, passed as ``context=``);
:func:`build_graph` compiles it; :func:`sqlite_checkpointer` opens the SQLite checkpointer that ``Team``
uses for runs with a thread id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph

from tessera.graphs.context import RunContext
from tessera.graphs.nodes import TeamNodes
from tessera.graphs.state import TeamState

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph.state import CompiledStateGraph

    from tessera.config import TeamConfig
    from tessera.models.pool import ModelPool

__all__ = ["build_graph", "checkpoint_serde", "graph_builder", "sqlite_checkpointer"]

CHECKPOINTED_TYPES = [
    ("tessera.types", "Plan"),
    ("tessera.types", "Subtask"),
    ("tessera.types", "SubtaskResult"),
    ("tessera.types", "Approval"),
]


def graph_builder(config: TeamConfig, pool: ModelPool) -> StateGraph[Any, RunContext]:
    """The team's graph, not yet compiled."""
    nodes = TeamNodes(config, pool)
    graph: StateGraph[Any, RunContext] = StateGraph(TeamState, context_schema=RunContext)
    graph.add_node("plan", nodes.plan)
    graph.add_node("run_subtask", nodes.run_subtask)  # type: ignore[call-overload]  # takes a Send payload
    graph.add_node("join", nodes.join)
    graph.add_node("answer", nodes.answer)
    graph.add_edge(START, "plan")
    targets = ["run_subtask", "join", END]
    if config.planner.approve:
        graph.add_node("approve", nodes.approve)
        graph.add_edge("plan", "approve")
        graph.add_conditional_edges("approve", nodes.dispatch, targets)
    else:
        graph.add_conditional_edges("plan", nodes.dispatch, targets)
    graph.add_edge("run_subtask", "join")
    graph.add_conditional_edges("join", nodes.after_join, ["plan", "answer"])
    graph.add_edge("answer", END)
    return graph


def build_graph(
    config: TeamConfig, pool: ModelPool, *, checkpointer: Any = None
) -> CompiledStateGraph[Any, RunContext]:
    """The compiled LangGraph for a team; embeddable in a larger graph as a subgraph."""
    return graph_builder(config, pool).compile(checkpointer=checkpointer)


def checkpoint_serde() -> JsonPlusSerializer:
    """LangGraph's serializer, told that Tessera's plan and result types may be read back."""
    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINTED_TYPES)


@asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    """An async SQLite checkpointer on ``path`` (made, with its folder, if missing)."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        yield AsyncSqliteSaver(conn, serde=checkpoint_serde())
