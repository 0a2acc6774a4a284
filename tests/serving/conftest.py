"""A FastAPI client on the real service app with a runtime from the trained workspace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.runtime import Runtime

ITOSHIMA = {"Authorization": "Bearer kyodo-demo-402303"}
IYO = {"Authorization": "Bearer kyodo-demo-382108"}


@contextmanager
def bound_client(rt: Runtime) -> Iterator[TestClient]:
    """A client on the app bound to `rt`; the previous binding is restored afterwards (the
    session's `client` fixture binds the app once and relies on that)."""
    from serving.api import app
    from serving.deps import get_runtime

    previous = app.dependency_overrides.get(get_runtime)
    app.dependency_overrides[get_runtime] = lambda: rt
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            yield c
    finally:
        if previous is None:
            app.dependency_overrides.pop(get_runtime, None)
        else:
            app.dependency_overrides[get_runtime] = previous


@pytest.fixture(scope="session")
def runtime(trained_root: Path) -> Runtime:
    """The service class's own runtime, built as the BentoML worker builds it."""
    import os

    os.environ["KYODO_ROOT"] = str(trained_root)
    from serving.service import Kyodo

    service = Kyodo.inner()  # the user class: __init__ loads configs, store and champions
    return service.runtime


@pytest.fixture(scope="session")
def client(runtime: Runtime) -> Iterator[TestClient]:
    """HTTP client bound to the app with the service's runtime."""
    from serving.api import app
    from serving.deps import get_runtime

    app.dependency_overrides[get_runtime] = lambda: runtime
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
