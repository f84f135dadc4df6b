"""The leaderboard as one self-contained HTML page.

Order: per group the headline table (see :mod:`.headline`), the trade-off
plot, then the details in collapsible ``<details>`` (every metric, gaps to the
reference), the other plots and the failures.

Everything is inline (CSS, a few lines of JavaScript, plots as ``data:`` PNG
URIs), so the file can be mailed, committed or opened offline. Clicking a
column header sorts the rows by it (numbers numerically, missing values last;
a second click reverses); the ``#`` column restores the grouped order. Cells
carry their raw value in ``data-v`` so sorting never parses formatted text.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from html import escape
from typing import Any

import pandas as pd

from unlearnbench.reports import crossrank
from unlearnbench.reports.board import DAGGER, Leaderboard, legend, notes, repeat_notes
from unlearnbench.reports.flags import FLAGS
from unlearnbench.reports.gaps import GROUP_KEYS, KEYS, gap_columns, gap_legend
from unlearnbench.reports.headline import (
    format_cell,
    format_headline_cell,
    group_title,
    headline_groups,
    headline_legend,
    raw_header,
    row_label,
)
from unlearnbench.reports.paired import paired_columns
from unlearnbench.reports.plots import caption
from unlearnbench.reports.significance import TIED, Marks, few_seeds, marks
from unlearnbench.reports.text import non_finite_lines, paired_legend, paired_metric_names
from unlearnbench.reports.verdict import group_verdict

TRADEOFF = "tradeoff"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
p.legend{max-width:60rem;color:#444;font-size:.9rem}
table.board{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
table.board th,table.board td{border:1px solid #ccc;padding:.25rem .5rem;white-space:nowrap}
table.board th{background:#f0f0f0;cursor:pointer;user-select:none;position:sticky;top:0}
table.board th[aria-sort=ascending]::after{content:" ▲"}
table.board th[aria-sort=descending]::after{content:" ▼"}
table.board td.num{text-align:right;font-variant-numeric:tabular-nums}
table.board td.best{font-weight:700;background:#e6f4ea}
table.board td.tied{background:#f3f8f4}
p.warning{color:#8a4b00;font-weight:600}
table.board td.uninformative{color:#aaa}
table.board tr.collapsed td{background:#fdecea}
table.board tr.no-effect td{color:#888}
p.note{color:#777;font-size:.85rem;margin:.2rem 0}
details{margin:.6rem 0}summary{cursor:pointer;font-weight:600}
table.board tr.anchor td{background:#fafafa;color:#555}
table.board tr.anchor td.best{background:#e6f4ea;color:#222}
table.board tr.missing td{color:#999;font-style:italic}
table.board:not(.sorted) tr.group-start td{border-top:2px solid #888}
div.scroll{overflow-x:auto;max-width:100%}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.9rem;color:#444}
"""

