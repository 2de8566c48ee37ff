"""Which parameters each method trains, what it does to the model after training, and registration checks."""

import copy
import re

import pytest
import torch
from conftest import perturbed
from forgetbench.core.errors import UserError
from forgetbench.method import build_method, methods
from forgetbench.toolbox.training import trainable_names


def trained(method, model):
    model = method.trainable(model) or model
    return {n for n, p in model.named_parameters() if p.requires_grad}, model


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
    grid = build_method("wise_ft", {"alpha": "0.25,0.5,0.75,1.0"}).variants()
    assert [v.alpha for v in grid] == ["0.25", "0.5", "0.75", "1"]
    assert [v.params() for v in grid][0] == {"alpha": "0.25"}
    single = build_method("wise_ft", {"alpha": "0.25"})
    assert single.variants() == [single]
    out = single.finalize(copy.deepcopy(moved), ctx.base.model)
    start, end = dict(ctx.base.model.named_parameters()), dict(moved.named_parameters())
    for n, p in out.named_parameters():
        assert torch.allclose(p, start[n] + 0.25 * (end[n] - start[n]), atol=1e-7)
    with pytest.raises(UserError, match="alpha"):
        build_method("wise_ft", {"alpha": "half"})


def test_lines_scales_each_blocks_update_by_its_depth(micro_batch):
    model, _, ctx = micro_batch
    moved = perturbed(model)
    grid = build_method("lines", {"alpha": "0,0.25", "beta": "0.6"}).variants()
    assert [v.params() for v in grid] == [{"alpha": "0", "beta": 0.6}, {"alpha": "0.25", "beta": 0.6}]
    out = grid[1].finalize(copy.deepcopy(moved), ctx.base.model)
    start, end = dict(ctx.base.model.named_parameters()), dict(moved.named_parameters())
    share = {0: 0.25, 1: 0.25 + 0.6 / 2, 2: 0.25 + 0.6}           # 3 blocks: 0.25 + 0.6 * l / 2
    for n, p in out.named_parameters():
        m = re.search(r"layers\.(\d)\.", n)
        s = share[int(m.group(1))] if m else 0.25                 # embeddings and the final norm: the shallowest
        assert torch.allclose(p, start[n] + s * (end[n] - start[n]), atol=1e-6), n
    with pytest.raises(UserError, match="beta"):
        build_method("lines", {"beta": "1.5"})


def test_dare_drops_a_fraction_of_the_update_and_rescales_the_rest(micro_batch):
    model, _, ctx = micro_batch
    moved = perturbed(model)
    dare = build_method("dare", {"p": "0.7"})
    out = dare.finalize(copy.deepcopy(moved), ctx.base.model)
    start, end = dict(ctx.base.model.named_parameters()), dict(moved.named_parameters())
    kept = total = 0
    for n, p in out.named_parameters():
        delta, got = end[n] - start[n], p - start[n]
        keep = got != 0
        assert torch.allclose(got[keep], delta[keep] / 0.3, rtol=1e-4, atol=1e-6), n
        kept, total = kept + int(keep.sum()), total + delta.numel()
    assert abs(kept / total - 0.3) < 4 * (0.3 * 0.7 / total) ** 0.5          # a binomial draw at rate 1 - p
    again = dare.finalize(copy.deepcopy(moved), ctx.base.model)               # the same update: the same mask
    assert all(torch.equal(a, b) for a, b in zip(out.parameters(), again.parameters()))
    other = dare.finalize(perturbed(copy.deepcopy(moved)), ctx.base.model)    # another update: another mask
    assert any(not torch.equal(a != b, c != b) for a, b, c in
               zip(out.parameters(), ctx.base.model.parameters(), other.parameters()))
    for bad in ("1", "-0.1", "nan"):
        with pytest.raises(UserError, match="p values"):
            build_method("dare", {"p": bad})


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


def test_a_knob_may_not_hide_a_method_attribute():
    from forgetbench.method import Method, register
    with pytest.raises(TypeError, match="source"):
        @register("clashing_knob")
        class Clash(Method):
            """x
            Source: y"""
            source: str = "samples"
    assert "clashing_knob" not in methods.names()
