"""Session fixtures: tiny random checkpoints (built offline) loaded through the plugin's real code."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict:
    from dfabench_hf import testing

    root = tmp_path_factory.mktemp("tiny-hf")
    return {
        "llava": testing.build_tiny_llava(root / "llava"),
        "idefics3": testing.build_tiny_idefics3(root / "idefics3"),
        "qwen2_vl": testing.build_tiny_qwen2_vl(root / "qwen2_vl"),
    }


@pytest.fixture(scope="session")
def tiny_models(tiny_checkpoints) -> dict:
    from dfabench_hf.model import HFModel

    models = {name: HFModel(path=str(path)) for name, path in tiny_checkpoints.items()}
    yield models
    for model in models.values():
        model.close()


@pytest.fixture(scope="session")
def face_images() -> list:
    """Six deterministic RGB images of different sizes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 256, size=(24 + 9 * i, 40 - 3 * i, 3), dtype=np.uint8))
            for i in range(6)]
