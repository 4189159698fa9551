"""The stages of a label-scarce distillation run, each writing its outputs and a `metrics.json`.

data -> `train_teacher` -> `label` (cached teacher logits) -> `distill_student`
(and `train_labels_only`, the no-teacher baseline) -> `evaluate`. The binaries
in `apps/` call one stage each; `run_all` chains them for `make demo`.

Run folder layout (`out_dir`):

    teacher/teacher.keras, teacher/metrics.json, teacher/logits/<key>.npy
    transfer/shard-00000-of-00016.tfrecord (+ .json sidecar)   (apps.label; see labelling.py)
    teacher/backup/state.npz     (only while fine-tuning runs: an interrupted run resumes from it)
    student/student.keras, student/metrics.json, student/backup/ (likewise)
    labels_only/student.keras, labels_only/metrics.json
    student_dynamic.tflite (+ .json, .report.json)
    web/index.html, web/model.json, web/<MediaPipe model>   (the model in a browser; `export/web.py`)
    report.md, confusion.png     (the run's report: dev accuracy with intervals, per class; `report.py`)
    summary.json
"""

import contextlib
import dataclasses
import itertools
import os
import time

import numpy as np

from kdistill import (
    augment, data, estimate, io, keys, labelling, progress, report, side_by_side, teacher as teacher_lib,
    tokenizer as tokenizer_lib, training,
)
from kdistill.config import AUTO
from kdistill.errors import KdistillError

STUDENT_FILE = "student.keras"
METRICS_FILE = "metrics.json"
BACKUP_DIR = "backup"


def load_splits(dataset, num_labels, seed=0, max_unlabelled=None, unlabelled=None, encoding="utf-8",
                validation_rows=0):
    splits = data.load(dataset, num_labels, seed=seed, max_unlabelled=max_unlabelled, unlabelled=unlabelled,
                       encoding=encoding, validation_rows=validation_rows)
    print(f"[data] {dataset}: {splits.describe()}", flush=True)
    return splits


def train_teacher(splits, teacher_dir, config, seed=0, strategy=None, reuse=True, member_dirs=None,
                  labelling_runtime=None):
    """The teacher of `config` fine-tuned on the labelled rows, saved in `teacher_dir`, returned frozen with
    its metrics.

    With `reuse`, a teacher already in `teacher_dir` that was trained on these labels with this
    config (its metrics hold the same key) is loaded instead. An ensemble (`config.ensemble` > 1)
    is its members, each the one teacher its seed (`seed`, `seed`+1, ...) trains, in
    `member_dirs` (default `teacher_dir/member-<k>`) and reused the same way.
    With a `tf.distribute` `strategy` the teacher trains on its replicas; the reloaded
    teacher labels dev on one device. `labelling_runtime`, the runtime that will label the transfer set, lets
    an ensemble's members prepare it while they train (`_train_ensemble`).
    """
    key = _teacher_key(splits, config, seed)
    if reuse and teacher_is_trained(splits, teacher_dir, config, seed):
        print(f"[teacher] reusing {teacher_dir} (same labels and config)", flush=True)
        return load_teacher(teacher_dir, splits), io.read_json(os.path.join(teacher_dir, METRICS_FILE))
    if config.ensemble > 1:
        return _train_ensemble(splits, teacher_dir, config, seed, strategy, reuse, member_dirs, key,
                               labelling_runtime)
    return _fine_tune_teacher(splits, teacher_dir, config, seed, strategy, key)


