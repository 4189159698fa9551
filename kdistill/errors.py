"""The one exception type that user mistakes raise.

Binaries print its message as a single line and exit non-zero; anything else is
a bug and keeps its traceback.
"""


class KdistillError(Exception):
    """A problem with the user's input: the message says what, where and what to do."""
