"""A small GitHub-flavoured Markdown table writer (no dependency on ``tabulate``).

>>> import pandas as pd
>>> print(markdown_table(pd.DataFrame({"level": ["L1"], "ICC": [0.7234]})))
| level | ICC |
|:--|--:|
| L1 | 0.72 |
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

MISSING = "n/a"


def cell_text(value: object, digits: int = 2) -> str:
    """One cell as plain text: floats with ``digits`` decimals, NaN/None as ``n/a``, booleans as yes/no."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.{digits}f}"
    if isinstance(value, int | np.integer):
        return str(int(value))
    text = str(value)
    return MISSING if text in {"nan", "NaN", "<NA>", "None"} else text


def format_cell(value: object, digits: int = 2) -> str:
    """One cell for a Markdown table: :func:`cell_text` with pipes escaped, on one line."""
    return cell_text(value, digits).replace("|", "\\|").replace("\n", " ")


def is_numeric(column: pd.Series) -> bool:
    """Whether a column is shown right-aligned (numbers, not booleans)."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def markdown_table(df: pd.DataFrame, digits: int = 2) -> str:
    """The frame as a Markdown pipe table; numeric columns right-aligned, others left-aligned."""
    header = [format_cell(str(c)) for c in df.columns]
    align = ["--:" if is_numeric(df[c]) else ":--" for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row in df.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(format_cell(v, digits) for v in row) + " |")
    return "\n".join(lines)


def markdown_document(title: str, df: pd.DataFrame, notes: Sequence[str] = (), digits: int = 2) -> str:
    """A heading, the table (or a line saying it is empty) and notes, ending with a newline."""
    parts = [f"# {title}", ""]
    if df.empty:
        parts.append("_No rows._")
    else:
        parts.append(markdown_table(df, digits))
    if notes:
        parts.append("")
        parts.extend(f"- {note}" for note in notes)
    return "\n".join(parts) + "\n"
