"""The one parser of key=value strings and command-line numbers (forgetbench.core.settings), and the flag table."""

import math

import pytest
from forgetbench.core.budget import Budget
from forgetbench.core.errors import FieldError, UserError
from forgetbench.core.settings import FLAGS, EvalSettings, KLSettings, coerce, parse_pairs, typed_fields
from hypothesis import given
from hypothesis import strategies as st

TYPES = [int, float, bool, str, "int | str", "float", "int | None"]


@given(st.text(), st.sampled_from(TYPES))
def test_any_text_gives_a_typed_value_or_a_user_error(text, typ):
    try:
        value = coerce(text, typ, "--set x")
    except UserError as e:
        assert "--set x" in str(e)
        return
    allowed = {int: (int,), float: (float,), bool: (bool,), str: (str,), "int | str": (int, str), "float": (float,),
               "int | None": (int,)}[typ]
    assert isinstance(value, allowed)
    if isinstance(value, float):
        assert math.isfinite(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_floats_round_trip(x):
    assert coerce(repr(x), float, "--budget lr") == x


@given(st.integers())
def test_integers_round_trip(n):
    assert coerce(str(n), int, "--seed") == n


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(UserError, match="finite"):
        coerce(text, float, "--budget lr")


def test_booleans_and_unions():
    words = ("1", "true", "YES", "on", "0", "False", "no", "off")
    assert [coerce(t, bool, "b") for t in words] == [True] * 4 + [False] * 4
    assert coerce("8", "int | str", "x") == 8 and coerce("auto", "int | str", "x") == "auto"
    with pytest.raises(UserError, match="must be true or false"):
        coerce("maybe", bool, "--set flag=maybe")


@given(st.lists(st.text()))
def test_pairs_parse_or_fail_cleanly(items):
    try:
        out = parse_pairs(items, "--set")
    except UserError as e:
        assert "Malformed --set" in str(e)
        assert any("=" not in i or not i.partition("=")[0].strip() for i in items)
        return
    assert all(k == k.strip() and k for k in out)
    last = {}
    for item in items:
        key, _, value = item.partition("=")
        last[key.strip()] = value.strip()
    assert out == last


def test_typed_fields_check_names_and_types():
    assert typed_fields(Budget, {"lr": "3e-4", "epochs": "2", "scheduler": "linear"}, "--budget", "B") == \
        {"lr": 3e-4, "epochs": 2.0, "scheduler": "linear"}
    with pytest.raises(UserError, match="Did you mean 'epochs'"):
        typed_fields(Budget, {"epoch": "1"}, "--budget", "The training budget", noun="field")
    with pytest.raises(UserError, match="finite"):
        Budget().updated({"lr": "nan"})
    with pytest.raises(UserError, match="epochs > 0"):
        Budget().updated({"epochs": "0"})


def test_every_flag_sets_an_existing_field():
    fields = {"eval": set(EvalSettings().to_dict()), "kl": set(KLSettings().__dataclass_fields__)}
    for f in FLAGS:
        assert f.key in fields[f.section], f.flag
        assert f.dest == f.flag.removeprefix("--").replace("-", "_")


def test_settings_refuse_bad_values():
    with pytest.raises(FieldError, match="--temperature must be a finite number >= 0, got nan") as e:
        EvalSettings(temperature=float("nan"))
    assert e.value.field == "temperature"
    assert e.value.for_keywords() == "temperature: must be a finite number >= 0, got nan."
    with pytest.raises(UserError, match="--eval-batch-size 0"):
        EvalSettings(batch_size=0)
    with pytest.raises(UserError, match="--kl-samples"):
        KLSettings(samples=1)


@given(st.text(max_size=8), st.integers(1, 400), st.integers(1, 400), st.integers(1, 400))
def test_limited_subsets_are_fixed_and_nested(key, n, a, b):
    from forgetbench.core.settings import subset_indices
    small, large = subset_indices(key, n, min(a, b)), subset_indices(key, n, max(a, b))
    small, large = small or list(range(n)), large or list(range(n))
    assert small == sorted(set(small)) and len(small) == min(a, b, n) and set(small) <= set(large)
    assert subset_indices(key, n, a) == subset_indices(key, n, a)


def test_gsm8k_scores_both_target_metrics_on_the_same_items():
    import forgetbench.tasks.real  # noqa: F401  registers the real targets
    from forgetbench.task import targets
    pass1, loglik = targets.get("gsm8k").evals
    assert pass1.subset_key == loglik.subset_key == "gsm8k"


def test_a_limited_tasks_cache_key_names_its_draw():
    from forgetbench.core.settings import SUBSET_DRAW, EvalSettings
    from forgetbench.task import EvalTask
    loglik = EvalTask("gsm8k_loglik", "mean_logprob", problems=lambda d: [], scoring="likelihood",
                      same_items_as="gsm8k")
    assert EvalSettings(limit=40).for_task(loglik)["subset"] == [SUBSET_DRAW, "gsm8k"]
    assert "subset" not in EvalSettings().for_task(loglik)        # all items: nothing drawn (micro's keys unchanged)
