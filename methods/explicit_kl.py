import torch
from forgetbench.method import Method, register
from forgetbench.toolbox.encoding import IGNORE, Collator
from forgetbench.toolbox.losses import cross_entropy, kl_per_position, logits, masked_mean


@register("explicit_kl")
class ExplicitKL(Method):
    """Cross-entropy on the target plus lambda * exact KL to the frozen base on context-free samples.
    Source: KL retain loss as in open-unlearning (locuslab); forward direction as in arXiv 2505.13811."""

    cost = "moderate"
    smoke = {"samples": "32"}
    sweep = {"lam": [0.1, 0.3, 1.0, 3.0, 10.0]}
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

    def prepare(self, ctx):
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

    def loss(self, model, batch, ctx):
        ce = cross_entropy(model, batch)
        if self.lam == 0:
            return ce
        ref = {k: v.to(batch["input_ids"].device) for k, v in next(self._refs).items()}
        with torch.no_grad():
            base_logits = logits(ctx.frozen_base, ref)
        kl = kl_per_position(base_logits[:, :-1], logits(model, ref)[:, :-1], self.direction)
        return ce + self.lam * masked_mean(kl, ref["labels"][:, 1:] != IGNORE)
