"""Support for nbcall's own tests and benchmarks: real servers, JupyterLab and headless Chromium.

Private: not part of nbcall's API, and nothing in ``nbcall`` imports it. Its modules import
what they need (Playwright, nbformat: nbcall's ``test`` extra) only when they are imported.

- ``processes``: free ports, starting a server command until it listens, stopping it by pid
- ``sandbox``: an environment that keeps Chromium, Jupyter and npm out of ``$HOME``
- ``chromium``: Debian's Chromium and the flags that make real calls work headless
- ``jupyter``: one JupyterLab server on 127.0.0.1 with a token
- ``lab``: driving notebooks in a JupyterLab page (open, Run All, run Python in the kernel)

See shared/docs/testing.md (next to this checkout) for why things are done the way they are.
"""
