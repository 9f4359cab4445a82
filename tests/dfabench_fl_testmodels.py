"""A plugin of FL test models (DFABENCH_PLUGINS=dfabench_fl_testmodels), for tests/test_fl_text_masks.py.

- ``texter``: a chat model that cannot localize; its FL answers give the forged area in text (dfabench.masks),
  chosen by the sample's number modulo 5: region names, a pixel box, a normalised box plus a polygon,
  malformed coordinates, nothing usable. Other tasks get the ``constant`` model's answers.
"""

from __future__ import annotations

from dfabench import hookimpl
from dfabench.models import ConstantModel, GenerateRequest, Response

ANSWERS = ("The mouth and the left cheek were swapped in.",
           "The forged area is the box [0, 0, 8, 8].",
           "Forged: [0.5, 0.5, 1.0, 1.0] and the polygon [(0, 8), (8, 8), (0, 16)].",
           "The forged box is [3, 4, 5], roughly.",
           "It looks fake to me.")


def answer_for(sample_id: str) -> str:
    return ANSWERS[int(sample_id.lstrip("s")) % len(ANSWERS)]


class TexterModel(ConstantModel):
    def __init__(self, log: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.log = log

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        if self.log:
            with open(self.log, "a") as handle:
                handle.write(" ".join(r.sample_id for r in requests) + "\n")
        if any(r.reference != "mask_and_description" for r in requests):
            return super().generate(requests)
        return [Response(text=answer_for(r.sample_id)) for r in requests]


@hookimpl
def dfabench_register_models(register):
    register("texter", "dfabench_fl_testmodels:TexterModel", description="test: FL answers with masks in text")