def _fine_tune_teacher(splits, teacher_dir, config, seed, strategy, key):
    start = time.time()
    print(f"[teacher] fine-tuning {config.handle} on {len(splits.labelled_texts)} labels", flush=True)
    import keras

    texts, labels = splits.labelled_texts, splits.labelled_labels
    keras.utils.set_random_seed(seed)  # before build: the classification head's initial weights too
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = teacher_lib.build(config.handle, splits.num_classes, config.sequence_length)
        teacher_lib.fine_tune(
            model, texts, labels, epochs=config.epochs_for(len(texts), splits.num_classes),
            batch_size=config.batch_size, learning_rate=config.learning_rate, seed=seed,
            backup_dir=os.path.join(teacher_dir, BACKUP_DIR),
        )
    teacher_lib.save(model, teacher_dir)
    model = teacher_lib.load(teacher_dir)
    dev_logits = teacher_lib.logits(model, splits.dev_texts, cache_dir=teacher_dir, verbose=False)
    metrics = {
        "teacher_dev_acc": training.accuracy(dev_logits, splits.dev_labels),
        "teacher_params": int(model.count_params()),
        "teacher": config.handle,
        "num_labels": len(splits.labelled_texts),
        "class_names": splits.class_names,
        "truncated_texts": teacher_lib.truncated_texts(model, splits.labelled_texts),
        "empty_texts_dropped": splits.empty_texts_dropped,
        "seconds": round(time.time() - start, 1),
        **_config_dict(config, "teacher_"),
        # Whichever command trained it, a later run with the same labels and config reuses it.
        "run_key": key,
    }
    io.write_json(metrics, os.path.join(teacher_dir, METRICS_FILE))
    print(f"[teacher] dev accuracy {metrics['teacher_dev_acc']:.4f} ({metrics['seconds']} s)", flush=True)
    return model, metrics


def _train_ensemble(splits, teacher_dir, config, seed, strategy, reuse, member_dirs, key, labelling_runtime=None):
    """`config.ensemble` teachers saved as one ensemble in `teacher_dir` (`teacher.load` gives a
    `TeacherEnsemble`); its metrics give the ensemble's dev accuracy beside each member's.

    On a CPU the members still to train are fine-tuned side by side, one process each (`side_by_side`), which
    also cache what the run asks of them next: their logits of the labelled rows and, when `labelling_runtime`
    is the int8 labeller, that labeller and its dev logits."""
    start = time.time()
    single = dataclasses.replace(config, ensemble=1)
    member_dirs = member_dirs or [os.path.join(teacher_dir, f"member-{k}") for k in range(config.ensemble)]
    if len(member_dirs) != config.ensemble:
        raise ValueError(f"{len(member_dirs)} member folders for an ensemble of {config.ensemble}")
    to_train = [k for k, member_dir in enumerate(member_dirs)
                if not (reuse and teacher_is_trained(splits, member_dir, single, seed + k))]
    if side_by_side.wanted(strategy, len(to_train)):
        print(f"[teacher] fine-tuning members {', '.join(str(k + 1) for k in to_train)} side by side, "
              f"{side_by_side.threads_each(len(to_train))} core(s) each", flush=True)
        labels_only = dataclasses.replace(splits, unlabelled_texts=splits.unlabelled_texts[:0])  # all they read
        side_by_side.run([(f"member {k + 1}", _member_beside,
                           (labels_only, member_dirs[k], single, seed + k, labelling_runtime)) for k in to_train])
        reuse = True  # what they trained is loaded below
    members, member_metrics = [], []
    for k, member_dir in enumerate(member_dirs):
        print(f"[teacher] ensemble member {k + 1} of {config.ensemble} (seed {seed + k}) -> {member_dir}", flush=True)
        member, result = train_teacher(splits, member_dir, single, seed + k, strategy, reuse)
        members.append(member)
        member_metrics.append(result)
    teacher_lib.save_ensemble(member_dirs, teacher_dir)
    # The members come back loaded and frozen: the ensemble is built from them, not read from disk again.
    ensemble = teacher_lib.frozen_ensemble(members, member_dirs)
    dev_logits = teacher_lib.logits(ensemble, splits.dev_texts, verbose=False)
    metrics = {
        **member_metrics[0],
        "teacher_dev_acc": training.accuracy(dev_logits, splits.dev_labels),
        "teacher_member_dev_acc": [m["teacher_dev_acc"] for m in member_metrics],
        "teacher_params": int(ensemble.count_params()),
        "seconds": round(time.time() - start, 1),
        **_config_dict(config, "teacher_"),
        "run_key": key,
    }
    io.write_json(metrics, os.path.join(teacher_dir, METRICS_FILE))
    members = ", ".join(f"{acc:.4f}" for acc in metrics["teacher_member_dev_acc"])
    print(f"[teacher] ensemble dev accuracy {metrics['teacher_dev_acc']:.4f} (members {members})", flush=True)
    return ensemble, metrics


