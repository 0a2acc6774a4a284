"""Hostile input over real HTTP (`bentoml serve`): every crash of issue 17 is a 4xx in the
product's shape, bodies are refused while they stream in, a bad champions.json entry or a
corrupt ONNX graph disables only its task and /readyz says so, /metrics needs the operator."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from models.configs import task_labels
from serving.claim_screening import EXAMPLE_CLAIM
from serving.launcher import bentoml_serve
from tests.serving.conftest import ITOSHIMA

ADMIN = {"Authorization": "Bearer kyodo-demo-admin"}
NAHA = {"Authorization": "Bearer kyodo-demo-472018"}  # checkup_nudge
TOYOHASHI = {"Authorization": "Bearer kyodo-demo-232017"}  # care_plan
CHIBA = {"Authorization": "Bearer kyodo-demo-121002"}  # road_damage
BIG = 9223372036854775808  # 2**63: one past SQLite's and numpy's int64


def _corrupt_package(good_tag: str) -> str:
    """A copy of the claim champion's package with a rank.onnx that is not ONNX."""
    import bentoml

    src = Path(bentoml.models.get(good_tag).path)
    with bentoml.models.create("claim_screening:corrupt") as ref:
        for f in src.iterdir():
            if f.is_file() and f.name not in ("model.yaml",):
                shutil.copy(f, Path(ref.path) / f.name)
        (Path(ref.path) / "rank.onnx").write_bytes(b"not an onnx graph")
        return str(ref.tag)


