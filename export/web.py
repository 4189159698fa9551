"""The run's model in any web browser: a static folder holding a page, the MediaPipe model and its details.

`write` fills a folder (a run's `web/`) with:

    index.html          the page (`export.page`): a text box, the categories with their scores, each call's ms
    <model>.tflite      the MediaPipe model, the very file that goes into an Android app
    model.json          what the page shows about it: name, size, classes, dev accuracy from the run
    mediapipe/          MediaPipe's web JS bundle and WASM (only with assets="local")
    page.png            the page after a classification, when `export.browser` has checked the model

How MediaPipe's web assets reach the page (`assets`):
- "cdn" (default): the page imports `@mediapipe/tasks-text` from a pinned jsdelivr URL (`CDN`). Writing it
  needs no network and no npm, so every run writes it (`pipeline.run_all`), it weighs the model plus 5 KB,
  and the browser fetches (and caches) the 7 MB of WASM only when someone opens the page.
- "local": the JS bundle and the WASM are copied from an npm install of the same pinned version
  (`npm ci` from the checkout's package.json, `make web-deps`): 14 MB more (the SIMD build and the one for
  browsers without SIMD), and the page works with no network at all, behind a firewall or off a USB stick.
  The browser check always uses local assets.

Either folder is static: `serve` (or `python -m apps.serve --run=runs/demo`) serves it on loopback,
and any static host serves it as it is. Browsers load ES modules and WASM over http(s), not `file://`.

Example:

```python
folder = write("runs/demo/web", "runs/demo/student_dynamic_mediapipe.tflite",
               model_info("runs/demo/student_dynamic_mediapipe.tflite", "runs/demo/summary.json"))
with serve(folder) as url:
    print(url)  # http://127.0.0.1:<port>/
```
"""

import contextlib
import functools
import glob
import http.server
import json
import os
import shutil
import threading

from kdistill.errors import KdistillError
from kdistill.export import page

MEDIAPIPE_PACKAGE = "@mediapipe/tasks-text"
MEDIAPIPE_VERSION = "1.0.1"  # the version package.json pins
CDN = f"https://cdn.jsdelivr.net/npm/{MEDIAPIPE_PACKAGE}@{MEDIAPIPE_VERSION}"
ASSETS = ("cdn", "local")
LOCAL_ASSETS_DIR = "mediapipe"
INFO_FILE = "model.json"
PAGE_FILE = "index.html"
SCREENSHOT_FILE = "page.png"
WEB_DIR = "web"
# What the page loads: the ES-module bundle, and the WASM builds FilesetResolver picks from (SIMD, else none).
_BUNDLE = "text_bundle.mjs"
_WASM = ("text_wasm_internal.js", "text_wasm_internal.wasm", "text_wasm_nosimd_internal.js",
         "text_wasm_nosimd_internal.wasm")
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(folder, model_path, info=None, assets="cdn", node_modules=None):
    """Writes the page, the model and `model.json` (`info`, default `model_info(model_path)`) into `folder`.

    `assets` is "cdn" or "local" (copied from `node_modules`, default `find_node_modules()`).
    Returns `folder`.
    """
    from kdistill import io  # here, not at the top: serving a folder needs neither Keras nor TensorFlow

    if assets not in ASSETS:
        raise ValueError(f"unknown web assets {assets!r}; choose one of {ASSETS}")
    if not os.path.isfile(model_path):
        raise KdistillError(f"{model_path}: no MediaPipe model here; export one with --target=mediapipe first")
    info = dict(info or model_info(model_path))
    info["model"] = os.path.basename(model_path)
    source = _mediapipe_package(node_modules) if assets == "local" else None
    os.makedirs(folder, exist_ok=True)
    if os.path.abspath(os.path.dirname(model_path)) != os.path.abspath(folder):
        shutil.copyfile(model_path, os.path.join(folder, info["model"]))
    local = os.path.join(folder, LOCAL_ASSETS_DIR)
    if source:
        os.makedirs(os.path.join(local, "wasm"), exist_ok=True)
        shutil.copyfile(os.path.join(source, _BUNDLE), os.path.join(local, _BUNDLE))
        for name in _WASM:
            shutil.copyfile(os.path.join(source, "wasm", name), os.path.join(local, "wasm", name))
    else:
        shutil.rmtree(local, ignore_errors=True)  # a CDN page must not lean on a copy left from before
    info["assets"] = f"./{LOCAL_ASSETS_DIR}" if source else CDN
    screenshot = model_path + ".page.png"  # the browser check's picture of this model, if it was checked
    if os.path.isfile(screenshot):
        shutil.copyfile(screenshot, os.path.join(folder, SCREENSHOT_FILE))
    io.write_json(info, os.path.join(folder, INFO_FILE))
    with io.atomic_path(os.path.join(folder, PAGE_FILE)) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page.render(info["assets"]))
    return folder


