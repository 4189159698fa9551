"""The three configurations of a run: the teacher's, the student's and distillation's.

Each field has its one default here, and the help text of the command-line flag that
sets it: the binaries in `apps/` derive their flags from these fields
(`apps.common.define_config_flags`) instead of restating them. Teacher fields are
flags with a `teacher_` prefix unless the field names its flag. The defaults are the
best recipe measured; `RECIPES` registers the named variants (`--recipe`), each a
few fields changed, as Model Garden registers experiment configs with overrides.

Example:

```python
from kdistill import config

teacher, student, distill = recipe("fast")             # one teacher, no copies: about a quarter of the time
student = config.StudentConfig(filters=96, kernel_sizes=(2, 3))
teacher, student, distill = recipe("small", {"epochs": 2})
```
"""

import dataclasses

from kdistill import augment, distiller, student as student_lib, teacher as teacher_lib


AUTO = "auto"


def option(default, help, flag=None, choices=None, bounds=None, keyed_when_set=False):
    """A config field with its default, its flag's help and, optionally, its flag's name, choices and
    (lower, upper) bounds, which the flag checks before any work starts. `keyed_when_set`: an option added after
    results were keyed, whose default keeps the earlier behaviour, enters keys only when set otherwise (`keys`)."""
    metadata = {"help": help, "flag": flag, "choices": choices, "bounds": bounds, "keyed_when_set": keyed_when_set}
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default=tuple(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(config_class, field):
    """The command-line flag that sets `field` of `config_class`."""
    if field.metadata.get("flag"):
        return field.metadata["flag"]
    return f"teacher_{field.name}" if config_class is TeacherConfig else field.name


def flag_fields(config_class):
    """The fields of `config_class` that a flag sets (those with help text)."""
    return [field for field in dataclasses.fields(config_class) if field.metadata.get("help")]


PIECES_KEPT = 7000


def _auto_or_number(value, name):
    """A flag or a caller may give a number as text ("60000"); a config holds a number or "auto"."""
    if isinstance(value, str) and value != AUTO:
        if not value.strip().isdigit():
            raise ValueError(f"{name}: {value!r} is neither 'auto' nor a number")
        return int(value)
    return value


# Many classes need many updates: a new head of 150 outputs barely forms in 5 epochs of 63 steps. CLINC150,
# N=1000 (about 7 labels per class), one teacher of seed 0, accuracy on 1,000 validation rows carved from
# train (not dev): 5 epochs (2.1 updates per class) 81.1% (seeds 1 and 2: 80.5, 83.4), 10 epochs 87.8%,
# 20 epochs 89.2% (2026-12-06, issue #29). 8 updates per class (20 epochs there) changes nothing below
# 40 classes at N=1000. Rerun: python scripts/teacher_epochs.py --task=clinc150 --epochs=5,10,20.
UPDATES_PER_CLASS = 8


@dataclasses.dataclass
class TeacherConfig:
    handle: str = option(teacher_lib.OFFLINE_TEACHER, "keras-hub BERT preset, hf:// handle or local folder; "
                         "'minilm' is the bundled offline MiniLM-L6.", flag="teacher")
    epochs: int = option(5, "Teacher fine-tuning epochs (at least; more when labels are few or classes many: "
                         f"at least --teacher_min_steps updates and {UPDATES_PER_CLASS} per class).")
    # Few labels make few steps: 5 epochs of N=100 is 35 updates, and MiniLM barely moves
    # (SST-2 dev 58.8%). Train for at least this many updates (N=100: 69.7%); N=1000 is unchanged.
    min_steps: int = option(200, "Fine-tune the teacher for at least this many updates (more epochs when labels "
                            "are few).")
    learning_rate: float = option(1e-4, "Teacher peak learning rate.")
    batch_size: int = option(16, "Teacher fine-tuning batch size.")
    sequence_length: int = option(128, "Teacher's maximum sequence length.", flag="max_seq_length")
    # K teachers on the same labels (seeds seed, seed+1, ...), distilled from as one
    # (`teacher_model.TeacherEnsemble`): part of the best recipe on both tasks (docs/appendix/gap).
    ensemble: int = option(3, "Fine-tune this many teachers on the labels, with seeds --seed, --seed+1, ..., and "
                           "distil from the mixture of their predictions (1 = one teacher).")

    def epochs_for(self, num_labels, num_classes=2):
        """Epochs of fine-tuning on `num_labels` labels of `num_classes` classes: at least `epochs`, at least
        `min_steps` updates, and at least `UPDATES_PER_CLASS` updates per class."""
        min_steps = max(self.min_steps, UPDATES_PER_CLASS * num_classes)
        return max(self.epochs, -(-min_steps // self.steps_per_epoch(num_labels)))

    def steps_per_epoch(self, num_labels):
        return -(-num_labels // self.batch_size)

    def updates_for(self, num_labels, num_classes=2):
        """Optimizer updates of fine-tuning on `num_labels` labels of `num_classes` classes (`epochs_for`)."""
        return self.epochs_for(num_labels, num_classes) * self.steps_per_epoch(num_labels)


def _auto_or_float(value, name):
    if isinstance(value, str) and value != AUTO:
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{name}: {value!r} is neither 'auto' nor a number") from None
    return value


# Issue #29: classes from which the distillation temperature's auto rule softens less (`DistillConfig.temperature`).
MANY_CLASSES = 10


@dataclasses.dataclass
class StudentConfig:
    """Everything that shapes the student; saved with the run so it can be rebuilt."""

    # Pieces kept from the teacher's vocabulary (0 = all). SST-2 N=1000: 7,000 and 8,000 both
    # gave 79.24% dev; 7,000 keeps the student under 1/39 of MiniLM's parameters (564k). Phrases keep all
    # (`augment.PHRASE_WORDS`): a 2.07M-parameter student, as fast (docs/validation).
    vocabulary_size: str = option(AUTO, f"WordPiece pieces the student keeps (0 = all). auto: all for phrases "
                                  f"(median up to {augment.PHRASE_WORDS} words), else {PIECES_KEPT:,}.")
    # Issue #29: one window fits the tasks here. AG News, the only one with texts past it (15%; its pieces' median is
    # 51, the other tasks' 95th percentiles 11-53), gained nothing from 80 or 128 (-0.09 points on three seeds each,
    # validation rows, docs/validation/sequence_length), whose students are 1.2x and 1.9x as slow.
    sequence_length: int = option(64, "Student's sequence length in pieces.")
    embedding_dim: int = option(64, "Student embedding width.")
    filters: int = option(128, "Conv1D filters per kernel width.")
    kernel_sizes: tuple = option((2, 3, 4, 5), "Conv1D kernel widths.")
    dropout: float = option(0.3, "Student dropout.", bounds=(0.0, 1.0))
    separable: bool = option(False, "Depthwise-separable convolutions (fewer weights and multiply-adds).")
    # What WordPiece splits words over. "teacher": the teacher's 30,522 pieces, then pieces the
    # student dropped become [UNK], so words split as the teacher splits them. "pruned": the
    # kept pieces alone, so the text-in model's in-graph tokenizer holds 7,000 pieces instead of
    # 30,522, but words whose pieces were dropped become one [UNK] (docs/EXPORT.md measures both).
    wordpiece: str = option("teacher", "Split words over the teacher's whole vocabulary (then unkept pieces -> "
                            "[UNK]) or over the kept pieces alone (a 4x smaller in-graph tokenizer in the text-in "
                            "model).", choices=("teacher", "pruned"))

    def __post_init__(self):
        self.vocabulary_size = _auto_or_number(self.vocabulary_size, "vocabulary_size")

    def pieces_kept(self, labelled_texts):
        """Pieces the student keeps on a task of `labelled_texts` (0 = all): `vocabulary_size`, its auto rule
        resolved."""
        if self.vocabulary_size == AUTO:
            return 0 if augment.phrases(labelled_texts) else PIECES_KEPT
        return self.vocabulary_size

    def network_kwargs(self):
        """The `student.conv_classifier` arguments this config sets: one builder for every caller."""
        fields = {name: getattr(self, name) for name in student_lib.NETWORK_DEFAULTS}
        return {name: tuple(value) if isinstance(value, list) else value for name, value in fields.items()}


@dataclasses.dataclass
class DistillConfig:
    # SST-2, N=1000: dev peaks at 2-4 epochs; 8 cost the best SST-2 recipe 0.58 points (mean of 3 seeds, docs/appendix/gap).
    epochs: int = option(4, "Distillation epochs over the transfer set.")
    batch_size: int = option(128, "Distillation batch size.")
    learning_rate: float = option(2e-3, "Student peak learning rate (cosine decay).")
    # Measurements behind both defaults are in distiller.py.
    alpha: float = option(distiller.DEFAULT_ALPHA, "Weight of the label cross-entropy; 1-alpha weighs distillation.",
                          bounds=(0.0, 1.0))
    # 2 was chosen on SST-2 and AG News (2 and 4 classes); on validation rows 1 did no better on 2 to 5 classes (SST-2
    # -0.27 on three seeds, docs/validation/sst2_buckets_temperature; CR, MPQA, SUBJ, SST-5 -0.53 to +0.40 on one,
    # docs/validation/temperature) and gained +2.27 on CLINC150's 150 intents (docs/validation/clinc150): at 2 the
    # teacher's answer spreads over the many classes it rules out. 6 to 149 classes are not measured; the boundary
    # is a round number between.
    temperature: str = option(AUTO, "Softmax temperature of the KL distillation loss. auto: "
                              f"{distiller.DEFAULT_TEMPERATURE:g} below {MANY_CLASSES} classes, "
                              f"{distiller.MANY_CLASSES_TEMPERATURE:g} from {MANY_CLASSES}.")
    # Perturbed copies of the transfer texts (augment.py), labelled by the teacher; "auto" is the rule
    # `augment.auto_size` draws from the measurements.
    augment_to: str = option(AUTO, "Add perturbed copies of the transfer texts, labelled by the teacher, until the "
                             "transfer set holds this many texts (0 = none). auto: short texts (median up to "
                             "20 words) are grown to 60,000 texts, or doubled up to 134,000; longer ones get none.")
    # Issue #29: measured with the whole vocabulary (--vocabulary_size=0), the rule in `augment.PHRASE_WORDS`.
    vocabulary_words: str = option(AUTO, "Add every whole word of the teacher's vocabulary to the transfer set as "
                                   "a text of its own, labelled by the teacher, so that a student keeping the whole "
                                   "vocabulary learns words its pool never shows. auto: on for phrases (median up "
                                   f"to {augment.PHRASE_WORDS} words), as --vocabulary_size's auto.",
                                   choices=(AUTO, "on", "off"))
    seed: int = 0  # set by the data flag --seed, which also seeds the labelled sample
    # After distillation, cross-entropy on the gold labels alone (Ye et al. 2021): part of the best recipe on
    # both tasks, measured at these settings (docs/appendix/gap).
    fine_tune_epochs: int = option(3, "Epochs on the gold labels alone after distillation (0 = none).")
    fine_tune_learning_rate: float = option(2e-4, "Learning rate of --fine_tune_epochs.")
    # Issue #28: batches of texts of similar length cut to their longest, for a CPU's sake (SST-2's pool: about 12
    # pieces a batch instead of 45).
    # Off by default: on SST-2's validation rows (phrases of train) it moved the student -0.03 and -0.07 points in
    # two runs of three seeds, but on SST-2's dev sentences, the same teachers, -2.29, -0.46 and -0.80
    # (docs/validation/length_buckets, docs/validation/sst2_buckets_temperature; the dev figures:
    # `git show be038a2:docs/recompute/sst2_no_length_buckets/RESULTS.md`).
    length_buckets: bool = option(False, "Draw each distillation batch from texts of similar length: shuffle, sort "
                                  "each run of 100 batches by length, then shuffle the batches.", keyed_when_set=True)
    # A seeded sample of the unlabelled texts: measures how the gap grows as the pool shrinks.
    transfer_pool: int = option(0, "Distil from a seeded sample of this many unlabelled texts (0 = all).")

    def __post_init__(self):
        self.augment_to = _auto_or_number(self.augment_to, "augment_to")
        self.temperature = _auto_or_float(self.temperature, "temperature")
        if isinstance(self.vocabulary_words, bool):
            self.vocabulary_words = "on" if self.vocabulary_words else "off"

    def distill_temperature(self, num_classes):
        """The distillation loss's temperature on a task of `num_classes` classes: `temperature`, its auto rule
        resolved."""
        if self.temperature == AUTO:
            many = num_classes >= MANY_CLASSES
            return distiller.MANY_CLASSES_TEMPERATURE if many else distiller.DEFAULT_TEMPERATURE
        return float(self.temperature)

    def adds_vocabulary_words(self, labelled_texts):
        """Whether the transfer set of a task of `labelled_texts` holds the teacher's vocabulary words:
        `vocabulary_words`, its auto rule resolved."""
        if self.vocabulary_words == AUTO:
            return augment.phrases(labelled_texts)
        return self.vocabulary_words == "on"


# Named recipes: changes to the default (best measured) configs, selected with --recipe and overridable
# field by field. Keys name config fields as the flags do (`teacher_<field>` for the teacher's).
RECIPES = {
    "default": {},
    # One teacher, no copies, no gold fine-tune: about a quarter of the default's teacher time. The
    # benchmark grid and ablations of docs/RESULTS.md were measured on it.
    "fast": {"teacher_ensemble": 1, "augment_to": 0, "fine_tune_epochs": 0},
    # Convolutions of widths 2 and 3, 96 filters: about 3.5x the default student's batch-1 speed, on the
    # accuracy-latency front (docs/appendix/gap).
    "small": {"kernel_sizes": (2, 3), "filters": 96},
}


def field_of(key):
    """`(config class, field name)` that the recipe key `key` sets, or None: `teacher_<field>` names a
    TeacherConfig field, any other key a StudentConfig or DistillConfig one."""
    if key.startswith("teacher_") and key[len("teacher_"):] in TeacherConfig.__dataclass_fields__:
        return TeacherConfig, key[len("teacher_"):]
    for config_class in (StudentConfig, DistillConfig):
        if key in config_class.__dataclass_fields__:
            return config_class, key
    return None


def with_changes(configs, changes):
    """`configs` (a TeacherConfig, StudentConfig, DistillConfig triple) with the fields `changes` names replaced."""
    unknown = sorted(key for key in changes if field_of(key) is None)
    if unknown:
        raise ValueError(f"unknown config fields {unknown}")
    by_class = {TeacherConfig: {}, StudentConfig: {}, DistillConfig: {}}
    for key, value in changes.items():
        config_class, name = field_of(key)
        by_class[config_class][name] = value
    return tuple(dataclasses.replace(c, **by_class[type(c)]) for c in configs)


def recipe(name="default", changes=None):
    """The (TeacherConfig, StudentConfig, DistillConfig) of the registered recipe `name`, with `changes`."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    configs = with_changes((TeacherConfig(), StudentConfig(), DistillConfig()), RECIPES[name])
    return with_changes(configs, changes or {})
