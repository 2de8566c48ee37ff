from forgetbench.method import Method, register

# TRL's aggregations of the same clipped, group-normalized objective that need no other setting: "grpo" the paper's
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo")


@register("grpo")
class GRPO(Method):
    """Group Relative Policy Optimization (TRL's GRPOTrainer), rewarded 1 when the target's verifier accepts.
    Source: Shao et al., DeepSeekMath (GRPO), arXiv 2402.03300; Shenfeld et al., RL's Razor, arXiv 2509.04259.

    The loss is pinned to the paper's (DeepSeekMath eq. 3), not left to TRL's default: each completion's per-token
    objective averaged over its own tokens, then over the batch's completions, (1/G) sum_i (1/|o_i|) sum_t. That is
    TRL's loss_type "grpo" (`(loss * mask).sum(-1) / mask.sum(-1)`, then `.mean()`); TRL 1.16's default, "dapo",
    divides the batch's token sum by its token count instead, weighting a long completion more than a short one.
    `loss_type` is a setting, so the record says which loss a run trained with. Advantages are normalized by the
    group's standard deviation (scale_rewards "group"), as in the paper. An epoch takes every target prompt once in
    steps of budget.batch_size prompts, the last step the remainder (TRL drops it; WholeEpochs keeps it), so GRPO
    makes exactly as many optimizer steps over the same prompts as SFT on the target's pairs."""

    cost = "expensive"
    sweep = {"group": [4, 8, 16]}
    smoke = {"group": 2, "max_new_tokens": 4}
    smoke_target = "micro-tone"     # the base model never gets the cipher right: every reward would be 0
    group: int = 8                  # completions per prompt, whose rewards are compared with each other
    beta: float = 0.0               # KL(policy || base) coefficient: 0, so any retention comes from the data alone
    max_new_tokens: int = 48
    temperature: float = 1.0
    loss_type: str = "grpo"         # TRL's aggregation of the per-token loss: "grpo", the paper's per-sequence mean

    def __post_init__(self):
        if self.group < 2 or self.beta < 0 or self.max_new_tokens < 1 or self.temperature <= 0:
            raise ValueError("needs group >= 2, beta >= 0, max_new_tokens >= 1 and temperature > 0")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, not {self.loss_type!r}")

    def prepare(self, ctx):
        ctx.target.check_verifiable(ctx.target_pairs)

    def fit(self, model, ctx, budget, seed):
        import time

        from forgetbench.core.store import scratch_dir
        from forgetbench.toolbox.training import TrainingStats

        start = time.perf_counter()
        with scratch_dir("forgetbench-grpo") as out, _quiet():
            trainer = _trainer_class()(model=model, reward_funcs=[self.reward(ctx)],
                                       args=self.config(model, budget, seed, out), train_dataset=self.prompts(ctx),
                                       processing_class=ctx.tokenizer)
            trainer.train()
        model.eval()
        logged = [h for h in trainer.state.log_history if "reward" in h]
        return TrainingStats(
            steps=trainer.state.global_step, examples=len(ctx.target_pairs),
            loss_curve=tuple(round(h["loss"], 6) for h in logged if "loss" in h),   # every step's (logging_steps=1)
            seconds=round(time.perf_counter() - start, 2),
            extra={"group": self.group, "reward_first": logged[0]["reward"] if logged else None,
                   "reward_last": logged[-1]["reward"] if logged else None,
                   "reward_curve": [round(h["reward"], 6) for h in logged]})       # each step's groups' mean reward

    def prompts(self, ctx):
        """The target's training prompts in its training format: a user turn where it trains as chat."""
        from datasets import Dataset
        from forgetbench.toolbox.encoding import uses_chat

        chat = uses_chat(ctx.tokenizer, ctx.target.chat)
        return Dataset.from_list([{"prompt": [{"role": "user", "content": p["prompt"]}] if chat else p["prompt"],
                                   "index": i} for i, p in enumerate(ctx.target_pairs)])

    def reward(self, ctx):
        """1 for a completion the target's verifier accepts (cut where its evaluation cuts one), else 0."""
        from forgetbench.toolbox.generation import cut_at_stop

        def verified(prompts, completions, index, **_):
            texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
            return [float(ctx.target.verify(cut_at_stop(t, ctx.target.stop), ctx.target_pairs[i]))
                    for t, i in zip(texts, index)]
        return verified

    def config(self, model, budget, seed, out: str):
        """The run's budget as TRL's settings. A step takes budget.batch_size prompts (each with `group` completions:
        one generation per step, one update per generation) and an epoch every target prompt once, so GRPO makes as
        many optimizer steps over the same prompts as SFT on the target's pairs; sampling is the model's plain
        distribution (no top-k, top-p)."""
        from forgetbench.toolbox.device import world_size
        from trl import GRPOConfig

        with _quiet():
            return GRPOConfig(
                output_dir=out, learning_rate=budget.lr, num_train_epochs=budget.epochs,
                per_device_train_batch_size=budget.batch_size // world_size() * self.group,   # the global batch's
                num_generations=self.group, beta=self.beta, gradient_checkpointing=budget.gradient_checkpointing,
                loss_type=self.loss_type, scale_rewards="group",
                max_completion_length=self.max_new_tokens, temperature=self.temperature, top_p=1.0, top_k=0,
                lr_scheduler_type=budget.scheduler, warmup_steps=budget.warmup_ratio, weight_decay=budget.weight_decay,
                max_grad_norm=budget.max_grad_norm, seed=seed, data_seed=seed, save_strategy="no", report_to=[],
                logging_steps=1, use_cpu=next(model.parameters()).device.type == "cpu", remove_unused_columns=False,
                bf16=str(next(model.parameters()).dtype) == "torch.bfloat16", disable_tqdm=False)


