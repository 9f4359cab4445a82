"""The vocabulary of the benchmark, defined once: detection labels, forgery categories and techniques.

Every module that needs a label, a category or a technique's category (the manifest, the parsers, the
metrics, the reference models, the smoke benchmark, the importers) takes it from here.

- :data:`LABELS`: ``real`` / ``fake`` (in this order: the rows of a detection confusion matrix);
- :data:`CATEGORIES`: the four DF40 forgery categories ``FS`` (face swap), ``FR`` (face reenactment),
  ``FE`` (face editing), ``EFS`` (entire face synthesis), with :data:`CATEGORY_NAMES`;
- the 40 DF40 techniques by category, their other spellings and the FaceForensics++ techniques, with
  :func:`canonical_technique` and :func:`technique_category`.

The words a free-text answer may use for a category (synonyms, paraphrases) are part of the answer
grammar and live with the parser (:mod:`dfabench.parsing`), built from these tables.
"""

from __future__ import annotations

import re
import unicodedata

LABELS = ("real", "fake")
CATEGORIES = ("FS", "FR", "FE", "EFS")
CATEGORY_NAMES = {
    "FS": "face swap",
    "FR": "face reenactment",
    "FE": "face editing",
    "EFS": "entire face synthesis",
}

#: The 40 DF40 techniques as the DF40 paper names them, by category.
DF40_TECHNIQUES: dict[str, tuple[str, ...]] = {
    "FS": ("FSGAN", "FaceSwap", "SimSwap", "InSwapper", "BlendFace", "UniFace", "MobileSwap", "e4s",
           "FaceDancer", "DeepFaceLab"),
    "FR": ("FOMM", "FS_vid2vid", "Wav2Lip", "MRAA", "OneShot", "PIRender", "TPSM", "LIA", "DaGAN", "SadTalker",
           "MCNet", "HyperReenact", "HeyGen"),
    "EFS": ("VQGAN", "StyleGAN2", "StyleGAN3", "StyleGAN-XL", "SD-2.1", "DDPM", "RDDM", "PixArt-alpha",
            "DiT-XL/2", "SiT-XL/2", "MidJourney6", "WhichisReal"),
    "FE": ("CollabDiff", "e4e", "StarGAN", "StarGANv2", "StyleCLIP"),
}


def normalise_technique(name: str) -> str:
    """``"StyleGAN-XL"`` -> ``"styleganxl"``: lower case, everything but letters and digits removed."""
    return re.sub(r"[^a-z0-9]+", "", unicodedata.normalize("NFKC", str(name)).lower())


#: normalised DF40 technique name -> category (all 40 techniques of DF40).
TECHNIQUE_CATEGORY: dict[str, str] = {
    normalise_technique(name): category for category, names in DF40_TECHNIQUES.items() for name in names
}
#: normalised technique name -> its display name in the DF40 paper.
TECHNIQUE_NAMES: dict[str, str] = {normalise_technique(n): n for names in DF40_TECHNIQUES.values() for n in names}

#: Other spellings of DF40 techniques (the folder / label names of the DF40 release and of
#: DeepfakeBench) -> the normalised key in :data:`TECHNIQUE_CATEGORY`.
TECHNIQUE_ALIASES: dict[str, str] = {
    "inswap": "inswapper",
    "facevid2vid": "fsvid2vid",
    "oneshotfree": "oneshot",
    "danet": "dagan",
    "ddim": "ddpm",  # the DF40 release ships its DDPM-family images under "ddim"
    "pixart": "pixartalpha",
    "pixarta": "pixartalpha",
    "dit": "ditxl2",
    "ditxl": "ditxl2",
    "sit": "sitxl2",
    "sitxl": "sitxl2",
    "midjourney": "midjourney6",
    "midjourneyv6": "midjourney6",
    "whichfaceisreal": "whichisreal",
    "stablediffusion21": "sd21",
    "sdv21": "sd21",
    "collaborativediffusion": "collabdiff",
    "hyperreenactment": "hyperreenact",
    "stargan2": "starganv2",
}

#: Techniques outside DF40 that benchmarks commonly carry (FaceForensics++ and its DeepfakeBench labels).
OTHER_TECHNIQUE_CATEGORY: dict[str, str] = {
    "deepfakes": "FS",
    "faceshifter": "FS",
    "face2face": "FR",
    "neuraltextures": "FR",
    "ffdf": "FS",
    "fffs": "FS",
    "fffh": "FS",
    "fff2f": "FR",
    "ffnt": "FR",
}

