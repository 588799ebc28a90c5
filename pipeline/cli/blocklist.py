"""`ccpipe blocklist check|stats`: the URL blocklist stage on its own."""

from __future__ import annotations

import sys

from pipeline.cli.common import example, print_json
from pipeline.plan.checks import check_lists_dir
from pipeline.plan.config import ConfigError
from stages.filters.blocklist import URLBlocklist


def _lists_dir_ok(args) -> bool:
    """A --lists-dir that is missing or holds no list would silently turn the allowlist and rules off."""
    if args.lists_dir is None:
        return True
    try:
        check_lists_dir(args.lists_dir)
    except ConfigError as exc:
        print(f"ccpipe: {str(exc).replace(exc.key, '--lists-dir', 1)}", file=sys.stderr)
        return False
    return True


def cmd_blocklist_check(args) -> int:
    if not _lists_dir_ok(args):
        return 2
    blocklist = URLBlocklist(lists_dir=args.lists_dir)
    blocked = 0
    for url in args.url:
        verdict = blocklist.check(url)
        if verdict["blocked"]:
            blocked += 1
            print(f"BLOCKED  {url}\n         {verdict['reason']}: {verdict['detail']}")
        elif verdict["allowed"]:
            without = verdict["without_allowlist"]
            overridden = f"; without it: {without['reason']} ({without['detail']})" if without["blocked"] else ""
            print(f"allowed  {url}\n         allowlist: {verdict['allowed']}{overridden}")
        else:
            print(f"ok       {url}")
    return 1 if blocked else 0


def cmd_blocklist_stats(args) -> int:
    if not _lists_dir_ok(args):
        return 2
    lists = URLBlocklist(lists_dir=args.lists_dir).provenance()
    if args.json:
        print_json(lists)
        return 0
    print(f"{'list':<32} {'version':<10} {'entries':>20}  sha256")
    for entry in lists:
        entries = entry["entries"]
        count = ", ".join(f"{n:,} {k}" for k, n in entries.items()) if isinstance(entries, dict) else f"{entries:,}"
        print(f"{entry['name']:<32} {entry['version']:<10} {count:>20}  {entry['sha256'][:16]}…\n"
              f"{'':<32} {entry['source']}")
    return 0


def add_commands(sub) -> None:
    blocklist = sub.add_parser(
        "blocklist", help="which list and rule would block a URL; the lists in use",
        description="The URL blocklist stage on its own: check URLs, or list the lists with versions and checksums.",
        **example("ccpipe blocklist check https://www.example.com/ http://pornhub.com/"))
    bcmds = blocklist.add_subparsers(dest="blocklist_command", required=True, metavar="COMMAND")
    p = bcmds.add_parser("check", help="which list and rule would block each URL (and what the allowlist overrides)",
                         description="Prints BLOCKED with the reason and 'list:rule', allowed (with the allowlist "
                                     "entry and what it overrides) or ok, per URL; exits 1 if any URL is blocked.",
                         **example("ccpipe blocklist check https://www.example.com/ http://pornhub.com/"))
    p.add_argument("url", nargs="+", metavar="URL")
    p.add_argument("--lists-dir", help="the project lists' folder (default: the blocklists/ shipped with ccpipe)")
    p.set_defaults(func=cmd_blocklist_check)
    p = bcmds.add_parser("stats", help="sizes, versions and checksums of the lists in use",
                         description="Every list the blocklist stage loads: name, version, entries, sha256, source.",
                         **example("ccpipe blocklist stats"))
    p.add_argument("--lists-dir", help="the project lists' folder (default: the blocklists/ shipped with ccpipe)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_blocklist_stats)
