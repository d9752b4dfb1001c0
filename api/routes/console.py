"""The operations console: a few static pages served at ``/``, clients of ``/v1``.

The files under ``api/console`` are built from ``web/`` (``npm run build``) and shipped in
the package, so serving them needs no Node.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ROOT = Path(str(resources.files("api") / "console"))

# Scripts and styles from this origin only; images may also come from a base-map tile
# server the user sets (https), or be drawn (data:, blob:).
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob: https:; object-src 'none';"
        " base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The console's one page (its views are chosen by the URL's fragment)."""
    return FileResponse(ROOT / "index.html", headers=_HEADERS)


@router.get("/console")
async def console() -> RedirectResponse:
    return RedirectResponse("/")


def mount(app: FastAPI) -> None:
    """Serve ``/`` and the console's assets under ``/console/``."""
    app.include_router(router)
    app.mount("/console", StaticFiles(directory=ROOT), name="console")
