"""`bench leaderboard publish`: every track's tables in four formats (CSV: points, and per method the frontier) plus
its plots, written atomically into the track's own folder, DEST/NAME/ (beside its sweep file and runs archive)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from forgetbench.core.store import atomic_write_bytes, atomic_write_text
from forgetbench.leaderboard import archive, plots
from forgetbench.leaderboard.render import FORMATS, SUFFIX, render
from forgetbench.leaderboard.tracks import Track


def stems(tracks: list[Track], name: str | None) -> list[str]:
    """File name stems: the model name; with the target (then the track key) where that is ambiguous."""
    if name is not None:
        return [name]
    out = [t.name for t in tracks]
    for extra in (lambda t: t.first.spec["target"], lambda t: t.key):
        clash = Counter(out)
        out = [f"{s}-{extra(t)}" if clash[s] > 1 else s for s, t in zip(out, tracks)]
    return out


def publish(tracks: list[Track], dest: Path, runs_dir: str, name: str | None = None) -> list[Path]:
    written = []
    for track, stem in zip(tracks, stems(tracks, name)):
        track.name = stem
        folder = dest / stem
        figs = plots.figures(track)
        for fig, data in figs.items():
            for fmt, blob in data.items():
                path = folder / f"{stem}-{fig}.{fmt}"
                atomic_write_bytes(path, blob)
                written.append(path)
        for fmt in FORMATS:
            path = folder / f"{stem}.{SUFFIX[fmt]}"
            atomic_write_text(path, render([track], fmt, runs_dir, {track.key: figs},
                                           view="points" if fmt == "csv" else "frontier"))
            written.append(path)
        path = folder / f"{stem}-frontier.csv"        # one row per method: matched learning, cost (and its ratios)
        atomic_write_text(path, render([track], "csv", runs_dir, view="frontier"))
        written.append(path)
        path = folder / f"{stem}-predictors.csv"      # one row per predictor of forgetting
        atomic_write_text(path, render([track], "csv", runs_dir, view="predictors"))
        written.append(path)
        written.append(archive.write_archive([run.path for run in track.runs], folder / f"{stem}{archive.SUFFIX}",
                                             runs_folder=runs_dir))
    return written
