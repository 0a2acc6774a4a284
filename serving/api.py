"""The HTTP surface (FastAPI, mounted in the BentoML service): auth, errors, shared routes.

Each task in configs/platform.yaml's `tasks` is wired by convention: its routes are the `router`
of serving/<task>.py (prefix /v1/<task>) and its page is static/<task>.html (/ui/<task>). A task
without serving/<task>.py gets the generic routes built from its Task (serving/generic.py), one
without its page the generic page (serving/pages.py); a serving module without a proper router,
or a task the generic routes cannot serve, stops the import with an error naming the file,
never a silent 404.
"""

from __future__ import annotations

import importlib
import json
import logging
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from models.configs import ServingLimits, Tenant, task_labels, task_names
from serving import docs, insights, operations, pages
from serving.deps import api_key, current_tenant, get_runtime, runtime_of
from serving.downloads import MEDIA
from serving.generic import TaskWiringError, generic_router
from serving.guard import HEAVY, BodyLimit, HeavyLimit
from serving.metrics import UNMATCHED, RouteMetrics
from serving.runtime import Runtime

log = logging.getLogger("kyodo")
STATIC = Path(__file__).parent / "static"
PAGES = (*task_names(), "costs", "operations")
ASSETS = {"kyodo.css": "text/css; charset=utf-8", "kyodo.js": "text/javascript; charset=utf-8"}
# kyodo.js's task labels (TASK_JA) are filled in from configs/platform.yaml where it has this
TASK_LABELS_SLOT = b"{/*kyodo:task-labels*/}"


def task_router(task: str) -> APIRouter:
    """serving/<task>.py's `router`, whose routes all lie under /v1/<task>, else (no such
    module) the generic routes of the task (serving/generic.py); TaskWiringError naming the
    file and the convention otherwise."""
    where = f"serving/{task}.py"
    try:
        module = importlib.import_module(f"serving.{task}")
    except ModuleNotFoundError as exc:
        if exc.name != f"serving.{task}":
            raise
        return generic_router(task)
    router = getattr(module, "router", None)
    if not isinstance(router, APIRouter) or not router.routes:
        raise TaskWiringError(f"{where} defines no `router` (a fastapi.APIRouter with routes)")
    stray = [r.path for r in router.routes if isinstance(r, APIRoute)
             and not r.path.startswith(f"/v1/{task}/")]
    if stray:
        raise TaskWiringError(f"{where}: routes outside /v1/{task}/: {', '.join(stray)}")
    return router


def _check_pages() -> None:
    """The platform pages exist (a task without its own page gets the generic one)."""
    missing = [f"serving/static/{p}.html" for p in (*PAGES, pages.INDEX)
               if p not in task_names() and not (STATIC / f"{p}.html").is_file()]
    if missing:
        raise TaskWiringError(f"pages missing: {', '.join(missing)}")


_check_pages()

app = FastAPI(
    title="kyodo API",
    version="0.1.0",
    description="Shared cloud AI for municipalities. Every call needs "
                "`Authorization: Bearer <tenant API key>`; the key decides the tenant.",
    docs_url=None,  # /v1/docs is serving/docs.py's: Swagger UI without a CDN
    openapi_url="/v1/openapi.json",
    redoc_url=None,
)
app.include_router(docs.router)


def installed_runtime() -> Runtime | None:
    """The runtime the service installed (None while it is still loading)."""
    return runtime_of(app)


def _limits() -> ServingLimits:
    rt = installed_runtime()
    return rt.platform.serving if rt is not None else ServingLimits()


# added innermost first: the metrics see the 413 of an oversized body and the 429 of a
# tenant's upload over serving.heavy_per_tenant
app.add_middleware(HeavyLimit, runtime=installed_runtime)
app.add_middleware(BodyLimit, limits=_limits)
app.add_middleware(RouteMetrics)


