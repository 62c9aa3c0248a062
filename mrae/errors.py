"""Errors for a user's mistake: the command line prints them as one line, without a traceback."""


class MraeError(Exception):
    """Base class of the errors the `mrae` command reports as one line and exit code 2."""


class ConfigError(MraeError, ValueError):
    """A bad setting: an unknown key, a value out of its valid choices, a wrong type."""


class DataError(MraeError, ValueError):
    """Bad input data: a malformed annotation file, a missing image, an empty dataset."""
