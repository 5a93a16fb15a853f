from __future__ import annotations

import importlib

import tessera


def test_every_public_name_resolves() -> None:
    for name in tessera.__all__:
        assert getattr(tessera, name) is not None


def test_sub_packages_exist() -> None:
    for sub in ("agents", "tools", "memory", "graphs", "models"):
        importlib.import_module(f"tessera.{sub}")
