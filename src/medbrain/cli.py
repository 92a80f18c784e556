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
from medbrain.core import yamlio
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
dicom_app = typer.Typer(help="DICOM network services (C-STORE SCP)", no_args_is_help=True)
app.add_typer(dicom_app, name="dicom")
ops_app = typer.Typer(
    help="Hospital operations: outpatient forecasts, backtest", no_args_is_help=True
)
app.add_typer(ops_app, name="ops")
insurance_app = typer.Typer(
    help="Medical insurance: CHS-DRG 1.1 grouping, compliance checks, fraud ranking",
    no_args_is_help=True,
)
app.add_typer(insurance_app, name="insurance")

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


@alerts_app.command("escalate")
@handle_errors
def alerts_escalate(
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    now: Annotated[
        str | None, typer.Option("--now", help="Time to escalate as of, ISO 8601 (default: now)")
    ] = None,
) -> None:
    """Escalate unacknowledged tracked alerts once (what the server's loop does)."""
    from datetime import UTC, datetime

    from medbrain.alerts import load_alert_knowledge
    from medbrain.alerts.record import parse_time
    from medbrain.core.i18n import t
    from medbrain.store.alert_tracking import escalate_instance

    check_lang(lang)
    when = parse_time("--now", "now", now) if now is not None else datetime.now(UTC)
    done = escalate_instance(Settings.from_env(), load_alert_knowledge(None), when)
    if as_json:
        print_json({"now": when.isoformat(), "escalated": done})
        return
    for item in done:
        notify = ", ".join(item["notify"])
        typer.echo(t("alerts_tracking.cli.escalated", lang, **{**item, "notify": notify}))
    if not done:
        typer.echo(t("alerts_tracking.cli.none", lang))


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


StoreOpt = Annotated[
    bool, typer.Option("--store", help="Run over the store for --from/--to; keep the results")
]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD), --store")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD), --store")]
EngineOpt = Annotated[str, typer.Option("--engine", help="process (default), single or ray")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", help="Processes (default: CPU count)")]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster (default: a local Ray)")
]
ResumeOpt = Annotated[
    int | None,
    typer.Option("--resume", min=1, help="Resume this failed stored run after its stored items"),
]


def _stored_batch(
    kind: str,
    period_from: str | None,
    period_to: str | None,
    engine: str,
    workers: int | None,
    chunk_size: int | None,
    ray_address: str | None,
    lang: str,
    overrides: str | None,
    out: str | None,
    as_json: bool,
    resume: int | None,
) -> None:
    """``rx|qc batch --store`` (or ``--resume ID``): a stored run with progress
    (medbrain.store.batch_runs)."""
    from medbrain.store import batch_runs

    def progress(done: int, total: int) -> None:
        if not as_json:
            typer.echo(f"\r{done}/{total}", nl=False, err=True)

    view = batch_runs.run_from_cli(
        Settings.from_env(), kind, period_from, period_to, engine=engine, workers=workers,
        chunk_size=chunk_size, ray_address=ray_address, lang=lang, overrides=overrides, out=out,
        resume=resume, progress=progress,
    )  # fmt: skip
    if as_json:
        print_json(view)
        return
    summary = view["summary"] or {}
    typer.echo("", err=True)
    typer.echo(
        f"batch run {view['id']} ({kind}, {view['from']}..{view['to']}): {view['done']} items, "
        f"{view['flagged']} flagged, {view['errors']} errors in {summary.get('seconds')} s "
        f"({summary.get('per_second')}/s, engine={summary.get('engine')}, "
        f"workers={summary.get('workers')})" + (f" -> {view['out']}" if view["out"] else "")
    )


