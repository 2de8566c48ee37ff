"""The two leaderboard plots (PNG and SVG, byte-reproducible): the methods' frontiers, and forgetting against each of
its candidate predictors (KL context-free and on the target's prompts, weight distance)."""

from __future__ import annotations

import io
import math

import numpy as np
from forgetbench.leaderboard.tracks import Track


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
    """The i-th method's colour and marker, so every method of a track looks different: tab20's ten dark shades
    first (tab10: a few methods never share a hue), then its ten light ones; the marker cycles on its own."""
    import matplotlib
    shade = 2 * (i % 10) + (i // 10) % 2
    return {"color": matplotlib.colormaps["tab20"](shade), "marker": MARKERS[i % len(MARKERS)]}


def method_styles(track: Track) -> dict[str, dict]:
    """Each method's colour and marker, the same in every plot of the track."""
    return {m: style(i) for i, m in enumerate(sorted({r.method for r in track.rows}))}


def _legend_outside(ax) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False)


def frontier(track: Track) -> dict[str, bytes]:
    """Every method's configurations (points, 95% CIs as thin bars) and its staircase (from the base model: at each
    gain, the best configuration that learns at least that much); the matched gains as dotted verticals, with each
    method's interval there."""
    from forgetbench.leaderboard.frontier import of
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7.2, 5.0))
    frs, info = of(track)
    span = max([100 * x for f in frs for x, _ in f.points] + [1.0])
    colour = method_styles(track)
    for i, f in enumerate(sorted(frs, key=lambda f: f.method)):
        dx = (i - (len(frs) - 1) / 2) * span * 0.004      # side by side at a matched gain, not on top of each other
        st = colour[f.method]
        for r, (x, y) in zip(f.rows, f.points):
            g, a = r.target_gain, r.average
            ax.errorbar(100 * x, 100 * y, xerr=[[100 * (x - g.low)], [100 * (g.high - x)]],
                        yerr=[[100 * (y - a.low)], [100 * (a.high - y)]], fmt=st["marker"], color=st["color"],
                        ms=4, lw=0.6, alpha=0.45, capsize=0)
        steps = _steps(f.corners)
        ax.plot([100 * x for x, _ in steps], [100 * y for _, y in steps], "-", color=st["color"], lw=1.3,
                label=f"{f.method}" + (f" (#{f.rank})" if f.rank else ""))
        run = [c for c in f.corners if c in f.points]           # the corners that are configurations
        ax.plot([100 * x for x, _ in run], [100 * y for _, y in run], st["marker"], color=st["color"], ms=5)
        for m in f.matched.values():
            if not m.is_reached:
                continue
            # a percentile interval of a max-like statistic may sit above its estimate: clip at 0. A lower end that
            # is "not reached" is drawn dotted to the axis: the method may not get there at all
            low = m.low if math.isfinite(m.low) else m.estimate
            ax.errorbar(100 * m.gain + dx, 100 * m.estimate, yerr=[[100 * max(0.0, m.estimate - low)],
                                                               [100 * max(0.0, m.high - m.estimate)]],
                        fmt="none", ecolor=st["color"], capsize=3, lw=1.2)
            if not math.isfinite(m.low):
                ax.annotate("", (100 * m.gain + dx, 100 * m.estimate), xytext=(100 * m.gain + dx, 0.0),
                            textcoords=("data", "axes fraction"), arrowprops={"arrowstyle": "-", "ls": ":",
                                                                              "color": st["color"], "lw": 1.0})
    for lv, g in sorted(info["gains"].items()):
        ax.axvline(100 * g, color="grey", ls=":", lw=1)
        ax.annotate(f"{lv:.0%} of the headroom", (100 * g, 0.01),
                    xycoords=("data", "axes fraction"), rotation=90, va="bottom", ha="right", fontsize=7, color="grey")
    _legend_outside(ax)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel(f"target gain on {track.target_task} (points, tuned − base)")
    ax.set_ylabel("preserved suites: mean Δ (points, tuned − base)")
    ax.set_title(f"{track.first.spec['model']} on {track.first.spec['target']}: learning–forgetting frontiers")
    ax.grid(alpha=0.3)
    out = _save(fig)
    plt.close(fig)
    return out


def _steps(corners: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The staircase through a Pareto front's corners (by gain, deltas falling): flat at each corner's delta from
    the previous corner's gain to its own, then down to the next."""
    out = [(0.0, corners[0][1]), corners[0]]          # from no gain: the first corner covers every gain up to its own
    for (x0, _), (x1, y1) in zip(corners, corners[1:]):
        out += [(x0, y1), (x1, y1)]
    return out


def predictors(track: Track) -> dict[str, bytes]:
    """One panel per forgetting predictor: each run's forgetting against it, coloured by method, with the linear
    and quadratic least-squares fits; ρ and R² (leaderboard.predictors) in each panel's title."""
    from forgetbench.leaderboard.predictors import analyse
    plt = _figure()
    fits = analyse(track)
    fig, axes = plt.subplots(1, len(fits), figsize=(4.2 * len(fits), 4.0), squeeze=False)
    colour = method_styles(track)
    for ax, f in zip(axes[0], fits):
        for method, st in colour.items():
            pick = [i for i, m in enumerate(f.methods) if m == method]
            if pick:
                ax.scatter(f.x[pick], -100 * f.y[pick], label=method, color=st["color"], marker=st["marker"], s=22)
        if f.n >= 3 and np.ptp(f.x) > 0:
            grid = np.linspace(f.x.min(), f.x.max(), 100)
            for degree, ls, name in ((1, "-", "linear fit"), (2, "--", "quadratic fit")):
                if len(np.unique(f.x)) > degree:
                    ax.plot(grid, -100 * np.polyval(np.polyfit(f.x, f.y, degree), grid), ls, color="black", lw=0.8,
                            label=name)
        if not f.n:
            ax.text(0.5, 0.5, "no run's record carries it\n(records older than schema 4)", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
        defined = f.rho is not None and not np.isnan(f.rho.estimate)
        stat = f"ρ = {f.rho.estimate:.2f}, R² {f.r2_linear.estimate:.2f} (lin)" if defined else "ρ undefined"
        ax.set_title(f"{f.label}\n{stat}, {f.n} runs", fontsize=9)
        ax.set_xlabel(f.label)
        ax.axhline(0, color="black", lw=0.5)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("forgetting: preserved-suite average drop (points)")
    fullest = max(range(len(fits)), key=lambda i: fits[i].n)           # its panel has every method and both fits
    handles, labels = axes[0][fullest].get_legend_handles_labels()
    axes[0][-1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                       frameon=False)
    out = _save(fig)
    plt.close(fig)
    return out


def figures(track: Track) -> dict[str, dict[str, bytes]]:
    """name -> {"png": bytes, "svg": bytes}."""
    return {"frontier": frontier(track), "predictors": predictors(track)}
