"""DICOM results for PACS: a Structured Report (TID 1500) of one scored scan and a Secondary Capture of its QC sheet.

Both are built with highdicom from a ``gohscore predict`` result folder (``levels.csv``,
``summary.json``, ``qc.png``). When the scan was a DICOM series they join its study (new series,
the patient and study attributes copied from the CT) and reference the CT slices at the five
levels; otherwise they start a new study for the patient id of the result, and the report
references the Secondary Capture as its evidence.

The report holds one measurement group per level (world z in mm and the three scores in %, with
the CT slice it was read on) and one global group (the extent in % and the Goh stage), each with
the algorithm's name and version. Goh concepts have no codes in DICOM, SNOMED CT or LOINC, so they
carry codes of this package's private scheme :data:`SCHEME` (DICOM PS3.16 reserves ``99`` prefixes
for such schemes); units are UCUM.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.goh import LEVEL_NAMES, PATTERNS
from gohscore.result_folder import read_result, scan_of

log = logging.getLogger("gohscore")

SCHEME = "99GOHSCORE"
SR_NAME = "goh_sr.dcm"
SC_NAME = "goh_qc_sc.dcm"
MANUFACTURER = "gohscore"
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
#: meaning of each private code; the code value is the key
CONCEPTS: dict[str, str] = {
    "LEVEL_Z": "Goh level position (world z)",
    "TOT": "Total disease extent at Goh level",
    "GG": "Ground glass extent at Goh level",
    "RET": "Reticulation extent at Goh level",
    "EXTENT": "Goh global disease extent",
    "STAGE": "Goh stage",
    "LIMITED": "limited",
    "EXTENSIVE": "extensive",
    "INDETERMINATE": "indeterminate",
    "UNKNOWN": "unknown",
    "GOH": "Goh score of systemic sclerosis interstitial lung disease",
}


def code(value: str):
    """The private-scheme code with its meaning from :data:`CONCEPTS`."""
    from highdicom.sr import CodedConcept

    return CodedConcept(value, SCHEME, CONCEPTS[value])


def level_slices(scan: Path | None, z_mm: list[float]) -> list:
    """Headers (pydicom, no pixels) of the CT slice nearest each z when ``scan`` is a DICOM series, else []."""
    if scan is None or not scan.exists():
        return []
    import pydicom

    from gohscore.dicom import choose_series
    from gohscore.io import open_entry

    with open_entry(scan) as source:
        if source.kind != "dicom":
            return []
        series = choose_series(source.location, source.shown)
        normal = series.normal
        heights = np.array([float(np.dot(p, normal)) for p in series.positions]) * float(np.sign(normal[2]))
        files = [series.files[int(np.argmin(np.abs(heights - z)))] for z in z_mm]
        return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def _uid(*parts: object) -> str:
    """A DICOM UID (``2.25.``) derived from what identifies the object, so a rerun writes the same UIDs."""
    from gohscore.phantom.dicom import make_uid

    return make_uid("gohscore-results", *parts)


def _qc_pixels(qc_png: Path) -> np.ndarray:
    """The QC sheet as RGB uint8 pixels."""
    import matplotlib.image as mpimg

    if not qc_png.is_file():
        raise GohscoreError(f"{qc_png} not found; write the result folder again with gohscore predict")
    pixels = mpimg.imread(qc_png)
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels[..., :3])


def secondary_capture(qc_png: Path, ct: list, patient: str, key: str):
    """The QC sheet as a Secondary Capture: in the CT's study when ``ct`` holds its headers, else a new one."""
    from highdicom.sc import SCImage

    pixels = _qc_pixels(qc_png)
    common = {
        "pixel_array": pixels,
        "photometric_interpretation": "RGB",
        "bits_allocated": 8,
        "coordinate_system": "PATIENT",
        "series_instance_uid": _uid("sc-series", key),
        "series_number": SC_SERIES_NUMBER,
        "sop_instance_uid": _uid("sc", key),
        "instance_number": 1,
        "manufacturer": MANUFACTURER,
        "patient_orientation": ("L", "F"),
    }
    if ct:
        sc = SCImage.from_ref_dataset(ct[0], **common)
    else:
        sc = SCImage(
            study_instance_uid=_uid("study", key),
            patient_id=patient,
            patient_name=f"{patient}^gohscore",
            study_id="1",
            accession_number="",
            **common,
        )
    sc.SeriesDescription = "gohscore QC sheet (research use only)"
    return sc


