"""The ``hf`` model: any image-text-to-text checkpoint transformers can load.

Prompts come from the processor's chat template; a batch is generated in one call with LEFT
padding; decoding is greedy unless the task sets a temperature (then it samples with the
task's seed). Only the task's settings steer decoding: the checkpoint's own
``generation_config`` sampling defaults (repetition penalty, top-k, ...) are switched off so
that every model is decoded the same way.

**Choice log-probabilities** (DF-D's ``("yes", "no")``). For each choice ``c`` the model
reports ``log P(the answer starts with c)``, read from the next-token distribution after the
prompt, in the same forward pass as the generation (the prefill's last-position logits,
captured by a forward hook, before any logits processor):

    log P(c) = logsumexp over the distinct first tokens t of the spellings
               c, c.lower(), c.capitalize(), c.upper(), each with and without a leading space,
               of log_softmax(logits)[t]

A first token is kept only when its text (stripped, lower-cased) is a non-empty prefix of
the choice and it is not also a first token of another choice, so a bare space or a shared
piece never counts for both. The runner turns the two values into P(fake) by a softmax over
the two choices. A choice none of whose spellings keeps a token gets no log-probability:
then the response has ``choice_logprobs=None`` (no score, never a made-up one).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from typing import Any

import torch

from dfabench.api import GenerateRequest, GenerationSettings, Model, Response
from dfabench_hf.options import HFOptions

log = logging.getLogger(__name__)


def count_images(messages: Sequence[dict[str, Any]]) -> int:
    """How many ``{"type": "image"}`` parts the chat messages hold."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            total += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image")
    return total


def choice_spellings(choice: str) -> list[str]:
    """The spellings whose first token counts for ``choice`` (see the module docstring)."""
    bases = dict.fromkeys([choice, choice.lower(), choice.capitalize(), choice.upper()])
    return [prefix + base for base in bases for prefix in ("", " ")]


def choice_token_ids(tokenizer, choices: Sequence[str]) -> dict[str, list[int]]:
    """For each choice, the distinct first-token ids of its spellings, without ambiguous ones."""
    candidates: dict[str, set[int]] = {}
    for choice in choices:
        wanted = choice.strip().lower()
        ids: set[int] = set()
        for spelling in choice_spellings(choice):
            encoded = tokenizer.encode(spelling, add_special_tokens=False)
            if not encoded:
                continue
            piece = tokenizer.decode([encoded[0]]).strip().lower()
            if piece and wanted.startswith(piece):
                ids.add(encoded[0])
        candidates[choice] = ids
    owners: dict[int, int] = {}
    for ids in candidates.values():
        for token in ids:
            owners[token] = owners.get(token, 0) + 1
    return {choice: sorted(t for t in ids if owners[t] == 1) for choice, ids in candidates.items()}


class _PrefillLogits:
    """Forward hook keeping the last-position logits of the first forward call (the prefill)."""

    def __init__(self):
        self.logits: torch.Tensor | None = None

    def __call__(self, module, args, output) -> None:
        if self.logits is None:
            logits = output["logits"] if isinstance(output, dict) else output.logits
            self.logits = logits[:, -1, :].detach().float()


