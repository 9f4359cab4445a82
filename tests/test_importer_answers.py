"""The DFA-Instruct importer reads answers with the benchmark's own parsers (issue 11): a DFA-style file
whose DF-C answers describe the technique instead of naming the category imports every record."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from dfabench.data.importers import import_dfa_instruct
from dfabench.data.manifest import load_benchmark
from dfabench.parsing import parse_category, parse_detection

DFD = "Has this face been forged?"
DFC = "What kind of technique is used to manipulate the image?"

# DF-C answers that describe the technique, as DFA-style annotations and MLLM answers do
DESCRIPTIONS = {
    "FS": ["The image appears to have been created using face-swapping technology.",
           "The identity of the person has been replaced with someone else's.",
           "Another person's face was pasted onto the target's head.",
           "The face was replaced with a different individual's face using an autoencoder.",
           "It was made with SimSwap."],
    "FR": ["This was created with the First Order Motion Model.",
           "The expression and pose were driven by another video.",
           "A driving video controls the expressions of the target face.",
           "The lip movements were synchronised with a different audio track.",
           "The portrait was animated from a single photo."],
    "FE": ["Attributes such as age and hair color were edited.",
           "Glasses were added and the person was made to look older.",
           "Only the hair color was changed; the identity stays the same.",
           "The smile was edited while the rest of the face is untouched.",
           "The facial attributes (beard, makeup) were manipulated."],
    "EFS": ["The entire face was synthesized by a generative model.",
            "It was produced by a diffusion model.",
            "The whole image was generated from scratch by a GAN.",
            "This person does not exist; the face was created by StyleGAN.",
            "A text-to-image model generated this portrait."],
}
DETECTION_ANSWERS = ["Yes.", "Yes, this face has been forged.", "The face has been manipulated.",
                     "Yes. The blending around the jaw is visible.", "This face is fake.", "Yes, it is a deepfake.",
                     "Yes, the face shows clear signs of forgery.", "It has been digitally altered."]


def _record(index: int, image: str, detection: str, category: str) -> dict:
    return {"id": f"r{index}", "image": image, "conversations": [
        {"from": "human", "value": "<image>\n" + DFD}, {"from": "gpt", "value": detection},
        {"from": "human", "value": DFC}, {"from": "gpt", "value": category}]}


def test_technique_descriptions_import_every_record(tmp_path: Path) -> None:
    records, expected = [], {}
    pairs = [(c, text) for _ in range(2) for c, texts in DESCRIPTIONS.items() for text in texts]
    for index, (category, text) in enumerate(pairs):
        image = f"imgs/{index}.png"
        (tmp_path / "imgs").mkdir(exist_ok=True)
        Image.new("RGB", (8, 8), (index, 0, 0)).save(tmp_path / image)
        records.append(_record(index, image, DETECTION_ANSWERS[index % len(DETECTION_ANSWERS)], text))
        expected[f"r{index}"] = category
    src = tmp_path / "dfa_test.json"
    src.write_text(json.dumps(records))
    report = import_dfa_instruct(src, tmp_path / "bench")
    assert report.skipped == [] and report.n_imported == 40
    samples = load_benchmark(report.out).samples
    assert {s.id: s.category for s in samples} == expected
    assert {s.label for s in samples} == {"fake"}


def test_the_importer_reads_answers_as_the_parsers_do(tmp_path: Path) -> None:
    """A record imports exactly when the benchmark's parsers read its answers: the same rules, no copy."""
    answers = [("No, there is no indication that this face has been forged.", None),
               ("It might be fake.", None),
               ("Yes.", "It could be face swap or face editing.")]
    records = []
    (tmp_path / "imgs").mkdir()
    for index, (detection, category) in enumerate(answers):
        Image.new("RGB", (8, 8)).save(tmp_path / f"imgs/{index}.png")
        record = _record(index, f"imgs/{index}.png", detection, category or "")
        if category is None:
            record["conversations"] = record["conversations"][:2]
        records.append(record)
    (tmp_path / "dfa.json").write_text(json.dumps(records))
    report = import_dfa_instruct(tmp_path / "dfa.json", tmp_path / "bench")
    imported = {s.id: (s.label, s.category) for s in load_benchmark(report.out).samples}
    for index, (detection, category) in enumerate(answers):
        label = parse_detection(detection)
        parsed_category = parse_category(category) if category else None
        readable = label is not None and (category is None or label == "real" or parsed_category is not None)
        assert (f"r{index}" in imported) == readable
        if readable:
            assert imported[f"r{index}"] == (label, parsed_category if label == "fake" else None)
    assert imported == {"r0": ("real", None)}
