"""The dashboard at `/`: a static page whose script reads and changes everything through `/api/v1` (cookie session
+ CSRF header). Every response carries a Content-Security-Policy that allows only Forge itself."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import FileResponse

from forge.api.dashboard import STATIC
from forge.domain.errors import NotFound

router = APIRouter(include_in_schema=False)

# 'self' only: no CDN, no inline script, nothing fetched from or framed by another origin.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The files are listed once at import: a request names one of them or gets a 404, never a path on disk.
FILES = {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file() and p.suffix in TYPES}


def _file(name: str) -> FileResponse:
    path = FILES.get(name)
    if path is None:
        raise NotFound(f"No dashboard file '{name}'; open the dashboard at /.")
    return FileResponse(path, media_type=TYPES[path.suffix], headers=HEADERS)


@router.get("/")
def dashboard() -> FileResponse:
    return _file("index.html")


@router.get("/dashboard/{name:path}")
def dashboard_file(name: str) -> FileResponse:
    return _file(name)
