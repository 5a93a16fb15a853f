"""Tool agents (``kind: tool``): a bare tool, no model. The instruction is turned into the tool's arguments.

Built-in tools (``ocr``, ``tts``, ``python``) know how to read an instruction (``run_for_agent`` or
``args_from_instruction`` in their module); a registered tool with one text argument gets the instruction
as that argument.
"""

from __future__ import annotations

import time
from typing import Any

from tessera.agents.base import Specialist, SpecialistRun
from tessera.tools.base import BUILTIN_TOOLS, ToolEnv, resolve_tool, tool_module
from tessera.tracing import record_span

__all__ = ["ToolAgent"]


class ToolAgent(Specialist):
    """Calls the specialist's ``tool`` with arguments read from the instruction."""

    async def run(self, instruction: str) -> SpecialistRun:
        began = time.time()
        try:
            return await self._call(instruction)
        finally:
            record_span("tool", began, time.time(), tool=self.ctx.spec.tool)

    async def _call(self, instruction: str) -> SpecialistRun:
        ctx = self.ctx
        name = ctx.spec.tool
        assert name is not None, "a tool agent names its tool (checked by the config)"
        env = ToolEnv(ctx.team, ctx.output_dir)
        if name in BUILTIN_TOOLS:
            module = tool_module(name)
            if hasattr(module, "run_for_agent"):
                text, artifacts = await module.run_for_agent(env, instruction)
                return SpecialistRun(output=text, artifacts=artifacts)
            args: dict[str, Any] = module.args_from_instruction(instruction)
            tool = module.make_tool(env)
        else:
            tool = resolve_tool(name, env, where=f"specialists.{ctx.name}.tool")
            fields = list(tool.args)
            if len(fields) != 1:
                raise ValueError(
                    f"tool {name!r} takes {len(fields)} arguments;"
                    " a tool agent can only fill one text argument"
                )
            args = {fields[0]: instruction}
        return SpecialistRun(output=str(await tool.ainvoke(args)))
