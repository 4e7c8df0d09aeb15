"""User-facing errors.

Anything a user can cause (a bad file, a wrong checkpoint, a bad config, no face found) raises
`PoseFaceError` with a one-line message that names the file and the fix. The command line prints
that line without a traceback; library users can catch it.
"""


class PoseFaceError(Exception):
    """An error whose message is meant for the user: one line, names the file and the fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
