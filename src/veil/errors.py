"""One exception type for every problem a user can cause.

The CLI turns a VeilError into one line on stderr and exit code 2; anything else is a bug.
"""


class VeilError(Exception):
    """A user-facing problem: bad input, missing file, wrong key. The message names the file and the problem."""

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
