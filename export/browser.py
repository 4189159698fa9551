"""The web page checked in a real headless Chromium: the browser's labels against the Keras student and MediaPipe.

`parity` writes the model's page with local MediaPipe assets (`export.web`) into a
temporary folder, serves it on loopback, opens it in Debian's Chromium driven by
Playwright, and classifies the texts through the page's own JavaScript
(`window.classify`, one MediaPipe `classify()` call per text). Every request not
to the loopback server is aborted and counted: one is enough to fail the check, so
a page that works here works offline. It returns the agreement of the browser's top
label with the Keras student's and with MediaPipe Python's (`runtime.MediaPipeClassifier`,
the same task graph compiled natively), the largest score difference from the latter,
and the milliseconds per text inside the page (a second pass over the texts, once the
WASM is warm; the first pass's too); with `screenshot`, a PNG of the page after
classifying a text typed into its box.

What it needs (`make web-deps`): /usr/bin/chromium (Debian's `chromium`), the
`playwright` Python package (setup.cfg's test extra; its own browser download is
never used) and an npm install of `@mediapipe/tasks-text` (package.json).
`missing()` says what is absent.

Example:

```python
result = parity("runs/demo/student_dynamic_mediapipe.tflite", dev_texts, keras_probabilities,
                screenshot="runs/demo/student_dynamic_mediapipe.tflite.page.png")
result["browser_agreement_with_mediapipe"], result["browser_ms_per_text"]
```
"""

import os
import shutil
import tempfile
import urllib.parse

import numpy as np

from kdistill.errors import KdistillError
from kdistill.export import metadata, runtime, web

CHROMIUM = os.environ.get("KDISTILL_CHROMIUM", "/usr/bin/chromium")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
# The text typed into the page's box before the screenshot when the caller names none.
SAMPLE_TEXT = "a gripping, funny and beautifully acted film"
_TIMEOUT_MS = 60_000
CHOICES = ("auto", "yes", "no")


class BrowserCheckError(KdistillError):
    """The page did not load or reached outside the machine."""


