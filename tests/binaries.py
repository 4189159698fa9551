"""The binaries, run as a user runs them: in a subprocess, or through their entry functions in this process.

A subprocess imports TensorFlow and loads the teacher again (10-30 s); one smoke test
per binary does that. Everything else (flag parsing, one-line errors, outputs) goes
through `run_in_process`, which parses the same command line with the binary's own
`define_flags` and calls its `main` behind `cli.guarded`, as `cli.run` does.
"""

import contextlib
import dataclasses
import importlib
import io
import os
import subprocess
import sys

from absl import flags

from kdistill import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The packages whose modules define binary flags; their flags are dropped between runs. In the checkout the
# binaries run as `python -m apps.demo`; installed (and imported in process) they are kdistill.apps.demo.
BINARY_PACKAGES = ("apps.", "export.", "kdistill.apps.", "kdistill.export.")


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_app(module, *args, stdin=None, check=True, timeout=600):
    """`python -m module args...` in a subprocess, from the repository root."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, input=stdin, capture_output=True, text=True, timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{module} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def define_flags(module):
    """Only `module`'s flags (and absl's) defined and at their defaults; returns the binary's module."""
    binary = importlib.import_module(installed_name(module))
    registry = flags.FLAGS
    defined_by_binaries = {flag.name for defining_module, defined in registry.flags_by_module_dict().items()
                           if defining_module.startswith(BINARY_PACKAGES) for flag in defined}
    for name in defined_by_binaries:
        delattr(registry, name)
    binary.define_flags()
    registry.unparse_flags()
    return binary


def installed_name(module):
    """The name `module` (`apps.demo`, as run from the checkout) has installed: one copy of each module in process."""
    return f"kdistill.{module}" if module.startswith(("apps.", "export.")) else module


def run_in_process(module, *args, stdin=None, check=True):
    """`module`'s entry function on `args`, in this process; stdin is `stdin`, stdout and stderr are captured."""
    binary = define_flags(module)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), _stdin(stdin):
        try:
            cli.guarded(binary.main)(flags.FLAGS([module, *args]))
            returncode = 0
        except SystemExit as exit:
            returncode = exit.code if isinstance(exit.code, int) else 1
    result = Result(returncode, stdout.getvalue(), stderr.getvalue())
    if check and returncode != 0:
        raise AssertionError(f"{module} failed ({returncode}):\n{result.stderr[-3000:]}")
    return result


@contextlib.contextmanager
def _stdin(text):
    saved, sys.stdin = sys.stdin, io.StringIO(text or "")
    try:
        yield
    finally:
        sys.stdin = saved


def one_line_error(result):
    """The single `error:` line of a failed run, after checking there is exactly one and no traceback."""
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]
