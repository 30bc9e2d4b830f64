"""The ``leadtrail`` command: ``main`` wires the subcommands, one module each, imported only when run."""
