"""Browser tests: Debian's Chromium driven by Playwright, against the real app behind
uvicorn on a database holding the French demo network.

Chromium is the system's (`/usr/bin/chromium`, the `chromium` Debian package that
`.ci/run` installs); Playwright's own browser download is never used. Screenshots and
accessibility reports go to `test-artifacts/` (or `MAILLAGE_TEST_ARTIFACTS`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from api.app import create_app
from api.kit.settings import REPO_ROOT, Settings
from api.matching import engine as matching_engine
from api.tools.demo import demo_tokens, ensure_territories, load_demo
from api.tools.load import serve_in_thread
from models import migrate
from models.db import make_engine
from tests.browser import artifacts as artifacts_folder
from tests.conftest import FIXTURES, scratch_database
from tests.fakes import FakeEncoder

AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1 (npm), MPL-2.0
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


def artifacts_dir() -> Path:
    """Where the tests write screenshots and reports (git-ignored by default)."""
    return artifacts_folder()


@dataclass
class DemoSite:
    """The app serving the demo network: its address, settings and outbox."""

    url: str
    app: FastAPI
    settings: Settings

    @property
    def outbox(self) -> Path:
        return self.settings.outbox


@pytest.fixture(scope="module")
def demo_site(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DemoSite]:
    """The app behind uvicorn on a database of its own with the demo network, embedded with
    a stand-in encoder (the pages' mechanics are tested, not the model's ranking), or with
    the real model when MAILLAGE_BROWSER_REAL_MODEL is set (the README's screenshots)."""
    patch = pytest.MonkeyPatch()
    if not os.environ.get("MAILLAGE_BROWSER_REAL_MODEL"):
        patch.setattr(
            matching_engine,
            "dense_encoder",
            lambda model: FakeEncoder("fake-pages", 32, role_aware=True),
        )
    try:
        with scratch_database(database_url, "pages", tmp_path_factory) as url:
            engine = make_engine(url)
            migrate.upgrade(engine)
            with Session(engine) as session, session.begin():
                ensure_territories(session, FIXTURES)
            engine.dispose()
            settings = Settings(
                database_url=url,
                data_dir=tmp_path_factory.mktemp("pages"),
                fixtures_dir=FIXTURES,
                rate_limits=False,
            )
            app = create_app(settings)
            with serve_in_thread(app, start_timeout=60) as base:
                # Links in e-mails point where the browser finds the server.
                settings.public_url = base
                with Session(app.state.engine) as session, session.begin():
                    load_demo(session, FIXTURES, matching=app.state.matching)
                    demo_tokens(session)  # the demo's accounts, with their e-mail addresses
                yield DemoSite(url=base, app=app, settings=settings)
    finally:
        patch.undo()


class Artifacts:
    """Screenshots and accessibility reports of one run."""

    def __init__(self, root: Path) -> None:
        self.screenshots = root / "screenshots"
        self.screenshots.mkdir(parents=True, exist_ok=True)
        self.reports = root / "accessibility"
        self.reports.mkdir(parents=True, exist_ok=True)

    def shot(self, page: Any, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("MAILLAGE_UPDATE_SCREENSHOTS"):
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
        return path

    def report(self, name: str, violations: list[dict[str, Any]]) -> None:
        (self.reports / f"{name}.json").write_text(
            json.dumps(violations, ensure_ascii=False, indent=2), encoding="utf-8"
        )


@pytest.fixture(scope="session")
def artifacts() -> Artifacts:
    return Artifacts(artifacts_dir())


SERIOUS = {"serious", "critical"}


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA and best-practice violations of the page as it is."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        """async () => await window.axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                           'best-practice']},
            resultTypes: ['violations'],
        })"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


@pytest.fixture
def accessible(artifacts: Artifacts) -> Any:
    """check(page, name): writes the page's axe report and fails on a serious or critical
    violation."""

    def check(page: Any, name: str) -> list[dict[str, Any]]:
        violations = axe_violations(page)
        artifacts.report(name, violations)
        serious = [v for v in violations if v["impact"] in SERIOUS]
        assert not serious, f"{name}: {json.dumps(serious, ensure_ascii=False, indent=1)}"
        return violations

    return check