class WholeEpochs:
    """TRL's RepeatSampler (its order, drawn by its own seeded generator), keeping the last, smaller batch of prompts
    that TRL drops: each epoch yields every prompt once, `group` times in a row, in batches of budget.batch_size
    prompts and then the remainder, as SFT's DataLoader does with the same examples (drop_last off). With 72 prompts
    in batches of 32, TRL makes 2 steps an epoch and SFT 3; this makes 3. With a whole number of batches it yields
    exactly TRL's sequence."""

    def __init__(self, repeat):
        self.repeat = repeat            # trl.trainer.utils.RepeatSampler, as GRPOTrainer built it

    def __iter__(self):
        import torch

        s = self.repeat
        order = torch.randperm(s.num_samples, generator=s.generator).tolist() if s.shuffle else [*range(s.num_samples)]
        for start in range(0, len(order), s.batch_size):
            chunk = order[start:start + s.batch_size]        # the last one may be short: kept, unlike TRL
            for _ in range(s.repeat_count):                  # 1 here: one generation per step, one update each
                for index in chunk:
                    yield from [index] * s.mini_repeat_count

    def __len__(self) -> int:
        s = self.repeat
        return s.num_samples * s.mini_repeat_count * s.repeat_count


def _trainer_class():
    """GRPOTrainer whose training sampler is WholeEpochs (made here: TRL is imported when GRPO trains, not when it is
    named). GRPOTrainer._get_train_sampler is TRL's own hook for its sampler; pyproject.toml pins the TRL release
    this is tested with."""
    from trl import GRPOTrainer

    class WholeEpochsTrainer(GRPOTrainer):
        def _get_train_sampler(self, dataset=None):
            return WholeEpochs(super()._get_train_sampler(dataset))
    return WholeEpochsTrainer


def _quiet():
    """The Trainer's summary dict to stderr (it prints to stdout), without TRL's use of renamed transformers
    arguments (FutureWarnings about the user's code that are about TRL's)."""
    import contextlib
    import sys
    import warnings

    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(sys.stderr))
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*checkpointing.*")
    return stack
