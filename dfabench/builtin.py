"""The core's own plugin: reference models, the task specs in tasks/, the importers, the
metrics, the answer parsers and sample filters, registered through the same hooks as any third-party plugin.

Everything is named by a ``"module:attr"`` string, so loading this plugin imports nothing but
:mod:`dfabench.tasks` (a pure spec module).
"""

from dfabench import hookimpl
from dfabench.tasks import builtin_task_files

#: sentence embeddings computed on two CPUs differ in the last float32 digits (another summation order):
#: measured 8e-8 on the smoke benchmark's mean similarity between two x86 machines; verify allows this much
EMBEDDING_TOLERANCE = 1e-5


@hookimpl
def dfabench_register_models(register):
    register("constant", "dfabench.models:ConstantModel", capabilities=("generate",),
             description="always the same answer (args: label, category, description, text)")
    register("random", "dfabench.models:RandomModel", capabilities=("generate", "score"),
             description="seeded random answers and scores: the chance level (args: seed, mode)")


@hookimpl
def dfabench_register_tasks(register):
    for path in builtin_task_files():
        register(path)


@hookimpl
def dfabench_register_importers(register):
    register("df40", "dfabench.data.importers:import_df40",
             description="DeepfakeBench / DF40 dataset index JSON (one sample per frame)")
    register("dfa-instruct", "dfabench.data.importers:import_dfa_instruct",
             description="DFA-Instruct style LLaVA conversation JSON")
    register("ddvqa", "dfabench.data.importers:import_ddvqa",
             description="DD-VQA (FaceForensics++ Q&A): {key: {question_id: {question, answer}}} files + FF++ frames")
    register("mmtt", "dfabench.data.importers:import_mmtt",
             description="MMTT / ForgeryTalker annotations (image_id, caption, img_path/relative_path, mask_path)")


@hookimpl
def dfabench_register_metrics(register):
    register("detection", "dfabench.metrics.classification:detection_metrics", tasks=("DF-D",),
             description="accuracy, balanced accuracy, per-category and per-technique accuracy")
    register("ranking", "dfabench.metrics.classification:ranking_metrics", tasks=("DF-D",),
             description="AUC, AP and EER from the probability of fake")
    register("video", "dfabench.metrics.video:video_metrics", tasks=("DF-D",),
             description="video-level AUC, AP, EER, accuracy from the mean frame score per video (DeepfakeBench)")
    register("classification", "dfabench.metrics.classification:category_metrics", tasks=("DF-C",),
             description="accuracy, macro-F1, per-category accuracy, confusion matrix")
    register("text", "dfabench.metrics.text:text_metrics", tasks=("AD", "FC", "FL"),
             description="BLEU-1..4, ROUGE-L, CIDEr-D (COCO caption evaluation)")
    register("meteor", "dfabench.metrics.text:meteor_metric", tasks=("AD", "FC", "FL"),
             description="METEOR (nltk; needs WordNet: `dfabench resources wordnet`)")
    register("embedding_similarity", "dfabench.metrics.text:embedding_similarity_metric", tasks=("AD", "FC", "FL"),
             description="cosine similarity of sentence embeddings (all-MiniLM-L6-v2 by default)",
             tolerance=EMBEDDING_TOLERANCE)
    register("judge", "dfabench.metrics.judge:judge_metrics", tasks=("AD", "FC", "FL"),
             description="LLM-judge score over judged samples, with the failure rate (`dfabench judge`)")
    register("mask", "dfabench.metrics.localization:mask_metrics", tasks=("FL",),
             description="forgery-mask IoU, precision, recall (the official MMTT protocol), F1, coverage")
    register("regions", "dfabench.metrics.regions:region_metrics", tasks=("FL",),
             description="per face region (MMTT's 21): precision and recall of the regions the report names")


@hookimpl
def dfabench_register_parsers(register):
    register("detection", "dfabench.parsing:parse_detection",
             description="free text -> fake / real (yes/no, negations, lettered options)")
    register("category", "dfabench.parsing:parse_category",
             description="free text -> FS / FR / FE / EFS (category names, synonyms, DF40 techniques)")
    register("text", "dfabench.parsing:parse_text", description="the answer itself, stripped (None when empty)")


@hookimpl
def dfabench_register_sample_filters(register):
    register("all", "dfabench.selection:take_all", description="every sample")
    register("fake", "dfabench.selection:take_fakes",
             description="the fakes (with a category, for a task whose reference is the category)")
    register("described", "dfabench.selection:take_described", description="the fakes with a reference description")
    register("masked", "dfabench.selection:take_masked", description="the fakes with a forgery mask")
    register("conversation", "dfabench.selection:take_conversation",
             description="the samples that carry a conversation")


#: the core's commands, in the order ``dfabench --help`` lists them: (name, module under dfabench.cli, help)
_COMMANDS = (
    ("plugins", "plugins", "installed plugins, versions, hooks, load errors"),
    ("models", "models", "registered models and their capabilities"),
    ("tasks", "tasks", "registered tasks, versions and fingerprints"),
    ("importers", "importers", "registered dataset importers"),
    ("bench", "bench", "build a built-in benchmark"),
    ("import", "import_", "turn a public dataset layout into a benchmark"),
    ("import-predictions", "import_predictions", "turn released prediction files into a run folder"),
    ("run", "run", "predict and score: run a model on tasks of a benchmark"),
    ("score", "score", "re-score a run from its per-sample logs (no model calls)"),
    ("judge", "judge", "LLM-judge the text tasks of a run (cached)"),
    ("judge agree", "judge_agree", "agreement of two judges, or of a judge and human ratings, on a judged run"),
    ("leaderboard", "leaderboard", "build the leaderboard from submitted runs"),
    ("merge", "merge", "merge the shards of a run (`run --shard K/N`) into one run folder"),
    ("sweep", "sweep", "a whole leaderboard round: models x tasks x benchmarks, judged, submitted, built"),
    ("verify", "verify", "reviewer check of a run folder or leaderboard entry"),
    ("chat", "chat", "interactive multi-turn analysis of one image"),
    ("export", "export", "export benchmark tasks for another harness (lmms-eval)"),
    ("resources", "resources", "install offline resources (WordNet for METEOR)"),
    ("view", "view", "local web viewer of a run's samples (127.0.0.1 only)"),
)


@hookimpl
def dfabench_register_commands(register):
    for name, module, help_text in _COMMANDS:
        register(name, f"dfabench.cli.{module}:add_arguments", f"dfabench.cli.{module}:run", help=help_text)
