"""The user's any token: the secret the server wants on every client API request as
``Authorization: Bearer <token>``.

Runs in the caller's process. Same file and rules as the `any` binary
(`crates/server/src/token.rs`): ``$XDG_DATA_HOME/any/token`` when that variable is an
absolute path, else ``~/.local/share/any/token``; 64 hex digits; readable only by the
user (mode 0600). The server creates it on its first start; the client only reads it.
It is looked at (one `stat`) for each request and read again whenever the file changed
(another inode, size or change time, which a `chmod` also moves), so a token made by a
server the client just started is seen; reading it every time cost ~25 µs per call.
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
    return _file()[0]


# The token file for the environment it was worked out in: ((XDG_DATA_HOME, HOME), the
# path, its text). Working it out with pathlib took ~15 µs, on every request.
_where: tuple[tuple[str, str], Path, str] | None = None


def _file() -> tuple[Path, str]:
    global _where
    env = (os.environ.get("XDG_DATA_HOME", ""), os.environ.get("HOME", ""))
    where = _where
    if where is None or where[0] != env:
        file = data_dir() / "token"
        where = _where = (env, file, str(file))
    return where[1], where[2]


# The last token read: (the file's identity when read, the token).
_last: tuple[tuple[str, int, int, int, int], str] | None = None


def read() -> str | None:
    """The token, or None when the file does not exist yet (no server has run: the
    server that autostart launches creates it). Raises `Unauthorized` when the file
    exists but cannot be used, saying why and what to do."""
    global _last
    file, name = _file()
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _unreadable(file, e) from e
    seen = (name, st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)
    last = _last
    if last is not None and last[0] == seen:
        return last[1]
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Unauthorized(
            f"the any token {file} can be read by other users (mode {stat.S_IMODE(st.st_mode):03o}): "
            f"`chmod 600 {file}`, or delete it so that the server makes a new one"
        )
    try:
        text = file.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise _unreadable(file, e) from e
    token = text.strip()
    if len(token) != 64 or any(c not in "0123456789abcdefABCDEF" for c in token):
        raise Unauthorized(
            f"{file} does not hold an any token (64 hex digits): delete it, and the server "
            f"makes a new one when it starts"
        )
    _last = (seen, token)
    return token


def _unreadable(file: Path, e: Exception) -> Unauthorized:
    return Unauthorized(
        f"cannot read the any token {file} ({e}): the server requires it; it must be a "
        f"file of yours, mode 600 (`any token` prints it)"
    )
