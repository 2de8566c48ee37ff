"""The two leaderboard plots (PNG and SVG, byte-reproducible): the trade-off frontier, and forgetting vs KL."""

from __future__ import annotations

import io

import numpy as np

from leaderboard.table import Track


def _figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.hashsalt": "forgetbench", "svg.fonttype": "none", "font.size": 9})
    return plt


def _save(fig) -> dict[str, bytes]:
    """PNG and SVG bytes with no timestamps, so the same data gives the same files."""
    out = {}
    for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata=meta)
        out[fmt] = buf.getvalue()
    return out


MARKERS = "osD^vP*Xh<>p"


def style(i: int) -> dict:
    """Row i's colour and marker: 20 colours x 11 markers, so every row of a track looks different (and the
    same in both plots)."""
    import matplotlib
    return {"color": matplotlib.colormaps["tab20"](i % 20), "marker": MARKERS[(i // 2) % len(MARKERS)]}


def _legend_outside(ax) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (higher is better), by x."""
    keep = [i for i, (x, y) in enumerate(points)
            if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)]
    return sorted(keep, key=lambda i: points[i][0])


def frontier(track: Track) -> dict[str, bytes]:
    """Target gain vs preserved-suite delta (suite average), one point per row, 95% CIs as error bars."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    rows = track.rows
    pts = [(100 * r.target_gain.estimate, 100 * r.average.estimate) for r in rows]
    for i, (r, (x, y)) in enumerate(zip(rows, pts)):
        g, a = r.target_gain, r.average
        st = style(i)
        ax.errorbar(x, y, xerr=[[x - 100 * g.low], [100 * g.high - x]], yerr=[[y - 100 * a.low], [100 * a.high - y]],
                    fmt=st["marker"], color=st["color"], capsize=3, ms=5, label=r.label)
    best = pareto(pts)
    if len(best) > 1:
        ax.plot([pts[i][0] for i in best], [pts[i][1] for i in best], "--", color="grey", lw=1, label="Pareto frontier")
    _legend_outside(ax)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel(f"target gain on {track.target_task} (points, tuned − base)")
    ax.set_ylabel("preserved suites: mean Δ (points, tuned − base)")
    ax.set_title(f"{track.first.spec['model']} on {track.first.spec['target']}: gain vs forgetting (95% CI)")
    ax.grid(alpha=0.3)
    out = _save(fig)
    plt.close(fig)
    return out


def forgetting_vs_kl(track: Track) -> dict[str, bytes]:
    """One point per run: KL(base ‖ tuned) against the drop in the preserved-suite average; Spearman ρ in the title."""
    from scipy.stats import spearmanr
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    xs, ys = [], []
    for i, r in enumerate(track.rows):
        kl = [run.record["kl"]["token_exact"]["mean"] for run in r.runs]
        drop = [-100 * _average_delta(run) for run in r.runs]
        st = style(i)
        ax.scatter(kl, drop, label=r.label, color=st["color"], marker=st["marker"], s=24)
        xs += kl
        ys += drop
    if len(xs) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0:
        rho, p = spearmanr(xs, ys)
        stat = f"Spearman ρ = {rho:.2f} (p = {p:.2g}, {len(xs)} runs)"
    else:
        stat = f"Spearman ρ undefined ({len(xs)} runs)"
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("KL(base ‖ tuned), nats per sequence")
    ax.set_ylabel("forgetting: preserved-suite average drop (points)")
    ax.set_title(f"Forgetting vs KL — {stat}")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    out = _save(fig)
    plt.close(fig)
    return out


def _average_delta(run) -> float:
    suites = run.record["suites"]
    return sum(s["delta"] for s in suites.values()) / len(suites)


def figures(track: Track) -> dict[str, dict[str, bytes]]:
    """name -> {"png": bytes, "svg": bytes}."""
    return {"frontier": frontier(track), "forgetting-vs-kl": forgetting_vs_kl(track)}
