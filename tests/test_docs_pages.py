"""/docs and /redoc work without internet: `pravah serve` serves them, and a real headless Chromium (Debian's
package, installed by `make test`) that can resolve no host but the server's loads each page and sees the API's
operations listed. FastAPI's own pages, which load their scripts from a CDN, stay blank under the same browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import deploy_small_model, serve

pytestmark = pytest.mark.slow

# As the machine's notes start Chromium headless as root on a closed network; every name but the server's fails.
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=20000",
]
OPERATIONS = ["/api/v1/ml/predict", "/api/v1/ml/batch-predict", "/api/v1/ml/model-info", "/health"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home, key = deploy_small_model(tmp_path_factory.mktemp("docs"), "docs")
    served = serve(home.root, "docs", key)
    yield served
    served.stop()


def rendered(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (the browser's clock runs ahead until the page is idle)."""
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail("this test needs Debian's chromium: `make test` installs it (apt-get install chromium)")
    done = subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_swagger_ui_lists_the_operations_offline(server, tmp_path):
    page = rendered(f"{server.url}/docs", tmp_path / "profile")
    assert "swagger-ui" in page and 'class="opblock-summary-path"' in page, page[:2000]
    for path in OPERATIONS:
        assert f'data-path="{path}"' in page, f"{path} not listed"


def test_redoc_lists_the_operations_offline(server, tmp_path):
    page = rendered(f"{server.url}/redoc", tmp_path / "profile")
    assert "Pravah predict API" in page and "Something went wrong" not in page, page[:2000]
    for path in OPERATIONS:
        assert path in page, f"{path} not listed"
    assert "Classify one text" in page  # the predict operation's description, from the OpenAPI document


def test_the_pages_assets_are_served_by_the_api_itself(server):
    with server.client() as client:
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            answer = client.get(f"/docs/assets/{name}")
            assert answer.status_code == 200 and len(answer.content) > 100_000, name
        page = client.get("/docs").text
        assert "cdn." not in page and "/docs/assets/swagger-ui-bundle.js" in page
        assert client.head("/redoc").status_code == 200
