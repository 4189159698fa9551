"""The run's time estimate counts the work the run will do (`kdistill.estimate`)."""

import dataclasses

import pytest

from kdistill import config, data, estimate
from tests.conftest import SST2


@pytest.fixture(scope="module")
def splits():
    return data.load(SST2, num_labels=1000, seed=0)


def test_the_transfer_set_counts_the_copies_the_recipe_labels(splits):
    teacher, _, distill = config.recipe()
    # SST-2's 67,349 phrases (median 7 words) are doubled, up to 134,000, as pipeline.transfer_targets does.
    assert estimate.transfer_size(splits, distill) == 134_000
    assert estimate.transfer_size(splits, dataclasses.replace(distill, augment_to=0)) == 67_349
    assert estimate.transfer_size(splits, dataclasses.replace(distill, augment_to=0, transfer_pool=3000)) == 4000
    assert estimate.transfer_size(splits, dataclasses.replace(distill, augment_to=0, vocabulary_words=True)) == (
        67_349 + estimate.VOCABULARY_WORDS)


def test_the_plan_prices_each_stage_by_its_work(splits):
    teacher, _, distill = config.recipe()
    seconds = estimate.plan(splits, teacher, distill, ms_per_text=2.6)
    assert list(seconds) == list(estimate.STAGES)
    # Three teachers each label the 134,000 transfer texts and the 872 dev rows at 2.6 ms a text.
    assert seconds["labelling"] == pytest.approx(3 * (134_000 + 872) * 0.0026)
    one = estimate.plan(splits, dataclasses.replace(teacher, ensemble=1), distill, ms_per_text=2.6)
    assert seconds["teacher"] == pytest.approx(3 * one["teacher"])
    # A teacher already trained on these labels is reused, and its cached logits too when the pool has them.
    reused = estimate.plan(splits, teacher, distill, ms_per_text=2.6, teacher_trained=True)
    assert reused["teacher"] == 0 and reused["labelling"] == seconds["labelling"]
    cached = estimate.plan(splits, teacher, distill, ms_per_text=2.6, teacher_trained=True, pool_labelled=True)
    assert cached["labelling"] == 0 and cached["distillation"] == seconds["distillation"]
    # A machine twice as slow takes twice as long.
    slow = estimate.plan(splits, teacher, distill, ms_per_text=5.2)
    assert slow["distillation"] == pytest.approx(2 * seconds["distillation"])


def test_length_buckets_and_batch_parts_price_distillation_by_the_positions_they_convolve(splits):
    teacher, _, plain_config = config.recipe()
    distill = dataclasses.replace(plain_config, length_buckets=True)
    bucketed = estimate.plan(splits, teacher, distill, ms_per_text=2.6, batch_parts=1)["distillation"]
    plain = estimate.plan(splits, teacher, plain_config, ms_per_text=2.6, batch_parts=1)
    # SST-2's pool: sorted batches are about 12 words wide, random ones about 41.
    share = estimate.convolved_share(splits.unlabelled_texts[:20_000], distill.batch_size, length_buckets=True)
    assert 0.2 < share < 0.4
    assert 0.35 < bucketed / plain["distillation"] < 0.55
    # Four length-sorted parts of each random batch: a part as wide as its longest text.
    in_parts = estimate.convolved_share(splits.unlabelled_texts[:20_000], distill.batch_size, parts=4)
    assert 0.3 < in_parts < 0.6
    parts = estimate.plan(splits, teacher, plain_config, ms_per_text=2.6, batch_parts=4)["distillation"]
    assert parts < plain["distillation"]
    # Texts all of one length gain nothing from sorting them.
    assert estimate.convolved_share(["a b c"] * 500, 128, length_buckets=True, parts=4) == 1.0


def test_a_fine_tuning_step_costs_at_least_its_floor_however_short_the_texts(splits):
    # MPQA's 3-word phrases probe at about a third of SST-2's forward time, yet their teachers took 204 s against
    # SST-2's 252 s: a step has a cost that does not shrink with the text.
    teacher, _, distill = config.recipe()
    one = dataclasses.replace(teacher, ensemble=1)
    steps = one.epochs_for(1000, 2) * 63
    phrases = estimate.plan(splits, one, distill, ms_per_text=0.82)["teacher"]
    sentences = estimate.plan(splits, one, distill, ms_per_text=2.1)["teacher"]
    assert phrases >= steps * estimate.FINE_TUNE_STEP_S + estimate.TEACHER_OVERHEAD_S
    assert phrases / sentences == pytest.approx(204 / 252, abs=0.1)


def test_the_clock_scales_what_is_left_by_how_far_the_finished_stages_were_off(capsys, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(estimate.time, "time", lambda: now[0])
    clock = estimate.RunClock({"teacher": 100.0, "labelling": 300.0, "export": 0.0})
    now[0] += 150  # the teacher took 1.5x its estimate
    clock.done("teacher")
    out = capsys.readouterr().out
    assert "[time] estimate: about 6.7 min (teacher 1.7 min, labelling 5.0 min)" in out
    assert "[time] teacher: 2.5 min (estimated 1.7 min); about 7.5 min left" in out
    assert clock.seconds == {"teacher": 150.0}
