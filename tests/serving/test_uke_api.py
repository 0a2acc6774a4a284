"""レセ電 (UKE) uploads on /score and /queue: recognised by content, same scores as the CSV path
(傷病名 written and read through the committed 傷病名マスター), errors as 4xx naming file, line and
field, master_version reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.claim_screening import codes as C
from models.claim_screening import masters as M
from models.claim_screening import uke
from tests.serving.conftest import ITOSHIMA


@pytest.fixture(scope="module")
def book() -> dict[str, str]:
    """ICD-10 -> 傷病名コード from the committed 傷病名マスター, for the demo's diagnoses."""
    return M.in_use().disease_codes({d.code: d.name for d in C.DIAGNOSES})


def _claims(root: Path) -> pd.DataFrame:
    lines = pd.read_csv(root / "data/claim_screening/402303.csv", dtype=str,
                        keep_default_na=False)
    for col in ("age", "sex", "total_points", "line_no", "count", "days", "points"):
        lines[col] = lines[col].astype(int)
    return lines


def _upload(files: dict[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    # names without .UKE and a generic type: the service must recognise UKE by content
    return [("file", (f"claims{i}.dat", raw, "application/octet-stream"))
            for i, raw in enumerate(files.values())]


def test_uke_scores_equal_csv_scores(client: TestClient, trained_root: Path,
                                     book: dict[str, str]) -> None:
    lines = _claims(trained_root)
    export = uke.write_uke(lines, book)
    same = uke.representable(lines)  # what UKE carries: per-回 points, no 傷病名 on 調剤
    same["claim_id"] = same["claim_id"].map(export.claim_ids)
    same["provider_id"] = same["claim_id"].str[:10]  # the 医療機関コード the reader reports
    assert set(same["claim_type"]) >= {"歯科", "医科入院外", "調剤"}
    by_csv = client.post("/v1/claim_screening/score?explain=false", headers=ITOSHIMA,
                         files={"file": ("c.csv", same.to_csv(index=False).encode(),
                                         "text/csv")})
    assert by_csv.status_code == 200, by_csv.text
    by_uke = client.post("/v1/claim_screening/score?explain=false", headers=ITOSHIMA,
                         files=_upload(export.files))
    assert by_uke.status_code == 200, by_uke.text
    a = {r["claim_id"]: (r["score"], r["priority"]) for r in by_csv.json()["results"]}
    b = {r["claim_id"]: (r["score"], r["priority"]) for r in by_uke.json()["results"]}
    assert len(a) == same["claim_id"].nunique() > 100 and a == b
    body = by_uke.json()
    assert body["intake"]["format"] == "uke" and body["intake"]["claims"] == len(b)
    assert body["intake"]["unmapped_diagnoses"] == 0
    assert body["master_version"] == M.in_use().master_version
    assert "master_note" in body  # the demo's months run past the masters' date

    q = client.post("/v1/claim_screening/queue?capacity=0.1", headers=ITOSHIMA,
                    files=_upload(export.files))
    assert q.status_code == 200, q.text
    assert q.json()["intake"]["files"] == [f"claims{i}.dat" for i in range(len(export.files))]
    assert "より新しい月です" in q.json()["master_note"]


def test_bad_uke_upload_is_422_naming_file_line_and_field(client: TestClient,
                                                          trained_root: Path,
                                                          book: dict[str, str]) -> None:
    raw = next(iter(uke.write_uke(_claims(trained_root), book).files.values()))
    cut = raw[: raw.index(b"\r\nGO,")]  # truncated before the GO record
    r = client.post("/v1/claim_screening/queue", headers=ITOSHIMA,
                    files={"file": ("a.UKE", cut, "application/octet-stream")})
    assert r.status_code == 422 and "a.UKE line" in r.json()["error"]
    assert "without a GO" in r.json()["error"]
    few = raw.replace(b"\r\nSI,", b"\r\nSI,12\r\nSI,", 1)
    r = client.post("/v1/claim_screening/score", headers=ITOSHIMA,
                    files={"file": ("b.txt", few, "text/plain")})
    assert r.status_code == 422 and "b.txt line" in r.json()["error"]
    assert "SI record has 2 fields" in r.json()["error"]
    mixed = raw.replace("医療機関1".encode("cp932"), "医療機関1".encode())
    r = client.post("/v1/claim_screening/queue", headers={**ITOSHIMA,
                    "content-type": "application/octet-stream"}, content=mixed)
    assert r.status_code == 422
    assert "upload line 1, IR field 7 (医療機関名称)" in r.json()["error"]
    assert "mixed encodings" in r.json()["error"]
