"""Run tracing: where a run's wall time went, as spans.

Each run has a :class:`Tracer` (on its ``RunContext``). The graph's nodes open scopes with
:meth:`Tracer.scope` (planning, each subtask, join, answer); a scope puts the tracer and the scope's span id
in a :class:`~contextvars.ContextVar`. Code that runs below a scope (models, tools) calls
:func:`record_span`, which finds the tracer there and files the span under that scope. Outside a traced
run, :func:`record_span` does nothing.

Context variables follow ``await``, ``asyncio.to_thread`` and tasks, but not a thread you start yourself
nor ``loop.run_in_executor``: hand those :func:`carry` (``Thread(target=carry(work))``,
``run_in_executor(None, carry(fn))``) so spans recorded there find the run.

:meth:`Tracer.finish` turns the spans into a :class:`~tessera.types.Trace`: it adds the handoff gaps and
computes the critical path, the overhead and the time to the first subtask. The tracer is the run's one
clock: a subtask's ``busy_s`` and the run's ``Timings`` are read from its spans (:meth:`Tracer.busy_s`,
:meth:`Tracer.finish`).
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from tessera.types import Span, Trace, union_length

__all__ = [
    "BUSY_KINDS",
    "CONTAINER_KINDS",
    "KINDS",
    "WAIT_KINDS",
    "WORK_KINDS",
    "Tracer",
    "carry",
    "critical_path",
    "current_tracer",
    "record_span",
]

KINDS = (
    "planning",
    "recall",
    "approval",
    "queue",
    "subtask",
    "load",
    "prefill",
    "decode",
    "tool",
    "handoff",
    "answer",
    "join",
    "call",
)
WORK_KINDS = frozenset({"load", "prefill", "decode", "tool", "recall"})
"""Time inside a model, a tool or a long-term memory recall: what is not overhead."""
WAIT_KINDS = frozenset({"approval"})
"""Time waiting for a person (to accept, edit or reject a plan): not overhead either."""
BUSY_KINDS = WORK_KINDS | WAIT_KINDS | {"call"}
"""What is not overhead. A ``call`` is a model call, a tool run or a specialist's attempt as its caller
timed it (around ``ainvoke``): it covers backends that record no load, prefill or decode spans themselves.
The timeline does not draw it (the spans inside it are the detail)."""
CONTAINER_KINDS = frozenset({"planning", "approval", "subtask", "join", "answer"})
"""The steps of a run; the other kinds hang under one of them."""

T = TypeVar("T")


@dataclass(frozen=True)
class _Scope:
    tracer: Tracer
    span_id: str


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("tessera_trace_scope", default=None)


def record_span(kind: str, start: float, end: float, **attrs: Any) -> None:
    """Add a span to the current run's trace; a no-op outside a traced run.

    Args:
        kind: one of :data:`KINDS`: "planning", "queue", "subtask", "load", "prefill", "decode", "tool",
            "handoff", "answer", "join", "call".
        start: ``time.time()`` epoch seconds.
        end: ``time.time()`` epoch seconds.
        **attrs: free-form attributes (``model=``, ``subtask=``, ``tool=``, ``tokens=``, ...). ``model``
            names the chart row; ``name`` and ``lane`` set those fields of the span directly.

    Safe to call from any thread that carries the run's context (see :func:`carry`).
    """
    scope = _SCOPE.get()
    if scope is not None:
        scope.tracer.record(kind, start, end, parent=scope.span_id, **attrs)


def current_tracer() -> Tracer | None:
    """The tracer of the run this code runs in, or None."""
    scope = _SCOPE.get()
    return scope.tracer if scope is not None else None


def carry(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to a copy of the current context: spans it records reach this run's trace.

    For threads and executors, which do not copy the context themselves. Call the result once.
    """
    return functools.partial(contextvars.copy_context().run, fn)


