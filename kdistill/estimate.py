"""Time: an estimate before a run starts, and its ETA as each stage ends.

The estimate counts the run's work from the data (teacher updates, texts to label,
student rows) and prices it by the pretrained teacher's measured speed on a sample
of these texts on this machine (`probe`): the teacher's forward pass dominates every
stage but the students', and the students' cost follows the machine's speed the
same way. The ratios between stages were measured on the 2-core machine
(`make demo` and the small tasks, docs/RESULTS.md's run times).

`RunClock` prints the estimate, then at the end of each stage the time it took and
what is left, the remaining estimate scaled by how far the finished stages were off.

Example:

```python
ms_per_text = probe(teacher_lib.build("minilm", splits.num_classes), splits.unlabelled_texts)
seconds = plan(splits, teacher_config, distill_config, ms_per_text)
clock = RunClock(seconds)
...                     # the teacher stage
clock.done("teacher")   # "[time] teacher: 5.9 min (estimated 6.2); about 17 min left, done near 14:32"
```
"""

import dataclasses
import time

import numpy as np

from kdistill import augment

# A fine-tuning step on the 2-core machine: a floor in seconds (the optimizer's update of 22.7M weights and the
# step's fixed work, whatever the texts' length) plus, per text of the batch, a multiple of the teacher's forward
# pass (`probe`): forward, backward and the attention's share. Fitted on two demos' teacher stages, members side by
# side, 315 steps each (2026-12-06): SST-2 (probe 2.1 ms) 252 s, 0.31 s a step; MPQA's 3-word phrases (probe
# 0.82 ms) 204 s, 0.24 s a step. A per-text multiple alone (8.5, fitted on SST-2) put MPQA's at 114 s.
FINE_TUNE_STEP_S = 0.2
FINE_TUNE_PER_TEXT = 3.0
# Loading, saving and reloading one fine-tuned teacher, and its dev logits, in seconds.
TEACHER_OVERHEAD_S = 12.0
# The student's training cost per transfer row and epoch, as a share of the teacher's forward pass: 0.16 in SST-2's
# demo with batches convolved in parts (2026-12-07: distillation 89 s, probe 1.84 ms, 134k rows, 4 epochs and the gold
# fine-tune); 0.2 before the parts, 0.30 in a CLINC150 cell before batches were cut to their longest text. The
# labels-only student's epochs: early stopping ends it between 8 and 20 of its 40.
STUDENT_ROW = 0.16
LABELS_ONLY_EPOCHS = 14
# Length-bucketed batches (`DistillConfig.length_buckets`) convolve about as many positions as their texts hold
# instead of the batch's longest, and batches convolved in length-sorted parts (`training.batch_parts`) fewer than
# whole ones: `convolved_share` counts them on the pool. The rest of a step (the embedding
# lookup, the head, the optimizer) does not shrink: this share of it, fitted on SST-2's demo (2026-12-07): widths
# 0.29 of the unbucketed ones, distillation 78 s against about 170 s before.
BUCKETS_FIXED_SHARE = 0.24
# Export: conversion, quantisation and the two parity checks (seconds), and what each dev row adds to them
# (as multiples of the forward pass).
EXPORT_S = 6.0
EXPORT_PER_DEV_ROW = 2.0
# The int8 LiteRT labeller (`teacher.LITERT_INT8`): its time per text as a share of the probe's float32 forward
# pass (SST-2's demo: 222 and 234 s for three teachers and 134,000 texts, probes of 2.1 and 2.4 ms, 2026-12-06;
# 203 s at a probe of 1.84 ms, 2026-12-07), and the seconds it takes to write one teacher's (conversion and
# quantisation) and to label dev a second time, for the agreement each run reports.
LITERT_INT8_SHARE = 0.27
LABELLER_WRITE_S = 15.0
# Members fine-tuned side by side on a CPU (`side_by_side`), writing their int8 labellers there too: the stage's time
# as a share of training them one after another (SST-2's demo: 234 and 246 s against 318 s), and the seconds the
# processes take to start.
SIDE_BY_SIDE_SHARE = 0.74
SIDE_BY_SIDE_START_S = 10.0
# `augment.vocabulary_words` of a BERT uncased vocabulary (MiniLM's): 22,617, less those already in the texts.
VOCABULARY_WORDS = 22_000
STAGES = ("teacher", "labelling", "labels_only", "distillation", "export")
PROBE_TEXTS = 2048
PROBE_ROUNDS = 8


