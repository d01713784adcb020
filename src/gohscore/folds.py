"""Cross-validation folds and the held-out test set: deterministic, stratified, stable when patients are added.

Design:

- Each patient gets a key ``u = sha256(seed, patient)`` in [0, 1): the assignment does not
  depend on the row order of the labels table.
- Strata are fixed bins of the mean TOT over the five levels (edges :data:`STRATUM_EDGES`),
  not cohort quantiles, so a patient's stratum never depends on other patients.
- Observer-study patients are always in the test set (the observer study is on held-out
  patients); the rest of the test quota is spread over the strata in proportion to their size
  (largest remainder) and filled with the smallest keys.
- CV patients are dealt to folds stratum by stratum in key order, always to the fold with the
  fewest patients of that stratum (then the fewest overall): exact, balanced counts.
- ``previous`` (an earlier assignment) makes the split stable: its patients keep their set and
  fold verbatim; only new patients are assigned, towards the same targets.
- :func:`inner_validation_split` splits one fold's training patients again, to choose a checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from gohscore.errors import GohscoreError

log = logging.getLogger("gohscore")

#: mean-TOT bin edges (percent) used as strata
STRATUM_EDGES = (2.5, 10.0, 20.0, 30.0)
FOLD_COLUMNS = ("patient", "set", "fold")  # the folds table (folds.parquet)


def patient_key(seed: int, patient: str) -> float:
    """A uniform number in [0, 1) from the seed and the patient id only."""
    digest = hashlib.sha256(f"{seed}\x00{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def stratum_of(mean_tot: np.ndarray | pd.Series, stratify: bool = True) -> np.ndarray:
    """Stratum index of each mean TOT (all 0 when not stratifying)."""
    values = np.asarray(mean_tot, float)
    if not stratify:
        return np.zeros(values.shape, int)
    return np.digitize(values, STRATUM_EDGES)


def test_target(n_test: float, n_patients: int) -> int:
    """Number of test patients: ``n_test`` if it is a count (int >= 1), else ``round(n_test * n)``."""
    if isinstance(n_test, bool):
        raise GohscoreError(
            "folds.n_test must be a count (integer >= 1) or a fraction (0 < x < 1), not a boolean"
        )
    if float(n_test) >= 1:
        if float(n_test) != int(n_test):
            raise GohscoreError(
                f"folds.n_test = {n_test} is neither a whole count nor a fraction below 1; fix it"
            )
        return int(n_test)
    if not 0 < float(n_test) < 1:
        raise GohscoreError(
            f"folds.n_test = {n_test} must be a count (integer >= 1) or a fraction (0 < x < 1)"
        )
    return int(np.floor(float(n_test) * n_patients + 0.5))


def _largest_remainder(weights: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` without exceeding ``caps``."""
    counts = np.zeros(len(weights), int)
    remaining = total
    while remaining > 0:
        room = caps - counts
        active = room > 0
        if not active.any():
            break
        share = np.where(active, weights, 0.0)
        if share.sum() <= 0:
            share = active.astype(float)
        ideal = remaining * share / share.sum()
        add = np.minimum(np.floor(ideal).astype(int), room)
        if add.sum() == 0:
            order = np.argsort(-(ideal - np.floor(ideal)) + np.arange(len(ideal)) * 1e-12)
            for s in order:
                if room[s] > 0:
                    add[s] = 1
                    break
        counts += add
        remaining -= int(add.sum())
    return counts


