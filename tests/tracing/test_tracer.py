"""tessera.tracing: the recorder, its context, and what it derives (critical path, handoffs, overhead)."""

from __future__ import annotations

import asyncio
import threading

from tessera.tracing import Tracer, carry, critical_path, current_tracer, record_span
from tessera.types import Span

T0 = 1_000.0


def subtask(tracer: Tracer, sid: str, start: float, end: float, deps: list[str], round_: int = 0) -> None:
    """A subtask step with one decode span, at seconds after T0."""
    span_id = tracer.span_id("subtask", sid, round_)
    tracer.record(
        "subtask", T0 + start, T0 + end, name=sid, span_id=span_id, lane="m", round=round_,
        depends_on=deps, started=T0 + start,
    )  # fmt: skip
    tracer.record("decode", T0 + start + 0.1, T0 + end, parent=span_id, model="m")


def known_dag() -> Tracer:
    """planning 0-1; a 1-3, b 1-2, c (after a, b) 3.5-5, d 1-1.5; answer 5-6.

    The longest chain by wall time is planning -> a -> c -> answer (b ends earlier than a)."""
    tracer = Tracer(started=T0)
    tracer.record("planning", T0, T0 + 1, span_id=tracer.span_id("planning"), lane="p", round=0)
    subtask(tracer, "a", 1, 3, [])
    subtask(tracer, "b", 1, 2, [])
    subtask(tracer, "c", 3.5, 5, ["a", "b"])
    subtask(tracer, "d", 1, 1.5, [])
    tracer.record("answer", T0 + 5, T0 + 6, span_id=tracer.span_id("answer"), lane="p", round=0)
    return tracer


def test_critical_path_on_a_known_dag() -> None:
    trace = known_dag().finish(ended=T0 + 6)
    assert trace.critical_path == ["planning@0", "subtask:a@0", "subtask:c@0", "answer@0"]
    assert trace.critical_path_s == 6.0
    assert trace.time_to_first_subtask_s == 1.0


def test_handoff_gap_runs_from_the_last_dependency_to_real_work() -> None:
    trace = known_dag().finish(ended=T0 + 6)
    [handoff] = [s for s in trace.spans if s.kind == "handoff"]
    assert (handoff.name, handoff.parent, handoff.attrs["after"]) == ("c", "subtask:c@0", "a")
    assert (handoff.start, handoff.end) == (T0 + 3, T0 + 3.6)  # a ends at 3; c's decode starts at 3.6


def test_overhead_is_wall_time_outside_model_and_tool_spans() -> None:
    trace = known_dag().finish(ended=T0 + 6)
    # decode covers 1.1-3 (a, b, d overlap) and 3.6-5: 3.3 s busy of 6 s
    assert abs(trace.overhead_s - 2.7) < 1e-9


def test_replan_waits_for_the_join_before_it() -> None:
    tracer = known_dag()
    tracer.record("join", T0 + 5, T0 + 5.5, span_id=tracer.span_id("join", round=0), round=0)
    tracer.round = 1
    tracer.record("planning", T0 + 5.5, T0 + 6, span_id=tracer.span_id("planning"), round=1)
    subtask(tracer, "a", 6, 7, [], round_=1)
    tracer.record("answer", T0 + 7, T0 + 8, span_id=tracer.span_id("answer"), round=1)
    path = [s.id for s in critical_path(tracer.finish(ended=T0 + 8).spans)]
    assert path == [
        "planning@0", "subtask:a@0", "subtask:c@0", "join@0", "planning@1", "subtask:a@1", "answer@1"
    ]  # fmt: skip


def test_spans_find_the_run_through_the_context_and_carry() -> None:
    record_span("decode", 1, 2, model="outside")  # no run: nothing happens, nothing raises
    tracer = Tracer()
    seen: list[Tracer | None] = []

    def in_thread() -> None:
        seen.append(current_tracer())
        record_span("decode", 3, 4, model="m")

    async def run() -> None:
        with tracer.scope("subtask", "s1", round=0):
            record_span("tool", 1, 2, tool="calc")
            await asyncio.to_thread(record_span, "decode", 2, 3, model="m")  # to_thread copies the context
            plain = threading.Thread(target=in_thread)  # a bare thread does not
            plain.start()
            plain.join()
            carried = threading.Thread(target=carry(in_thread))
            carried.start()
            carried.join()

    asyncio.run(run())
    assert seen == [None, tracer]
    spans = tracer.finish().spans
    children = [(s.kind, s.start, s.parent) for s in spans if s.parent]
    assert children == [
        ("tool", 1, "subtask:s1@0"),
        ("decode", 2, "subtask:s1@0"),
        ("decode", 3, "subtask:s1@0"),
    ]
    lanes = {s.kind + str(s.start): s.lane for s in spans}
    assert lanes["tool1.0"] == "tool:calc" and lanes["decode2.0"] == "m"


def test_spans_round_trip_through_json() -> None:
    trace = known_dag().finish(ended=T0 + 6)
    again = type(trace).model_validate_json(trace.model_dump_json())
    assert again == trace and isinstance(again.spans[0], Span)
