"""The exception types for problems a user can cause and fix."""


class BenchError(Exception):
    """A user-fixable problem (bad layout, corrupt file, missing weights, no network).

    The message is one sentence saying what is wrong and how to fix it; the CLI prints it
    without a traceback and exits with status 2.
    """


class CorruptImageError(BenchError):
    """An image (or mask) of a dataset cannot be read; the message names the file."""


class MissingWeightsError(BenchError):
    """A backbone's pretrained weights cannot be loaded; the message names the file."""
