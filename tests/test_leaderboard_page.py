"""The published page and paper table as a reader meets them: the HTML's tables sort, explain their columns, rank
their rows and hold their plots inline; the LaTeX compiles into a two-column paper with true minus signs."""

import re
import shlex
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from forgetbench.cli import parser
from forgetbench.core.settings import parse_pairs
from forgetbench.leaderboard import frontier
from forgetbench.leaderboard.render import _marked, _sort_value, html_page, latex, ranked_rows, reproduce
from forgetbench.leaderboard.tracks import build_tracks, load_runs
from hypothesis import given
from hypothesis import strategies as st

from tests.test_leaderboard import BASE, CF, NAIVE, flip, write_run


@pytest.fixture()
def track(tmp_path):
    """The toy track plus a second naive_sft configuration (lr 0.2) that forgets less than its default."""
    root = tmp_path / "runs"
    for seed, tuned in enumerate(NAIVE):
        write_run(root, "naive_sft", seed, tuned, kl=(30.0 + seed, 1.0))
        write_run(root, "naive_sft", seed, {**flip(BASE, "a", 3), "tgt": [1, 1, 0, 0, 1, 1]}, kl=(9.0, 1.0), lr=0.2)
    for seed, tuned in enumerate(CF):
        write_run(root, "context_free", seed, tuned, kl=(2.0 + seed, 0.5))
    (t,) = build_tracks(load_runs(root), "naive_sft")
    return t


