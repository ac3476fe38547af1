"""Events sent out (`pravah events notify`): each event of the feed (console/events.py) that was not sent
before goes, once, to every target of `configs/notifications.yaml`, an Apprise URL each: a JSON webhook
(`json://host/path`), Slack (`slack://...`), e-mail (`mailto://...`) or any other service Apprise knows. What
was sent is remembered under the project folder; the first time, what happened before is taken as already
known (--all sends it too), so that turning notifications on does not flood a channel with the past."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, field_validator

from console.events import Event
from foundation.errors import PravahError
from foundation.home import Home, write_json_atomic
from foundation.settings import ConfigSection, load_settings

DEFAULT_PATH = Path("configs") / "notifications.yaml"
KINDS = (
    "run failed",
    "run interrupted",
    "gate rejected",
    "awaits approval",
    "deployment rolled back",
    "deployment failed",
    "deployment completed",
    "drift alert",
    "schedule ran",
)
SENT_BY_DEFAULT = (*KINDS[:6], "drift alert")  # what asks for someone's attention


class NotificationSettings(ConfigSection):
    targets: list[str] = Field(default_factory=list)  # Apprise URLs
    events: list[str] = Field(default_factory=lambda: list(SENT_BY_DEFAULT))

    @field_validator("events")
    @classmethod
    def known_kinds(cls, events: list[str]) -> list[str]:
        unknown = [kind for kind in events if kind not in KINDS]
        if unknown:
            raise ValueError(f"'{unknown[0]}' is not an event (events: {', '.join(KINDS)})")
        return events


def load_notification_settings(path: Path | None = None) -> NotificationSettings:
    return load_settings(path, NotificationSettings, DEFAULT_PATH)


def notify(
    home: Home, settings: NotificationSettings, events: list[Event], say: Callable[[str], None], everything: bool
) -> int:
    """Send the events not sent before (and, the first time, only with `everything`); how many were sent."""
    import apprise

    if not settings.targets:
        raise PravahError(
            f"no targets in {DEFAULT_PATH}: add Apprise URLs (json://host/path, slack://..., mailto://...)"
        )
    sender = apprise.Apprise()
    for index, url in enumerate(settings.targets):
        if not sender.add(url):
            raise PravahError(f"{DEFAULT_PATH}: targets[{index}] is not a URL Apprise can send to: {url[:60]}")
    ledger = home.root / "notifications" / "sent.json"
    first = not ledger.is_file()
    sent = set(json.loads(ledger.read_text())) if not first else set()
    chosen = [e for e in events if e.kind in settings.events and _key(e) not in sent]
    if first and not everything:
        say(f"{len(chosen)} earlier events taken as known; from now on each new one is sent (--all sends them too)")
        write_json_atomic(ledger, sorted(sent | {_key(e) for e in chosen}))
        return 0
    delivered = 0
    for event in reversed(chosen):  # oldest first
        if not sender.notify(title=f"pravah: {event.kind}", body=f"{event.title}\n{event.link}"):
            write_json_atomic(ledger, sorted(sent))
            raise PravahError(f"could not deliver '{event.kind}: {event.title}' to every target: sent {delivered}")
        sent.add(_key(event))
        delivered += 1
        say(f"sent {event.kind}: {event.title}")
    write_json_atomic(ledger, sorted(sent))
    return delivered


def _key(event: Event) -> str:
    return f"{event.at}|{event.kind}|{event.title}"
