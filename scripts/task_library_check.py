"""Does the TFLite Task Library's BertNLClassifier load a MediaPipe export and give MediaPipe's top class?

tflite-support 0.4.4, the Task Library's last release, needs protobuf<4 and
numpy<2, which TensorFlow 2.21 cannot share a process with, so it runs in an
environment of its own (`make task-library-check` builds it in
.venv-task-library). This script plays both parts:

- run with kdistill's environment, it classifies the dev texts with MediaPipe's
  TextClassifier, runs itself in the Task Library's environment with `--classify`,
  and prints how often the two top classes agree, per model;
- run with `--classify`, it only imports tflite_support, and writes
  BertNLClassifier's scores for each text as JSON.

    python scripts/task_library_check.py --venv=.venv-task-library --dataset=../shared/data/sst2 \
        runs/demo/student/student_*_mediapipe.tflite
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile


def classify(model_paths, texts_path, out_path):
    from tflite_support.task import text

    with open(texts_path, encoding="utf-8") as f:
        texts = json.load(f)
    results = {}
    for path in model_paths:
        try:
            classifier = text.BertNLClassifier.create_from_file(path)
            # The Task Library reports categories by name; their order is the label file's.
            results[path] = [{c.category_name: c.score for c in classifier.classify(t).classifications[0].categories}
                             for t in texts]
        except (RuntimeError, ValueError) as e:
            results[path] = {"error": str(e).splitlines()[0][:200]}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(results, f)


def _library_path(venv):
    # The Task Library's wheel links libusb-1.0.so.0; where the system lacks it,
    # the manylinux build in the libusb-package wheel stands in for it.
    found = glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "libusb_package", "libusb-1.0.so"))
    if not found:
        return None
    folder = os.path.join(venv, "lib", "libusb")
    os.makedirs(folder, exist_ok=True)
    link = os.path.join(folder, "libusb-1.0.so.0")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(found[0]), link)
    return folder


def compare(model_paths, dataset, venv):
    import numpy as np

    from kdistill import data
    from kdistill.export import runtime

    texts = list(data.load(dataset, num_labels=len(runtime.MediaPipeClassifier(model_paths[0]).class_names),
                               seed=0, max_unlabelled=0).dev_texts)
    env = dict(os.environ)
    library = _library_path(venv)
    if library:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [library, env.get("LD_LIBRARY_PATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        texts_path, out_path = os.path.join(tmp, "texts.json"), os.path.join(tmp, "scores.json")
        with open(texts_path, "w", encoding="utf-8") as f:
            json.dump(texts, f)
        subprocess.run([os.path.join(venv, "bin", "python"), os.path.abspath(__file__), "--classify",
                        f"--texts={texts_path}", f"--out={out_path}", *model_paths], check=True, env=env)
        with open(out_path, encoding="utf-8") as f:
            task_library = json.load(f)
    print(f"BertNLClassifier (tflite-support 0.4.4) against MediaPipe TextClassifier on {len(texts)} dev texts")
    print("| model | loads and runs | same top class as MediaPipe | max score difference |")
    print("| --- | --- | ---: | ---: |")
    for path in model_paths:
        scores = task_library[path]
        name = os.path.relpath(path)
        if isinstance(scores, dict):
            print(f"| {name} | no: {scores['error']} | - | - |")
            continue
        client = runtime.MediaPipeClassifier(path)
        expected = client.predict_proba(texts)
        client.close()
        actual = np.array([[row[c] for c in client.class_names] for row in scores], np.float32)
        same = np.mean(actual.argmax(-1) == expected.argmax(-1))
        print(f"| {name} | yes | {same:.2%} | {np.abs(actual - expected).max():.2e} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--classify", action="store_true", help="(internal) run in the Task Library's environment")
    parser.add_argument("--texts")
    parser.add_argument("--out")
    parser.add_argument("--venv", default=".venv-task-library")
    parser.add_argument("--dataset", help="dataset spec whose dev texts are classified")
    args = parser.parse_args()
    if args.classify:
        classify(args.models, args.texts, args.out)
    else:
        if not args.dataset:
            parser.error("--dataset is required: its dev texts are what both clients classify")
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        compare(args.models, args.dataset, args.venv)


if __name__ == "__main__":
    main()
