"""hatch_build.py: when the widget bundle is rebuilt, and what happens without npm."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nbcall_hatch_build", ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tree(root: Path, *, built: bool) -> None:
    (root / "js").mkdir()
    (root / "js" / "widget.js").write_text("export default {}")
    (root / "package.json").write_text("{}")
    if built:
        static = root / "nbcall" / "static"
        static.mkdir(parents=True)
        for name in ("widget.js", "widget.css"):
            (static / name).write_text("/* built */")
        later = (root / "js" / "widget.js").stat().st_mtime + 10
        for name in ("widget.js", "widget.css"):
            os.utime(static / name, (later, later))


def test_stale_when_missing_or_older_than_sources(tmp_path: Path) -> None:
    hook = load_hook()
    make_tree(tmp_path, built=False)
    assert hook.bundle_is_stale(tmp_path)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    make_tree(fresh, built=True)
    assert not hook.bundle_is_stale(fresh)
    newer = (fresh / "nbcall" / "static" / "widget.js").stat().st_mtime + 10
    os.utime(fresh / "js" / "widget.js", (newer, newer))
    assert hook.bundle_is_stale(fresh)


def test_a_built_sdist_needs_no_js(tmp_path: Path) -> None:
    hook = load_hook()
    static = tmp_path / "nbcall" / "static"
    static.mkdir(parents=True)
    for name in ("widget.js", "widget.css"):
        (static / name).write_text("/* built */")
    assert not hook.bundle_is_stale(tmp_path)


def test_missing_npm_fails_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = load_hook()
    make_tree(tmp_path, built=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    plugin = hook.JSBuildHook(str(tmp_path), {}, None, None, str(tmp_path / "dist"), "wheel")
    with pytest.raises(RuntimeError, match=r"needs Node\.js and npm"):
        plugin.initialize("standard", {})


def test_fresh_bundle_is_added_as_artifacts(tmp_path: Path) -> None:
    hook = load_hook()
    make_tree(tmp_path, built=True)
    plugin = hook.JSBuildHook(str(tmp_path), {}, None, None, str(tmp_path / "dist"), "wheel")
    build_data: dict[str, list[str]] = {}
    plugin.initialize("standard", build_data)
    assert build_data["artifacts"] == ["nbcall/static/widget.js", "nbcall/static/widget.css"]


def test_the_repository_bundle_is_built() -> None:
    # ./dev setup and pip install -e . build it; the e2e tests load exactly this file.
    assert not load_hook().bundle_is_stale(ROOT), "run `npm run build` (or pip install -e .)"
