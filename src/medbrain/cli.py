"""The ``medbrain`` command line (contracts in DESIGN.md §3).

Every command: ``--json`` prints exactly one JSON document on stdout; invalid input exits 2
with one line on stderr naming the file/field and the problem, and writes nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from medbrain.core.config import Settings
from medbrain.core.errors import InputError, MedBrainError

app = typer.Typer(
    help="MedBrain hospital AI brain", no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database administration", no_args_is_help=True)
app.add_typer(db_app, name="db")

P = ParamSpec("P")
R = TypeVar("R")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")]
LangOpt = Annotated[str, typer.Option("--lang", help="Message language: zh or en")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """One line on stderr, then exit; no traceback."""
    typer.echo(message.replace("\n", " "), err=True)
    return typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn MedBrain's own errors into exit 2 + one stderr line (DESIGN.md §3)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            raise fail(str(exc)) from None
        except MedBrainError as exc:
            raise fail(f"error: {exc}") from None

    return wrapper


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, sort_keys=False) + "\n")


def read_input(path: str) -> tuple[str, bytes]:
    """Read a file path or ``-`` (stdin); return (display name, bytes)."""
    if path == "-":
        return "<stdin>", sys.stdin.buffer.read()
    try:
        with open(path, "rb") as handle:
            return path, handle.read()
    except FileNotFoundError:
        raise InputError(path, "", "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "", "is a directory, expected a file") from None
    except PermissionError:
        raise InputError(path, "", "permission denied") from None


def read_json(path: str) -> tuple[str, Any]:
    name, raw = read_input(path)
    try:
        return name, json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(name, "", f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            name, f"line {exc.lineno} column {exc.colno}", f"malformed JSON: {exc.msg}"
        ) from None


@db_app.command("upgrade")
@handle_errors
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Create or migrate the database to the latest schema."""
    from medbrain.store import migrate
    from medbrain.store.db import make_engine

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    if as_json:
        print_json({"ok": True, "database": engine.dialect.name})
    else:
        typer.echo(f"database at latest schema ({engine.dialect.name})")


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the web UI and the APIs."""
    import uvicorn

    from medbrain.api.app import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    uvicorn.run(
        "medbrain.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    app()
