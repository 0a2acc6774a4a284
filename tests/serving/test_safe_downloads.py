"""Every download over HTTP is formula-safe (cases/roster_formula_ids.csv and friends), cp932
says which cell it cannot hold, and road photos keep GPS / flag no-fix and far-away positions
(cases/g5_dto_zeros_valid_gps.jpg, cases/g7_null_island.jpg, an iPhone HEIC)."""

from __future__ import annotations

import io
import json
from contextlib import AbstractContextManager
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.road_damage.analyze import VERDICT_CODES
from tests.serving.conftest import bound_client
from tests.unit.test_downloads import intake_unquote

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES = FIXTURES / "cases"
NAHA = {"Authorization": "Bearer kyodo-demo-472018"}
ITOSHIMA = {"Authorization": "Bearer kyodo-demo-402303"}
TOYOHASHI = {"Authorization": "Bearer kyodo-demo-232017"}
CHIBA = {"Authorization": "Bearer kyodo-demo-121002"}
MURORAN = {"Authorization": "Bearer kyodo-demo-012050"}
ADMIN = {"Authorization": "Bearer kyodo-demo-admin"}
RISKY = ['=HYPERLINK("http://x","y")', "=1+1", "+81", "-5", "@SUM(A1)"]
STARTS = ("=", "+", "-", "@", "\t", "\r")



def file_codes(photo: dict) -> list[str]:
    """A photo's warning codes that come from its file and EXIF, not from the road verdict."""
    return [w["code"] for w in photo["warnings"] if w["code"] not in VERDICT_CODES]

def bound(root: Path) -> AbstractContextManager[TestClient]:
    """A client on the app with the runtime of one trained workspace (restored afterwards)."""
    from serving.runtime import Runtime

    return bound_client(Runtime.load(root))


def csv_column(content: bytes, column: str, encoding: str = "utf-8-sig") -> list[str]:
    table = pd.read_csv(io.BytesIO(content), encoding=encoding, dtype=str, keep_default_na=False)
    return table[column].tolist()


