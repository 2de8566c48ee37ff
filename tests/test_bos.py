"""Whether a model's inputs begin with a BOS token: derived once from its own metadata (a GGUF's
tokenizer.ggml.add_bos_token, else its tokenizer files), kept on its handle, recorded in the run's spec, and
followed alike by training examples, KL's prompts and lm-eval's inputs."""

import json
import shutil

import pytest
from conftest import needs_smollm2, smollm2_gguf
from forgetbench.core.errors import UserError
from forgetbench.toolbox import models
from forgetbench.toolbox.encoding import encode_pair, encode_prompt, encode_text
from forgetbench.toolbox.model_sources import bos_convention, resolve_model

BYTE_VOCAB = {"<|endoftext|>": 0, "<|im_start|>": 1, "a": 2, "b": 3, "ab": 4, "Ġ": 5, "Ġa": 6}


def vocab_folder(folder, add_bos_token):
    """A model folder whose tokenizer is GPT-2 style vocabulary files (no tokenizer.json), so that its
    tokenizer_config.json's add_bos_token is what decides."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (folder / "vocab.json").write_text(json.dumps(BYTE_VOCAB))
    (folder / "merges.txt").write_text("#version: 0.2\na b\nĠ a\n")
    config = {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|im_start|>", "eos_token": "<|endoftext|>",
              "unk_token": "<|endoftext|>", "add_bos_token": add_bos_token}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def prepending_copy(tiny_model, folder):
    """The tiny model with a tokenizer.json whose post-processor prepends its BOS <|im_start|> (as the micro
    model's prepends <bos>)."""
    shutil.copytree(tiny_model, folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    spec["post_processor"] = {"type": "TemplateProcessing",
                              "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}}],
                              "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                       {"Sequence": {"id": "B", "type_id": 1}}],
                              "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1],
                                                                  "tokens": ["<|im_start|>"]}}}
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    return folder


def gguf_header(path, add_bos_token=None):
    """A GGUF file holding metadata only (no tensors): enough for its BOS flag."""
    from gguf import GGUFWriter
    w = GGUFWriter(str(path), "llama")
    if add_bos_token is not None:
        w.add_bool("tokenizer.ggml.add_bos_token", add_bos_token)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def bos_model(tiny_model, tmp_path_factory):
    return prepending_copy(tiny_model, tmp_path_factory.mktemp("bos") / "tiny-with-bos")


# ------------------------------------------------------------------------------------------- the derivation
def test_the_micro_model_prepends_its_bos_as_its_tokenizer_json_says(micro_base):
    reason = "the tokenizer prepends BOS '<bos>' (its post-processor)"
    assert bos_convention("micro") == (True, reason)                     # planned: from its files alone
    assert (micro_base.adds_bos, micro_base.adds_bos_reason) == (True, reason)
    bos = micro_base.tokenizer.bos_token_id
    assert encode_prompt(micro_base.tokenizer, "alice")[0] == bos
    assert micro_base.tokenizer.add_bos_token is False                   # the attribute says otherwise: not read


@needs_smollm2
def test_smollm2s_gguf_says_no_bos_although_its_tokenizer_has_one():
    assert bos_convention(str(smollm2_gguf())) == (False, "the GGUF's tokenizer.ggml.add_bos_token = false")
    assert bos_convention("smollm2-135m") == (False, "the GGUF's tokenizer.ggml.add_bos_token = false")


@pytest.mark.parametrize("flag", [True, False])
def test_a_tokenizer_config_decides_where_there_is_no_tokenizer_json(flag, tmp_path):
    folder = vocab_folder(tmp_path / "m", flag)
    adds, reason = bos_convention(str(folder))
    assert adds is flag
    assert reason == (f"the tokenizer {'prepends' if flag else 'adds no'} BOS '<|im_start|>' "
                      f"(its tokenizer config's add_bos_token = {str(flag).lower()})")


def test_a_tokenizer_json_post_processor_decides(tiny_model, bos_model):
    assert bos_convention(str(tiny_model)) == (
        False, "the tokenizer adds no BOS '<|im_start|>' (its post-processor)")
    assert bos_convention(str(bos_model)) == (
        True, "the tokenizer prepends BOS '<|im_start|>' (its post-processor)")
    assert (resolve_model(str(bos_model)).adds_bos, resolve_model(str(tiny_model)).adds_bos) == (True, False)


