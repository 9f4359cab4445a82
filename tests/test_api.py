"""The plugin SDK (:mod:`dfabench.api`, issue 9): one public module, used by every first-party plugin,
and uniform ``dfabench`` entry points (``NAME = "pkg.plugin"``)."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import dfabench.api as api

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in (ROOT / "plugins").glob("dfabench-*") if (p / "pyproject.toml").is_file())


def _plugin_sources() -> list[Path]:
    """Every source file of every first-party plugin's package (not its tests)."""
    files = []
    for plugin in PLUGINS:
        for package in plugin.glob("dfabench_*"):
            if package.is_dir() and not package.name.endswith(".egg-info"):
                files += sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _dfabench_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``dfabench`` module anywhere in ``path`` (also inside
    functions and under ``if TYPE_CHECKING:``); ``from dfabench import x`` counts as ``dfabench.x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "dfabench"]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "dfabench":
            if node.module == "dfabench":
                found += [(node.lineno, f"dfabench.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and node.args[0].value.split(".")[0] == "dfabench"):
            found.append((node.lineno, node.args[0].value))
    return found


def test_first_party_plugins_import_only_the_sdk():
    sources = _plugin_sources()
    assert len(PLUGINS) >= 5 and len(sources) >= 15
    offending = [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                 for path in sources for line, module in _dfabench_imports(path) if module != "dfabench.api"]
    assert not offending, "plugins must import dfabench only through dfabench.api:\n" + "\n".join(offending)


def test_the_static_check_sees_every_kind_of_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import dfabench.store\nfrom dfabench import hookimpl\nfrom dfabench.api import Model\n"
                      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from dfabench.data.manifest import Sample\n"
                      "def f():\n    from dfabench.images import open_rgb\n"
                      "    importlib.import_module('dfabench.cli')\n"
                      "from dfabench_hf import model\n")
    assert [m for _, m in _dfabench_imports(source)] == [
        "dfabench.store", "dfabench.hookimpl", "dfabench.api", "dfabench.data.manifest", "dfabench.images",
        "dfabench.cli"]


def test_everything_in_all_exists_and_is_documented():
    assert len(api.__all__) == len(set(api.__all__))
    for name in api.__all__:
        assert getattr(api, name) is not None, name
        assert f":func:`{name}`" in api.__doc__ or f":class:`{name}`" in api.__doc__ \
            or f":data:`{name}`" in api.__doc__, f"{name} is not listed in the dfabench.api docstring"
    assert set(api.__all__) <= set(dir(api))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        api.nope  # noqa: B018


def test_sdk_names_are_the_internal_objects():
    """The old internal paths keep working: the SDK re-exports, it does not copy."""
    from dfabench import hookimpl
    from dfabench.data.manifest import Benchmark, load_benchmark
    from dfabench.errors import InputError
    from dfabench.metrics.localization import load_mask
    from dfabench.models import Model

    assert api.hookimpl is hookimpl and api.Model is Model and api.InputError is InputError
    assert api.Benchmark is Benchmark and api.load_benchmark is load_benchmark and api.load_mask is load_mask


def test_importing_the_sdk_is_light():
    """Every plugin's ``plugin.py`` imports dfabench.api when the CLI starts: nothing heavy comes with it."""
    code = ("import sys, dfabench.api; heavy = [m for m in ('numpy', 'PIL', 'torch', 'dfabench.data.manifest', "
            "'dfabench.images', 'dfabench.metrics.localization', 'dfabench.cli') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_entry_points_are_uniform(plugin):
    """``[project.entry-points.dfabench]`` is ``NAME = "pkg.plugin"``, a module holding the hook implementations."""
    text = (plugin / "pyproject.toml").read_text(encoding="utf-8")  # (tomllib is Python 3.11+)
    section = re.search(r"^\[project\.entry-points\.dfabench\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert section is not None, f"{plugin.name}: no [project.entry-points.dfabench]"
    entry_points = dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]+)"', section.group(1), re.M))
    dist_name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M).group(1)
    package = plugin.name.replace("-", "_")
    assert list(entry_points.values()) == [f"{package}.plugin"]
    assert (plugin / package / "plugin.py").is_file()
    module = importlib.import_module(f"{package}.plugin")
    assert any(name.startswith("dfabench_register_") for name in vars(module))
    installed = [ep for ep in metadata.entry_points(group="dfabench") if ep.dist and ep.dist.name == dist_name]
    if installed:  # the installed metadata agrees (reinstall the plugin after changing its entry point)
        assert [ep.value for ep in installed] == [f"{package}.plugin"]


class _Trained:
    """A stand-in trained model: its value, saved as text."""

    def __init__(self, value: str):
        self.value = value

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.value)

    @classmethod
    def load(cls, path: Path) -> _Trained:
        text = path.read_text()
        if not text.startswith("model"):
            raise api.InputError(path, "not a model file")
        return cls(text)


def test_load_or_train_keeps_loads_retrains_a_damaged_file_and_survives_a_read_only_cache(tmp_path):
    trained = []

    def train():
        trained.append(1)
        return _Trained(f"model {len(trained)}")

    path = tmp_path / "cache" / "m.txt"
    model, kept = api.load_or_train(path, _Trained.load, train)
    assert (model.value, kept, path.read_text()) == ("model 1", path, "model 1")
    model, kept = api.load_or_train(path, _Trained.load, train)  # from the cache: no training
    assert (model.value, kept, len(trained)) == ("model 1", path, 1)
    path.write_text("garbage")  # a damaged entry: trained again and replaced
    model, kept = api.load_or_train(path, _Trained.load, train)
    assert (model.value, kept, path.read_text()) == ("model 2", path, "model 2")

    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache folder should be: cannot be written
    model, kept = api.load_or_train(blocked / "m.txt", _Trained.load, train)
    assert (model.value, kept) == ("model 3", None)
