"""Backups of the project folder (`pravah backup`), for disaster recovery (the design doc's section 10).

A backup is one `tar.gz` holding every file of the project folder (records, artifacts, registry, endpoint
state, keys, schedules, captures, reports; not the scratch area or lock files) and a manifest with each file's
SHA-256. It is consistent while servers run: the MLflow database is copied through SQLite's online backup API,
and every other file is written whole by renames (state, records) or appended line by line (captures: a line
being written may be left out). It is written under a temporary name and renamed when complete.

A restore goes into a folder that does not exist or is empty, checks every file against the manifest before
anything is put in place, and moves the whole folder into place at once. Paths inside the project folder's
records and database are absolute; restored elsewhere, they are rewritten to the new place.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from foundation.errors import PravahError
from foundation.home import Home

MANIFEST = "pravah-backup.json"
DATABASE = "mlflow.db"
LEFT_OUT = {".scratch"}  # folders of the project folder a backup leaves out


@dataclass(frozen=True)
class Backup:
    path: Path
    created_at: str
    home: str
    files: int
    bytes: int


def backups_folder(home: Home, chosen: str | None = None) -> Path:
    """Where backups go: the folder chosen (`--to`), else PRAVAH_BACKUP_DIR, else beside the project folder."""
    chosen = chosen or os.environ.get("PRAVAH_BACKUP_DIR")
    return Path(chosen).resolve() if chosen else home.root.parent / f"{home.root.name.lstrip('.')}-backups"


def create_backup(home: Home, folder: Path) -> Backup:
    """A backup of `home` in `folder` (made if missing)."""
    if not home.root.is_dir():
        raise PravahError(f"no project folder at {home.root}: nothing to back up")
    folder = folder.resolve()
    if folder == home.root or home.root in folder.parents:
        raise PravahError(f"{folder} is inside the project folder: keep backups somewhere a lost folder cannot take")
    folder.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    target = folder / f"pravah-{created:%Y%m%dT%H%M%S%fZ}.tar.gz"
    partial = target.with_name(f".{target.name}.partial")
    digests: dict[str, str] = {}
    try:
        with tarfile.open(partial, "w:gz") as archive, tempfile.TemporaryDirectory() as scratch:
            for path in sorted(_files(home.root)):
                name = path.relative_to(home.root).as_posix()
                if name == DATABASE:
                    path = _database_copy(path, Path(scratch) / DATABASE)
                try:
                    data = path.read_bytes()
                except FileNotFoundError:  # removed while the backup ran (a finished step's scratch, a rotated file)
                    continue
                digests[name] = hashlib.sha256(data).hexdigest()
                _add(archive, f"files/{name}", data)
            manifest = {"created_at": created.isoformat(timespec="seconds"), "home": str(home.root), "files": digests}
            _add(archive, MANIFEST, json.dumps(manifest, indent=2).encode())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Backup(target, manifest["created_at"], str(home.root), len(digests), target.stat().st_size)


def list_backups(folder: Path) -> list[Backup]:
    """The backups in `folder`, newest first."""
    found = []
    for path in sorted(folder.glob("pravah-*.tar.gz"), reverse=True):
        manifest = _manifest(path)
        found.append(
            Backup(path, manifest["created_at"], manifest["home"], len(manifest["files"]), path.stat().st_size)
        )
    return found


def restore_backup(archive: Path, home: Home) -> Backup:
    """Put the backup `archive` in place as `home`, which must not exist or be empty. One pass over the archive:
    its files go to a staging folder beside `home`, which is moved into place only once every file matched the
    manifest (the archive's last member) and none was missing."""
    if home.root.exists() and (not home.root.is_dir() or any(home.root.iterdir())):
        raise PravahError(f"{home.root} is not empty: restore into a new folder (nothing was changed)")
    home.root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.root.name}.restoring-", dir=home.root.parent))
    try:
        manifest, digests = None, {}
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    data = tar.extractfile(member).read() if member.isfile() else None
                    if member.name == MANIFEST and data is not None:
                        manifest = json.loads(data)
                        continue
                    name = member.name.removeprefix("files/")
                    target = staging / name
                    if data is None or staging not in target.resolve().parents:
                        raise PravahError(f"{archive}: {member.name} is not a file of the project folder")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    digests[name] = hashlib.sha256(data).hexdigest()
        except (OSError, tarfile.TarError, ValueError) as exc:
            raise PravahError(f"{archive}: not a Pravah backup ({exc})") from None
        if manifest is None:
            raise PravahError(f"{archive}: not a Pravah backup (no {MANIFEST})")
        damaged = sorted(name for name, digest in digests.items() if manifest["files"].get(name) != digest)
        if damaged:
            raise PravahError(f"{archive}: {damaged[0]} does not match its checksum: the backup is damaged")
        missing = sorted(set(manifest["files"]) - set(digests))
        if missing:
            raise PravahError(f"{archive}: {len(missing)} files of its manifest are missing ({missing[0]}, ...)")
        if manifest["home"] != str(home.root):
            _relocate(staging, manifest["home"], str(home.root))
        if home.root.exists():
            home.root.rmdir()
        staging.rename(home.root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Backup(archive, manifest["created_at"], manifest["home"], len(digests), archive.stat().st_size)


def _files(root: Path):
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not path.is_symlink() and relative.parts[0] not in LEFT_OUT and path.suffix != ".lock":
            yield path


def _database_copy(source: Path, copy: Path) -> Path:
    """The SQLite database as one consistent moment, while other processes write it (SQLite's backup API)."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reading, sqlite3.connect(copy) as writing:
        reading.backup(writing)
    return copy


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.now(UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))


def _manifest(archive: Path) -> dict:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            return json.loads(member.read()) if member else {}
    except (OSError, KeyError, tarfile.TarError, ValueError) as exc:
        raise PravahError(f"{archive}: not a Pravah backup ({exc})") from None


def _relocate(root: Path, old: str, new: str) -> None:
    """Rewrite the absolute paths of the old project folder in the records (JSON) and the database."""
    for path in root.rglob("*.json"):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if old in text:
            path.write_text(
                text.replace(f"{old}/", f"{new}/").replace(f'"{old}"', f'"{new}"'),
                encoding="utf-8",
                errors="surrogateescape",
            )
    database = root / DATABASE
    if database.is_file():
        with sqlite3.connect(database) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for column in db.execute(f'PRAGMA table_info("{table}")').fetchall():
                    if column[2].upper().startswith(("VARCHAR", "TEXT", "CHAR")):
                        db.execute(
                            f'UPDATE "{table}" SET "{column[1]}" = REPLACE("{column[1]}", ?, ?) '
                            f'WHERE "{column[1]}" LIKE ?',
                            (f"{old}/", f"{new}/", f"%{old}/%"),
                        )
