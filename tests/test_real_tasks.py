"""Real-data suites and targets on local fixtures (the schemas of ../shared/data) and a tiny local model;
checks against lm-eval's own results; SmolLM2 and ../shared/data when present."""

import json

import pytest
from conftest import SHARED, needs_shared_data, needs_smollm2
from forgetbench.core.errors import UserError
from forgetbench.core.settings import EvalSettings, subset_indices
from forgetbench.records.aggregate import accuracy
from forgetbench.runner.evaluation import evaluate
from forgetbench.runner.evaluation_plan import plan_evaluations
from forgetbench.task import resolve, suites, targets
from forgetbench.toolbox.model_sources import resolve_model


def ready_tasks(names, data_dir):
    tasks = [(t, suites.get(s).include_path) for s in names for t in suites.get(s).tasks]
    return resolve(tasks, data_dir)


def test_every_zeroshot_task_runs_from_local_files(data_dir):
    ready, missing = ready_tasks(["zeroshot", "medqa", "mmlu", "lambada"], data_dir)
    assert missing == {}
    assert {r.task.name for r in ready} == {t.name for s in ("zeroshot", "medqa", "mmlu", "lambada")
                                            for t in suites.get(s).tasks}
    assert all(r.include is not None and "@DATA@" not in (r.include / "fb_arc_easy.yaml").read_text() for r in ready)


def test_missing_data_is_reported_and_the_average_says_what_it_covers(tmp_path, data_dir):
    import shutil
    shutil.copytree(data_dir, tmp_path / "d")
    shutil.rmtree(tmp_path / "d" / "sciq")
    p = plan_evaluations(targets.get("gsm8k"), [suites.get("zeroshot")], tmp_path / "d")
    assert set(p.missing) == {"fb_sciq"} and "sciq/test.json" in p.missing["fb_sciq"]


def test_a_suite_with_nothing_to_run_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="Suite zeroshot: none of its tasks can run"):
        plan_evaluations(None, [suites.get("zeroshot")], tmp_path / "empty")
    with pytest.raises(UserError, match="Target gsm8k's evaluation cannot run"):
        plan_evaluations(targets.get("gsm8k"), [], tmp_path / "empty")


def test_without_data_dir_offline_every_real_task_needs_the_hub():
    p_missing = resolve([(t, suites.get("zeroshot").include_path) for t in suites.get("zeroshot").tasks], None)[1]
    assert len(p_missing) == 8 and all("needs the hub" in why for why in p_missing.values())


def test_limit_is_a_fixed_random_subset_not_the_first_n():
    a = subset_indices("fb_arc_easy", 2376, 40)
    assert a == subset_indices("fb_arc_easy", 2376, 40)          # the same for every run
    assert a == sorted(a) and len(set(a)) == 40 and a != list(range(40))
    assert a != subset_indices("fb_arc_challenge", 2376, 40)     # per task
    assert subset_indices("x", 10, 10) is None and subset_indices("x", 10, None) is None


def test_items_match_the_fixture_files_one_to_one(tiny_model, data_dir):
    h = resolve_model(str(tiny_model))
    ready, _ = ready_tasks(["zeroshot", "medqa", "mmlu", "lambada"], data_dir)
    out, _ = evaluate(h.model, h.tokenizer, ready, EvalSettings(batch_size=4))
    rows = lambda f: sum(1 for line in (data_dir / f).read_text().splitlines() if line.strip())  # noqa: E731
    assert len(out["fb_arc_easy"]) == rows("arc/arc_easy_test.llmfoundry.jsonl")
    assert len(out["fb_piqa"]) == rows("piqa/valid.jsonl")
    assert len(out["fb_hellaswag"]) == rows("hellaswag/hellaswag_val.jsonl")
    assert len(out["fb_sciq"]) == len(json.loads((data_dir / "sciq/test.json").read_text()))
    assert len(out["fb_medqa"]) == rows("medqa/medqa_test.jsonl")
    assert len(out["fb_mmlu"]) == 5                                 # both subjects' test files
    assert len(out["fb_lambada"]) == rows("lambada/lambada_openai_test.llmfoundry.jsonl")
    for items in out.values():
        assert [i["doc_id"] for i in items] == list(range(len(items)))
        assert all(i["score"] in (0.0, 1.0) and i["correct"] == (i["score"] == 1.0) for i in items)