def _member_beside(splits, member_dir, config, seed, labelling_runtime):
    """One member fine-tuned in a process of its own (`side_by_side`), then the logits the run asks of it next."""
    member, _ = _fine_tune_teacher(splits, member_dir, config, seed, None, _teacher_key(splits, config, seed))
    teacher_lib.logits(member, splits.labelled_texts, cache_dir=member_dir, verbose=False)
    if labelling_runtime == teacher_lib.LITERT_INT8:
        teacher_lib.logits(member, splits.dev_texts, cache_dir=member_dir, verbose=False, runtime=labelling_runtime)


def teacher_is_trained(splits, teacher_dir, config, seed):
    """Whether `train_teacher` would reuse the teacher in `teacher_dir` rather than train one."""
    metrics_path = os.path.join(teacher_dir, METRICS_FILE)
    return os.path.exists(metrics_path) and io.read_json(metrics_path).get("run_key") == _teacher_key(splits, config, seed)


def _pool_labelled(teacher_dir, pool_size):
    """Whether `teacher_dir` (or an ensemble member's folder) caches logits for as many texts as the pool
    holds: a cheap sign, for the time estimate, that an earlier run labelled it."""
    import glob

    for path in glob.glob(os.path.join(teacher_dir, "**", teacher_lib.LOGITS_DIR, "*.npy"), recursive=True):
        try:
            if np.load(path, mmap_mode="r").shape[0] == pool_size:
                return True
        except (OSError, ValueError):  # a damaged cache file is recomputed later; here it just does not count
            continue
    return False


def _teacher_speed(splits, config):
    """The pretrained teacher's forward milliseconds per text of this data on this machine (`estimate.probe`)."""
    model = teacher_lib.build(config.handle, splits.num_classes, config.sequence_length)
    return estimate.probe(model, np.concatenate([splits.labelled_texts, splits.unlabelled_texts]))


def _teacher_key(splits, config, seed):
    # The epochs the rules derive (`epochs_for`) too: a rule changed in code retrains the teacher.
    epochs = config.epochs_for(len(splits.labelled_texts), splits.num_classes)
    return keys.of(config, epochs, seed, splits.class_names, splits.labelled_texts,
                   np.asarray(splits.labelled_labels, np.int64))


def load_teacher(teacher_dir, splits):
    model = teacher_lib.load(teacher_dir)
    _check_classes(teacher_dir, "teacher", model.num_classes, splits)
    return model


def _check_classes(path, what, num_classes, splits):
    if num_classes != splits.num_classes:
        raise KdistillError(
            f"{path}: the {what} has {num_classes} classes but the data has {splits.num_classes} "
            f"({splits.class_names}); pass the dataset it was trained on, or train a {what} on this one"
        )


def label(teacher, teacher_dir, splits, runtime="auto"):
    """Teacher logits for dev, labelled and unlabelled texts; each computed once and cached.

    Dev and the labelled rows are the teacher's own (TensorFlow, float32). The unlabelled texts go through
    `teacher.labelling_runtime(runtime)`; when that is another runtime, it labels dev first, and
    `targets["labelling"]` says how often it agreed with the teacher there. Under "auto", one that agrees on
    less than `teacher.MIN_LABELLER_AGREEMENT` of dev is set aside for the float32 teacher.
    """
    dev = teacher_lib.logits(teacher, splits.dev_texts, cache_dir=teacher_dir, verbose=False)
    labelling = teacher_lib.checked_runtime(teacher, splits.dev_texts, runtime, teacher_dir, reference=dev)
    print(f"[label] teacher logits for {len(splits.unlabelled_texts)} unlabelled texts ({labelling['runtime']})",
          flush=True)
    return {
        "dev": dev,
        "labelled": teacher_lib.logits(teacher, splits.labelled_texts, cache_dir=teacher_dir, verbose=False),
        "unlabelled": teacher_lib.logits(teacher, splits.unlabelled_texts, cache_dir=teacher_dir,
                                         runtime=labelling["runtime"]),
        "labelling": labelling,
    }


