"""LoRA instruction tuning of DFA-GPT on a benchmark's train-split conversations.

The base model's vision encoder and language model are frozen; the projector is trained in
full and the language model through LoRA matrices (peft). The loss is the mean
cross-entropy over the assistant tokens of the batch (:mod:`dfabench_dfagpt.data`).
Optimiser: AdamW; learning rate: linear warm-up then cosine decay to 0; gradients clipped.

The output folder (``--out``) receives

- ``adapter_model.safetensors`` + ``adapter_config.json`` (peft's ``save_pretrained``),
- ``projector.safetensors`` (the trained projector),
- ``dfagpt.json`` (base and its fingerprint, benchmark fingerprint, hyperparameters, steps, loss),
- ``train_log.jsonl`` (step, loss, learning rate),
- ``checkpoints/step-NNNNNNNN/`` every ``save_every`` steps while training (trainable weights,
  optimiser and scheduler state, random-number state); removed once training finishes.

Resuming (``resume=True``) restores the last checkpoint, the random-number state and the
position in the (seeded) data order, so that the result is the same as that of an
uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dfabench.api import DfabenchError, atomic_write_text, load_benchmark, resolve_bench

FORMAT = "dfagpt-1"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class TrainConfig:
    """What ``dfabench-dfagpt train`` is asked to do (see ``--help`` for each option)."""

    base: str
    bench: str
    out: str
    epochs: int = 1
    lr: float = 2e-4
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    batch_size: int = 4
    max_steps: int | None = None
    save_every: int = 200
    seed: int = 0
    split: str = "train"
    limit: int | None = None
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    dtype: str = "auto"
    device: str = "auto"
    revision: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self):
        for name in ("epochs", "lora_r", "batch_size"):
            if getattr(self, name) < 1:
                raise DfabenchError(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise DfabenchError("--max-steps must be at least 1")
        if self.save_every < 0:
            raise DfabenchError("--save-every must be 0 (no checkpoints) or more")
        if not self.lr > 0:
            raise DfabenchError("--lr must be positive")
        if not 0 <= self.lora_dropout < 1 or not 0 <= self.warmup_ratio < 1:
            raise DfabenchError("--lora-dropout and --warmup-ratio must be in [0, 1)")
        if not self.target_modules:
            raise DfabenchError("--target-modules must name at least one module")

    def hyperparameters(self) -> dict[str, Any]:
        """What determines the trained weights (a resumed run must match them)."""
        values = asdict(self)
        for name in ("base", "bench", "out", "save_every", "device", "revision", "trust_remote_code"):
            values.pop(name)
        values["target_modules"] = list(self.target_modules)
        return values


@dataclass
class TrainResult:
    out: Path
    steps: int
    losses: list[float]
    resumed_from: int | None
    #: the trained peft model and the processor, for in-process use
    model: Any = field(repr=False, default=None)
    processor: Any = field(repr=False, default=None)


def training_dtype(dtype: str, device: str):
    """``auto``: bfloat16 on a GPU that supports it, else float32."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def learning_rate_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def assistant_loss(logits, labels):
    """Mean next-token cross-entropy over the labelled (assistant) tokens."""
    import torch

    shifted = logits[:, :-1, :].float()
    targets = labels[:, 1:].to(shifted.device)
    return torch.nn.functional.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), targets.reshape(-1),
                                             ignore_index=-100)


def _to_device(inputs: dict[str, Any], device, dtype) -> dict[str, Any]:
    import torch

    moved = {}
    for name, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device)
            if value.is_floating_point():
                value = value.to(dtype)
        moved[name] = value
    return moved


def _autocast(device, dtype):
    import torch

    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def evaluate_loss(model, processor, examples, batch_size: int = 4, *, device=None, dtype=None) -> float:
    """Mean assistant-token loss of ``model`` over ``examples`` (eval mode, no gradients)."""
    import torch

    from dfabench_dfagpt.data import collate

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = device or base.device
    dtype = dtype or base.dtype
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for start in range(0, len(examples), batch_size):
                inputs, labels = collate(processor, examples[start:start + batch_size])
                with _autocast(device, dtype):
                    logits = model(**_to_device(inputs, device, dtype)).logits
                n = int((labels[:, 1:] != -100).sum())
                total += assistant_loss(logits, labels).item() * n
                count += n
    finally:
        model.train(was_training)
    return total / max(count, 1)


