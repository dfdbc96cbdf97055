"""An environment that keeps Chromium, Jupyter, IPython and npm out of ``$HOME``."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Variable -> its folder under the sandbox.
DIRS = {
    "XDG_CONFIG_HOME": "config",
    "XDG_CACHE_HOME": "cache",
    "XDG_DATA_HOME": "data",
    "XDG_RUNTIME_DIR": "runtime",
    "JUPYTER_CONFIG_DIR": "jupyter-config",
    "JUPYTER_DATA_DIR": "jupyter-data",
    "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
    "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
    "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
    "IPYTHONDIR": "ipython",
}


def sandbox_env(path: Path) -> dict[str, str]:
    """``os.environ`` with every home-writing tool pointed at folders under ``path`` (created here).

    Also: no npm log files (JupyterLab runs ``npm prefix --global`` on every page load),
    unbuffered Python output, and JupyterLab's news pop-up turned off.
    """
    env = dict(os.environ)
    for var, sub in DIRS.items():
        folder = path / sub
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        env[var] = str(folder)
    env["npm_config_logs_max"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    # No news pop-up over the notebook.
    news = Path(env["JUPYTERLAB_SETTINGS_DIR"], "@jupyterlab", "apputils-extension", "notification.jupyterlab-settings")
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env
