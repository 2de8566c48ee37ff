"""What a trainer reports: TrainingStats, recorded as the record's training section always had it (the engine's
Trainer measures every field; a method's own trainer what it knows)."""

import dataclasses

import pytest
from forgetbench.core.budget import Budget
from forgetbench.toolbox.losses import cross_entropy
from forgetbench.toolbox.training import UNMEASURED, TrainingStats, train


def test_training_stats_record_the_measured_fields_in_order_then_the_trainers_own():
    stats = TrainingStats(steps=3, examples=9, tokens=40, loss_first=None, seconds=1.5, loss_curve=(2.0, 1.0),
                          extra={"rounds": 3})
    assert list(stats.record().items()) == [("steps", 3), ("examples", 9), ("tokens", 40), ("loss_first", None),
                                            ("loss_curve", [2.0, 1.0]), ("seconds", 1.5), ("rounds", 3)]
    assert stats.loss_last_10pct is UNMEASURED and stats.processes is UNMEASURED
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.steps = 4
    with pytest.raises(ValueError, match=r"extra repeats the field\(s\) seconds, steps; set them as fields"):
        TrainingStats(steps=1, examples=1, seconds=0.0, extra={"steps": 2, "seconds": 1.0})
    with pytest.raises(TypeError):
        TrainingStats(3, 9, 1.5)                               # keywords only: nothing is recorded by position


def test_the_engines_trainer_measures_every_field_as_the_record_always_had_them(micro_batch):
    model, _, ctx = micro_batch
    stats = train(model, ctx.target_examples[:4], cross_entropy,
                  Budget(epochs=1, lr=1e-3, batch_size=2), seed=0, pad_id=ctx.tokenizer.pad_token_id)
    record = stats.record()
    assert list(record) == ["steps", "examples", "tokens", "loss_first", "loss_last_10pct", "loss_curve", "processes",
                            "precision", "seconds"]
    assert (record["steps"], record["examples"], record["processes"], record["precision"]) == (2, 4, 1, "float32")
    assert record["tokens"] == sum(len(e["input_ids"]) for e in ctx.target_examples[:4])
    assert record["loss_first"] == pytest.approx(record["loss_curve"][0], abs=1e-6) and len(record["loss_curve"]) == 2
    assert isinstance(record["loss_curve"], list)