def assign_folds(
    patients: Iterable[str],
    mean_tot: Iterable[float],
    *,
    n_folds: int,
    n_test: float,
    stratify: bool,
    seed: int,
    forced_test: Iterable[str] = (),
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Assign each patient to ``cv`` (fold 0..n_folds-1) or ``test`` (fold -1); columns patient, set, fold.

    ``n_folds``, ``n_test`` and ``stratify`` are the ``folds:`` config keys (:class:`gohscore.settings.FoldParams`).
    """
    patients = [str(p) for p in patients]
    tot = np.asarray(list(mean_tot), float)
    if len(patients) != len(tot):
        raise ValueError("patients and mean_tot differ in length")
    if len(set(patients)) != len(patients):
        raise GohscoreError("duplicate patient ids given to the fold assignment; fix the labels table")
    if not isinstance(n_folds, int) or n_folds < 2:
        raise GohscoreError(f"folds.n_folds = {n_folds} must be an integer >= 2")
    forced = set(map(str, forced_test)) & set(patients)
    n = len(patients)
    target = test_target(n_test, n)
    if len(forced) > target:
        raise GohscoreError(
            f"folds.n_test = {n_test} gives {target} test patients but {len(forced)} observer patients must be held out; "
            "raise n_test"
        )
    if n - target < n_folds:
        raise GohscoreError(f"{n} patients leave {n - target} for {n_folds} folds; lower n_test or n_folds")
    key = np.array([patient_key(seed, p) for p in patients])
    strata = stratum_of(tot, stratify)
    n_strata = int(strata.max()) + 1 if n else 1
    index = {p: i for i, p in enumerate(patients)}
    sets = np.array([""] * n, dtype=object)
    folds = np.full(n, -2, int)

    if previous is not None and len(previous):
        for row in previous.itertuples(index=False):
            i = index.get(str(row.patient))
            if i is None:
                continue
            if str(row.set) == "cv" and patients[i] in forced:
                raise GohscoreError(
                    f"patient {patients[i]!r} is in the observers table but in cv fold {row.fold} of the previous "
                    "split; observer patients must be held out, start a new split"
                )
            sets[i], folds[i] = str(row.set), int(row.fold)
    new = sets == ""

    # test set: forced patients first, then the quota per stratum by smallest key
    for p in forced:
        if new[index[p]]:
            sets[index[p]], folds[index[p]] = "test", -1
    n_have = int((sets == "test").sum())
    quota = max(0, target - n_have)
    free = new & (sets == "")
    if quota:
        size = np.bincount(strata, minlength=n_strata).astype(float)
        have = np.bincount(strata[sets == "test"], minlength=n_strata)
        wish = np.maximum(target * size / max(n, 1) - have, 0)
        caps = np.bincount(strata[free], minlength=n_strata)
        take = _largest_remainder(wish, min(quota, int(caps.sum())), caps)
        for s in range(n_strata):
            members = np.flatnonzero(free & (strata == s))
            for i in members[np.argsort(key[members])][: take[s]]:
                sets[i], folds[i] = "test", -1

    # cv: deal the remaining new patients fold by fold, balancing within each stratum
    cv_count = np.zeros((n_strata, n_folds), int)
    for i in np.flatnonzero(sets == "cv"):
        if 0 <= folds[i] < n_folds:
            cv_count[strata[i], folds[i]] += 1
    for s in range(n_strata):
        members = np.flatnonzero((sets == "") & (strata == s))
        for i in members[np.argsort(key[members])]:
            total = cv_count.sum(axis=0)
            order = np.lexsort((np.arange(n_folds), total, cv_count[s]))
            fold = int(order[0])
            sets[i], folds[i] = "cv", fold
            cv_count[s, fold] += 1
    out = pd.DataFrame({"patient": patients, "set": sets.astype(str), "fold": folds.astype(np.int64)})
    return out.sort_values("patient", kind="stable").reset_index(drop=True)


def check_folds(folds: pd.DataFrame, n_folds: int) -> None:
    """Assert the split is well formed: each patient once, test fold -1, cv folds in range."""
    if folds["patient"].duplicated().any():
        raise GohscoreError("a patient appears twice in the folds table")
    test = folds["set"] == "test"
    if not (folds.loc[test, "fold"] == -1).all():
        raise GohscoreError("test patients must have fold -1")
    cv = folds["set"] == "cv"
    if not folds.loc[cv, "fold"].between(0, n_folds - 1).all() or not (test | cv).all():
        raise GohscoreError("folds table has a set other than cv/test or a fold out of range")


def inner_validation_split(
    patients: Sequence[str], val_fraction: float, seed: int, fold: int, *, reuse_single: bool = False
) -> tuple[list[str], list[str]]:
    """Seeded split of one fold's training patients into (train, inner validation), both sorted.

    The split depends on the patients, ``val_fraction``, ``seed`` and ``fold`` only, and both parts
    get at least one patient. Fewer than two patients raise GohscoreError, unless ``reuse_single``:
    then the training patients also serve as the validation set (with a warning).
    """
    patients = sorted(map(str, patients))
    if len(patients) < 2:
        if not reuse_single:
            raise GohscoreError(
                f"only {len(patients)} training patient(s); the inner validation split needs at least 2"
            )
        log.warning(
            "only %d training patient(s): selecting the checkpoint on the training patients", len(patients)
        )
        return patients, patients
    n_val = min(len(patients) - 1, max(1, round(val_fraction * len(patients))))
    order = np.random.default_rng([seed, fold, 1]).permutation(len(patients))
    val = sorted(patients[i] for i in order[:n_val])
    return [p for p in patients if p not in set(val)], val