def missing():
    """What the browser check lacks, as a sentence saying how to install it; None when nothing is missing."""
    lacking = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        lacking.append(f"Chromium ({CHROMIUM}; apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        lacking.append("the playwright Python package (pip install -e '.[test]')")
    if web.find_node_modules() is None:
        lacking.append(f"{web.MEDIAPIPE_PACKAGE} from npm (npm ci in the checkout)")
    if not lacking:
        return None
    return f"the browser check needs {', '.join(lacking)}: `make web-deps` installs them all"


def wanted(choice, flag="browser_check"):
    """Whether to run the browser check: "yes", "no", or ("auto") when everything it needs is installed, else
    saying what is missing; "yes" with something missing stops with that sentence."""
    if choice not in CHOICES:
        raise ValueError(f"unknown {flag} {choice!r}; choose one of {CHOICES}")
    if choice == "no":
        return False
    reason = missing()
    if reason and choice == "yes":
        raise KdistillError(f"{flag}=yes: {reason}")
    if reason:
        print(f"[web] no browser check: {reason}", flush=True)
    return reason is None


class Page:
    """The page at `url` open in headless Chromium, every non-loopback request aborted and kept in `blocked`.

    Use as a context manager; `classify(texts)` runs the page's `window.classify`; `version` names the browser.
    """

    def __init__(self, url):
        self.url = url
        self.blocked = []
        self.errors = []

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            # Playwright's bundled browsers are a download of their own; the system Chromium is driven instead.
            self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            self.version = f"Chromium {self._browser.version}"
            self._context = self._browser.new_context(viewport={"width": 900, "height": 420})
            self._context.route("**/*", self._route)
            self.page = self._context.new_page()
            self.page.on("pageerror", lambda error: self.errors.append(str(error)))
            self.page.goto(self.url, timeout=_TIMEOUT_MS)
            self.page.evaluate("() => window.ready.then(() => true)")
        except Exception as e:
            self.__exit__(None, None, None)
            raise BrowserCheckError(self._failure(f"the page did not load ({str(e).splitlines()[0][:300]})")) from None
        try:
            self.check_offline()
        except BrowserCheckError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for closing in ("_browser", "_playwright"):
            thing = getattr(self, closing, None)
            if thing is not None:
                thing.close() if closing == "_browser" else thing.stop()
                setattr(self, closing, None)

    def _route(self, route):
        host = urllib.parse.urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    def _failure(self, what):
        details = [f"blocked requests to {self.blocked}"] if self.blocked else []
        details += [f"page errors {self.errors}"] if self.errors else []
        return f"{self.url}: {what}" + (f"; {'; '.join(details)}" if details else "")

    def check_offline(self):
        """Raises `BrowserCheckError` if the page has asked for anything outside the machine."""
        if self.blocked:
            raise BrowserCheckError(self._failure("the page reached outside the machine"))

    def classify(self, texts):
        """The page's `window.classify(texts)`: {"results": [{"categories", "ms"}], "total_ms"}."""
        result = self.page.evaluate("(texts) => window.classify(texts)", list(texts))
        self.check_offline()
        return result

    def type_and_screenshot(self, text, path):
        """Types `text` into the page's box, waits for its scores, and saves a PNG of the page at `path`."""
        self.page.fill("#text", text)
        self.page.click("#classify")
        self.page.wait_for_selector("#categories .row", timeout=_TIMEOUT_MS)
        self.page.screenshot(path=path, full_page=True)
        self.check_offline()
        return self.page.inner_text("#categories")


def probabilities(results, num_classes):
    """The page's categories as a `(len(results), num_classes)` array of scores, by category index."""
    rows = np.zeros((len(results), num_classes), np.float32)
    for row, result in zip(rows, results):
        for category in result["categories"]:
            row[category["index"]] = category["score"]
    return rows


def parity(model_path, texts, keras_probabilities=None, mediapipe_probabilities=None, screenshot=None, info=None):
    """The browser's report on `texts` for the MediaPipe model at `model_path` (see the module's docstring).

    `keras_probabilities` (the Keras student's, by text) adds agreement with it;
    `mediapipe_probabilities` saves running MediaPipe Python again. `info` is the page's model.json.
    """
    reason = missing()
    if reason:
        raise KdistillError(reason)
    texts = list(texts)
    classes = metadata.read_labels(model_path)
    if mediapipe_probabilities is None:
        client = runtime.MediaPipeClassifier(model_path)
        try:
            mediapipe_probabilities = client.predict_proba(texts)
        finally:
            client.close()
    folder = tempfile.mkdtemp(prefix="kdistill-web-")
    try:
        web.write(folder, model_path, info, assets="local")
        with web.serve(folder, isolated=True) as url, Page(url) as opened:
            # Two passes: the first pays for the WASM's warm-up (V8 recompiles hot code while it runs: calls of
            # hundreds of ms on the 2-core machine), the second is what a page in use gives; both are reported.
            first = opened.classify(texts)
            answer = opened.classify(texts)
            shown = opened.type_and_screenshot(texts[0] if texts else SAMPLE_TEXT, screenshot) if screenshot else None
            blocked, version = list(opened.blocked), opened.version
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    actual = probabilities(answer["results"], len(classes))
    ms = np.array([r["ms"] for r in answer["results"]], np.float64)
    labels = actual.argmax(-1)
    result = {
        "browser": version,
        "browser_mediapipe": f"{web.MEDIAPIPE_PACKAGE}@{web.MEDIAPIPE_VERSION} (WASM, SIMD)",
        "browser_rows": len(texts),
        "browser_agreement_with_mediapipe": _agreement(labels, mediapipe_probabilities),
        "browser_max_abs_diff_vs_mediapipe": float(np.abs(actual - mediapipe_probabilities).max()) if texts else 0.0,
        # The second pass's mean over the whole loop; p50 and p90 per call.
        "browser_ms_per_text": answer["total_ms"] / len(texts) if texts else None,
        "browser_ms_per_text_first_pass": first["total_ms"] / len(texts) if texts else None,
        "browser_ms_p50": float(np.percentile(ms, 50)) if texts else None,
        "browser_ms_p90": float(np.percentile(ms, 90)) if texts else None,
        "browser_cross_origin_isolated": answer.get("isolated"),
        "browser_blocked_requests": blocked,
    }
    if keras_probabilities is not None:
        result["browser_agreement_with_keras"] = _agreement(labels, keras_probabilities)
    if screenshot:
        result["browser_screenshot"] = os.path.basename(screenshot)
        result["browser_screenshot_text"] = shown
    return result


def _agreement(labels, probabilities):
    return float(np.mean(labels == np.asarray(probabilities).argmax(-1))) if len(labels) else 1.0


def format_table(reports):
    """A Markdown table of the browser check, one row per checked model."""
    lines = [
        "| model | texts | browser vs Keras | browser vs MediaPipe Python | max abs diff vs MediaPipe "
        "| ms per text | p50 ms | p90 ms | ms per text, first pass | browser |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in reports:
        if "browser_agreement_with_mediapipe" not in r:
            continue
        keras = r.get("browser_agreement_with_keras")
        lines.append(
            f"| {r['model']} | {r['browser_rows']} | {'-' if keras is None else f'{keras:.2%}'} "
            f"| {r['browser_agreement_with_mediapipe']:.2%} | {r['browser_max_abs_diff_vs_mediapipe']:.2e} "
            f"| {r['browser_ms_per_text']:.3f} | {r['browser_ms_p50']:.3f} | {r['browser_ms_p90']:.3f} "
            f"| {r['browser_ms_per_text_first_pass']:.3f} | {r['browser']}, {r['browser_mediapipe']} |"
        )
    return "\n".join(lines)