def probe(teacher, texts, seed=0, batch_size=64):
    """Milliseconds the teacher's forward pass takes per text of `texts` on this machine, as labelling runs it.

    Labelling a large set runs full batches of texts of one length (`teacher.inference_batches`), whose time
    grows linearly with their width. So two synthetic batches, of 16 and 64 pieces, give that line on this
    machine, and the widths of a seeded sample of the texts give the mean width to read it at. Timing a
    sample of the texts themselves would overstate it: a few hundred texts fill few batches of mixed length.
    """
    from kdistill import teacher as teacher_lib

    texts = np.asarray(texts, dtype=object)
    sample = texts[np.random.default_rng(seed).choice(len(texts), min(PROBE_TEXTS, len(texts)), replace=False)]
    lengths = teacher_lib.tokenize(teacher, sample)["padding_mask"].sum(axis=1)
    widths = np.maximum(lengths, 1)  # inference batches are cut to their longest text
    forward = teacher_lib.one_graph_forward(teacher)

    batches = {width: {"token_ids": np.full((batch_size, width), 1996, np.int32),  # "the", any real piece
                       "padding_mask": np.ones((batch_size, width), np.int32),
                       "segment_ids": np.zeros((batch_size, width), np.int32)} for width in (16, 64)}
    times = {width: [] for width in batches}
    for batch in batches.values():
        forward(batch)  # builds the graph for this shape
    # A shared machine's speed moves up to 2x within a minute (the 2-core machine, 2026-12-06): the widths are
    # timed in turn over a few seconds and the medians kept, which track the run's average speed better than
    # the fastest of three calls in a row, which a slow moment can hold back as a whole.
    for _ in range(PROBE_ROUNDS):
        for width, batch in batches.items():
            start = time.perf_counter()
            forward(batch)
            times[width].append(time.perf_counter() - start)
    short, long = (float(np.median(times[width])) for width in batches)
    per_piece = max(long - short, 0.0) / 48
    per_batch = max(short - 16 * per_piece, 0.0)
    return 1000 * (per_batch + per_piece * float(np.mean(widths))) / batch_size


def transfer_size(splits, distill_config):
    """How many texts the teacher labels for distillation: the pool (cut to `transfer_pool`), the labelled rows
    and the perturbed copies the config asks for, as `pipeline.transfer_targets` makes them."""
    pool = len(splits.unlabelled_texts)
    if distill_config.transfer_pool:
        pool = min(pool, distill_config.transfer_pool)
    texts = pool + len(splits.labelled_texts)
    median = augment.median_words(np.concatenate([splits.labelled_texts, splits.unlabelled_texts]))
    words = VOCABULARY_WORDS if distill_config.adds_vocabulary_words(splits.labelled_texts) else 0
    return max(texts, augment.target_size(distill_config.augment_to, texts, median)) + words


def plan(splits, teacher_config, distill_config, ms_per_text, teacher_trained=False, pool_labelled=False,
         runtime="tensorflow", side_by_side=False, batch_parts=None):
    """Estimated seconds of each stage of `pipeline.run_all` (`STAGES`), from the data's size and the
    teacher's measured `ms_per_text`; `teacher_trained` when a reusable teacher exists, `pool_labelled` when
    its logits of the transfer set are cached too; `runtime` labels the transfer set (`teacher.RUNTIMES`);
    `side_by_side` when an ensemble's members train at once (`side_by_side.wanted`); `batch_parts` the slices
    distillation convolves each batch in (default: this machine's, `training.batch_parts`)."""
    forward = ms_per_text / 1000
    members = teacher_config.ensemble
    labelled = len(splits.labelled_texts)
    transfer = transfer_size(splits, distill_config)
    steps = teacher_config.updates_for(labelled, splits.num_classes)
    step = FINE_TUNE_STEP_S + min(teacher_config.batch_size, labelled) * FINE_TUNE_PER_TEXT * forward
    fine_tune = steps * step + TEACHER_OVERHEAD_S
    student_row = STUDENT_ROW * forward
    teacher = members * fine_tune
    if side_by_side:
        teacher = SIDE_BY_SIDE_SHARE * teacher + SIDE_BY_SIDE_START_S
    return {
        "teacher": 0.0 if teacher_trained else teacher,
        "labelling": 0.0 if pool_labelled else members * _labelling(transfer, len(splits.dev_texts), forward, runtime,
                                                                    prepared=side_by_side and not teacher_trained),
        "labels_only": LABELS_ONLY_EPOCHS * labelled * student_row,
        "distillation": (distill_config.epochs * transfer * _epoch_share(splits, distill_config, batch_parts)
                         + distill_config.fine_tune_epochs * labelled) * student_row,
        "export": EXPORT_S + EXPORT_PER_DEV_ROW * len(splits.dev_texts) * forward,
    }


