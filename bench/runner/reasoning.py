"""Tasks forgetbench scores itself: generation checked with math-verify or by exact match, and response likelihood.

Generation: each problem (its question and, for scoring "generate", the step-by-step instruction) is formatted
with the model's chat template (when it has one and the settings ask for it), answered `samples_per_problem`
times by the run's generation backend at the settings' temperature, and each answer is checked against the
reference: with math-verify (scoring "generate"; "answer": the question is the whole prompt), or as text equal
to it after collapsing whitespace (scoring "exact": the question is the whole prompt). An item's score is its
pass@1 (the mean over its samples); every completion is kept in the per-item outcomes.

Likelihood: the mean log-probability per token of the reference response given the prompt, in exactly
the format the target trains on (forgetbench.toolbox.encoding.encode_pair), teacher-forced in float32. Higher is better.
"""

from __future__ import annotations

import torch
from forgetbench.core.settings import EvalSettings, subset_indices
from forgetbench.core.store import stable_hash
from forgetbench.task import Resolved
from forgetbench.toolbox.encoding import IGNORE, Collator, encode_pair, prompt_text, uses_chat
from forgetbench.toolbox.generation import Sampling, backend, cut_at_stop
from forgetbench.toolbox.verify import verify

INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."
PLAIN_STOP = ("\nQuestion:",)


def question_prompt(tokenizer, question: str, chat: bool) -> str:
    """A user turn of the model's chat template when it has one (and `chat`), else a plain Q/A frame."""
    return prompt_text(tokenizer, question, chat) if uses_chat(tokenizer, chat) else f"Question: {question}\nAnswer:"


@torch.no_grad()
def response_loglik(model, rows: list[dict], pad_id: int, batch_size: int) -> list[float]:
    """Mean log-probability per labelled token of each encoded row (forgetbench.toolbox.encoding.encode_pair)."""
    device = next(model.parameters()).device
    collate = Collator(pad_id)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))   # batches of similar length
    out: list[float] = [0.0] * len(rows)
    for s in range(0, len(rows), batch_size):
        idx = order[s:s + batch_size]
        b = {k: v.to(device) for k, v in collate([rows[i] for i in idx]).items()}
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        labels = b["labels"][:, 1:]
        mask = labels != IGNORE
        # log-softmax at the labelled token only: no second (batch x length x vocab) tensor
        tok = logits.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)
        for i, v in zip(idx, ((tok * mask).sum(1) / mask.sum(1)).tolist()):
            out[i] = v
    return out


def evaluate_generation(model, tokenizer, tasks: list[Resolved], settings: EvalSettings) -> dict[str, list[dict]]:
    """Per-item outcomes of the tasks forgetbench scores itself (generation or likelihood).

    The prompts of all generation tasks go to the backend in one call, so its length-sorted batches
    stay full (small tasks such as AIME would otherwise pay the per-step cost of a tiny batch)."""
    chat = uses_chat(tokenizer, settings.chat_template)
    stop = () if chat else PLAIN_STOP
    batch = settings.batch_size if isinstance(settings.batch_size, int) else 256
    k = settings.samples_per_problem
    out: dict[str, list[dict]] = {}
    pending = []                               # (resolved task, chosen problems, prompt texts)
    for r in tasks:
        problems = r.task.problems(r.data_dir)
        keep = subset_indices(r.task.subset_key, len(problems), settings.limit_for(r.task.name))
        chosen = [(i, problems[i]) for i in (keep if keep is not None else range(len(problems)))]
        if r.task.scoring == "likelihood":
            rows = [encode_pair(tokenizer, p["question"] + INSTRUCTION, p["response"], chat) for _, p in chosen]
            scores = response_loglik(model, rows, tokenizer.pad_token_id, batch)
            out[r.name] = [
                {"doc_id": i, "doc_hash": stable_hash(p, 16), "prompt_hash": stable_hash(row["input_ids"], 16),
                 "correct": None, "score": sc} for (i, p), row, sc in zip(chosen, rows, scores)]
        else:
            suffix = INSTRUCTION if r.task.scoring == "generate" else ""
            pending.append((r, chosen,
                            [question_prompt(tokenizer, p["question"] + suffix, chat) for _, p in chosen]))
    if not pending:
        return out
    prompts = [tokenizer(t, add_special_tokens=not chat)["input_ids"] for _, _, texts in pending for t in texts]
    completions = backend(settings.backend, model, tokenizer).generate(
        [p for p in prompts for _ in range(k)], Sampling(settings.temperature, settings.max_new_tokens, batch),
        seed=0, stop=stop, desc=f"{', '.join(r.name for r, _, _ in pending)} ({len(prompts)}×{k})")
    at = 0
    for r, chosen, texts in pending:
        items = []
        for (i, prob), text in zip(chosen, texts):
            answers = [cut_at_stop(tokenizer.decode(c, skip_special_tokens=True), stop)
                       for c in completions[at:at + k]]
            at += k
            right = [verify(r.task.scoring, a, prob) for a in answers]
            score = sum(right) / k
            items.append({"doc_id": i, "doc_hash": stable_hash(prob, 16), "prompt_hash": stable_hash(text, 16),
                          "correct": score >= 0.5, "score": score, "reference": prob["answer"],
                          "completions": answers, "prompt": text})
        out[r.name] = items
    return out
