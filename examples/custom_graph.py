"""A custom graph from Tessera's building blocks: plan -> subtasks -> a review step of our own -> answer.

The standard graph joins and may replan; this one swaps the join for a plain-Python review node that
fails subtask outputs too short to be useful, so the answer is written from the others. Run it from the
repo root:

    python examples/custom_graph.py "Write a haiku about the sea. Hi."
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph

from tessera import Team
from tessera.graphs import RunContext, TeamNodes, TeamState, fresh_state

TEAM_FILE = Path(__file__).resolve().parent.parent / "configs" / "offline.yaml"


def review(state: TeamState) -> dict[str, Any]:
    """Fail outputs under four words, so the answer is written from the substantial ones only."""
    results = state.get("results") or {}
    short = {
        i: r.model_copy(update={"status": "failed", "error": "review: too short"})
        for i, r in results.items()
        if r.status == "done" and len(r.output.split()) < 4
    }
    return {"results": short, "notes": [f"review failed {i}: too short" for i in short]}


def build(team: Team) -> Any:
    """Wire the team's nodes with a review step instead of join."""
    nodes = TeamNodes(team.config, team.pool)
    graph = StateGraph(TeamState, context_schema=RunContext)
    graph.add_node("plan", nodes.plan)
    graph.add_node("run_subtask", nodes.run_subtask)  # type: ignore[arg-type]
    graph.add_node("review", review)
    graph.add_node("answer", nodes.answer)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", nodes.dispatch, ["run_subtask", "review"])
    graph.add_edge("run_subtask", "review")
    graph.add_edge("review", "answer")
    graph.add_edge("answer", END)
    return graph.compile()


async def main(task: str) -> dict[str, Any]:
    team = Team.from_yaml(TEAM_FILE)
    graph = build(team)
    ctx = RunContext(team.config.runtime.max_concurrency)
    return await graph.ainvoke(fresh_state(task), context=ctx)


if __name__ == "__main__":
    final = asyncio.run(main(" ".join(sys.argv[1:]) or "Write a haiku about the sea. Hi."))
    print(final["answer"])
    for note in final["notes"]:
        print("note:", note, file=sys.stderr)
