"""レセ電 (UKE) import speed: 100,000 claims parsed from UKE files (target <= 20 s), memory.

Run with `python -m bench.uke_import` (also part of `make bench`). Synthetic claims (drawn from
the committed masters: 医科入院外, 医科入院, 歯科 and 調剤, the last written as 調剤 files that
start with YK) are written as UKE once (one file per provider); the files are repeated under
other 医療機関コード until they hold at least 100,000 claims, then read as the service reads an
upload, twice:

- in this process (`uke.read_many`, with and without the schema validation /queue and /score
  apply), the claim-type mix of what was read and the records skipped;
- in a fresh child process that reads the files from disk and parses and validates them, so its
  peak RSS (VmHWM) is the import's memory without the generator's.

Writes reports/bench/uke_import.json.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from bench import Recorder, bench_main, peak_rss_mb, run_child, say
from bench.claims_csv import vm_hwm_mib
from models.claim_screening import codes as C
from models.claim_screening import masters as M
from models.claim_screening import uke
from models.claim_screening.generate import GenerateSpec, generate

TARGET_CLAIMS = 100_000
TENANT = "402303"


def _files(total_claims: int) -> tuple[list[tuple[str, bytes]], M.Masters]:
    """UKE files holding >= TARGET_CLAIMS claims, written with the 傷病名コード the generator
    draws from the committed 傷病名マスター, and the masters that map them back to ICD-10."""
    lines, _ = generate([(TENANT, 100_000)], GenerateSpec(total_claims=total_claims), 7)[TENANT]
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


def child(folder: Path) -> dict:
    """Read every file of `folder` and import them as an upload is imported (validated).
    Returns seconds, claims and this process's peak RSS (MiB) before and after."""
    start, rss_start = resource.getrusage(resource.RUSAGE_SELF), vm_hwm_mib()
    book = M.in_use()
    t0 = time.perf_counter()
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    result = uke.read_many(files, TENANT, book, validate=True)
    seconds = time.perf_counter() - t0
    end = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "claims": result.claims, "lines": len(result.lines),
            "cpu_s": end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime,
            "rss_start_mib": rss_start, "peak_rss_mib": vm_hwm_mib()}


def run(rec: Recorder, tmp: Path) -> None:
    """Measure reading (and validating) >= 100,000 claims from UKE bytes."""
    rec.add("host load average (1 min) at start", os.getloadavg()[0], "procs",
            note=f"{os.cpu_count()} CPUs shared with other work; every timing here moves with it")
    say("generating synthetic claims and writing them as UKE")
    files, book = _files(30_000)
    size = sum(len(raw) for _, raw in files)
    dispensing = sum(raw.startswith(b"YK,") for _, raw in files)
    rec.add("UKE bytes", size / 1e6, "MB",
            note=f"{len(files)} files, {dispensing} of them 調剤 (YK) files")
    t0 = time.perf_counter()
    result = uke.read_many(files, TENANT, book)
    parse = time.perf_counter() - t0
    scale = TARGET_CLAIMS / result.claims
    rec.add("claims read", result.claims, "claims")
    mix = result.lines.drop_duplicates("claim_id")["claim_type"].value_counts()
    for claim_type, n in mix.items():
        rec.add(f"claims read: {claim_type}", int(n), "claims")
    rec.add("claim lines read", len(result.lines), "lines")
    rec.add("records skipped", sum(result.skipped_records.values()), "records",
            note=json.dumps(dict(result.skipped_records), ensure_ascii=False))
    rec.add("parse 100k claims from UKE", parse * scale, "s", "<= 20 s",
            note="read_uke per file, in this process, scaled to exactly 100,000 claims")
    t0 = time.perf_counter()
    uke.read_many(files, TENANT, book, validate=True)
    rec.add("parse + schema validation, 100k claims", (time.perf_counter() - t0) * scale, "s",
            note="what /queue and /score do with an upload")
    rec.add("bench process peak RSS", peak_rss_mb(), "MB",
            note="includes generating the claims and holding the files")
    folder = tmp / "uke"
    folder.mkdir()
    for name, raw in files:
        (folder / name).write_bytes(raw)
    del files, result
    say("importing the files in a fresh child process (memory of the import alone)")
    got = run_child("bench.uke_import", folder)
    scale = TARGET_CLAIMS / got["claims"]
    rec.add("child: read files + parse + validate, 100k claims", got["seconds"] * scale, "s",
            "<= 20 s", note=f"{got['claims']:,} claims from disk, scaled to 100,000")
    rec.add("child: CPU time, 100k claims", got["cpu_s"] * scale, "s")
    rec.add("child peak RSS", got["peak_rss_mib"], "MiB",
            note=f"VmHWM of the importing process ({got['claims']:,} claims, "
                 f"{got['lines']:,} lines); {got['rss_start_mib']:.0f} MiB after imports")
    rec.add("host load average (1 min) at end", os.getloadavg()[0], "procs")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(Path(sys.argv[2]))))
    else:
        bench_main("uke_import", run)
