"""The micro world is a real benchmark: the calibration promised in the README holds at the default budget."""

import json

import pytest

from bench.cli import main


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
