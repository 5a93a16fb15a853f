"""Tracing: one clock for a run, as spans.

:mod:`tessera.tracing.tracer` records spans (:class:`Tracer`, :func:`record_span`, :func:`carry`);
:mod:`tessera.tracing.view` lays a saved run out as a timeline (``tessera trace``, the chat's ``/trace``),
:mod:`tessera.tracing.chart` draws it (``tessera trace --png``) and :mod:`tessera.tracing.otel` exports it to
OpenTelemetry. Only the recorder is imported here; the rest load when asked for.
"""

from tessera.tracing.tracer import (
    BUSY_KINDS,
    CONTAINER_KINDS,
    KINDS,
    WAIT_KINDS,
    WORK_KINDS,
    Tracer,
    carry,
    critical_path,
    current_tracer,
    record_span,
)

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
