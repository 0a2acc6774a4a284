"""ONNX export: combine a task's graphs into one model and gate it on native parity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import compose, helper


class ParityError(RuntimeError):
    """ONNX outputs differ from the native model's by more than the tolerance."""


def combine_graphs(graphs: dict[str, bytes]) -> onnx.ModelProto:
    """One ONNX model from several graphs sharing the input 'input'; outputs get '<name>_'."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    outputs: list[onnx.ValueInfoProto] = []
    opsets: dict[str, int] = {}
    first_input: onnx.ValueInfoProto | None = None
    for name, raw in graphs.items():
        model = compose.add_prefix(onnx.load_from_string(raw), prefix=f"{name}_")
        g = model.graph
        first_input = first_input or helper.make_tensor_value_info(
            "input", g.input[0].type.tensor_type.elem_type,
            [d.dim_param or d.dim_value or None for d in g.input[0].type.tensor_type.shape.dim])
        nodes.append(helper.make_node("Identity", ["input"], [g.input[0].name],
                                      name=f"{name}_feed"))
        nodes.extend(g.node)
        inits.extend(g.initializer)
        # converters declare fixed output shapes that batch inputs violate; leave them open
        outputs.extend(helper.make_tensor_value_info(
            o.name, o.type.tensor_type.elem_type, [None] * len(o.type.tensor_type.shape.dim))
            for o in g.output)
        for op in model.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    if first_input is None:
        raise ValueError("no ONNX graphs to combine")
    graph = helper.make_graph(nodes, "kyodo", [first_input], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in opsets.items()])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model


@dataclass(frozen=True)
class ParityReport:
    """Per output: largest |native - ONNX| and the share of rows beyond the tolerance.

    Tree thresholds are doubles natively and floats in ONNX, so a feature value sitting exactly
    on a threshold can take the other branch; a few such rows are allowed, never a systematic
    difference.
    """

    rows: int
    tolerance: float
    max_mismatch_share: float
    max_abs_diff: dict[str, float]
    mismatch_share: dict[str, float]

    @property
    def passed(self) -> bool:
        """Every output within tolerance on all but max_mismatch_share of the rows."""
        return all(v <= self.max_mismatch_share for v in self.mismatch_share.values())

    def to_dict(self) -> dict:
        """JSON form for MLflow and reports."""
        return {"rows": self.rows, "tolerance": self.tolerance, "passed": self.passed,
                "max_mismatch_share": self.max_mismatch_share,
                "max_abs_diff": self.max_abs_diff, "mismatch_share": self.mismatch_share}


def check_parity(native: dict[str, np.ndarray], exported: dict[str, np.ndarray],
                 tolerance: float, max_mismatch_share: float = 0.001) -> ParityReport:
    """Compare native and ONNX outputs row by row; raise ParityError saying by how much."""
    diffs = {k: np.abs(np.asarray(native[k], float).reshape(-1)
                       - np.asarray(exported[k], float).reshape(-1)) for k in native}
    rows = len(next(iter(diffs.values())))
    report = ParityReport(
        rows, tolerance, max_mismatch_share,
        {k: float(d.max(initial=0.0)) for k, d in diffs.items()},
        {k: float((d > tolerance).mean()) if rows else 0.0 for k, d in diffs.items()})
    if not report.passed:
        worst = max(report.mismatch_share, key=lambda k: report.mismatch_share[k])
        raise ParityError(
            f"ONNX parity failed on {rows} held-out rows: output '{worst}' differs by more than "
            f"{tolerance:g} on {report.mismatch_share[worst]:.2%} of rows (allowed "
            f"{max_mismatch_share:.2%}); largest difference {report.max_abs_diff[worst]:.3g}")
    return report
