"""The run's report: what the models scored on dev, how sure that is, and per class.

`evaluation` measures one model's dev predictions: accuracy with its 95% Wilson
interval, precision, recall and F1 per class, macro-F1 and the confusion matrix.
`paired_difference` compares two models on the same dev rows: the difference of
their accuracies with a 95% interval from the per-row differences, which is far
narrower than two separate intervals because both models see the same rows.
`new_word_rows` finds the dev rows holding a word no training text holds, where a
student trained on a small pool falls furthest behind its teacher. `write` puts all
of them in `report.md` beside the run's `summary.json`, with the student's
confusion matrix as `confusion.png`.

Example:

```python
student = evaluation(dev_labels, student_logits, class_names)
gap = paired_difference(dev_labels, teacher_logits, student_logits)
print(student["accuracy"], student["accuracy_interval"], gap["difference"], gap["interval"])
```
"""

import os
import re

import numpy as np

Z95 = 1.959964  # the normal quantile of a two-sided 95% interval


def softmax(logits):
    logits = np.asarray(logits, np.float64)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def evaluation(labels, logits, class_names):
    """Accuracy (with its 95% interval), per-class precision/recall/F1/support, macro-F1 and the confusion
    matrix (rows: true class, columns: predicted) of `logits` against `labels`."""
    labels = np.asarray(labels)
    predicted = np.argmax(logits, axis=-1)
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = []
    for i, name in enumerate(class_names):
        true_positive = confusion[i, i]
        precision = true_positive / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = true_positive / confusion[i].sum() if confusion[i].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"class": name, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                          "support": int(confusion[i].sum())})
    correct = int(np.trace(confusion))
    return {
        "accuracy": correct / max(len(labels), 1),
        "accuracy_interval": wilson_interval(correct, len(labels)),
        "macro_f1": float(np.mean([c["f1"] for c in per_class if c["support"]])) if len(labels) else 0.0,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "rows": int(len(labels)),
    }


def wilson_interval(successes, trials):
    """The 95% Wilson score interval of a proportion: sound near 0 and 1 and for small dev sets."""
    if not trials:
        return (0.0, 1.0)
    p = successes / trials
    centre = (p + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 * np.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2)) / (1 + Z95**2 / trials)
    return (float(max(centre - half, 0.0)), float(min(centre + half, 1.0)))


def paired_difference(labels, logits_a, logits_b):
    """Accuracy of A minus accuracy of B on the same rows, with a 95% interval from the per-row differences
    (each row scores 1, 0 or -1), and how many rows each got right that the other did not."""
    labels = np.asarray(labels)
    right_a = (np.argmax(logits_a, axis=-1) == labels).astype(np.float64)
    right_b = (np.argmax(logits_b, axis=-1) == labels).astype(np.float64)
    per_row = right_a - right_b
    n = len(per_row)
    difference = float(per_row.mean()) if n else 0.0
    half = Z95 * float(per_row.std(ddof=1)) / np.sqrt(n) if n > 1 else 1.0
    return {"difference": difference, "interval": (difference - half, difference + half),
            "only_a_right": int(np.sum(per_row > 0)), "only_b_right": int(np.sum(per_row < 0)), "rows": n}


# A word: letters, with one inner apostrophe ("don't"); digits and punctuation are not words.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def words(text):
    """The lower-cased words of `text`."""
    return set(_WORD.findall(str(text).lower()))


def new_word_rows(dev_texts, training_texts):
    """Whether each dev text holds a word that none of `training_texts` holds.

    The student learns a word only from the texts it trains on; the teacher knows the words of its pre-training.
    On the validation rows of CR, SUBJ and MPQA the student agrees with the teacher least on these rows
    (docs/IDEAS.md, "A small pool's gap").
    """
    known = set().union(*(words(t) for t in training_texts)) if len(training_texts) else set()
    return np.array([bool(words(t) - known) for t in dev_texts], dtype=bool)


def by_new_words(new_rows, labels, teacher_logits, student_logits):
    """The teacher's and the student's accuracy and their agreement, on the dev rows with a new word and on the rest."""
    labels = np.asarray(labels)
    teacher, student = np.argmax(teacher_logits, axis=-1), np.argmax(student_logits, axis=-1)
    groups = {}
    for name, rows in (("new_word", new_rows), ("known_words", ~new_rows)):
        count = int(rows.sum())
        groups[name] = {"rows": count,
                        **({"teacher_accuracy": float(np.mean(teacher[rows] == labels[rows])),
                            "student_accuracy": float(np.mean(student[rows] == labels[rows])),
                            "agreement": float(np.mean(teacher[rows] == student[rows]))} if count else {})}
    return groups


