"""A PNG screenshot of a leaderboard page, taken by headless Chromium.

The committed boards' folders carry ``leaderboard.png`` so a reader sees the
headline tables and the trade-off plot without opening the page; the top of
the page (``height`` pixels) is what is captured. Chromium's own
``--screenshot`` switch does the work, so no Python browser driver is needed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from unlearnbench.specs import UnlearnbenchError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


class ScreenshotError(UnlearnbenchError, RuntimeError):
    """No browser, or the browser wrote no image."""


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(
    page: Path, target: Path, *, width: int = 1400, height: int = 2200, timeout: float = 60.0
) -> Path:
    """Write a ``width`` x ``height`` PNG of ``page`` (a local HTML file) to ``target``."""
    browser = find_browser()
    if browser is None:
        raise ScreenshotError(
            f"a screenshot needs Chromium ({' or '.join(BROWSERS)} on PATH); "
            "apt-get install -y chromium"
        )
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unlearnbench-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={target}",
            Path(page).resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if not target.exists() or target.stat().st_size == 0:
        raise ScreenshotError(f"{browser} wrote no screenshot: {done.stderr.strip()[-500:]}")
    return target
