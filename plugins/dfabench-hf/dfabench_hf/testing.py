"""Tiny, randomly initialised vision-language checkpoints for tests, built offline.

Each builder writes a complete checkpoint folder (config, ``model.safetensors``, tokenizer,
processor, chat template) that loads through ``AutoProcessor`` /
``AutoModelForImageTextToText`` exactly like a real one, in a fraction of a second. The
tokenizer is a byte-level BPE trained on a few sentences; the weights are random, so the
answers are gibberish but deterministic.

- :func:`build_tiny_llava`: CLIP vision tower + Llama, ``LlavaProcessor`` (LLaVA-1.5 template);
- :func:`build_tiny_idefics3`: SigLIP vision + Llama (the SmolVLM architecture), no image splitting;
- :func:`build_tiny_qwen2_vl`: Qwen2-VL, saved without a video processor (that one needs
  torchvision); :mod:`dfabench_hf.loading` then assembles the processor from its parts.

Images of any size work; they are resized to :data:`IMAGE_SIZE`.
"""

from __future__ import annotations

from pathlib import Path

#: side of the square images the tiny models see
IMAGE_SIZE = 32

_CORPUS = [
    "Has this face been forged? Yes, this face has been forged. No, this face is real.",
    "Is this face real or fake? yes no Yes No YES NO real fake Real Fake.",
    "What kind of technique is used to manipulate the image? Face swapping is used.",
    "Face reenactment is used. Face editing is used. Entire face synthesis is used. FS FR FE EFS",
    "Can you detail the specific regions of the facial image where artifacts are evident?",
    "The forehead, the eyes, the cheek and jawline, the mouth and lips show blurred boundaries,",
    "unnatural skin texture and inconsistent lighting. USER: ASSISTANT: User: Assistant: system user assistant",
]

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

QWEN2_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(special_tokens: list[str], *, bos: str | None, eos: str, pad: str, chat_template: str,
                    vocab_size: int = 384, extra: dict | None = None):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on a few sentences (milliseconds)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 3, trainer)
    kwargs = {"eos_token": eos, "pad_token": pad, **(extra or {})}
    if bos is not None:
        kwargs["bos_token"] = bos
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    tokenizer.chat_template = chat_template
    tokenizer.padding_side = "left"
    return tokenizer


def _llama_config(vocab_size: int, tokenizer, **overrides):
    from transformers import LlamaConfig

    values = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                  initializer_range=0.2, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                  bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=False)
    values.update(overrides)
    return LlamaConfig(**values)


def _save(model, processor, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_llava(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny random LLaVA-1.5-style checkpoint (CLIP + Llama + MLP projector) to ``path``."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    path = Path(path)
    tokenizer = build_tokenizer(["<unk>", "<s>", "</s>", "<pad>", "<image>"], bos="<s>", eos="</s>", pad="<pad>",
                                chat_template=LLAVA_CHAT_TEMPLATE, extra={"unk_token": "<unk>"})
    patch = 8
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=IMAGE_SIZE, patch_size=patch, projection_dim=32)
    n_image_tokens = (IMAGE_SIZE // patch) ** 2
    config = LlavaConfig(vision_config=vision, text_config=_llama_config(len(tokenizer), tokenizer),
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         image_seq_length=n_image_tokens, vision_feature_layer=-2,
                         vision_feature_select_strategy="default")
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                         crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE)
    return _save(model, processor, path)


def build_tiny_idefics3(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Idefics3 / SmolVLM checkpoint (SigLIP + Llama, no image splitting) to ``path``."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    path = Path(path)
    specials = ["<unk>", "<|im_start|>", "<end_of_utterance>", "<pad>", "<fake_token_around_image>", "<image>",
                "<global-img>"]
    tokenizer = build_tokenizer(specials, bos="<|im_start|>", eos="<end_of_utterance>", pad="<pad>",
                                chat_template=IDEFICS3_CHAT_TEMPLATE, extra={"unk_token": "<unk>"})
    patch, scale = 8, 2
    image_seq_len = (IMAGE_SIZE // patch) ** 2 // scale**2
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": IMAGE_SIZE, "patch_size": patch}
    config = Idefics3Config(vision_config=vision, text_config=_llama_config(len(tokenizer), tokenizer),
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=scale)
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    image_processor = Idefics3ImageProcessor(do_image_splitting=False, size={"longest_edge": IMAGE_SIZE},
                                             max_image_size={"longest_edge": IMAGE_SIZE})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=image_seq_len,
                                  chat_template=IDEFICS3_CHAT_TEMPLATE)
    return _save(model, processor, path)


def build_tiny_qwen2_vl(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Qwen2-VL checkpoint to ``path`` (image processor and tokenizer, no video processor)."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    path = Path(path)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    tokenizer = build_tokenizer(specials, bos=None, eos="<|im_end|>", pad="<|endoftext|>",
                                chat_template=QWEN2_VL_CHAT_TEMPLATE)
    hidden, heads = 64, 4
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=heads, num_key_value_heads=2, max_position_embeddings=1024,
                initializer_range=0.2, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                        "mrope_section": [2, 3, 3]},
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    vision = dict(depth=2, embed_dim=32, hidden_size=hidden, num_heads=2, mlp_ratio=2, patch_size=8,
                  spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    config = Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessor(patch_size=8, merge_size=2, temporal_patch_size=2,
                                            min_pixels=IMAGE_SIZE * IMAGE_SIZE, max_pixels=IMAGE_SIZE * IMAGE_SIZE)
    path.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    image_processor.save_pretrained(path)
    (path / "chat_template.jinja").write_text(QWEN2_VL_CHAT_TEMPLATE, encoding="utf-8")
    return path
