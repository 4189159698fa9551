"""Progress display that suits where the output goes.

On a terminal Keras' live progress bars; in a log file (CI, nohup) one line per
epoch, since the live bar's carriage returns turn into megabytes of noise.
"""

import sys


def keras_verbose(verbose="auto"):
    """The `verbose` to pass to `fit`/`Progbar`: 1 on a terminal, 2 in a log, or as given."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def bar(total, unit_name="step"):
    """A Keras Progbar: live on a terminal, a line every 15 s in a log."""
    import keras

    live = sys.stdout.isatty()
    return keras.utils.Progbar(total, unit_name=unit_name, interval=0.05 if live else 15.0)