class Page(HTMLParser):
    """Tables (header titles and texts, rows of (text, data-v)), ids, references and svg count of a page."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.ids, self.refs, self.svgs, self.meta = [], [], [], 0, []
        self._cell, self._body = None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        self.refs += [v for k, v in attrs if k in ("href", "xlink:href", "src") and v]
        self.refs += re.findall(r"url\((#[^)]+)\)", " ".join(v or "" for _, v in attrs))
        self.svgs += tag == "svg"
        if tag == "meta":
            self.meta.append(a)
        if tag == "table":
            self.tables.append({"headers": [], "rows": []})
        elif tag == "tr" and self._body:
            self.tables[-1]["rows"].append([])
        elif tag in ("thead", "tbody"):
            self._body = tag == "tbody"
        elif tag in ("th", "td"):
            self._cell = [tag, a, ""]

    def handle_data(self, data):
        if self._cell:
            self._cell[2] += data

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell:
            kind, a, text = self._cell
            if kind == "th":
                self.tables[-1]["headers"].append((a.get("title"), text))
            else:
                self.tables[-1]["rows"][-1].append((text, a.get("data-v")))
            self._cell = None


def test_every_table_explains_its_columns_and_carries_its_sort_keys(track):
    from forgetbench.leaderboard import plots
    page = Page(html_page([track], figures={track.key: plots.figures(track)}))
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.meta
    assert len(page.tables) == 3
    for table in page.tables:
        assert all(title and len(title) > 20 for title, _ in table["headers"])      # a tooltip per column
        for row in table["rows"]:
            assert len(row) == len(table["headers"])
            for text, v in row:
                assert (v is None) == (_sort_value(text) is None)
                assert v is None or float(v) == _sort_value(text)
    # the plots are inline SVG, with ids unique across the page and every reference resolving to one
    assert page.svgs == 2 and len(page.ids) == len(set(page.ids)) > 0
    assert all(r.startswith("#") for r in page.refs) and {r[1:] for r in page.refs} <= set(page.ids)


def test_rows_are_in_the_leaderboards_ranking(track):
    frontier_table, points = Page(html_page([track])).tables[:2]
    ranked = [row[1][0] for row in frontier_table["rows"]]
    assert ranked == [f.method for f in frontier.of(track)[0]] and ranked[0] == "context_free"
    labels = [row[0][0] for row in points["rows"]]
    # methods in the frontier's order; naive_sft's lr 0.2 configuration (it gains on a, Δ +5.0) before its
    # default (it loses on a and c)
    assert [label.split()[0] for label in labels] == ["context_free", "naive_sft", "naive_sft"]
    assert labels[1] == "naive_sft (lr=0.2)"
    avg = [h for _, h in points["headers"]].index("suite avg Δ [95% CI]")
    assert _sort_value(points["rows"][1][avg][0]) > _sort_value(points["rows"][2][avg][0])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium (Debian package chromium)")
def test_clicking_a_header_sorts_the_table_in_a_browser(track, tmp_path):
    """In headless Chromium: one click on "suite avg Δ" sorts ascending, a second descending."""
    page = html_page([track])
    col = [h for _, h in Page(page).tables[1]["headers"]].index("suite avg Δ [95% CI]")
    clicks = {}
    for n in (1, 2):
        script = (f"<script>const th=document.querySelectorAll('table')[1].tHead.rows[0].cells[{col}];"
                  f"for(let i=0;i<{n};i++)th.click();</script></body>")
        path = tmp_path / f"page{n}.html"
        path.write_text(page.replace("</body>", script))
        dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                              path.as_uri()], capture_output=True, text=True, timeout=120).stdout
        rows = Page(dom).tables[1]["rows"]
        clicks[n] = [_sort_value(r[col][0]) for r in rows]
    assert clicks[1] == sorted(clicks[1]) and clicks[2] == sorted(clicks[2], reverse=True)
    assert len(clicks[1]) == 3 and clicks[1] != clicks[2]


NUMBER = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(NUMBER, st.sampled_from(["{:+.1f} [-1.0, 2.0]*", "{:.3g} ± 0.58", "{:.2g}†", "<{:.1g}†", "{:.0f} (1.00×)",
                                "{:.2f} [0.10, 0.90]", "{:+.1f} [-1.0, 2.0] (97% of resamples)"]))
def test_a_cell_sorts_by_the_number_it_starts_with(x, style):
    text = style.format(x)
    shown = re.match(r"<?([^ †\[(]+)", text).group(1)
    assert _sort_value(text) == float(shown)


@pytest.mark.parametrize("text", ["—", "not reached", "naive_sft", "wise_ft alpha=0.5", "nan ± nan", ""])
def test_cells_without_a_leading_number_have_no_sort_key(text):
    assert _sort_value(text) is None


def test_latex_numbers_use_true_minus_signs(track):
    body = [line for line in latex(track).splitlines() if not line.startswith("%")]
    rows = [line for line in body if line.endswith(r"\\") and "&" in line]
    assert any("$-$" in line for line in rows)
    assert not any(re.search(r"(?<![\w.-])-\d", line) for line in rows)         # no hyphen as a minus ("--": a dash)
    assert all(line.isascii() for line in body)                 # every symbol spelled in LaTeX, for any engine


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (Debian texlive-latex-recommended)")
def test_latex_compiles_into_a_two_column_paper_without_overfull_boxes(track, tmp_path):
    from forgetbench.leaderboard import plots
    for name, data in plots.figures(track).items():
        (tmp_path / f"{track.name}-{name}.png").write_bytes(data["png"])
    doc = ("\\documentclass[twocolumn]{article}\n\\usepackage[utf8]{inputenc}\\usepackage{booktabs,graphicx}\n"
           "\\begin{document}\n" + latex(track, figures=["frontier", "predictors"]) + "\\end{document}\n")
    (tmp_path / "paper.tex").write_text(doc)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    log = (tmp_path / "paper.log").read_text(errors="replace")
    assert run.returncode == 0, log[-3000:]
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)


@given(st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=1, max_size=8), st.sampled_from(["max", "min"]))
def test_bold_marks_a_unique_best_and_never_a_tie(values, better):
    cells = [("-" if v is None else str(v), v) for v in values]
    _, body, _ = _marked([("col", better, cells, "help")], len(values))
    bold = [i for i, row in enumerate(body) if row[0][1]]
    present = [v for v in values if v is not None]
    top = (max if better == "max" else min)(present) if present else None
    unique = len(present) > 1 and present.count(top) == 1
    assert bold == ([values.index(top)] if unique else [])


def test_reproduce_asks_each_row_for_its_own_budget_once(track):
    """Each `bench run` line, parsed as the CLI parses it, asks for exactly the budget its row's runs had (the
    lr 0.2 row once, not the track's lr 0.1 followed by its own)."""
    rows = [r for r in ranked_rows(track) if not r.external]
    lines = reproduce(track)
    assert len(lines) == len(rows) + 3 and lines[-3].startswith("bench leaderboard publish --runs runs ")
    assert lines[-1] == f"bench leaderboard publish --runs {track.name}-runs.tar.xz --name {track.name}"
    assert sorted(r.spec["budget"]["lr"] for row in rows for r in row.runs) == [0.1] * 6 + [0.2] * 3
    for row, line in zip(rows, lines):
        loop, command = line.removesuffix("; done").split("; do ")
        assert loop.split()[3:] == [str(s) for s in row.seeds]
        words = shlex.split(command.replace("$s", "0"))
        args = parser().parse_args(words[1:])
        budget = parse_pairs(args.budget, "--budget")
        assert len(args.budget) == len(budget)                                    # no field given twice
        for run in row.runs:     # the toy target is unregistered, so every budget field is given
            assert {k: type(run.spec["budget"][k])(v) for k, v in budget.items()} == run.spec["budget"]
            assert args.method == run.spec["method"]


def test_methods_differ_in_hue_until_ten_and_in_colour_or_marker_until_many():
    from forgetbench.leaderboard.plots import style
    looks = [style(i) for i in range(60)]
    assert len({s["color"] for s in looks[:10]}) == 10 and len({s["color"] for s in looks[:20]}) == 20
    assert len({(s["color"], s["marker"]) for s in looks}) == 60
