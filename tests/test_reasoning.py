"""Generation tasks: math-verify checking, pass@1 over samples, the likelihood score, the hf backend's
batching, and the vllm backend's mapping onto vLLM's API."""

import sys
import types

import pytest
import torch
from conftest import SHARED, needs_shared_data
from forgetbench.core.settings import EvalSettings
from forgetbench.runner import reasoning
from forgetbench.task import resolve, suites, targets
from forgetbench.tasks.real.problems import gsm8k_solution
from forgetbench.toolbox import verify
from forgetbench.toolbox.encoding import encode_pair
from forgetbench.toolbox.generation import HFBackend, Sampling, VLLMBackend, cut_at_stop
from forgetbench.toolbox.model_sources import resolve_model
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return resolve_model(str(tiny_model))


@pytest.mark.parametrize("gold,completion,ok", [
    ("\\frac{3}{4}", "so the answer is $\\boxed{0.75}$", True),
    ("1000", "He keeps \\boxed{1,000} stamps.", True),
    ("27", "\\boxed{27}", True),
    ("5", "x = 5, so \\boxed{6}", False),
    ("7", "I do not know.", False),
])
def test_answers_are_checked_with_math_verify(gold, completion, ok):
    assert verify.is_correct(gold, completion) is ok


@pytest.mark.parametrize("completion,ok", [
    ("The answer is $\\boxed{B}$", True), ("so (B) is right. Answer: B", True), ("\\boxed{C}", False), ("A", False)])
def test_multiple_choice_letters_are_checked_with_math_verify(completion, ok):
    assert verify.is_correct("B", completion, ("A", "B", "C", "D")) is ok


def test_medreason_rows_become_reasoning_then_answer():
    from forgetbench.tasks.real.training_pairs import medreason_pair
    row = {"question": "Which vitamin prevents scurvy?", "options": "A. C\nB. D", "reasoning": "Collagen needs C.",
           "answer": "A. C"}
    assert medreason_pair(row) == {"prompt": "Which vitamin prevents scurvy?\nA. C\nB. D",
                                   "response": "Collagen needs C.\n\nAnswer: A. C"}


def test_hub_only_tasks_are_missing_offline_with_the_reason(data_dir):
    ready, missing = resolve([(t, None) for t in suites.get("reasoning").tasks], data_dir)
    assert "gpqa_diamond" not in {r.task.name for r in ready}
    assert missing == {"gpqa_diamond": "needs the hub (Idavidrein/gpqa); it has no local form"}


def test_gsm8k_solutions_end_in_a_boxed_answer_without_calculator_notes():
    text, final = gsm8k_solution("He has 1,200 - 200 = <<1200-200=1000>>1,000 stamps.\n#### 1,000")
    assert final == "1000"
    assert text == "He has 1,200 - 200 = 1,000 stamps.\nThe final answer is $\\boxed{1000}$."
    assert verify.is_correct(final, text)


def test_amc_float_answers_become_integers(data_dir):
    task = next(t for t in suites.get("reasoning").tasks if t.name == "amc23")
    assert task.problems(data_dir)[0]["answer"] == "27"


def test_batched_length_sorted_greedy_equals_one_at_a_time(tiny):
    tok = tiny.tokenizer
    prompts = [tok(t)["input_ids"] for t in ["Tom has", "A box holds 6 eggs and", "What is", "Sara reads 12 pages a"]]
    backend = HFBackend(tiny.model, tok)
    batched = backend.generate(prompts, Sampling(0.0, 12, batch_size=4), seed=0)
    single = [backend.generate([p], Sampling(0.0, 12, batch_size=1), seed=0)[0] for p in prompts]
    assert batched == single
    assert all(0 < len(g) <= 12 for g in batched)