class Tracer:
    """Collects one run's spans (thread-safe) and derives the run's numbers from them.

    Args:
        started: the run's start, epoch seconds (default: now).
    """

    def __init__(self, started: float | None = None) -> None:
        self.started = time.time() if started is None else started
        self.round = 0
        """The planning round (0, then 1 per replan) that subtasks recorded now belong to."""
        self._spans: list[Span] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def record(
        self,
        kind: str,
        start: float,
        end: float,
        *,
        name: str = "",
        span_id: str | None = None,
        parent: str | None = None,
        lane: str = "",
        **attrs: Any,
    ) -> Span:
        """Add one span now (see :func:`record_span`, which fills in ``parent`` from the scope)."""
        span = Span(
            kind=kind,
            name=name or str(attrs.get("tool") or attrs.get("subtask") or ""),
            id=span_id or f"{kind}#{next(self._ids)}",
            parent=parent,
            lane=lane,
            start=start,
            end=max(start, end),
            attrs={k: v for k, v in attrs.items() if v is not None},
        )
        with self._lock:
            self._spans.append(span)
        return span

    def span_id(self, kind: str, name: str = "", round: int | None = None) -> str:
        """The id of a step span: ``planning@0``, ``subtask:s1@0``, ``answer@1``."""
        label = f"{kind}:{name}" if name else kind
        return f"{label}@{self.round if round is None else round}"

    @contextmanager
    def scope(
        self, kind: str, name: str = "", *, lane: str = "", start: float | None = None, **attrs: Any
    ) -> Iterator[dict[str, Any]]:
        """Time a step (planning, a subtask, join, answer) and file the spans recorded inside under it.

        Yields a dict: what the body puts there (``lane``, attributes) is added to the span at the end; an
        ``end`` there (epoch seconds) ends the span at that time, for a body that reports its own length.
        """
        span_id = self.span_id(kind, name, attrs.get("round"))
        start = time.time() if start is None else start
        extra: dict[str, Any] = {}
        token = _SCOPE.set(_Scope(self, span_id))
        try:
            yield extra
        finally:
            _SCOPE.reset(token)
            lane = str(extra.pop("lane", None) or lane)
            end = extra.pop("end", None) or time.time()
            self.record(kind, start, end, name=name, span_id=span_id, lane=lane, **attrs, **extra)

    def find(self, span_id: str) -> Span | None:
        """The span with this id, if it was recorded."""
        with self._lock:
            return next((s for s in self._spans if s.id == span_id), None)

    @property
    def spans(self) -> list[Span]:
        """The spans recorded so far."""
        with self._lock:
            return list(self._spans)

    def busy_s(self, parent: str) -> float:
        """Seconds inside model and tool calls (:data:`BUSY_KINDS`) filed under step ``parent``, parallel
        ones counted once: a subtask's ``busy_s``."""
        windows = [(s.start, s.end) for s in self.spans if s.parent == parent and s.kind in BUSY_KINDS]
        return union_length(windows)

    def finish(self, ended: float | None = None) -> Trace:
        """The trace of the run so far: spans with lanes and handoffs, critical path, overhead.

        Args:
            ended: the run's end, epoch seconds (default: now).
        """
        ended = time.time() if ended is None else ended
        spans = _with_lanes(self.spans)
        spans += _handoffs(spans)
        spans.sort(key=lambda s: (s.start, s.end))
        path = critical_path(spans)
        windows = [(s.start, s.end) for s in spans if s.kind in BUSY_KINDS]
        busy_s = union_length(windows, self.started, ended)
        first = [s.attrs["started"] for s in spans if s.kind == "subtask" and s.attrs.get("started")]
        return Trace(
            started=self.started,
            ended=ended,
            spans=spans,
            critical_path=[s.id for s in path],
            critical_path_s=path[-1].end - path[0].start if path else 0.0,
            overhead_s=max(0.0, ended - self.started - busy_s),
            time_to_first_subtask_s=min(first) - self.started if first else None,
        )


def _with_lanes(spans: list[Span]) -> list[Span]:
    """Give every span a chart row: its own, its model's, ``tool:<name>``, or its parent's."""
    by_id = {s.id: s for s in spans}

    def lane(span: Span, depth: int = 0) -> str:
        if span.lane:
            return span.lane
        if span.attrs.get("model"):
            return str(span.attrs["model"])
        if span.kind == "tool":
            return f"tool:{span.name or span.attrs.get('tool', '?')}"
        parent = by_id.get(span.parent or "")
        return lane(parent, depth + 1) if parent is not None and depth < 8 else span.kind

    return [s.model_copy(update={"lane": lane(s)}) for s in spans]


def _handoffs(spans: list[Span]) -> list[Span]:
    """For each subtask with dependencies: from its last dependency's end to the start of its real work."""
    steps = {s.id: s for s in spans if s.kind in CONTAINER_KINDS}
    work: dict[str, float] = {}
    for s in spans:
        if s.kind in WORK_KINDS and s.parent:
            work[s.parent] = min(work.get(s.parent, s.start), s.start)
    found: list[Span] = []
    for sub in steps.values():
        if sub.kind != "subtask" or not sub.attrs.get("depends_on"):
            continue
        deps = [steps.get(f"subtask:{d}@{sub.attrs.get('round', 0)}") for d in sub.attrs["depends_on"]]
        ends = [(d.end, d.name) for d in deps if d is not None]
        begin = work.get(sub.id) or sub.attrs.get("started")
        if not ends or begin is None:
            continue
        end_of_dep, dep = max(ends)
        if begin > end_of_dep:
            found.append(
                Span(
                    kind="handoff",
                    name=sub.name,
                    id=f"handoff:{sub.id}",
                    parent=sub.id,
                    lane=sub.lane,
                    start=end_of_dep,
                    end=begin,
                    attrs={"subtask": sub.name, "after": dep},
                )
            )
    return found


def critical_path(spans: list[Span]) -> list[Span]:
    """The chain of steps that set the run's length, first to last.

    From the step that ended last, walk back each time to the predecessor that ended last (the one it
    really waited for): a subtask waits for its dependencies, or for the planning of its round and the
    user's approval of that plan (when asked); the answer and join wait for the round's subtasks; a replan
    waits for the join before it.
    """
    steps = [s for s in spans if s.kind in CONTAINER_KINDS]
    if not steps:
        return []
    by_id = {s.id: s for s in steps}

    def of_round(kind: str, r: int) -> list[Span]:
        return [s for s in steps if s.kind == kind and s.attrs.get("round", 0) == r]

    def before(step: Span) -> list[Span]:
        r = int(step.attrs.get("round", 0))
        if step.kind == "subtask":
            deps = [by_id.get(f"subtask:{d}@{r}") for d in step.attrs.get("depends_on") or []]
            found = [d for d in deps if d is not None]
            return found or of_round("approval", r) or of_round("planning", r)
        if step.kind == "approval":
            return of_round("planning", r)
        if step.kind in ("answer", "join"):
            return of_round("subtask", r) or of_round("planning", r)
        return (of_round("join", r - 1) or of_round("subtask", r - 1)) if r > 0 else []

    last = max(steps, key=lambda s: (s.end, s.kind == "answer"))
    path, seen = [last], {last.id}
    while candidates := [s for s in before(path[-1]) if s.id not in seen]:
        step = max(candidates, key=lambda s: s.end)
        path.append(step)
        seen.add(step.id)
    return path[::-1]
