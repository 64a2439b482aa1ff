"""Errors that m3cls raises for problems a user can fix.

Every message says what was expected, what was found and how to fix it, on one line. The CLI turns an
``M3clsError`` into that line on stderr and exit code 2; anything else is a bug and keeps its traceback.
"""


class M3clsError(Exception):
    """Base class: a problem with the user's input, files or settings."""


class DataError(M3clsError):
    """A data file is missing, unreadable, or holds a record m3cls cannot use."""


class ConfigError(M3clsError):
    """A command-line flag or setting has a value that cannot work."""


class ModelLoadError(M3clsError):
    """A model or tokenizer could not be loaded from the given name or folder."""


class OutputError(M3clsError):
    """An output file or folder cannot be written."""


class TrainingInterrupted(M3clsError):
    """Training stopped on Ctrl-C after saving a checkpoint; the message says how to resume."""
