"""The web export: a folder with the page, the MediaPipe model and model.json, served on loopback and checked
in a real headless Chromium.

`export.tflite --target=web --web_assets=local` runs here as a user runs it, on a student trained on SST-2
rows: Debian's Chromium, driven by Playwright, opens the page with MediaPipe's web assets copied from the
checkout's npm install, classifies all 872 SST-2 dev sentences through the page's own JavaScript, and the
export report holds its agreement with the Keras student and with MediaPipe Python. Every request not to
loopback is aborted, and one fails the check. Without Chromium, playwright or the npm package
(`make web-deps` installs them) the browser tests are skipped, saying which is missing; under CI
(CI=true), where `make web-deps` has run, they fail instead.
"""

import json
import os
import urllib.request

import numpy as np
import pytest

from kdistill import io
from kdistill.errors import KdistillError
from kdistill.export import browser, metadata, tflite, web
from tests.binaries import run_in_process
from tests.conftest import SST2
from tests.test_export import read_sst2, train_small_student

DEV_ROWS = 872  # all of SST-2 dev
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser_ready():
    reason = browser.missing()
    if reason and os.environ.get("CI"):
        pytest.fail(f"{reason}; CI runs `make web-deps` before the tests")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run's folder as `make demo` leaves it, as far as the web export reads it: the student, its metrics and
    the run's summary.json."""
    student = train_small_student()
    folder = tmp_path_factory.mktemp("run")
    student_dir = os.path.join(folder, "student")
    io.atomic_save_model(student, os.path.join(student_dir, "student.keras"))
    texts, labels = read_sst2("dev", 0, DEV_ROWS)
    accuracy = float(np.mean(student.predict_texts(texts).argmax(-1) == labels))
    io.write_json({"student_dev_acc": accuracy}, os.path.join(student_dir, "metrics.json"))
    io.write_json({"student_dev_acc": accuracy, "dev_rows": len(texts), "dataset": SST2, "student_dir": student_dir},
                  os.path.join(folder, "summary.json"))
    return str(folder)


@pytest.fixture(scope="module")
def exported(run_dir, browser_ready):
    """`export.tflite --target=web --web_assets=local` on the run's student: its output, report and web folder."""
    student_dir = os.path.join(run_dir, "student")
    result = run_in_process("export.tflite", f"--student_dir={student_dir}", "--target=web", "--web_assets=local",
                            "--browser_check=yes", f"--dataset={SST2}")
    model = tflite.default_path(student_dir, "dynamic", "mediapipe")
    return {"stdout": result.stdout, "model": model, "report": io.read_json(model + ".report.json"),
            "web_dir": os.path.join(student_dir, web.WEB_DIR)}


def test_browser_gives_mediapipe_pythons_labels_and_the_keras_students(exported):
    r = exported["report"]
    assert r["browser_rows"] == r["dev_rows"] == DEV_ROWS
    assert r["browser_blocked_requests"] == []
    # The same task graph compiled to WASM: every label MediaPipe Python gives, scores to float rounding.
    assert r["browser_agreement_with_mediapipe"] == 1.0, r
    assert r["browser_max_abs_diff_vs_mediapipe"] < 1e-3, r
    # So against the Keras student it agrees exactly as often as MediaPipe Python does.
    assert r["browser_agreement_with_keras"] == r["mediapipe_agreement"] >= 0.99, r
    assert 0 < r["browser_ms_p50"] <= r["browser_ms_p90"] and 0 < r["browser_ms_per_text"] < 50, r
    assert r["browser_ms_per_text_first_pass"] > 0
    assert r["browser_cross_origin_isolated"] is True  # timers in 5 us steps
    assert r["browser"].startswith("Chromium")
    assert browser.format_table([r]) in exported["stdout"]


def test_web_folder_holds_page_model_info_local_assets_and_screenshot(exported, run_dir):
    folder = exported["web_dir"]
    model_name = os.path.basename(exported["model"])
    with open(os.path.join(folder, model_name), "rb") as a, open(exported["model"], "rb") as b:
        assert a.read() == b.read()
    info = io.read_json(os.path.join(folder, web.INFO_FILE))
    summary = io.read_json(os.path.join(run_dir, "summary.json"))
    assert info["model"] == model_name and info["bytes"] == os.path.getsize(exported["model"])
    assert info["classes"] == ["negative", "positive"]
    assert (info["dev_accuracy"], info["dev_rows"]) == (summary["student_dev_acc"], DEV_ROWS)
    assert info["assets"] == "./mediapipe"
    for name in ("text_bundle.mjs", "wasm/text_wasm_internal.wasm", "wasm/text_wasm_internal.js"):
        assert os.path.getsize(os.path.join(folder, "mediapipe", name)) > 1000, name
    html = open(os.path.join(folder, web.PAGE_FILE), encoding="utf-8").read()
    assert "http" not in html  # nothing but its own folder
    # The picture of the page after a dev sentence was typed in: its scores, with the class names.
    with open(os.path.join(folder, web.SCREENSHOT_FILE), "rb") as f:
        png = f.read()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    assert png == open(exported["model"] + ".page.png", "rb").read()
    shown = exported["report"]["browser_screenshot_text"]
    assert "negative" in shown and "positive" in shown


