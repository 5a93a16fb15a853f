"""The orchestration state machine: state, nodes, graph builder."""
