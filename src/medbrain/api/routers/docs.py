"""OpenAPI schema and Swagger UI, behind the login like everything else.

FastAPI's built-in ``/docs`` is public and loads Swagger UI from a CDN; a hospital intranet
may have no internet, and MedBrain's pages make no outside calls, so Swagger UI is vendored
in ``web/static/vendor/swagger-ui`` (Apache-2.0, see NOTICE) and served from here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from medbrain.api.deps import CurrentUser
from medbrain.api.routers.ui import UiUser

router = APIRouter(include_in_schema=False)

SWAGGER = "/static/vendor/swagger-ui"


@router.get("/openapi.json")
def openapi_schema(request: Request, _user: CurrentUser) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/docs")
def swagger_ui(_user: UiUser) -> HTMLResponse:
    """Swagger UI; "Authorize" takes a token from ``POST /api/v1/auth/token``."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="MedBrain API",
        swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER}/swagger-ui.css",
        swagger_favicon_url="data:,",
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )
