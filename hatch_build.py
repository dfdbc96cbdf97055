"""Hatch build hook: bundle the widget's JavaScript before packaging.

``nbcall/static/`` is generated (and gitignored), so ``pip install -e .`` on a fresh
clone, or building a wheel, must run esbuild first.  The bundle is rebuilt only when it is
missing or older than a file under ``js/`` (or ``package.json``), so repeated installs
stay fast and an sdist that already carries the bundle needs no Node at all.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

OUTPUTS = ("nbcall/static/widget.js", "nbcall/static/widget.css")


def _newest_source(root: Path) -> float:
    sources = [p for p in (root / "js").rglob("*") if p.is_file()]
    sources += [root / name for name in ("package.json", "package-lock.json") if (root / name).exists()]
    return max((p.stat().st_mtime for p in sources), default=0.0)


def bundle_is_stale(root: Path) -> bool:
    """True when a bundle is missing, or ``js/`` holds a source newer than it."""
    if not (root / "js").is_dir():
        return not all((root / out).exists() for out in OUTPUTS)
    outputs = [root / out for out in OUTPUTS]
    if not all(out.exists() for out in outputs):
        return True
    return _newest_source(root) > min(out.stat().st_mtime for out in outputs)


class JSBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Runs ``npm install`` and ``npm run build`` when the widget bundle is stale."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        if bundle_is_stale(root):
            if not (root / "js").is_dir():
                raise RuntimeError("nbcall: nbcall/static/widget.js is missing and there is no js/ to build it from")
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError(
                    "nbcall: building the widget needs Node.js and npm (the bundle nbcall/static/widget.js is "
                    "missing or older than js/). Install Node 18+ (e.g. `apt-get install nodejs npm`) and retry."
                )
            self.app.display_info("nbcall: bundling the widget (npm install && npm run build)")
            for args in ([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], [npm, "run", "build"]):
                result = subprocess.run(args, cwd=root, check=False)
                if result.returncode != 0:
                    raise RuntimeError(f"nbcall: `{' '.join(args[1:])}` failed with exit code {result.returncode}")
            if bundle_is_stale(root):
                raise RuntimeError("nbcall: `npm run build` did not produce " + ", ".join(OUTPUTS))
        # Generated files are gitignored; force them into the wheel/sdist.
        build_data.setdefault("artifacts", []).extend(OUTPUTS)
