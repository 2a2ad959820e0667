"""Which ledger a database URL names: `--db`, `IPGUARD_DB` or the default, typos refused.

A bare path is a SQLite file; a mistyped URL or a libpq connection string is refused rather than
taken for a path, and a URL is shown only with its password masked (`display_url`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import make_url

from ipguard.errors import InputError


def default_url() -> str:
    """The SQLite file in the user's data directory."""
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('ipguard')) / 'ledger.db'}"


def resolve_url(given: str | None, option: str = "--db") -> str:
    """The database URL from `option` (`given`), `IPGUARD_DB` or the default; a bare path is SQLite.

    An empty value is an error, never the default: a script whose variable is unset must not
    change the real ledger.
    """
    if given is not None:
        url, where = given, option
    elif "IPGUARD_DB" in os.environ:
        url, where = os.environ["IPGUARD_DB"], "IPGUARD_DB"
    else:
        return default_url()
    if not url.strip():
        raise InputError(
            f"{where} is empty; give the ledger's path or URL, or leave {where} out "
            "for the default ledger"
        )
    if url != url.strip():
        raise InputError(f"{where} {url!r} starts or ends with spaces; give the path without them")
    if "://" not in url:
        _refuse_mistyped_url(url, where)
        path = _ledger_file(url, url, where)
        # In a URL `?` starts the query and `%` an escape: a path's own stay part of its name.
        return "sqlite:///" + str(path).replace("%", "%25").replace("?", "%3F")
    try:
        parsed = make_url(url)
    except Exception:
        return url  # the Store names what is wrong with it, password masked
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # `sqlite:///var/lib/ipgaurd/ledger.db` is the same typo as the plain path.
        _ledger_file(str(parsed.database), display_url(url), where)
    return url


def _ledger_file(name: str, shown: str, where: str) -> Path:
    """The SQLite file `name` resolved, refused when it is a directory or its directory is missing.

    A missing directory is a typo, most likely: never a new, empty ledger there.
    """
    try:
        path = Path(name).expanduser().resolve()
        path.is_dir()
    except OSError as error:  # a name too long, say
        raise InputError(f"{where} names a file that cannot be used: {error.strerror}") from None
    if path.is_dir():
        raise InputError(f"{where} {shown!r} is a directory; give the ledger file inside it")
    if not path.parent.is_dir():
        raise InputError(
            f"{where} {shown!r}: there is no directory {path.parent}; check the path, or "
            "create the directory first"
        )
    return path


# A PostgreSQL URL with its `//` mistyped (`postgresql:/u:pw@h/db`), or libpq's key=value form
# (`host=h password=pw`), is no SQLite path: taken as one it made directories named after the
# password and a new, empty ledger. Neither is echoed: both may hold the password.
_URL_TYPO = re.compile(r"^\s*(?:postgres|postgresql|sqlite)(?:\+\w+)?:", re.IGNORECASE)
_KEYWORDS = re.compile(r"(?:^|\s)(?:host|hostaddr|dbname|user|password|port)\s*=", re.IGNORECASE)


def _refuse_mistyped_url(value: str, where: str) -> None:
    if _URL_TYPO.match(value):
        raise InputError(
            f"{where} starts like a database URL but lacks its '://': write "
            "postgresql+psycopg://USER@HOST/DB, sqlite:///PATH or a plain path"
        )
    if _KEYWORDS.search(value):
        raise InputError(
            f"{where} looks like a libpq connection string (host=… dbname=…): write it as a URL, "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        )


def absolute_url(url: str) -> str:
    """The URL with a SQLite path made absolute (cron does not start in your directory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        database = Path(parsed.database)
        if not database.is_absolute():
            return parsed.set(database=str(database.absolute())).render_as_string(
                hide_password=False
            )
    return url


# Query parameters of a URL that hold secrets (libpq takes the password there too).
_SECRET_PARAMETERS = frozenset({"password", "passfile", "sslpassword", "sslkey", "token"})


def display_url(url: str) -> str:
    """The URL safe to show: the password is masked, wherever in the URL it was given.

    A user name is shown only when the user information is unambiguous: with a raw `@` in the
    password nobody can tell where the name ends, so none of it is shown.
    """
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if authority.count("@") > 1:
        url = f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"
    try:
        parsed = make_url(url)
        hidden = {
            name: "***"
            for name in parsed.query
            if name.lower() in _SECRET_PARAMETERS or "pass" in name.lower()
        }
        shown = parsed.update_query_dict(hidden).render_as_string(hide_password=True)
        return shown.replace("=%2A%2A%2A", "=***").replace("://%2A%2A%2A@", "://***@")
    except Exception:  # a URL too broken to parse still must not leak what it holds
        return "<unparseable database URL>"
