"""The web page of a run: MediaPipe's web `TextClassifier` on the run's MediaPipe model, in one HTML file.

The page loads `model.json` (written beside it by `export.web`) for the model's file
name, size, classes and dev accuracy, then MediaPipe Tasks for the web from
`ASSETS` (a pinned CDN URL or a local copy): the same C++ task graph as on
Android, compiled to WebAssembly, tokenizing with the vocabulary packed in the
model and naming the categories from its label file.

For people: a text box; the categories with their scores and the milliseconds
of each call. For programs (the headless-Chromium check, `export.browser`):
`window.classify(texts)` resolves to one `{categories: [{index, name, score}], ms}`
per text, classified one at a time, plus the loop's `total_ms`; `window.ready`
resolves once the model is loaded and rejects with the loading error.

Example:

```python
html = render("https://cdn.jsdelivr.net/npm/@mediapipe/tasks-text@1.0.1")
```
"""

# The default SIMD WASM build, loaded by FilesetResolver as a classic script: in tasks-text 1.0.1 the
# ES-module WASM build (forTextTasks(dir, true)) fails ("Cannot use 'import.meta' outside a module").
_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>kdistill text classifier</title>
<style>
  body { font: 16px/1.45 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1b1f24; }
  h1 { font-size: 1.35rem; margin-bottom: .2rem; }
  .model { color: #57606a; font-size: .9rem; margin-bottom: 1.2rem; }
  textarea { width: 100%; box-sizing: border-box; font: inherit; padding: .6rem; min-height: 5.5rem; }
  button { font: inherit; padding: .35rem 1.1rem; margin-top: .5rem; }
  .row { display: grid; grid-template-columns: 11rem 1fr 4.5rem; gap: .6rem; align-items: center; margin: .3rem 0; }
  .bar { background: #eaeef2; height: 1rem; border-radius: 3px; overflow: hidden; }
  .bar > div { background: #2f81f7; height: 100%; }
  .top .name { font-weight: 600; }
  .score { text-align: right; font-variant-numeric: tabular-nums; }
  #latency { color: #57606a; font-size: .9rem; margin-top: .6rem; }
  #status.error { color: #cf222e; }
</style>
</head>
<body>
<h1>kdistill text classifier</h1>
<div class="model" id="model">loading model information...</div>
<label for="text">Text</label>
<textarea id="text" placeholder="Type a sentence; it is classified as you type."></textarea>
<button id="classify" disabled>Classify</button>
<div id="status">loading MediaPipe...</div>
<div id="categories"></div>
<div id="latency"></div>
<script type="module">
const ASSETS = "__ASSETS__";
const $ = (id) => document.getElementById(id);
// Class names come from the model's label file: shown as text, never as markup.
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
let classifier;

function describe(info) {
  const parts = [`<b>${esc(info.name)}</b>`, `${(info.bytes / 1e6).toFixed(2)} MB`,
                 `classes: ${esc(info.classes.join(", "))}`];
  if (info.dev_accuracy != null) {
    const rows = info.dev_rows ? ` on ${info.dev_rows} rows` : "";
    parts.push(`dev accuracy ${(100 * info.dev_accuracy).toFixed(2)}%${rows} (Keras student)`);
  }
  return parts.join(" &middot; ");
}

function categories(result) {
  return result.classifications[0].categories.map((c) => ({index: c.index, name: c.categoryName, score: c.score}));
}

function show(found, ms) {
  $("categories").innerHTML = found.map((c, i) => `
    <div class="row${i === 0 ? " top" : ""}"><span class="name">${esc(c.name)}</span>
      <div class="bar"><div style="width:${(100 * c.score).toFixed(1)}%"></div></div>
      <span class="score">${c.score.toFixed(3)}</span></div>`).join("");
  $("latency").textContent = `${ms.toFixed(2)} ms for this call, in this browser (WebAssembly)`;
}

function classifyBox() {
  const text = $("text").value;
  const start = performance.now();
  const found = categories(classifier.classify(text));
  show(found, performance.now() - start);
}

window.ready = (async () => {
  const info = await (await fetch("model.json")).json();
  $("model").innerHTML = describe(info);
  const {FilesetResolver, TextClassifier} = await import(`${ASSETS}/text_bundle.mjs`);
  const fileset = await FilesetResolver.forTextTasks(`${ASSETS}/wasm`);
  classifier = await TextClassifier.createFromOptions(fileset, {baseOptions: {modelAssetPath: info.model}});
  $("status").textContent = "";
  $("classify").disabled = false;
  $("classify").onclick = classifyBox;
  $("text").oninput = classifyBox;
  return info;
})();
window.ready.catch((e) => { $("status").textContent = `could not load: ${e}`; $("status").className = "error"; });

window.classify = async (texts) => {
  await window.ready;
  const results = [];
  const start = performance.now();
  for (const text of texts) {
    const t = performance.now();
    const found = categories(classifier.classify(text));
    results.push({categories: found, ms: performance.now() - t});
  }
  return {results, total_ms: performance.now() - start, isolated: window.crossOriginIsolated};
};
</script>
</body>
</html>
"""


def render(assets):
    """The page's HTML, loading MediaPipe's JS bundle and WASM from the folder or URL `assets`."""
    if '"' in assets or "\\" in assets:
        raise ValueError(f"{assets!r}: an assets URL cannot hold quotes or backslashes")
    return _TEMPLATE.replace("__ASSETS__", assets.rstrip("/"))
