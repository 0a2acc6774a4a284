"""/v1/docs: Swagger UI for /v1/openapi.json, served from this service.

FastAPI's default docs page loads Swagger UI's script and stylesheet from cdn.jsdelivr.net, so on
a municipal network without internet access /v1/docs was a blank page. BentoML, which serving
depends on, ships the same swagger-ui-dist files (Apache-2.0) in its package; they are served
here under /v1/docs/assets/, found without importing BentoML.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

OPENAPI_URL = "/v1/openapi.json"
ASSET_URL = "/v1/docs/assets"
# file -> media type; the files BentoML ships in bentoml/_internal/server/static_content/
ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
          "swagger-ui.css": "text/css; charset=utf-8",
          "favicon-light-32x32.png": "image/png"}

router = APIRouter()


def swagger_dir() -> Path:
    """BentoML's folder of swagger-ui-dist files (FileNotFoundError naming it if absent)."""
    spec = importlib.util.find_spec("bentoml")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("bentoml is not installed: no local Swagger UI files")
    folder = Path(spec.origin).parent / "_internal" / "server" / "static_content"
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise FileNotFoundError(f"no swagger-ui-bundle.js in {folder}")
    return folder


@router.get("/v1/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    """Swagger UI for the API, every file from this service (no CDN)."""
    return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="kyodo API",
                               swagger_js_url=f"{ASSET_URL}/swagger-ui-bundle.js",
                               swagger_css_url=f"{ASSET_URL}/swagger-ui.css",
                               swagger_favicon_url=f"{ASSET_URL}/favicon-light-32x32.png")


@router.get(ASSET_URL + "/{name}", include_in_schema=False)
def docs_asset(name: str) -> Response:
    """One of the Swagger UI files (script, stylesheet, icon)."""
    if name not in ASSETS:
        raise HTTPException(404, f"no docs asset {name!r}")
    return Response((swagger_dir() / name).read_bytes(), media_type=ASSETS[name],
                    headers={"Cache-Control": "public, max-age=86400"})
