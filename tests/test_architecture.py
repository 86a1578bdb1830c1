"""The structure: layers import only leftwards, kernels import numpy and math only, and the
numba cache folder follows the kernel sources."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "fastraster"
#: Left to right: a module may import its own layer and those to its left.
LAYERS = ["kernels", "model", "io", "render", "execution", "pipelines", "compat", "cli"]
#: Top-level modules, by the layer they sit in.
TOP_LEVEL = {"sample": "io", "preload": "pipelines", "pipeline": "pipelines"}


def _layer(module: str) -> str | None:
    """The layer of ``fastraster.<...>`` (None: the package root, which is no layer)."""
    parts = module.split(".")
    if parts[0] != "fastraster" or len(parts) == 1:
        return None
    return TOP_LEVEL.get(parts[1], parts[1])


def _imports(path: Path):
    """Every module an import statement in ``path`` names (also inside functions), with
    ``from fastraster import x`` resolved to ``fastraster.x`` when x is a module."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "fastraster":
                for alias in node.names:
                    name = f"fastraster.{alias.name}"
                    sub = PACKAGE / alias.name
                    yield node.lineno, name if (sub.is_dir() or sub.with_suffix(
                        ".py").exists()) else "fastraster"
            else:
                yield node.lineno, node.module


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        name = ".".join(p for p in rel.parts if p != "__init__")
        yield name, path


def test_layers_import_only_leftwards():
    wrong = []
    for name, path in _modules():
        src = _layer(name)
        if src is None:
            continue  # fastraster/__init__.py: lazy names of every layer
        for line, target in _imports(path):
            dst = _layer(target)
            if dst is not None and LAYERS.index(dst) > LAYERS.index(src):
                wrong.append(f"{path.relative_to(REPO)}:{line}: {src} imports {target} ({dst})")
    assert not wrong, "\n".join(wrong)


def test_every_module_is_in_a_layer():
    for name, _ in _modules():
        layer = _layer(name)
        assert layer is None or layer in LAYERS, name


def test_kernels_import_numpy_and_math_only():
    allowed = {"math", "numpy", "__future__"}
    for path in sorted((PACKAGE / "kernels").glob("*.py")):
        if path.name == "_jit.py":  # the decorator: numba, and the cache folder's key
            continue
        for line, target in _imports(path):
            assert (target.split(".")[0] in allowed
                    or target.startswith("fastraster.kernels")), f"{path.name}:{line}: {target}"


def test_a_layer_violation_is_caught(tmp_path, monkeypatch):
    """The check itself can fail: a model module importing a pipeline."""
    fake = tmp_path / "fastraster"
    shutil.copytree(PACKAGE / "model", fake / "model")
    (fake / "model" / "bad.py").write_text("def f():\n    from fastraster.pipelines import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    with pytest.raises(AssertionError, match="model imports fastraster.pipelines"):
        test_layers_import_only_leftwards()


# ---------------------------------------------------------------------------------------------
# The numba cache folder is keyed to the version and the kernel sources
# ---------------------------------------------------------------------------------------------

PROBE = textwrap.dedent("""
    import json, sys
    import numba
    import numpy as np
    before = numba.config.CACHE_DIR
    from fastraster.kernels import _jit, prefix_sum_rows
    prefix_sum_rows(np.ones((2, 3)), np.empty((2, 2)))
    sys.path.insert(0, sys.argv[1])
    import user_module  # someone else's numba function, cached after ours were defined
    user_module.f(1.0)
    print(json.dumps({"dir": str(_jit.CACHE_DIR), "before": before,
                      "after": numba.config.CACHE_DIR}))
""")


def _probe(package_root: Path, cache: Path, tmp_path: Path) -> dict:
    import json

    user = tmp_path / "user"
    user.mkdir(exist_ok=True)
    (user / "user_module.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef f(x):\n    return x + 1\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(package_root)}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", PROBE, str(user)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def _cache_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")]


def test_kernel_cache_lands_in_a_folder_keyed_to_the_sources(tmp_path):
    from fastraster import __version__
    from fastraster.kernels._jit import source_hash

    cache = tmp_path / "cache"
    res = _probe(REPO, cache, tmp_path)
    keyed = cache / f"fastraster-{__version__}-{source_hash()[:12]}"
    assert Path(res["dir"]) == keyed
    ours = _cache_files(keyed)
    assert any(p.name.startswith("centre.prefix_sum_rows") for p in ours), ours
    # Other libraries' functions keep numba's own place (NUMBA_CACHE_DIR here), and
    # numba's setting is left as it was.
    assert res["before"] == res["after"] == str(cache)
    theirs = [p for p in _cache_files(cache) if "user_module" in p.name]
    assert theirs and not any(keyed in p.parents for p in theirs), theirs

    # A copy of the package with one kernel source changed gets another folder.
    copy = tmp_path / "copy"
    shutil.copytree(PACKAGE, copy / "fastraster",
                    ignore=shutil.ignore_patterns("__pycache__"))
    rings = copy / "fastraster" / "kernels" / "_rings.py"
    rings.write_text(rings.read_text() + "\n# changed\n")
    assert source_hash(rings.parent) != source_hash()
    res2 = _probe(copy, cache, tmp_path)
    keyed2 = cache / f"fastraster-{__version__}-{source_hash(rings.parent)[:12]}"
    assert Path(res2["dir"]) == keyed2 != keyed
    assert any(p.name.startswith("centre.prefix_sum_rows") for p in _cache_files(keyed2))


def test_old_pipeline_module_is_a_deprecated_alias():
    code = ("import warnings\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import fastraster.pipeline as p\n"
            "import fastraster, fastraster.pipelines.staged as s\n"
            "assert [x.category for x in w] == [DeprecationWarning], w\n"
            "assert (p.warm_up, p.rasterize_dir, p.rasterize_one, p.Report) == (\n"
            "    s.warm_up, s.rasterize_dir, s.rasterize_one, fastraster.Report)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