# trailing parts of dataset label names that are not part of the technique ("simswap_Fake", "fomm_ff")
_TECHNIQUE_SUFFIXES = frozenset({"fake", "real", "ff", "ffpp", "cdf", "celebdf", "c23", "c40", "raw"})


def canonical_technique(name: str | None) -> str | None:
    """The normalised :data:`TECHNIQUE_CATEGORY` key of a DF40 technique name, or ``None``.

    Accepts the paper's names (``"StyleGAN-XL"``), the release's folder and label names
    (``"inswap"``, ``"one_shot_free"``, ``"simswap_Fake"``, ``"fomm_ff"``), in any case.
    """
    if name is None:
        return None
    key = normalise_technique(name)
    if key in TECHNIQUE_CATEGORY:
        return key
    if key in TECHNIQUE_ALIASES:
        return TECHNIQUE_ALIASES[key]
    parts = [p for p in re.split(r"[^a-z0-9]+", str(name).lower()) if p]
    while len(parts) > 1 and parts[-1] in _TECHNIQUE_SUFFIXES:
        parts.pop()
        key = "".join(parts)
        if key in TECHNIQUE_CATEGORY:
            return key
        if key in TECHNIQUE_ALIASES:
            return TECHNIQUE_ALIASES[key]
    return None


def technique_category(name: str | None) -> str | None:
    """The category (``FS``/``FR``/``FE``/``EFS``) of a technique name, or ``None`` if unknown.

    Knows the 40 DF40 techniques under their paper and release names (:func:`canonical_technique`)
    and the FaceForensics++ techniques (:data:`OTHER_TECHNIQUE_CATEGORY`).
    """
    key = canonical_technique(name)
    if key is not None:
        return TECHNIQUE_CATEGORY[key]
    if name is None:
        return None
    key = normalise_technique(name)
    if key in OTHER_TECHNIQUE_CATEGORY:
        return OTHER_TECHNIQUE_CATEGORY[key]
    parts = [p for p in re.split(r"[^a-z0-9]+", str(name).lower()) if p]
    while len(parts) > 1 and parts[-1] in _TECHNIQUE_SUFFIXES:
        parts.pop()
        if "".join(parts) in OTHER_TECHNIQUE_CATEGORY:
            return OTHER_TECHNIQUE_CATEGORY["".join(parts)]
    return None


#: The 21 face regions of MMTT's ``multilabel`` vector, in the vector's order (ForgeryTalker release,
#: ``scripts/data_preparation/to_mutilabel.py``), with the words that name each: a text names a region when
#: one of its words appears as a whole word, in any case (:func:`dfabench.metrics.regions.regions_named`).
#: The release derives ``multilabel`` from the reference caption by this rule, so the same words are used for
#: an answer; note that they are MMTT's, e.g. "line" names ``wrinkle`` and "brow" ``forehead``.
FACE_REGION_WORDS = {
    "eye": ("eye", "eyes", "ocular", "optic", "vision"),
    "pupil": ("pupil", "pupils"),
    "lip": ("lip", "lips", "labium", "labia"),
    "mouth": ("mouth", "mouths", "oral cavity", "buccal"),
    "nose": ("nose", "noses", "nasal", "nostril", "nostrils"),
    "ear": ("ear", "ears", "auricle", "pinna", "pinnae"),
    "cheek": ("cheek", "cheeks", "buccal", "malar"),
    "forehead": ("forehead", "frontal", "brow", "brows"),
    "chin": ("chin", "chins", "mentum"),
    "jaw": ("jaw", "jaws", "mandible", "maxilla"),
    "eyebrow": ("eyebrow", "eyebrows"),
    "tooth": ("tooth", "teeth", "dentition"),
    "tongue": ("tongue", "tongues", "glossa", "lingua"),
    "beard": ("beard", "beards", "facial hair"),
    "mustache": ("mustache", "mustaches", "moustache", "moustaches"),
    "skin": ("skin", "derma", "epidermis", "cutis"),
    "hair": ("hair", "hairs", "locks", "tresses", "strands"),
    "wrinkle": ("wrinkle", "wrinkles", "line", "lines", "crease", "creases"),
    "freckle": ("freckle", "freckles", "lentigo", "lentigines"),
    "scar": ("scar", "scars", "cicatrix", "cicatrices"),
    "dimple": ("dimple", "dimples", "fossa", "fossae"),
}
FACE_REGIONS = tuple(FACE_REGION_WORDS)
