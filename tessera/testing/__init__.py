"""Things to test a team with, for this suite and for users' own tests.

- :mod:`tessera.testing.demo`: deterministic function models (``echo``, a rule-based ``planner``) for
  ``backend: function`` teams that need no download (``configs/offline.yaml``).
- :mod:`tessera.testing.tiny`: writes a tiny random-weight llama GGUF that llama.cpp really loads and runs.

The model classes that take a plain function or a script, :class:`~tessera.models.function.FunctionModel`
and :class:`~tessera.models.function.ScriptedModel`, are real backends and live with the other backends
in :mod:`tessera.models`. This package imports nothing from the layers above it.
"""
