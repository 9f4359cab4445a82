"""The ``dfagpt`` model: a LLaVA-style base + a LoRA adapter (peft) + optionally trained projector weights.

Generation, batching and the DF-D choice log-probabilities are those of
:class:`dfabench_hf.model.HFModel`; this class only loads the extra weights and adds their
fingerprints to the identity.

Model arguments: ``base`` (checkpoint folder or hub name, required), ``adapter`` (the folder
``dfabench-dfagpt train`` wrote, or any peft LoRA folder; required), ``projector``
(projector weights in safetensors; default: ``projector.safetensors`` in the adapter folder
when it is there; ``none`` keeps the base's projector), plus every ``hf`` argument except
``path`` (``dtype``, ``device``, ``max_new_tokens``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dfabench.api import DfabenchError
from dfabench_hf.model import HFModel
from dfabench_hf.options import HFOptions

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")


class DFAGPTModel(HFModel):
    """DFA-GPT: base + LoRA adapter + projector (see the module docstring)."""

    model_name = "dfagpt"

    def _parse_options(self, args: dict[str, Any]) -> HFOptions:
        args = dict(args)
        if "path" in args:
            raise DfabenchError("dfagpt: give the base checkpoint as base=PATH_OR_NAME (not path=)")
        base, adapter, projector = args.pop("base", None), args.pop("adapter", None), args.pop("projector", None)
        if not base:
            raise DfabenchError("dfagpt: the model argument 'base' is required (the base checkpoint, e.g. "
                                "--model-arg base=llava-hf/llava-1.5-7b-hf)")
        if not adapter:
            raise DfabenchError("dfagpt: the model argument 'adapter' is required (a folder written by "
                                "`dfabench-dfagpt train`)")
        self.adapter_path = Path(str(adapter)).expanduser()
        if not (self.adapter_path / "adapter_config.json").is_file():
            raise DfabenchError(f"dfagpt: {self.adapter_path} is not a peft adapter folder (no adapter_config.json)")
        self.projector_path = self._projector_path(projector)
        return HFOptions.parse(self.model_name, path=str(base), **args)

    def _projector_path(self, value: Any) -> Path | None:
        from dfabench_dfagpt.parts import PROJECTOR_FILE

        if value is None:
            default = self.adapter_path / PROJECTOR_FILE
            return default if default.is_file() else None
        if str(value).strip().lower() == "none":
            return None
        path = Path(str(value)).expanduser()
        if path.is_dir():
            path = path / PROJECTOR_FILE
        if not path.is_file():
            raise DfabenchError(f"dfagpt: projector={value!r}: no such file")
        return path

    def _after_load(self) -> None:
        from peft import PeftModel

        from dfabench_dfagpt.parts import load_projector, quiet_peft

        if self.projector_path is not None:
            load_projector(self.model, self.projector_path)
        with quiet_peft():
            self.peft_model = PeftModel.from_pretrained(self.model, str(self.adapter_path), is_trainable=False)
        self.peft_model.eval()

    def _check_base(self, weights_sha256: str | None) -> None:
        """Refuse an adapter that `dfabench-dfagpt train` made on other base weights."""
        import json

        meta_path = self.adapter_path / "dfagpt.json"
        if weights_sha256 is None or not meta_path.is_file():
            return
        try:
            trained_on = json.loads(meta_path.read_text(encoding="utf-8")).get("base_fingerprint")
        except ValueError:
            raise DfabenchError(f"dfagpt: {meta_path}: malformed JSON") from None
        if trained_on and trained_on != weights_sha256:
            raise DfabenchError(f"dfagpt: the adapter {self.adapter_path} was trained on other base weights "
                                f"(base fingerprint {trained_on[:12]}, this base {weights_sha256[:12]})")

    def _compute_identity(self) -> dict[str, Any]:
        from dfabench_hf.fingerprint import files_digest

        identity = super()._compute_identity()
        self._check_base(identity.get("weights_sha256"))
        names = ["adapter_config.json"] + [n for n in ADAPTER_FILES if (self.adapter_path / n).is_file()]
        identity["adapter_sha256"] = files_digest(self.adapter_path, names)
        identity["projector_sha256"] = (files_digest(self.projector_path.parent, [self.projector_path.name])
                                        if self.projector_path is not None else None)
        return identity

    def close(self) -> None:
        if hasattr(self, "peft_model"):
            del self.peft_model
        super().close()
