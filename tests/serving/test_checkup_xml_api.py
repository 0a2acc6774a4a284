"""特定健診 XML sent with a roster to /outreach: merged, 422 naming the file, 413 for bombs."""

from __future__ import annotations

import io
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.checkup_nudge import checkup_xml
from serving.runtime import Runtime
from tests.serving.test_intake_api import NAHA, bound
from tests.unit.test_checkup_xml import FIXTURES, ZIP

URL = "/v1/checkup_nudge/outreach"


@pytest.fixture
def nudge(nudge_root: Path) -> Iterator[TestClient]:
    with bound(Runtime.load(nudge_root)) as c:
        yield c


def roster(root: Path) -> bytes:
    """Ten residents of the trained roster; the first three carry the fixture's cards."""
    frame = pd.read_csv(root / "data/checkup_nudge/472018.csv", dtype=str,
                        keep_default_na=False).head(10)
    frame["保険者番号"] = "470999"
    frame["記号"] = "那覇12"
    frame["番号"] = [f"{1001 + i}" for i in range(10)]
    for col in ("bmi", "sbp", "hba1c", "ldl"):
        frame.loc[:2, col] = ""
    return frame.to_csv(index=False).encode()


def post(client: TestClient, files: list[tuple[str, bytes]]):
    return client.post(URL, headers=NAHA, params={"allow_new_districts": "true"},
                       files=[("file", (n, b, "application/octet-stream")) for n, b in files])


def test_a_zip_of_xml_with_the_roster_fills_the_results(nudge: TestClient,
                                                        nudge_root: Path) -> None:
    r = post(nudge, [("kenshin.zip", ZIP.read_bytes()), ("roster.csv", roster(nudge_root))])
    assert r.status_code == 200, r.text
    report = r.json()["summary"]["checkup_xml"]
    assert report["matched"] == 3 and report["filled"]["hba1c"] == 3
    assert report["unused_codes"] == 2 and report["unknown_codes"] == 0
    assert report["persons"] == 3
    assert r.json()["summary"]["residents"] == 10
    # neither the card numbers nor the key built from them are stored by the service
    with sqlite3.connect(nudge_root / "state" / "kyodo.db") as conn:
        dump = "\n".join(conn.iterdump())
    # 470999 as a number of its own: the store's hex digests can hold those digits by chance
    assert "那覇12" not in dump and not re.search(r"(?<![0-9a-f])470999(?![0-9a-f])", dump)
    assert checkup_xml.checkup_key("472018", "470999", "那覇12", "1001") not in dump


def test_single_xml_files_are_accepted_too(nudge: TestClient, nudge_root: Path) -> None:
    files = [(p.name, p.read_bytes()) for p in sorted(FIXTURES.glob("*.xml"))]
    r = post(nudge, [("roster.csv", roster(nudge_root)), *files])
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["checkup_xml"]["matched"] == 3


def test_xml_without_a_roster_is_a_422(nudge: TestClient) -> None:
    r = post(nudge, [("kenshin.zip", ZIP.read_bytes())])
    assert r.status_code == 422 and "roster" in r.json()["error"]


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_malformed_xml_is_a_422_naming_the_member(nudge: TestClient, nudge_root: Path) -> None:
    good = (FIXTURES / "h0000047099920260001.xml").read_bytes()
    raw = zipped({"DATA/ok.xml": good, "DATA/h0000047099920260099.xml": good[:500]})
    r = post(nudge, [("kenshin.zip", raw), ("roster.csv", roster(nudge_root))])
    assert r.status_code == 422
    assert "kenshin.zip/DATA/h0000047099920260099.xml" in r.json()["error"]


def test_zip_bomb_and_too_many_members_are_413(nudge: TestClient, nudge_root: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = zipped({"DATA/big.xml": b"<a>" + b" " * 30_000_000 + b"</a>"})
    r = post(nudge, [("bomb.zip", bomb), ("roster.csv", roster(nudge_root))])
    assert r.status_code == 413 and "bomb.zip/DATA/big.xml" in r.json()["error"]
    monkeypatch.setattr(checkup_xml, "MAX_MEMBERS", 50)
    many = zipped({f"DATA/{i}.xml": b"<a/>" for i in range(60)})
    r = post(nudge, [("many.zip", many), ("roster.csv", roster(nudge_root))])
    assert r.status_code == 413 and "60" in r.json()["error"]


def test_too_many_files_is_a_413_that_says_zip(nudge: TestClient, nudge_root: Path) -> None:
    """One XML per person soon passes the form's file limit: 413 in Japanese, naming ZIP."""
    from serving.uploads import MAX_FILES

    good = (FIXTURES / "h0000047099920260001.xml").read_bytes()
    files = [(f"h{i:04d}.xml", good) for i in range(MAX_FILES)]
    r = post(nudge, [("roster.csv", roster(nudge_root)), *files])
    assert r.status_code == 413, r.text
    assert f"{MAX_FILES} 個まで" in r.json()["error"] and "ZIP" in r.json()["error"]


def test_several_zips_share_one_limit(nudge: TestClient, nudge_root: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A year split into ZIPs: each under the member limit, together over it: 413 in Japanese
    naming the ZIP where the count passed the limit; one ZIP of them alone goes through."""
    monkeypatch.setattr(checkup_xml, "MAX_MEMBERS", 40)
    good = (FIXTURES / "h0000047099920260001.xml").read_bytes()
    part = zipped({f"DATA/h{i:04d}.xml": good for i in range(25)})
    r = post(nudge, [("roster.csv", roster(nudge_root)), ("part1.zip", part)])
    assert r.status_code == 200, r.text
    r = post(nudge, [("roster.csv", roster(nudge_root)), ("part1.zip", part),
                     ("part2.zip", part)])
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert "part2.zip" in error and "上限 40 個" in error and "50" in error
