"""Specialists: planner, router, generic specialist, coder, retriever, tool agents."""
