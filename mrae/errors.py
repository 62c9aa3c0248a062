"""Errors for a user's mistake: the command line prints them as one line, without a traceback."""


class MraeError(Exception):
    """Base class of the errors the `mrae` command reports as one line and exit code 2."""


class ConfigError(MraeError, ValueError):
    """A bad setting: an unknown key, a value out of its valid choices, a wrong type."""


class DataError(MraeError, ValueError):
    """Bad input data: a malformed annotation file, a missing image, an empty dataset."""


class TrainingDiverged(MraeError):
    """The loss, the gradient or the weights became NaN or infinite: the run stops without saving
    that state (raised by :class:`mrae.engine.trainer.Trainer`)."""
