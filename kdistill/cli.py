"""Running an absl binary so that user errors read as one line, not a traceback.

Each binary defines its flags in a `define_flags()` function rather than on import,
so binaries can be imported side by side (the tests run them in one process) and
`run` defines them just before parsing.
"""

import sys

from absl import app, flags, logging

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
    define_flags_of_main(define_flags)
    app.run(guarded(main))


def define_flags_of_main(define_flags):
    """Calls `define_flags` and makes each flag it defines a key flag of the running program.

    absl's `--help` lists the main module's key flags only, and most of a binary's flags are
    defined in `apps/common.py`; as key flags of `sys.argv[0]` (`python -m apps.demo` or the
    `kdistill-demo` script alike) they are all listed.
    """
    before = set(flags.FLAGS)
    define_flags()
    for name in sorted(set(flags.FLAGS) - before):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
