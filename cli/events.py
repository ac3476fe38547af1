"""`pravah events`: the project's feed of what happened (the console's, on the command line), and sending it out."""

from __future__ import annotations

import argparse

from cli.common import add_json_option, print_json


def add_commands(commands) -> None:
    events = commands.add_parser("events", help="what happened: failed runs, approvals, rollbacks, drift alerts")
    events_commands = events.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    listed = events_commands.add_parser("list", help="the feed, newest first")
    listed.add_argument("--limit", type=int, default=30)
    add_json_option(listed)
    listed.set_defaults(handler=cmd_events_list)
    notify = events_commands.add_parser(
        "notify",
        help="send new events to configs/notifications.yaml's targets (webhook, Slack, e-mail: Apprise URLs)",
        description="Send each event not sent before to every target of configs/notifications.yaml, once. The "
        "first time, earlier events are taken as known unless --all. Run it from cron, or every minute.",
    )
    notify.add_argument("--config", help="default: configs/notifications.yaml")
    notify.add_argument("--all", action="store_true", help="the first time, send the earlier events too")
    notify.set_defaults(handler=cmd_events_notify)


def _feed(args: argparse.Namespace, limit: int = 200):
    from console.events import feed
    from console.monitoring import MonitoringIndex
    from console.runs import RunIndex
    from foundation.home import Home
    from registry import open_registry

    home = Home.resolve(args.home)
    return home, feed(home, RunIndex(home), open_registry(home=home), MonitoringIndex(home), limit)


def cmd_events_list(args: argparse.Namespace) -> int:
    _, events = _feed(args, args.limit)
    if args.json:
        print_json(events)
        return 0
    for event in events or []:
        print(f"{event.at[:19].replace('T', ' ')}  {event.kind:<24} {event.title}")
    if not events:
        print("nothing has happened yet")
    return 0


def cmd_events_notify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from console.notify import load_notification_settings, notify

    settings = load_notification_settings(Path(args.config) if args.config else None)
    home, events = _feed(args)
    sent = notify(home, settings, events, print, args.all)
    print(f"{sent} event{'' if sent == 1 else 's'} sent to {len(settings.targets)} target(s)")
    return 0
