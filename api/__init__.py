"""The HTTP API (FastAPI) for operations staff and open data."""

from api.app import create_app

__all__ = ["create_app"]
