"""OpenTelemetry export of a run's trace, checked with the SDK's in-memory exporter."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace as otel  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.util._once import Once  # noqa: E402

from tessera.tracing.otel import export_run, otel_enabled  # noqa: E402
from tessera.types import RunResult  # noqa: E402
from tests.graphs.conftest import plan_for, sub, team  # noqa: E402


def memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def global_provider(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """An SDK provider set as the process's global one, as an application would; undone afterwards."""
    monkeypatch.setattr(otel, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(otel, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    provider, exporter = memory_provider()
    otel.set_tracer_provider(provider)
    return exporter


def run_chain() -> RunResult:
    return team().run(plan_for("otel chain", sub("a", "first"), sub("b", "then {{a}}", ["a"])))


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def parent_of(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> str | None:
    if span.parent is None:
        return None
    return next(s.name for s in spans if s.context.span_id == span.parent.span_id)


def test_run_exports_spans_with_the_run_shape() -> None:
    result = run_chain()
    provider, exporter = memory_provider()
    sent = export_run(result, provider)
    spans = exporter.get_finished_spans()
    assert sent == len(spans) > 0
    named = by_name(spans)
    [root] = named["tessera.run"]
    assert root.parent is None and root.attributes is not None
    assert root.attributes["tessera.thread_id"] == result.thread_id
    assert list(root.attributes["tessera.critical_path"]) == [  # type: ignore[arg-type]
        "planning@0", "subtask:a@0", "subtask:b@0", "answer@0"
    ]  # fmt: skip
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    for step in ("planning", "subtask a", "subtask b", "join", "answer"):
        [span] = named[step]
        assert parent_of(span, spans) == "tessera.run", step
    decode_parents = sorted(parent_of(s, spans) or "" for s in named["decode"])
    assert decode_parents == ["answer", "planning", "subtask a", "subtask b"]
    [wait] = [s for s in named["queue"] if s.attributes and s.attributes["tessera.wait"] == "deps"]
    assert parent_of(wait, spans) == "subtask b"
    [handoff] = named["handoff b"]
    assert parent_of(handoff, spans) == "subtask b"
    decode_a = next(s for s in named["decode"] if parent_of(s, spans) == "subtask a")
    assert decode_a.attributes is not None and decode_a.attributes["tessera.model"] == "worker"
    assert root.start_time is not None and root.end_time is not None
    assert all(root.start_time <= (s.start_time or 0) <= (s.end_time or 0) <= root.end_time for s in spans)


def test_a_configured_global_provider_gets_every_run(global_provider: InMemorySpanExporter) -> None:
    assert otel_enabled()
    result = run_chain()
    names = [s.name for s in global_provider.get_finished_spans()]
    assert names.count("tessera.run") == 1 and "subtask a" in names and "subtask b" in names
    assert result.status == "done"


def test_disabled_sdk_exports_nothing(
    global_provider: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not otel_enabled()
    run_chain()
    assert global_provider.get_finished_spans() == ()


def test_without_a_configured_provider_nothing_is_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otel, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(otel, "_TRACER_PROVIDER_SET_ONCE", Once())
    assert not otel_enabled()  # the API's default is a proxy that drops spans: tessera sends none
    assert export_run(run_chain()) == 0
