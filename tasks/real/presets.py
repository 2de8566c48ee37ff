"""The real presets: SmolLM2 on CPU and the context-free synthetic data paper's settings."""

from forgetbench.task import Preset, register_preset

register_preset(Preset(
    "smollm2-cpu", "SmolLM2-135M on 2 CPU cores in under 30 minutes: GSM8K subset; zeroshot, LAMBADA and "
    "reasoning subsets sized where the base model is above chance", model="smollm2-135m", target="gsm8k",
    suites=("zeroshot", "lambada", "reasoning"),
    budget={"examples": 96, "epochs": 1, "lr": 3e-4, "batch_size": 4, "scheduler": "constant",
            "warmup_ratio": 0.0},
    # Items go where a 135M model is above chance (LAMBADA 0.29, PIQA 0.70, ARC-Easy 0.48 on 300 items);
    # the near-chance tasks and the floor-level competition maths keep a token presence. All generation
    # prompts (40 + 16 + 3 x 4 = 68) fit one batch: the per-step cost is paid once.
    eval={"limit": 20, "task_limits": {"gsm8k": 40, "gsm8k_loglik": 40, "fb_lambada": 200, "fb_arc_easy": 80,
                                       "fb_piqa": 80, "math500": 16, "aime24": 4, "aime25": 4, "amc23": 4},
          "max_new_tokens": 128, "batch_size": 68},
    kl={"samples": 64, "max_new_tokens": 64, "target_prompts": 64}, needs_data=True))
register_preset(Preset(
    "smollm2-reverse", "SmolLM2-135M on 2 CPU cores learning a new English skill (reverse_words); LAMBADA, "
    "ARC-Easy and PIQA subsets where the base model is above chance, the other zero-shot tasks 20 items each",
    model="smollm2-135m", target="reverse_words",
    suites=("zeroshot", "lambada"),
    budget={"examples": 800, "epochs": 1, "lr": 3e-4, "batch_size": 8, "scheduler": "constant",
            "warmup_ratio": 0.0},
    eval={"limit": 20, "task_limits": {"reverse_words": 200, "fb_lambada": 200, "fb_arc_easy": 80, "fb_piqa": 80},
          "max_new_tokens": 24, "batch_size": 100},
    kl={"samples": 64, "max_new_tokens": 64, "target_prompts": 64}, needs_data=True))
register_preset(Preset(
    "smollm2-arith", "SmolLM2-135M on 2 CPU cores stating arithmetic facts it knows in a new format (a target the "
    "base model is sometimes right on, for on-policy methods); suites as smollm2-reverse",
    model="smollm2-135m", target="arithmetic", suites=("zeroshot", "lambada"),
    eval={"limit": 20, "task_limits": {"arithmetic": 144, "fb_lambada": 200, "fb_arc_easy": 80, "fb_piqa": 80},
          "max_new_tokens": 32, "batch_size": 72},
    kl={"samples": 64, "max_new_tokens": 64, "target_prompts": 64}, needs_data=True))
register_preset(Preset(
    "paper-olmo", "The paper's zero-shot setting: OLMo-1B fine-tuned on MetaMathQA, zero-shot suites preserved "
    "(GPU)", model="olmo-1b", target="metamathqa", suites=("zeroshot",),
    eval={"max_new_tokens": 512, "batch_size": "auto"}, kl={"samples": 1024, "max_new_tokens": 128}))
register_preset(Preset(
    "paper-r1", "The paper's reasoning setting: DeepSeek-R1-Distill-Llama-8B fine-tuned on MedReason, "
    "reasoning preserved (GPU)", model="r1-distill-8b", target="medreason", suites=("reasoning",),
    eval={"max_new_tokens": 8192, "temperature": 0.6, "samples_per_problem": 4, "batch_size": "auto"},
    kl={"samples": 512, "max_new_tokens": 256}))