@app.exception_handler(RequestValidationError)
async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming the first invalid field (all of them, up to 20, in `errors`); 415 instead
    when the route takes a JSON body and the request says it sent something else."""
    wrong = _not_json(request, exc.body)
    if wrong is not None:
        return JSONResponse(status_code=415, content={"error": wrong, "errors": [
            {"field": "content-type", "message": wrong}]})
    errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
              for e in exc.errors()[:20]]
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    return JSONResponse(status_code=422, content={
        "error": f"{first['field']}: {first['message']}", "errors": errors})


def _not_json(request: Request, body: Any) -> str | None:
    """Why the Content-Type of a request with `body` (as FastAPI read it) does not fit its
    route's JSON body, or None (it fits, or the route takes no JSON body). FastAPI reads JSON
    only under application/json or application/*+json and hands any other body, or one
    without the header, as bytes to the body's model, whose error names the field "" (a
    request with neither header nor body is left to the model: "body: Field required")."""
    route = request.scope.get("route")
    if (not isinstance(route, APIRoute) or route.body_field is None
            or isinstance(route.body_field.field_info, params.Form)):
        return None
    ctype = request.headers.get("content-type")
    if ctype is None and not isinstance(body, bytes | bytearray):
        return None
    media = (ctype or "").split(";")[0].strip().lower()
    kind, _, sub = media.partition("/")
    if kind == "application" and (sub == "json" or sub.endswith("+json")):
        return None
    return (f"content-type: {media or 'missing'} is not accepted here; send the body as JSON "
            "with 'Content-Type: application/json'")


@app.exception_handler(StarletteHTTPException)
async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Every HTTP error in the product's shape, the framework's own too (404 for an unknown
    path, 405, a multipart part over Starlette's limit), which would otherwise be
    `{"detail": ...}`. A detail that is already that shape (a dict with "error", e.g. with
    per-item `errors`) is sent as it is."""
    detail = exc.detail
    content = detail if isinstance(detail, dict) and "error" in detail else {"error": detail}
    return JSONResponse(status_code=exc.status_code, content=content,
                        headers=getattr(exc, "headers", None))


@app.exception_handler(Exception)
async def _crash(request: Request, exc: Exception) -> JSONResponse:
    """A bug is a 500 in the product's shape, logged with its traceback; the body says nothing
    about the code (the log does)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={
        "error": "internal error; the operator has been logged the details"})


@app.get("/v1/models", tags=["platform"])
def list_models(rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Champion models being served: task, version, alias, headline metric, trained at, and
    the champion history (who promoted or rolled back which version when, on which metric)."""
    rt.refresh_models()
    return {"models": [{
        "task": m.task, "version": m.version, "alias": "champion", "tag": m.tag,
        "headline_metric": m.meta.get("headline_metric"),
        "headline_value": _num(m.meta.get("headline_value")),
        "trained_at": m.meta.get("trained_at"), "mlflow_run": m.meta.get("run_id"),
        "champion_history": rt.watcher.history(m.task) if rt.watcher else [],
    } for m in list(rt.models.values())]}


@app.get("/v1/usage", tags=["platform"])
def usage(tenant: Tenant = Depends(current_tenant),
          rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """The calling tenant's own metered usage."""
    return {"tenant": tenant.code, "usage": rt.store.usage(tenant.code)}


OPERATOR = "運営者"  # the admin key's name on the pages (/v1/whoami)


class WhoAmI(BaseModel):
    """Whose key it is: a municipality's (role tenant) or the operator's admin key (role admin,
    no code, no tasks: it reads the /v1/admin/* routes and every tenant's rows there, and
    calls no task route)."""

    role: Literal["tenant", "admin"]
    code: str | None = Field(description="6-digit municipality code; null for the operator")
    name: str = Field(description="Japanese name, e.g. 糸島市; 運営者 for the operator")
    tasks: list[str] = Field(description="subscribed tasks (configs/tenants.yaml); [] for admin")


@app.get("/v1/whoami", tags=["platform"], response_model=WhoAmI)
async def whoami(key: str = Depends(api_key), rt: Runtime = Depends(get_runtime)) -> WhoAmI:
    """Whose the key is, and its subscribed tasks (the pages call it at login): a tenant, or
    the operator's admin key (role admin); 401 for a missing or unknown key."""
    if rt.is_admin(key):
        return WhoAmI(role="admin", code=None, name=OPERATOR, tasks=[])
    tenant = await current_tenant(key, rt)
    return WhoAmI(role="tenant", code=tenant.code, name=tenant.name, tasks=list(tenant.tasks))


@app.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    """The index page (/ui); BentoML's own index page answered / before the catch-all route
    below took every path no other route has."""
    return RedirectResponse("/ui")


@app.get("/ui", include_in_schema=False)
def ui_index() -> HTMLResponse:
    """The index of the pages: every task of configs/platform.yaml with its Japanese label, the
    costs and operations pages, and the key form that marks the tenant's subscribed tasks."""
    return HTMLResponse(pages.render(pages.INDEX))


@app.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """No icon (204): browsers ask for one on every page, and a 404 there is an error line in
    the console of every page."""
    return Response(status_code=204)


@app.get("/ui/assets/{name}", include_in_schema=False)
def ui_asset(name: str) -> Response:
    """Stylesheet and script shared by the pages (kyodo.css, kyodo.js)."""
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    return Response(_asset(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


def _asset(name: str) -> bytes:
    """The asset's bytes, kyodo.js with the task labels of configs/platform.yaml filled in."""
    labels = json.dumps(task_labels(), ensure_ascii=False).encode("utf-8")
    return (STATIC / name).read_bytes().replace(TASK_LABELS_SLOT, labels)


@app.get("/ui/{task}", include_in_schema=False)
def ui_page(task: str) -> HTMLResponse:
    """A task's Japanese page (claim review queue, checkup outreach list; the generic page of
    a task without its own)."""
    if task not in PAGES:
        raise HTTPException(404, f"no page for {task!r}; pages: {', '.join(PAGES)}")
    return HTMLResponse(pages.render(task))


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer: what is wrong, naming the field, row or file."""

    error: Any
    errors: list[dict[str, Any]] | None = None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorOut, "description": HTTPStatus(c).phrase} for c in codes}


# what every route can answer besides its success (documented so clients and schemathesis
# know): no or unknown key, not subscribed / not the admin, unknown id, body stalled, body too
# large, unsupported content type, invalid input, no champion loaded
ERRORS = _errors(400, 401, 403, 404, 408, 413, 415, 422, 503)
# an upload over the tenant's concurrent limit (serving/guard.py HeavyLimit)
BUSY = {429: {"model": ErrorOut, "description": HTTPStatus(429).phrase, "headers": {
    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}}}
for _router in (*(task_router(t) for t in task_names()), operations.router, insights.router):
    for _route in _router.routes:
        if isinstance(_route, APIRoute) and _route.path in HEAVY:
            _route.responses = {**BUSY, **_route.responses}
    app.include_router(_router, responses=ERRORS)
for _route in app.routes:  # the platform routes above: same errors
    if isinstance(_route, APIRoute) and _route.include_in_schema:
        _route.responses = {**ERRORS, **_route.responses}


def openapi() -> dict[str, Any]:
    """FastAPI's document with the `$defs` of the upload endpoints' request schemas (built from
    pydantic models by serving/uploads.py request_body) moved to components, so that every
    $ref resolves."""
    if app.openapi_schema is None:
        doc = FastAPI.openapi(app)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        _hoist(doc, schemas)
        for path, ops in doc["paths"].items():
            for op in ops.values():
                _document_files(path, op)
        app.openapi_schema = doc
    return app.openapi_schema


FILE_TYPES = {**{k: v.split(";")[0] for k, v in MEDIA.items()},
              "geojson": "application/geo+json"}


def _document_files(path: str, op: dict[str, Any]) -> None:
    """The file answers a route gives besides JSON: one per value of its `format` query
    parameter (CSV, Excel, GeoJSON), PNG for photo overlays."""
    ok = op.get("responses", {}).get("200")
    if ok is None:
        return
    content = ok.setdefault("content", {})
    binary = {"schema": {"type": "string", "format": "binary"}}
    if path.endswith(".png"):
        ok["content"] = {"image/png": binary}
        return
    for param in op.get("parameters", []):
        if param.get("name") == "format" and param.get("in") == "query":
            values = param.get("schema", {}).get("enum") or [
                v for alt in param.get("schema", {}).get("anyOf", []) for v in alt.get("enum", [])]
            for fmt in values:
                if fmt in FILE_TYPES:
                    content.setdefault(FILE_TYPES[fmt], binary)
            if "json" not in values and param.get("schema", {}).get("default") != "json":
                content.pop("application/json", None)


def _hoist(node: Any, schemas: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for name, schema in node.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
            _hoist(schema, schemas)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in list(node.values()):
            _hoist(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _hoist(value, schemas)


app.openapi = openapi  # type: ignore[method-assign]


@app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                       "OPTIONS"], include_in_schema=False, name=UNMATCHED)
def unmatched(path: str, request: Request) -> None:
    """Any other path: 404 (405 where another method would match) in the product's shape.
    Registered last; under `bentoml serve` it also keeps unknown paths in this app, whose
    errors and metrics are kyodo's, instead of BentoML's plain-text 404."""
    scope = {**request.scope, "route": None}
    if any(r.matches(scope)[0] == Match.PARTIAL for r in app.routes
           if getattr(r, "name", None) != UNMATCHED):
        raise HTTPException(405, f"method {request.method} not allowed on /{path}; see /v1/docs")
    raise HTTPException(404, f"no such path: /{path} (API: /v1/docs)")
