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

from medbrain.audit.cli import audit_app
from medbrain.core.config import Settings
from medbrain.core.errors import InputError, MedBrainError

app = typer.Typer(
    help="MedBrain hospital AI brain",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database administration", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
alerts_app = typer.Typer(help="Clinical early warnings and critical values", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
triage_app = typer.Typer(help="Emergency pre-triage and department guidance", no_args_is_help=True)
app.add_typer(triage_app, name="triage")
rx_app = typer.Typer(help="Prescription review", no_args_is_help=True)
app.add_typer(rx_app, name="rx")
qc_app = typer.Typer(help="EMR quality control (病历质控)", no_args_is_help=True)
app.add_typer(qc_app, name="qc")
llm_app = typer.Typer(help="Local language model server and gateway checks", no_args_is_help=True)
app.add_typer(llm_app, name="llm")
notes_app = typer.Typer(help="Note drafting (入院记录, 病程记录, 出院记录)", no_args_is_help=True)
app.add_typer(notes_app, name="notes")
demo_app = typer.Typer(help="Synthetic demo data (never real patients)", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
rare_app = typer.Typer(help="Rare-disease ranking (HPO) and rule packs", no_args_is_help=True)
app.add_typer(rare_app, name="rare")
ct_app = typer.Typer(
    help="Chest CT: lung nodules, Lung-RADS / Fleischner, report", no_args_is_help=True
)
app.add_typer(ct_app, name="ct")

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


def check_lang(lang: str) -> None:
    """``--lang`` must be zh or en; checked inside the command so the error is one line."""
    if lang not in ("zh", "en"):
        raise InputError("--lang", "lang", f"must be zh or en, got {lang!r}")


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
    from medbrain.store.instance import open_instance

    engine = open_instance(Settings.from_env()).engine
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


@alerts_app.command("evaluate")
@handle_errors
def alerts_evaluate(
    bundle: Annotated[str, typer.Argument(help="FHIR R4 Bundle of one patient (path or -)")],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    now: Annotated[
        str | None,
        typer.Option("--now", help="Evaluation time, ISO 8601 (default: latest observation)"),
    ] = None,
    overrides: Annotated[
        str | None,
        typer.Option("--overrides", help="Hospital alert-knowledge overrides (YAML)"),
    ] = None,
) -> None:
    """Critical values, NEWS2/qSOFA/SIRS, sepsis, AKI, electrolytes, drug-lab and trends."""
    from pathlib import Path

    from medbrain.alerts import evaluate_bundle, load_alert_knowledge
    from medbrain.alerts.record import parse_time

    check_lang(lang)
    name, document = read_json(bundle)
    when = parse_time("--now", "now", now) if now is not None else None
    knowledge = load_alert_knowledge(Path(overrides) if overrides else None)
    report = evaluate_bundle(
        document,
        knowledge,
        now=when,
        lang=lang,
        source=name,
        review_threshold=Settings.from_env().review_threshold,
    )
    if as_json:
        print_json(report.to_dict())
        return
    from medbrain.core.i18n import t

    for finding in report.alerts:
        label = t(f"severity.{finding.severity.value}", lang)
        typer.echo(f"[{label}] {finding.rule_id}: {finding.message}")
    if not report.alerts:
        typer.echo(t("alerts.none", lang))
    scores = ", ".join(f"{k}={v}" for k, v in report.to_dict()["scores"].items())
    typer.echo(f"{t('alerts.scores', lang)}: {scores}")


@rx_app.command("review")
@handle_errors
def rx_review(
    prescription: Annotated[
        str, typer.Argument(help="Prescription JSON or FHIR R4 Bundle (path or -)")
    ],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    overrides: Annotated[
        str | None,
        typer.Option("--overrides", help="Hospital drug-knowledge overrides (YAML)"),
    ] = None,
) -> None:
    """Review one prescription: allergy, interaction, dose, renal, antimicrobial, ..."""
    import time
    from pathlib import Path

    from medbrain.rx import load_rx_knowledge, review

    check_lang(lang)
    name, document = read_json(prescription)
    knowledge = load_rx_knowledge(Path(overrides) if overrides else None)
    started = time.perf_counter()
    result = review(
        document,
        knowledge,
        lang=lang,
        source=name,
        review_threshold=Settings.from_env().review_threshold,
    )
    seconds = time.perf_counter() - started
    if as_json:
        print_json(result.to_dict(seconds))
        return
    for finding in result.findings:
        typer.echo(f"[{finding.severity.value}] {finding.rule_id}: {finding.message}")
    typer.echo(f"verdict: {result.verdict}")


@triage_app.command("assess")
@handle_errors
def triage_assess(
    visit: Annotated[str, typer.Argument(help="Visit JSON (DESIGN.md §3), path or -")],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    overrides: Annotated[
        str | None,
        typer.Option("--overrides", help="Hospital triage-knowledge overrides (YAML)"),
    ] = None,
) -> None:
    """Pre-triage level Ⅰ–Ⅳ, zone, maximum wait, care, department and pathway."""
    import time
    from pathlib import Path

    from medbrain.core.i18n import t
    from medbrain.triage import assess_document, default_knowledge, load_triage_knowledge

    check_lang(lang)
    name, document = read_json(visit)
    knowledge = load_triage_knowledge(Path(overrides)) if overrides else default_knowledge()
    started = time.perf_counter()
    result = assess_document(
        document,
        knowledge,
        lang=lang,
        source=name,
        review_threshold=Settings.from_env().review_threshold,
    )
    out = result.to_dict()
    out["seconds"] = round(time.perf_counter() - started, 4)
    if as_json:
        print_json(out)
        return
    dept = out["department"]["name_en" if lang == "en" else "name_zh"]
    typer.echo(
        t(
            "triage.summary",
            lang,
            level=out["level_name"],
            title=out["level_title"],
            zone=out["zone_name"],
            wait=out["max_wait_minutes"],
        )
    )
    typer.echo(t("triage.care", lang, care=t(f"triage.care.{out['care']}", lang), department=dept))
    if out["pathway"]:
        typer.echo(t("triage.pathway", lang, pathway=out["pathway"]))
    for flag in out["red_flags"]:
        typer.echo(f"! {flag}")
    for reason in out["reasons"]:
        typer.echo(f"- {reason}")
    for action in out["actions"]:
        typer.echo(f"> {action}")
    typer.echo(t("triage.confidence", lang, confidence=out["confidence"]))


@qc_app.command("check")
@handle_errors
def qc_check(
    record: Annotated[
        str,
        typer.Argument(
            help="RECORD directory, FHIR Bundle or {documents, meta} JSON file, or - for stdin"
        ),
    ],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    stage: Annotated[
        str, typer.Option("--stage", help="realtime (open stay) or final (discharged)")
    ] = "final",
    overrides: Annotated[
        str | None, typer.Option("--overrides", help="Hospital QC rule overrides (YAML)")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Time of a real-time check (default: latest time in record)"),
    ] = None,
) -> None:
    """Check one inpatient record against the QC rule library and score it."""
    from pathlib import Path

    from medbrain.qc import check_record, load_qc_knowledge, read_record_dir
    from medbrain.qc.parse import record_from_json

    check_lang(lang)
    if stage not in ("realtime", "final"):
        raise InputError("--stage", "stage", f"must be realtime or final, got {stage!r}")
    when = None
    if now is not None:
        from medbrain.qc.parse import parse_stamp

        stamp = parse_stamp(now)
        if stamp is None:
            raise InputError("--now", "now", f"not a date/time: {now!r}")
        when = stamp[0]
    if overrides is not None and not Path(overrides).is_file():
        raise InputError(overrides, "--overrides", "file not found")
    knowledge = load_qc_knowledge(Path(overrides) if overrides else None)
    if record != "-" and Path(record).is_dir():
        parsed = read_record_dir(Path(record), knowledge.vocabulary)
    else:
        name, document = read_json(record)
        parsed = record_from_json(document, name, knowledge.vocabulary)
    report = check_record(
        parsed,
        knowledge,
        stage=stage,
        lang=lang,
        review_threshold=Settings.from_env().review_threshold,
        now=when,
    )
    out = report.to_dict()
    if as_json:
        print_json(out)
        return
    typer.echo(f"{out['score']} {out['grade']}{' (veto)' if out['veto'] else ''}")
    for defect in out["defects"]:
        typer.echo(f"-{defect['deduction']:g} [{defect['category']}] {defect['message']}")
    for finding in out["needs_review"]:
        typer.echo(f"? [{finding['category']}] {finding['message']}")


@rare_app.command("rank")
@handle_errors
def rare_rank(
    case: Annotated[str, typer.Argument(help="Case JSON (or a JSON array of cases), path or -")],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    top: Annotated[int, typer.Option("--top", min=1, max=500, help="Candidates to list")] = 20,
) -> None:
    """Rank OMIM/Orphanet diseases for HPO terms and/or free text; never a diagnosis."""
    import time

    from medbrain.rare import default_rare_knowledge, load_index, rank_document

    check_lang(lang)
    name, document = read_json(case)
    knowledge = default_rare_knowledge()
    index = load_index()
    started = time.perf_counter()
    result = rank_document(document, index, knowledge, top=top, lang=lang, source=name)
    if as_json:
        print_json(result)
        return
    for item in result if isinstance(result, list) else [result]:
        for cand in item["candidates"]:
            typer.echo(f"{cand['rank']:>3} {cand['score']:.3f} {cand['disease_id']} {cand['name']}")
        for pack in item["rule_packs"]:
            typer.echo(f"! {pack['message']}")
    typer.echo(f"{time.perf_counter() - started:.2f} s", err=True)


@llm_app.command("serve-local")
@handle_errors
def llm_serve_local(
    port: Annotated[int, typer.Option(help="TCP port")] = 8089,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    ctx: Annotated[int, typer.Option("--ctx", help="Context length in tokens")] = 4096,
    threads: Annotated[int, typer.Option(help="CPU threads (0 = all)")] = 0,
    verbose: Annotated[bool, typer.Option(help="Show llama.cpp's own log")] = False,
) -> None:
    """Serve SmolLM2-135M-Instruct (OpenAI API, CPU) for tests and small sites; Ctrl-C stops."""
    import signal
    import threading

    from medbrain.llm import local

    server = local.start(port=port, host=host, n_ctx=ctx, threads=threads or None, verbose=verbose)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(f"serving {server.model} at {server.url} (MEDBRAIN_LLM_URL={server.url})", err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@llm_app.command("check")
@handle_errors
def llm_check(as_json: JsonOpt = False) -> None:
    """Probe the configured server (MEDBRAIN_LLM_URL) and the local-server packages."""
    import asyncio

    from medbrain.llm import LLMConfig, LLMGateway, local

    config = LLMConfig.from_settings(Settings.from_env())

    async def probe() -> dict[str, Any]:
        if config is None:
            return {"configured": False, "available": False}
        async with LLMGateway(config) as gateway:
            available = await gateway.is_available()
            return {
                "configured": True,
                "server": config.server,
                "available": available,
                "model": await gateway.model_name() if available else config.model,
                "deidentify": await gateway.deidentifies(),
            }

    report = asyncio.run(probe())
    report["local_server"] = local.unavailable_reason() or "available"
    if as_json:
        print_json(report)
    else:
        for key, value in report.items():
            typer.echo(f"{key}: {value}")


@app.command("import")
@handle_errors
def import_bundle_command(
    bundle: Annotated[
        str, typer.Argument(help="FHIR R4 collection/transaction Bundle (path or -)")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Import a FHIR R4 Bundle: validated, all-or-nothing, idempotent; prints counts per type."""
    from medbrain.interop.fhir.instance import counts_table, import_into_instance

    name, document = read_json(bundle)
    result = import_into_instance(Settings.from_env(), document, source=name)
    if as_json:
        print_json(result.to_dict())
    else:
        typer.echo(counts_table(result))


@demo_app.command("seed")
@handle_errors
def demo_seed(
    patients: Annotated[
        int, typer.Option("--patients", min=1, max=5000, help="Patients to generate")
    ] = 60,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (same seed, same patients)")
    ] = 20251,
    as_json: JsonOpt = False,
) -> None:
    """Seed synthetic demo patients, demo accounts and findings, once (a rerun does nothing)."""
    from medbrain.demo.seed import seed_instance

    result = seed_instance(Settings.from_env(), patients=patients, seed=seed)
    if as_json:
        print_json(result.to_dict())
    elif result.seeded:
        resources = sum(result.imported.values())
        typer.echo(
            f"demo data seeded: {result.patients} patients, {resources} resources, "
            f"{len(result.users)} accounts, {result.findings} findings"
        )
    else:
        typer.echo("demo data already present; nothing to do")


@notes_app.command("draft")
@handle_errors
def notes_draft(
    bundle: Annotated[str, typer.Argument(help="FHIR R4 Bundle of one patient (path or -)")],
    note_type: Annotated[
        str, typer.Option("--type", help="admission | first_course | progress | discharge")
    ] = "admission",
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
) -> None:
    """Draft a note from the record; every sentence cites its source resource.

    With MEDBRAIN_LLM_URL set, the LLM rewords the template draft; its answer is kept only if
    it cites the same sources and states no value absent from them, else the template is used
    and a notice says why.
    """
    import asyncio

    from medbrain.llm import LLMConfig, LLMGateway
    from medbrain.notes import draft_note, read_note_record
    from medbrain.notes.polish import polish_note

    name, document = read_json(bundle)
    record = read_note_record(document, source=name)
    template = draft_note(record, note_type, lang)
    config = LLMConfig.from_settings(Settings.from_env())

    async def run() -> dict[str, Any]:
        if config is None:
            note, _ = await polish_note(template, record, None)
            return note.to_dict()
        async with LLMGateway(config) as gateway:
            note, _ = await polish_note(template, record, gateway)
            return note.to_dict()

    result = asyncio.run(run())
    if as_json:
        print_json(result)
        return
    if result.get("notice"):
        typer.echo(f"[{result['notice']}]")
    for section in result["sections"]:
        typer.echo(f"【{section['title']}】")
        typer.echo(section["text"])


@ct_app.command("detect")
@handle_errors
def ct_detect(
    series: Annotated[str, typer.Argument(help="DICOM CT series directory or .nii/.nii.gz file")],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    risk: Annotated[
        str, typer.Option("--risk", help="Fleischner patient risk: low or high")
    ] = "high",
) -> None:
    """Find, measure and grade lung nodules; draft the report (DESIGN.md §3)."""
    import time

    from medbrain.imaging import load_series
    from medbrain.imaging.pipeline import DetectOptions, detect_series

    check_lang(lang)
    if risk not in ("low", "high"):
        raise InputError("--risk", "risk", f"must be low or high, got {risk!r}")
    started = time.perf_counter()
    loaded = load_series(series)
    result = detect_series(loaded, DetectOptions(lang=lang, risk=risk))
    result["seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        print_json(result)
        return
    typer.echo(result["report"]["findings"])
    typer.echo(result["report"]["impression"])


if __name__ == "__main__":
    app()