@rx_app.command("batch")
@handle_errors
def rx_batch(
    source: Annotated[
        str | None,
        typer.Argument(help="Directory of .json/.jsonl, a .jsonl or .json file, or 'store'"),
    ] = None,
    out: Annotated[str | None, typer.Option("--out", help="Report file: .csv or .xlsx")] = None,
    store: StoreOpt = False,
    period_from: FromOpt = None,
    period_to: ToOpt = None,
    engine: EngineOpt = "process",
    workers: WorkersOpt = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Prescriptions per task")] = 500,
    ray_address: RayAddressOpt = None,
    resume: ResumeOpt = None,
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    overrides: Annotated[
        str | None,
        typer.Option("--overrides", help="Hospital drug-knowledge overrides (YAML)"),
    ] = None,
) -> None:
    """Retrospective review of many prescriptions; writes a CSV/XLSX report, prints throughput."""
    from pathlib import Path

    from medbrain.store import rx_batch

    check_lang(lang)
    if store or resume is not None:
        _stored_batch("rx", period_from, period_to, engine, workers, chunk_size, ray_address,
                      lang, overrides, out, as_json, resume)  # fmt: skip
        return
    if source is None or out is None:
        raise InputError("rx batch", "SOURCE" if source is None else "--out",
                         "give SOURCE and --out, or --store --from --to")  # fmt: skip
    target = Path(out)
    rx_batch.check_output(target)
    if source == "store":
        from medbrain.store.instance import open_instance

        instance = open_instance(Settings.from_env())
        with instance.session_factory() as session:
            docs = rx_batch.store_inputs(session)
        if not docs:
            raise InputError("store", "", "no stored prescriptions")
    else:
        docs = rx_batch.read_inputs(Path(source))

    def progress(done: int, total: int) -> None:
        if not as_json:
            typer.echo(f"\r{done}/{total}", nl=False, err=True)

    run = rx_batch.run_batch(
        docs,
        engine=engine,
        workers=workers,
        chunk_size=chunk_size,
        lang=lang,
        threshold=Settings.from_env().review_threshold,
        overrides=Path(overrides) if overrides else None,
        ray_address=ray_address,
        progress=progress,
        detail=target.suffix.lower() == ".xlsx",
    )
    summary = rx_batch.summary_of(run)
    rx_batch.write_report(target, run.rows, summary)
    if as_json:
        print_json({**summary, "out": str(target)})
        return
    typer.echo("", err=True)
    typer.echo(
        f"{len(run.rows)} prescriptions in {run.seconds:.2f} s "
        f"({run.per_second:,.0f}/s, engine={run.engine}, workers={run.workers}); "
        f"unreasonable {summary['unreasonable_rate_pct']}%, errors {summary['errors']} → {target}"
    )


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


@qc_app.command("scan")
@handle_errors
def qc_scan(
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    now: Annotated[
        str | None,
        typer.Option("--now", help="Scan time, ISO 8601 with offset (default: now)"),
    ] = None,
) -> None:
    """Run the in-stay QC deadline scan once: notes due soon or overdue for current inpatients."""
    from medbrain.store import qc_workflow

    check_lang(lang)
    when = qc_workflow.parse_scan_time(now)
    result = qc_workflow.scan_instance(Settings.from_env(), when, lang)
    if as_json:
        print_json(result.to_dict())
        return
    typer.echo(
        f"{result.encounters} stays: {result.due_soon} due soon, {result.overdue} overdue, "
        f"{result.opened} opened, {result.closed} closed"
    )
    for item in result.items:
        typer.echo(f"[{item['status']}] Encounter/{item['encounter_id']} {item['message']}")


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


