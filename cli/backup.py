"""`pravah backup create|list|restore`: the project folder backed up and restored (disaster recovery)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import add_json_option, print_json, print_table

FOLDER_HELP = "where backups are kept (default: $PRAVAH_BACKUP_DIR, else PROJECT_FOLDER-backups beside it)"


def add_commands(commands) -> None:
    backup = commands.add_parser("backup", help="back up and restore the project folder (disaster recovery)")
    backup_commands = backup.add_subparsers(dest="backup_command", metavar="COMMAND", required=True)
    create = backup_commands.add_parser("create", help="a consistent, checksummed backup, while servers run")
    create.add_argument("--to", help=FOLDER_HELP)
    create.set_defaults(handler=cmd_backup_create)
    listed = backup_commands.add_parser("list", help="the backups in the backup folder, newest first")
    listed.add_argument("--to", help=FOLDER_HELP)
    add_json_option(listed)
    listed.set_defaults(handler=cmd_backup_list)
    restore = backup_commands.add_parser("restore", help="restore a backup into an empty project folder (--home)")
    restore.add_argument("archive", help="a backup file (pravah backup list shows them)")
    restore.set_defaults(handler=cmd_backup_restore)


def backup_folder(args: argparse.Namespace):
    from foundation.backup import backups_folder
    from foundation.home import Home

    home = Home.resolve(args.home)
    return home, backups_folder(home, args.to)


def cmd_backup_create(args: argparse.Namespace) -> int:
    from foundation.backup import create_backup

    home, folder = backup_folder(args)
    made = create_backup(home, folder)
    print(f"{made.path}: {made.files} files of {home.root}, {made.bytes / 1e6:.1f} MB")
    return 0


def cmd_backup_list(args: argparse.Namespace) -> int:
    from foundation.backup import list_backups

    _, folder = backup_folder(args)
    found = list_backups(folder)
    if args.json:
        print_json(found)
        return 0
    if not found:
        print(f"no backups in {folder}; make one with pravah backup create")
        return 0
    rows = [[b.created_at, b.files, f"{b.bytes / 1e6:.1f} MB", b.home, b.path] for b in found]
    print_table(["created", "files", "size", "of", "backup"], rows, right=["files", "size"])
    return 0


def cmd_backup_restore(args: argparse.Namespace) -> int:
    from foundation.backup import restore_backup
    from foundation.errors import PravahError
    from foundation.home import Home

    archive = Path(args.archive)
    if not archive.is_file():
        raise PravahError(f"{archive}: no such backup file")
    home = Home.resolve(args.home)
    done = restore_backup(archive, home)
    moved = f" (taken of {done.home}; its paths now point here)" if done.home != str(home.root) else ""
    print(f"restored {done.files} files of the backup of {done.created_at} into {home.root}{moved}")
    return 0
