"""API keys, for admins: list, create (the key is shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from api.deps import Conn, require_admin
from api.models import ApiKey, ApiKeys, CreatedApiKey, NewApiKey
from api.problems import FORBIDDEN, NOT_FOUND, ProblemError, response
from api.routes.common import PROTECTED
from storage import queries

router = APIRouter(
    prefix="/v1/apikeys",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={**PROTECTED, **response(FORBIDDEN)},
)


@router.get("")
async def list_keys(conn: Conn) -> ApiKeys:
    """Every key, without its secret."""
    return ApiKeys(items=[ApiKey.model_validate(r) for r in await queries.list_keys(conn)])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(conn: Conn, new: NewApiKey) -> CreatedApiKey:
    """A new key; its secret is in this response and nowhere else."""
    made = await queries.create_key(conn, role=new.role, name=new.name)
    return CreatedApiKey(
        id=made.id, key=made.key, role=new.role, name=made.name, created_at=made.created_at
    )


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=response(NOT_FOUND))
async def revoke_key(conn: Conn, key_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
    """Revoke a key: requests with it get 401 from now on."""
    if not await queries.revoke_key(conn, key_id):
        raise ProblemError(NOT_FOUND, f"no valid key {key_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
