"""Fixtures of the browser tests: one Chromium for the session, a server per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

from tests.browser.support import (  # noqa: E402
    CONDITION_TIMEOUT,
    ensure_client_built,
    launch,
)
from tests.support.chromium import CHROMIUM  # noqa: E402

if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)

# A meeting of three in one headless Chromium keeps two cores busy, and other work may share
# them: every wait is for a condition, with room to spare (see support.CONDITION_TIMEOUT).
playwright_api.expect.set_options(timeout=CONDITION_TIMEOUT * 1000)


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
