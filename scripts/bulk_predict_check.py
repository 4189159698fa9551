"""Measures bulk prediction (`apps.predict --input_file`) at two file sizes: texts per second and peak memory, and
how often its labels equal the Keras student's. The check behind `export.bulk`.

    python scripts/bulk_predict_check.py --model=runs/demo/student --lines=100000,1000000

Each file repeats the dataset's train texts (SST-2 by default) up to its size; each run is a fresh
`python -m apps.predict` process writing JSONL, timed whole (start-up and the model's conversion included) and
by its own work, with its peak resident memory from the kernel. Prints one JSON line per size.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import checkout  # first: kdistill from this checkout
from kdistill import data, pipeline


def main():
    args = checkout.arguments(__doc__, model="runs/demo/student", dataset="../shared/data/sst2",
                              lines="100000,1000000", agreement_rows=(20000, "first rows compared with Keras"))
    texts = list(data.load(args.dataset, num_labels=2, seed=0).unlabelled_texts)
    student = pipeline.load_student(args.model)
    with tempfile.TemporaryDirectory() as folder:
        for lines in (int(n) for n in args.lines.split(",")):
            source, output = os.path.join(folder, f"{lines}.txt"), os.path.join(folder, f"{lines}.jsonl")
            with open(source, "w", encoding="utf-8") as f:
                for i in range(lines):
                    f.write(texts[i % len(texts)].replace("\n", " ") + "\n")
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "apps.predict", f"--model={args.model}", f"--input_file={source}",
                            f"--output_file={output}"], check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            labels = []
            with open(output, encoding="utf-8") as f:
                for _, line in zip(range(args.agreement_rows), f):
                    labels.append(json.loads(line)["label"])
            keras_labels = [student.class_names[i] for i in student.predict_texts(
                [texts[i % len(texts)] for i in range(len(labels))]).argmax(-1)]
            print(json.dumps({
                "lines": lines, "seconds": round(seconds, 1), "texts_per_second": round(lines / seconds),
                # ru_maxrss over all children so far: a larger file's peak can only show if it is higher.
                "peak_rss_mib": round(peak_kib / 1024, 1), "peak_rss_rose": peak_kib > before,
                "agreement_with_keras": sum(a == b for a, b in zip(labels, keras_labels)) / len(labels),
                "compared_rows": len(labels), "cpus": os.cpu_count(),
            }), flush=True)


if __name__ == "__main__":
    main()
