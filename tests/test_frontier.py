"""Frontiers, matched learning and the joint bootstrap, against hand computations on made-up tracks."""

import math

import numpy as np
import pytest
from forgetbench.leaderboard import frontier as fr
from forgetbench.leaderboard.render import render
from forgetbench.leaderboard.stats import bootstrap_means
from forgetbench.leaderboard.tracks import build_tracks, load_runs
from hypothesis import given
from hypothesis import strategies as st
from test_leaderboard import BASE, write_run

CURVE = [(0.4, -0.1), (0.8, -0.3), (0.6, -0.5)]          # the last is dominated by (0.8, -0.3)


def test_front_adds_the_base_model_and_drops_dominated_points():
    assert fr.front(CURVE) == [(0.0, 0.0), (0.4, -0.1), (0.8, -0.3)]
    assert fr.front([(0.5, 0.1)]) == [(0.5, 0.1)]           # a point that beats the base model on both axes
    assert fr.front([(-0.1, -0.2)]) == [(0.0, 0.0)]          # learning nothing and forgetting: the base wins


def test_value_at_interpolates_between_corners():
    assert fr.value_at(CURVE, 0.2) == pytest.approx(-0.05)
    assert fr.value_at(CURVE, 0.6) == pytest.approx(-0.2)
    assert fr.value_at(CURVE, 0.8) == pytest.approx(-0.3)
    assert math.isnan(fr.value_at(CURVE, 0.81))             # never learns that much
    assert fr.value_at([(0.5, 0.1)], 0.2) == pytest.approx(0.1)   # below the front's smallest gain: that point


def test_the_staircase_is_the_best_measured_configuration_that_learns_enough():
    assert fr.staircase(CURVE, 0.2) == pytest.approx(-0.1)       # (0.4, -0.1) learns 0.2 and more
    assert fr.staircase(CURVE, 0.4) == pytest.approx(-0.1)
    assert fr.staircase(CURVE, 0.5) == pytest.approx(-0.3)       # the line would say -0.15: no run was there
    assert fr.staircase(CURVE, 0.8) == pytest.approx(-0.3)
    assert math.isnan(fr.staircase(CURVE, 0.81))
    assert fr.staircase(CURVE, 0.5) <= fr.value_at(CURVE, 0.5)   # interpolation flatters between corners


def test_mean_over_is_the_staircase_area_per_point_of_gain():
    # 0..0.4: -0.1 (area -0.04); 0.4..0.8: -0.3 (area -0.12): total -0.16 over 0.8
    assert fr.mean_over(CURVE, 0.8) == pytest.approx(-0.2)
    assert fr.mean_over(CURVE, 0.4) == pytest.approx(-0.1)
    assert math.isnan(fr.mean_over(CURVE, 0.9))
    assert fr.mean_over([(0.5, 0.1)], 0.5) == pytest.approx(0.1)


points = st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1)), min_size=1, max_size=6)


@given(points, st.floats(0, 1))
def test_frontier_properties(pts, g):
    corners = fr.front(pts)
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)       # more gain, never less forgetting
    v, s = fr.value_at(pts, g), fr.staircase(pts, g)
    if g > xs[-1]:
        assert math.isnan(v) and math.isnan(s)
    else:   # the staircase is a configuration that learns at least g; the line is never below it
        assert s == max(y for x, y in [*pts, (0.0, 0.0)] if x >= g)
        assert s - 1e-9 <= v <= max(ys) + 1e-9


def test_bootstrap_means_estimates_and_pairing():
    base = np.array([0, 1, 0, 1, 1, 0], dtype=float)
    strata = ["t", "t", "p", "p", "q", "q"]
    row = np.array([[1, 1, 0, 0, 1, 1], [1, 0, 0, 1, 1, 1]], dtype=float)     # two seeds
    est, reps = bootstrap_means([row, row, np.tile(base, (1, 1))], base, strata=strata,
                                statistics={"gain": {"t": 1}, "kept": {"p": 1, "q": 3}}, n_resamples=500)
    # gain: seed means (1, .5) - (0, 1) -> (1, -.5), mean .25; kept: p (0, .5) - (0, 1) -> -.25, q (1, 1) - (1, 0)
    # -> .5: (1 * -.25 + 3 * .5) / 4
    assert est["gain"][0] == pytest.approx(0.25)
    assert est["kept"][0] == pytest.approx((-0.25 + 3 * 0.5) / 4)
    assert not np.array_equal(reps["gain"][0], reps["gain"][1])               # each row resamples its own seeds
    assert np.all(reps["gain"][2] == 0) and np.all(reps["kept"][2] == 0)       # the base itself: always zero
    single = np.array([[1, 1, 0, 0, 1, 1]], dtype=float)
    _, a = bootstrap_means([single, single], base, strata=strata, statistics={"gain": {"t": 1}}, n_resamples=300)
    assert np.array_equal(a["gain"][0], a["gain"][1])       # one seed: the same item resample for every row
    with pytest.raises(ValueError, match="no items"):
        bootstrap_means([single], base, strata=strata, statistics={"x": {"nope": 1}})