class HFModel(Model):
    """An image-text-to-text transformers model (see the module docstring and :class:`HFOptions`)."""

    capabilities = frozenset({"generate"})
    deterministic = True
    default_batch_size = 8
    #: a batch size changes no answer (batched == one by one is tested), so it stays out of the fingerprint
    operational_args = ("batch_size",)
    #: the registered name, used in messages
    model_name = "hf"

    def __init__(self, **args: Any):
        self.options = self._parse_options(args)
        if self.options.batch_size:
            self.default_batch_size = self.options.batch_size
        self._load()

    # ------------------------------------------------------------------ loading

    def _parse_options(self, args: dict[str, Any]) -> HFOptions:
        return HFOptions.parse(self.model_name, **args)

    def _load(self) -> None:
        from dfabench_hf import loading

        opts = self.options
        self.device = loading.resolve_device(opts.device)
        self.config = loading.load_config(opts.path, revision=opts.revision, trust_remote_code=opts.trust_remote_code)
        self.processor = loading.load_processor(opts.path, self.config, revision=opts.revision,
                                                trust_remote_code=opts.trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        self.model = loading.load_model(opts.path, self.config, dtype=opts.dtype, device=self.device,
                                        revision=opts.revision, trust_remote_code=opts.trust_remote_code,
                                        attn_implementation=opts.attn_implementation)
        self._after_load()
        self._choice_ids: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self._identity: dict[str, Any] | None = None

    def _after_load(self) -> None:
        """Subclasses change the loaded model here (e.g. add an adapter)."""

    @property
    def input_device(self) -> torch.device:
        """Where input tensors go (the first device of a model spread over several GPUs)."""
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    # ------------------------------------------------------------------ identity

    def identity(self) -> dict[str, Any]:
        """Checkpoint fingerprints (weights, config, processor), hub revision, dtype, architecture."""
        if self._identity is None:
            self._identity = self._compute_identity()
        return dict(self._identity)

    def _compute_identity(self) -> dict[str, Any]:
        import transformers

        from dfabench_hf.fingerprint import checkpoint_fingerprint, local_checkpoint_folder, module_fingerprint

        folder, revision = local_checkpoint_folder(self.options.path, self.options.revision)
        revision = getattr(self.config, "_commit_hash", None) or revision
        if folder is not None:
            prints = checkpoint_fingerprint(folder)
        else:
            prints = {"weights_sha256": None, "config_sha256": None, "processor_sha256": None}
        if prints["weights_sha256"] is None:
            prints["weights_sha256"] = module_fingerprint(self.model)
        architectures = getattr(self.config, "architectures", None) or [type(self.model).__name__]
        return {
            "architecture": architectures[0],
            "model_type": getattr(self.config, "model_type", None),
            "revision": revision,
            **prints,
            "dtype": str(self.dtype).removeprefix("torch."),
            "transformers": transformers.__version__,
        }

    # ------------------------------------------------------------------ generation

    def generate(self, requests: list[GenerateRequest]) -> list[Response]:
        """Generate for a batch; requests with different settings or image counts go in sub-batches."""
        groups: dict[tuple, list[int]] = {}
        for index, request in enumerate(requests):
            key = (request.settings, count_images(request.messages))
            groups.setdefault(key, []).append(index)
        responses: list[Response | None] = [None] * len(requests)
        for indices in groups.values():
            batch = [requests[i] for i in indices]
            for index, response in zip(indices, self._generate_batch(batch), strict=True):
                responses[index] = response
        return responses  # type: ignore[return-value]

    def build_prompt(self, request: GenerateRequest) -> str:
        """The prompt text of a request, from the chat template."""
        return self.processor.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)

    def prepare_inputs(self, requests: Sequence[GenerateRequest]):
        """Tokenize and preprocess a batch (left padding) and move it to the model's device."""
        prompts = [self.build_prompt(r) for r in requests]
        n_images = count_images(requests[0].messages)
        images = None
        if n_images:
            for request in requests:
                if request.image is None:
                    raise ValueError(f"sample {request.sample_id!r}: the messages hold an image, the request none")
            images = [[request.image] * n_images for request in requests]
        inputs = self.processor(text=prompts, images=images, padding=True, return_tensors="pt")
        moved = {}
        for name, value in inputs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.input_device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            moved[name] = value
        return moved

    def _generation_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        config = self.model.generation_config
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.options.max_new_tokens or settings.max_new_tokens,
            "num_beams": 1,
            "repetition_penalty": 1.0,
            "no_repeat_ngram_size": 0,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": config.eos_token_id if config.eos_token_id is not None else self.tokenizer.eos_token_id,
        }
        if settings.deterministic:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
        return kwargs

    def _eos_ids(self) -> set[int]:
        eos = self._generation_kwargs(GenerationSettings())["eos_token_id"]
        if eos is None:
            return set()
        return set(eos) if isinstance(eos, (list, tuple)) else {int(eos)}

    def _generate_batch(self, requests: list[GenerateRequest]) -> list[Response]:
        settings = requests[0].settings
        inputs = self.prepare_inputs(requests)
        want_choices = any(r.choices for r in requests)
        capture = _PrefillLogits()
        handle = self.model.register_forward_hook(capture) if want_choices else None
        try:
            if not settings.deterministic:
                torch.manual_seed(settings.seed)
            with torch.inference_mode():
                output = self.model.generate(**inputs, **self._generation_kwargs(settings))
        except torch.cuda.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise
        finally:
            if handle is not None:
                handle.remove()
        prompt_length = inputs["input_ids"].shape[1]
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist() if "attention_mask" in inputs else None
        generated = output[:, prompt_length:].tolist()
        eos_ids = self._eos_ids()
        logprobs = torch.log_softmax(capture.logits, dim=-1) if capture.logits is not None else None
        responses = []
        for row, request in enumerate(requests):
            tokens = generated[row]
            length = len(tokens)
            for position, token in enumerate(tokens):
                if token in eos_ids:
                    length = position + 1
                    break
            text = self.tokenizer.decode(tokens[:length], skip_special_tokens=True).strip()
            choice_logprobs = None
            if request.choices and logprobs is not None:
                choice_logprobs = self._choice_logprobs(request.choices, logprobs[row])
            responses.append(Response(text=text, prompt_tokens=int(prompt_tokens[row]) if prompt_tokens else None,
                                      completion_tokens=length, choice_logprobs=choice_logprobs))
        return responses

    def _choice_logprobs(self, choices: Sequence[str], logprobs: torch.Tensor) -> dict[str, float] | None:
        choices = tuple(choices)
        ids = self._choice_ids.get(choices)
        if ids is None:
            ids = self._choice_ids[choices] = choice_token_ids(self.tokenizer, choices)
            missing = [c for c, t in ids.items() if not t]
            if missing:
                log.warning("%s: no unambiguous first token for the answer option(s) %s: "
                            "no choice log-probabilities (no DF-D score)", self.model_name, missing)
        if any(not t for t in ids.values()):
            return None
        out = {}
        for choice, token_ids in ids.items():
            out[choice] = torch.logsumexp(logprobs[token_ids], dim=0).item()
        return out

    # ------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Drop the model and free GPU memory."""
        for name in ("model", "processor", "tokenizer"):
            if hasattr(self, name):
                delattr(self, name)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
