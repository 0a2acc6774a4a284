"""レセ電 (UKE) import speed: 100,000 医科 claims parsed from UKE files (target <= 20 s).

Run with `python -m bench.uke_import` (also part of `make bench`). Synthetic claims (drawn from
the committed masters) are written as UKE once (one file per provider); the files are repeated
under other 医療機関コード until they hold at least 100,000 claims, then read as the service
reads an upload. Writes reports/bench/uke_import.json.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import Recorder, bench_main, peak_rss_mb, say
from models.claim_screening import codes as C
from models.claim_screening import masters as M
from models.claim_screening import uke
from models.claim_screening.generate import GenerateSpec, generate

TARGET_CLAIMS = 100_000


def _files(total_claims: int) -> tuple[list[tuple[str, bytes]], M.Masters]:
    """UKE files holding >= TARGET_CLAIMS claims, written with the 傷病名コード the generator
    draws from the committed 傷病名マスター, and the masters that map them back to ICD-10."""
    lines, _ = generate([("402303", 100_000)], GenerateSpec(total_claims=total_claims), 7
                        )["402303"]
    book = M.in_use()
    export = uke.write_uke(lines, C.DISEASE_CODES)
    per_copy = len(export.claim_ids)
    files: list[tuple[str, bytes]] = []
    copy = 0
    while len(files) // len(export.files) * per_copy < TARGET_CLAIMS:
        copy += 1
        for name, raw in export.files.items():
            code = f"{copy:02d}".encode()  # another 医療機関コード: IR,2,40,1,<7 digits>
            files.append((f"{copy}-{name}", raw[:11] + code + raw[13:]))
    return files, book


def run(rec: Recorder, _: Path) -> None:
    """Measure reading (and validating) >= 100,000 claims from UKE bytes in memory."""
    say("generating synthetic claims and writing them as UKE")
    files, book = _files(30_000)
    size = sum(len(raw) for _, raw in files)
    rec.add("UKE bytes", size / 1e6, "MB", note=f"{len(files)} files")
    t0 = time.perf_counter()
    result = uke.read_many(files, "402303", book)
    parse = time.perf_counter() - t0
    rec.add("claims read", result.claims, "claims")
    rec.add("claim lines read", len(result.lines), "lines")
    rec.add("parse 100k claims from UKE", parse * TARGET_CLAIMS / result.claims, "s", "<= 20 s",
            note="read_uke per file, scaled to exactly 100,000 claims")
    t0 = time.perf_counter()
    uke.read_many(files, "402303", book, validate=True)
    rec.add("parse + schema validation, 100k claims",
            (time.perf_counter() - t0) * TARGET_CLAIMS / result.claims, "s",
            note="what /queue and /score do with an upload")
    rec.add("peak RSS", peak_rss_mb(), "MB")


if __name__ == "__main__":
    bench_main("uke_import", run)
