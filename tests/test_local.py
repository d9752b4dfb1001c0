"""The local servers of `citytel up`: they start where a user's checkout happens to be."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from citytel.local import LocalPostgres


def test_postgresql_starts_in_a_private_folder_of_roots(server_tmp: Path) -> None:
    private = server_tmp / "private"  # as `mktemp -d` makes it: 0700
    private.mkdir(mode=0o700)
    with (
        LocalPostgres(private / "var" / "postgres", fsync=False) as pg,
        psycopg.connect(pg.url_for("postgres")) as conn,
    ):
        assert conn.execute("SELECT 1").fetchone() == (1,)
    mode = private.stat().st_mode & 0o777
    # as root the cluster runs as user postgres, who must pass through: o+x and no more
    assert mode == (0o701 if os.getuid() == 0 else 0o700)
