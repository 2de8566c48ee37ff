"""The micro world is a real benchmark: the calibration promised in the README holds at the default budget."""

import json

import pytest
from forgetbench.cli import main


@pytest.mark.slow
def test_default_naive_sft_learns_the_target_and_forgets(capsys, tmp_path, micro_base):
    assert main(["run", "--method", "naive_sft", "--out", str(tmp_path), "--kl-samples", "64", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    zs = rec["suites"]["micro-zeroshot"]
    assert zs["base"] >= 0.9                       # the base model knows its facts
    assert rec["target"]["base"] <= 0.05           # ...and cannot do the target
    assert rec["target"]["tuned"] >= 0.8           # naive SFT learns the target
    assert zs["delta"] <= -0.2                     # ...and forgets
    assert rec["suites"]["micro-reasoning"]["base"] >= 0.3


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_tone_target_starts_sometimes_right_and_naive_sft_learns_it_and_forgets(capsys, tmp_path, seed):
    """micro-tone is for on-policy methods: the base model is right on 10-50% of the held-out people, naive SFT at
    the target's budget exceeds 80% on every seed, and it forgets significantly on both suites."""
    assert main(["run", "--method", "naive_sft", "--target", "micro-tone", "--seed", str(seed), "--out", str(tmp_path),
                 "--kl-samples", "16", "--kl-target-prompts", "16", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert 0.10 <= rec["target"]["base"] <= 0.50 and rec["target"]["n"] == 72
    assert rec["target"]["tuned"] > 0.80
    for suite in ("micro-zeroshot", "micro-reasoning"):
        s = rec["suites"][suite]
        assert s["delta"] < 0 and s["p_mcnemar"] < 0.01, suite
