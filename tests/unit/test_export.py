"""The ONNX parity gate and graph combination."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import make_classification

from training.export import ParityError, check_parity, combine_graphs


def test_parity_passes_within_tolerance() -> None:
    a = np.linspace(0, 1, 1000)
    report = check_parity({"p": a}, {"p": a + 1e-6}, 1e-4)
    assert report.passed and report.max_abs_diff["p"] == pytest.approx(1e-6, rel=1e-3)


def test_parity_fails_and_says_by_how_much() -> None:
    a = np.zeros(1000)
    b = a.copy()
    b[:50] = 0.25
    with pytest.raises(ParityError, match=r"'p' differs by more than 0.0001 on 5.00% .*0.25"):
        check_parity({"p": a}, {"p": b}, 1e-4)


def test_combined_graph_matches_each_booster() -> None:
    import lightgbm as lgb
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    X, y = make_classification(400, 6, random_state=0)
    X = X.astype(np.float32)
    clf = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y)
    reg = lgb.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, X[:, 0] * 2)
    types = [("input", FloatTensorType([None, 6]))]
    graphs = {"classifier": convert_lightgbm(clf, initial_types=types, target_opset=15,
                                             zipmap=False).SerializeToString(),
              "stake": convert_lightgbm(reg, initial_types=types,
                                        target_opset=15).SerializeToString()}
    sess = ort.InferenceSession(combine_graphs(graphs).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    probs, pred = sess.run(["classifier_probabilities", "stake_variable"], {"input": X})
    assert np.abs(probs[:, 1] - clf.predict_proba(X)[:, 1]).max() < 1e-5
    assert np.abs(pred.ravel() - reg.predict(X)).max() < 1e-4
