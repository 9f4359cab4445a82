"""A plugin of test models for prompt variants, loaded through DFABENCH_PLUGINS=dfabench_testvariants.

- ``phrasing``: a model whose answer depends only on how the question is phrased (never on the image): to the
  yes/no DF-D question it says "Yes." (fake), to the lettered one "B" (real), to "real or fake?" "real"; to
  the DF-C questions "face swap", "C" (face editing) for the lettered one, and "I cannot tell." (unparsed) for
  the open one. It counts its calls in ``calls`` (a file, one line per batch) when given one.
"""

from __future__ import annotations

from dfabench import hookimpl
from dfabench.models import GenerateRequest, Model, Response


def _question(request: GenerateRequest) -> str:
    for message in reversed(request.messages):
        if message["role"] == "user":
            return " ".join(p.get("text", "") for p in message["content"] if p.get("type") == "text")
    return ""


class PhrasingModel(Model):
    capabilities = frozenset({"generate"})
    default_batch_size = 64

    def __init__(self, calls: str | None = None):
        self.calls = calls

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        if self.calls:
            with open(self.calls, "a") as handle:
                handle.write(f"{len(requests)}\n")
        out = []
        for request in requests:
            question = _question(request)
            lettered = "\nA. " in question
            if request.reference == "label":
                text = "B" if lettered else "real" if "real or fake" in question else "Yes."
            elif request.reference == "category":
                text = "C" if lettered else "face swap" if "Choose one of" in question else "I cannot tell."
            else:
                text = "No artifacts."
            out.append(Response(text=text))
        return out


@hookimpl
def dfabench_register_models(register):
    register("phrasing", "dfabench_testvariants:PhrasingModel", capabilities=("generate",),
             description="test: answers by the phrasing of the question, never by the image")
