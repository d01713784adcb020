"""Cohort tables (labels, observers, patches): schema, reading and validation with one-line errors.

Row numbers in messages count like a spreadsheet: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from gohscore.errors import GohscoreError
from gohscore.goh import LESION_PATTERNS, LEVELS, SCORE_COLUMNS, Z_COLUMNS, round_to_5, score_column

log = logging.getLogger("gohscore")

LABEL_COLUMNS = ["patient", *Z_COLUMNS, *SCORE_COLUMNS]
LABEL_OPTIONAL = ["fvc_percent"]
OBSERVER_COLUMNS = ["patient", "observer", "read", *SCORE_COLUMNS]
PATCH_COLUMNS = ["file", "pattern", "patient"]


def row_name(index: int) -> str:
    """Spreadsheet-style row name of the ``index``-th data row (0-based)."""
    return f"row {index + 2}"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, XLSX or Parquet table; ids stay strings, column names are stripped."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            df = pd.read_csv(path, dtype={"patient": str, "observer": str, "file": str, "pattern": str})
        elif suffix == ".xlsx":
            df = pd.read_excel(path, dtype={"patient": str, "observer": str, "file": str, "pattern": str})
        elif suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            raise GohscoreError(f"table {path} has an unknown type; use .csv, .xlsx or .parquet")
    except GohscoreError:
        raise
    except Exception as err:  # noqa: BLE001 - any parser failure is the user's file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GohscoreError(
            f"cannot read table {path} ({reason}); save it again as CSV, XLSX or Parquet"
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def check_columns(df: pd.DataFrame, required: list[str], optional: list[str], source: str) -> None:
    """Error on missing or unknown columns, suggesting the closest allowed name."""
    allowed = required + optional
    missing = [c for c in required if c not in df.columns]
    unknown = [c for c in df.columns if c not in allowed]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise GohscoreError(f"{source}: column {dupes[0]!r} appears twice; keep one")
    if unknown:
        col = unknown[0]
        close = difflib.get_close_matches(col, allowed, n=1)
        hint = f"did you mean {close[0]!r}? rename it" if close else "remove it"
        raise GohscoreError(
            f"{source}: unknown column {col!r} ({hint}; allowed columns: {', '.join(allowed)})"
        )
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise GohscoreError(
            f"{source}: missing column {missing[0]!r}{more}; add it (see docs/cohort-layout.md)"
        )


def _numeric(df: pd.DataFrame, column: str, source: str) -> pd.Series:
    """A column as float, with an error naming the first non-numeric row."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() & df[column].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise GohscoreError(
            f"{source} {row_name(i)}, column {column}: {df[column].iloc[i]!r} is not a number; fix it"
        )
    return values.astype(float)


