"""Measures the table in docs/SCALING.md: labelling throughput with 1, 2 and 4 shard processes, and the
peak memory of `apps.distill` streaming a 100,000-row and a 1,000,000-row sharded transfer set.

    python scripts/scaling_benchmark.py --work_dir=runs/scaling            # trains a teacher if none is given
    python scripts/scaling_benchmark.py --work_dir=runs/scaling --teacher_dir=runs/sst2/teacher

1. Labelling: the first `--texts` SST-2 training sentences, written one per line, are labelled into
   4 shards by 1 process (all 4 shards), 2 processes (2 shards each) and 4 processes (1 each), all
   started at once. Throughput = texts / wall-clock seconds from the first start to the last exit
   (process start-up and teacher loading included); each process's own texts/s (teacher time only)
   is reported too. The three runs must write byte-identical shards.
2. Memory: the 4 labelled shards are repeated (hard links, new sidecars) into sets of `--small_rows`
   and `--large_rows` rows, and `apps.distill --transfer_shards=<set> --epochs=1` runs on each with
   the default student. Peak memory is the child's peak resident set size (`wait4`'s ru_maxrss).

Everything runs under `nice -n 19`; results go to <work_dir>/scaling_results.json and a Markdown table
is printed.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kdistill import data, io, labelling  # noqa: E402

SST2 = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "sst2"))
NUM_SHARDS = 4


def run(args, log, env=None):
    """Runs a command under nice, waits for it, returns (seconds, peak RSS in MiB)."""
    start = time.time()
    with open(log, "w") as out:
        process = subprocess.Popen(["nice", "-n", "19", *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   env=env)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed; see {log}")
    return time.time() - start, usage.ru_maxrss / 1024


def ensure_teacher(work_dir, teacher_dir):
    if teacher_dir:
        return teacher_dir
    teacher_dir = os.path.join(work_dir, "teacher")
    if not os.path.exists(os.path.join(teacher_dir, "teacher.keras")):
        print("[scaling] training a teacher (SST-2, 1000 labels)", flush=True)
        run([sys.executable, "-m", "apps.train_teacher", f"--dataset={SST2}", "--num_labels=1000",
             f"--teacher_dir={teacher_dir}"], os.path.join(work_dir, "train_teacher.log"))
    return teacher_dir


def labelling_throughput(work_dir, teacher_dir, texts):
    corpus = os.path.join(work_dir, f"sst2_{texts}.txt")
    rows = [text for _, (_, text, _) in zip(range(texts), data.iter_rows(os.path.join(SST2, "train.tsv")))]
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    results, digests = [], {}
    for processes in (1, 2, 4):
        out = os.path.join(work_dir, f"label_{processes}")
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "-m", "apps.label", f"--teacher_dir={teacher_dir}", f"--input={corpus}",
                   f"--out={out}", f"--num_shards={NUM_SHARDS}"]
        start = time.time()
        children = []
        for p in range(processes):
            shards = ",".join(str(i) for i in range(p, NUM_SHARDS, processes))
            log = open(os.path.join(work_dir, f"label_{processes}.{p}.log"), "w")
            children.append(subprocess.Popen(["nice", "-n", "19", *command, f"--shard_index={shards}"], cwd=REPO,
                                             stdout=log, stderr=subprocess.STDOUT))
        for child in children:
            if child.wait() != 0:
                raise SystemExit(f"labelling with {processes} processes failed; see {work_dir}/label_{processes}.*.log")
        seconds = time.time() - start
        per_process = [io.read_json(path)["texts_per_second"] for path in sorted(glob.glob(os.path.join(out, "metrics.*.json")))]
        digests[processes] = [io.read_json(p)["sha256"] for p in sorted(glob.glob(os.path.join(out, "shard-*.json")))]
        results.append({
            "processes": processes, "texts": texts, "seconds": round(seconds, 1),
            "texts_per_second": round(texts / seconds, 1),
            "per_process_texts_per_second": per_process,
        })
        print(f"[scaling] labelling, {processes} processes: {texts / seconds:.1f} texts/s ({seconds:.1f} s)", flush=True)
    assert digests[1] == digests[2] == digests[4], "shards differ between process counts"
    return results, os.path.join(work_dir, "label_1")


def repeat_shards(source, out, rows):
    """A shard set of about `rows` rows made of hard links to `source`'s shards (sidecars rewritten)."""
    base = labelling.open_shards(source)
    per_shard = base.rows[0]
    count = -(-rows // per_shard)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for index in range(count):
        src = base.files[index % len(base.files)]
        record, sidecar = labelling.shard_paths(out, index, count)
        os.link(src, record)
        meta = io.read_json(os.path.splitext(src)[0] + ".json")
        meta.update(shard=index, num_shards=count, repeated_from=os.path.abspath(src))
        io.write_json(meta, sidecar)
    return labelling.open_shards(out).total_rows


def distill_memory(work_dir, teacher_dir, label_dir, rows):
    shards = os.path.join(work_dir, f"transfer_{rows}")
    total = repeat_shards(label_dir, shards, rows)
    student = os.path.join(work_dir, f"student_{rows}")
    shutil.rmtree(student, ignore_errors=True)
    seconds, peak = run([sys.executable, "-m", "apps.distill", f"--dataset={SST2}", "--num_labels=1000",
                         f"--teacher_dir={teacher_dir}", f"--out_dir={work_dir}", f"--student_dir={student}",
                         f"--transfer_shards={shards}", "--epochs=1"], os.path.join(work_dir, f"distill_{rows}.log"))
    metrics = io.read_json(os.path.join(student, "metrics.json"))
    print(f"[scaling] distill over {total:,} streamed rows: peak RSS {peak:,.0f} MiB, {seconds:.0f} s", flush=True)
    return {"rows": total + 1000, "shard_rows": total, "shards": len(labelling.open_shards(shards).files),
            "peak_rss_mib": round(peak), "seconds": round(seconds), "student_dev_acc": metrics["student_dev_acc"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="runs/scaling")
    parser.add_argument("--teacher_dir", default=None)
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--small_rows", type=int, default=100_000)
    parser.add_argument("--large_rows", type=int, default=1_000_000)
    parser.add_argument("--skip_labelling", action="store_true", help="reuse <work_dir>/label_1")
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    teacher_dir = ensure_teacher(args.work_dir, args.teacher_dir)
    results = {"teacher_dir": teacher_dir, "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    if args.skip_labelling:
        label_dir = os.path.join(args.work_dir, "label_1")
    else:
        results["labelling"], label_dir = labelling_throughput(args.work_dir, teacher_dir, args.texts)
    results["distill"] = [distill_memory(args.work_dir, teacher_dir, label_dir, rows)
                          for rows in (args.small_rows, args.large_rows)]
    small, large = results["distill"]
    results["peak_rss_ratio"] = round(large["peak_rss_mib"] / small["peak_rss_mib"], 3)
    results["load_average_at_end"] = os.getloadavg()
    io.write_json(results, os.path.join(args.work_dir, "scaling_results.json"))
    print("\n| shard processes | texts | wall-clock s | texts/s (end to end) | texts/s per process (teacher only) |")
    print("| --- | --- | --- | --- | --- |")
    for r in results.get("labelling", []):
        print(f"| {r['processes']} | {r['texts']:,} | {r['seconds']} | {r['texts_per_second']} | "
              f"{', '.join(str(x) for x in r['per_process_texts_per_second'])} |")
    print("\n| streamed transfer rows | shards | peak RSS MiB | seconds (1 epoch) | dev accuracy |")
    print("| --- | --- | --- | --- | --- |")
    for r in results["distill"]:
        print(f"| {r['shard_rows']:,} (+1,000 labelled) | {r['shards']} | {r['peak_rss_mib']:,} | {r['seconds']} | "
              f"{r['student_dev_acc']:.4f} |")
    print(f"\npeak RSS ratio, {large['shard_rows']:,} / {small['shard_rows']:,} rows: {results['peak_rss_ratio']}")


if __name__ == "__main__":
    main()
