"""`bench leaderboard [publish]`: registered with the `bench` CLI through the `forgetbench.commands` entry point,
so the engine never imports the reporting package."""

from __future__ import annotations

from pathlib import Path

from forgetbench.core.errors import UserError


def add_commands(sub) -> None:
    lb = sub.add_parser("leaderboard", help="compare runs, one table per track (publish: write files and plots)")
    lb.add_argument("action", nargs="?", choices=["publish"],
                    help="publish: write DEST/NAME/NAME.{md,tex,html,csv} and the plots (PNG, SVG)")
    lb.add_argument("--runs", default="runs", help="the folder `bench run --out` wrote, or a published table's runs "
                    "archive (results/NAME/NAME-runs.tar.xz)")
    lb.add_argument("--format", choices=["markdown", "latex", "html", "csv"], default="markdown",
                    help="the table's format when printed or written with --out")
    lb.add_argument("--view", choices=["frontier", "points"], default="frontier",
                    help="frontier (default): methods ranked by forgetting at matched learning, then every "
                    "configuration; points: every configuration only (CSV: frontier gives one row per method)")
    lb.add_argument("--baseline", default=None, help="the method p-values compare against (default: the "
                    "registry's reference method, naive_sft)")
    lb.add_argument("--out", default=None, help="write the table to this file instead of printing it")
    lb.add_argument("--dest", default="results", help="publish: the folder that holds one folder per track")
    lb.add_argument("--name", default=None, help="publish: the track's folder and file name stem (default: the "
                    "model's name)")
    lb.add_argument("--note", default=None, help="a line for the header of every table, for what the records "
                    "cannot say (e.g. that wall times were taken on a shared machine) (default: none)")
    lb.set_defaults(fn=cmd_leaderboard)


def cmd_leaderboard(args) -> None:
    from forgetbench.core.store import atomic_write_text
    from forgetbench.leaderboard import archive
    from forgetbench.leaderboard.render import render
    from forgetbench.leaderboard.tracks import build_tracks, load_runs
    from forgetbench.method import reference_method

    if args.note is not None and (not args.note.strip() or not args.note.isprintable()):
        raise UserError("--note is one line of text for the tables' headers (no newline or control character).")
    runs = load_runs(Path(args.runs))
    if args.baseline is not None and all(r.spec["method"] != args.baseline for r in runs):
        raise UserError(f"--baseline {args.baseline}: no run of that method under {args.runs} (methods there: "
                        f"{', '.join(sorted({r.spec['method'] for r in runs}))}).")
    tracks = build_tracks(runs, args.baseline or reference_method())
    for track in tracks:
        track.note = args.note
    if args.action == "publish":
        from forgetbench.leaderboard.publish import publish
        if args.name is not None and len(tracks) > 1:
            raise UserError(f"--name gives one file name, but {args.runs} holds {len(tracks)} tracks; leave it out "
                            "(each track is named after its model) or publish one track's runs.")
        # re-derived from its archive, a table names the runs folder it was first published from, as it did then
        runs_dir = archive.runs_folder(Path(args.runs)) if archive.is_archive(Path(args.runs)) else args.runs
        for path in publish(tracks, Path(args.dest), runs_dir, args.name):
            print(path)
        return
    text = render(tracks, args.format, args.runs, view=args.view)
    if args.out:
        atomic_write_text(Path(args.out), text)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
