"""The console clicked through in a real browser (Playwright driving Debian's Chromium, offline): a run started
from the CLI appears without a reload, its graph goes live while it runs, its step's log tails, it is compared
with another run; a pending version is approved with its reason, an endpoint rolled back, by keyboard where the
page offers it; the pages' screenshots, light and dark, land in docs/images/ when PRAVAH_SCREENSHOTS is set."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tests.support import REPO, deploy_small_model, markers_folder, register_small_model, run_cli, start_cli
from tests.test_console import write_traffic, write_windows

pytestmark = pytest.mark.slow

STEPS = """
import os, sys, time
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[argv.index("--processing-root") + 1])
    markers = Path(os.environ["CONSOLE_MARKERS"])
    if "--mode" not in argv:
        print("waiting for the go marker", flush=True)
        for _ in range(1200):
            if (markers / "go").exists():
                break
            time.sleep(0.1)
        print("going", flush=True)
        (root / "output" / "data" / "numbers.txt").write_text("1 2 3")
    else:
        (root / "output" / "report" / "report.html").write_text("<h1>the report</h1>")


if __name__ == "__main__":
    main()
"""

SPEC = """
name: live
parameters:
  factor: {type: float, default: 2.0}
steps:
  make:
    kind: processing
    code: livesteps
    outputs: {data: processed/data}
  summarize:
    kind: processing
    code: livesteps
    inputs: {data: make.data}
    arguments: {mode: summary, factor: {param: factor}}
    outputs: {report: results/report}
