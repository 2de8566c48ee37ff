"""Each added method's hook against an independent computation on a micro-world batch."""

import copy
import re

import pytest
import torch

from bench.losses import cross_entropy, logits
from bench.method import build_method, methods
from bench.training import trainable_names


def perturbed(model, scale=0.01, seed=0):
    """A copy of the model with every weight moved a little (so penalties and KL terms are not zero)."""
    gen = torch.Generator().manual_seed(seed)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return out


def trained(method, model):
    model = method.trainable(model) or model
    return {n for n, p in model.named_parameters() if p.requires_grad}, model


def test_l2sp_penalty(micro_batch):
    model, batch, ctx = micro_batch
    moved = perturbed(model)
    start = dict(ctx.base.model.named_parameters())
    with torch.no_grad():
        sq = sum(float(((p - start[n]) ** 2).sum()) for n, p in moved.named_parameters())
        got = build_method("l2sp", {"lam": "0.3"}).loss(moved, batch, ctx) - cross_entropy(moved, batch)
    assert float(got) == pytest.approx(0.3 / 2 * sq, rel=1e-4)


def test_ewc_fisher_and_penalty(micro_batch):
    model, batch, ctx = micro_batch
    method = build_method("ewc", {"lam": "2", "fisher_samples": "3"})
    method.prepare(ctx)
    refs = ctx.context_free_samples(3, 1.0, 48)
    base = copy.deepcopy(ctx.base.model)
    params = dict(base.named_parameters())
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    for ex in refs:                            # per sequence: squared gradient of its log-likelihood
        ids = torch.tensor([ex["input_ids"]])
        logp = torch.log_softmax(base(input_ids=ids).logits[0, :-1].float(), -1)
        target = torch.tensor(ex["input_ids"][1:])
        ll = logp[torch.arange(len(target)), target][torch.tensor(ex["labels"][1:]) != -100].sum()
        grads = torch.autograd.grad(ll, list(params.values()), allow_unused=True)
        for (n, _), g in zip(params.items(), grads):
            if g is not None:
                expected[n] += g ** 2 / len(refs)
    for n in expected:
        scale = float(expected[n].abs().max())
        assert torch.allclose(method.fisher[n], expected[n], rtol=1e-3, atol=1e-5 * scale), n
    moved = perturbed(model)
    start = dict(ctx.base.model.named_parameters())
    with torch.no_grad():
        pen = sum(float((expected[n] * (p - start[n]) ** 2).sum()) for n, p in moved.named_parameters())
        got = method.loss(moved, batch, ctx) - cross_entropy(moved, batch)
    assert float(got) == pytest.approx(2 / 2 * pen, rel=1e-3)


def test_lwf_distills_on_response_tokens(micro_batch):
    model, batch, ctx = micro_batch
    moved = perturbed(model, 0.05)
    t, lam = 2.0, 0.7
    with torch.no_grad():
        got = build_method("lwf", {"lam": str(lam), "temperature": str(t)}).loss(moved, batch, ctx)
        z = moved(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].double()
        z0 = logits(ctx.base.model, batch)[:, :-1].double()
        p0, p = torch.softmax(z0 / t, -1), torch.softmax(z / t, -1)
        kl = (p0 * (p0.log() - p.log())).sum(-1)
        mask = batch["labels"][:, 1:] != -100
        expected = cross_entropy(moved, batch) + lam * t * t * kl[mask].mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-4)


def test_flow_weights_and_loss(micro_batch):
    from bench.method import Context
    model, _, full = micro_batch
    # 64 target examples keep the by-hand loop short
    ctx = Context(base=full.base, target=full.target, seed=0, examples=64)
    method = build_method("flow", {})
    method.prepare(ctx)
    rows = method.mixture(ctx)["target"]
    base = ctx.base.model
    losses = []
    with torch.no_grad():
        for ex in ctx.target_examples:          # one example at a time: mean response-token NLL
            ids = torch.tensor([ex["input_ids"]])
            lab = torch.tensor(ex["labels"][1:])
            logp = torch.log_softmax(base(input_ids=ids).logits[0, :-1].float(), -1)
            nll = -logp[torch.arange(len(lab)), ids[0, 1:]]
            losses.append(float(nll[lab != -100].mean()))
    tau = float(torch.tensor(losses).median())
    for row, loss in zip(rows, losses):
        assert row["weight"] == pytest.approx(float(torch.exp(torch.tensor(-loss / tau))), rel=1e-4)
    assert ctx.notes["flow"]["tau"] == pytest.approx(tau, rel=1e-5)
    from bench.data import Collator
    wb = Collator(ctx.tokenizer.pad_token_id)(rows[:4])
    with torch.no_grad():
        logits = model(input_ids=wb["input_ids"], attention_mask=wb["attention_mask"]).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), wb["labels"][:, 1:], ignore_index=-100,
                                                reduction="none")
        expected = (wb["weight"] * nll.sum(1)).sum() / (wb["labels"][:, 1:] != -100).sum()
        assert float(method.loss(model, wb, ctx)) == pytest.approx(float(expected), rel=1e-5)


