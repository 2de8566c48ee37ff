"""Benchmarks on SmolLM2-135M: generation, KL scoring, training throughput and MFU; smollm2-cpu run times.

    python benchmarks/real.py generation   # batched (length-sorted) vs one-sequence-at-a-time, tokens/s
    python benchmarks/real.py scoring      # KL scoring (two models, float32 log-softmax, exact KL) vs bare forwards
    python benchmarks/real.py training     # training tokens/s through toolbox.training.train, and MFU on a GPU
    python benchmarks/real.py runs DIR     # wall time of each finished smollm2-cpu run under DIR

Each figure is a ratio against a baseline measured in the same process. The model is SmolLM2-135M-Instruct
from the GGUF when it is available (`smollm2-135m`); with `--random-init` it is the same architecture
(config below) with random weights, for machines the weights cannot be copied to (a GPU lent without
network access). Throughput does not depend on the weights' values; generation is counted in tokens
actually generated. Results are printed as JSON and written to benchmarks/real-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# SmolLM2-135M-Instruct (../shared/models/smollm2-135m-instruct-q4_1/config.json)
SMOLLM2 = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
               num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0,
               rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
BF16_PEAK = {"H100": 989e12, "H200": 989e12}     # dense bf16 tensor-core TFLOP/s, SXM datasheets


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def load(random_init: bool):
    """(model, eos, pad) on the default device and dtype: bf16 on a GPU, float32 on CPU."""
    from forgetbench.toolbox.device import Placement
    device, dtype = Placement().resolved()
    dtype = getattr(torch, dtype)
    if random_init:
        from transformers import LlamaConfig, LlamaForCausalLM
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**SMOLLM2)).to(device=device, dtype=dtype).eval()
        return model, 2, 2
    from forgetbench.toolbox.models import resolve_model
    h = resolve_model("smollm2-135m")
    return h.model, h.tokenizer.eos_token_id, h.tokenizer.pad_token_id


class Ids:
    def __init__(self, eos, pad):
        self.eos_token_id, self.pad_token_id = eos, pad


def prompts(n: int, lo: int, hi: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    return [torch.randint(3, 49152, (k,), generator=g).tolist() for k in lengths]


def timed(fn, repeats: int = 1):
    times, out = [], None
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t)
    return min(times), out


def bench_generation(model, eos, pad, n: int, new: int, batch: int) -> dict:
    from forgetbench.toolbox.generation import HFBackend, Sampling
    b = HFBackend(model, Ids(eos, pad))
    ps = prompts(n, 16, 128)
    b.generate(ps[:2], Sampling(1.0, 4, 2), seed=0)                       # warm-up
    t_batched, out_b = timed(lambda: b.generate(ps, Sampling(1.0, new, batch), seed=0))
    k = min(8, max(2, n // 8))                                             # one at a time: a subset
    t_single, out_s = timed(lambda: b.generate(ps[:k], Sampling(1.0, new, 1), seed=0))
    tb = sum(map(len, out_b)) / t_batched
    ts = sum(map(len, out_s)) / t_single
    return {"prompts": n, "max_new_tokens": new, "batch_size": batch, "batched_tokens_per_s": round(tb, 1),
            "sequential_prompts": k, "sequential_tokens_per_s": round(ts, 1), "ratio": round(tb / ts, 2)}


def bench_scoring(model, eos, pad, n: int, length: int, batch: int) -> dict:
    from forgetbench.runner.kl import score_pair
    tuned = type(model)(model.config).to(device=next(model.parameters()).device, dtype=next(model.parameters()).dtype)
    tuned.load_state_dict(model.state_dict())
    tuned.eval()
    rows = prompts(n, length, length, seed=1)
    starts, gens = [[r[0]] for r in rows], [r[1:] for r in rows]
    dev = next(model.parameters()).device

    @torch.no_grad()
    def bare():
        for s in range(0, n, batch):
            ids = torch.tensor(rows[s:s + batch], device=dev)
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
            tuned(input_ids=ids, attention_mask=torch.ones_like(ids))

    bare()
    t_bare, _ = timed(bare, 3)
    t_score, _ = timed(lambda: score_pair(model, tuned, starts, gens, pad, batch), 3)
    return {"sequences": n, "tokens": n * length, "batch_size": batch, "bare_forward_s": round(t_bare, 3),
            "score_pair_s": round(t_score, 3), "ratio": round(t_score / t_bare, 2)}


def bench_training(model, pad, n: int, length: int, batch: int, checkpointing: bool) -> dict:
    from forgetbench.core.budget import Budget
    from forgetbench.toolbox.losses import cross_entropy
    from forgetbench.toolbox.training import train
    m = type(model)(model.config).to(device=next(model.parameters()).device, dtype=next(model.parameters()).dtype)
    m.load_state_dict(model.state_dict())
    rows = [{"input_ids": r, "labels": r} for r in prompts(n, length, length, seed=2)]
    budget = Budget(epochs=1, lr=1e-5, batch_size=batch, gradient_checkpointing=checkpointing)
    train(m, rows[:batch * 2], cross_entropy, budget, 0, pad)              # warm-up (kernels, allocator)
    stats = train(m, rows, cross_entropy, budget, 0, pad)
    tokens = n * length
    params = sum(p.numel() for p in m.parameters())
    cfg = m.config
    flops_token = 6 * params + 12 * cfg.num_hidden_layers * cfg.hidden_size * length   # PaLM appendix B
    tps = tokens / stats.seconds
    out = {"sequences": n, "seq_len": length, "batch_size": batch, "gradient_checkpointing": checkpointing,
           "precision": stats.precision, "seconds": stats.seconds, "tokens_per_s": round(tps, 1),
           "model_flops_per_token": flops_token}
    peak = next((v for k, v in BF16_PEAK.items() if k in device_name()), None)
    if peak and stats.precision == "bf16":
        out["mfu_vs_bf16_peak"] = round(tps * flops_token / peak, 4)
        out["bf16_peak_flops"] = peak
    return out


def runs(folder: Path) -> list[dict]:
    out = []
    for f in sorted(folder.glob("*/result.json")):
        r = json.loads(f.read_text())
        out.append({"run": r["run_id"], "method": r["spec"]["method"], "wall_seconds": r["wall_seconds"],
                    "training_seconds": r["training"]["seconds"], "target": r["target"]["tasks"],
                    "suites": {k: {"base": v.get("base"), "tuned": v["tuned"], "delta": v.get("delta"), "n": v["n"]}
                               for k, v in r["suites"].items()},
                    "kl_token_exact": r["kl"]["token_exact"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["generation", "scoring", "training", "all", "runs"])
    ap.add_argument("folder", nargs="?")
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    gpu = torch.cuda.is_available()
    result = {"device": device_name(), "torch": torch.__version__, "python": platform.python_version(),
              "weights": "random init (SmolLM2-135M config)" if a.random_init else "SmolLM2-135M-Instruct GGUF"}
    import transformers
    result["transformers"] = transformers.__version__
    if a.what == "runs":
        result["runs"] = runs(Path(a.folder))
    else:
        model, eos, pad = load(a.random_init)
        result["dtype"] = str(next(model.parameters()).dtype)
        if a.what in ("generation", "all"):
            result["generation"] = (bench_generation(model, eos, pad, 512, 256, 256) if gpu
                                    else bench_generation(model, eos, pad, 16, 24, 16))
        if a.what in ("scoring", "all"):
            result["scoring"] = (bench_scoring(model, eos, pad, 256, 256, 64) if gpu
                                 else bench_scoring(model, eos, pad, 16, 64, 16))
        if a.what in ("training", "all"):
            result["training"] = ([bench_training(model, pad, 2048, 512, 32, ck) for ck in (False, True)] if gpu
                                  else [bench_training(model, pad, 8, 128, 4, False)])
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(a.out) if a.out else Path(__file__).parent / f"real-{'gpu' if gpu else 'cpu'}-{a.what}.json"
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
