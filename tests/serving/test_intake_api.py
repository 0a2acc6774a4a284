"""Real municipal files through the HTTP upload path: each case of issue 15's intake part."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from models.care_plan.items import ITEMS
from serving.runtime import Runtime
from tests.serving.conftest import ITOSHIMA, bound_client

FIXTURES = Path(__file__).parents[1] / "fixtures" / "intake"
NAHA = {"Authorization": "Bearer kyodo-demo-472018"}
TOYOHASHI = {"Authorization": "Bearer kyodo-demo-232017"}


bound = bound_client


@pytest.fixture(scope="module")
def nudge_rt(nudge_root: Path) -> Runtime:
    return Runtime.load(nudge_root)


@pytest.fixture(scope="module")
def care_rt(care_root: Path) -> Runtime:
    return Runtime.load(care_root)


@pytest.fixture
def nudge(nudge_rt: Runtime) -> Iterator[TestClient]:
    with bound(nudge_rt) as c:
        yield c


@pytest.fixture
def care(care_rt: Runtime) -> Iterator[TestClient]:
    with bound(care_rt) as c:
        yield c


def outreach(client: TestClient, raw: bytes, name: str = "roster.csv", **params: object):
    return client.post("/v1/checkup_nudge/outreach", headers=NAHA,
                       params={"allow_new_districts": "true", **params},
                       files={"file": (name, raw, "text/csv")})


def roster(root: Path, n: int = 30) -> pd.DataFrame:
    return pd.read_csv(root / "data/checkup_nudge/472018.csv", dtype=str,
                       keep_default_na=False).head(n)


def test_trailing_empty_rows_in_a_roster_are_ignored(nudge: TestClient) -> None:
    r = outreach(nudge, (FIXTURES / "b5_trailing_empty_rows.csv").read_bytes())
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["residents"] == 300
    assert r.json()["summary"]["excluded"]["count"] == 0


def test_kdb_style_roster_xlsx_with_ages_outside_is_not_rejected(nudge: TestClient,
                                                                  nudge_root: Path) -> None:
    frame = roster(nudge_root).drop(columns=["tenant_code"])
    frame.loc[0, "age"], frame.loc[1, "age"], frame.loc[2, "age"] = "39", "30", "50.0"
    frame["sex"] = frame["sex"].map({"1": "男", "2": "女"})
    frame["attended_y1"] = frame["attended_y1"].map({"1": "有", "0": "無"})
    frame = frame.rename(columns={"resident_id": "住民ID", "age": "年齢", "sex": "性別",
                                  "district": "地区", "attended_y1": "前年度受診"})
    book = Workbook()
    book.active.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        book.active.append(list(row))
    buf = io.BytesIO()
    book.save(buf)
    r = outreach(nudge, buf.getvalue(), "roster.xlsx", include_all="true")
    assert r.status_code == 200, r.text
    summary = r.json()["summary"]
    assert summary["residents"] == 29 and summary["excluded"]["rows"] == [3]
    assert "not eligible" in summary["excluded"]["message"]


def test_safety_quoted_ids_read_back_as_written_by_the_product(nudge: TestClient,
                                                               nudge_root: Path) -> None:
    frame = roster(nudge_root, 5)
    frame.loc[0, "resident_id"] = "'=1+1"  # how a formula-safe download writes "=1+1"
    frame.loc[1, "resident_id"] = "'-R7"
    r = outreach(nudge, frame.to_csv(index=False).encode(), include_all="true", limit=10)
    assert r.status_code == 200, r.text
    ids = {it["resident_id"] for it in r.json()["items"]}
    assert {"=1+1", "-R7"} <= ids and not any(i.startswith("'") for i in ids)


def test_a_pasted_shift_jis_row_is_named_with_the_file(nudge: TestClient,
                                                       nudge_root: Path) -> None:
    frame = roster(nudge_root, 6)
    frame["questionnaire_type"] = "心配性"
    lines = frame.to_csv(index=False).splitlines()
    raw = ("\n".join(lines[:4]) + "\n").encode() + (lines[4] + "\n").encode("cp932") + (
        "\n".join(lines[5:]) + "\n").encode()
    r = outreach(nudge, raw, "naha.csv")
    assert r.status_code == 422
    error = r.json()["error"]
    assert "'naha.csv'" in error and "5行目" in error and "row 5" in error


def test_an_error_names_the_excel_row_after_blank_rows(nudge: TestClient,
                                                       nudge_root: Path) -> None:
    frame = roster(nudge_root, 6)
    frame.loc[4, "bmi"] = "abc"
    lines = frame.to_csv(index=False).splitlines()
    raw = "\n".join([*lines[:3], ",,,", "", *lines[3:]]).encode("utf-16")
    r = outreach(nudge, raw)
    assert r.status_code == 422 and "row 8" in r.json()["error"], r.text


def test_raw_xlsx_and_tsv_bodies_are_accepted(nudge: TestClient, nudge_root: Path) -> None:
    frame = roster(nudge_root, 10)
    buf = io.BytesIO()
    frame.to_excel(buf, index=False)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    for body, ctype in ((buf.getvalue(), xlsx),
                        (frame.to_csv(index=False, sep="\t").encode("utf-16"),
                         "text/tab-separated-values")):
        r = nudge.post("/v1/checkup_nudge/outreach", content=body,
                       params={"allow_new_districts": "true"},
                       headers={**NAHA, "content-type": ctype})
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["residents"] == 10


def batch(client: TestClient, raw: bytes, name: str = "persons.csv"):
    return client.post("/v1/care_plan/batch", headers=TOYOHASHI, params={"format": "csv"},
                       files={"file": (name, raw, "text/csv")})


@pytest.mark.parametrize("case", ["c1_roman_numerals.csv", "c2_fullwidth_care_level.csv"])
def test_official_notation_in_care_batches(care: TestClient, case: str) -> None:
    r = batch(care, (FIXTURES / case).read_bytes())
    assert r.status_code == 200, r.text
    table = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig")
    first = table.drop_duplicates("利用者ID")
    assert first["要介護度"].tolist()[:4] == ["要支援1", "要介護2", "要支援2", "要介護3"]


def test_care_level_error_shows_the_allowed_values(care: TestClient) -> None:
    raw = (FIXTURES / "c2_fullwidth_care_level.csv").read_bytes().decode("cp932")
    raw = raw.replace("要介護２", "要介護６", 1)
    r = batch(care, raw.encode("cp932"))
    assert r.status_code == 422
    assert "'要介護6' は選択肢にありません（要支援1／" in r.json()["error"]
    assert "line 3" in r.json()["error"]


def test_long_layout_and_excel_mangled_headers(care: TestClient) -> None:
    rows = [("S-1", "年齢", "84"), ("S-1", "性別", "女"), ("S-1", "独居", "有"),
            ("S-1", "要介護状態区分コード", "21"), ("S-1", "障害高齢者の日常生活自立度", "A1"),
            ("S-1", "認知症高齢者の日常生活自立度", "Ⅰ")]
    rows += [("S-1", item.code, "1") for item in ITEMS]
    long = pd.DataFrame(rows, columns=["申請書管理番号", "調査項目", "内容"])
    r = batch(care, long.to_csv(index=False).encode("cp932"))
    assert r.status_code == 200, r.text
    assert set(pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig")["利用者ID"]) == {"S-1"}
    missing = long[long["調査項目"] != "2-2"]
    r = batch(care, missing.to_csv(index=False).encode("cp932"), "long.csv")
    assert r.status_code == 422
    assert "2-2「移動」 行 2: 調査項目がありません（S-1）" in r.json()["error"]
    assert "'long.csv'" in r.json()["error"]
    wide = long.set_index("調査項目")["内容"].to_frame().T
    wide.insert(0, "利用者ID", "S-2")
    wide = wide.rename(columns={"1-7": "1月7日", "1-1-1": "2001/1/1", "2-12": "2月12日"})
    r = batch(care, wide.to_csv(index=False).encode("cp932"))
    assert r.status_code == 200, r.text


def test_claims_with_trailing_empty_rows_and_wareki_months(client: TestClient,
                                                           trained_root: Path) -> None:
    text = (trained_root / "data/claim_screening/402303.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    header = lines[0].split(",")
    col = header.index("service_month")
    cells = lines[1].split(",")
    year, month = int(cells[col][:4]), int(cells[col][5:7])
    cells[col] = f"令和{year - 2018}年{month}月"
    width = len(header) - 1
    body = "\r\n".join([lines[0], ",".join(cells), *lines[2:], "," * width, "," * width])
    r = client.post("/v1/claim_screening/queue", headers=ITOSHIMA,
                    files={"file": ("claims.csv", body.encode("cp932"), "text/csv")})
    assert r.status_code == 200, r.text

