"""Headless Chromium for the dashboard: Debian's ``chromium`` driven by Playwright's sync API.

Playwright is pointed at the system browser (``executable_path``); it never downloads
one. Chromium is started with everything that would reach the network at run time
switched off, so a page can only talk to the backend it was loaded from.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = os.environ.get("SENSU_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--metrics-recording-only", "--mute-audio",
]
#: Every Playwright wait in the dashboard tests ends within this many milliseconds.
TIMEOUT_MS = 20_000
VIEWPORT = {"width": 1280, "height": 800}


def chromium_missing() -> str | None:
    """Why the browser cannot start, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: `make browser` installs Debian's chromium"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is missing: `make venv` installs it"
    return None


@contextmanager
def open_browser() -> Iterator[Any]:
    """A Playwright ``Browser`` on the system Chromium, closed (and its process ended) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, *, errors: list[str] | None = None) -> Any:
    """A page in a fresh context (no shared memory, so no shared login), with bounded waits.

    Uncaught page errors are appended to ``errors`` when given.
    """
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def login(page: Any, url: str, username: str, password: str) -> None:
    """Open the dashboard at ``url`` and log in through its form; returns once the shell shows."""
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.locator("#logout").wait_for()
