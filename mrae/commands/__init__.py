"""The `mrae` commands: one thin module per command, dispatched by :mod:`mrae.cli`.

Each module exposes ``add_arguments(parser)`` and ``main(args) -> int``: it declares the options,
checks what only the command line can get wrong (flag combinations, output paths), calls the
library function that does the work and prints the result. A mistake the user can fix is raised as
:class:`mrae.errors.MraeError`, which ``mrae.cli`` prints as one line with exit code 2. Only the
module of the command being run is imported, so a command's imports decide what it costs to start.
"""