def _epoch_share(splits, distill_config, parts=None, sample=20_000):
    """A distillation epoch's time with `distill_config`'s batching, convolved in `parts` (default: this machine's,
    `training.batch_parts`), as a share of one of random batches convolved whole."""
    if parts is None:
        from kdistill import training

        parts = training.batch_parts()
    if not distill_config.length_buckets and parts == 1:
        return 1.0
    return BUCKETS_FIXED_SHARE + (1 - BUCKETS_FIXED_SHARE) * convolved_share(
        splits.unlabelled_texts[:sample], distill_config.batch_size, distill_config.length_buckets, parts)


def convolved_share(texts, batch_size, length_buckets=False, parts=1, sequence_length=64):
    """The positions distillation convolves (`training.transfer_dataset`: batches cut to their longest text, or
    each of their `parts` slices sorted by length to its own; `length_buckets` draws batches of similar length),
    as a share of those of random batches convolved whole; words (plus [CLS] and [SEP]) stand in for pieces."""
    lengths = np.minimum([len(str(text).split()) + 2 for text in texts], sequence_length)
    if len(lengths) == 0:
        return 1.0

    def positions(order, parts):
        total = 0
        for i in range(0, len(order), batch_size):
            batch = np.sort(lengths[order[i : i + batch_size]])
            ends = (np.arange(1, parts + 1) * len(batch)) // parts
            starts = np.concatenate([[0], ends[:-1]])
            total += sum((end - start) * batch[end - 1] for start, end in zip(starts, ends) if end > start)
        return total

    random_order = np.random.default_rng(0).permutation(len(lengths))
    return positions(np.argsort(lengths) if length_buckets else random_order, parts) / positions(random_order, 1)


def _labelling(transfer, dev, forward, runtime, prepared=False):
    """One teacher's seconds labelling `transfer` texts and `dev` through `runtime`; `prepared` when its int8
    labeller and that labeller's dev logits were written while it trained (side by side)."""
    from kdistill import teacher as teacher_lib

    if runtime == teacher_lib.TENSORFLOW:
        return (transfer + dev) * forward
    preparing = 0.0 if prepared else LABELLER_WRITE_S + dev * (1 + LITERT_INT8_SHARE) * forward
    return preparing + transfer * LITERT_INT8_SHARE * forward


@dataclasses.dataclass
class RunClock:
    """Prints the estimate, then each stage's time and the ETA of the rest; `seconds` keeps what each took."""

    estimate: dict

    def __post_init__(self):
        self.seconds = {}
        self._since = time.time()
        parts = ", ".join(f"{name.replace('_', ' ')} {_minutes(s)}" for name, s in self.estimate.items() if s >= 1)
        print(f"[time] estimate: about {_minutes(sum(self.estimate.values()))} ({parts}), "
              f"from the teacher's speed measured on this machine", flush=True)

    def done(self, stage):
        now = time.time()
        self.seconds[stage] = round(now - self._since, 1)
        self._since = now
        finished_estimate = sum(self.estimate[name] for name in self.seconds)
        # The stages ahead, scaled by how far the finished ones were off (within reason: a cached stage
        # takes seconds where minutes were estimated).
        scale = min(max(sum(self.seconds.values()) / finished_estimate, 0.5), 2.0) if finished_estimate > 30 else 1.0
        left = scale * sum(s for name, s in self.estimate.items() if name not in self.seconds)
        end = time.strftime("%H:%M", time.localtime(now + left))
        ahead = f"about {_minutes(left)} left, done near {end}" if left >= 1 else "done"
        print(f"[time] {stage.replace('_', ' ')}: {_minutes(self.seconds[stage])} "
              f"(estimated {_minutes(self.estimate[stage])}); {ahead}", flush=True)


def _minutes(seconds):
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
