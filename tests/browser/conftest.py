"""The profile viewer in a real browser: Debian's chromium, headless, driven by Selenium
through the system chromedriver, against one real worker (CDP_API_TOKEN set) that has
processed the demo sample. One worker and one browser serve the whole module."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from cdp_tools.sample import SampleGenerator
from cdp_tools.workerproc import WorkerProcess
from pipeline.settings import Settings
from tests.conftest import PipelineEnv, new_pipeline_env, worker_starter
from tests.integration.support import send, settle

TOKEN = "viewer-test-token"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium asks nobody but the worker: no proxy, no updates, no sync, no first-run calls.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-dev-shm-usage",
    "--window-size=1400,1100",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
)


@dataclass
class Viewer:
    """The worker behind the page, the sample it processed, and the API as a client."""

    env: PipelineEnv
    worker: WorkerProcess
    sample: SampleGenerator
    start_worker: Callable[..., WorkerProcess]  # another worker of this slice

    @property
    def settings(self) -> Settings:
        return self.env.settings

    def url(self, query: str = "") -> str:
        return f"{self.worker.url}/ui/{query}"

    def api(self, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(self.worker.url + path)
        request.add_header("Authorization", f"Bearer {TOKEN}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def send(self, *events: tuple[str, dict[str, Any]]) -> None:
        send(self.settings, events)

    def wait_api(self, path: str, done: Callable[[int, Any], bool], what: str) -> Any:
        """Poll the API (bounded) until ``done(status, body)``; the last body."""
        for _ in range(300):
            status, body = self.api(path)
            if done(status, body):
                return body
            time.sleep(0.1)
        raise AssertionError(f"{what}: still {status} {body}")


@pytest.fixture(scope="module")
def viewer(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    env = new_pipeline_env(base_settings, tmp_path_factory.mktemp("viewer"))
    with worker_starter(env) as start:
        worker = start(CDP_API_TOKEN=TOKEN)
        # The demo's sample (cdp_tools/demo.py): 200 customers, seed 7, the last six hours.
        sample = SampleGenerator(200, seed=7, start_ms=int(time.time() * 1000) - 6 * 3600_000)
        send(env.settings, sample.events())
        settle(env.settings)
        yield Viewer(env, worker, sample, start)


@pytest.fixture(scope="module")
def artefacts(base_settings: Settings) -> Path:
    path = Path(base_settings.state_dir) / "artefacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # with the driver's path: Selenium Manager stays idle
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    """Bounded polling for a condition of the page."""
    return WebDriverWait(driver, 30, poll_frequency=0.1).until(condition, message=what)
