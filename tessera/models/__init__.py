"""Model backends, their registry, and the warm model pool.

Every backend is a langchain-core ``BaseChatModel``. The built-in ones are ``llama_cpp`` (local GGUF),
``openai`` (any OpenAI-compatible endpoint) and ``function`` (a Python callable). :data:`BACKENDS` registers
each backend's config class and model class together; adding one means adding a file and a line there,
not another ``if``. What a model can do (run in this process, hold weights in RAM, decode under a grammar)
is a class attribute of its model class (see :class:`~tessera.models.base.TesseraChatModel`), read through
:func:`is_local` and :func:`loads_weights`, never a branch on a backend's name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tessera.config import FunctionModelConfig, LlamaCppModelConfig, OpenAIModelConfig
from tessera.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from tessera.config import ModelConfig

__all__ = ["BACKENDS", "Backend", "build_model", "is_local", "loads_weights", "model_class"]


@dataclass(frozen=True)
class Backend:
    """One backend: the config class of its ``models.<name>`` entries and its model class.

    The model class is named as ``module:Class`` and imported on first use, so that reading a config does
    not import every backend.
    """

    config: type[Any]
    model: str

    def model_class(self) -> type[BaseChatModel]:
        """The backend's chat model class (imported now)."""
        module_name, _, class_name = self.model.partition(":")
        cls: type[BaseChatModel] = getattr(importlib.import_module(module_name), class_name)
        return cls


BACKENDS: dict[str, Backend] = {
    "llama_cpp": Backend(LlamaCppModelConfig, "tessera.models.llama_cpp:LlamaCppChatModel"),
    "openai": Backend(OpenAIModelConfig, "tessera.models.openai:OpenAIChatModel"),
    "function": Backend(FunctionModelConfig, "tessera.models.function:FunctionModel"),
}


def model_class(backend: str, *, where: str = "backend") -> type[BaseChatModel]:
    """The model class registered for ``backend``; :class:`ConfigError` for an unknown one."""
    entry = BACKENDS.get(backend)
    if entry is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError([f"{where}: unknown backend {backend!r} (known: {known})"])
    return entry.model_class()


def build_model(name: str, config: ModelConfig) -> BaseChatModel:
    """Build the chat model for ``models.<name>``; weights are not loaded yet."""
    cls: Any = model_class(config.backend, where=f"models.{name}.backend")
    return cls.from_config(name, config)  # type: ignore[no-any-return]


def _class_of(model: BaseChatModel | ModelConfig) -> type[Any]:
    backend = getattr(model, "backend", None)
    if isinstance(backend, str) and backend in BACKENDS and isinstance(model, BACKENDS[backend].config):
        return model_class(backend)
    return type(model)


def is_local(model: BaseChatModel | ModelConfig) -> bool:
    """Whether ``model`` (an instance, or a config entry) runs here rather than behind a network endpoint.

    It reads the model class's ``local`` attribute; a chat model class without one (any LangChain model)
    counts as remote.
    """
    return bool(getattr(_class_of(model), "local", False))


def loads_weights(model: BaseChatModel | ModelConfig) -> bool:
    """Whether ``model`` holds weights in this process's memory, so that it loads, unloads and queues."""
    return bool(getattr(_class_of(model), "loads_weights", False))