class _Progress:
    """A tqdm bar with the loss when tqdm is installed, else one rewritten line on stderr."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, initial=initial, desc="dfagpt train", unit="step", dynamic_ncols=True)

    def update(self, step: int, loss: float, lr: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
        else:
            print(f"\rdfagpt train: step {step}/{self.total} loss {loss:.4f} lr {lr:.2e}", end="", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print(file=sys.stderr)


# ----------------------------------------------------------------------------- checkpoints

def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints (``meta.json`` written last), oldest first."""
    root = Path(out) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / "meta.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))


def _save_checkpoint(out: Path, step: int, trainable: dict[str, Any], optimizer, scheduler, log: list[dict],
                     meta: dict[str, Any], keep: int = 2) -> Path:
    import torch
    from safetensors.torch import save_file

    root = out / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({name: p.detach().to("cpu").contiguous() for name, p in trainable.items()},
              str(tmp / "trainable.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
               tmp / "state.pt")
    (tmp / "log.json").write_text(json.dumps(log))
    (tmp / "meta.json").write_text(json.dumps({**meta, "step": step}, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _load_checkpoint(folder: Path, trainable: dict[str, Any], optimizer, scheduler, meta: dict[str, Any]):
    import torch
    from safetensors.torch import load_file

    saved = json.loads((folder / "meta.json").read_text())
    differences = [f"{key}: checkpoint {saved.get(key)!r}, now {meta[key]!r}" for key in
                   ("base", "base_fingerprint", "benchmark_fingerprint", "hyperparameters")
                   if saved.get(key) != meta[key]]
    if differences:
        raise DfabenchError(f"cannot resume from {folder}: the run differs ({'; '.join(differences)}); "
                            "use the same options, or another --out")
    weights = load_file(str(folder / "trainable.safetensors"))
    if set(weights) != set(trainable):
        raise DfabenchError(f"cannot resume from {folder}: its trainable weights do not match this model")
    with torch.no_grad():
        for name, param in trainable.items():
            param.copy_(weights[name].to(param.device, param.dtype))
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return saved["step"], json.loads((folder / "log.json").read_text())


# ----------------------------------------------------------------------------- training

def train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train a DFA-GPT adapter (see the module docstring). ``on_step(step, loss)`` is called
    after each optimiser step (and after its checkpoint, if one is due)."""
    import peft
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    from dfabench_dfagpt import __version__
    from dfabench_dfagpt.data import build_examples, collate
    from dfabench_dfagpt.parts import PROJECTOR_FILE, find_projector, lora_target_modules, quiet_peft, save_projector
    from dfabench_hf import loading
    from dfabench_hf.fingerprint import checkpoint_fingerprint, local_checkpoint_folder

    out = Path(config.out)
    if (out / "dfagpt.json").exists():
        raise DfabenchError(f"{out} already holds a trained adapter (dfagpt.json); choose another --out")
    if checkpoint_dirs(out) and not resume:
        raise DfabenchError(f"{out} holds checkpoints of an unfinished run: add --resume to continue it, "
                            "or choose another --out")
    benchmark = load_benchmark(resolve_bench(config.bench))
    device = loading.resolve_device(config.device)
    dtype = training_dtype(config.dtype, device)
    torch.manual_seed(config.seed)

    hf_config = loading.load_config(config.base, revision=config.revision, trust_remote_code=config.trust_remote_code)
    processor = loading.load_processor(config.base, hf_config, revision=config.revision,
                                       trust_remote_code=config.trust_remote_code)
    model = loading.load_model(config.base, hf_config, dtype=config.dtype if config.dtype != "auto" else
                               str(dtype).removeprefix("torch."), device=device, revision=config.revision,
                               trust_remote_code=config.trust_remote_code)
    folder, revision = local_checkpoint_folder(config.base, config.revision)
    base_fingerprint = checkpoint_fingerprint(folder)["weights_sha256"] if folder is not None else None
    examples = build_examples(processor, benchmark, config.split, config.limit)

    projector_name, projector = find_projector(model)
    targets = lora_target_modules(model, config.target_modules)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, bias="none")
    with quiet_peft():
        peft_model = get_peft_model(model, lora)
    for param in projector.parameters():
        param.data = param.data.float()
        param.requires_grad_(True)
    trainable = {name: p for name, p in peft_model.named_parameters() if p.requires_grad}
    for param in trainable.values():
        param.data = param.data.float()
    optimizer = torch.optim.AdamW(list(trainable.values()), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = config.max_steps or config.epochs * steps_per_epoch
    warmup = max(1, math.ceil(config.warmup_ratio * total)) if config.warmup_ratio > 0 else 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(s, total, warmup))

    meta = {"base": config.base, "base_fingerprint": base_fingerprint,
            "benchmark_fingerprint": benchmark.fingerprint(), "hyperparameters": config.hyperparameters()}
    step, log, resumed_from = 0, [], None
    if resume:
        found = checkpoint_dirs(out)
        if found:
            step, log = _load_checkpoint(found[-1], trainable, optimizer, scheduler, meta)
            resumed_from = step
            print(f"resuming from {found[-1]} (step {step} of {total})", file=sys.stderr)
        else:
            print(f"no checkpoint in {out}: training from the start", file=sys.stderr)

    out.mkdir(parents=True, exist_ok=True)
    bar = _Progress(total, step, progress)
    peft_model.train()
    try:
        while step < total:
            epoch, position = divmod(step, steps_per_epoch)
            order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(config.seed + epoch))
            chosen = order[position * config.batch_size:(position + 1) * config.batch_size].tolist()
            inputs, labels = collate(processor, [examples[i] for i in chosen])
            lr = scheduler.get_last_lr()[0]
            with _autocast(device, dtype):
                logits = peft_model(**_to_device(inputs, model.device, dtype)).logits
            loss = assistant_loss(logits, labels)
            if not torch.isfinite(loss):
                raise DfabenchError(f"step {step + 1}: the loss is {loss.item()} (try a lower --lr)")
            loss.backward()
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(list(trainable.values()), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            log.append({"step": step, "epoch": epoch, "loss": loss.item(), "lr": lr})
            bar.update(step, loss.item(), lr)
            if config.save_every and step % config.save_every == 0 and step < total:
                _save_checkpoint(out, step, trainable, optimizer, scheduler, log, meta)
            if on_step is not None:
                on_step(step, loss.item())
    finally:
        bar.close()

    peft_model.eval()
    peft_model.save_pretrained(str(out))
    save_projector(projector, out / PROJECTOR_FILE, projector_name)
    atomic_write_text(out / "train_log.jsonl", "".join(json.dumps(entry) + "\n" for entry in log))
    tail = [entry["loss"] for entry in log[-max(1, steps_per_epoch):]]
    record = {
        "format": FORMAT,
        "base": config.base,
        "base_revision": getattr(hf_config, "_commit_hash", None) or revision,
        "base_fingerprint": base_fingerprint,
        "benchmark": {"path": str(benchmark.root), "name": benchmark.name, "fingerprint": meta["benchmark_fingerprint"],
                      "split": config.split, "samples": len(examples)},
        "hyperparameters": config.hyperparameters(),
        "lora_targets": len(targets),
        "projector_module": projector_name,
        "steps": step,
        "epochs": round(step / steps_per_epoch, 3),
        "final_loss": sum(tail) / len(tail),
        "resumed_from": resumed_from,
        "versions": {"dfabench-dfagpt": __version__, "transformers": transformers.__version__,
                     "peft": peft.__version__, "torch": torch.__version__},
    }
    atomic_write_text(out / "dfagpt.json", json.dumps(record, indent=2) + "\n")
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return TrainResult(out, step, [entry["loss"] for entry in log], resumed_from, peft_model, processor)