def _check_ids(ids: pd.Series, source: str, column: str = "patient") -> pd.Series:
    """Strip ids, error on empty ones."""
    ids = ids.astype("string").str.strip()
    empty = ids.isna() | (ids == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise GohscoreError(f"{source} {row_name(i)}: empty {column}; fill it in or delete the row")
    return ids.astype(str)


def validate_scores(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check the 15 score columns (numbers in 0..100, GG/RET <= TOT); round to 5 (with a warning)."""
    out = df.copy()
    for column in SCORE_COLUMNS:
        values = _numeric(df, column, source)
        if values.isna().any():
            i = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise GohscoreError(
                f"{source} {row_name(i)}, column {column}: missing score; fill in a percentage 0..100"
            )
        outside = (values < 0) | (values > 100)
        if outside.any():
            i = int(np.flatnonzero(outside.to_numpy())[0])
            raise GohscoreError(
                f"{source} {row_name(i)}, column {column}: {values.iloc[i]:g} is outside 0..100; scores are percentages"
            )
        out[column] = values
    for n in LEVELS:
        tot = out[score_column(n, "TOT")].to_numpy()
        for pattern in LESION_PATTERNS:
            column = score_column(n, pattern)
            above = out[column].to_numpy() > tot + 1e-9
            if above.any():
                i = int(np.flatnonzero(above)[0])
                raise GohscoreError(
                    f"{source} {row_name(i)}, column {column}: {pattern} {out[column].iloc[i]:g} is above "
                    f"{score_column(n, 'TOT')} {tot[i]:g}; TOT is the total extent and must be at least GG and RET"
                )
    for column in SCORE_COLUMNS:
        values = out[column].to_numpy()
        rounded = round_to_5(values)
        off = np.flatnonzero(np.abs(rounded - values) > 1e-9)
        if off.size:
            i = int(off[0])
            log.warning(
                "%s: %d value(s) of %s are not multiples of 5 (first: %s %g); rounded half up to %g",
                source,
                off.size,
                column,
                row_name(i),
                values[i],
                rounded[i],
            )
        out[column] = rounded.astype(np.int64)
    for n in LEVELS:
        over = out[score_column(n, "TOT")] > out[score_column(n, "GG")] + out[score_column(n, "RET")]
        if over.any():
            i = int(np.flatnonzero(over.to_numpy())[0])
            log.warning(
                "%s %s: L%d_TOT is above GG + RET (other patterns?); kept as is", source, row_name(i), n
            )
    return out


def validate_labels(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate the labels table on its own (columns, ids, level order, scores); return the clean table."""
    check_columns(df, LABEL_COLUMNS, LABEL_OPTIONAL, source)
    if df.empty:
        raise GohscoreError(f"{source} has no rows; add one row per patient")
    df = df.reset_index(drop=True)
    ids = _check_ids(df["patient"], source)
    dup = ids.duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((ids == ids.iloc[i]).to_numpy())[0])
        raise GohscoreError(
            f"{source} {row_name(i)}: patient {ids.iloc[i]!r} already appears in {row_name(first)}; "
            "keep one row per patient"
        )
    out = validate_scores(df, source)
    out["patient"] = ids
    z = np.column_stack([_numeric(df, c, source).to_numpy() for c in Z_COLUMNS])
    if np.isnan(z).any():
        i, j = (int(v) for v in np.argwhere(np.isnan(z))[0])
        raise GohscoreError(
            f"{source} {row_name(i)}, column {Z_COLUMNS[j]}: missing level position; fill in world z in mm"
        )
    steps = np.diff(z, axis=1)
    if (steps >= 0).any():
        i, j = (int(v) for v in np.argwhere(steps >= 0)[0])
        raise GohscoreError(
            f"{source} {row_name(i)}: levels out of order, {Z_COLUMNS[j]} = {z[i, j]:g} mm is not above "
            f"{Z_COLUMNS[j + 1]} = {z[i, j + 1]:g} mm; L1 must be highest (world z grows towards the head)"
        )
    for j, column in enumerate(Z_COLUMNS):
        out[column] = z[:, j]
    if "fvc_percent" in df.columns:
        fvc = _numeric(df, "fvc_percent", source)
        bad = (fvc < 0) | (fvc > 250)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise GohscoreError(
                f"{source} {row_name(i)}, column fvc_percent: {fvc.iloc[i]:g} is not a % predicted FVC"
            )
        out["fvc_percent"] = fvc
    columns = LABEL_COLUMNS + [c for c in LABEL_OPTIONAL if c in out.columns]
    return out[columns]


def check_levels_in_scans(
    labels: pd.DataFrame, z_ranges: dict[str, tuple[float, float]], source: str
) -> None:
    """Error when a level lies outside its scan's z range (bottom..top slice, half a slice of slack)."""
    for i, row in enumerate(labels.itertuples(index=False)):
        patient = row.patient
        if patient not in z_ranges:
            continue
        lo, hi = z_ranges[patient]
        for column in Z_COLUMNS:
            z = getattr(row, column)
            if not lo <= z <= hi:
                raise GohscoreError(
                    f"{source} {row_name(i)}, column {column}: z = {z:g} mm is outside the scan of {patient} "
                    f"(z {lo:g} .. {hi:g} mm); give world z in mm (LPS, head up), not a slice number"
                )


def validate_observers(df: pd.DataFrame, patients: Iterable[str], source: str) -> pd.DataFrame:
    """Validate the observer re-reads (scores only); their patients must be in the labels."""
    check_columns(df, OBSERVER_COLUMNS, [], source)
    df = df.reset_index(drop=True)
    if df.empty:
        return empty_observers()
    out = validate_scores(df, source)
    out["patient"] = _check_ids(df["patient"], source)
    out["observer"] = _check_ids(df["observer"], source, "observer")
    read = _numeric(df, "read", source)
    bad = read.isna() | (read < 1) | (read != np.round(read))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise GohscoreError(
            f"{source} {row_name(i)}, column read: {df['read'].iloc[i]!r} is not 1, 2, ...; fix it"
        )
    out["read"] = read.astype(np.int64)
    known = set(patients)
    unknown = ~out["patient"].isin(known)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise GohscoreError(
            f"{source} {row_name(i)}: patient {out['patient'].iloc[i]!r} is not in the labels table; "
            "add the patient there or delete the row"
        )
    dup = out.duplicated(["patient", "observer", "read"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise GohscoreError(
            f"{source} {row_name(i)}: the same patient, observer and read appear twice; keep one"
        )
    return out[OBSERVER_COLUMNS]


def empty_observers() -> pd.DataFrame:
    """An observers table with its columns and no rows."""
    data = {c: pd.Series(dtype=str if c in {"patient", "observer"} else np.int64) for c in OBSERVER_COLUMNS}
    return pd.DataFrame(data)


def validate_patches(df: pd.DataFrame, patches_dir: Path, source: str) -> pd.DataFrame:
    """Validate patches.csv: files exist under ``patches_dir``, pattern GG|RET, patient given."""
    check_columns(df, PATCH_COLUMNS, [], source)
    df = df.reset_index(drop=True)
    if df.empty:
        return empty_patches()
    files = _check_ids(df["file"], source, "file")
    patterns = _check_ids(df["pattern"], source, "pattern").str.upper()
    bad = ~patterns.isin(LESION_PATTERNS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise GohscoreError(
            f"{source} {row_name(i)}, column pattern: {df['pattern'].iloc[i]!r} is not GG or RET; fix it"
        )
    patients = _check_ids(df["patient"], source)
    resolved = []
    for i, name in enumerate(files):
        path = patches_dir / name
        if not path.is_file():
            raise GohscoreError(
                f"{source} {row_name(i)}, column file: {path} does not exist; fix the name or add the file"
            )
        resolved.append(str(path))
    return pd.DataFrame({"file": resolved, "pattern": patterns.to_numpy(), "patient": patients.to_numpy()})


def empty_patches() -> pd.DataFrame:
    """A patches table with its columns and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=str) for c in PATCH_COLUMNS})
