"""The console in a real headless Chromium against the real API on the small city.

The API runs in uvicorn on a free port (its own thread and event loop) over a copy of the
city loaded through the real broker and ingester (tests/api/conftest.py); Playwright
drives Debian's /usr/bin/chromium, never a browser of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

from api.app import create_app
from tests.api.conftest import City, city, new_key  # noqa: F401  (city: a fixture)
from tests.fix_servers import DatabaseServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass(frozen=True, slots=True)
class Console:
    base: str
    """http://127.0.0.1:PORT of the running API."""
    database_url: str
    admin_key: str
    reader_key: str


T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a thread of its own: Playwright's sync API keeps an
    event loop running in the test's thread, where asyncio.run() is refused."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(database_url: str) -> Iterator[str]:
    """The API (and its console) on a free port while the block runs."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(database_url=database_url),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def console(city: City, pg_server: DatabaseServer) -> Iterator[Console]:  # noqa: F811
    """The API on its own copy of the city (the console's tests acknowledge and insert)."""
    name = f"citytel_console_{uuid.uuid4().hex[:6]}"
    url = pg_server.create(name, template=urlsplit(city.url).path.lstrip("/"))
    admin = run_async(new_key(url, "admin"))
    reader = run_async(new_key(url, "reader"))
    with serve(url) as base:
        yield Console(base, url, admin, reader)


# Module-scoped: Playwright's sync API runs an event loop in the test thread while it is
# open, where the async tests of other modules could not run theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(console: Console, browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) with one page on the console."""
    context = browser.new_context(base_url=console.base, viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(10_000)
    yield p
    context.close()


def sign_in(page: Page, key: str) -> None:
    """Sign in as a person does: the form, the key typed, Enter."""
    page.goto("/")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    page.get_by_role("navigation", name="Console").wait_for()


def assert_accessible(page: Page, name: str) -> None:
    """Zero axe-core violations of WCAG 2.1 A and AA on the page as it is now; a
    screenshot of it under docs/console/NAME.png."""
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    assert results.violations_count == 0, results.generate_report()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def wait_live(page: Page) -> None:
    page.locator('#live-state[data-live="on"]').wait_for()


def metrics(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate("window.citytelMetrics || {}")
    return found
