"""Labels table schema: reading CSV/XLSX/Parquet, validation messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gohscore.errors import GohscoreError
from gohscore.labels import LABEL_COLUMNS, read_table, validate_labels
from tests.conftest import chest_image, labels_row


def _labels(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame([labels_row(f"{i:03d}", chest_image()) for i in range(n)])


@pytest.mark.parametrize("suffix", ["csv", "xlsx", "parquet"])
def test_read_every_table_format_keeps_ids_as_strings(tmp_path, suffix) -> None:
    df = _labels()
    path = tmp_path / f"labels.{suffix}"
    {
        "csv": lambda: df.to_csv(path, index=False),
        "xlsx": lambda: df.to_excel(path, index=False),
        "parquet": lambda: df.to_parquet(path),
    }[suffix]()
    out = validate_labels(read_table(path), str(path))
    assert out["patient"].tolist() == ["000", "001", "002"]
    assert list(out.columns) == LABEL_COLUMNS


def test_optional_fvc_and_whitespace_in_headers() -> None:
    df = _labels().assign(fvc_percent=[80.0, np.nan, 65.0]).rename(columns={"patient": " patient "})
    df.columns = [c.strip() for c in df.columns]
    out = validate_labels(df, "labels.csv")
    assert "fvc_percent" in out.columns and np.isnan(out["fvc_percent"][1])


def test_non_numeric_score_names_row_and_column() -> None:
    df = _labels().astype({"L2_GG": object})
    df.loc[2, "L2_GG"] = "ten"
    with pytest.raises(GohscoreError, match=r"row 4, column L2_GG: 'ten' is not a number"):
        validate_labels(df, "labels.csv")


def test_empty_patient_id() -> None:
    df = _labels()
    df.loc[0, "patient"] = " "
    with pytest.raises(GohscoreError, match="row 2: empty patient"):
        validate_labels(df, "labels.csv")


def test_unreadable_table(tmp_path) -> None:
    path = tmp_path / "labels.xlsx"
    path.write_text("not a spreadsheet", encoding="utf-8")
    with pytest.raises(GohscoreError, match="labels.xlsx"):
        read_table(path)