def xlsx_sheet(content: bytes) -> openpyxl.worksheet.worksheet.Worksheet:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    formulas = [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    assert not formulas, f"live formulas in {formulas}"
    return sheet


def xlsx_column(sheet: openpyxl.worksheet.worksheet.Worksheet, column: str) -> list:
    header = [c.value for c in sheet[1]]
    return [row[header.index(column)].value for row in sheet.iter_rows(min_row=2)]


def assert_inert(csv_values: list[str], xlsx_values: list, expected: list[str]) -> None:
    """Every expected id comes back: quoted in CSV, as plain string cells in xlsx."""
    assert not [v for v in csv_values if v.startswith(STARTS)]
    assert set(expected) <= {intake_unquote(v) for v in csv_values}
    assert set(expected) <= {v for v in xlsx_values if isinstance(v, str)}


def test_outreach_downloads_keep_formula_ids_as_text(nudge_root: Path) -> None:
    raw = (CASES / "roster_formula_ids.csv").read_bytes()
    ids = pd.read_csv(io.BytesIO(raw), dtype=str)["resident_id"].tolist()
    risky = [i for i in ids if i.startswith(STARTS)]
    assert len(risky) == 4
    params = {"include_all": "true", "allow_new_districts": "true", "postcards": 10}
    with bound(nudge_root) as client:
        got = {fmt: client.post("/v1/checkup_nudge/outreach", headers=NAHA,
                                params={**params, "format": fmt},
                                files={"file": ("roster.csv", raw, "text/csv")})
               for fmt in ("csv", "xlsx", "csv_cp932")}
        for fmt, r in got.items():
            assert r.status_code == 200, (fmt, r.text)
        sheet = xlsx_sheet(got["xlsx"].content)
        assert_inert(csv_column(got["csv"].content, "住民ID"), xlsx_column(sheet, "住民ID"), risky)
        sjis = csv_column(got["csv_cp932"].content, "住民ID", "cp932")
        assert sorted(map(intake_unquote, sjis)) == sorted(ids)
        assert all(isinstance(v, int) for v in xlsx_column(sheet, "順位"))
        # a character Shift_JIS lacks: 422 naming the cell, not a silent '?'
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
        frame.loc[2, "resident_id"] = "𠮷-0003"
        body = frame.to_csv(index=False).encode("utf-8")
        bad = client.post("/v1/checkup_nudge/outreach", headers=NAHA,
                          params={**params, "format": "csv_cp932"},
                          files={"file": ("roster.csv", body, "text/csv")})
        assert bad.status_code == 422, bad.text
        assert "住民ID" in bad.json()["error"] and "𠮷" in bad.json()["error"]
        assert "format=csv" in bad.json()["error"]
        ok = client.post("/v1/checkup_nudge/outreach", headers=NAHA,
                         params={**params, "format": "csv"},
                         files={"file": ("roster.csv", body, "text/csv")})
        assert "𠮷-0003" in csv_column(ok.content, "住民ID")


def test_claim_queue_downloads_keep_formula_ids_as_text(trained_root: Path) -> None:
    lines = pd.read_csv(trained_root / "data/claim_screening/402303.csv", dtype=str,
                        keep_default_na=False)
    latest = lines[lines["service_month"] == lines["service_month"].max()]  # the queued month
    first = list(dict.fromkeys(latest["claim_id"]))[:len(RISKY)]
    lines["claim_id"] = lines["claim_id"].replace(dict(zip(first, RISKY, strict=True)))
    patients = list(dict.fromkeys(latest["patient_id"]))[:len(RISKY)]
    lines["patient_id"] = lines["patient_id"].replace(dict(zip(patients, RISKY, strict=True)))
    providers = list(dict.fromkeys(latest["provider_id"]))[:2]
    lines["provider_id"] = lines["provider_id"].replace(dict(zip(providers, ["@x", "-1"],
                                                                 strict=True)))
    body = lines.to_csv(index=False).encode("utf-8")
    with bound(trained_root) as client:
        url = "/v1/claim_screening/queue"
        got = {fmt: client.post(url, params={"format": fmt, "capacity": 1}, content=body,
                                headers={**ITOSHIMA, "content-type": "text/csv"})
               for fmt in ("csv", "xlsx")}
        assert got["csv"].status_code == 200, got["csv"].text
        sheet = xlsx_sheet(got["xlsx"].content)
        for column, expected in (("レセプト番号", RISKY), ("患者", RISKY),
                                 ("医療機関", ["@x", "-1"])):
            assert_inert(csv_column(got["csv"].content, column), xlsx_column(sheet, column),
                         expected)
        assert all(isinstance(v, float | int) for v in xlsx_column(sheet, "請求点数"))
        queue_id = client.post(url, params={"capacity": 1}, content=body,
                               headers={**ITOSHIMA, "content-type": "text/csv"}).json()["queue_id"]
        stored = f"/v1/claim_screening/queues/{queue_id}/download"
        csv = client.get(stored, params={"format": "csv"}, headers=ITOSHIMA).content
        sheet = xlsx_sheet(client.get(stored, params={"format": "xlsx"}, headers=ITOSHIMA).content)
        assert_inert(csv_column(csv, "レセプト番号"), xlsx_column(sheet, "レセプト番号"), RISKY)


def test_care_batch_downloads_keep_formula_ids_as_text(care_root: Path) -> None:
    persons = pd.read_csv(care_root / "data/care_plan/232017.csv", dtype=str,
                          keep_default_na=False).head(len(RISKY))
    persons = persons[[c for c in persons.columns if not c.startswith("plan_")]]
    persons["person_id"] = RISKY
    raw = persons.to_csv(index=False).encode("utf-8")
    with bound(care_root) as client:
        got = {fmt: client.post("/v1/care_plan/batch", headers=TOYOHASHI, params={"format": fmt},
                                files={"file": ("persons.csv", raw, "text/csv")})
               for fmt in ("csv", "xlsx", "csv_cp932")}
        assert got["csv"].status_code == 200, got["csv"].text
        sheet = xlsx_sheet(got["xlsx"].content)
        assert_inert(csv_column(got["csv"].content, "利用者ID"), xlsx_column(sheet, "利用者ID"),
                     RISKY)
        assert_inert(csv_column(got["csv_cp932"].content, "利用者ID", "cp932"),
                     xlsx_column(sheet, "利用者ID"), RISKY)


def test_cost_downloads_have_no_formulas_and_numeric_amounts(client: TestClient) -> None:
    xlsx = client.get("/v1/admin/costs", params={"format": "xlsx"}, headers=ADMIN)
    assert xlsx.status_code == 200, xlsx.text
    sheet = xlsx_sheet(xlsx.content)
    assert all(isinstance(v, int | float) for v in xlsx_column(sheet, "削減額（円）"))
    assert all(isinstance(v, str) for v in xlsx_column(sheet, "団体コード"))  # "012050" kept


def test_road_photos_heic_bad_dates_no_fix_far_away_and_safe_exports(road_root: Path) -> None:
    g5 = (CASES / "g5_dto_zeros_valid_gps.jpg").read_bytes()  # valid GPS at 千葉市役所
    files = [("files", ("=HYPERLINK(x).jpg", g5, "image/jpeg")),
             ("files", ("@null.jpg", (CASES / "g7_null_island.jpg").read_bytes(), "image/jpeg")),
             ("files", ("-iphone.heic", (FIXTURES / "road_iphone.heic").read_bytes(),
                        "image/heic"))]
    with bound(road_root) as client:
        r = client.post("/v1/road_damage/analyze", files=files, headers=CHIBA)
        assert r.status_code == 200, r.text
        by_name = {p["name"]: p for p in r.json()["photos"]}
        dated = by_name["=HYPERLINK(x).jpg"]
        assert dated["lat"] == pytest.approx(35.6073, abs=1e-4) and dated["taken_at"] is None
        # the file's own warnings (the tiny test model may add its road verdict: VERDICT_CODES)
        assert file_codes(dated) == ["taken_at_unreadable"]
        null = by_name["@null.jpg"]
        assert null["lat"] is None and file_codes(null) == ["gps_zero"]
        heic = by_name["-iphone.heic"]
        assert heic["lat"] is not None and file_codes(heic) == []
        assert {w["photo"] for w in r.json()["warnings"]
                if w["code"] not in VERDICT_CODES} == {"=HYPERLINK(x).jpg", "@null.jpg"}

        export = f"/v1/road_damage/batches/{r.json()['batch_id']}/export"
        geo = json.loads(client.get(export, headers=CHIBA).content)
        names = {f["properties"]["photo"] for f in geo["features"]}
        assert names == {"'=HYPERLINK(x).jpg", "'-iphone.heic"}  # no point for 0°, 0°
        point = next(f for f in geo["features"] if "HYPERLINK" in f["properties"]["photo"])
        assert point["geometry"]["coordinates"][0] == pytest.approx(140.1063, abs=1e-4)
        csv = client.get(export, params={"format": "csv"}, headers=CHIBA).content
        sheet = xlsx_sheet(client.get(export, params={"format": "xlsx"}, headers=CHIBA).content)
        assert_inert(csv_column(csv, "photo"), xlsx_column(sheet, "photo"),
                     ["=HYPERLINK(x).jpg", "@null.jpg", "-iphone.heic"])
        notes = dict(zip(csv_column(csv, "photo"), csv_column(csv, "warnings"), strict=True))
        assert "0°, 0°" in notes["'@null.jpg"] and "0°, 0°" not in notes["'-iphone.heic"]
        assert all(isinstance(v, int | float) for v in xlsx_column(sheet, "crack_ratio"))

        # the same Chiba photo sent by 室蘭市 lies ~750 km outside its area: a warning
        far = client.post("/v1/road_damage/analyze", headers=MURORAN,
                          files=[("files", ("chiba.jpg", g5, "image/jpeg"))]).json()
        codes = file_codes(far["photos"][0])
        assert codes == ["taken_at_unreadable", "outside_municipality"]
        assert any("室蘭市" in w["ja"] for w in far["photos"][0]["warnings"])
        export = f"/v1/road_damage/batches/{far['batch_id']}/export"
        props = json.loads(client.get(export, headers=MURORAN).content)["features"][0]
        assert "室蘭市" in props["properties"]["warnings"]  # still a point, flagged
