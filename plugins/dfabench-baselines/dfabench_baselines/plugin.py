"""The ``dfabench`` entry point of dfabench-baselines. Imports nothing heavy: models are named
by ``"module:attr"`` strings and created only when a run needs them."""

from dfabench.api import hookimpl


@hookimpl
def dfabench_register_models(register):
    register("spectrum", "dfabench_baselines.spectrum:SpectrumDetector", capabilities=("score",),
             description="azimuthal log-FFT spectrum + logistic regression (Durall et al.), fitted on the "
                         "benchmark's train split (args: weights, size, C)")
    register("noise-inconsistency", "dfabench_baselines.noise:NoiseInconsistencyLocalizer",
             capabilities=("generate", "localize"),
             description="local noise-level inconsistency of a high-pass residual -> forgery mask + region "
                         "report; threshold and DF-D/DF-C classifiers fitted on the benchmark's train split "
                         "(args: weights, threshold, max_side)")


@hookimpl
def dfabench_register_commands(register):
    register("baselines", help="train and inspect the baseline detectors outside a run")
    register("baselines train", "dfabench_baselines.cli:add_train_arguments", "dfabench_baselines.cli:train_command",
             help="fit the spectrum detector on a benchmark's train split")
    register("baselines info", "dfabench_baselines.cli:add_info_arguments", "dfabench_baselines.cli:info_command",
             help="show what a saved model was trained on")
