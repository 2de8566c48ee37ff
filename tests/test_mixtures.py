"""What methods train on: the data mixtures, context-free sampling, the Context, and building methods from --set."""

import pytest
from forgetbench.core.errors import UserError
from forgetbench.core.settings import parse_pairs
from forgetbench.method import build_method, methods
from forgetbench.tasks.micro.world import build_world
from forgetbench.toolbox.encoding import IGNORE

CORE = ["naive_sft", "context_free", "contextual_synthetic", "pretrain_replay", "explicit_kl"]

def test_core_methods_are_registered():
    assert set(CORE) <= set(methods.names())
    for name in CORE:
        cls = methods.get(name)
        assert cls.summary() and cls.source(), name


def test_registry_has_fifteen_documented_methods():
    names = methods.names()
    assert len(names) >= 15
    for n in names:
        cls = methods.get(n)
        assert cls.summary() and cls.source() and cls.cost in ("cheap", "moderate", "expensive")


def test_naive_sft_trains_on_target_responses_only(ctx):
    mix = build_method("naive_sft", {}).mixture(ctx)
    assert list(mix) == ["target"] and len(mix["target"]) == 2000
    tok = ctx.tokenizer
    ex, pair = mix["target"][0], ctx.target_pairs[0]
    learned = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != IGNORE]
    assert tok.decode(learned[:-1]) == pair["response"] and learned[-1] == tok.eos_token_id
    assert tok.decode([t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab == IGNORE],
                      skip_special_tokens=True) == pair["prompt"]


def test_context_free_samples_start_from_the_start_token(ctx):
    m = build_method("context_free", {"ratio": "0.25"})
    mix = m.mixture(ctx)
    cf = mix["context_free"]
    assert len(mix["target"]) == 2000 and len(cf) == 500
    start = ctx.base.start_token_id
    assert all(e["input_ids"][0] == start and e["labels"][0] == IGNORE for e in cf)
    assert all(e["labels"][1:] == e["input_ids"][1:] for e in cf)
    # samples come from the base model: mostly fluent world sentences, no unknown words
    text = ctx.tokenizer.decode(cf[0]["input_ids"], skip_special_tokens=True)
    assert "<unk>" not in text and len(text.split()) > 2
    # cached and shared: asking again gives the same sequences without sampling
    assert m.mixture(ctx)["context_free"] == cf
    assert build_method("context_free", {"ratio": "0"}).mixture(ctx)["context_free"] == []


def test_temperature_changes_context_free_samples(ctx):
    a = build_method("context_free", {"ratio": "0.05"}).mixture(ctx)["context_free"]
    b = build_method("context_free", {"ratio": "0.05", "temperature": "0.5"}).mixture(ctx)["context_free"]
    assert a != b


def test_contextual_synthetic_continues_target_prompts(ctx):
    mix = build_method("contextual_synthetic", {"ratio": "0.05"}).mixture(ctx)
    prompts = {p["prompt"] for p in ctx.target_pairs}
    assert len(mix["contextual"]) == 100
    for e in mix["contextual"]:
        n_prompt = e["labels"].index(next(x for x in e["labels"] if x != IGNORE))
        assert ctx.tokenizer.decode(e["input_ids"][:n_prompt], skip_special_tokens=True) in prompts


def test_pretrain_replay_draws_fresh_world_documents(ctx):
    mix = build_method("pretrain_replay", {"ratio": "0.1"}).mixture(ctx)
    replay = mix["replay"]
    assert len(replay) == 200
    facts = set(build_world().fact_sentences())
    text = ctx.tokenizer.decode(replay[0]["input_ids"], skip_special_tokens=True)
    if not text.startswith("question"):
        sentences = [s.strip() + " ." for s in text.split(" .") if s.strip()]
        assert sentences and all(s in facts for s in sentences)
    assert all(e["labels"][1:] == e["input_ids"][1:] for e in replay)
    short = build_method("pretrain_replay", {"ratio": "0.1", "max_tokens": "5"}).mixture(ctx)["replay"]
    assert [e["input_ids"] for e in short] == [e["input_ids"][:5] for e in replay]   # the same documents, cut
    assert max(len(e["input_ids"]) for e in replay) > 5


def test_hyperparameters_are_typed_and_checked():
    m = build_method("context_free", {"ratio": "0.5", "temperature": "0.7"})
    assert m.params() == {"ratio": 0.5, "temperature": 0.7, "max_new_tokens": 48}
    with pytest.raises(UserError, match="Did you mean 'ratio'"):
        build_method("context_free", {"raito": "1"})
    with pytest.raises(UserError, match="must be a number"):
        build_method("context_free", {"ratio": "lots"})
    with pytest.raises(UserError, match="direction"):
        build_method("explicit_kl", {"direction": "sideways"})
    with pytest.raises(UserError, match="max_tokens >= 1"):
        build_method("pretrain_replay", {"max_tokens": "0"})
    with pytest.raises(UserError, match="no hyperparameter"):
        build_method("naive_sft", {"lam": "1"})
    with pytest.raises(UserError, match="not a setting of method 'naive_sft'; use --budget lr=1"):
        build_method("naive_sft", {"lr": "1"})
    with pytest.raises(UserError, match="Malformed --set"):
        parse_pairs(["ratio"], "--set")
    with pytest.raises(UserError, match="Did you mean 'context_free'"):
        build_method("context_fre", {})


def test_knobs_of_the_core_methods_are_settable_and_recorded():
    assert build_method("context_free", {"temperature": "0.7", "ratio": "0.5"}).params()["temperature"] == 0.7
    for name in ("contextual_synthetic", "pretrain_replay"):
        assert build_method(name, {"ratio": "0.25"}).params()["ratio"] == 0.25
    kl = build_method("explicit_kl", {"lam": "0.1", "direction": "reverse"}).params()
    assert kl["lam"] == 0.1 and kl["direction"] == "reverse"