"""


@pytest.fixture
def console(tmp_path, project, monkeypatch):
    """A project with a registered, deployed model (topics v1), a pending one (v2), a pipeline that waits for a
    marker, and `pravah ui --port 0` on it; the console's address, the project, its home and the markers."""
    from registry.versions import PENDING

    markers = markers_folder(tmp_path, monkeypatch, "CONSOLE_MARKERS")
    home, _ = deploy_small_model(tmp_path, "web")
    register_small_model(home, tmp_path / "second", "second", PENDING, {"macro_f1": 0.9})
    write_windows(home, "web", 12)
    write_traffic(home, "web", 90)
    project("livesteps.py", STEPS)
    spec = project("configs/pipelines/live.yaml", SPEC)
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "ui", "--port", "0"],
        env={**os.environ, "PRAVAH_HOME": str(home.root)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = server.stderr.readline()
        address = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert address, line + server.stderr.read()
        yield address[1], spec, home, markers
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("this test needs Debian's chromium: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],  # offline
        )
        yield launched
        launched.close()


def test_run_to_live_graph_to_compare_to_approve_to_rollback(console, browser, tmp_path):
    from playwright.sync_api import expect

    address, spec, home, markers = console
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(address + "/")
    expect(page.get_by_text("no runs yet")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    # a run started from the CLI shows up without a reload, and its graph follows it live
    started = start_cli(home.root, "run", str(spec))
    row = page.locator("tr[data-run]")
    expect(row).to_have_count(1, timeout=30_000)
    assert page.evaluate("window.notReloaded") is True
    expect(row.locator(".badge")).to_have_text("running", timeout=30_000)
    row.get_by_role("link").click()
    make = page.locator('g.step[data-step="make"]')
    expect(make).to_have_class(re.compile("state-running"), timeout=30_000)
    make.focus()
    page.keyboard.press("Enter")  # a step is chosen by keyboard as by mouse
    expect(page.locator("#step-log")).to_contain_text("waiting for the go marker", timeout=30_000)
    page.evaluate("window.notReloaded = true")
    shot(page, "console-run-live")
    (markers / "go").touch()
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=60_000)
    expect(make).to_have_class(re.compile("state-succeeded"))
    expect(page.locator('g.step[data-step="summarize"]')).to_have_class(re.compile("state-succeeded"))
    expect(page.locator("#step-log")).to_contain_text("going")
    expect(page.locator("#reports")).to_contain_text("report.html")
    assert page.evaluate("window.notReloaded") is True, "the page followed the run without reloading"
    assert started.wait(60) == 0

    # another run, with another parameter: compared side by side
    again = run_cli(home.root, "run", str(spec), "-p", "factor=3")
    assert again.returncode == 0, again.stderr
    page.reload()
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#compare-table")).to_contain_text("parameter factor")
    expect(page.locator("#compare-table tr.differs").first).to_be_visible()

    # the pending version, approved from its page with a reason, under the registry's rules
    page.get_by_role("link", name="Models").click()
    expect(page.locator("#versions-table")).to_contain_text("PendingManualApproval")
    page.get_by_role("link", name="version 2").click()
    shot(page, "console-model")
    page.get_by_label("reason to approve").fill("better on the held-out set")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#said")).to_have_text("version 2 is now Approved")
    expect(page.locator("#version-status")).to_have_text("Approved")
    shown = run_cli(home.root, "models", "list", "topics", "--json")
    assert "better on the held-out set" in shown.stdout, shown.stdout

    # and deployed from the same page to a new endpoint, as pravah deploy would request it
    page.get_by_label("endpoint to deploy to").fill("blue")
    page.get_by_label("deployment strategy").select_option("all-at-once")
    page.get_by_role("button", name="Deploy").click()
    expect(page.locator("#said")).to_contain_text("topics-v2 to 'blue' (all-at-once")
    blue = page.locator('section[data-endpoint="blue"]')
    expect(blue).to_contain_text("requested topics-v2")
    page.evaluate("window.notReloaded = true")  # what the CLI does to an endpoint shows up without a reload
    assert run_cli(home.root, "endpoints", "rollback", "blue", "--reason", "from the CLI").returncode == 0
    expect(blue).to_contain_text("rollback requested: from the CLI", timeout=10_000)
    assert page.evaluate("window.notReloaded") is True

    # the endpoint's variants and its deployment; rolled back from the page
    page.get_by_role("link", name="Endpoints").click()
    endpoint = page.locator('section[data-endpoint="web"]')
    expect(endpoint).to_contain_text("requested topics-v1")  # nothing serves it yet: the deployment waits
    expect(endpoint.locator("svg.chart polyline")).to_have_count(8)  # 4 charts x 2 variants, from its series
    endpoint.scroll_into_view_if_needed()
    shot(page, "console-endpoints")
    page.get_by_label("reason to roll back web").fill("a test of the console")
    page.get_by_role("button", name="Roll back web").click()
    expect(page.locator("#said")).to_contain_text("rollback of d-")  # its server takes it, as from the CLI
    expect(endpoint).to_contain_text("rollback requested: a test of the console")
    assert not problems, problems

    # the endpoint's monitoring: drift per feature and window, a drifted window's report one click away
    page.get_by_role("link", name="Monitoring").click()
    expect(page.locator("svg.heatmap rect.cell")).to_have_count(24)
    drifted = page.locator("svg.heatmap rect.drifted")
    expect(drifted).to_have_count(1)
    shot(page, "console-monitoring")
    page.locator("svg.heatmap a").last.click()
    expect(page.locator("body")).to_contain_text("evidently")
    assert not problems, problems

    page.emulate_media(color_scheme="dark")
    page.goto(address + "/")
    shot(page, "console-runs-dark")


def shot(page, name: str) -> None:
    """A screenshot for the README, when asked for (PRAVAH_SCREENSHOTS=1): docs/images/NAME.png."""
    if os.environ.get("PRAVAH_SCREENSHOTS"):
        folder = REPO / "docs" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


def test_the_console_answers_every_page_offline_with_no_request_elsewhere(console, browser):
    address, *_ = console
    page = browser.new_page()
    elsewhere: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(address) else elsewhere.append(request.url))
    for path in ("/", "/models", "/endpoints", "/models/topics/1"):
        answer = page.goto(address + path)
        assert answer and answer.status == 200, path
    assert not elsewhere, elsewhere