def test_a_sequence_also_ends_at_a_document_separator(tiny, monkeypatch):
    """A sampled document ends at EOS or at the start token where that is a separator (SmolLM2's <|endoftext|>,
    whose EOS is <|im_end|>); the sample cache key is unchanged for models without one."""
    from dataclasses import replace

    from forgetbench.toolbox import generation
    tok = tiny.tokenizer
    prompt = tok("Tom has")["input_ids"]
    free = HFBackend(tiny.model, tok).generate([prompt], Sampling(1.0, 12), seed=0)[0]
    at = next(i for i, t in enumerate(free) if i >= 2 and t not in free[:i] and t != tok.eos_token_id)
    sep = free[at]                      # a token the seeded sample draws first at step at+1
    cut = HFBackend(tiny.model, tok).generate([prompt], Sampling(1.0, 12, also_end=(sep,)), seed=0)[0]
    assert cut == free[:at + 1] and len(free) > at + 1
    assert generation.cut_at_eos([5, 7, 9, 7], (9, 7)) == [5, 7] and generation.cut_at_eos([5, 6], 9) == [5, 6]

    seen = []
    monkeypatch.setattr(generation.JsonCache, "get_or_compute", lambda self, key, f: seen.append(key) or [[1]])
    assert tiny.document_ends == ()                   # its start token is its BOS
    generation.cached_sample(tiny, [prompt], Sampling(1.0, 8), seed=0)
    old_key = generation.stable_hash({"model": tiny.fingerprint, "prompts": [prompt],
                                      "sampling": {"temperature": 1.0, "max_new_tokens": 8, "batch_size": 64,
                                                   "top_k": 0, "top_p": 1.0}, "seed": 0, "backend": "hf"}, 24)
    separated = replace(tiny, start_token_id=sep)     # a document separator, neither BOS nor EOS
    assert separated.document_ends == (sep,)
    generation.cached_sample(separated, [prompt], Sampling(1.0, 8), seed=0)
    assert seen[0] == old_key and seen[1] != old_key


def test_sampling_is_seeded_and_returns_input_order(tiny):
    tok = tiny.tokenizer
    prompts = [tok("Question:")["input_ids"], tok("A much longer prompt about eggs and boxes")["input_ids"]] * 3
    b = HFBackend(tiny.model, tok)
    one = b.generate(prompts, Sampling(1.0, 8, batch_size=2), seed=5)
    assert one == b.generate(prompts, Sampling(1.0, 8, batch_size=2), seed=5)
    assert one != b.generate(prompts, Sampling(1.0, 8, batch_size=2), seed=6)


def test_stop_strings_cut_the_text():
    assert cut_at_stop("4 apples.\nQuestion: next", ("\nQuestion:",)) == "4 apples."
    assert cut_at_stop("no stop here", ("\nQuestion:",)) == "no stop here"


class Scripted:
    """A backend that answers each prompt from a script: the k-th sample of a problem gets script[k]."""

    name = "scripted"

    def __init__(self, tokenizer, answers):
        self.tok, self.answers = tokenizer, answers

    def generate(self, prompts, sampling, seed, stop=(), desc=""):
        self.sampling = sampling
        return [self.tok(self.answers[i % len(self.answers)], add_special_tokens=False)["input_ids"]
                for i in range(len(prompts))]


def test_pass_at_1_is_averaged_over_samples(tiny, data_dir, monkeypatch):
    """aime24 fixture: one problem (answer 42); of 4 samples, 3 are right -> pass@1 0.75, counted correct."""
    script = ["\\boxed{42}", "\\boxed{41}", "so 42", "The answer is $\\boxed{42}$"]
    fake = Scripted(tiny.tokenizer, script)
    monkeypatch.setattr(reasoning, "backend", lambda name, m, t: fake)
    ready, _ = resolve([(t, None) for t in suites.get("reasoning").tasks if t.name == "aime24"], data_dir)
    settings = EvalSettings(temperature=0.7, samples_per_problem=4, max_new_tokens=50)
    items = reasoning.evaluate_generation(tiny.model, tiny.tokenizer, ready, settings)["aime24"]
    assert len(items) == 1 and items[0]["score"] == 0.75 and items[0]["correct"] is True
    assert items[0]["completions"] == script and items[0]["reference"] == "42"
    assert (fake.sampling.temperature, fake.sampling.max_new_tokens) == (0.7, 50)


