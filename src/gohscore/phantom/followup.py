"""Synthetic follow-up pairs: one anatomy scanned twice, its disease grown, stable or regressed by a known amount.

The follow-up is the same body (:class:`~gohscore.phantom.anatomy.Anatomy`) acquired again:

- another slice spacing of the size preset, a field of view up to 6 % larger or smaller;
- the patient lying elsewhere on the table (world z shifted by up to 40 mm, x/y by up to 10 mm)
  and the scan starting up to 15 mm higher or lower on the body;
- a deeper or shallower breath: every craniocaudal distance from the carina (apex, domes, heart,
  levels) scaled by 0.94-1.06, which moves the diaphragm by up to about 8 mm;
- the disease severity raised (``grown``), kept (``stable``) or lowered (``regressed``).

The disease pattern stays with the body: the follow-up reads the baseline's random fields at the
same body position, so only the severity changes what is diseased. The true change of each score
is the difference of the two scans' reference labels (both computed from the rendered masks, as
for the cohort). Everything is a pure function of the seed, the pair index and the size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from gohscore.goh import LEVELS, PATTERNS, score_column
from gohscore.phantom.anatomy import Anatomy, draw_anatomy, level_slices
from gohscore.phantom.cohort import _render_patient
from gohscore.phantom.disease import severity_offset
from gohscore.phantom.render import Renderer
from gohscore.phantom.sizes import SizePreset, patient_id
from gohscore.settings import Section

log = logging.getLogger("gohscore")

PAIRS_TABLE = "pairs.csv"
KINDS = ("grown", "stable", "regressed")
PAIR_STREAM = 31  # the pairs' random streams, apart from the cohort's (0..13)


@dataclass(frozen=True)
class Rescan:
    """What differs at the follow-up acquisition (the drawn parameters of :func:`rescan_anatomy`)."""

    kind: str
    slice_mm: float
    fov_scale: float
    table_shift_mm: float
    start_shift_mm: float
    xy_shift_mm: tuple[float, float]
    inspiration: float
    severity: float


def draw_rescan(rng: np.random.Generator, base: Anatomy, preset: SizePreset, kind: str) -> Rescan:
    """Draw the follow-up acquisition and disease of ``base`` for a change of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"follow-up kind {kind!r} is not one of {KINDS}")
    u = rng.uniform
    others = [s for s in preset.slice_spacings_mm if s != base.slice_mm] or list(preset.slice_spacings_mm)
    slice_mm = float(rng.choice(others))
    delta = {"grown": u(0.03, 0.08), "stable": 0.0, "regressed": -u(0.03, 0.08)}[kind]
    return Rescan(
        kind=kind,
        slice_mm=slice_mm,
        fov_scale=float(u(0.94, 1.06)),
        table_shift_mm=float(u(-40, 40)),
        start_shift_mm=float(u(-15, 15)),
        xy_shift_mm=(float(u(-10, 10)), float(u(-10, 10))),
        inspiration=float(u(0.94, 1.06)),
        severity=float(np.clip(base.severity + delta, 0.01, 1.0)),
    )


def rescan_anatomy(base: Anatomy, r: Rescan) -> Anatomy:
    """``base`` as the follow-up acquisition sees it."""
    f = r.inspiration
    length = (base.n_slices - 1) * base.slice_mm
    n_slices = int(round(length / r.slice_mm)) + 1
    w_bottom = base.w_bottom + r.start_shift_mm
    level_w = tuple(w * f for w in base.level_w)
    x0, y0, z0 = base.origin_xyz_mm
    half_b, pixel_mm = (base.matrix - 1) / 2 * base.pixel_mm, base.pixel_mm * r.fov_scale
    half_f = (base.matrix - 1) / 2 * pixel_mm
    heart = list(base.heart)
    heart[2], heart[5] = heart[2] * f, heart[5] * f
    atrium = list(base.left_atrium)
    atrium[2], atrium[5] = atrium[2] * f, atrium[5] * f
    return replace(
        base,
        pixel_mm=float(pixel_mm),
        slice_mm=r.slice_mm,
        n_slices=n_slices,
        origin_xyz_mm=(
            float(x0 + half_b - half_f),
            float(y0 + half_b - half_f),
            float(z0 + (w_bottom - base.w_bottom) + r.table_shift_mm),
        ),
        w_bottom=float(w_bottom),
        body_xy_mm=(base.body_xy_mm[0] + r.xy_shift_mm[0], base.body_xy_mm[1] + r.xy_shift_mm[1]),
        w_apex=base.w_apex * f,
        w_shoulder=base.w_shoulder * f,
        dome_r=base.dome_r * f,
        dome_l=base.dome_l * f,
        level_w=level_w,
        level_k=level_slices(level_w, w_bottom, r.slice_mm, n_slices),
        heart=tuple(heart),
        left_atrium=tuple(atrium),
        noise_hu=float(base.noise_hu * np.sqrt(base.slice_mm / r.slice_mm)),
        severity=r.severity,
    )


class _BodyAnchored:
    """A disease read at the baseline's world position of each follow-up body point (see the module docstring)."""

    def __init__(self, disease, z_of_w):
        self._disease, self._z_of_w = disease, z_of_w

    def __getattr__(self, name: str):
        return getattr(self._disease, name)

    def slice(self, w, z_mm, periph, post, rows=slice(None), cols=slice(None)):
        """:meth:`Disease.slice` at the baseline's height of body height ``w``."""
        return self._disease.slice(w, self._z_of_w(w), periph, post, rows, cols)


