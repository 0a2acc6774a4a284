"""Request dependencies: the runtime, tenant authentication, the champion model, metering.

The dependencies are `async def` on purpose: they do not block, and FastAPI runs a plain `def`
dependency in its thread pool, a thread hop each (a one-claim score made five hops, now one:
its scoring; on a busy host each hop waits for a core)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Depends, HTTPException, Request

from models.configs import Tenant
from serving.drift import collecting
from serving.guard import bearer_token
from serving.metering import request_record
from serving.metrics import observe
from serving.runtime import Runtime

log = logging.getLogger("kyodo")


NOT_LOADED = "service runtime not initialised"


async def get_runtime(request: Request) -> Runtime:
    """The serving runtime the BentoML service installed (`install`); 503 before that.

    Read from the app's state, not through app.dependency_overrides: while any override is
    set, FastAPI rebuilds every dependency of every route from its signature on each request
    (~0.3 ms of a one-claim score). Tests still bind their own runtime with an override."""
    rt = getattr(request.app.state, RUNTIME, None)
    if rt is None:
        raise HTTPException(503, NOT_LOADED)
    return rt


RUNTIME = "kyodo_runtime"  # the app.state attribute holding the installed runtime


def install(app: Any, runtime: Runtime) -> None:
    """Serve `runtime` from `app` (the service does this once per worker, after loading)."""
    setattr(app.state, RUNTIME, runtime)


def runtime_of(app: Any) -> Runtime | None:
    """The runtime the app serves (a test's get_runtime override first, else the installed
    one; None while loading), for code outside FastAPI's dependency injection (middleware,
    /metrics)."""
    factory = app.dependency_overrides.get(get_runtime)
    if factory is not None:
        return factory()
    return getattr(app.state, RUNTIME, None)


def bearer(request: Request) -> str:
    """The API key from `Authorization: Bearer <key>`, or 401."""
    key = bearer_token(request.headers.get("authorization", ""))
    if not key:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    return key


async def api_key(request: Request) -> str:
    """Dependency: `bearer` on the event loop."""
    return bearer(request)


async def current_tenant(key: str = Depends(api_key),
                         rt: Runtime = Depends(get_runtime)) -> Tenant:
    """The tenant owning the key; 403 for the operator's admin key (a known key, but no
    municipality's: the route answers for one municipality), else 401."""
    tenant = rt.tenant_for(key)
    if tenant is None:
        if rt.is_admin(key):
            raise HTTPException(403, "the operator's admin key is not a municipality's key: this "
                                     "route answers for one municipality; use its key, or the "
                                     "/v1/admin/... routes")
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return tenant


def subscribed(task: str) -> Callable[..., Awaitable[Tenant]]:
    """Dependency: the tenant, which must subscribe to `task` (else 403)."""

    async def check(tenant: Tenant = Depends(current_tenant)) -> Tenant:
        return subscriber(tenant, task)

    return check


def subscriber(tenant: Tenant, task: str) -> Tenant:
    """The tenant if it subscribes to `task`, else 403."""
    if task not in tenant.tasks:
        raise HTTPException(403, f"{tenant.name} ({tenant.code}) does not subscribe to {task}")
    return tenant


async def authorized(request: Request, rt: Runtime, task: str) -> Tenant:
    """The subscribed tenant of the request's key (401, 403 as the routes' dependencies say),
    for the single-row APIs outside FastAPI (serving/batching.py)."""
    return subscriber(await current_tenant(bearer(request), rt), task)


def champion(rt: Runtime, task: str) -> Any:
    """The loaded champion of `task` (following promote/rollback), or 503 saying how to get one."""
    rt.refresh_models()
    model = rt.models.get(task)
    if model is None:
        raise HTTPException(503, f"no champion model for {task}: run `kyodo promote {task}` "
                                 "(make demo does this) and restart the service")
    return model


@contextmanager
def metered(rt: Runtime, tenant: Tenant, task: str, endpoint: str,
            model_version: str | None) -> Iterator[dict[str, Any]]:
    """Meter and audit a request (rows, images, compute time; handlers may add `subjects`,
    pseudonyms only, and a `summary`); a failing meter never fails the request."""
    box = {"rows": 0, "images": 0, "status": 200}
    t0 = time.perf_counter()
    try:
        with collecting(box):  # scoring calls count their inputs for drift into the box
            yield box
    except HTTPException as exc:
        box["status"] = exc.status_code
        raise
    except Exception:
        box["status"] = 500
        raise
    finally:  # neither raises: a failed meter write is queued and retried
        record = request_record(tenant.code, task, endpoint, box, time.perf_counter() - t0,
                                model_version)
        observe(record)
        rt.meter.record(record)


async def admin(key: str = Depends(api_key), rt: Runtime = Depends(get_runtime)) -> None:
    """Dependency: the operator's admin key (403 for a tenant key, 401 for an unknown one)."""
    if rt.is_admin(key):
        return
    if rt.tenant_for(key) is not None:
        raise HTTPException(403, "this needs the operator's admin key, not a municipality's")
    raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