def test_generation_items_with_the_chat_template(tiny, data_dir):
    ready, _ = resolve([(t, None) for t in suites.get("reasoning").tasks], data_dir)
    out = reasoning.evaluate_generation(tiny.model, tiny.tokenizer, ready, EvalSettings(max_new_tokens=4, limit=2))
    assert set(out) == {"gsm8k", "math500", "aime24", "aime25", "amc23"}
    assert [i["doc_id"] for i in out["gsm8k"]] == sorted(i["doc_id"] for i in out["gsm8k"]) and len(out["gsm8k"]) == 2
    assert all(i["score"] in (0.0, 1.0) and len(i["completions"]) == 1 for v in out.values() for i in v)
    text = reasoning.question_prompt(tiny.tokenizer, "Q" + reasoning.INSTRUCTION, chat=True)
    assert text.startswith("<|im_start|>user\nQ\nPlease reason step by step") and text.endswith("assistant\n")


def test_likelihood_score_equals_an_independent_computation(tiny, data_dir):
    task = targets.get("gsm8k").evals[1]
    ready, _ = resolve([(task, None)], data_dir)
    items = reasoning.evaluate_generation(tiny.model, tiny.tokenizer, ready, EvalSettings(batch_size=2))[task.name]
    problems = task.problems(data_dir)
    assert len(items) == len(problems)
    for it, p in zip(items, problems):
        row = encode_pair(tiny.tokenizer, p["question"] + reasoning.INSTRUCTION, p["response"], chat=True)
        ids = torch.tensor([row["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(tiny.model(ids).logits[0, :-1].double(), -1)
        n_prompt = row["labels"].index(next(x for x in row["labels"] if x != -100))
        want = [logp[t - 1, row["input_ids"][t]].item() for t in range(n_prompt, len(row["input_ids"]))]
        assert it["score"] == pytest.approx(sum(want) / len(want), abs=1e-5)
        assert it["correct"] is None


def test_vllm_backend_maps_onto_vllms_offline_api(tiny, monkeypatch):
    calls = {}

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class LLM:
        def __init__(self, **kw):
            calls["llm"] = kw

        def generate(self, prompts, params, use_tqdm=True):
            calls["prompts"], calls["params"] = prompts, params
            out = lambda ids: types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=ids)])  # noqa: E731
            return [out([5, 6, 2, 7]) for _ in prompts]

    fake = types.ModuleType("vllm")
    fake.__version__ = "0.0-fake"
    fake.LLM, fake.SamplingParams = LLM, SamplingParams
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    b = VLLMBackend(tiny.model, tiny.tokenizer)
    out = b.generate([[1, 2], [3]], Sampling(0.5, 9), seed=2, stop=("\nQ:",))
    assert out == [[5, 6, 2], [5, 6, 2]]                          # cut after the first EOS (id 2)
    assert calls["llm"]["dtype"] == "float32"
    assert [p["prompt_token_ids"] for p in calls["prompts"]] == [[1, 2], [3]]
    kw = calls["params"][0].kw
    assert (kw["temperature"], kw["top_p"], kw["top_k"], kw["max_tokens"], kw["stop"]) == (0.5, 1.0, -1, 9, ["\nQ:"])
    assert calls["params"][0].kw["seed"] != calls["params"][1].kw["seed"]


def test_vllm_backend_without_vllm_is_a_clear_error(tiny, monkeypatch):
    from forgetbench.core.errors import UserError
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(UserError, match="pip install 'forgetbench\\[vllm\\]'"):
        VLLMBackend(tiny.model, tiny.tokenizer)


