"""Masks from chat models (issue 13, part 5): the FL answer of a model that cannot localize is read from its
text (dfabench.masks): coordinates rasterised, region names placed by landmarks or the layout, malformed
coordinates give no mask; each sample says how its mask was obtained and the run counts the sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfabench.errors import InputError
from dfabench.masks import SOURCES, TextMasker, masker_for
from dfabench.masks.coordinates import find_shapes, rasterise
from dfabench.masks.layout import LAYOUT_EYES_MIDPOINT, LAYOUT_INTEROCULAR, REGION_ELLIPSES, layout_frame, region_mask
from dfabench.metrics.localization import mask_scores
from dfabench.tasks import TaskSpec

REPO = Path(__file__).resolve().parents[1]
SIZE = 16


def _box(x1, y1, x2, y2, size=(SIZE, SIZE)):
    """The pixels whose centres lie in [x1, x2) x [y1, y2), by direct slicing of integer bounds."""
    mask = np.zeros((size[1], size[0]), dtype=bool)
    cols = [c for c in range(size[0]) if x1 <= c + 0.5 < x2]
    rows = [r for r in range(size[1]) if y1 <= r + 0.5 < y2]
    for r in rows:
        mask[r, cols] = True
    return mask


# ------------------------------------------------------------------ the coordinate grammar


def test_boxes_in_pixels_and_in_fractions_are_rasterised_by_pixel_centres():
    shapes, problem = find_shapes("boxes [2, 3, 10, 7] and [0.5, 0.5, 1.0, 1.0]", (SIZE, SIZE))
    assert problem is None and [s.kind for s in shapes] == ["box", "box"]
    assert shapes[1].points == ((8.0, 8.0), (16.0, 16.0))
    assert np.array_equal(rasterise(shapes, (SIZE, SIZE)), _box(2, 3, 10, 7) | _box(8, 8, 16, 16))
    # integers in [0, 1] are pixels (the top-left pixel), a decimal point makes fractions
    assert np.array_equal(rasterise(find_shapes("[0, 0, 1, 1]", (SIZE, SIZE))[0], (SIZE, SIZE)), _box(0, 0, 1, 1))
    # a fractional box of a non-square image scales x by the width and y by the height
    shapes, _ = find_shapes("[0.25, 0.5, 0.75, 1.0]", (8, 4))
    assert shapes[0].points == ((2.0, 2.0), (6.0, 4.0))


def test_a_polygon_is_filled_by_the_even_odd_rule_and_a_rectangle_polygon_equals_its_box():
    triangle, problem = find_shapes("the polygon [(0, 0), (16, 0), (0, 16)]", (SIZE, SIZE))
    assert problem is None and triangle[0].kind == "polygon"
    # centres on the left and top edges are inside, those on the hypotenuse x + y = 16 (a right edge) are not
    expected = np.array([[(c + 0.5) + (r + 0.5) < 16 for c in range(SIZE)] for r in range(SIZE)])
    assert np.array_equal(rasterise(triangle, (SIZE, SIZE)), expected)
    rect = rasterise(find_shapes("[(2.2, 3), (9.7, 3), (9.7, 12.5), (2.2, 12.5)]", (SIZE, SIZE))[0], (SIZE, SIZE))
    assert np.array_equal(rect, rasterise(find_shapes("[2.2, 3, 9.7, 12.5]", (SIZE, SIZE))[0], (SIZE, SIZE)))
    assert np.array_equal(rect, _box(2.2, 3, 9.7, 12.5))


@pytest.mark.parametrize("text, problem", [
    ("[3, 4, 5]", "3 numbers"),
    ("[12, 3]", "2 numbers"),
    ("[(1, 2), (3, 4)]", "at least three"),
    ("[(1, 2), (3, 4), (5, 6),]", "pairs separated by commas"),
    ("[(1, 2) (3, 4), (5, 6)]", "pairs separated by commas"),
    ("[-1, 2, 3, 4]", "signed number"),
    ("[1, 2, 300, 4]", "outside the 16x16 image"),
    ("[5, 5, 2, 2]", "x1 < x2 and y1 < y2"),
    ("[1.5.5, 2, 3, 4]", "is not a number"),
    ("a good box [1, 1, 4, 4] then a bad one [0.2, 0.3]", "2 numbers"),
])
def test_malformed_coordinates_are_named(text, problem):
    _, found = find_shapes(text, (SIZE, SIZE))
    assert found is not None and found.startswith("malformed coordinates") and problem in found


def test_bracketed_text_that_is_not_coordinates_is_ignored():
    assert find_shapes("as in [1], see [the note] and [ ]", (SIZE, SIZE)) == ([], None)


# ------------------------------------------------------------------ regions, layout and landmarks


def test_region_names_on_an_aligned_crop_give_the_layout_ellipses():
    image = Image.new("RGB", (40, 48), (128, 128, 128))  # no face to find: the layout of an aligned crop
    derived = TextMasker("none").derive("Blending at the mouth; the left cheek too.", image)
    assert derived.source == "regions:layout" and derived.regions == ["mouth", "cheek"]
    # the ellipses computed here directly from the documented layout constants
    ex, ey = LAYOUT_EYES_MIDPOINT[0] * 40, LAYOUT_EYES_MIDPOINT[1] * 48
    du, dv = LAYOUT_INTEROCULAR * 40, LAYOUT_INTEROCULAR * 48
    expected = np.zeros((48, 40), dtype=bool)
    for r in range(48):
        for c in range(40):
            a, b = (c + 0.5 - ex) / du, (r + 0.5 - ey) / dv
            expected[r, c] = any(((a - ca) / ra) ** 2 + ((b - cb) / rb) ** 2 <= 1
                                 for region in ("mouth", "cheek") for ca, cb, ra, rb in REGION_ELLIPSES[region])
    assert expected.any() and np.array_equal(derived.mask, expected)
    assert np.array_equal(derived.mask, region_mask(["cheek", "mouth"], (40, 48), layout_frame((40, 48))))


def test_every_mmtt_region_has_a_shape():
    from dfabench.vocab import FACE_REGIONS

    assert set(REGION_ELLIPSES) == set(FACE_REGIONS)
    for region in FACE_REGIONS:
        assert region_mask([region], (112, 112), layout_frame((112, 112))).any(), region


def test_no_region_and_no_coordinates_give_no_mask():
    derived = TextMasker("none").derive("It looks fake to me.", Image.new("RGB", (SIZE, SIZE)))
    assert derived.mask is None and derived.source == "none" and "names no face region" in derived.problem


def test_coordinates_win_over_region_names_and_malformed_ones_are_not_guessed_at():
    image = Image.new("RGB", (SIZE, SIZE))
    derived = TextMasker("none").derive("the mouth, at [0, 8, 16, 16]", image)
    assert derived.source == "coordinates" and np.array_equal(derived.mask, _box(0, 8, 16, 16))
    derived = TextMasker("none").derive("the mouth, at [0, 8, 16]", image)
    assert derived.source == "none" and derived.mask is None and "3 numbers" in derived.problem


def test_the_detector_places_the_regions_by_the_eyes_on_a_real_face():
    pytest.importorskip("cv2")
    from skimage import data

    from dfabench.masks import landmarks

    image = Image.fromarray(data.astronaut())  # a public-domain portrait
    found = landmarks.detect(image)
    assert found is not None and found.eyes is not None
    derived = TextMasker("opencv-haar").derive("the eyes look painted", image)
    assert derived.source == "regions:landmarks" and derived.problem is None
    for x, y in found.eyes:  # each detected eye centre is inside the eye mask, the mask is near the face
        assert derived.mask[int(y), int(x)]
    fx, fy, fw, fh = found.face
    rows, cols = np.nonzero(derived.mask)
    assert fx <= cols.min() and cols.max() <= fx + fw and fy <= rows.min() and rows.max() <= fy + fh
    identity = TextMasker("opencv-haar").identity
    assert identity.startswith("dfabench-text-masks/1; layout/1; opencv-haar/")


def test_without_the_detector_the_layout_is_used_and_the_identity_says_so(monkeypatch):
    from dfabench.masks import landmarks

    monkeypatch.setattr(landmarks, "available", lambda: (None, "opencv-python-headless is not installed"))
    masker = TextMasker("opencv-haar")
    assert masker.identity.endswith("opencv-haar unavailable")
    derived = masker.derive("the nose", Image.new("RGB", (32, 32)))
    assert derived.source == "regions:layout" and "unavailable" in derived.problem
    assert np.array_equal(derived.mask, region_mask(["nose"], (32, 32), layout_frame((32, 32))))
    assert TextMasker("none").identity.endswith("no detector")


def test_the_core_imports_and_derives_masks_without_opencv():
    """dfabench.masks, the executors and the mask metric import no OpenCV unless a detector is asked for."""
    code = ("import sys; import dfabench.masks, dfabench.executors.batch, dfabench.metrics.localization; "
            "from PIL import Image; m = dfabench.masks.TextMasker('none'); "
            "d = m.derive('the mouth', Image.new('RGB', (16, 16))); "
            "assert d.source == 'regions:layout' and 'cv2' not in sys.modules, sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ the FL spec


def test_the_fl_spec_admits_chat_models_and_names_the_method():
    from dfabench.plugins import get_manager

    spec = get_manager().tasks.get("FL")
    assert spec.version == "3" and spec.requires == ("localize", "generate")
    assert spec.serves({"generate", "localize"}) == "localize" and spec.serves({"generate"}) == "generate"
    assert spec.serves({"score"}) is None
    assert spec.metric_options["mask"]["from_text"] == {"version": 1, "detector": "opencv-haar"}
    assert masker_for(spec) is not None


@pytest.mark.parametrize("options, problem", [
    ({"version": 2}, "version must be 1"),
    ({"detector": "dlib"}, "detector must be one of"),
    ({"version": 1, "detectr": "none"}, "unknown key"),
    ("opencv-haar", "must be a mapping"),
])
def test_bad_from_text_options_are_refused_naming_the_spec(options, problem):
    from dfabench.plugins import get_manager

    data = get_manager().tasks.get("FL").to_dict()
    data["metric_options"] = {"mask": {"protocol": "mmtt", "from_text": options}}
    spec = TaskSpec.from_dict(data, source="my-fl.yaml")
    with pytest.raises(InputError, match=problem) as info:
        masker_for(spec)
    assert "my-fl.yaml" in str(info.value)


# ------------------------------------------------------------------ a run of a chat model on FL


@pytest.fixture
def fl_cli(cli, monkeypatch):
    from dfabench.plugins import reset_manager

    monkeypatch.setenv("DFABENCH_PLUGINS", "dfabench_testmodels,dfabench_fl_testmodels")
    reset_manager(None)
    return cli


def _expected_mask(sample_id: str):
    """What the texter's answer for ``sample_id`` must give, computed here directly (16x16 noise images: no
    face, so region names use the layout)."""
    from dfabench_fl_testmodels import answer_for

    text = answer_for(sample_id)
    if "[0, 0, 8, 8]" in text:
        return "coordinates", _box(0, 0, 8, 8)
    if "polygon" in text:
        triangle = np.array([[r + 0.5 >= 8 and (c + 0.5) + (r + 0.5) < 16 for c in range(SIZE)]
                             for r in range(SIZE)])
        return "coordinates", _box(8, 8, 16, 16) | triangle
    if "mouth" in text:
        return "regions:layout", region_mask(["mouth", "cheek"], (SIZE, SIZE), layout_frame((SIZE, SIZE)))
    return "none", None


def test_a_chat_model_gets_masks_from_its_text_and_the_numbers_equal_a_direct_computation(fl_cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, size=SIZE, with_masks=True)
    out = tmp_path / "run"
    code, _, err = fl_cli("run", "--model", "texter", "--tasks", "FL", "--bench", str(bench), "--out", str(out),
                          "--no-progress")
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    samples = [json.loads(line) for line in (out / "samples-FL.jsonl").read_text().splitlines()]
    assert record["tasks"]["FL"]["capability"] == "generate" and len(samples) == 8
    truth = np.zeros((SIZE, SIZE), dtype=bool)
    truth[: SIZE // 2] = True  # the benchmaker's reference: the top half
    scores, sources = [], []
    for sample in samples:
        source, expected = _expected_mask(sample["id"])
        assert sample["mask_source"] == source, sample
        sources.append(source)
        derivation = sample["mask_derivation"]
        assert derivation["method"] == record["breakdowns"]["FL"]["mask"]["text_methods"][0]
        if expected is None:
            assert sample["parsed"]["mask"] is None and sample["unparsed"] and derivation["problem"]
            expected = np.zeros_like(truth)
        else:
            written = np.asarray(Image.open(out / sample["parsed"]["mask"])) > 127
            assert np.array_equal(written, expected), sample["id"]
            assert sample["parsed"]["mask"] in record["samples"]["FL"]["masks"]
        scores.append(mask_scores(expected, truth))
    metrics = record["metrics"]["FL"]
    for name in ("iou", "precision", "recall", "f1"):
        assert metrics[name]["value"] == pytest.approx(np.mean([s[name] for s in scores]), abs=1e-12)
    groups = {"model": 0, "coordinates": 0, "regions": 0, "none": 0}
    for source in sources:
        groups[source.split(":")[0]] += 1
    for group, n in groups.items():
        assert metrics[f"mask_source_{group}"]["value"] == pytest.approx(n / 8)
    assert metrics["coverage"]["value"] == pytest.approx(1 - groups["none"] / 8)
    assert record["breakdowns"]["FL"]["mask"]["sources"] == {s: sources.count(s) for s in SOURCES}
    assert groups["none"] and groups["coordinates"] and groups["regions"]  # the test covers each kind
    assert record["counts"]["FL"]["n_unparsed"] == groups["none"]
    assert fl_cli("verify", str(out), "--bench", str(bench))[0] == 0
    # a derived mask is evidence like a model's: changing one is caught
    changed = next(s for s in samples if s["parsed"]["mask"])
    Image.fromarray(np.zeros((SIZE, SIZE), dtype=np.uint8)).save(out / changed["parsed"]["mask"])
    code, stdout, _ = fl_cli("verify", str(out), "--bench", str(bench))
    assert code == 1 and "does not match the SHA-256" in stdout


def test_a_localizing_model_keeps_its_own_masks_and_a_missing_one_is_not_derived(fl_cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, size=SIZE, with_masks=True)
    out = tmp_path / "run"
    assert fl_cli("run", "--model", "masker", "--tasks", "FL", "--bench", str(bench), "--out", str(out),
                  "--no-progress")[0] == 0
    record = json.loads((out / "run.json").read_text())
    samples = [json.loads(line) for line in (out / "samples-FL.jsonl").read_text().splitlines()]
    assert {s["mask_source"] for s in samples} == {"model"} and not any("mask_derivation" in s for s in samples)
    assert record["metrics"]["FL"]["mask_source_model"]["value"] == 1.0
    assert record["breakdowns"]["FL"]["mask"]["text_methods"] == []


def test_cached_answers_are_reused_and_masks_derived_another_way_are_derived_again_without_asking(fl_cli, tmp_path,
                                                                                                  monkeypatch):
    from benchmaker import make_benchmark

    from dfabench.masks import TextMasker

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, size=SIZE, with_masks=True)
    log, cache = tmp_path / "calls.log", tmp_path / "cache.sqlite"

    def run(name):
        return fl_cli("run", "--model", "texter", "--model-arg", f"log={log}", "--tasks", "FL", "--bench",
                      str(bench), "--out", str(tmp_path / name), "--cache", str(cache), "--no-progress")[0]

    assert run("first") == 0
    asked = log.read_text().split()
    assert len(asked) == 8
    assert run("second") == 0 and log.read_text().split() == asked  # all from the cache
    monkeypatch.setattr(TextMasker, "identity", property(lambda self: "another method"))
    assert run("third") == 0 and log.read_text().split() == asked  # the cached text, its mask derived anew
    third = [json.loads(line) for line in (tmp_path / "third" / "samples-FL.jsonl").read_text().splitlines()]
    first = [json.loads(line) for line in (tmp_path / "first" / "samples-FL.jsonl").read_text().splitlines()]
    assert {s["mask_derivation"]["method"] for s in third} == {"another method"}
    assert [s["response"] for s in third] == [s["response"] for s in first]
    assert run("fourth") == 0 and log.read_text().split() == asked  # the new derivation went back to the cache
    fourth = [json.loads(line) for line in (tmp_path / "fourth" / "samples-FL.jsonl").read_text().splitlines()]
    assert [s.get("cached") for s in fourth] == [True] * len(fourth)


def test_a_score_only_model_still_gets_no_fl_number(fl_cli, tmp_path):
    from benchmaker import make_benchmark

    bench = make_benchmark(tmp_path / "bench", n_real=2, n_per_category=2, size=SIZE, with_masks=True)
    out = tmp_path / "run"
    assert fl_cli("run", "--model", "random", "--model-arg", "mode=score", "--tasks", "FL", "--bench", str(bench),
                  "--out", str(out), "--no-progress")[0] == 0
    record = json.loads((out / "run.json").read_text())
    assert record["tasks"]["FL"]["status"].startswith("n/a") and "FL" not in record["metrics"]
