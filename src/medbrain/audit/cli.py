"""``medbrain audit verify`` and ``medbrain audit checkpoint`` (DESIGN.md §3).

Exit codes of ``verify``: 0 the chain is intact, 1 it is broken (the JSON is printed anyway,
so a monitoring job can record where), 2 invalid input or configuration (one stderr line).

This module must not import :mod:`medbrain.cli`, which imports it to register ``audit_app``:
under ``python -m medbrain.cli`` that would load the main app twice.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from medbrain.core.errors import InputError, MedBrainError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from medbrain.core.config import Settings

audit_app = typer.Typer(
    help="Tamper-evident audit log: verify the chain, sign checkpoints", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")]
LangOpt = Annotated[str, typer.Option("--lang", help="Message language: zh or en")]


def _fail(message: str) -> typer.Exit:
    typer.echo(message.replace("\n", " "), err=True)
    return typer.Exit(2)


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")


def _check_lang(lang: str) -> None:
    if lang not in ("zh", "en"):
        raise InputError("--lang", "", f"must be zh or en, got {lang!r}")


def _open_database(settings: Settings) -> Engine:
    """The instance database, created/migrated on first use (DESIGN.md §3)."""
    from medbrain.store.instance import open_instance

    return open_instance(settings, sign_checkpoints=False).engine


def _database_error(exc: Exception) -> typer.Exit:
    first_line = str(getattr(exc, "orig", exc)).strip().splitlines()[0:1] or [type(exc).__name__]
    return _fail(f"database: {first_line[0]}")


@audit_app.command("verify")
def verify_command(
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Trusted Ed25519 public key (PEM); default <MEDBRAIN_HOME>/keys",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Entries read per query", min=1)] = 2000,
) -> None:
    """Recompute every hash, check links, seq density and the signed checkpoints."""
    from sqlalchemy.exc import SQLAlchemyError

    from medbrain.audit.keys import load_public_key, read_public_key
    from medbrain.audit.verify import verify
    from medbrain.core.config import Settings
    from medbrain.core.i18n import t
    from medbrain.store.db import make_session_factory

    try:
        _check_lang(lang)
        settings = Settings.from_env()
        key = (
            read_public_key(public_key)
            if public_key is not None
            else load_public_key(settings.keys_dir)
        )
        engine = _open_database(settings)
        try:
            with make_session_factory(engine)() as session, session.begin():
                result = verify(session, key, batch_size=batch_size)
        finally:
            engine.dispose()
    except InputError as exc:
        raise _fail(str(exc)) from None
    except MedBrainError as exc:
        raise _fail(f"error: {exc}") from None
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    if as_json:
        _print_json(result.to_dict())
    elif result.ok:
        typer.echo(
            t("audit.verify.ok", lang, entries=result.entries, checkpoints=result.checkpoints)
        )
    else:
        reason = t(f"audit.problem.{result.code}", lang)
        typer.echo(t("audit.verify.broken", lang, first_bad=result.first_bad, reason=reason))
        typer.echo(result.problem or "")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint_command(as_json: JsonOpt = False, lang: LangOpt = "zh") -> None:
    """Sign the current head of the chain now (e.g. before a backup or at shutdown)."""
    from sqlalchemy.exc import SQLAlchemyError

    from medbrain.audit.chain import checkpoint
    from medbrain.audit.keys import load_or_create_signer
    from medbrain.core.config import Settings
    from medbrain.core.i18n import t
    from medbrain.store.db import make_session_factory

    try:
        _check_lang(lang)
        settings = Settings.from_env()
        signer = load_or_create_signer(settings.keys_dir)
        engine = _open_database(settings)
        try:
            with make_session_factory(engine)() as session, session.begin():
                row = checkpoint(session, signer)
                document: dict[str, Any] = {
                    "seq": None if row is None else row.seq,
                    "entry_hash": None if row is None else row.entry_hash,
                    "signed_at": None if row is None else row.signed_at,
                    "key_id": signer.key_id,
                }
        finally:
            engine.dispose()
    except InputError as exc:
        raise _fail(str(exc)) from None
    except MedBrainError as exc:
        raise _fail(f"error: {exc}") from None
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    if as_json:
        _print_json(document)
    elif document["seq"] is None:
        typer.echo(t("audit.checkpoint.none", lang))
    else:
        typer.echo(
            t("audit.checkpoint.signed", lang, seq=document["seq"], key_id=signer.key_id[:16])
        )