def test_selective_methods_train_exactly_their_matrices(micro_batch):
    model, _, _ = micro_batch
    names = [n for n, _ in model.named_parameters()]
    attn, _ = trained(build_method("attn_only", {}), copy.deepcopy(model))
    assert attn == {n for n in names if re.search(r"self_attn\.[qkvo]_proj", n)} and len(attn) == 12
    mlp, _ = trained(build_method("mlp_gate_up", {}), copy.deepcopy(model))
    assert mlp == {n for n in names if "gate_proj" in n or "up_proj" in n} and len(mlp) == 6
    bottom, _ = trained(build_method("freeze_bottom", {"k": "1"}), copy.deepcopy(model))
    assert bottom == {n for n in names if "embed_tokens" not in n and "layers.0." not in n}
    with pytest.raises(ValueError, match="all 3 layers"):
        trained(build_method("freeze_bottom", {}), copy.deepcopy(model))    # k=3 on a 3-layer model


def test_hft_trains_a_seeded_half_of_each_layer(micro_batch):
    model, _, _ = micro_batch
    sel, _ = trained(build_method("hft", {}), copy.deepcopy(model))
    assert sel == set(trained(build_method("hft", {}), copy.deepcopy(model))[0])     # deterministic
    for layer in range(3):
        mine = {n.split(".")[-2] for n in sel if f"layers.{layer}." in n}
        assert len(mine & {"q_proj", "k_proj", "v_proj", "o_proj"}) == 2
        assert len(mine & {"gate_proj", "up_proj", "down_proj"}) == 1 + layer % 2
        assert len(mine & {"input_layernorm", "post_attention_layernorm"}) == 1
    assert not any("embed_tokens" in n or n == "model.norm.weight" for n in sel)
    others = [trained(build_method("hft", {"selection_seed": str(s)}), copy.deepcopy(model))[0] for s in (1, 2, 3)]
    assert any(o != sel for o in others)


def test_wise_ft_interpolates_and_grids(micro_batch):
    model, _, ctx = micro_batch
    moved = perturbed(model)
    grid = build_method("wise_ft", {}).variants()
    assert [v.alpha for v in grid] == ["0.25", "0.5", "0.75", "1"]
    assert [v.params() for v in grid][0] == {"alpha": "0.25"}
    single = build_method("wise_ft", {"alpha": "0.25"})
    assert single.variants() == [single]
    out = single.finalize(copy.deepcopy(moved), ctx.base.model)
    start, end = dict(ctx.base.model.named_parameters()), dict(moved.named_parameters())
    for n, p in out.named_parameters():
        assert torch.allclose(p, start[n] + 0.25 * (end[n] - start[n]), atol=1e-7)
    from bench.errors import UserError
    with pytest.raises(UserError, match="alpha"):
        build_method("wise_ft", {"alpha": "half"})


def test_lora_adapters_and_merge(micro_batch):
    model, batch, ctx = micro_batch
    method = build_method("lora", {"rank": "4", "alpha": "8"})
    names, wrapped = trained(method, copy.deepcopy(model))
    assert names and all(".lora_A." in n or ".lora_B." in n for n in names)
    assert set(trainable_names(wrapped)) == {n for n, _ in model.named_parameters() if re.search(r"_proj\.weight$", n)}
    with torch.no_grad():                               # give the adapters non-zero weights, then merge
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    a = wrapped.base_model.model.model.layers[0].self_attn.q_proj
    delta = (a.lora_B["default"].weight @ a.lora_A["default"].weight) * (8 / 4)
    before = a.base_layer.weight.detach().clone()
    merged = method.finalize(wrapped, ctx.base.model)
    assert type(merged) is type(model)
    assert {n for n, _ in merged.named_parameters()} == {n for n, _ in model.named_parameters()}
    assert torch.allclose(merged.model.layers[0].self_attn.q_proj.weight, before + delta, atol=1e-6)


def test_registry_has_fifteen_documented_methods():
    names = methods.names()
    assert len(names) >= 15
    for n in names:
        cls = methods.get(n)
        assert cls.summary() and cls.source() and cls.cost in ("cheap", "moderate", "expensive")


def test_knobs_of_the_core_methods_are_settable_and_recorded():
    assert build_method("context_free", {"temperature": "0.7", "ratio": "0.5"}).params()["temperature"] == 0.7
    for name in ("contextual_synthetic", "pretrain_replay"):
        assert build_method(name, {"ratio": "0.25"}).params()["ratio"] == 0.25
    kl = build_method("explicit_kl", {"lam": "0.1", "direction": "reverse"}).params()
    assert kl["lam"] == 0.1 and kl["direction"] == "reverse"


def test_a_knob_may_not_hide_a_method_attribute():
    from bench.method import Method, register
    with pytest.raises(TypeError, match="source"):
        @register("clashing_knob")
        class Clash(Method):
            """x
            Source: y"""
            source: str = "samples"
    assert "clashing_knob" not in methods.names()
