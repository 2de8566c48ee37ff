import torch

from bench.data import Collator
from bench.losses import cross_entropy, kl_per_position, masked_mean
from bench.method import Method, register


@register("explicit_kl", cost="moderate")
class ExplicitKL(Method):
    """Cross-entropy on the target plus lambda * exact KL to the frozen base on context-free samples.
    Source: KL retain loss as in open-unlearning (locuslab); forward direction as in arXiv 2505.13811."""

    lam: float = 1.0
    direction: str = "forward"     # forward: KL(base || tuned); reverse: KL(tuned || base)
    samples: int = 2000            # context-free reference sequences, drawn once and cycled
    batch_size: int = 32
    max_new_tokens: int = 48

    def __post_init__(self):
        if self.direction not in ("forward", "reverse"):
            raise ValueError(f"direction must be 'forward' or 'reverse', not {self.direction!r}")
        if self.lam < 0 or self.samples < 1 or self.batch_size < 1:
            raise ValueError("needs lam >= 0, samples >= 1 and batch_size >= 1")

    def mixture(self, ctx):
        refs = ctx.context_free_samples(self.samples, 1.0, self.max_new_tokens)
        collate = Collator(ctx.tokenizer.pad_token_id)
        rng = ctx.rng("explicit_kl")
        order = list(range(len(refs)))
        size = min(self.batch_size, len(refs))

        def batches():
            while True:
                rng.shuffle(order)
                for s in range(0, len(order) - size + 1, size):
                    yield collate([refs[i] for i in order[s:s + size]])

        self._refs = batches()
        return {"target": ctx.target_examples}

    def loss(self, model, batch, ctx):
        ce = cross_entropy(model, batch)
        if self.lam == 0:
            return ce
        ref = {k: v.to(batch["input_ids"].device) for k, v in next(self._refs).items()}
        logits = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).logits[:, :-1]
        with torch.no_grad():
            base_logits = ctx.frozen_base(input_ids=ref["input_ids"],
                                          attention_mask=ref["attention_mask"]).logits[:, :-1]
        kl = kl_per_position(base_logits, logits, self.direction)
        return ce + self.lam * masked_mean(kl, ref["labels"][:, 1:] != -100)
