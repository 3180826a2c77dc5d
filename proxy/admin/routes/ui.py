"""The browser UI: `/ui` (groups, the live timeline of one, rules, connections), its static
files, the timeline SVG of a group, and an offline `/docs`.

Why server-side SVG: the page shows exactly the picture `kafka-chaos-proxy timeline` writes
and every matrix run publishes, from one renderer (`proxy.timeline`); the page's script only
fetches `/ui/timeline/{group}.svg` again when the event stream says the group moved.

Static files are a fixed set read from the package at import, served by name: no path from
the request ever reaches the file system. Swagger UI is vendored (Apache-2.0, its LICENSE and
NOTICE beside it), so `/docs` works with no network.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from kafka_chaos_proxy.proxy.admin.context import AdminContext, get_ctx
from kafka_chaos_proxy.proxy.admin.params import WholeNumber
from kafka_chaos_proxy.proxy.timeline import DEFAULT_MAX_EVENTS, build_timeline, render_svg

router = APIRouter(include_in_schema=False)

Ctx = Annotated[AdminContext, Depends(get_ctx)]

#: Exchanges the live timeline draws unless asked for more (the newest; the picture says so).
LIVE_MAX_EVENTS = 1_500
STATIC_PREFIX = "/ui/static"
_MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".png": "image/png"}


def _load_static() -> dict[str, bytes]:
    root = resources.files("kafka_chaos_proxy.proxy.admin") / "static"
    files: dict[str, bytes] = {}
    for entry in root.iterdir():
        if entry.is_file() and any(entry.name.endswith(ext) for ext in _MEDIA):
            files[entry.name] = entry.read_bytes()
    swagger = root / "swagger"
    for entry in swagger.iterdir():
        if entry.is_file() and any(entry.name.endswith(ext) for ext in _MEDIA):
            files[f"swagger/{entry.name}"] = entry.read_bytes()
    return files


_STATIC = _load_static()
_NO_STORE = {"Cache-Control": "no-store"}
_SECURITY = {
    # The page loads only its own script and style and talks only to its own origin.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/ui", response_class=HTMLResponse)
@router.get("/ui/", response_class=HTMLResponse)
async def ui_page() -> Response:
    return Response(_STATIC["ui.html"], media_type=_MEDIA[".html"],
                    headers=_NO_STORE | _SECURITY)


@router.get(STATIC_PREFIX + "/{name:path}")
async def ui_static(name: str) -> Response:
    body = _STATIC.get(name)
    if body is None:
        return Response(f"no static file {name!r}\n", status_code=404, media_type="text/plain")
    suffix = "." + name.rpartition(".")[2]
    return Response(body, media_type=_MEDIA.get(suffix, "application/octet-stream"),
                    headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


# `:path`, so a group id with a `/` in it (clients choose them) still names its group.
@router.get("/ui/timeline/{group_id:path}.svg")
async def group_timeline(
    ctx: Ctx,
    group_id: str,
    max_events: Annotated[WholeNumber, Query(ge=1, le=DEFAULT_MAX_EVENTS)] = LIVE_MAX_EVENTS,
) -> Response:
    """The group's timeline from the event ring: the newest `max_events` exchanges."""
    events = [e for e in ctx.events if e.get("group") == group_id]
    timeline = build_timeline(events, group_id, max_events=max_events, keep="last")
    return Response(render_svg(timeline), media_type="image/svg+xml", headers=_NO_STORE)


@router.get("/docs")
async def swagger_docs(request: Request) -> HTMLResponse:
    """FastAPI's Swagger page, with the vendored files instead of a CDN."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{STATIC_PREFIX}/swagger/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{STATIC_PREFIX}/swagger/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC_PREFIX}/swagger/favicon-32x32.png",
        # No badge from validator.swagger.io: the page makes no request off this origin.
        swagger_ui_parameters={"validatorUrl": None},
    )