def structured_report(rows: list[dict], summary: dict, ct: list, evidence: list, key: str, version: str):
    """The TID 1500 measurement report of the five levels, 15 scores, extent and stage."""
    import highdicom as hd
    from highdicom.sr import (
        AlgorithmIdentification,
        Comprehensive3DSR,
        DeviceObserverIdentifyingAttributes,
        Measurement,
        MeasurementReport,
        MeasurementsAndQualitativeEvaluations,
        ObservationContext,
        ObserverContext,
        QualitativeEvaluation,
        SourceImageForMeasurementGroup,
        TrackingIdentifier,
    )
    from pydicom.sr.codedict import codes

    models = (summary.get("provenance") or {}).get("models") or []
    # the weights that produced the numbers, as recorded by predict (task, fold, SHA-256)
    parameters = [f"{m.get('task')} fold {m.get('fold')} sha256 {m.get('sha256')}" for m in models]
    algorithm = AlgorithmIdentification(name="gohscore", version=version, parameters=parameters or None)
    groups = []
    for i, row in enumerate(rows):
        level = int(row["level"])
        values = [(code("LEVEL_Z"), float(row["z_mm"]), codes.UCUM.Millimeter)]
        values += [(code(p), float(row[p]), codes.UCUM.Percent) for p in PATTERNS]
        groups.append(
            MeasurementsAndQualitativeEvaluations(
                tracking_identifier=TrackingIdentifier(
                    uid=_uid("level", key, level), identifier=f"L{level} {LEVEL_NAMES[level]}"
                ),
                finding_type=code("GOH"),
                algorithm_id=algorithm,
                measurements=[
                    Measurement(name=n, value=v, unit=u, algorithm_id=algorithm) for n, v, u in values
                ],
                source_images=[SourceImageForMeasurementGroup.from_source_image(ct[i])] if ct else None,
            )
        )
    stage = str(summary.get("goh_stage", "unknown")).upper()
    groups.append(
        MeasurementsAndQualitativeEvaluations(
            tracking_identifier=TrackingIdentifier(uid=_uid("global", key), identifier="global"),
            finding_type=code("GOH"),
            algorithm_id=algorithm,
            measurements=[
                Measurement(
                    name=code("EXTENT"),
                    value=float(summary["global_extent_percent"]),
                    unit=codes.UCUM.Percent,
                    algorithm_id=algorithm,
                )
            ],
            qualitative_evaluations=[
                QualitativeEvaluation(code("STAGE"), code(stage if stage in CONCEPTS else "UNKNOWN"))
            ],
        )
    )
    device = ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
            uid=_uid("device", "gohscore", version), name="gohscore", model_name=f"gohscore {version}"
        ),
    )
    report = MeasurementReport(
        observation_context=ObservationContext(observer_device_context=device),
        procedure_reported=hd.sr.CodedConcept("24627-2", "LN", "CT Chest"),
        imaging_measurements=groups,
    )
    sr = Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=_uid("sr-series", key),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=_uid("sr", key),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
    )
    sr.SeriesDescription = "gohscore Goh score (research use only)"
    return sr


def write_dicom_results(result_dir: Path, out_dir: Path, version: str | None = None) -> tuple[Path, Path]:
    """Write the report (``goh_sr.dcm``) and the QC capture (``goh_qc_sc.dcm``) of one result folder.

    ``version``: the algorithm version recorded (default: the installed gohscore's).
    """
    import gohscore

    version = version or gohscore.__version__
    result_dir, out_dir = Path(result_dir), Path(out_dir)
    table, summary = read_result(result_dir, columns=("z_mm",), keys=("global_extent_percent", "goh_stage"))
    rows = table.to_dict("records")
    patient = str(summary.get("patient") or result_dir.name)
    scan = scan_of(summary)
    ct = level_slices(Path(scan) if scan else None, [float(r["z_mm"]) for r in rows])
    # the objects' identity: the scored content (a changed result gets new UIDs, a rerun the same)
    key = json.dumps(
        [rows, summary.get("global_extent_percent"), summary.get("goh_stage"), patient], default=str
    )
    sc = secondary_capture(result_dir / "qc.png", ct, patient, key)
    unique = list({ds.SOPInstanceUID: ds for ds in ct}.values())  # two levels may share a slice
    sr = structured_report(rows, summary, ct, unique or [sc], key, version)
    paths = (out_dir / SR_NAME, out_dir / SC_NAME)
    for dataset, path in zip((sr, sc), paths, strict=True):
        with atomic_path(path) as tmp:
            dataset.save_as(tmp, enforce_file_format=True)
    log.info("%s: DICOM SR and QC capture (%s)", out_dir, "in the CT's study" if ct else "new study")
    return paths
