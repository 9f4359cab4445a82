"""The ``dfabench`` entry point of dfabench-detectors. Imports nothing heavy: models are named by
``"module:attr"`` strings and created only when a run needs them."""

from dfabench.api import hookimpl


@hookimpl
def dfabench_register_models(register):
    # --- DeepfakeBench checkpoints (dfabench_detectors.deepfakebench)
    dfb_args = "args: weights=PATH (required: .pth or .safetensors), size, device"
    register("dfb-xception", "dfabench_detectors.deepfakebench:XceptionDetector", capabilities=("score",),
             description=f"DeepfakeBench's Xception checkpoint (timm legacy_xception; needs the timm extra) "
                         f"({dfb_args})")
    register("dfb-efficientnet-b4", "dfabench_detectors.deepfakebench:EfficientNetB4Detector",
             capabilities=("score",),
             description=f"DeepfakeBench's EfficientNet-B4 checkpoint (transformers EfficientNet) ({dfb_args})")
    register("dfb-clip", "dfabench_detectors.deepfakebench:CLIPDetector", capabilities=("score",),
             description=f"DeepfakeBench's CLIP ViT-B/16 checkpoint (transformers CLIPVisionModel) ({dfb_args})")
    # --- end DeepfakeBench checkpoints
    # --- the learned baseline (dfabench_detectors.learned)
    register("learned-mobilenet", "dfabench_detectors.learned:LearnedDetector", capabilities=("score",),
             description="ImageNet MobileNetV2 fine-tuned on the benchmark's train split (model selection on val; "
                         "cached; args: weights, backbone, size, crop, epochs, batch_size, lr, weight_decay, seed)")
    # --- end learned baseline
    pass


@hookimpl
def dfabench_register_commands(register):
    # --- the learned baseline's commands (dfabench_detectors.cli)
    register("detectors", help="train and inspect the learned baseline outside a run")
    register("detectors train", "dfabench_detectors.cli:add_train_arguments", "dfabench_detectors.cli:train_command",
             help="fine-tune learned-mobilenet on a benchmark's train split (model selection on val)")
    register("detectors info", "dfabench_detectors.cli:add_info_arguments", "dfabench_detectors.cli:info_command",
             help="show what a saved learned-mobilenet model was trained on")
    # --- end learned baseline's commands
    pass
