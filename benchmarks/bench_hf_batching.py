"""Batched generation of the ``hf`` model: samples/s at batch size 8 against batch size 1.

By default a tiny random LLaVA (dfabench_hf.testing.build_tiny_llava) on the CPU; any
checkpoint with --path (and --device cuda, --batch-sizes 1,16 on a GPU). Both batch sizes
answer the same DF-D-style requests in the same run; the ratio is what to read.

    python benchmarks/bench_hf_batching.py [--samples 32] [--max-new-tokens 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def make_requests(count: int, max_new_tokens: int, image_size: int):
    import numpy as np
    from PIL import Image

    from dfabench.models import GenerateRequest, GenerationSettings

    rng = np.random.default_rng(0)
    questions = ["Has this face been forged? Answer yes or no.", "Is this face real or fake?",
                 "Has this facial image been manipulated? Answer yes or no."]
    requests = []
    for i in range(count):
        image = Image.fromarray(rng.integers(0, 256, size=(image_size, image_size, 3), dtype=np.uint8))
        content = [{"type": "image"}, {"type": "text", "text": questions[i % len(questions)]}]
        requests.append(GenerateRequest(sample_id=f"s{i}", image=image, image_path="", task="DF-D",
                                        messages=[{"role": "user", "content": content}], choices=("yes", "no"),
                                        settings=GenerationSettings(max_new_tokens=max_new_tokens)))
    return requests


def samples_per_second(model, requests, batch_size: int, repeats: int) -> float:
    """Best of ``repeats`` passes over all requests."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(requests), batch_size):
            model.generate(requests[i:i + batch_size])
        best = min(best, time.perf_counter() - start)
    return len(requests) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", help="checkpoint (default: a tiny random LLaVA built in a temporary folder)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-sizes", default="1,8", help="reference first (default 1,8)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    from dfabench_hf.model import HFModel
    from dfabench_hf.testing import build_tiny_llava

    sizes = [int(s) for s in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or str(build_tiny_llava(Path(tmp) / "tiny-llava"))
        model = HFModel(path=path, device=args.device, dtype=args.dtype)
        requests = make_requests(args.samples, args.max_new_tokens, args.image_size)
        model.generate(requests[: max(sizes)])  # warm-up
        rates = {size: samples_per_second(model, requests, size, args.repeats) for size in sizes}
        model.close()
    reference = rates[sizes[0]]
    print(f"model {path if args.path else 'tiny random LLaVA'} on {args.device} "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads), {args.samples} samples, "
          f"max_new_tokens {args.max_new_tokens}, best of {args.repeats}")
    for size in sizes:
        print(f"batch {size:>3}: {rates[size]:8.2f} samples/s   ratio {rates[size] / reference:5.2f}x "
              f"(vs batch {sizes[0]})")


if __name__ == "__main__":
    main()
