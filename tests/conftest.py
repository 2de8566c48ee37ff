import os
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[var] = "1"

# Under pytest-xdist (`-n 2`) each worker gets one core's share: two torch processes with two threads each on two
# cores slow each other several-fold.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("FORGETBENCH_THREADS"):
    os.environ["FORGETBENCH_THREADS"] = "1"

from forgetbench.core import threads  # noqa: E402

threads.configure()         # the same thread settings as the CLI, before anything imports torch

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """One cache for the whole session: $FORGETBENCH_CACHE when set (entries are content-addressed and checked,
    so a user's cache is safe to share), else a temporary folder."""
    old = os.environ.get("FORGETBENCH_CACHE")
    path = Path(old) if old else tmp_path_factory.mktemp("forgetbench-cache")
    os.environ["FORGETBENCH_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("FORGETBENCH_CACHE", None)


@pytest.fixture(scope="session")
def micro_base(session_cache):
    """The shipped micro base model, loaded once."""
    from forgetbench.toolbox.model_sources import resolve_model
    return resolve_model("micro")


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    """A cache of its own for one test (for tests that corrupt cached files)."""
    monkeypatch.setenv("FORGETBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


FIXTURE_DATA = Path(__file__).parent / "fixtures" / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def build_tiny_model(folder: Path) -> Path:
    """A tiny random-init Llama with a byte-level BPE tokenizer (trained on the fixture text), special
    tokens as SmolLM2's (<|endoftext|> 0, <|im_start|> 1, <|im_end|> 2 = eos = pad) and a ChatML template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    text = [p.read_text() for p in sorted(FIXTURE_DATA.rglob("*")) if p.is_file()]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(text, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<|endoftext|>")
    fast.chat_template = CHATML
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=1024, bos_token_id=1, eos_token_id=2,
                                         pad_token_id=2, tie_word_embeddings=True))
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return FIXTURE_DATA


def smollm2_gguf() -> Path | None:
    p = SHARED / "models" / "smollm2-135m-instruct-q4_1" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return p if p.is_file() else None


needs_smollm2 = pytest.mark.skipif(smollm2_gguf() is None, reason="../shared/models SmolLM2 GGUF not present")
needs_shared_data = pytest.mark.skipif(not (SHARED / "data" / "gsm8k" / "test.jsonl").is_file(),
                                       reason="../shared/data not present")


@pytest.fixture()
def micro_batch(micro_base):
    """(a trainable copy of the micro base model, a batch of 4 micro-cipher training examples, a method Context)."""
    from forgetbench.method import Context
    from forgetbench.task import targets
    from forgetbench.toolbox.encoding import Collator
    ctx = Context(base=micro_base, target=targets.get("micro-cipher"), seed=0)
    batch = Collator(micro_base.tokenizer.pad_token_id)(ctx.target_examples[:4])
    return micro_base.trainable_copy(), batch, ctx


@pytest.fixture(scope="module")
def ctx(micro_base):
    """A method Context on the micro-cipher target, shared by one test module."""
    from forgetbench.method import Context
    from forgetbench.task import targets
    return Context(base=micro_base, target=targets.get("micro-cipher"), seed=0)


def perturbed(model, scale=0.01, seed=0):
    """A copy of the model with every weight moved a little (so penalties and KL terms are not zero)."""
    import copy

    import torch
    gen = torch.Generator().manual_seed(seed)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return out


def run_together(target, args_per_process: list[tuple], timeout: float = 120) -> None:
    """Run `target(*args, barrier)` in one spawned process per args tuple, all released at the same moment by a
    shared barrier (the race is the point), and require every one to exit cleanly."""
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(len(args_per_process))
    procs = [ctx.Process(target=target, args=(*args, start)) for args in args_per_process]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, f"a racing process exited with {p.exitcode}"


# ----------------------------------------------------------------- a command's checks, with no work done
class Accepted(Exception):
    """Raised where the model would load: every value before it was accepted."""

    def __init__(self, run_plan):
        super().__init__("accepted")
        self.run_plan = run_plan


def _accept(run_plan):
    raise Accepted(run_plan)


def _load(*args, **kwargs):
    pytest.fail("a model was loaded")


@pytest.fixture(scope="module")
def no_work():
    """runner.stages.prepare raises Accepted, and loading a model fails the test (module-wide, for hypothesis)."""
    from forgetbench.runner import stages as runner
    from forgetbench.toolbox import model_sources as sources
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "prepare", _accept)
        mp.setattr(runner, "resolve_model", _load)
        mp.setattr(sources, "resolve_model", _load)
        yield


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return str(tmp_path_factory.mktemp("runs"))
