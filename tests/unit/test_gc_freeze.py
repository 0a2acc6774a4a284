"""serving/service.py freeze_heap: each worker moves its loaded runtime out of the collector's
reach (a full collection walked it, ~130 ms with the event loop stopped), unless switched off."""

from __future__ import annotations

import gc

import pytest


def test_freeze_heap_freezes_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.service import freeze_heap

    gc.unfreeze()
    try:
        monkeypatch.setenv("KYODO_GC_FREEZE", "0")
        freeze_heap()
        assert gc.get_freeze_count() == 0
        monkeypatch.delenv("KYODO_GC_FREEZE")
        freeze_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
