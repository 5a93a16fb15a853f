"""``python -m tessera.cli``: the ``tessera`` command."""

from tessera.cli._app import main

main()
