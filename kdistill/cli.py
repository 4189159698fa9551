"""Running an absl binary so that user errors read as one line, not a traceback."""

import sys

from absl import app, logging

from kdistill.errors import KdistillError


def run(main):
    """`app.run(main)`, printing a `KdistillError` as one line on stderr (exit 1).

    With `--verbosity=1` or more the traceback is shown, for debugging.
    """

    def guarded(argv):
        try:
            return main(argv)
        except KdistillError as e:
            if logging.get_verbosity() >= logging.DEBUG:
                raise
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded)
