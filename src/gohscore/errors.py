"""The one exception type for mistakes a user can fix (bad input, bad config)."""


class GohscoreError(Exception):
    """A user-fixable problem; the message names the file, row or key and says how to fix it.

    The command line prints it as one line and exits with status 2, without a traceback.
    """
