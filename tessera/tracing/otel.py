"""OpenTelemetry export of a run's trace (``pip install "tessera[otel]"``).

A run is exported when the application has configured OpenTelemetry: a TracerProvider from
``opentelemetry-sdk`` set globally (``trace.set_tracer_provider``, or ``opentelemetry-instrument``), not
disabled with ``OTEL_SDK_DISABLED=true``. Tessera never sets up an exporter itself; the provider's span
processors decide where spans go.

The spans keep the run's shape: ``tessera.run`` holds ``planning``, ``subtask <id>``, ``join`` and
``answer``, which hold their ``queue``, ``handoff``, ``load``, ``prefill``, ``decode`` and ``tool`` spans.
Their attributes are ``tessera.*``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tessera.types import RunResult, Span

__all__ = ["export_run", "otel_enabled"]

_NS = 1_000_000_000


def otel_enabled() -> bool:
    """Whether a configured (SDK) TracerProvider is installed globally and not disabled."""
    if "opentelemetry.trace" not in sys.modules:  # nobody configured OpenTelemetry in this process
        return False
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return False
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def export_run(result: RunResult, provider: Any = None) -> int:
    """Send ``result.trace`` as OpenTelemetry spans; return how many were sent.

    Args:
        result: a finished run (with its trace).
        provider: the TracerProvider to use; by default the global one, and only when :func:`otel_enabled`.
    """
    if result.trace is None or (provider is None and not otel_enabled()):
        return 0
    from opentelemetry import trace as otel

    from tessera._version import __version__

    tracer = (provider or otel.get_tracer_provider()).get_tracer("tessera", __version__)
    run = result.trace
    root = tracer.start_span(
        "tessera.run",
        start_time=_ns(run.started),
        attributes=_clean(
            {
                "tessera.thread_id": result.thread_id,
                "tessera.status": result.status,
                "tessera.total_s": result.timings.total_s,
                "tessera.overhead_s": run.overhead_s,
                "tessera.critical_path": run.critical_path,
                "tessera.critical_path_s": run.critical_path_s,
                "tessera.time_to_first_subtask_s": run.time_to_first_subtask_s,
                "tessera.replans": result.replans,
            }
        ),
    )
    started: dict[str, Any] = {}
    ids = {s.id for s in run.spans}
    ordered = sorted(run.spans, key=lambda s: s.parent in ids)  # parents first
    for span in ordered:
        parent = started.get(span.parent or "", root)
        started[span.id] = tracer.start_span(
            _name(span),
            context=otel.set_span_in_context(parent),
            start_time=_ns(span.start),
            attributes=_attributes(span),
        )
    for span in reversed(ordered):  # children end before their parents
        started[span.id].end(end_time=_ns(span.end))
    root.end(end_time=_ns(run.ended))
    return len(ordered) + 1


def _name(span: Span) -> str:
    if span.kind in ("subtask", "tool", "handoff") and span.name:
        return f"{span.kind} {span.name}"
    return span.kind


def _attributes(span: Span) -> dict[str, Any]:
    base = {"tessera.kind": span.kind, "tessera.lane": span.lane, "tessera.name": span.name}
    return _clean({**base, **{f"tessera.{k}": v for k, v in span.attrs.items()}})


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attribute values OpenTelemetry accepts: str, bool, int, float, or lists of str."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None or value == "":
            continue
        if isinstance(value, str | bool | int | float):
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [str(v) for v in value]
        else:
            out[key] = str(value)
    return out


def _ns(seconds: float) -> int:
    return int(seconds * _NS)