def transfer_targets(teacher, teacher_dir, splits, distill_config, runtime="auto"):
    """`label`'s targets for `distill_config` over the transfer set it asks for.

    The pool is cut to `transfer_pool` texts (a seeded sample), then enlarged by
    perturbed copies up to `augment_to` (`augment_transfer_set`). Returns the transfer
    splits and their targets.
    """
    targets = label(teacher, teacher_dir, splits, runtime)
    splits, targets = _cut_pool(splits, targets, distill_config.transfer_pool, distill_config.seed)
    return augment_transfer_set(teacher, teacher_dir, splits, targets, distill_config, targets["labelling"]["runtime"])


def _cut_pool(splits, targets, size, seed):
    if not size or size >= len(splits.unlabelled_texts):
        return splits, targets
    rows = np.sort(np.random.default_rng(seed).choice(len(splits.unlabelled_texts), size, replace=False))
    print(f"[data] distilling from {size:,} of the {len(splits.unlabelled_texts):,} unlabelled texts", flush=True)
    cut = dict(targets, unlabelled=targets["unlabelled"][rows])
    return dataclasses.replace(splits, unlabelled_texts=splits.unlabelled_texts[rows]), cut


def augment_transfer_set(teacher, teacher_dir, splits, targets, distill_config, runtime=teacher_lib.TENSORFLOW):
    """`splits` and `targets` with perturbed copies of the transfer texts added as unlabelled rows.

    Copies are made (`augment.augment_texts`) until the transfer set holds
    `distill_config.augment_to` texts (`augment.auto_size` for "auto"); the teacher labels
    them through `runtime`, cached like any text.
    """
    texts = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
    median = augment.median_words(texts)
    size = augment.target_size(distill_config.augment_to, len(texts), median)
    if distill_config.augment_to == AUTO:
        print(f"[augment] auto: {len(texts):,} transfer texts of median {median:.0f} words -> "
              + (f"grown to {size:,}" if size > len(texts) else "no copies"), flush=True)
    copies = -(-size // max(len(texts), 1)) - 1
    extra = augment.augment_texts(texts, copies, seed=distill_config.seed)
    if extra:
        print(f"[augment] teacher logits for {len(extra):,} perturbed copies of {len(texts):,} transfer texts",
              flush=True)
    if distill_config.adds_vocabulary_words(splits.labelled_texts):
        if distill_config.vocabulary_words == AUTO:
            print(f"[augment] auto: labelled texts of median {augment.median_words(splits.labelled_texts):.0f} "
                  f"words are phrases (up to {augment.PHRASE_WORDS}): the teacher labels its vocabulary's words",
                  flush=True)
        words = augment.vocabulary_words(teacher.preprocessor.tokenizer.get_vocabulary(), exclude={*texts, *extra})
        print(f"[augment] teacher logits for {len(words):,} words of its vocabulary, each a text of its own",
              flush=True)
        extra += words
    if not extra:
        return splits, targets
    extra_logits = teacher_lib.logits(teacher, extra, cache_dir=teacher_dir, runtime=runtime)
    unlabelled = np.concatenate([splits.unlabelled_texts, np.asarray(extra, dtype=object)])
    grown = dict(targets, unlabelled=np.concatenate([targets["unlabelled"], extra_logits]))
    return dataclasses.replace(splits, unlabelled_texts=unlabelled), grown


def distill_student(teacher, targets, splits, student_dir, student_config, distill_config):
    """Distils a fresh student from the teacher's targets (`transfer_targets`) and saves it with its metrics."""
    start = time.time()
    student = training.build_student(teacher, splits, student_config, seed=distill_config.seed)
    print(f"[distill] student of {student.count_params():,} parameters ({_pieces_kept(student)}) on "
          f"{len(splits.labelled_texts) + len(splits.unlabelled_texts):,} transfer texts", flush=True)
    training.distill(
        teacher, student, splits, targets["unlabelled"], targets["labelled"], distill_config,
        backup_dir=os.path.join(student_dir, BACKUP_DIR),
    )
    transfer_texts = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
    return _finish_student(
        student, splits, student_dir, start, targets["dev"], student_config, distill_config, transfer_texts
    )


def distill_student_from_shards(
    teacher, logits, splits, shards, student_dir, student_config, distill_config, strategy=None, shuffle_buffer=None,
):
    """`distill_student` with the unlabelled transfer set streamed from teacher-labelled shards (`apps.label`).

    `logits` holds the teacher's logits of the labelled and dev rows (`label`); the
    shards' rows are never all in memory: the vocabulary is counted over them in one
    streaming pass, and training reads them through `tf.data`.
    """
    start = time.time()
    total = shards.total_rows + len(splits.labelled_texts)
    print(f"[distill] counting word pieces in {total:,} transfer texts ({len(shards.files)} shards)", flush=True)
    vocabulary = teacher.preprocessor.tokenizer.get_vocabulary()
    counter = tokenizer_lib.PieceCounter(vocabulary, sequence_length=student_config.sequence_length)
    bar = progress.bar(total, unit_name="text")
    for texts in itertools.chain([splits.labelled_texts], labelling.text_batches(shards)):
        counter.add(texts)
        bar.add(len(texts))
    kept_ids = None
    pieces = student_config.pieces_kept(splits.labelled_texts)
    if pieces:
        kept_ids = tokenizer_lib.kept_ids_from_counts(vocabulary, counter.counts, pieces)
    student = training.build_student(teacher, splits, student_config, seed=distill_config.seed, kept_ids=kept_ids)
    print(f"[distill] student of {student.count_params():,} parameters ({_pieces_kept(student)}) on {total:,} "
          "streamed transfer texts", flush=True)
    training.distill_shards(
        teacher, student, shards, splits.labelled_texts, logits["labelled"], splits.labelled_labels, distill_config,
        strategy=strategy, shuffle_buffer=shuffle_buffer, backup_dir=os.path.join(student_dir, BACKUP_DIR),
    )
    return _finish_student(
        student, splits, student_dir, start, logits["dev"], student_config, distill_config, None,
        truncated=counter.truncated, num_unlabelled=shards.total_rows,
    )


def _pieces_kept(student):
    kept, whole = student.tokenizer.vocabulary_size, len(student.tokenizer.vocabulary)
    if kept == whole:
        return f"the teacher's whole vocabulary, {whole:,} pieces"
    return f"{kept:,} of the teacher's {whole:,} pieces"


def train_labels_only(teacher, splits, student_dir, student_config, distill_config, teacher_dev_logits=None):
    """The same student trained on the labelled rows alone (the teacher only lends its vocabulary)."""
    start = time.time()
    print(f"[labels-only] same student, {len(splits.labelled_texts)} labels, no teacher", flush=True)
    student = training.build_student(teacher, splits, student_config, seed=distill_config.seed)
    training.train_labels_only(student, splits, distill_config)
    return _finish_student(
        student, splits, student_dir, start, teacher_dev_logits, student_config, distill_config,
        splits.labelled_texts,
    )


def _finish_student(
    student, splits, student_dir, start, teacher_dev_logits, student_config, distill_config, training_texts,
    truncated=None, num_unlabelled=None,
):
    io.atomic_save_model(student, os.path.join(student_dir, STUDENT_FILE))
    dev_logits = student.predict_texts(splits.dev_texts)
    metrics = {
        "student_dev_acc": training.accuracy(dev_logits, splits.dev_labels),
        "student_params": int(student.count_params()),
        "num_labels": len(splits.labelled_texts),
        "num_unlabelled": len(splits.unlabelled_texts) if num_unlabelled is None else num_unlabelled,
        # Texts the student only saw the first sequence_length pieces of.
        "truncated_texts": student.tokenizer.count_truncated(training_texts) if truncated is None else truncated,
        "empty_texts_dropped": splits.empty_texts_dropped,
        "seconds": round(time.time() - start, 1),
        **_config_dict(student_config, "student_"),
        **_config_dict(distill_config, "distill_"),
        # What the loss used, the temperature's auto rule resolved.
        "distill_temperature_used": distill_config.distill_temperature(splits.num_classes),
    }
    if teacher_dev_logits is not None:
        metrics["agreement_with_teacher"] = training.agreement(dev_logits, teacher_dev_logits)
    io.write_json(metrics, os.path.join(student_dir, METRICS_FILE))
    print(f"[student] dev accuracy {metrics['student_dev_acc']:.4f} -> {student_dir}", flush=True)
    return student, metrics


def load_student(student_dir, splits=None):
    """The saved student; with `splits`, checked to classify the same classes as the data."""
    path = os.path.join(student_dir, STUDENT_FILE) if os.path.isdir(student_dir) else student_dir
    student = io.load_model(path, "student")
    if splits is not None:
        _check_classes(path, "student", student.num_classes, splits)
    return student


def evaluate(splits, teacher=None, students=None, teacher_dir=None):
    """Dev accuracy of the teacher and of each named student, and each student's agreement with it.

    With `teacher_dir` the teacher's dev logits come from its cache (training wrote them).
    """
    results = {"dev_rows": len(splits.dev_texts)}
    teacher_logits = None
    if teacher is not None:
        teacher_logits = teacher_lib.logits(teacher, splits.dev_texts, cache_dir=teacher_dir, verbose=False)
        results["teacher_dev_acc"] = training.accuracy(teacher_logits, splits.dev_labels)
        results["teacher_params"] = int(teacher.count_params())
    for name, student in (students or {}).items():
        logits = student.predict_texts(splits.dev_texts)
        results[f"{name}_dev_acc"] = training.accuracy(logits, splits.dev_labels)
        results[f"{name}_params"] = int(student.count_params())
        if teacher_logits is not None:
            results[f"{name}_agreement"] = training.agreement(logits, teacher_logits)
    return results


def _config_dict(config, prefix):
    return {prefix + k: v for k, v in dataclasses.asdict(config).items()}



# The browser check's figures that summary.json and report.md carry (the model's .report.json has them all).
_BROWSER_SUMMARY = ("browser", "browser_agreement_with_keras", "browser_agreement_with_mediapipe",
                    "browser_max_abs_diff_vs_mediapipe", "browser_ms_per_text")


def run_all(
    dataset, num_labels, out_dir, teacher_config, student_config, distill_config,
    seed=0, max_unlabelled=None, unlabelled=None, export_mode="dynamic", encoding="utf-8", teacher_dir=None,
    browser_check="auto", teacher_runtime="auto",
):
    """The whole pipeline: teacher, labels, labels-only baseline, distilled student, TFLite export.

    The teacher lives in `teacher_dir` (default `out_dir/teacher`): one trained there on the same
    labels with the same config is reused.

    Two phone models are exported under `export_mode`: the MediaPipe one
    (`student_<mode>_mediapipe.tflite`, for MediaPipe Tasks' TextClassifier as it is) and
    the text-in one (`student_<mode>.tflite`, for runtimes with TF Text's ops).
    `browser_check` ("auto", "yes" or "no"; `export.browser.wanted`) also runs the MediaPipe model in headless
    Chromium on dev, through the page in `out_dir/web`, whose `page.png` it leaves there.
    `teacher_runtime` is how the teacher labels the transfer set (`teacher.labelling_runtime`).
    """
    from kdistill.export import browser, tflite, web  # export builds on kdistill, not the other way round

    start = time.time()
    check_browser = browser.wanted(browser_check)  # before the work, so "yes" without Chromium stops at once
    splits = load_splits(dataset, num_labels, seed, max_unlabelled, unlabelled, encoding)
    teacher_dir = teacher_dir or os.path.join(out_dir, "teacher")
    trained = teacher_is_trained(splits, teacher_dir, teacher_config, seed)
    runtime = teacher_lib.labelling_runtime(teacher_runtime)
    ms_per_text = _teacher_speed(splits, teacher_config)
    clock = estimate.RunClock(estimate.plan(
        splits, teacher_config, distill_config, ms_per_text, teacher_trained=trained,
        pool_labelled=trained and _pool_labelled(teacher_dir, len(splits.unlabelled_texts)), runtime=runtime,
        side_by_side=side_by_side.wanted(None, teacher_config.ensemble),
    ))
    teacher, teacher_metrics = train_teacher(splits, teacher_dir, teacher_config, seed, labelling_runtime=runtime)
    clock.done("teacher")
    transfer_splits, targets = transfer_targets(teacher, teacher_dir, splits, distill_config, teacher_runtime)
    clock.done("labelling")
    labels_only, baseline = train_labels_only(
        teacher, splits, os.path.join(out_dir, "labels_only"), student_config, distill_config, targets["dev"]
    )
    clock.done("labels_only")
    student_dir = os.path.join(out_dir, "student")
    student, distilled = distill_student(teacher, targets, transfer_splits, student_dir, student_config, distill_config)
    clock.done("distillation")
    calibration = splits.unlabelled_texts[: tflite.DEFAULT_CALIBRATION_SIZE]  # used by int8 only
    kinds = ("mediapipe", "text")
    print(f"[export] {export_mode} {' and '.join(kinds)} models in {out_dir}", flush=True)
    # What the checked page shows: the run's own figures, known once the student is.
    page_run = {"student_dev_acc": distilled["student_dev_acc"], "dev_rows": len(splits.dev_texts), "dataset": dataset}
    reports = tflite.export_and_report(student, out_dir, [export_mode], kinds, splits.dev_texts, calibration,
                                       browser=check_browser, run_info=page_run)
    parity = dict(zip(kinds, reports))
    clock.done("export")
    tflite_path = tflite.default_path(out_dir, export_mode, "text")
    mediapipe_path = tflite.default_path(out_dir, export_mode, "mediapipe")
    summary = {
        "dataset": dataset,
        "num_labels": len(splits.labelled_texts),
        "num_unlabelled": len(splits.unlabelled_texts),
        "dev_rows": len(splits.dev_texts),
        "dev_source": splits.dev_source,
        "seed": seed,
        "teacher": teacher_config.handle,
        "teacher_ensemble": teacher_config.ensemble,
        "teacher_dev_acc": teacher_metrics["teacher_dev_acc"],
        "student_dev_acc": distilled["student_dev_acc"],
        "labels_only_dev_acc": baseline["student_dev_acc"],
        "student_agreement_with_teacher": distilled["agreement_with_teacher"],
        "labelling": targets["labelling"],
        "teacher_params": teacher_metrics["teacher_params"],
        "student_params": distilled["student_params"],
        "truncated_texts": distilled["truncated_texts"],
        "student_sequence_length": distilled["student_sequence_length"],
        "distill_temperature": distilled["distill_temperature_used"],
        "empty_texts_dropped": splits.empty_texts_dropped,
        "student_dir": student_dir,
        "tflite_path": tflite_path,
        "tflite_bytes": os.path.getsize(tflite_path),
        "tflite_agreement_with_keras": parity["text"]["agreement"],
        "mediapipe_path": mediapipe_path,
        "mediapipe_bytes": os.path.getsize(mediapipe_path),
        "mediapipe_agreement_with_keras": parity["mediapipe"]["mediapipe_agreement"],
        **{key: value for key, value in parity["mediapipe"].items() if key in _BROWSER_SUMMARY},
    }
    dev_logits = {"teacher": targets["dev"], "labels_only": labels_only.predict_texts(splits.dev_texts),
                  "student": student.predict_texts(splits.dev_texts)}
    training_texts = np.concatenate([splits.labelled_texts, splits.unlabelled_texts])
    summary.update(report.write(out_dir, summary, splits.class_names, splits.dev_labels, dev_logits,
                                dev_texts=splits.dev_texts, training_texts=training_texts))
    # The page that runs the MediaPipe model in a browser (CDN assets: no network or npm needed to write it).
    summary["web_dir"] = web.write(os.path.join(out_dir, "web"), mediapipe_path, web.model_info(mediapipe_path, summary))
    summary["seconds"] = round(time.time() - start, 1)
    summary["stage_seconds"] = clock.seconds
    summary["estimated_seconds"] = {name: round(s, 1) for name, s in clock.estimate.items()}
    # What the estimate was priced at, so that a run's estimate can be checked against its stages' times.
    summary["probe_ms_per_text"] = round(ms_per_text, 3)
    io.write_json(summary, os.path.join(out_dir, "summary.json"))
    return summary


def format_summary(summary):
    """A small table of what a run measured, for people."""
    members = summary.get("teacher_ensemble", 1)
    ratio = summary["teacher_params"] / members / summary["student_params"]  # one member: the same ratio as one teacher
    rows = [
        ("teacher (fine-tuned on the labels)" if members == 1 else f"teacher ensemble ({members} seeds)", "teacher",
         summary["teacher_dev_acc"], summary["teacher_params"]),
        ("student, labels only", "labels_only", summary["labels_only_dev_acc"], summary["student_params"]),
        ("student, distilled", "student", summary["student_dev_acc"], summary["student_params"]),
    ]
    lines = [
        f"{summary['dataset']}: {summary['num_labels']} labels, {summary['num_unlabelled']} unlabelled texts, "
        f"dev accuracy on {summary['dev_rows']} rows (seed {summary['seed']})",
        f"{'model':<36}{'dev acc':>9}{'95% interval':>17}{'params':>14}",
    ]
    for name, key, acc, params in rows:
        low, high = summary["accuracy_interval"][key]
        lines.append(f"{name:<36}{acc:>9.2%}{f'{low:.1%}-{high:.1%}':>17}{params:>14,}")
    gap, gain = summary["teacher_minus_student"], summary["student_minus_labels_only"]
    lines += [
        f"teacher - distilled: {gap['difference']:+.2%} (95% {gap['interval'][0]:+.2%} to {gap['interval'][1]:+.2%}); "
        f"distilled - labels-only: {gain['difference']:+.2%} (95% {gain['interval'][0]:+.2%} to "
        f"{gain['interval'][1]:+.2%})",
        f"student agrees with teacher on {summary['student_agreement_with_teacher']:.2%} of dev; "
        f"{ratio:.0f}x fewer parameters; per class, intervals and the confusion matrix: {summary['report_path']}",
        f"Android (MediaPipe TextClassifier): {summary['mediapipe_path']} ({summary['mediapipe_bytes'] / 1e6:.2f} MB, "
        f"MediaPipe gives the Keras label on {summary['mediapipe_agreement_with_keras']:.2%} of dev)",
        f"TFLite, text in (needs TF Text's ops): {summary['tflite_path']} ({summary['tflite_bytes'] / 1e6:.2f} MB, "
        f"same label as Keras on {summary['tflite_agreement_with_keras']:.2%} of dev)",
        f"total {summary['seconds'] / 60:.1f} min",
    ]
    return "\n".join(lines)


def format_evaluation(results):
    """`evaluate`'s results as a table: dev accuracy, parameters, agreement with the teacher."""
    lines = [f"dev accuracy on {results['dev_rows']} rows", f"{'model':<14}{'dev acc':>9}{'params':>14}{'agrees':>9}"]
    for name in ["teacher"] + sorted(k[: -len("_dev_acc")] for k in results if k.endswith("_dev_acc") and k != "teacher_dev_acc"):
        if f"{name}_dev_acc" not in results:
            continue
        agreement = results.get(f"{name}_agreement")
        lines.append(
            f"{name:<14}{results[f'{name}_dev_acc']:>9.2%}{results[f'{name}_params']:>14,}"
            + (f"{agreement:>9.2%}" if agreement is not None else f"{'':>9}")
        )
    return "\n".join(lines)