def _lm_eval_own(pretrained: str, ready, *, add_bos: bool, samples=None, extra: str = ""):
    """lm-eval loading the model and its tokenizer by path itself, told the model's BOS convention: loaded by path
    with add_bos_token=True, transformers rebuilds the tokenizer's post-processor to prepend a BOS."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(ready[0].include), include_defaults=False)
    args = f"pretrained={pretrained},dtype=float32,add_bos_token={add_bos},device=cpu" + extra
    return lm_eval.simple_evaluate(model="hf", model_args=args, tasks=[r.name for r in ready], task_manager=tm,
                                   num_fewshot=0, batch_size=4, samples=samples, bootstrap_iters=0, log_samples=True)


def log_likelihoods(samples: list[dict]) -> dict[int, list[float]]:
    """doc id -> the log-likelihood of each of its requests (lm-eval's samples: resps[i] = [[ll, is_greedy]])."""
    return {s["doc_id"]: [float(r[0][0]) for r in s["resps"]] for s in samples}


def assert_same_as_lm_evals_own(ours: dict, lm_eval_out: dict, theirs: dict, ready) -> None:
    """Identical log-likelihoods (float tolerance) and identical per-item decisions, task by task."""
    for r in ready:
        mine = log_likelihoods(lm_eval_out[r.name]["samples"][r.name])
        their = log_likelihoods(theirs["samples"][r.name])
        assert mine.keys() == their.keys() and mine, r.name
        for doc, lls in mine.items():
            assert lls == pytest.approx(their[doc], abs=1e-4), (r.name, doc)
        decided = {s["doc_id"]: s[r.task.metric] for s in theirs["samples"][r.name]}
        assert {i["doc_id"]: i["score"] for i in ours[r.task.name]} == decided, r.name
        assert accuracy(ours[r.task.name]) == pytest.approx(theirs["results"][r.name][f"{r.task.metric},none"])


@pytest.mark.parametrize("variant", ["tiny", "with_bos"])
def test_zero_shot_log_likelihoods_equal_lm_evals_own(variant, tiny_model, data_dir, tmp_path):
    """lm-eval loads the model itself and aggregates by itself; forgetbench's per-item log-likelihoods, decisions
    and accuracy must agree, for a model whose inputs get no BOS and one whose tokenizer prepends one; told the
    other BOS decision, lm-eval's own differs (so the check can fail)."""
    from test_bos import prepending_copy
    folder = tiny_model if variant == "tiny" else prepending_copy(tiny_model, tmp_path / "with-bos")
    h = resolve_model(str(folder))
    assert h.adds_bos is (variant == "with_bos")
    ready, _ = ready_tasks(["zeroshot", "lambada"], data_dir)
    ours, out = evaluate(h.model, h.tokenizer, ready, EvalSettings(batch_size=4))
    assert_same_as_lm_evals_own(ours, out, _lm_eval_own(str(folder), ready, add_bos=h.adds_bos), ready)
    other = _lm_eval_own(str(folder), ready[:1], add_bos=not h.adds_bos)
    mine, their = (log_likelihoods(x["samples"][ready[0].name]) for x in (out[ready[0].name], other))
    assert all(mine[d] != pytest.approx(their[d], abs=1e-4) for d in mine)


@pytest.mark.slow
@needs_smollm2
@needs_shared_data
def test_smollm2_log_likelihoods_equal_lm_evals_own_gguf_load():
    """PIQA (acc_norm), ARC-Easy and LAMBADA: lm-eval loading the GGUF and its tokenizer itself, given SmolLM2's BOS
    convention (its GGUF's add_bos_token = false), scores every item as forgetbench does. Told add_bos_token=True
    (as this check once was), lm-eval prepends <|im_start|> and PIQA's acc_norm came out 0.667 against 0.625."""
    from conftest import smollm2_gguf
    h = resolve_model("smollm2-135m")
    assert (h.adds_bos, h.adds_bos_reason) == (False, "the GGUF's tokenizer.ggml.add_bos_token = false")
    ready, _ = ready_tasks(["zeroshot", "lambada"], SHARED / "data")
    ready = [r for r in ready if r.task.name in ("fb_arc_easy", "fb_piqa", "fb_lambada")]
    ours, out = evaluate(h.model, h.tokenizer, ready, EvalSettings(batch_size=4, limit=8))
    samples = {r.name: [i["doc_id"] for i in ours[r.task.name]] for r in ready}
    assert all(len(docs) == 8 for docs in samples.values())
    gguf = smollm2_gguf()
    theirs = _lm_eval_own(str(gguf.parent), ready, add_bos=h.adds_bos, samples=samples,
                          extra=f",gguf_file={gguf.name},tokenizer={gguf.parent}")
    assert_same_as_lm_evals_own(ours, out, theirs, ready)


def test_a_task_run_from_the_hub_is_recorded_under_the_hubs_name(monkeypatch, data_dir):
    """The local MedQA (5 options) and lm-eval's medqa_4options are different benchmarks, as are the local BoolQ
    copy (no article titles) and lm-eval's boolq: results go under the name of what ran, so they never mix."""
    from forgetbench.runner import evaluation

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")             # the hub path is planned; nothing is downloaded
    hub = plan_evaluations(None, [suites.get("medqa"), suites.get("zeroshot")], None)
    local = plan_evaluations(None, [suites.get("medqa"), suites.get("zeroshot")], data_dir)
    assert {r.task.name: r.name for r in hub.ready}["fb_medqa"] == "medqa_4options"
    assert {r.task.name: r.name for r in hub.ready}["fb_boolq"] == "boolq"
    assert {r.name for r in local.ready} >= {"fb_medqa", "fb_boolq"}

    def fake(model, tokenizer, tasks, settings, cache_fingerprint=None):
        right = 1 if model == "tuned" else 0                   # every item flips wrong -> right
        return {r.name: [{"doc_id": i, "doc_hash": f"{i}", "prompt_hash": f"{i}", "correct": bool(right),
                          "score": float(right)}
                         for i in range(4)] for r in tasks}, {}
    monkeypatch.setattr(evaluation, "evaluate", fake)
    base = type("Base", (), {"model": "base", "tokenizer": None, "fingerprint": "f"})()
    for p, medqa, boolq in ((hub, "medqa_4options", "boolq"), (local, "fb_medqa", "fb_boolq")):
        out, items, _, _ = evaluation.assess(base, "tuned", None, p, EvalSettings())
        assert list(out["suites"]["medqa"]["tasks"]) == [medqa]
        assert boolq in out["suites"]["zeroshot"]["average_over"]
        assert out["suites"]["medqa"]["delta"] == 1.0
        assert {i["task"] for i in items} == {r.name for r in p.ready}


def test_an_lm_eval_group_is_one_task_made_of_its_subtasks_items(tiny_model, data_dir, tmp_path):
    """MMLU on the hub is an lm-eval group: its items are its leaf tasks' items, in leaf-name order and numbered
    on, and --limit draws from them all at once. Checked on a local group of two local tasks."""
    import shutil

    from forgetbench.task import EvalTask, Resolved

    include = tmp_path / "tasks"
    shutil.copytree(ready_tasks(["zeroshot"], data_dir)[0][0].include, include)
    (include / "pair.yaml").write_text("group: fb_pair\ntask:\n  - fb_piqa\n  - fb_arc_easy\n")
    h = resolve_model(str(tiny_model))

    def run(name, limit=None):
        ready = [Resolved(EvalTask(name, "acc"), include, name, data_dir, "x")]
        return evaluate(h.model, h.tokenizer, ready, EvalSettings(batch_size=4, limit=limit))[0][name]

    arc, piqa, pair = run("fb_arc_easy"), run("fb_piqa"), run("fb_pair")
    shifted = [{**i, "doc_id": i["doc_id"] + len(arc)} for i in piqa]     # fb_arc_easy sorts before fb_piqa
    strip = lambda rows: [{k: v for k, v in i.items() if k != "prompt"} for i in rows]  # noqa: E731
    assert strip(pair) == strip(arc + shifted)
    limited = run("fb_pair", limit=5)
    assert [i["doc_id"] for i in limited] == subset_indices("fb_pair", len(pair), 5)
    assert strip(limited) == [i for i in strip(pair) if i["doc_id"] in {x["doc_id"] for x in limited}]


def test_group_items_are_drawn_from_the_concatenation_of_the_leaves():
    from forgetbench.runner.evaluation import _leaf_samples, _refuse_shared_leaves
    assert _leaf_samples([0, 5, 6], {"a": 5, "b": 3, "c": 4}) == {"a": [0], "b": [0, 1]}     # c: none drawn
    assert _leaf_samples([4, 8, 11], {"a": 5, "b": 3, "c": 4}) == {"a": [4], "c": [0, 3]}
    assert _leaf_samples(None, {"a": 5, "b": 3}) == {"a": None, "b": None}                   # every item
    with pytest.raises(UserError, match="fb_pair and fb_piqa both contain lm-eval's fb_piqa"):
        _refuse_shared_leaves({"fb_pair": {"fb_arc_easy": 0, "fb_piqa": 0}, "fb_piqa": {"fb_piqa": 0}})


def test_two_registered_tasks_that_run_as_one_are_refused(monkeypatch):
    from forgetbench.task import EvalTask, Suite
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    twins = Suite("twins", "two names, one lm-eval task", (EvalTask("a", "acc", hub="boolq"),
                                                           EvalTask("b", "acc", hub="boolq")))
    with pytest.raises(UserError, match="More than one registered task runs as boolq: a -> boolq; b -> boolq"):
        plan_evaluations(None, [twins], None)
