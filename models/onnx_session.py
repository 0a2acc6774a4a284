"""onnxruntime sessions as kyodo runs them: CPU, few threads, no spinning on shared cores."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort


def open_session(path: str | Path) -> ort.InferenceSession:
    """A CPU session for an ONNX file; KYODO_ORT_THREADS sets intra-op threads (default 1)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("KYODO_ORT_THREADS", "1"))
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # shared CPUs
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