def test_chat_pairs_take_loss_on_the_assistant_reply_only(tiny):
    tok = tiny.tokenizer
    row = encode_pair(tok, "What is 2+2?", "4", chat=True)
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True,
                                     tokenize=False)
    n = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert row["input_ids"][:n] == tok(prompt, add_special_tokens=False)["input_ids"]
    assert row["labels"][:n] == [-100] * n
    assert row["labels"][n:] == tok("4", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert tok.decode(row["input_ids"]).endswith("<|im_start|>assistant\n4<|im_end|>")


def test_targets_train_with_the_instruction_evaluation_uses():
    from forgetbench.tasks.real.training_pairs import INSTRUCTION
    assert INSTRUCTION == reasoning.INSTRUCTION


@pytest.mark.slow
@needs_shared_data
def test_every_gold_answer_scores_itself_and_no_other():
    """Each reasoning task's reference answers, written as a model would (boxed), are correct against themselves;
    another problem's different answer is not (issue 13: MATH-500's escaped dollar signs could never score)."""
    from forgetbench.tasks.real.suites import REASONING
    for task in REASONING:
        if not task.needs:
            continue                                   # hub only (GPQA)
        golds = [p["answer"] for p in task.problems(SHARED / "data")]
        never = [g for g in golds if not verify.is_correct(g, f"So the answer is $\\boxed{{{g}}}$.")]
        assert never == [], (task.name, never)
        for i, g in list(enumerate(golds))[::4]:       # a quarter of them: math-verify takes ~4 ms a call
            other = next(x for x in golds[i + 1:] + golds[:i] if g.strip() not in x and x.strip() not in g)
            assert not verify.is_correct(g, f"\\boxed{{{other}}}"), (task.name, g, other)


words = st.lists(st.text(alphabet="abcdefghijKLMNOP'", min_size=1, max_size=6), min_size=1, max_size=7)


@given(words, st.lists(st.sampled_from([" ", "  ", "\n", "\t "]), min_size=8, max_size=8), words)
def test_exact_match_ignores_only_whitespace(ws, gaps, other):
    gold = " ".join(ws)
    spaced = gaps[0] + "".join(w + g for w, g in zip(ws, gaps[1:] + [" "] * len(ws)))
    assert verify.exact_match(gold, spaced)
    assert verify.exact_match(gold, " ".join(other)) == (other == ws)


@pytest.mark.parametrize("near", ["C b a", "c b a.", "cb a", "c b", "c b a a", "a b c"])
def test_exact_match_refuses_near_misses(near):
    assert not verify.exact_match("c b a", near)


def test_exact_scoring_prompts_with_the_question_alone(tiny, monkeypatch):
    """scoring "exact": no step-by-step instruction in the prompt; right only when the text is the reference."""
    from forgetbench.task import EvalTask, Resolved

    problems = [{"question": "Write these words in reverse order: a b c", "answer": "c b a", "response": "c b a"}]
    task = EvalTask("rev", "exact_match", problems=lambda d: problems, scoring="exact")
    ready = [Resolved(task, None, "rev", None, "h")]
    for script, right in ((["  c b\na "], True), (["c a b"], False), (["\\boxed{c b a}"], False)):
        monkeypatch.setattr(reasoning, "backend", lambda name, m, t, s=script: Scripted(tiny.tokenizer, s))
        item = reasoning.evaluate_generation(tiny.model, tiny.tokenizer, ready, EvalSettings())["rev"][0]
        assert item["correct"] is right and item["reference"] == "c b a"
        assert item["prompt"] == reasoning.question_prompt(tiny.tokenizer, problems[0]["question"], chat=True)


def test_answer_scoring_prompts_with_the_question_alone_and_checks_the_final_answer(tiny, monkeypatch):
    """scoring "answer": no step-by-step instruction; right when math-verify reads the reference as the final
    answer, in whatever words."""
    from forgetbench.task import EvalTask, Resolved

    problems = [{"question": "What is 9 + 8? Answer with the number only.", "answer": "17", "response": "17"}]
    task = EvalTask("sum", "pass@1", problems=lambda d: problems, scoring="answer")
    ready = [Resolved(task, None, "sum", None, "h")]
    for script, right in ((["17"], True), (["9 + 8 = 17."], True), (["The answer is 18."], False),
                          (["17 + 1 = 18"], False)):
        monkeypatch.setattr(reasoning, "backend", lambda name, m, t, s=script: Scripted(tiny.tokenizer, s))
        item = reasoning.evaluate_generation(tiny.model, tiny.tokenizer, ready, EvalSettings())["sum"][0]
        assert item["correct"] is right, script
        assert item["prompt"] == reasoning.question_prompt(tiny.tokenizer, problems[0]["question"], chat=True)


def test_arithmetic_items_are_every_fact_once_split_by_unordered_pair():
    import re

    from forgetbench.tasks.real.generated import arithmetic_problems
    train, test = (arithmetic_problems(s)(None) for s in ("train", "test"))
    assert test == arithmetic_problems("test")(None) and len(train) == len(test) == 144
    facts = {}
    for split, items in (("train", train), ("test", test)):
        for p in items:
            a, op, b = re.fullmatch(r"What is (\d+) (\+|times) (\d+)\?", p["question"]).groups()
            a, b = int(a), int(b)
            assert p["answer"] == str(a + b if op == "+" else a * b)
            assert p["response"] == f"{a} {op} {b} = {p['answer']}" and verify.verify("answer", p["response"], p)
            assert verify.verify("answer", f"{a} {'+' if op == '+' else '*'} {b} = {p['answer']}", p)
            assert not verify.verify("answer", str(int(p["answer"]) + 1), p)
            facts.setdefault((op, min(a, b), max(a, b)), set()).add(split)
    # every fact of 1-12 x 1-12 under both operations, each unordered pair wholly on one side
    assert len(facts) == 2 * 78 and all(len(sides) == 1 for sides in facts.values())
    assert sum(sides == {"test"} for sides in facts.values()) == 78


@needs_shared_data
def test_reverse_words_items_are_fixed_reversed_balanced_and_unseen_in_training():
    import collections

    from forgetbench.tasks.real.generated import REVERSE_PROMPT, reversal_pairs, reversal_problems
    test = reversal_problems("test")(SHARED / "data")
    train = reversal_pairs(SHARED / "data", None)
    assert test == reversal_problems("test")(SHARED / "data")
    assert len(test) == 1000 and len(train) == 8000
    runs = [p["question"].removeprefix(REVERSE_PROMPT) for p in test]
    assert all(p["answer"] == " ".join(reversed(r.split())) for p, r in zip(test, runs))
    assert collections.Counter(len(r.split()) for r in runs) == {4: 250, 5: 250, 6: 250, 7: 250}
    assert {p["question"] for p in test}.isdisjoint(p["prompt"] for p in train)
    assert all(p["response"] == " ".join(reversed(p["prompt"].removeprefix(REVERSE_PROMPT).split()))
               for p in train)


@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from(["+", "times"]), st.integers(-30, 200),
       st.sampled_from(["", ".", " is equal to", " equals", "?"]))
def test_a_short_answer_is_right_only_when_it_states_the_answer(a, b, op, said, tail):
    """scoring "answer": restating the question (an expression math-verify evaluates to the answer) is not an
    answer; stating the number is, in an equation or alone, and stating another number is not."""
    answer = a + b if op == "+" else a * b
    item = {"answer": str(answer)}
    assert not verify.verify("answer", f"{a} {op} {b}{tail}", item)          # "1 times 5" too, though 5 is last
    assert verify.verify("answer", f"{a} {op} {b} = {said}{tail}", item) is (said == answer)
    assert verify.verify("answer", f"The answer is {said}.", item) is (said == answer)
    assert verify.verify("answer", f"{said:,}" if said >= 1000 else str(said), item) is (said == answer)
