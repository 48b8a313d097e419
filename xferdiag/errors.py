"""User-facing errors: one clear line for the person at the keyboard, exit code 2 at the CLI.

Anything that is the user's doing (a bad path, a wrong argument, a checkpoint that does not fit)
raises a subclass of :class:`XferdiagError`. Everything else is a bug and keeps its traceback.
"""


class XferdiagError(Exception):
    """Base class: the message says what was wrong and what to do about it."""

    exit_code = 2


class InputError(XferdiagError, ValueError):
    """An argument or array given to a function is unusable (shape, dtype, NaN, range)."""


class DataError(XferdiagError):
    """A dataset on disk is missing, empty, unreadable or inconsistent."""


class ConfigError(XferdiagError, ValueError):
    """A configuration value or file is invalid."""


class ModelError(XferdiagError):
    """A model cannot be built or its weights cannot be loaded."""


class CheckpointError(ModelError):
    """A checkpoint is missing, unsafe, corrupt, or does not fit the architecture."""


class RunDirError(XferdiagError):
    """A run directory is missing, incomplete, corrupt, locked or from another schema."""


class TrainingDivergedError(XferdiagError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