def test_a_page_that_reaches_outside_the_machine_fails_the_check(model, browser_ready, tmp_path):
    # The CDN page asks jsdelivr for MediaPipe: the check aborts that request and fails, naming it.
    folder = web.write(str(tmp_path / "cdn"), model, assets="cdn")
    with web.serve(folder) as url:
        with pytest.raises(browser.BrowserCheckError, match="cdn.jsdelivr.net"):
            with browser.Page(url):
                pass


@pytest.fixture(scope="module")
def model(run_dir):
    """The run's student as a MediaPipe model, exported here (no browser needed)."""
    path = os.path.join(run_dir, "model_mediapipe.tflite")
    tflite.export_student(io.load_model(os.path.join(run_dir, "student", "student.keras"), "student"), path,
                          kind="mediapipe")
    return path


def test_cdn_folder_is_the_page_model_and_info_only(model, run_dir, tmp_path):
    folder = web.write(str(tmp_path / "web"), model, web.model_info(model, os.path.join(run_dir, "summary.json")))
    assert sorted(os.listdir(folder)) == sorted([web.PAGE_FILE, web.INFO_FILE, "model_mediapipe.tflite"])
    html = open(os.path.join(folder, web.PAGE_FILE), encoding="utf-8").read()
    assert f'"{web.CDN}"' in html and "@mediapipe/tasks-text@1.0.1" in web.CDN
    info = io.read_json(os.path.join(folder, web.INFO_FILE))
    assert info["classes"] == metadata.read_labels(model) == ["negative", "positive"] and info["assets"] == web.CDN
    assert info["dev_rows"] == DEV_ROWS and 0.5 < info["dev_accuracy"] < 1
    with pytest.raises(KdistillError, match="make web-deps"):
        web.write(str(tmp_path / "local"), model, assets="local", node_modules=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="unknown web assets"):
        web.write(str(tmp_path / "other"), model, assets="unpkg")


def test_serve_app_writes_a_runs_folder_and_serves_it(model, run_dir, tmp_path, monkeypatch):
    from kdistill.apps import serve

    run = tmp_path / "run"  # a run made before runs had a web folder: its MediaPipe model and summary only
    run.mkdir()
    for source, name in [(model, "student_dynamic_mediapipe.tflite"), (os.path.join(run_dir, "summary.json"), None)]:
        with open(source, "rb") as f:
            (run / (name or os.path.basename(source))).write_bytes(f.read())
    fetched = {}

    def fetch(url):  # what a browser gets while the app serves
        for name in (web.PAGE_FILE, web.INFO_FILE, "student_dynamic_mediapipe.tflite"):
            with urllib.request.urlopen(url + name, timeout=30) as response:
                fetched[name] = (response.headers["Content-Type"], response.read())

    monkeypatch.setattr(serve, "wait", fetch)
    result = run_in_process("apps.serve", f"--run={run}", "--port=0")
    assert f"serving {run}/web at http://127.0.0.1:" in result.stdout
    assert fetched[web.PAGE_FILE][0].startswith("text/html") and b"TextClassifier" in fetched[web.PAGE_FILE][1]
    info = json.loads(fetched[web.INFO_FILE][1])
    assert info["model"] == "student_dynamic_mediapipe.tflite" and info["dev_rows"] == DEV_ROWS
    assert fetched["student_dynamic_mediapipe.tflite"][1] == open(model, "rb").read()
    bad = run_in_process("apps.serve", f"--run={run}/nowhere", check=False)
    assert bad.returncode == 1 and "no such run folder" in bad.stderr


def test_scores_are_read_by_category_index():
    results = [{"categories": [{"index": 1, "name": "b", "score": 0.75}, {"index": 0, "name": "a", "score": 0.25}]}]
    np.testing.assert_allclose(browser.probabilities(results, 2), [[0.25, 0.75]])
