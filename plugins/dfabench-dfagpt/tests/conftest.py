"""Session fixtures: a tiny random LLaVA base, the small smoke benchmark and one trained adapter."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    from dfabench_hf.testing import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("dfagpt-base") / "llava")


@pytest.fixture(scope="session")
def smoke_bench(tmp_path_factory):
    from dfabench.data.smoke import build_smoke

    return build_smoke(tmp_path_factory.mktemp("dfagpt-smoke") / "bench", seed=0, size="small")


@pytest.fixture(scope="session")
def trained(tiny_base, smoke_bench, tmp_path_factory):
    """An adapter trained for 16 steps on 8 train-split conversations (2 steps per epoch)."""
    from dfabench_dfagpt.train import TrainConfig, train

    out = tmp_path_factory.mktemp("dfagpt-adapter") / "adapter"
    config = TrainConfig(base=str(tiny_base), bench=str(smoke_bench), out=str(out), max_steps=16, batch_size=4,
                         limit=8, lr=1e-2, lora_r=4, lora_alpha=8, save_every=0, seed=0)
    return config, train(config, progress=False)
