"""A plugin of test models, loaded in subprocesses through DFABENCH_PLUGINS=dfabench_testmodels.

- ``slow``: answers like ``constant`` after sleeping ``delay`` seconds per batch, and appends the
  ids it answered to the file ``log`` (one line per batch) just before returning;
- ``flaky``: raises for the sample ids listed in ``fail_ids`` (comma-separated) and answers the rest;
- ``oom``: raises a MemoryError for any batch larger than one and answers one-by-one calls;
- ``masker``: a localize model whose mask is always the left half of the image.
"""

from __future__ import annotations

import time

from dfabench import hookimpl
from dfabench.models import ConstantModel, GenerateRequest, Response


class SlowModel(ConstantModel):
    operational_args = ("delay",)

    def __init__(self, log: str, delay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.log, self.delay = log, float(delay)

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        time.sleep(self.delay)
        answers = super().generate(requests)
        with open(self.log, "a") as handle:
            handle.write(" ".join(f"{r.task}:{r.sample_id}" for r in requests) + "\n")
        return answers


class FlakyModel(ConstantModel):
    def __init__(self, fail_ids: str = "", **kwargs):
        super().__init__(**kwargs)
        self.fail_ids = set(fail_ids.split(","))
        self.calls = 0

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        self.calls += 1
        for request in requests:
            if request.sample_id in self.fail_ids:
                raise RuntimeError(f"cannot handle {request.sample_id}")
        return super().generate(requests)


class OomModel(ConstantModel):
    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        if len(requests) > 1:
            raise MemoryError("CUDA out of memory (simulated)")
        return super().generate(requests)


class MaskerModel(ConstantModel):
    """Localizes the left half of every image as forged, and reports it."""

    capabilities = frozenset({"generate", "localize"})

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        import numpy as np

        answers = super().generate(requests)
        for request, answer in zip(requests, answers, strict=True):
            width, height = request.image.size
            mask = np.zeros((height, width), dtype=np.uint8)
            mask[:, : width // 2] = 255
            answer.mask = mask
        return answers


class BadAnswersModel(ConstantModel):
    """Breaks the contract on purpose: P(fake) outside [0, 1] for s0000/s0001, no category
    probabilities, and masks of the wrong shape (3-D for s0002) or a float probability map."""

    capabilities = frozenset({"score", "generate", "localize"})  # as registered; ``mode`` narrows them

    def __init__(self, mode: str = "score", **kwargs):
        super().__init__(**kwargs)
        self.capabilities = frozenset({"score"} if mode == "score" else {"generate", "localize"})

    def score(self, requests):
        from dfabench.models import Scores

        return [Scores(fake=1.5 if r.sample_id in ("s0000", "s0001") else 0.7) for r in requests]

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        import numpy as np

        answers = super().generate(requests)
        for request, answer in zip(requests, answers, strict=True):
            width, height = request.image.size
            answer.mask = np.zeros((height, width, 3)) if request.sample_id == "s0002" else np.full(
                (height, width), 0.9)
        return answers


@hookimpl
def dfabench_register_models(register):
    register("badanswers", "dfabench_testmodels:BadAnswersModel", capabilities=("score", "generate", "localize"),
             description="test: answers that break the model contract")
    register("masker", "dfabench_testmodels:MaskerModel", capabilities=("generate", "localize"),
             description="test: the left half is forged")
    register("slow", "dfabench_testmodels:SlowModel", description="test: sleeps and logs its calls")
    register("flaky", "dfabench_testmodels:FlakyModel", description="test: raises for some samples")
    register("oom", "dfabench_testmodels:OomModel", description="test: fails on batches larger than one")
