"""The leaderboard: tracks of comparable runs, their statistics, tables, plots and published files.

    forgetbench.leaderboard.table("runs")        # a pandas DataFrame with the published CSV's columns
"""

from __future__ import annotations

from pathlib import Path

from forgetbench.core.errors import UserError


def table(runs: str | Path = "runs", *, baseline: str | None = None, view: str = "points"):
    """The leaderboard as a pandas DataFrame with the published CSV's columns: view "points" one row per
    method/setting (every track's rows), "frontier" one row per method, "predictors" one per predictor."""
    import pandas as pd
    from forgetbench.leaderboard.render import csv_rows, frontier_csv_rows, predictor_csv_rows
    from forgetbench.leaderboard.tracks import build_tracks, load_runs
    from forgetbench.method import reference_method
    rows = {"points": csv_rows, "frontier": frontier_csv_rows, "predictors": predictor_csv_rows}
    if view not in rows:
        raise UserError(f"forgetbench.leaderboard.table(view={view!r}): one of {', '.join(rows)}.")
    tracks = build_tracks(load_runs(Path(runs)), baseline or reference_method())
    return pd.DataFrame([row for t in tracks for row in rows[view](t)])
