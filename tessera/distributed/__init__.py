"""Running a team's models on Ray: ``distributed: {engine: ray, address: ...}`` in the team file.

``ray`` is an optional extra (``pip install "tessera[distributed]"``) and is imported only when a team
asks for it.
"""

from __future__ import annotations

from tessera.distributed.ray_engine import RayChatModel, RayModelPool, actor_resources

__all__ = ["RayChatModel", "RayModelPool", "actor_resources"]
