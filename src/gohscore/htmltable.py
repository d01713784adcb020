"""A table as a self-contained HTML page (the workflow report shows tables this way).

The page holds the same title, cells and notes as the Markdown twin
(:func:`gohscore.markdown.markdown_document`), with every text escaped.

>>> import pandas as pd
>>> page = html_document("Levels", pd.DataFrame({"level": ["L1"], "ICC": [0.7234]}), ["a < b"])
>>> "<td class=\\"num\\">0.72</td>" in page and "<li>a &lt; b</li>" in page
True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import pandas as pd

from gohscore.markdown import cell_text, is_numeric

STYLE = (
    "body{font-family:sans-serif;margin:1.5em;color:#111}"
    "table{border-collapse:collapse}"
    "th,td{border:1px solid #bbb;padding:0.25em 0.6em}"
    "th{background:#eee}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "li{margin:0.2em 0}"
)


def html_table(df: pd.DataFrame, digits: int = 2) -> str:
    """The frame as an HTML ``<table>``; numeric cells carry ``class="num"`` (right-aligned)."""
    numeric = [is_numeric(df[c]) for c in df.columns]
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    rows = []
    for row in df.itertuples(index=False, name=None):
        cells = (
            f'<td class="num">{escape(cell_text(v, digits))}</td>'
            if num
            else f"<td>{escape(cell_text(v, digits))}</td>"
            for v, num in zip(row, numeric, strict=True)
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def html_document(title: str, df: pd.DataFrame, notes: Sequence[str] = (), digits: int = 2) -> str:
    """A whole page: the title, the table (or a line saying it is empty) and the notes as a list."""
    body = "<p><em>No rows.</em></p>" if df.empty else html_table(df, digits)
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    notes_html = f"\n<ul>{items}</ul>" if notes else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{body}{notes_html}\n</body>\n</html>\n"
    )
