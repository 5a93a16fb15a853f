"""Team mode: a whole team as one OpenAI-compatible chat model (``tessera serve --team FILE``).

The last user message is the task (earlier turns go in front of it as the conversation so far); the
team's answer is the completion, and its :class:`~tessera.types.RunResult` rides along in a ``tessera``
field of the response (of the last chunk, when streaming). Streaming sends the answer's tokens as the
team writes them. A run with no answer is an error: 422 with the RunResult, or an error event in a
stream; a ``partial`` run answers (its ``tessera.status`` says ``partial``). A request for another model
than the team is 404, as OpenAI answers it.

A team may use another served team as a model, so requests carry a hop count (``X-Tessera-Hops``): a
request that has already passed ``max_hops`` team servers is refused with 508, which stops a team that
(through others, or directly) calls itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from langchain_core.messages import AIMessage

from tessera._hops import HOPS_HEADER, current_hops
from tessera.events import AnswerToken, Done
from tessera.serve._common import (
    ApiError,
    ChatRequest,
    ServeOptions,
    base_app,
    chunk,
    completion,
    content_text,
    new_id,
    read_request,
    sse_stream,
    tokens_usage,
)
from tessera.team import Team
from tessera.types import RunResult

__all__ = ["create_team_app"]


def create_team_app(team: Team, options: ServeOptions | None = None) -> FastAPI:
    """The app serving ``team`` as the chat model named after it.

    Args:
        team: the team; its pool keeps its models warm between requests.
        options: API key, limits and the hop limit.
    """
    options = options or ServeOptions()
    name = team.config.name

    def health() -> dict[str, Any]:
        statuses = team.pool.status()
        return {
            "model": name,
            "team": name,
            "loaded": all(s.loaded or not s.loads_weights for s in statuses),
            "queue": sum(s.queue for s in statuses),
            "models": [
                {"name": s.name, "backend": s.backend, "loaded": s.loaded or not s.loads_weights}
                for s in statuses
            ],
        }

    app = base_app(f"tessera serve: team {name}", options, health)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "tessera"}]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        hops = _hops(request, options.max_hops)
        body = await read_request(request, options.max_body_bytes)
        body.check_model(name)
        if body.output_schema() is not None:
            raise ApiError(400, "response_format: a served team answers in text, not structured output")
        task = task_of(body)
        cid = new_id()
        if body.stream:
            return sse_stream(_stream(team, task, hops, body, cid, name))
        token = current_hops.set(hops)
        try:
            result = await team.arun(task)
        finally:
            current_hops.reset(token)
        tessera = result.model_dump(mode="json")
        if result.status not in ("done", "partial"):  # a partial run answers; tessera.status says so
            raise _failed(result)
        usage = run_usage(result, body.words())
        return completion(cid, name, AIMessage(content=result.answer), usage=usage, tessera=tessera)

    @app.exception_handler(_RunFailed)
    async def run_failed(request: Request, exc: _RunFailed) -> Any:
        return exc.response(tessera=exc.result.model_dump(mode="json"))

    return app


def run_usage(result: RunResult, request_words: int) -> dict[str, int]:
    """The tokens the team's model calls read and wrote in the run (planning, subtasks, answer).

    Where the models do not count what they read (function models), the request's words stand in for the
    prompt tokens (function models count tokens as words).
    """
    spans = result.trace.spans if result.trace is not None else []
    prompt = sum(int(s.attrs.get("prompt_tokens") or 0) for s in spans if s.kind == "prefill")
    completion = sum(int(s.attrs.get("tokens") or 0) for s in spans if s.kind == "decode")
    if not spans:
        completion = sum(s.tokens for s in result.subtasks)
    return tokens_usage(prompt or request_words, completion)


def task_of(body: ChatRequest) -> str:
    """The task for the team: the last user message, after the earlier turns of the conversation."""
    turns = [(m.get("role"), content_text(m.get("content"))) for m in body.messages]
    last = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=None)
    if last is None or not turns[last][1].strip():
        raise ApiError(400, "messages: no user message with text to take as the task")
    earlier = [f"{role}: {text}" for role, text in turns[:last] if role in ("user", "assistant") and text]
    if not earlier:
        return turns[last][1]
    return "Conversation so far:\n" + "\n".join(earlier) + "\n\nTask: " + turns[last][1]


class _RunFailed(ApiError):
    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(422, message, "team_run_failed")
        self.result = result


def _failed(result: RunResult) -> _RunFailed:
    failed = [s for s in result.subtasks if s.status == "failed"]
    why = failed[0].error if failed else "; ".join(result.notes) or "no answer"
    return _RunFailed(f"the team's run ended {result.status}: {why}", result)


def _hops(request: Request, limit: int) -> int:
    raw = request.headers.get(HOPS_HEADER, "0").strip()
    if not raw.isdigit():
        raise ApiError(400, f"{HOPS_HEADER}: expected a whole number, got {raw!r}")
    hops = int(raw)
    if hops >= limit:
        raise ApiError(
            508,
            f"{HOPS_HEADER} is {hops}: the request passed {limit} team servers already "
            "(a team calling itself?); refused",
            "loop_detected",
        )
    return hops


async def _stream(
    team: Team, task: str, hops: int, body: ChatRequest, cid: str, name: str
) -> AsyncIterator[dict[str, Any]]:
    current_hops.set(hops)  # in the task that sends the stream, so only this request's calls see it
    yield chunk(cid, name, {"role": "assistant", "content": ""})
    streamed = False
    async for event in team.astream(task):
        if isinstance(event, AnswerToken) and event.text:
            streamed = True
            yield chunk(cid, name, {"content": event.text})
        elif isinstance(event, Done):
            result = event.result
            if result.status not in ("done", "partial"):  # a partial run answers; tessera.status says so
                raise _failed(result)
            if not streamed and result.answer:
                yield chunk(cid, name, {"content": result.answer})
            yield chunk(cid, name, {}, "stop", tessera=result.model_dump(mode="json"))
            if body.include_usage:
                yield chunk(cid, name, None, usage=run_usage(result, body.words()))
