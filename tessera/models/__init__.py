"""Model backends and the warm model pool.

Every backend is a langchain-core ``BaseChatModel``. The built-in ones are ``llama_cpp`` (local GGUF),
``openai`` (any OpenAI-compatible endpoint) and ``function`` (a Python callable). A backend is a module
with a class that has ``from_config(name, config)``; adding one means adding a file and a line to
``BACKENDS``, not another ``if``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tessera.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from tessera.config import ModelConfig

__all__ = ["BACKENDS", "build_model"]

BACKENDS: dict[str, str] = {
    "llama_cpp": "tessera.models.llama_cpp:LlamaCppChatModel",
    "openai": "tessera.models.openai:OpenAIChatModel",
    "function": "tessera.models.function:FunctionModel",
}


def build_model(name: str, config: ModelConfig) -> BaseChatModel:
    """Build the chat model for ``models.<name>``; weights are not loaded yet."""
    target = BACKENDS.get(config.backend)
    if target is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError([f"models.{name}.backend: unknown backend {config.backend!r} (known: {known})"])
    module_name, _, class_name = target.partition(":")
    cls: Any = getattr(importlib.import_module(module_name), class_name)
    return cls.from_config(name, config)  # type: ignore[no-any-return]
