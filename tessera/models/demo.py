"""Moved to :mod:`tessera.testing.demo`; this name stays for team files written before the move
(``tessera init`` wrote ``callable: tessera.models.demo:planner``)."""

from tessera.testing.demo import Part, echo, example_for, planner, split_task

__all__ = ["Part", "echo", "example_for", "planner", "split_task"]
