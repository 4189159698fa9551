"""What the measurement scripts share: this checkout on the import path, and a command line from defaults.

    import checkout  # first: `kdistill` then imports from this checkout, installed or not

    args = checkout.arguments(__doc__, model="runs/demo/student", rows=(20000, "first rows compared"))

`arguments` makes `--name` of each keyword, typed as its default; a `(default, help)` pair adds help, and a
default of None makes the flag required.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def arguments(doc, **options):
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, option in options.items():
        default, help_text = option if isinstance(option, tuple) else (option, None)
        parser.add_argument(f"--{name}", default=default, type=str if default is None else type(default),
                            required=default is None, help=help_text)
    return parser.parse_args()
