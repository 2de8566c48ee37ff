from forgetbench.method import Method, register


@register("grpo")
class GRPO(Method):
    """Group Relative Policy Optimization (TRL's GRPOTrainer), rewarded 1 when the target's verifier accepts.
    Source: Shao et al., DeepSeekMath (GRPO), arXiv 2402.03300; Shenfeld et al., RL's Razor, arXiv 2509.04259."""

    cost = "expensive"
    sweep = {"group": [4, 8, 16]}
    smoke = {"group": 2, "max_new_tokens": 4}
    smoke_target = "micro-tone"     # the base model never gets the cipher right: every reward would be 0
    group: int = 8                  # completions per prompt, whose rewards are compared with each other
    beta: float = 0.0               # KL(policy || base) coefficient: 0, so any retention comes from the data alone
    max_new_tokens: int = 48
    temperature: float = 1.0

    def __post_init__(self):
        if self.group < 2 or self.beta < 0 or self.max_new_tokens < 1 or self.temperature <= 0:
            raise ValueError("needs group >= 2, beta >= 0, max_new_tokens >= 1 and temperature > 0")

    def prepare(self, ctx):
        ctx.target.check_verifiable(ctx.target_pairs)

    def fit(self, model, ctx, budget, seed):
        import time

        from forgetbench.core.store import scratch_dir
        from forgetbench.toolbox.training import TrainingStats
        from trl import GRPOTrainer

        start = time.perf_counter()
        with scratch_dir("forgetbench-grpo") as out, _quiet():
            trainer = GRPOTrainer(model=model, reward_funcs=[self.reward(ctx)],
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
        """The run's budget as TRL's settings. A step takes budget.batch_size prompts (each with `group` completions)
        and an epoch every target prompt once, so GRPO makes as many optimizer steps over the same prompts as SFT
        on the target's pairs; sampling is the model's plain distribution (no top-k, top-p)."""
        from forgetbench.toolbox.device import world_size
        from trl import GRPOConfig

        with _quiet():
            return GRPOConfig(
                output_dir=out, learning_rate=budget.lr, num_train_epochs=budget.epochs,
                per_device_train_batch_size=budget.batch_size // world_size() * self.group,   # the global batch's
                num_generations=self.group, beta=self.beta, gradient_checkpointing=budget.gradient_checkpointing,
                max_completion_length=self.max_new_tokens, temperature=self.temperature, top_p=1.0, top_k=0,
                lr_scheduler_type=budget.scheduler, warmup_steps=budget.warmup_ratio, weight_decay=budget.weight_decay,
                max_grad_norm=budget.max_grad_norm, seed=seed, data_seed=seed, save_strategy="no", report_to=[],
                logging_steps=1, use_cpu=next(model.parameters()).device.type == "cpu", remove_unused_columns=False,
                bf16=str(next(model.parameters()).dtype) == "torch.bfloat16", disable_tqdm=False)


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