def followup_renderer(base: Renderer, follow: Anatomy, r: Rescan, seed_key: tuple[int, ...]) -> Renderer:
    """A renderer of the follow-up whose disease is the baseline's, moved with the body."""
    renderer = Renderer(follow, seed_key)
    b = base.anat
    shift_x = b.body_xy_mm[0] - follow.body_xy_mm[0]
    shift_y = b.body_xy_mm[1] - follow.body_xy_mm[1]
    # the block the renderer's own disease was built on: its box, inside the region it renders
    (r0, c0), box = (renderer.region[0].start, renderer.region[1].start), renderer.box
    rows = renderer.rows_mm[r0 + box[0].start : r0 + box[0].stop] + shift_y
    cols = renderer.cols_mm[c0 + box[1].start : c0 + box[1].stop] + shift_x
    disease = type(base.disease).__new__(type(base.disease))
    disease.__dict__.update(base.disease.__dict__)
    disease.anat = follow
    disease.offset = severity_offset(follow.severity)
    disease.coarse = base.disease.coarse.resampled(rows, cols)
    disease.fine = base.disease.fine.resampled(rows, cols)
    z_base_bottom = float(b.slice_z(0))
    renderer.disease = _BodyAnchored(disease, lambda w: z_base_bottom + (w / r.inspiration - b.w_bottom))
    return renderer


@dataclass
class Pair:
    """A generated pair in memory: both volumes (int16 HU, zyx, slice 0 at the bottom), anatomies and labels."""

    index: int
    rescan: Rescan
    anatomies: tuple[Anatomy, Anatomy]
    volumes: tuple[np.ndarray, np.ndarray]
    labels: tuple[dict, dict]


def generate_pair(index: int, preset: SizePreset, seed: int) -> Pair:
    """Pair ``index`` (1-based): kinds cycle grown, stable, regressed; the baseline severity is 0.1-0.45."""
    rng = np.random.default_rng([seed, index, PAIR_STREAM])
    base = replace(draw_anatomy(rng, preset), severity=float(rng.uniform(0.1, 0.45)))
    r = draw_rescan(rng, base, preset, KINDS[(index - 1) % len(KINDS)])
    follow = rescan_anatomy(base, r)
    key = (seed, PAIR_STREAM, index)
    renderers = [Renderer(base, key)]
    renderers.append(followup_renderer(renderers[0], follow, r, key))
    volumes, labels = [], []
    for anat, renderer in zip((base, follow), renderers, strict=True):
        volume = np.empty((anat.n_slices, anat.matrix, anat.matrix), np.int16)
        rendered = _render_patient(patient_id(index), anat, seed, volume=volume, renderer=renderer)
        volumes.append(volume)
        labels.append(rendered.label)
    return Pair(index, r, (base, follow), (volumes[0], volumes[1]), (labels[0], labels[1]))


def truth_row(pair: Pair) -> dict:
    """One row of ``pairs.csv``: the acquisition change, both scans' reference scores and their differences."""
    from gohscore.staging import global_extent

    base, follow = pair.labels
    r = pair.rescan
    row = {
        "pair": f"F{pair.index:04d}",
        "kind": r.kind,
        "severity_baseline": round(pair.anatomies[0].severity, 4),
        "severity_followup": round(r.severity, 4),
        "slice_mm_baseline": pair.anatomies[0].slice_mm,
        "slice_mm_followup": r.slice_mm,
        "fov_scale": round(r.fov_scale, 4),
        "table_shift_mm": round(r.table_shift_mm, 2),
        "start_shift_mm": round(r.start_shift_mm, 2),
        "inspiration": round(r.inspiration, 4),
    }
    for level in LEVELS:
        for p in PATTERNS:
            col = score_column(level, p)
            row[f"{col}_baseline"], row[f"{col}_followup"] = base[col], follow[col]
            row[f"{col}_change"] = follow[col] - base[col]
    extents = [global_extent([labels[score_column(k, "TOT")] for k in LEVELS]) for labels in (base, follow)]
    row["extent_baseline"], row["extent_followup"] = extents
    row["extent_change"] = round(extents[1] - extents[0], 6)
    return row


@dataclass(frozen=True)
class FollowupParams(Section):
    """``followup:``: how many synthetic follow-up pairs to write, and at which size preset."""

    SECTION: ClassVar[str] = "followup"
    n_pairs: int
    size: str


def write_pairs(params: FollowupParams, seed: int, out: Path) -> Path:
    """Write ``scans/F0001_baseline.nii.gz``, ``scans/F0001_followup.nii.gz``, ... and ``pairs.csv`` under ``out``.

    ``out`` appears complete or not at all.
    """
    import pandas as pd

    from gohscore.files import atomic_path
    from gohscore.phantom.nifti import write_nifti_gz
    from gohscore.phantom.sizes import SIZES

    rows = []
    with atomic_path(out, directory=True) as tmp:
        (tmp / "scans").mkdir()
        for index in range(1, params.n_pairs + 1):
            pair = generate_pair(index, SIZES[params.size], seed)
            row = truth_row(pair)
            for role, anat, volume in zip(
                ("baseline", "followup"), pair.anatomies, pair.volumes, strict=True
            ):
                spacing = (anat.pixel_mm, anat.pixel_mm, anat.slice_mm)
                write_nifti_gz(
                    tmp / "scans" / f"{row['pair']}_{role}.nii.gz", volume, spacing, anat.origin_xyz_mm
                )
            rows.append(row)
            log.info(
                "pair %s (%s): extent %.1f -> %.1f %%",
                row["pair"],
                row["kind"],
                row["extent_baseline"],
                row["extent_followup"],
            )
        pd.DataFrame(rows).to_csv(tmp / PAIRS_TABLE, index=False)
    return out
