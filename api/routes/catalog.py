"""The catalog of kinds and metrics: the version in force, and a new one for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import Conn, get_role, require_admin
from api.problems import CATALOG_REFUSED, FORBIDDEN, NOT_FOUND, ProblemError, response
from api.routes.common import PROTECTED
from devices.catalog_model import CatalogDocument
from storage import catalog

router = APIRouter(prefix="/v1/catalog", tags=["catalog"], responses=PROTECTED)


class CatalogVersion(BaseModel):
    version: int = Field(description="The version in force (1, 2, ...)")
    applied_at: datetime
    source: str = Field(description="`shipped` (db upgrade), `cli` or `api`")
    document: CatalogDocument


class AppliedCatalog(BaseModel):
    version: int = Field(description="The version in force after the request")
    created: bool = Field(description="False: the document was the version in force already")
    changes: list[str] = Field(description="Kinds and metrics added (+) or changed (~)")


class CatalogVersionInfo(BaseModel):
    version: int
    applied_at: datetime
    source: str
    digest: str = Field(description="SHA-256 of the document's content")


class CatalogHistory(BaseModel):
    items: list[CatalogVersionInfo] = Field(description="Every version, newest first")


VersionQ = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="An earlier version; omit: in force")
]


@router.get("", dependencies=[Depends(get_role)], responses=response(NOT_FOUND))
async def get_catalog(conn: Conn, version: VersionQ = None) -> CatalogVersion:
    """The catalog in force (or an earlier ``version``): every kind and metric, as the
    document that defines them."""
    stored = await catalog.current(conn, version=version)
    if stored is None and version is not None:
        raise ProblemError(NOT_FOUND, f"no catalog version {version}")
    if stored is None:  # `db upgrade` stores version 1: this database is not migrated
        raise ProblemError(NOT_FOUND, "no catalog version stored: run `citytel db upgrade`")
    return CatalogVersion(
        version=stored.version,
        applied_at=stored.applied_at,
        source=stored.source,
        document=stored.document,
    )


@router.get("/versions", dependencies=[Depends(get_role)])
async def get_history(conn: Conn) -> CatalogHistory:
    """Every catalog version stored, newest first."""
    rows = await catalog.history(conn)
    return CatalogHistory(
        items=[
            CatalogVersionInfo(version=v, applied_at=t, source=s, digest=d) for v, t, s, d in rows
        ]
    )


@router.put(
    "",
    dependencies=[Depends(require_admin)],
    responses={**response(FORBIDDEN), **response(CATALOG_REFUSED)},
)
async def put_catalog(conn: Conn, document: CatalogDocument) -> AppliedCatalog:
    """Make ``document`` the catalog in force, as a new version (docs/devices.md).

    Refused (409) when it would change what stored values mean; the same document as the
    version in force creates nothing.
    """
    try:
        done = await catalog.apply(conn, document, source="api")
    except catalog.CatalogRefused as exc:
        raise ProblemError(CATALOG_REFUSED, str(exc), reasons=exc.reasons) from exc
    return AppliedCatalog(version=done.version, created=done.created, changes=list(done.changes))