SCRIPT = """
document.querySelectorAll("table.board").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      table.classList.toggle("sorted", !(col === 0 && asc));
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (row) {
        var v = row.cells[col].getAttribute("data-v");
        if (v === null || v === "") return null;
        var n = Number(v);
        return isNaN(n) ? v.toLowerCase() : n;
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null && y === null) return 0;
        if (x === null) return 1;
        if (y === null) return -1;
        var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                        : (typeof x === "number" ? -1 : 1);
        return asc ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


PAGE_MARK = "Bold on a green fill"
"""How the page shows a best value (``td.best``), named in its legends."""


def _data(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return escape(str(value), quote=True)


def _table(
    board: Leaderboard,
    table_id: str,
    columns: list[tuple[str, str]],
    *,
    rows: pd.DataFrame | None = None,
    keys: tuple[str, ...] = tuple(KEYS),
    marked: Marks | None = None,
    headline: bool = False,
) -> str:
    """``columns``: (column in board.table, header text); adds #, ``keys``, seeds, flags.

    ``rows``: the table's rows in display order (default: the whole board);
    ``marked``: the bold and tied cells (default: :func:`.significance.marks`);
    ``headline``: values with their paired difference to the reference."""
    found, hidden = (marks(board) if marked is None else marked), board.hidden_cells()
    formatted = format_headline_cell if headline else format_cell
    rows = board.table if rows is None else rows
    heads = ["#", *keys, "seeds", FLAGS] + [header for _, header in columns]
    out = [f'<div class="scroll"><table class="board" id="{table_id}"><thead><tr>']
    out += [f'<th title="click to sort">{escape(h)}</th>' for h in heads]
    out.append("</tr></thead><tbody>")
    previous = None
    for position, (index, row) in enumerate(rows.iterrows()):
        classes = []
        group = tuple(row[k] for k in GROUP_KEYS)
        if previous is not None and group != previous:
            classes.append("group-start")
        previous = group
        if row["method"] in (board.reference, board.original):
            classes.append("anchor")
        if int(row["seeds"]) == 0:
            classes.append("missing")
        if row[FLAGS]:
            classes.append(str(row[FLAGS]).replace(" ", "-"))
        out.append(f'<tr class="{" ".join(classes)}">')
        out.append(f'<td class="num" data-v="{position}">{position + 1}</td>')
        for key in keys:
            shown = row_label(board, row) if key == "method" and len(keys) == 1 else row[key]
            out.append(f'<td data-v="{_data(row[key])}">{escape(str(shown))}</td>')
        out.append(f'<td class="num" data-v="{int(row["seeds"])}">{int(row["seeds"])}</td>')
        out.append(f'<td data-v="{_data(row[FLAGS])}">{escape(str(row[FLAGS]))}</td>')
        for column, _ in columns:
            value = row.get(column)
            cls = "num best" if (index, column) in found.best else "num"
            text = formatted(board, row, column)
            if (index, column) in found.tied:
                cls, text = "num tied", f"{text} {TIED}"
            if (index, column) in hidden:
                cls = "num uninformative"
            text = escape(text + (f" {DAGGER}" if cls.endswith("ive") and text != "–" else ""))
            out.append(f'<td class="{cls}" data-v="{_data(value)}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _figure(name: str, png: bytes, captions: Mapping[str, str]) -> str:
    data = base64.b64encode(png).decode("ascii")
    text = escape(captions.get(name) or caption(name))
    return (
        f'<figure id="plot-{escape(name)}"><img alt="{text}" '
        f'src="data:image/png;base64,{data}"><figcaption>{text}</figcaption></figure>'
    )


def _headline(board: Leaderboard) -> list[str]:
    """Per group: a heading, the headline table, its legend line."""
    parts = []
    found = marks(board)
    for number, (key, rows, columns) in enumerate(headline_groups(board)):
        parts.append(f"<h2>{escape(group_title(key))}</h2>")
        parts.append(
            _table(
                board,
                f"headline-{number}",
                [(c.key, c.label) for c in columns],
                rows=rows,
                keys=("method",),
                marked=found,
                headline=True,
            )
        )
        parts.append(f'<p class="verdict">{escape(group_verdict(board, rows))}</p>')
        parts.append(f'<p class="legend">{escape(headline_legend(board, PAGE_MARK))}</p>')
    return parts


def _crossrank(board: Leaderboard) -> list[str]:
    """The across-tasks section: per measure, the test's line and the rank table."""
    parts = [
        "<h2>Across tasks: Friedman test and critical difference</h2>",
        f'<p class="legend">{escape(crossrank.legend(board.rank_blocks))}</p>',
    ]
    for result in crossrank.rank_all(board):
        parts.append(f"<h3>{escape(result.measure)}</h3>")
        parts.append(f'<p class="legend">{escape(crossrank.summary(result))}</p>')
        if result.reason:
            continue
        parts.append(f'<table class="board" id="crossrank-{escape(result.measure)}"><thead><tr>')
        parts += [f"<th>{escape(h)}</th>" for h in crossrank.HEADERS]
        parts.append("</tr></thead><tbody>")
        for row in crossrank.table_rows(result):
            cells = "".join(f'<td data-v="{escape(c, quote=True)}">{escape(c)}</td>' for c in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
    return parts


def to_html(
    board: Leaderboard,
    title: str,
    images: Mapping[str, bytes],
    captions: Mapping[str, str] | None = None,
) -> str:
    """The page: headline tables per group, the trade-off plot, then the details
    (every metric, gaps: collapsible), the other plots and the failures.

    ``captions``: plot name -> caption where it is not the built-in one (a suite
    plot's title)."""
    captions = captions or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    parts += [f'<p class="warning">Warning: {escape(line)}.</p>' for line in few_seeds(board)]
    if board.table.empty:
        parts.append("<p>No finished cells yet.</p>")
    else:
        parts += _headline(board)
        parts += [f'<p class="note">{escape(line)}</p>' for line in notes(board)]
        parts += [f'<p class="note">{escape(line)}</p>' for line in repeat_notes(board)]
        parts += _crossrank(board)
    if TRADEOFF in images:
        parts.append(_figure(TRADEOFF, images[TRADEOFF], captions))
    if not board.table.empty:
        parts.append("<h2>Details</h2>")
        main = [(m, raw_header(board, m)) for m in board.metrics]
        parts.append(
            f'<details id="details-all"><summary>Every metric ({len(board.metrics)})'
            f'</summary><p class="legend">{escape(legend(board, PAGE_MARK))} Click a column '
            "header to sort; click # to restore the grouped order.</p>"
        )
        parts.append(_table(board, "leaderboard", main))
        parts.append("</details>")
        gaps = gap_columns(board)
        if gaps:
            parts.append(
                f'<details id="details-gaps"><summary>Gap to {escape(board.reference)}'
                f'</summary><p class="legend">{escape(gap_legend(board))}</p>'
            )
            parts.append(_table(board, "gaps", [(c, raw_header(board, c)) for c in gaps]))
            parts.append("</details>")
        paired = [c for m in paired_metric_names(board) for c in paired_columns(m)]
        if paired:
            parts.append(
                '<details id="details-paired"><summary>Paired differences</summary>'
                f'<p class="legend">{escape(paired_legend(board))}</p>'
            )
            parts.append(_table(board, "paired", [(c, c) for c in paired], marked=Marks()))
            parts.append("</details>")
    others = {n: png for n, png in images.items() if n != TRADEOFF}
    if others:
        parts.append("<h2>Plots</h2>")
        parts += [_figure(name, png, captions) for name, png in others.items()]
    if board.non_finite:
        parts.append(
            "<h2>Values that were not finite</h2><p>Shown as – above (and left out of "
            "every mean): the evaluator returned NaN or an infinity.</p><ul>"
        )
        parts += [f"<li>{escape(line)}</li>" for line in non_finite_lines(board)]
        parts.append("</ul>")
    if board.failures:
        parts.append(f"<h2>Failed cells ({len(board.failures)})</h2><ul>")
        for failure in board.failures:
            last = str(failure["error"] or "").strip().splitlines()[-1:] or [""]
            where = "/".join(str(failure[k]) for k in KEYS)
            parts.append(f"<li>{escape(where)} seed {failure['seed']}: {escape(last[0])}</li>")
        parts.append("</ul>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)
