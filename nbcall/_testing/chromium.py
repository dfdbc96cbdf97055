"""Debian's Chromium, headless, with the flags that make real calls work on loopback."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from playwright.async_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"  # never `playwright install`: it downloads a browser


def flags(cameras: int = 3) -> list[str]:
    """Chromium's command-line flags, with ``cameras`` fake cameras.

    The tests use three, so switching can be tested (the second is a Y16 "depth" camera that
    WebRTC cannot encode; the third, MJPEG, works like the first); the call set-up benchmark
    measures with Chromium's default single fake camera.
    """
    fake_devices = "--use-fake-device-for-media-stream"
    if cameras != 1:
        fake_devices += f"=device-count={cameras}"
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        fake_devices,
        "--use-fake-ui-for-media-stream",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        # Without it Chromium gathers no ICE candidates where only loopback exists.
        "--allow-loopback-in-peer-connection",
    ]


FLAGS = flags()


async def launch(
    playwright: Playwright, env: Mapping[str, str], extra_flags: Iterable[str] = (), *, cameras: int = 3
) -> Browser:
    """Start Debian's Chromium through Playwright (``env``: see sandbox.sandbox_env)."""
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*flags(cameras), *extra_flags], env=dict(env)
    )
