"""The orchestration state machine: state, nodes, graph builder.

The building blocks for a custom graph: :class:`TeamNodes` (``plan``, ``approve``, ``dispatch``,
``run_subtask``, ``join``, ``after_join``, ``answer``), :class:`TeamState` and :func:`fresh_state`, and
:func:`graph_builder` / :func:`build_graph` for the standard wiring. ``examples/custom_graph.py`` shows one.
"""

from tessera.graphs.build import build_graph, checkpoint_serde, graph_builder, sqlite_checkpointer
from tessera.graphs.context import RunContext
from tessera.graphs.nodes import JoinDecision, TeamNodes
from tessera.graphs.state import TeamState, fresh_state

__all__ = [
    "JoinDecision",
    "RunContext",
    "TeamNodes",
    "TeamState",
    "build_graph",
    "checkpoint_serde",
    "fresh_state",
    "graph_builder",
    "sqlite_checkpointer",
]
