"""API keys for the predict API: shown once at creation, stored only as hashes, revocable.

A key is `pvh_<id>_<secret>` with 256 random bits of secret, so one SHA-256 is enough to store it (a slow
password hash guards guessable secrets, and costs milliseconds on every request)."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from foundation.errors import PravahError, did_you_mean
from foundation.home import Home, write_json_atomic
from registry.versions import now

_KEY = re.compile(r"pvh_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class ApiKey:
    id: str
    name: str
    sha256: str
    created_at: str
    revoked_at: str | None = None


class KeyStore:
    def __init__(self, home: Home):
        self.path = home.root / "serving" / "api-keys.json"
        self._loaded_mtime: float | None = None
        self._keys: dict[str, ApiKey] = {}

    def create(self, name: str) -> str:
        """A new key for `name`; the only time its secret is shown."""
        if not _NAME.fullmatch(name):
            raise PravahError(f"key name '{name}': use letters, digits, '.', '_' and '-' (at most 64)")
        with self._locked() as keys:
            if any(k.name == name and not k.revoked_at for k in keys.values()):
                raise PravahError(f"an active key named '{name}' exists; revoke it first or pick another name")
            key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            keys[key_id] = ApiKey(key_id, name, _digest(secret), now())
        return f"pvh_{key_id}_{secret}"

    def revoke(self, name_or_id: str) -> ApiKey:
        with self._locked() as keys:
            found = [k for k in keys.values() if name_or_id in (k.id, k.name) and not k.revoked_at]
            if not found:
                names = [k.name for k in keys.values() if not k.revoked_at]
                raise PravahError(f"no active key '{name_or_id}'{did_you_mean(name_or_id, names)}")
            for key in found:
                key.revoked_at = now()
        return found[0]

    def list(self) -> list[ApiKey]:
        return sorted(self._read().values(), key=lambda k: k.created_at)

    def check(self, presented: str) -> ApiKey | None:
        """The active key matching `presented`, or None. Re-reads the file when it changed (a revocation
        takes effect on the running server at once)."""
        match = _KEY.fullmatch(presented)
        if not match:
            return None
        key = self._current().get(match.group(1))
        if key is None or key.revoked_at or not hmac.compare_digest(key.sha256, _digest(match.group(2))):
            return None
        return key

    def _current(self) -> dict[str, ApiKey]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if mtime != self._loaded_mtime:
            self._keys, self._loaded_mtime = self._read(), mtime
        return self._keys

    def _read(self) -> dict[str, ApiKey]:
        if not self.path.is_file():
            return {}
        try:
            return {k["id"]: ApiKey(**k) for k in json.loads(self.path.read_text())}
        except (ValueError, TypeError, KeyError) as exc:
            raise PravahError(f"{self.path}: not a key file written by pravah ({exc})") from None

    @contextmanager
    def _locked(self) -> Iterator[dict[str, ApiKey]]:
        """The keys, read and written back under a lock (two `pravah keys` commands never lose a key)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / ".api-keys.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._read()
            yield keys
            write_json_atomic(self.path, [asdict(k) for k in keys.values()])


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