def _sweep_track(tmp_path):
    """naive_sft at two learning rates, method m at two; hand-computed points in the comments."""
    tuned = {k: list(v) for k, v in BASE.items()}

    def with_(tgt=None, a=None):
        out = {k: list(v) for k, v in tuned.items()}
        if tgt:
            out["tgt"] = tgt
        if a:
            out["a"] = a
        return out
    write_run(tmp_path, "naive_sft", 0, with_([1] * 6, [0, 0, 1, 0, 1]), training={
        "passes": {"forward_backward_tokens": 100, "forward_only_tokens": 0}}, wall=10.0)          # (5/6, -0.1)
    write_run(tmp_path, "naive_sft", 0, with_([1, 1, 1, 0, 1, 0], [0, 1, 1, 0, 1]), lr=0.01, training={
        "passes": {"forward_backward_tokens": 100, "forward_only_tokens": 0}}, wall=10.0)          # (1/2, -0.05)
    write_run(tmp_path, "m", 0, with_([1, 1, 1, 1, 1, 0]), training={
        "passes": {"forward_backward_tokens": 200, "forward_only_tokens": 50}}, wall=30.0)          # (2/3, 0)
    write_run(tmp_path, "m", 0, with_([1, 0, 0, 0, 1, 0]), lr=0.01, training={
        "passes": {"forward_backward_tokens": 200, "forward_only_tokens": 50}}, wall=30.0)          # (1/6, 0)
    (track,) = build_tracks(load_runs(tmp_path), "naive_sft", n_resamples=200)
    return track


def test_frontiers_on_a_made_up_sweep(tmp_path):
    track = _sweep_track(tmp_path)
    assert track.budget["lr"] == 0.1 and sorted(r.budget for r in track.rows) == ["", "", "lr=0.01", "lr=0.01"]
    frs, info = fr.frontiers(track, n_resamples=400)
    by = {f.method: f for f in frs}
    # the base model scores 1/6 on the target: the headroom is 5/6, whatever any method learns
    assert info["headroom"] == pytest.approx(5 / 6)
    assert info["gains"] == {0.25: pytest.approx(5 / 24), 0.5: pytest.approx(5 / 12), 0.75: pytest.approx(0.625)}
    naive, m = by["naive_sft"], by["m"]
    assert sorted(naive.points) == [pytest.approx((0.5, -0.05)), pytest.approx((5 / 6, -0.1))]
    assert naive.matched[0.5].estimate == pytest.approx(-0.05)          # (1/2, -0.05) learns 5/12 and more
    assert naive.matched[0.75].estimate == pytest.approx(-0.1)          # only (5/6, -0.1) learns 0.625
    assert naive.matched[0.75].interpolated == pytest.approx(-0.05 - 0.05 * 0.125 / (1 / 3))   # the line: secondary
    assert naive.area.estimate == pytest.approx((0.5 * -0.05 + 0.125 * -0.1) / 0.625)
    assert naive.matched[0.5].p is None                                     # the reference is not tested
    assert naive.matched[0.5].low <= naive.matched[0.5].estimate <= naive.matched[0.5].high
    assert m.matched[0.75].estimate == pytest.approx(0.0)                    # (2/3, 0) learns 0.625, forgets nothing
    assert m.matched[0.5].p is not None and 0 <= m.matched[0.5].p <= m.matched[0.5].p_holm <= 1
    assert m.area.estimate == pytest.approx(0.0)
    assert (m.rank, naive.rank) == (1, 2)
    assert all(1 <= f.rank_interval[0] <= f.rank_interval[1] <= 2 for f in (m, naive))

    assert m.cost["relative"] == {"wall": pytest.approx(3.0), "forward_backward": pytest.approx(2.0),
                                  "forward_only": pytest.approx(0.5)}
    md = render([track], "markdown")
    assert "of headroom" in md and "### Frontier" in md and "### Every configuration" in md
    assert "m (lr=0.01)" in md and "--budget lr=0.01" in md
    assert "over sequences truncated at 4 tokens; 0% of the samples reached the cap" in md   # the cap, and how often
    csv = render([track], "csv", view="frontier")
    assert csv.splitlines()[0].startswith("track,model,target,method,external,rank") and len(csv.splitlines()) == 3
    assert "### Frontier" not in render([track], "markdown", view="points")


def test_ranks_compare_levels_highest_first_and_ties_share_the_better_rank():
    a = np.array([[0.1, 0.0], [-np.inf, 0.5], [0.2, 0.3]])      # three replicates, levels highest first
    b = np.array([[0.0, 0.9], [-np.inf, 0.4], [0.2, 0.3]])
    assert fr._lexicographically_greater(a, b).tolist() == [True, True, False]     # the last: equal, a tie
    assert fr._lexicographically_greater(b, a).tolist() == [False, False, False]


def test_one_point_and_no_reference(tmp_path):
    write_run(tmp_path, "m", 0, {**BASE, "tgt": [1] * 6})
    (track,) = build_tracks(load_runs(tmp_path), "naive_sft", n_resamples=100)
    frs, info = fr.frontiers(track, n_resamples=100)
    assert info["gains"] == {} and frs[0].rank is None and frs[0].matched == {}
    assert "One configuration per method: points, not frontiers, and no claim at matched learning" in \
        render([track], "markdown")


def test_track_budget_is_configuration_zeros_even_when_outnumbered(tmp_path):
    import json
    for lr in (0.1, 0.01, 0.001):          # a baseline-only sweep: every budget appears equally often
        folder = write_run(tmp_path, "naive_sft", 0, {**BASE, "tgt": [1] * 6}, lr=lr)
        record = json.loads((folder / "result.json").read_text())
        record["sweep"] = {"name": "s", "config": 0 if lr == 0.01 else 1, "configs": 3}
        (folder / "result.json").write_text(json.dumps(record))
    (track,) = build_tracks(load_runs(tmp_path), "naive_sft", n_resamples=100)
    assert track.budget["lr"] == 0.01 and [r.is_default for r in track.rows].count(True) == 1
