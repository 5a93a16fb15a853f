"""The ``tessera`` command line: a thin shell over the Python API.

:mod:`tessera.cli._app` is the command group; each ``_name`` module holds one command or a family of them,
and :mod:`tessera.cli.chat` is the ``tessera chat`` REPL. Heavy libraries are imported inside the commands,
so ``tessera --help`` imports no torch, chromadb or llama_cpp.
"""

from tessera.cli._app import cli, main

__all__ = ["cli", "main"]
