"""Build the orchestration graph: plan -> run_subtask x N (Send) -> join -> (plan | answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph

from tessera.graphs.nodes import TeamNodes
from tessera.graphs.state import TeamState

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from tessera.config import TeamConfig
    from tessera.models.pool import ModelPool

__all__ = ["build_graph"]


def build_graph(config: TeamConfig, pool: ModelPool, *, checkpointer: Any = None) -> CompiledStateGraph:
    """The compiled LangGraph for a team; embeddable in a larger graph as a subgraph."""
    nodes = TeamNodes(config, pool)
    graph = StateGraph(TeamState)
    graph.add_node("plan", nodes.plan)
    graph.add_node("run_subtask", nodes.run_subtask)  # type: ignore[arg-type]  # takes a Send payload
    graph.add_node("join", nodes.join)
    graph.add_node("answer", nodes.answer)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", nodes.route_subtasks, ["run_subtask", "join"])
    graph.add_edge("run_subtask", "join")
    graph.add_conditional_edges("join", nodes.route_join, ["plan", "answer"])
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer)
