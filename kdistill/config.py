"""The three configurations of a run: the teacher's, the student's and distillation's.

Each field has its one default here, with the measurement that chose it, and the
help text of the command-line flag that sets it: the binaries in `apps/` derive
their flags from these fields (`apps.common.define_config_flags`) instead of
restating them. Teacher fields are flags with a `teacher_` prefix unless the field
names its flag.

Example:

```python
from kdistill import config

student = config.StudentConfig(filters=96, kernel_sizes=(2, 3))
recipe = config.DistillConfig(epochs=4, seed=1)
teacher = config.TeacherConfig(handle="bert_base_en_uncased")
```
"""

import dataclasses

from kdistill import distiller, student as student_lib, teacher as teacher_lib


def option(default, help, flag=None, choices=None, bounds=None):
    """A config field with its default, its flag's help and, optionally, its flag's name, choices and
    (lower, upper) bounds, which the flag checks before any work starts."""
    metadata = {"help": help, "flag": flag, "choices": choices, "bounds": bounds}
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


@dataclasses.dataclass
class TeacherConfig:
    handle: str = option(teacher_lib.OFFLINE_TEACHER, "keras-hub BERT preset, hf:// handle or local folder; "
                         "'minilm' is the bundled offline MiniLM-L6.", flag="teacher")
    epochs: int = option(5, "Teacher fine-tuning epochs (at least).")
    # Few labels make few steps: 5 epochs of N=100 is 35 updates, and MiniLM barely moves
    # (SST-2 dev 58.8%). Train for at least this many updates (N=100: 69.7%); N=1000 is unchanged.
    min_steps: int = option(200, "Fine-tune the teacher for at least this many updates (more epochs when labels "
                            "are few).")
    learning_rate: float = option(1e-4, "Teacher peak learning rate.")
    batch_size: int = option(16, "Teacher fine-tuning batch size.")
    sequence_length: int = option(128, "Teacher's maximum sequence length.", flag="max_seq_length")
    # K teachers on the same labels (seeds seed, seed+1, ...), distilled from as one
    # (`teacher_model.TeacherEnsemble`). Off: 3 members at N=1000 (mean of 3 seeds, docs/appendix/gap)
    # gave students +0.96 points on SST-2 and +0.43 on AG News, for two more fine-tunes and labelling passes.
    ensemble: int = option(1, "Fine-tune this many teachers on the labels, with seeds --seed, --seed+1, ..., and "
                           "distil from the mixture of their predictions (1 = one teacher).")

    def epochs_for(self, num_labels):
        steps_per_epoch = -(-num_labels // self.batch_size)
        return max(self.epochs, -(-self.min_steps // steps_per_epoch))


@dataclasses.dataclass
class StudentConfig:
    """Everything that shapes the student; saved with the run so it can be rebuilt."""

    # Pieces kept from the teacher's vocabulary (0 = all). SST-2 N=1000: 7,000 and 8,000 both
    # gave 79.24% dev; 7,000 keeps the student under 1/39 of MiniLM's parameters (564k).
    vocabulary_size: int = option(7000, "WordPiece pieces the student keeps (0 = all).")
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
    temperature: float = option(distiller.DEFAULT_TEMPERATURE, "Softmax temperature of the KL distillation loss.")
    # Perturbed copies of the transfer texts (augment.py) are added, labelled by the teacher,
    # until the transfer set holds about this many texts (0 = never). Off: one copy of SST-2's
    # 67k texts gave +0.86 points (N=1000, mean of 2 seeds) for 45k more texts to label. Small
    # pools gain most (docs/appendix/small_pool, N=1000, mean of 3 seeds): 60,000 gives SST-2's pool cut to
    # 3k +1.80 and cut to 10k +1.34, and AG News' 4k +0.07 for 55,600 more texts to label.
    augment_to: int = option(0, "Add perturbed copies of the transfer texts, labelled by the teacher, until the "
                             "transfer set holds this many texts (0 = no augmentation). 60000 helps pools of short texts under "
                             "about 30,000 (README: Small unlabelled pools).")
    seed: int = 0  # set by the data flag --seed, which also seeds the labelled sample
    # After distillation, cross-entropy on the gold labels alone at `fine_tune_learning_rate`
    # (Ye et al. 2021).
    fine_tune_epochs: int = option(0, "Epochs on the gold labels alone after distillation (0 = none).")
    fine_tune_learning_rate: float = option(1e-4, "Learning rate of --fine_tune_epochs.")
    # A seeded sample of the unlabelled texts: measures how the gap grows as the pool shrinks.
    transfer_pool: int = option(0, "Distil from a seeded sample of this many unlabelled texts (0 = all).")
