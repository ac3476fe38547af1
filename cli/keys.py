"""`pravah keys`: API keys of the predict API."""

from __future__ import annotations

import argparse
import sys

from cli.common import add_json_option, print_json, print_table


def add_commands(commands) -> None:
    keys = commands.add_parser("keys", help="API keys of the predict API")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    keys_create = keys_commands.add_parser("create", help="a new key (its secret is shown once)")
    keys_create.add_argument("name")
    keys_create.set_defaults(handler=cmd_keys_create)
    keys_list = keys_commands.add_parser("list", help="keys (never their secrets)")
    add_json_option(keys_list)
    keys_list.set_defaults(handler=cmd_keys_list)
    keys_revoke = keys_commands.add_parser("revoke", help="revoke a key by name or id (at once, live)")
    keys_revoke.add_argument("key")
    keys_revoke.set_defaults(handler=cmd_keys_revoke)


def cmd_keys_create(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.keys import KeyStore

    key = KeyStore(Home.resolve(args.home)).create(args.name)
    print(key)
    print(f"key '{args.name}' created; it is shown only now. Send it as the X-API-Key header.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.keys import KeyStore

    keys = KeyStore(Home.resolve(args.home)).list()
    if args.json:  # the secret's hash stays in the store
        print_json([{"name": k.name, "id": k.id, "created_at": k.created_at, "revoked_at": k.revoked_at} for k in keys])
        return 0
    if not keys:
        print("no API keys; create one with pravah keys create NAME")
        return 0
    rows = [
        [key.name, key.id, key.created_at, f"REVOKED {key.revoked_at}" if key.revoked_at else "active"] for key in keys
    ]
    print_table(["name", "id", "created", "status"], rows)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from foundation.home import Home
    from inference.keys import KeyStore

    key = KeyStore(Home.resolve(args.home)).revoke(args.key)
    print(f"key '{key.name}' ({key.id}) revoked")
    return 0
