"""Running an absl binary so that user errors read as one line, not a traceback.

Each binary defines its flags in a `define_flags()` function rather than on import,
so binaries can be imported side by side (the tests run them in one process) and
`run` defines them just before parsing.
"""

import sys

from absl import app, logging

from kdistill.errors import KdistillError


def guarded(main):
    """`main`, printing a `KdistillError` as one line on stderr and exiting with status 1.

    With `--verbosity=1` or more the traceback is shown, for debugging.
    """

    def guarded_main(argv):
        try:
            return main(argv)
        except KdistillError as e:
            if logging.get_verbosity() >= logging.DEBUG:
                raise
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            sys.exit(1)

    return guarded_main


def run(main, define_flags):
    """Defines the binary's flags, then `app.run(main)` with one-line user errors."""
    define_flags()
    app.run(guarded(main))
