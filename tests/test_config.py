"""The configs and the flags derived from them: one default each, every field settable from the command line."""

import dataclasses

import pytest
from absl import flags

from kdistill import config, distiller
from kdistill.apps import common
from tests.binaries import define_flags

CONFIGS = (config.TeacherConfig, config.StudentConfig, config.DistillConfig)


def test_every_field_has_a_flag_but_the_seed_the_data_flag_sets():
    unflagged = {(cls.__name__, f.name) for cls in CONFIGS for f in dataclasses.fields(cls)} - {
        (cls.__name__, f.name) for cls in CONFIGS for f in config.flag_fields(cls)}
    assert unflagged == {("DistillConfig", "seed")}
    names = [config.flag_name(cls, f) for cls in CONFIGS for f in config.flag_fields(cls)]
    assert len(names) == len(set(names))
    assert config.flag_name(config.TeacherConfig, config.TeacherConfig.__dataclass_fields__["handle"]) == "teacher"
    assert "teacher_epochs" in names and "max_seq_length" in names and "epochs" in names


def test_a_binary_without_flags_builds_the_default_configs():
    # apps.demo is the exception: its defaults are a measured recipe (test_apps.py).
    define_flags("apps.train_teacher")
    flags.FLAGS(["apps.train_teacher"])
    assert common.teacher_config() == config.TeacherConfig()
    define_flags("apps.distill")
    flags.FLAGS(["apps.distill"])
    assert common.student_config() == config.StudentConfig()
    assert common.distill_config() == config.DistillConfig()
    assert config.DistillConfig().alpha == distiller.DEFAULT_ALPHA == 0.1


def test_flags_reach_the_configs_with_their_types():
    define_flags("apps.distill")
    flags.FLAGS(["apps.distill", "--seed=3", "--kernel_sizes=2,3", "--alpha=0.3", "--wordpiece=pruned", "--separable",
                 "--vocabulary_size=5000"])
    student, distill = common.student_config(), common.distill_config()
    assert student.kernel_sizes == (2, 3) and student.wordpiece == "pruned" and student.separable
    assert student.vocabulary_size == 5000 and distill.alpha == 0.3 and distill.seed == 3
    define_flags("apps.train_teacher")
    flags.FLAGS(["apps.train_teacher", "--teacher_ensemble=3", "--max_seq_length=64", "--teacher=bert_base_en"])
    assert common.teacher_config() == config.TeacherConfig(handle="bert_base_en", sequence_length=64, ensemble=3)
    define_flags("apps.distill")
    with pytest.raises(flags.IllegalFlagValueError):
        flags.FLAGS(["apps.distill", "--wordpiece=median"])  # choices come from the config
    define_flags("apps.distill")
    with pytest.raises(flags.IllegalFlagValueError):
        flags.FLAGS(["apps.distill", "--alpha=1.5"])  # so do bounds, checked before any work


def test_the_teacher_trains_for_enough_updates_per_class_and_in_all():
    teacher = config.TeacherConfig()
    assert teacher.epochs_for(1000, num_classes=2) == teacher.epochs == 5  # 63 updates an epoch: 315 in all
    assert teacher.updates_for(1000, num_classes=2) == 315
    assert teacher.epochs_for(1000, num_classes=5) == 5
    # 150 classes at 63 updates an epoch: 8 updates per class is 1,200 updates, 20 epochs.
    assert teacher.epochs_for(1000, num_classes=150) == 20
    # Few labels: at least min_steps (200) updates, 29 epochs of 7.
    assert teacher.epochs_for(100, num_classes=2) == 29


def test_the_distillation_temperature_softens_less_where_classes_are_many():
    define_flags("apps.distill")
    flags.FLAGS(["apps.distill"])
    auto = common.distill_config()
    assert auto.temperature == config.AUTO
    assert auto.distill_temperature(2) == auto.distill_temperature(config.MANY_CLASSES - 1) == 2.0
    assert auto.distill_temperature(config.MANY_CLASSES) == auto.distill_temperature(150) == 1.0
    define_flags("apps.distill")
    flags.FLAGS(["apps.distill", "--temperature=1.5"])
    assert common.distill_config().distill_temperature(150) == 1.5  # a number given wins over the rule
    with pytest.raises(ValueError, match="temperature: 'warm' is neither 'auto' nor a number"):
        config.DistillConfig(temperature="warm")