@pytest.fixture(scope="module")
def hard_root(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained workspace's configs and champion with small limits, plus a champions.json
    entry without a tag (road_damage) and one whose package has a corrupt graph (care_plan)."""
    root = tmp_path_factory.mktemp("hard")
    shutil.copytree(trained_root / "configs", root / "configs")
    (root / "state").mkdir()
    platform = root / "configs" / "platform.yaml"
    cfg = yaml.safe_load(platform.read_text(encoding="utf-8"))
    cfg["serving"].update(max_json_mb=1, max_upload_mb=2, max_csv_columns=100, body_timeout_s=1)
    cfg["tasks"] = {t: task_labels()[t] for t in ("claim_screening", "road_damage", "care_plan")}
    platform.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    pointer = json.loads((trained_root / "state" / "champions.json").read_text())
    pointer["road_damage"] = {"version": "3"}
    pointer["care_plan"] = {"tag": _corrupt_package(pointer["claim_screening"]["tag"])}
    (root / "state" / "champions.json").write_text(json.dumps(pointer))
    return root


@pytest.fixture(scope="module")
def server(hard_root: Path) -> Iterator[str]:
    """`bentoml serve` on that workspace; up (and /readyz 503) despite the bad entries."""
    log = hard_root / "bentoml.log"
    with bentoml_serve({"KYODO_ROOT": str(hard_root)}, log, degraded_ok=True) as url:
        yield url


def test_readyz_names_the_disabled_tasks_and_the_rest_serves(server: str) -> None:
    r = httpx.get(f"{server}/readyz")
    assert r.status_code == 503, r.text
    state = r.json()
    assert state["tasks"]["claim_screening"]["state"] == "ready"
    assert state["tasks"]["road_damage"]["state"] == "missing"
    assert "road_damage.tag" in state["tasks"]["road_damage"]["reason"]
    assert "rank.onnx" in state["tasks"]["care_plan"]["reason"]
    assert state["degraded"] == ["care_plan", "road_damage"]
    r = httpx.post(f"{server}/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                   headers=ITOSHIMA, timeout=30)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path", "headers", "body", "field"), [
    ("POST", "/v1/claim_screening/feedback", ITOSHIMA,
     {"items": [{"claim_id": "C1", "error_confirmed": True, "recovered_points": BIG}]},
     "items.0.recovered_points"),
    ("POST", "/v1/claim_screening/score", ITOSHIMA,
     {"claims": [{**EXAMPLE_CLAIM, "lines": [{"line_kind": "drug", "code": "622421201",
                                              "days": 18446744073709551616}]}]},
     "claims.0.lines.0.days"),
    ("POST", "/v1/checkup_nudge/score", NAHA, {"residents": [{"resident_id": "R\ud800"}]},
     "residents"),
    ("POST", "/v1/care_plan/suggest", TOYOHASHI, {"person": {"person_id": "P\ud800"}},
     "person"),
    ("POST", "/v1/claim_screening/score", ITOSHIMA,
     {"claims": [{**EXAMPLE_CLAIM, "claim_id": "C\udfff"}]}, "claims.0.claim_id"),
    ("POST", "/v1/claim_screening/score", ITOSHIMA, {"claims": [1] * 20_000}, "claims"),
    ("GET", f"/v1/road_damage/batches/abc/photos/{BIG}/overlay.png", CHIBA, None, "index"),
])
def test_out_of_domain_values_are_a_422_naming_the_field(server: str, method: str, path: str,
                                                         headers: dict, body: object,
                                                         field: str) -> None:
    # json.dumps escapes a lone surrogate as \ud800, as a hostile client would send it
    content = json.dumps(body) if body is not None else None
    r = httpx.request(method, f"{server}{path}", content=content, timeout=30,
                      headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]
    assert httpx.get(f"{server}/healthz").status_code == 200  # and the connection pool too


def _raw_chunked(url: str, path: str, headers: dict[str, str], chunks: int,
                 chunk: bytes) -> tuple[int, dict]:
    """POST a chunked body (no Content-Length) over a plain socket; (status, JSON answer)."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  f"{head}\r\n".encode())
        try:
            for _ in range(chunks):
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the end: what we want
        data = b""
        while not _complete(data) and (part := s.recv(65536)):
            data += part
    head_raw, _, payload = data.partition(b"\r\n\r\n")
    return int(head_raw.split()[1]), json.loads(payload)


def _complete(data: bytes) -> bool:
    """Whether a response with a Content-Length header has arrived whole."""
    head, sep, body = data.partition(b"\r\n\r\n")
    length = [int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
              if line.startswith(b"content-length:")]
    return bool(sep) and bool(length) and len(body) >= length[0]


def test_a_chunked_body_over_the_limit_is_a_413_while_streaming(server: str) -> None:
    # max_json_mb is 1 in this workspace: 1.2 MB of claims in 100 kB chunks, no Content-Length
    status, answer = _raw_chunked(server, "/v1/claim_screening/score",
                                  {**ITOSHIMA, "Content-Type": "application/json"}, 12,
                                  b" " * 100_000)
    assert status == 413 and "1 MB" in answer["error"], answer
    status, answer = _raw_chunked(server, "/v1/claim_screening/queue",
                                  {**ITOSHIMA, "Content-Type": "text/csv"}, 22, b"1," * 50_000)
    assert status == 413 and "max_upload_mb" in answer["error"], answer


def test_a_declared_length_over_the_limit_is_refused_before_reading(server: str) -> None:
    r = httpx.post(f"{server}/v1/claim_screening/queue", headers={
        **ITOSHIMA, "Content-Type": "text/csv"}, content=b"x" * 2_100_000, timeout=30)
    assert r.status_code == 413 and "2 MB" in r.json()["error"]


def test_a_wide_csv_header_is_refused_before_pandas(server: str) -> None:
    header = ",".join(f"c{i}" for i in range(100_000)).encode() + b"\n1\n"
    r = httpx.post(f"{server}/v1/claim_screening/queue", content=header, timeout=30,
                   headers={**ITOSHIMA, "Content-Type": "text/csv"})
    assert r.status_code == 413, r.text
    assert "100,000 columns" in r.json()["error"]


def test_framework_errors_have_the_product_shape(server: str) -> None:
    r = httpx.get(f"{server}/v1/no/such/path", headers=ITOSHIMA)
    assert r.status_code == 404 and "error" in r.json() and "detail" not in r.json()
    r = httpx.get(f"{server}/v1/claim_screening/queues/a%0Ab", headers=ITOSHIMA)
    assert r.status_code == 404 and "error" in r.json()  # BentoML's own 404, reshaped
    r = httpx.put(f"{server}/v1/claim_screening/score", headers=ITOSHIMA)
    assert r.status_code == 405 and "PUT not allowed" in r.json()["error"]
    csv = b"claim_id\n" + b"C1\n" * 600_000  # a CSV sent as a form text field over 1 MB
    r = httpx.post(f"{server}/v1/claim_screening/queue", headers=ITOSHIMA, timeout=30,
                   files={"file": (None, csv)})  # no filename: a text field
    assert r.status_code == 400 and r.json()["error"].startswith("file:"), r.text


def test_metrics_need_the_operator_and_label_routes_not_paths(server: str,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              ) -> None:
    httpx.get(f"{server}/v1/road_damage/batches/secret-batch-123", headers=CHIBA)
    for i in range(20):
        httpx.get(f"{server}/unknown-{i}")
    assert httpx.get(f"{server}/metrics").status_code == 401
    r = httpx.get(f"{server}/metrics", headers=ITOSHIMA)
    assert r.status_code == 403 and "error" in r.json()
    text = httpx.get(f"{server}/metrics", headers=ADMIN).text
    assert 'route="/v1/road_damage/batches/{batch_id}"' in text
    assert "secret-batch-123" not in text and "unknown-1" not in text
    assert 'route="unmatched"' in text
    assert 'endpoint="/v1' not in text  # BentoML's raw-path series are off


def test_a_pointer_of_the_wrong_shape_loads_nothing_and_says_why(tmp_path: Path) -> None:
    from serving.lifecycle import ChampionWatcher

    pointer = tmp_path / "champions.json"
    pointer.write_text("[1, 2, 3]")
    watcher = ChampionWatcher(pointer, 1, lambda task, tag: pytest.fail("nothing to load"))
    models: dict = {}
    watcher.sync(models)  # no exception: the service starts
    assert models == {} and "expected an object" in watcher.problems["*"]


def test_feedback_commits_are_fsynced_and_the_rest_stays_normal(tmp_path: Path) -> None:
    from serving.store import Store

    store = Store(tmp_path / "kyodo.db")
    seen: list[str] = []
    store.db.connection().set_trace_callback(seen.append)
    store.save_feedback("402303", "claim_screening", [{"claim_id": "C1",
                                                       "error_confirmed": True}])
    full = seen.index("PRAGMA synchronous=FULL")
    assert any(s.startswith("INSERT INTO feedback") for s in seen[full:])
    assert seen[-1] == "PRAGMA synchronous=NORMAL" and "COMMIT" in seen[full:]
    assert store.db.connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_stalled_body_is_a_408(server: str) -> None:
    host, port = urlsplit(server).hostname, urlsplit(server).port
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"POST /v1/claim_screening/score HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer kyodo-demo-402303\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"cla")
        answer = b""  # body_timeout_s is 1 here; the client never sends the rest
        while b"stalled" not in answer and (part := s.recv(65536)):
            answer += part
    assert answer.split()[1] == b"408" and b"stalled" in answer