def write(out_dir, summary, class_names, dev_labels, dev_logits, dev_texts=None, training_texts=None):
    """`report.md` and `confusion.png` in `out_dir`: `dev_logits` maps "teacher", "labels_only" and "student"
    to their dev logits. With `dev_texts` and `training_texts` (the labelled and unlabelled texts, before copies),
    it also compares the dev rows holding a word no training text holds with the rest (`new_word_rows`).
    Returns the figures it wrote, for summary.json."""
    labels = np.asarray(dev_labels)
    evaluations = {name: evaluation(labels, logits, class_names) for name, logits in dev_logits.items()}
    gap = paired_difference(labels, dev_logits["teacher"], dev_logits["student"])
    gain = paired_difference(labels, dev_logits["student"], dev_logits["labels_only"])
    new_words = None
    if dev_texts is not None and training_texts is not None:
        new_words = by_new_words(new_word_rows(dev_texts, training_texts), labels, dev_logits["teacher"],
                                 dev_logits["student"])
    _confusion_png(np.asarray(evaluations["student"]["confusion"]), class_names, os.path.join(out_dir, "confusion.png"))
    names = {"teacher": "teacher" if summary.get("teacher_ensemble", 1) == 1
             else f"teacher ensemble ({summary['teacher_ensemble']})",
             "labels_only": "student, labels only", "student": "student, distilled"}
    lines = [
        f"# Run report: {os.path.basename(os.path.normpath(summary['dataset']))}",
        "",
        f"Data: `{summary['dataset']}`, {summary['num_labels']:,} labelled and {summary['num_unlabelled']:,} unlabelled "
        f"texts, {len(labels):,} dev rows ({summary.get('dev_source', 'dev split')}), {len(class_names)} classes, seed {summary['seed']}. Teacher: "
        f"`{summary['teacher']}`. Every figure is measured on the dev rows; the intervals are 95%.",
        "",
        "| model | dev accuracy | 95% interval | macro-F1 | parameters |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    params = {"teacher": summary["teacher_params"], "labels_only": summary["student_params"],
              "student": summary["student_params"]}
    for name, result in evaluations.items():
        low, high = result["accuracy_interval"]
        lines.append(f"| {names[name]} | {result['accuracy']:.2%} | {low:.1%} to {high:.1%} | "
                     f"{result['macro_f1']:.3f} | {params[name]:,} |")
    lines += ["", _difference_line("Teacher minus distilled student", gap, "teacher", "student"), ""]
    lines += [_difference_line("Distilled minus labels-only student", gain, "distilled", "labels-only")]
    labelling = summary.get("labelling", {})
    if "dev_agreement_with_teacher" in labelling:
        lines += ["", f"The teacher labelled the transfer set as {labelling['runtime']}: on dev it gave the float32 "
                  f"teacher's label on {labelling['dev_agreement_with_teacher']:.2%} of rows (largest probability "
                  f"difference {labelling['dev_max_probability_difference']:.3f})."]
    if "distill_temperature" in summary:
        lines += ["", f"Distillation softened both answers at temperature {summary['distill_temperature']:g} "
                  "(`--temperature`; auto picks it by the number of classes, as its `--help` says)."]
    truncated, transfer = summary.get("truncated_texts", 0), summary["num_labels"] + summary["num_unlabelled"]
    if truncated:
        lines += ["", f"{truncated:,} of the {transfer:,} training texts ({truncated / transfer:.1%}) are longer than the "
                  f"student's window of {summary['student_sequence_length']} pieces: it reads their beginning. On AG News "
                  "(15% of texts longer) windows of 80 and 128 gained nothing (kdistill's docs/validation/sequence_length); "
                  "`--sequence_length` sets it."]
    if new_words:
        lines += _new_word_lines(new_words, summary["num_labels"], summary["num_unlabelled"])
    lines += [
        "",
        "## The distilled student, per class",
        "",
        "| class | precision | recall | F1 | dev rows |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {c['class']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
              for c in evaluations["student"]["per_class"]]
    lines += [
        "",
        "![confusion matrix of the distilled student on dev](confusion.png)",
        "",
        "## On the phone",
        "",
        f"`{summary['mediapipe_path']}` ({summary['mediapipe_bytes'] / 1e6:.2f} MB) is the file for MediaPipe Tasks' "
        f"`TextClassifier` on Android (the README's \"On the phone\"); MediaPipe gave the Keras student's label on "
        f"{summary['mediapipe_agreement_with_keras']:.2%} of dev. `{summary['tflite_path']}` takes raw text where "
        "TF Text's ops are registered.",
        "",
        "## In the browser",
        "",
        *_browser_lines(summary),
        "",
    ]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    return {
        "accuracy_interval": {name: result["accuracy_interval"] for name, result in evaluations.items()},
        "macro_f1": {name: result["macro_f1"] for name, result in evaluations.items()},
        "teacher_minus_student": gap,
        "student_minus_labels_only": gain,
        **({"dev_rows_by_new_words": new_words} if new_words else {}),
        "report_path": os.path.join(out_dir, "report.md"),
    }


