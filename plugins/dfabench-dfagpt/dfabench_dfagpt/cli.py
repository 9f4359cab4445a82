"""``dfabench dfagpt train ...`` (LoRA instruction tuning), registered through ``dfabench_register_commands``.

``dfabench-dfagpt train ...`` is kept for one release as an alias of ``dfabench dfagpt train ...``.
"""

from __future__ import annotations

import argparse
import sys

from dfabench.api import cli_main as dfabench_main


def _modules(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated module names, e.g. q_proj,v_proj")
    return names


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dfabench dfagpt train``."""
    p.description = ("Train a DFA-GPT adapter: vision encoder frozen, projector trained, LLM frozen with LoRA, "
                     "loss on the assistant tokens of the benchmark's DFA-Instruct-style conversations. Writes "
                     "adapter_model.safetensors, projector.safetensors and dfagpt.json into --out.")
    p.add_argument("--base", required=True, help="base checkpoint: a local folder or a hub name (LLaVA-style)")
    p.add_argument("--bench", required=True, help="benchmark folder with conversations, or 'smoke'")
    p.add_argument("--out", required=True, help="adapter folder to write (checkpoints go in OUT/checkpoints)")
    p.add_argument("--split", default="train", help="split to train on (default: train; 'all' for every sample)")
    p.add_argument("--limit", type=int, help="train on the first N samples with conversations only")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data (default 1)")
    p.add_argument("--max-steps", type=int, help="optimiser steps in all (overrides --epochs)")
    p.add_argument("--batch-size", type=int, default=4, help="conversations per step (default 4)")
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default 2e-4)")
    p.add_argument("--warmup-ratio", type=float, default=0.03, help="share of the steps for warm-up (default 0.03)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: none; default 1)")
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--lora-alpha", type=int, default=16, help="LoRA alpha (default 16)")
    p.add_argument("--lora-dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    p.add_argument("--target-modules", type=_modules, default=("q_proj", "v_proj"),
                   help="language-model linear layers that get LoRA (default q_proj,v_proj)")
    p.add_argument("--save-every", type=int, default=200, help="checkpoint every N steps (0: never; default 200)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--seed", type=int, default=0, help="seed of the LoRA initialisation, data order and dropout")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                   help="base weights' dtype (auto: bfloat16 on a GPU that has it, else float32)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--revision", help="hub revision of the base")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def train_command(args: argparse.Namespace) -> int:
    """``dfabench dfagpt train``: the exit code."""
    from dfabench_dfagpt.train import TrainConfig, train
    from dfabench_hf.options import parse_device

    config = TrainConfig(
        base=args.base, bench=args.bench, out=args.out, epochs=args.epochs, lr=args.lr, lora_r=args.lora_r,
        lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=args.target_modules,
        batch_size=args.batch_size, max_steps=args.max_steps, save_every=args.save_every, seed=args.seed,
        split=args.split, limit=args.limit, warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm, dtype=args.dtype, device=parse_device(args.device),
        revision=args.revision, trust_remote_code=args.trust_remote_code)
    try:
        result = train(config, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"dfabench-dfagpt: interrupted; run the same command with --resume to continue from the last "
              f"checkpoint in {args.out}/checkpoints", file=sys.stderr)
        return 130
    print(f"trained {result.steps} steps (final loss {result.losses[-1]:.4f}); adapter in {result.out}")
    print(f"evaluate it: dfabench run --model dfagpt --model-arg base={args.base} --model-arg adapter={result.out} "
          "--tasks DF-D,DF-C,AD --bench BENCH --out RUN_DIR")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``dfabench-dfagpt ARGS``: the deprecated alias of ``dfabench dfagpt ARGS``."""
    print("dfabench-dfagpt is deprecated: use `dfabench dfagpt`", file=sys.stderr)
    return dfabench_main(["dfagpt", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