def model_info(model_path, run=None):
    """What the page shows: the model's name, size and classes; with `run` (a run's summary.json or a student's
    metrics.json, as a dict or a path), the Keras student's dev accuracy and the rows it was measured on."""
    from kdistill import io
    from kdistill.export import metadata

    info = {
        "name": os.path.splitext(os.path.basename(model_path))[0],
        "bytes": os.path.getsize(model_path),
        "classes": metadata.read_labels(model_path) or metadata.read_metadata(model_path).get("class_names", []),
        "mode": metadata.read_metadata(model_path).get("mode"),
        "mediapipe": f"{MEDIAPIPE_PACKAGE}@{MEDIAPIPE_VERSION}",
    }
    if isinstance(run, str):
        run = io.read_json(run) if os.path.isfile(run) else None
    for key, name in [("student_dev_acc", "dev_accuracy"), ("dev_rows", "dev_rows"), ("dataset", "dataset")]:
        if run and run.get(key) is not None:
            info[name] = run[key]
    return info


def run_info(student_dir):
    """What the run says about the student in `student_dir`: the run's summary.json (one folder up) when its
    student is this one, else the student's metrics.json; {} when there is neither."""
    from kdistill import io

    student_dir = os.path.abspath(student_dir)
    summary = os.path.join(os.path.dirname(student_dir), "summary.json")
    if os.path.isfile(summary):
        found = io.read_json(summary)
        if os.path.basename(os.path.normpath(found.get("student_dir") or "")) == os.path.basename(student_dir):
            return found
    metrics = os.path.join(student_dir, "metrics.json")
    return io.read_json(metrics) if os.path.isfile(metrics) else {}


def find_model(run_dir):
    """The run's MediaPipe model: `student_dynamic_mediapipe.tflite` (the demo's), else the only other one."""
    found = sorted(glob.glob(os.path.join(run_dir, "*_mediapipe.tflite"))
                   + glob.glob(os.path.join(run_dir, "student", "*_mediapipe.tflite")))
    preferred = [path for path in found if os.path.basename(path) == "student_dynamic_mediapipe.tflite"]
    if preferred or len(found) == 1:
        return (preferred or found)[0]
    if not found:
        raise KdistillError(f"{run_dir}: no *_mediapipe.tflite model in this run; export one with "
                            f"python -m export.tflite --student_dir={run_dir}/student --target=web --dataset=...")
    raise KdistillError(f"{run_dir}: several MediaPipe models ({', '.join(map(os.path.basename, found))}); "
                        "pass the one to serve")


def find_node_modules():
    """The npm install holding MediaPipe's web package: $KDISTILL_NODE_MODULES, the checkout's (make web-deps),
    or the working directory's node_modules; None when there is none."""
    for folder in (os.environ.get("KDISTILL_NODE_MODULES"), os.path.join(_CHECKOUT, "node_modules"),
                   os.path.join(os.getcwd(), "node_modules")):
        if folder and os.path.isfile(os.path.join(folder, MEDIAPIPE_PACKAGE, "package.json")):
            return folder
    return None


def _mediapipe_package(node_modules):
    node_modules = node_modules or find_node_modules()
    if not node_modules or not os.path.isfile(os.path.join(node_modules, MEDIAPIPE_PACKAGE, "package.json")):
        raise KdistillError(f"no npm install of {MEDIAPIPE_PACKAGE} in {node_modules or 'the checkout'} for local web "
                            "assets; run `make web-deps` "
                            "(or `npm ci`) in the checkout, set KDISTILL_NODE_MODULES, or use --web_assets=cdn")
    source = os.path.join(node_modules, MEDIAPIPE_PACKAGE)
    with open(os.path.join(source, "package.json"), encoding="utf-8") as f:
        version = json.load(f).get("version")
    if version != MEDIAPIPE_VERSION:
        raise KdistillError(f"{source}: version {version}, but the page is made for {MEDIAPIPE_VERSION}; "
                            "run `npm ci` in the checkout")
    return source


class _Handler(http.server.SimpleHTTPRequestHandler):
    # Browsers refuse module scripts and streamed WASM compilation served with another type.
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
                      ".json": "application/json", ".tflite": "application/octet-stream"}

    def end_headers(self):
        if self.server.isolated:
            # Cross-origin isolation: performance.now() then ticks in 5 us steps instead of 100 us, fine
            # enough to time one call. Only for pages whose every file is served from here.
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)


@contextlib.contextmanager
def serve(folder, host="127.0.0.1", port=0, verbose=False, isolated=False):
    """Serves `folder` over http on `host`:`port` (0: a free port) in a thread; yields the page's URL.

    `isolated` makes the page cross-origin isolated (finer timers); it then loads nothing from other origins.
    """
    if not os.path.isfile(os.path.join(folder, PAGE_FILE)):
        raise KdistillError(f"{folder}: no {PAGE_FILE}; write the web folder first (export.tflite --target=web)")
    try:
        server = http.server.ThreadingHTTPServer((host, port), functools.partial(_Handler, directory=folder))
    except OSError as e:
        raise KdistillError(f"cannot serve on {host}:{port} ({e.strerror}); pick another --port") from None
    server.verbose, server.isolated = verbose, isolated
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
