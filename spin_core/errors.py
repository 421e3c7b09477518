"""Exception types whose messages name the file, row/line and key at fault."""


class SpinError(Exception):
    """Base class: the CLI prints these without a traceback and exits non-zero."""


class ConfigError(SpinError):
    """A config value is missing, unknown or out of range."""


class DataError(SpinError):
    """An input data file is malformed (the message names file, row and field)."""


class PackageNotServedError(DataError):
    """The registry answers that it has no such package version (a release withdrawn from PyPI)."""


class ModelError(SpinError):
    """A model directory is missing or incomplete."""


class TrainingDivergedError(SpinError):
    """The loss became NaN or infinite."""


class BackendUnavailableError(SpinError):
    """An optional backend (vLLM, DeepSpeed) was asked for but is not installed."""


class BadNameError(SpinError, ValueError):
    """A model name that does not follow the workflow's grammar (spin_core/names.py)."""
