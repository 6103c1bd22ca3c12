"""A real browser for tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright's
Python package, never a browser Playwright downloads (`playwright install` is not used).

A test asks for the `browser` fixture (a `playwright.sync_api.Browser`, one per test
module; tests/conftest.py makes it available everywhere) and opens its own pages
(`browser.new_page(viewport=...)`, closed by the test). Without Chromium the tests fail,
with a message saying what is missing, unless MAILLAGE_ALLOW_NO_BROWSER=1, which skips
them instead.

Screenshots and other files worth looking at after a run go to `artifacts()`:
`test-artifacts/` at the repository root (git-ignored), or MAILLAGE_TEST_ARTIFACTS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from api.kit.settings import REPO_ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path(os.environ.get("MAILLAGE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=fr-FR",  # French date fields and number formats
]


def artifacts() -> Path:
    """The folder of the test artefacts (created)."""
    folder = Path(os.environ.get("MAILLAGE_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _unavailable(why: str) -> None:
    if os.environ.get("MAILLAGE_ALLOW_NO_BROWSER") == "1":
        pytest.skip(reason=f"{why} (MAILLAGE_ALLOW_NO_BROWSER=1)")
    pytest.fail(
        f"{why}: install Debian's chromium (apt-get install chromium), or set "
        "MAILLAGE_ALLOW_NO_BROWSER=1 to skip the browser tests",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, headless, for one test module: Playwright's sync API runs an asyncio loop
    in this thread while it is open, and tests that start their own loop (anyio.run) must
    not find one running."""
    if not CHROMIUM.exists():
        _unavailable(f"No Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright's Python package is missing (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()