def test_a_ggufs_flag_wins_over_its_tokenizer_files_and_the_tokenizer_is_made_to_follow(tiny_model, tmp_path):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model)                 # adds no BOS
    loaded = []

    def load():
        loaded.append(1)
        return tok
    assert models.bos_convention(load, gguf_header(tmp_path / "a.gguf", True)) == (
        True, "the GGUF's tokenizer.ggml.add_bos_token = true")
    assert loaded == []                                              # the flag alone decides
    models.follow_bos(tok, True)
    assert tok("ab")["input_ids"][0] == tok.bos_token_id and models.tokenizer_adds_bos(tok)
    assert tok("ab", add_special_tokens=False)["input_ids"][0] != tok.bos_token_id
    models.follow_bos(tok, False)
    assert not models.tokenizer_adds_bos(tok)
    # no flag in the file: its tokenizer decides
    assert models.bos_convention(load, gguf_header(tmp_path / "b.gguf")) == (
        False, "the tokenizer adds no BOS '<|im_start|>' (its post-processor)")
    assert loaded == [1]


def test_a_rewritten_gguf_is_read_again(tmp_path):
    import os
    path = gguf_header(tmp_path / "m.gguf", True)
    assert models.gguf_bos(path)[0] is True
    gguf_header(path, False)
    os.utime(path, ns=(1, 1))               # a new modification time even where the clock did not move on
    assert models.gguf_bos(path)[0] is False


def test_a_registered_model_that_does_not_say_where_its_files_are_is_refused(monkeypatch, micro_base):
    from dataclasses import replace

    from forgetbench.toolbox.model_sources import sources
    monkeypatch.setitem(sources._entries, "micro", replace(sources.get("micro"), files=None))
    with pytest.raises(UserError, match="'micro' does not say where its files are"):
        bos_convention("micro")


def test_a_tokenizer_without_a_bos_token_never_gets_one(tiny_model):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.bos_token = None
    assert models.tokenizer_bos(tok) == (False, "the tokenizer has no BOS token")
    with pytest.raises(UserError, match="cannot be made to prepend"):
        models.follow_bos(tok, True)


# ------------------------------------------------------------------------------------------------ the spec
def test_the_spec_records_a_model_without_bos_and_keeps_the_id_of_one_with(tiny_model, bos_model):
    from forgetbench.runner.stages import RunRequest, plan_run
    plain = plan_run(RunRequest(method="naive_sft", model=str(tiny_model), target="micro-cipher")).specs[0]
    with_bos = plan_run(RunRequest(method="naive_sft", model=str(bos_model), target="micro-cipher")).specs[0]
    micro = plan_run(RunRequest(method="naive_sft", model="micro", target="micro-cipher")).specs[0]
    assert plain.placement == {"device": "cpu", "dtype": "float32", "bos": False}
    assert with_bos.placement == micro.placement == {"device": "cpu", "dtype": "float32"}


# ------------------------------------------------------------------------------- every path follows the model
@pytest.fixture()
def built_hflms(monkeypatch):
    """Every HFLM forgetbench's evaluation builds, kept for the test to question."""
    from lm_eval.models.huggingface import HFLM
    built, init = [], HFLM.__init__

    def keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(self)
    monkeypatch.setattr(HFLM, "__init__", keep)
    return built


@pytest.mark.parametrize("which", ["tiny", "with_bos"])
def test_training_kl_prompts_and_lm_evals_inputs_agree_with_the_model(which, tiny_model, bos_model, built_hflms):
    from forgetbench.core.settings import EvalSettings
    from forgetbench.runner.evaluation import run_lm_eval
    from forgetbench.task import resolve, suites
    h = resolve_model(str(tiny_model if which == "tiny" else bos_model))
    tok, bos = h.tokenizer, h.tokenizer.bos_token_id
    suite = suites.get("micro-zeroshot")
    run_lm_eval(h.model, tok, resolve([(suite.tasks[0], suite.include_path)], None)[0], EvalSettings(limit=2))
    (lm,) = built_hflms
    firsts = {"prompt (training, KL)": encode_prompt(tok, "ab a")[0],
              "pair (training)": encode_pair(tok, "ab", "a")["input_ids"][0],
              "document (replay)": encode_text(tok, "ab a")["input_ids"][0],
              "lm-eval context": lm.tok_encode("ab a")[0]}
    assert {k: v == bos for k, v in firsts.items()} == dict.fromkeys(firsts, h.adds_bos)
    assert lm.add_bos_token is h.adds_bos is (which == "with_bos")
