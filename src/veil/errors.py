"""One exception type for every problem a user can cause.

The CLI turns a VeilError into one line on stderr and exit code 2; anything else is a bug.
"""
import os


class VeilError(Exception):
    """A user-facing problem: bad input, missing file, wrong key. The message names the file and the problem."""

    def __init__(self, message: str, path=None):
        self.path = None if path is None else display_path(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


def display_path(path) -> str:
    """A path as printable text: bytes of a name that are not UTF-8 shown as \\xNN escapes (never a lone
    surrogate, which cannot be printed)."""
    if isinstance(path, (str, os.PathLike)):
        try:
            return os.fsencode(path).decode("utf-8", "backslashreplace")
        except (TypeError, ValueError):
            pass
    return str(path)


class VeilValueError(VeilError, ValueError):
    """Bad data given to an estimator: a VeilError for the CLI, and the ValueError scikit-learn's conventions expect."""
