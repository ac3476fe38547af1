"""The dataset catalog (configs/datasets.yaml): pinned upstream files with SHA-256 sums.

`pull` downloads the files (or copies them from a local mirror with the upstream layout), verifies each
against its sum in a staging folder, and only then moves the verified set into the cache: a mismatch or
a missing file caches nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from foundation.errors import PravahError, did_you_mean
from foundation.fingerprint import hash_file

CATALOG = Path(__file__).resolve().parents[1] / "configs" / "datasets.yaml"
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    homepage: str
    commit: str
    license: str
    citation: str
    base_url: str
    prefix: str
    format: str
    columns: dict[str, str]
    splits: dict[str, str]
    labels_file: str | None
    languages: list[str]
    sha256: dict[str, str]

    def files_for(self, languages: list[str]) -> list[str]:
        names = [*self.splits.values(), *([self.labels_file] if self.labels_file else [])]
        return [f"{lang}/{name}" for lang in languages for name in names]


def load_catalog(path: Path = CATALOG) -> dict[str, Dataset]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PravahError(f"{path}: cannot read the dataset catalog ({exc})") from None
    try:
        return {name: Dataset(name=name, **fields) for name, fields in raw.items()}
    except TypeError as exc:
        raise PravahError(f"{path}: malformed dataset entry ({exc})") from None


def get_dataset(catalog: dict[str, Dataset], name: str) -> Dataset:
    if name not in catalog:
        raise PravahError(f"unknown dataset '{name}'{did_you_mean(name, catalog)} (known: {', '.join(catalog)})")
    return catalog[name]


def pull(
    catalog: dict[str, Dataset],
    name: str,
    target: Path,
    languages: list[str] | None = None,
    mirror: str | os.PathLike | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Path:
    """Fetch, verify and cache a dataset's files into `target` as `<language>/<file>`."""
    dataset = get_dataset(catalog, name)
    languages = languages or dataset.languages
    unknown = [lang for lang in languages if lang not in dataset.languages]
    if unknown:
        raise PravahError(
            f"dataset '{name}' has no language '{unknown[0]}'{did_you_mean(unknown[0], dataset.languages)}"
        )
    wanted = dataset.files_for(languages)
    missing = [f for f in wanted if not _verified(target / f, dataset.sha256.get(f))]
    if not missing:
        progress(f"{name}: {len(wanted)} files already cached and verified in {target}")
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".staging-") as staging:
        for index, relative in enumerate(missing, start=1):
            expected = dataset.sha256.get(relative)
            if expected is None:
                raise PravahError(f"dataset '{name}': no checksum for {relative} in the catalog")
            staged = Path(staging) / relative
            staged.parent.mkdir(parents=True, exist_ok=True)
            source = _fetch(dataset, relative, staged, mirror)
            actual = hash_file(staged)
            if actual != expected:
                raise PravahError(
                    f"{source}: checksum mismatch (expected sha256 {expected[:16]}…, got {actual[:16]}…); "
                    "nothing was cached"
                )
            progress(f"  [{index}/{len(missing)}] {relative} verified")
        for relative in missing:  # every file verified: now move them in, one rename each
            final = target / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(staging) / relative, final)
    progress(f"{name}: {len(missing)} files verified and cached in {target}")
    return target


def _fetch(dataset: Dataset, relative: str, destination: Path, mirror: str | os.PathLike | None) -> str:
    if mirror:
        root = Path(mirror).expanduser()
        candidates = [root / dataset.prefix / relative, root / relative]
        source = next((c for c in candidates if c.is_file()), None)
        if source is None:
            raise PravahError(f"mirror {root}: no file {dataset.prefix}{relative}; nothing was cached")
        shutil.copyfile(source, destination)
        return str(source)
    url = dataset.base_url + dataset.prefix + relative
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, destination.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PravahError(
            f"cannot download {url} ({reason}); offline, name a local mirror of the upstream files: "
            "PRAVAH_DATA_MIRROR=DIR before the command, or `pravah data pull DATASET --mirror DIR`; nothing was cached"
        ) from None
    return url


def _verified(path: Path, expected: str | None) -> bool:
    return expected is not None and path.is_file() and hash_file(path) == expected
