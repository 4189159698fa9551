"""What `pip install .` puts in site-packages, read from setup.cfg without building anything.

The checkout keeps `apps/` and `export/` beside `kdistill/`; installed they are `kdistill.apps` and
`kdistill.export`, never top-level packages with such generic names.
"""

import ast
import importlib
import os

import pytest
from setuptools import find_packages
from setuptools.config.setupcfg import read_configuration

from tests.binaries import REPO

OPTIONS = read_configuration(os.path.join(REPO, "setup.cfg"))["options"]
PACKAGES = OPTIONS["packages"]
PACKAGE_DIR = OPTIONS.get("package_dir", {})
CONSOLE_SCRIPTS = [line.split("=", 1)[1].strip() for line in OPTIONS["entry_points"]["console_scripts"]]
SOURCE_FOLDERS = ("kdistill", "apps", "export", "scripts", "tests")


def source_folder(package):
    """The folder setuptools builds `package` from: the longest mapped prefix in package_dir, as build_py does."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in PACKAGE_DIR:
            return os.path.join(REPO, PACKAGE_DIR[prefix], *parts[cut:])
    return os.path.join(REPO, PACKAGE_DIR.get("", ""), *parts)


def test_everything_installs_inside_kdistill():
    top_level = {package.split(".")[0] for package in PACKAGES}
    assert top_level == {"kdistill"}, f"setup.cfg installs top-level packages {sorted(top_level - {'kdistill'})}"
    assert {"kdistill", "kdistill.apps", "kdistill.export"} <= set(PACKAGES)


def test_every_package_folder_of_the_checkout_is_installed():
    for package in PACKAGES:
        assert os.path.isfile(os.path.join(source_folder(package), "__init__.py")), package
    # A new subpackage under kdistill/, apps/ or export/ must be listed in setup.cfg too.
    for name, folder in [("kdistill", "kdistill"), ("kdistill.apps", "apps"), ("kdistill.export", "export")]:
        for sub in find_packages(os.path.join(REPO, folder)):
            assert f"{name}.{sub}" in PACKAGES, f"{folder}/{sub.replace('.', '/')}: list it in setup.cfg"


@pytest.mark.parametrize("target", CONSOLE_SCRIPTS)
def test_console_scripts_point_into_installed_packages(target):
    module, _, attribute = target.partition(":")
    assert module.rpartition(".")[0] in PACKAGES, target
    assert os.path.isfile(source_folder(module) + ".py"), target
    # The editable install (make install) maps kdistill.apps and kdistill.export onto the checkout's folders.
    imported = importlib.import_module(module)
    assert os.path.samefile(imported.__file__, source_folder(module) + ".py")
    assert callable(getattr(imported, attribute))


def test_no_code_imports_the_checkout_only_names():
    """`from export import x` works in the checkout (pytest's pythonpath) but not once installed."""
    offenders = []
    for folder in SOURCE_FOLDERS:
        for root, _, files in os.walk(os.path.join(REPO, folder)):
            for file in [f for f in files if f.endswith(".py")]:
                path = os.path.join(root, file)
                for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
                    names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                             else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
                    if any(name.split(".")[0] in ("apps", "export") for name in names):
                        offenders.append(f"{os.path.relpath(path, REPO)}:{node.lineno}")
    assert not offenders, f"import kdistill.apps / kdistill.export instead: {offenders}"
