"""`bench data check DIR` and `bench data fetch [NAME ...] --to DIR`: the local data files the registered tasks
read."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from forgetbench.core.errors import UserError


def add(sub) -> None:
    d = sub.add_parser("data", help="the local data files the registered tasks read: check a folder, or fetch them "
                       "into one").add_subparsers(dest="action", required=True, metavar="{check,fetch}")
    dc = d.add_parser("check", help="list every needed file's state in a data folder (present with sha256, missing, "
                      "malformed); exit 1 if any is missing or malformed")
    dc.add_argument("folder", help="the data folder: one folder per dataset, as `bench data fetch` writes it")
    dc.add_argument("--json", action="store_true", help="print every file's state and full sha256 as JSON")
    dc.set_defaults(fn=check)
    df = d.add_parser("fetch", help="download the files into a data folder in the layout the tasks read (pinned "
                      "files checked by sha256; HellaSwag and SciQ from the hub); recorded in DIR/FETCHED.json; "
                      "needs network access")
    df.add_argument("names", nargs="*", metavar="NAME", help="suites, tasks, targets or corpora whose files to fetch "
                    "(default: every file any registered task reads)")
    df.add_argument("--to", required=True, metavar="DIR", help="the data folder to fill (created if absent); pass it "
                    "to runs as --data-dir")
    df.set_defaults(fn=fetch)


def check(args) -> int:
    """`bench data check DIR`: 0 when every file the registered tasks read is there and whole, else 1."""
    from forgetbench.data.check import check as check_folder
    from tabulate import tabulate
    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"bench data check {args.folder}: no such folder.")
    found = check_folder(folder)
    if args.json:
        print(json.dumps([vars(f) for f in found], indent=1))
    else:
        print(tabulate([[f.path, f.status, f.detail, "; ".join(f.users)] for f in found],
                       headers=["file", "status", "", "read by"], tablefmt="simple", maxcolwidths=[None] * 3 + [60]))
    bad = [f for f in found if f.status != "present"]
    counts = {s: sum(f.status == s for f in found) for s in ("present", "missing", "malformed")}
    print(f"{folder}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + (
        "; a task whose files are missing runs from the hub when online (HF_DATASETS_OFFLINE=0), else it is "
        "reported missing by the run and left out of its suite" if bad else ""), file=sys.stderr)
    return 1 if bad else 0


def fetch(args) -> int:
    """`bench data fetch [NAME ...] --to DIR`: 0 when every file asked for is there and whole afterwards, else 1."""
    from forgetbench.data.fetch import check_reachable, select
    from forgetbench.data.fetch import fetch as fetch_files
    folder = Path(args.to).expanduser()
    if folder.exists() and not (folder.is_dir() and os.access(folder, os.W_OK)):
        raise UserError(f"bench data fetch --to {args.to}: not a folder this user can write to.")
    sources = select(args.names)
    check_reachable(sources)
    failed = [o for o in fetch_files(sources, folder) if o.status == "failed"]
    print(f"{folder}: {len(sources) - len(failed)} of {len(sources)} files there and whole"
          + (f"; {len(failed)} not: see above" if failed else f"; pass --data-dir {folder} to runs"), file=sys.stderr)
    if any(o.detail.startswith("cannot fetch") for o in failed):
        print("Without network access: copy a data folder in this layout from a machine that has one (or fetched "
              "one), and check it with `bench data check DIR`, which marks the files that are the pinned bytes.",
              file=sys.stderr)
    return 1 if failed else 0
