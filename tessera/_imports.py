"""``module:attr`` paths, as team files name callables, tools, engines and difficulty functions.

Every layer imports objects this way, so this lives at the root and raises a neutral
:class:`~tessera.errors.ImportTargetError`. A caller that has a more precise error (a model that cannot
load, say) wraps it in its own type.
"""

from __future__ import annotations

import importlib
from typing import Any

from tessera.errors import ImportTargetError

__all__ = ["import_object"]


def import_object(spec: str, *, where: str) -> Any:
    """Import ``module:attr`` (``attr`` may be dotted); raise :class:`ImportTargetError` naming ``where``."""
    module_name, _, attr = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
        raise ImportTargetError(f"{where}: cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ImportTargetError(f"{where}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    return target
