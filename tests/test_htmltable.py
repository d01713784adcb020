"""The HTML pages of the tables: escaped text, right-aligned numbers, the Markdown twin's cells."""

from __future__ import annotations

import math

import pandas as pd

from gohscore.htmltable import html_document, html_table
from gohscore.markdown import MISSING


def test_numbers_are_right_aligned_and_formatted_like_the_markdown():
    table = pd.DataFrame({"level": ["L1", "L2"], "mae": [1.234, math.nan], "ok": [True, False]})
    html = html_table(table)
    assert '<td class="num">1.23</td>' in html and f'<td class="num">{MISSING}</td>' in html
    assert "<td>L1</td>" in html and "<td>yes</td>" in html and "<td>no</td>" in html
    assert html.count("<tr>") == 3  # the header and two rows


def test_text_is_escaped_everywhere():
    page = html_document("A <b> & C", pd.DataFrame({"<col>": ["x|y <i>"]}), ["p < 0.05 & more"])
    assert "<b>" not in page and "<i>" not in page and "<col>" not in page
    assert "<title>A &lt;b&gt; &amp; C</title>" in page and "<td>x|y &lt;i&gt;</td>" in page
    assert "<li>p &lt; 0.05 &amp; more</li>" in page


def test_an_empty_table_says_so():
    page = html_document("Nothing", pd.DataFrame({"a": []}))
    assert "No rows." in page and "<table>" not in page and "<ul>" not in page
