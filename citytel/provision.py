"""Provisioning broker users: a password and ACL lines for each gateway and ingester.

The broker's access control is Mosquitto's own: a password file (hashed by
``mosquitto_passwd``) and an ACL file. A gateway's user may publish only under
``city/v1/gateways/<its id>/``; an ingester's user may only subscribe. The shipped
broker configuration makes each user's name its client id (``use_username_as_clientid``),
so a user name is also a session: one name is never given two roles.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devices.contract import ID_PATTERN, TOPIC_ROOT
from devices.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str
    acl: str


def acl_lines(username: str, *, role: str, prefix: str = "") -> str:
    """The ACL block for ``username``: ``gateway`` publishes under its own id only,
    ``ingester`` reads every gateway's topics."""
    if role == "gateway":
        return f"user {username}\ntopic write {prefix}{TOPIC_ROOT}/{username}/#\n"
    if role == "ingester":
        return f"user {username}\ntopic read {prefix}{TOPIC_ROOT}/#\n"
    raise ConfigurationError(f"unknown role {role!r}: gateway or ingester")


def provision(
    username: str, *, role: str, password_file: Path, acl_file: Path, prefix: str = ""
) -> Credentials:
    """Add (or reset) ``username`` with a new random password; append its ACL block once."""
    if not re.match(ID_PATTERN, username):
        raise ConfigurationError(f"not a valid gateway or user id: {username!r}")
    block = acl_lines(username, role=role, prefix=prefix)
    existing = acl_file.read_text() if acl_file.exists() else ""
    if f"user {username}" in existing.splitlines() and block not in existing:
        # Resetting it would hand another role's session (its client id) to this one.
        raise ConfigurationError(
            f"user {username!r} already exists in {acl_file} with other rights; choose another name"
        )
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise ConfigurationError(
            "mosquitto_passwd not found: install the Debian package 'mosquitto'"
        )
    password = secrets.token_urlsafe(24)
    create = [] if password_file.exists() else ["-c"]
    done = subprocess.run(
        [tool, *create, "-b", str(password_file), username, password],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ConfigurationError(f"mosquitto_passwd failed: {done.stderr.strip()}")
    if block not in existing:
        separator = "" if not existing or existing.endswith("\n\n") else "\n"
        with acl_file.open("a") as f:
            f.write(separator + block)
    return Credentials(username, password, block)
