from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline SIB-200 mirror (CI and the Makefile set PRAVAH_DATA_MIRROR)."""
    path = Path(os.environ.get("PRAVAH_DATA_MIRROR") or REPO.parent / "shared" / "datasets" / "sib-200")
    if not (path / "data" / "annotated").is_dir():
        pytest.fail(f"the SIB-200 mirror is not at {path}: set PRAVAH_DATA_MIRROR")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def project(tmp_path: Path):
    """A throwaway project: write configs and step modules into it, get the spec path back."""
    root = tmp_path / "project"
    (root / "configs" / "pipelines").mkdir(parents=True)

    def write(relative: str, text: str) -> Path:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    write.root = root  # type: ignore[attr-defined]
    return write


@pytest.fixture(scope="session")
def moto_server() -> str:
    """A local AWS emulator (moto in server mode) over real HTTP. Its state is one per test process, shared
    by every module: each module uses names of its own."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def empty_account(moto_server, monkeypatch):
    """moto's server as an empty account of dev's (111111111111), for a test that starts from nothing as a
    new user does; emptied again afterwards, so that what it made (S3 bucket names are global) does not meet
    the names another module makes in moto's default account."""
    import httpx

    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")  # moto's server reads it at each request
    yield moto_server
    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()


# Modules that take minutes, handed out first: pytest-xdist gives whole modules to the workers in collection
# order, and one of these drawn last kept one worker busy for minutes while the other idled. Sorting is stable,
# so pytest-randomly's order stays random within the long ones and within the rest.
LONG_MODULES = {
    "test_emulator.py",
    "test_readme.py",
    "test_notebooks.py",
    "test_default_pipeline.py",
    "test_monitoring.py",
    "test_serving.py",
    "test_tabular.py",
    "test_training.py",
}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in LONG_MODULES)


@pytest.fixture(autouse=True)
def signals_as_a_terminal_gives_them(request):
    """Each test starts with Ctrl-C and SIGTERM as the previous one found them, and unblocked: a test whose
    libraries leave them blocked or handled otherwise in this process (the notebooks' kernel client installs
    its own SIGINT handler) would change what the next test's programs inherit. What a test leaves is put
    back, with a warning that names the test."""
    import signal
    import warnings

    watched = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)
    before = {sig: signal.getsignal(sig) for sig in watched}
    yield
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, watched) & watched
    changed = {sig for sig in watched if signal.getsignal(sig) != before[sig]}
    for sig in changed:
        signal.signal(sig, before[sig])
    if blocked or changed:
        names = ", ".join(sorted(s.name for s in blocked | changed))
        warnings.warn(f"{request.node.nodeid} left {names} blocked or handled otherwise: put back", stacklevel=1)
