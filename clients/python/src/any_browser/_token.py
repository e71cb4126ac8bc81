"""The user's any token: the secret the server wants on every client API request as
``Authorization: Bearer <token>``.

Runs in the caller's process. Same file and rules as the `any` binary
(`crates/server/src/token.rs`): ``$XDG_DATA_HOME/any/token`` when that variable is an
absolute path, else ``~/.local/share/any/token``; 64 hex digits; readable only by the
user (mode 0600). The server creates it on its first start; the client only reads it,
afresh for each request, so a token made by a server the client just started is seen.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import Unauthorized


def data_dir() -> Path:
    """``$XDG_DATA_HOME/any`` or ``~/.local/share/any``: the token and the server logs."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    data = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return data / "any"


def path() -> Path:
    """The token file."""
    return data_dir() / "token"


def read() -> str | None:
    """The token, or None when the file does not exist yet (no server has run: the
    server that autostart launches creates it). Raises `Unauthorized` when the file
    exists but cannot be used, saying why and what to do."""
    file = path()
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise Unauthorized(
            f"cannot read the any token {file} ({e}): the server requires it; it must be a "
            f"file of yours, mode 600 (`any token` prints it)"
        ) from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Unauthorized(
            f"the any token {file} can be read by other users (mode {stat.S_IMODE(mode):03o}): "
            f"`chmod 600 {file}`, or delete it so that the server makes a new one"
        )
    token = text.strip()
    if len(token) != 64 or any(c not in "0123456789abcdefABCDEF" for c in token):
        raise Unauthorized(
            f"{file} does not hold an any token (64 hex digits): delete it, and the server "
            f"makes a new one when it starts"
        )
    return token