@qc_app.command("batch")
@handle_errors
def qc_batch(
    directory: Annotated[
        str | None, typer.Argument(help="Directory of RECORD dirs and/or .json records")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="Report file (.csv), one row per stay")
    ] = None,
    store: StoreOpt = False,
    period_from: FromOpt = None,
    period_to: ToOpt = None,
    engine: EngineOpt = "process",
    ray_address: RayAddressOpt = None,
    resume: ResumeOpt = None,
    workers: WorkersOpt = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Records per task")] = 50,
    stage: Annotated[str, typer.Option("--stage", help="realtime or final")] = "final",
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    overrides: Annotated[
        str | None, typer.Option("--overrides", help="Hospital rule overrides (YAML)")
    ] = None,
) -> None:
    """Retrospective QC of many stays on a process pool; writes a CSV, prints throughput."""
    from pathlib import Path

    from medbrain.qc import batch

    check_lang(lang)
    if store or resume is not None:
        _stored_batch("qc", period_from, period_to, engine, workers, chunk_size, ray_address,
                      lang, overrides, out, as_json, resume)  # fmt: skip
        return
    if directory is None or out is None:
        raise InputError("qc batch", "DIRECTORY" if directory is None else "--out",
                         "give DIRECTORY and --out, or --store --from --to")  # fmt: skip
    target = Path(out)
    batch.check_output(target)
    if overrides is not None and not Path(overrides).is_file():
        raise InputError(overrides, "--overrides", "file not found")
    paths = batch.find_records(Path(directory))

    def progress(done: int, total: int) -> None:
        if not as_json:
            typer.echo(f"\r{done}/{total}", nl=False, err=True)

    options = batch.BatchOptions(
        stage=stage,
        lang=lang,
        review_threshold=Settings.from_env().review_threshold,
        overrides=overrides,
    )
    result = batch.run_batch(
        paths,
        options,
        workers=workers,
        chunk_size=chunk_size,
        progress=progress,
        engine=engine,
        ray_address=ray_address,
    )
    batch.write_csv(result, target)
    summary = result.summary()
    if as_json:
        print_json({**summary, "out": str(target)})
        return
    typer.echo("", err=True)
    typer.echo(
        f"{summary['records']} records ({summary['errors']} unreadable) in "
        f"{summary['seconds']} s: {summary['records_per_second']} records/s on "
        f"{summary['workers']} worker(s); {summary['defective']} with defects -> {target}"
    )


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
    prior: Annotated[
        str | None, typer.Option("--prior", help="Prior CT series of the same patient")
    ] = None,
    prior_result: Annotated[
        str | None, typer.Option("--prior-result", help="Prior `ct detect --json` result file")
    ] = None,
    interval_days: Annotated[
        float | None,
        typer.Option("--interval-days", help="Days since the prior (default: study dates)"),
    ] = None,
    guideline: Annotated[
        str | None,
        typer.Option(
            "--guideline",
            help="lungrads|fleischner|china2021 first in the report (MEDBRAIN_CT_GUIDELINE)",
        ),
    ] = None,
    detector: Annotated[
        str, typer.Option("--detector", help="classical|dl|ensemble (dl needs --weights)")
    ] = "classical",
    weights: Annotated[
        str | None,
        typer.Option("--weights", help="MONAI RetinaNet weights (MEDBRAIN_CT_DL_WEIGHTS)"),
    ] = None,
    age: Annotated[float | None, typer.Option("--age", help="Age, years (Brock)")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="male or female (Brock)")] = None,
    family_history: Annotated[
        bool | None,
        typer.Option("--family-history/--no-family-history", help="Lung cancer in family"),
    ] = None,
    emphysema: Annotated[
        bool | None, typer.Option("--emphysema/--no-emphysema", help="Emphysema (Brock)")
    ] = None,
) -> None:
    """Find, measure and grade lung nodules; draft the report (DESIGN.md §3).

    --guideline picks the rule set listed first (china2021 adds a ``china`` block); with
    --age, --sex, --(no-)family-history and --(no-)emphysema a ``brock`` block is added.

    With --prior or --prior-result, adds a ``followup`` block (new / grown / stable / resolved,
    volume doubling time) and uses growth in the Lung-RADS category.
    """
    import time

    from medbrain.imaging import load_series
    from medbrain.imaging.guidelines import apply_guideline, brock_patient, check_guideline
    from medbrain.imaging.interval import add_followup, read_prior_result, study_info
    from medbrain.imaging.monai_detector import make_detector
    from medbrain.imaging.pipeline import (
        DetectOptions,
        default_detector,
        default_weights,
        detect_series,
    )

    check_lang(lang)
    settings = Settings.from_env()
    from medbrain.store.radiology_risk import ct_config  # hospital file, then the env var

    chosen = check_guideline(guideline or ct_config(settings).guideline, "--guideline")
    patient = brock_patient(age, sex, family_history, emphysema)
    if risk not in ("low", "high"):
        raise InputError("--risk", "risk", f"must be low or high, got {risk!r}")
    if prior is not None and prior_result is not None:
        raise InputError("--prior", "prior", "give --prior or --prior-result, not both")
    has_prior = prior is not None or prior_result is not None
    if interval_days is not None and (not has_prior or not 0 < interval_days < 36500):
        raise InputError("--interval-days", "interval_days", "needs a prior; 0 < days < 36500")
    prior_doc, prior_info = read_prior_result(prior_result) if prior_result else (None, None)
    started = time.perf_counter()
    loaded = load_series(series)
    det, det_threshold = make_detector(
        detector,
        weights or settings.ct_dl_weights,
        loaded.direction,
        default_detector(),
        default_weights().threshold,
    )
    options = DetectOptions(lang=lang, risk=risk, threshold=det_threshold)
    if prior is not None:
        try:
            prior_series = load_series(prior)
            prior_doc = detect_series(prior_series, options, det)
        except InputError as exc:
            raise InputError(exc.source, exc.field, f"prior study: {exc.problem}") from None
        prior_info = study_info(prior, prior_series)
    result = detect_series(loaded, options, det)
    current_info = study_info(series, loaded)
    result["study"] = current_info.to_dict()
    if prior_doc is not None:
        result = add_followup(
            result,
            prior_doc,
            current_info=current_info,
            prior_info=prior_info,
            prior_source="series" if prior is not None else "result",
            slices=loaded.hu.shape[0],
            interval_days=interval_days,
            lang=lang,
        )
    result = apply_guideline(result, guideline=chosen, risk=risk, lang=lang, patient=patient)
    result["seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        print_json(result)
        return
    typer.echo(result["report"]["findings"])
    typer.echo(result["report"]["impression"])


@dicom_app.command("listen")
@handle_errors
def dicom_listen(
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 11112,
    ae_title: Annotated[str, typer.Option("--ae-title", help="Our AE title")] = "MEDBRAIN",
    host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "0.0.0.0",
) -> None:
    """C-STORE SCP: store pushed studies and run nodule detection in the background."""
    from medbrain.store.instance import open_instance
    from medbrain.store.radiology import RadiologyWorker
    from medbrain.store.radiology_scp import StoreSCP

    if not 0 < port < 65536:
        raise InputError("--port", "port", f"must lie in 1..65535, got {port}")
    title = ae_title.strip()
    if not title or len(title) > 16 or not title.isascii() or "\\" in title:
        raise InputError("--ae-title", "ae_title", "must be 1-16 ASCII characters")
    settings = Settings.from_env()
    instance = open_instance(settings)
    worker = RadiologyWorker(instance.session_factory, settings)
    worker.start()
    scp = StoreSCP(instance.session_factory, settings, ae_title=title, worker=worker)
    typer.echo(f"C-STORE SCP {title} listening on {host}:{port}", err=True)
    try:
        scp.start(host, port, block=True)
    except OSError as exc:
        raise InputError("--port", "port", f"cannot listen on {host}:{port} ({exc})") from None
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        instance.dispose()


# -- hospital operations (issue 11) -----------------------------------------------------------

OPS_DEMO_END = "2026-11-19"
# Options shared by `ops forecast` and `ops backtest`.
OpsSourceArg = Annotated[
    str | None, typer.Argument(help="CSV day,department,outpatient_visits, or -")
]
HorizonOpt = Annotated[int, typer.Option(help="Days ahead, 1-14")]
ForecastModelOpt = Annotated[str, typer.Option(help="ets (default) | mstl")]
DepartmentOpt = Annotated[list[str] | None, typer.Option(help="Only this department (repeatable)")]
OpsDbOpt = Annotated[bool, typer.Option("--db", help="Read the instance store")]
OpsSeedOpt = Annotated[int, typer.Option(help="Synthetic hospital seed")]
OpsEndOpt = Annotated[str, typer.Option(help="Last day of the synthetic history")]


def _ops_series(
    source: str | None, use_db: bool, seed: int, end: str, departments: list[str] | None
) -> list[Any]:
    """Outpatient series from a CSV (``day,department,outpatient_visits``), the instance
    store (``--db``) or, by default, the seeded synthetic 3,000-bed hospital (3 years)."""
    from datetime import date as _date
    from datetime import timedelta as _td

    from medbrain.ops import forecast as fc

    if source is not None and use_db:
        raise InputError("--db", "db", "give either an INPUT file or --db, not both")
    if source is not None:
        name, raw = read_input(source)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(name, "", f"not UTF-8 text (byte {exc.start})") from None
        rows = fc.parse_csv(text, name)
    elif use_db:
        from medbrain.store import ops as ops_store
        from medbrain.store.instance import open_instance

        instance = open_instance(Settings.from_env())
        try:
            with instance.session_factory() as session:
                first, last = ops_store.data_range(session)
                if first is None or last is None:
                    raise InputError(
                        "store", "ops_department_day", "no operations data (run medbrain demo seed)"
                    )
                rows = ops_store.outpatient_series(session, first, last)
        finally:
            instance.dispose()
    else:
        from medbrain.ops.generator import generate_daily

        try:
            stop = _date.fromisoformat(end)
        except ValueError:
            raise InputError("--end", "end", f"not an ISO date: {end!r}") from None
        start = _date(stop.year - 3, stop.month, min(stop.day, 28)) + _td(days=1)
        rows = [
            (r.day, r.dept_code, float(r.outpatient_visits))
            for r in generate_daily(start, stop, seed=seed)
        ]
    keys = sorted({k for _, k, _ in rows})
    if departments:
        unknown = [d for d in departments if d not in keys]
        if unknown:
            raise InputError(
                "--department",
                "department",
                f"unknown: {', '.join(unknown)}; known: {', '.join(keys)}",
            )
        keys = [k for k in keys if k in departments]
    return [s for s in fc.series_from_rows(rows, keys=keys) if sum(s.values) > 0]


@ops_app.command("forecast")
@handle_errors
def ops_forecast(
    source: OpsSourceArg = None,
    horizon: HorizonOpt = 14,
    model: ForecastModelOpt = "ets",
    department: DepartmentOpt = None,
    db: OpsDbOpt = False,
    seed: OpsSeedOpt = 2026,
    end: OpsEndOpt = OPS_DEMO_END,
    as_json: JsonOpt = False,
) -> None:
    """Outpatient forecasts per department with 80 %/95 % prediction intervals."""
    import time as _time

    from medbrain.ops import forecast as fc

    started = _time.perf_counter()
    series = _ops_series(source, db, seed, end, department)
    results = fc.forecast_many(series, horizon, model=model)
    seconds = round(_time.perf_counter() - started, 2)
    if as_json:
        print_json(
            {
                "horizon": horizon,
                "model": model,
                "seconds": seconds,
                "forecasts": [r.to_dict() for r in results],
            }
        )
        return
    for r in results:
        typer.echo(f"{r.key} (origin {r.origin}, {r.model})")
        for p in r.points:
            typer.echo(
                f"  {p.day}  {p.mean:8.0f}  80% [{p.lo[80]:.0f}, {p.hi[80]:.0f}]  95% [{p.lo[95]:.0f}, {p.hi[95]:.0f}]  {p.day_class or ''}"
            )
    typer.echo(f"{len(results)} departments in {seconds} s")


@ops_app.command("backtest")
@handle_errors
def ops_backtest(
    source: OpsSourceArg = None,
    horizon: HorizonOpt = 14,
    origins: Annotated[int, typer.Option(help="Rolling origins per department")] = 6,
    step: Annotated[int, typer.Option(help="Days between origins")] = 14,
    model: ForecastModelOpt = "ets",
    department: DepartmentOpt = None,
    db: OpsDbOpt = False,
    seed: OpsSeedOpt = 2026,
    end: OpsEndOpt = OPS_DEMO_END,
    as_json: JsonOpt = False,
) -> None:
    """Rolling-origin backtest: MAPE and sMAPE per department next to seasonal naive (weekly)."""
    import time as _time

    from medbrain.ops import forecast as fc

    started = _time.perf_counter()
    series = _ops_series(source, db, seed, end, department)
    result = fc.backtest(series, horizon=horizon, origins=origins, step_days=step, model=model)
    seconds = round(_time.perf_counter() - started, 2)
    if as_json:
        print_json({**result.to_dict(), "seconds": seconds})
        return
    typer.echo(
        f"model {result.model}, horizon {horizon} d, {origins} origins {step} d apart; baseline: seasonal naive (weekly)"
    )
    typer.echo(
        f"{'department':<10} {'MAPE':>7} {'sMAPE':>7} {'naive MAPE':>11} {'naive sMAPE':>12} {'ord. MAPE':>10} {'ord. naive':>11} {'cov80':>6}"
    )
    for r in result.rows:
        typer.echo(
            f"{r.key:<10} {r.mape:7.2f} {r.smape:7.2f} {r.naive_mape:11.2f} {r.naive_smape:12.2f} "
            f"{r.ordinary_mape:10.2f} {r.ordinary_naive_mape:11.2f} {r.coverage80:6.2f}"
        )
    o = result.overall()
    typer.echo(
        f"{'mean':<10} {o['mape']:7.2f} {o['smape']:7.2f} {o['naive_mape']:11.2f} {o['naive_smape']:12.2f} "
        f"{o['ordinary_mape']:10.2f} {o['ordinary_naive_mape']:11.2f} {o['coverage80']:6.2f}"
    )
    typer.echo(f"({seconds} s; 'ord.' = ordinary days only, no holiday/make-up/return day)")


if __name__ == "__main__":
    app()


# -- medical insurance (issue 11) -------------------------------------------------------------

OverridesOpt = Annotated[
    str | None, typer.Option("--overrides", help="Hospital rule overrides (YAML)")
]


def _insurance_knowledge(overrides: str | None) -> Any:
    from medbrain.insurance.pipeline import insurance_knowledge

    if not overrides:
        return insurance_knowledge()
    import yaml

    name, raw = read_input(overrides)
    try:
        doc = yamlio.parse(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(name, "", f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(name, "", "overrides must be a mapping")
    return insurance_knowledge(doc)


@insurance_app.command("group")
@handle_errors
def insurance_group(
    frontpage: Annotated[str, typer.Argument(help="Front page JSON (path or -)")],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    ambiguous: Annotated[
        bool, typer.Option("--ambiguous", help="Send unrelated operations to the MDC's QY group")
    ] = False,
) -> None:
    """Group one discharge front page (CHS-DRG 1.1): MDC → ADRG → DRG with the decision path."""
    from medbrain.insurance.drg import group
    from medbrain.insurance.frontpage import parse_frontpage

    check_lang(lang)
    name, document = read_json(frontpage)
    result = group(
        parse_frontpage(document, name),
        _insurance_knowledge(None).tables,
        lang=lang,
        ambiguous=True if ambiguous else None,
    )
    if as_json:
        print_json(result.to_dict(lang))
        return
    typer.echo(f"{result.drg} {result.drg_name} ({result.status})")
    for step in result.path:
        typer.echo(f"  - {step.text}")


@insurance_app.command("check")
@handle_errors
def insurance_check(
    frontpages: Annotated[
        str, typer.Argument(help="One front page JSON or a JSON array of them (path or -)")
    ],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh",
    overrides: OverridesOpt = None,
) -> None:
    """Group and check discharges against the compliance risk points (array: one patient history)."""
    from medbrain.insurance.pipeline import analyse_documents

    check_lang(lang)
    name, document = read_json(frontpages)
    documents = document if isinstance(document, list) else [document]
    results = analyse_documents(documents, _insurance_knowledge(overrides), lang=lang, source=name)
    out = [r.to_dict(lang) for r in results]
    if as_json:
        print_json(out if isinstance(document, list) else out[0])
        return
    for r in results:
        typer.echo(f"{r.frontpage.case_id}: {r.drg.drg} risk {r.rule_risk:.2f}")
        for f in r.findings:
            typer.echo(f"  [{f.severity.value}] {f.rule_id}: {f.message}")


@insurance_app.command("evaluate")
@handle_errors
def insurance_evaluate(
    cases: Annotated[int, typer.Option(help="Synthetic discharges to generate")] = 5000,
    seed: Annotated[int, typer.Option(help="Generator seed")] = 7,
    prevalence: Annotated[float, typer.Option(help="Share of fraudulent cases")] = 0.03,
    as_json: JsonOpt = False,
) -> None:
    """PR-AUC and precision@k of rules, anomaly model and both on synthetic claims."""
    import numpy as np

    from medbrain.insurance import fraud
    from medbrain.insurance.claims_generator import generate_claims
    from medbrain.insurance.pipeline import analyse_documents

    if cases < 20:
        raise InputError("--cases", "cases", "must be at least 20")
    if not 0.0 < prevalence <= 0.5:
        raise InputError("--prevalence", "prevalence", "must lie in (0, 0.5]")
    knowledge = _insurance_knowledge(None)
    generated = generate_claims(cases, seed, prevalence=prevalence)
    results = analyse_documents([g.document for g in generated], knowledge, source="generated")
    rule_risk = np.asarray([r.rule_risk for r in results])
    anomaly = fraud.anomaly_scores(
        fraud.claim_features(results, float(knowledge.rules.settings.get("base_rate_yuan", 5000))),
        seed,
    )
    evaluation = fraud.evaluate([g.label for g in generated], rule_risk, anomaly)
    doc = evaluation.to_dict()
    if as_json:
        print_json(doc)
        return
    typer.echo(
        f"cases {doc['cases']}, positives {doc['positives']}, prevalence {doc['prevalence']:.2%}; "
        f"all-negative 'accuracy' {doc['all_negative_accuracy']:.2%} (meaningless at this prevalence)"
    )
    typer.echo(f"{'ranker':<10}{'PR-AUC':>8}{'P@50':>8}{'P@100':>8}")
    for name, s in doc["scores"].items():
        typer.echo(
            f"{name:<10}{s['pr_auc']:>8.3f}{s['precision_at_50']:>8.2f}{s['precision_at_100']:>8.2f}"
        )
