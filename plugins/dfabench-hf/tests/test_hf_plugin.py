"""The plugin entry point, the Qwen2-VL processor fallback and the file fingerprints."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_the_plugin_registers_hf_without_importing_torch():
    code = (
        "import json, sys\n"
        "from dfabench.plugins import PluginManager\n"
        "pm = PluginManager()\n"
        "info = [p for p in pm.plugins if p.name == 'hf'][0]\n"
        "entry = pm.models.get('transformers')\n"
        "print(json.dumps({'error': info.error, 'dist': info.distribution, 'name': entry.name,\n"
        "                  'factory': entry.factory, 'caps': list(entry.capabilities),\n"
        "                  'heavy': sorted(m for m in ('torch', 'transformers') if m in sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found == {"error": None, "dist": "dfabench-hf", "name": "hf", "factory": "dfabench_hf.model:HFModel",
                     "caps": ["generate"], "heavy": []}


def test_the_placeholder_processor_expands_one_token_per_merged_patch(tiny_checkpoints, tiny_models, face_images):
    from dfabench_hf.loading import PlaceholderProcessor

    processor = tiny_models["qwen2_vl"].processor
    assert isinstance(processor, PlaceholderProcessor)
    text = "<|vision_start|><|image_pad|><|vision_end|>Is it fake?"
    inputs = processor(text=[text, "no image here " + text], images=[[face_images[0]], [face_images[3]]],
                       padding=True, return_tensors="pt")
    grids = inputs["image_grid_thw"]
    merge = processor.image_processor.merge_size ** 2
    counts = (inputs["input_ids"] == processor.image_token_id).sum(dim=1).tolist()
    assert counts == [int(g.prod()) // merge for g in grids]
    assert inputs["mm_token_type_ids"].sum(dim=1).tolist() == counts
    assert inputs["pixel_values"].shape[0] == int(grids.prod(dim=1).sum())
    with pytest.raises(ValueError, match="placeholders"):
        processor(text=[text + "<|image_pad|>"], images=[[face_images[0]]], return_tensors="pt")


def test_big_files_are_fingerprinted_by_size_and_edges(tmp_path, monkeypatch):
    from dfabench_hf import fingerprint

    monkeypatch.setattr(fingerprint, "WHOLE_FILE_LIMIT", 1000)
    monkeypatch.setattr(fingerprint, "EDGE_BYTES", 100)
    path = tmp_path / "model-00001-of-00002.safetensors"
    data = bytearray(range(256)) * 10
    path.write_bytes(bytes(data))
    first = fingerprint.file_digest(path)
    data[1200] ^= 1  # the middle: not read
    path.write_bytes(bytes(data))
    assert fingerprint.file_digest(path) == first
    data[-1] ^= 1  # the last block: read
    path.write_bytes(bytes(data))
    assert fingerprint.file_digest(path) != first
    small = tmp_path / "config.json"
    small.write_text("{}")
    prints = fingerprint.checkpoint_fingerprint(tmp_path)
    assert prints["weights_sha256"] and prints["config_sha256"] and prints["processor_sha256"] is None


def test_a_local_folder_has_no_hub_revision(tmp_path):
    from dfabench_hf.fingerprint import local_checkpoint_folder

    assert local_checkpoint_folder(str(tmp_path)) == (tmp_path, None)
