"""The general specialist: a model with a system prompt and, optionally, tools. Writing, summarising, Q&A."""

from __future__ import annotations

from tessera.agents.base import Specialist, SpecialistRun
from tessera.agents.specialist import run_specialist

__all__ = ["GENERAL_PROMPT", "General"]

GENERAL_PROMPT = (
    "You are a careful assistant on a team. Do exactly the task you are given, and reply with the result "
    "only: no preamble, no description of what you did."
)


class General(Specialist):
    """Runs the instruction on the specialist's model (tool-calling loop, timeout and attempts per try)."""

    manages_attempts = True

    async def run(self, instruction: str) -> SpecialistRun:
        ctx = self.ctx
        assert ctx.model is not None, "a general specialist has a model (checked by the config)"
        spec = ctx.spec
        if spec.system_prompt is None:
            spec = spec.model_copy(update={"system_prompt": GENERAL_PROMPT})
        return await run_specialist(spec, ctx.model, instruction, tools=ctx.tools, on_token=ctx.on_token)