def _new_word_lines(groups, num_labels, num_unlabelled):
    new, known = groups["new_word"], groups["known_words"]
    total = new["rows"] + known["rows"]
    lines = ["", "## Where the student falls behind", "",
             f"{new['rows']:,} of the {total:,} dev rows ({new['rows'] / max(total, 1):.0%}) hold a word that no training "
             f"text holds (the {num_labels:,} labelled and {num_unlabelled:,} unlabelled texts, before perturbed copies). "
             "The student learns a word only from the texts it trains on; the teacher knows the words of its "
             "pre-training.", "",
             "| dev rows | rows | teacher | distilled student | agreement | 95% interval |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, group in (("with a new word", new), ("every word seen in training", known)):
        if group["rows"]:
            low, high = wilson_interval(round(group["agreement"] * group["rows"]), group["rows"])
            lines.append(f"| {name} | {group['rows']:,} | {group['teacher_accuracy']:.2%} | "
                         f"{group['student_accuracy']:.2%} | {group['agreement']:.2%} | {low:.1%} to {high:.1%} |")
    if not (new["rows"] and known["rows"]):
        return lines
    lag = known["agreement"] - new["agreement"]
    # Two groups of different rows: the normal interval of a difference of two independent proportions.
    half = Z95 * np.sqrt(sum(g["agreement"] * (1 - g["agreement"]) / g["rows"] for g in (new, known)))
    if lag - half > 0:
        lines += ["", f"The student agrees with the teacher {100 * lag:.1f} points less often on the rows with a new word "
                  f"(95% interval {100 * (lag - half):.1f} to {100 * (lag + half):.1f}). More unlabelled text of the "
                  "kind dev holds is the one remedy measured to narrow such a gap: on SST-2, distilling from 3,000 or "
                  "10,000 of its 67,000 unlabelled texts instead of all of them widened it (kdistill's "
                  "docs/appendix/small_pool). On CR, text from another source did not help, and nor did seven changes "
                  "to the student and its copies (docs/IDEAS.md). Pass it with `--unlabelled`."]
    else:
        lines += ["", f"The difference in agreement, {100 * lag:+.1f} points (95% interval {100 * (lag - half):+.1f} to "
                  f"{100 * (lag + half):+.1f}), does not show the rows with a new word lagging on this dev set."]
    return lines


def _browser_lines(summary):
    serve = f"`python -m apps.serve --run={os.path.dirname(summary['mediapipe_path']) or '.'}` serves the page in `web/`"
    if "browser_agreement_with_mediapipe" not in summary:
        return [f"{serve}. It was not checked in a browser in this run (`make web-deps` installs what the check needs)."]
    return [
        f"{serve}. In headless {summary['browser']}, the page gave MediaPipe Python's label on "
        f"{summary['browser_agreement_with_mediapipe']:.2%} of dev (largest score difference "
        f"{summary['browser_max_abs_diff_vs_mediapipe']:.1e}) and the Keras student's on "
        f"{summary['browser_agreement_with_keras']:.2%}, at {summary['browser_ms_per_text']:.2f} ms per text.",
        "",
        "![the page after a classification](web/page.png)",
    ]


def _difference_line(subject, difference, name_a, name_b):
    low, high = difference["interval"]
    points = 100 * difference["difference"]
    line = (f"{subject}: {points:+.2f} points of dev accuracy (95% interval {100 * low:+.2f} to {100 * high:+.2f}; "
            f"{difference['only_a_right']} dev rows only the {name_a} got right, {difference['only_b_right']} only "
            f"the {name_b}).")
    if low <= 0 <= high:
        line += (f" **The dev set ({difference['rows']} rows) is too small to tell them apart**: the interval holds "
                 "zero, so the difference may be chance; a larger dev set would settle it.")
    return line


def _confusion_png(confusion, class_names, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(class_names)
    size = min(4 + 0.35 * k, 24)
    fig, ax = plt.subplots(figsize=(size, size))
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    ticks = range(k) if k <= 40 else []
    ax.set_xticks(list(ticks), [class_names[i] for i in ticks], rotation=90 if k > 6 else 0, fontsize=7)
    ax.set_yticks(list(ticks), [class_names[i] for i in ticks], fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("distilled student on dev\n(shade: share of the true class's rows)")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
