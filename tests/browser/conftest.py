"""Fixtures of the browser tests: one Chromium for the session, a server per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

from tests.browser.support import ensure_client_built, launch  # noqa: E402
from tests.support.chromium import CHROMIUM  # noqa: E402

if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)

# A meeting of three in one headless Chromium keeps two cores busy: give assertions room.
playwright_api.expect.set_options(timeout=15_000)


@pytest.fixture(scope="package")
def playwright() -> Iterator[playwright_api.Playwright]:
    ensure_client_built()
    with playwright_api.sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: playwright_api.Playwright) -> Iterator[playwright_api.Browser]:
    browser = launch(playwright)
    yield browser
    browser.close()
