"""Settings read once from ``MEDBRAIN_*`` environment variables by the adapters.

Engines never read the environment: adapters build a :class:`Settings` and pass what an
engine needs as arguments. Every field here is documented in the README.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from medbrain.core.errors import InputError


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError("environment", name, f"must be an integer, got {raw!r}") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise InputError("environment", name, f"must be a number, got {raw!r}") from None


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    database_url: str
    max_upload_bytes: int = 50 * 1024 * 1024
    review_threshold: float = 0.7
    default_lang: str = "zh"
    session_hours: int = 12
    login_max_failures: int = 5
    login_window_seconds: int = 900
    audit_checkpoint_every: int = 100
    cookie_secure: bool = False
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_seconds: float = 60.0
    llm_max_concurrency: int = 4
    llm_max_retries: int = 2
    llm_structured_output: str = "json_schema"
    llm_deid: str = "auto"
    log_level: str = "INFO"
    timezone: str = "Asia/Shanghai"
    series_settle_seconds: float = 5.0
    max_study_instances: int = 3000
    max_dicom_upload_bytes: int = 1024 * 1024 * 1024
    radiology_worker: bool = True
    pacs_ae: str | None = None
    pacs_host: str | None = None
    pacs_port: int | None = None
    alert_escalation_seconds: int = 60
    qc_schedule_seconds: int = 0  # in-stay QC deadline scan interval; 0 disables (issue 7)
    qc_precision_threshold: float = 0.8  # QC dashboard: rules below this precision are flagged
    # pharmacists (usernames) who may change prescription-review rules besides admins (issue 6)
    rx_rule_editors: tuple[str, ...] = ("pharmacist",)
    # CT nodules (issue 4): DL detector weights file; default guideline lungrads|fleischner|china2021
    ct_dl_weights: str | None = None
    ct_guideline: str = "lungrads"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def dicom_dir(self) -> Path:
        """Stored DICOM: ``<home>/dicom/<StudyInstanceUID>/<SeriesInstanceUID>/<SOP>.dcm``."""
        return self.home / "dicom"

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("MEDBRAIN_HOME", "instance")).resolve()
        database_url = (
            os.environ.get("MEDBRAIN_DATABASE_URL") or f"sqlite:///{home / 'medbrain.db'}"
        )
        lang = os.environ.get("MEDBRAIN_LANG", "zh")
        if lang not in ("zh", "en"):
            raise InputError("environment", "MEDBRAIN_LANG", f"must be zh or en, got {lang!r}")
        threshold = _env_float("MEDBRAIN_REVIEW_THRESHOLD", 0.7)
        if not 0.0 <= threshold <= 1.0:
            raise InputError("environment", "MEDBRAIN_REVIEW_THRESHOLD", "must lie in [0, 1]")
        return cls(
            home=home,
            database_url=database_url,
            max_upload_bytes=_env_int("MEDBRAIN_MAX_UPLOAD_MB", 50) * 1024 * 1024,
            review_threshold=threshold,
            default_lang=lang,
            session_hours=_env_int("MEDBRAIN_SESSION_HOURS", 12),
            login_max_failures=_env_int("MEDBRAIN_LOGIN_MAX_FAILURES", 5),
            login_window_seconds=_env_int("MEDBRAIN_LOGIN_WINDOW_SECONDS", 900),
            audit_checkpoint_every=_env_int("MEDBRAIN_AUDIT_CHECKPOINT_EVERY", 100),
            cookie_secure=os.environ.get("MEDBRAIN_COOKIE_SECURE", "0") in ("1", "true", "yes"),
            llm_url=os.environ.get("MEDBRAIN_LLM_URL") or None,
            llm_model=os.environ.get("MEDBRAIN_LLM_MODEL") or None,
            llm_api_key=os.environ.get("MEDBRAIN_LLM_API_KEY") or None,
            llm_timeout_seconds=_env_float("MEDBRAIN_LLM_TIMEOUT_SECONDS", 60.0),
            llm_max_concurrency=_env_int("MEDBRAIN_LLM_MAX_CONCURRENCY", 4),
            llm_max_retries=_env_int("MEDBRAIN_LLM_MAX_RETRIES", 2),
            llm_structured_output=os.environ.get("MEDBRAIN_LLM_STRUCTURED_OUTPUT", "json_schema"),
            llm_deid=os.environ.get("MEDBRAIN_LLM_DEID", "auto"),
            log_level=os.environ.get("MEDBRAIN_LOG_LEVEL", "INFO").upper(),
            timezone=os.environ.get("MEDBRAIN_TIMEZONE") or "Asia/Shanghai",
            qc_schedule_seconds=_env_int("MEDBRAIN_QC_SCHEDULE_SECONDS", 600),
            qc_precision_threshold=_env_float("MEDBRAIN_QC_PRECISION_THRESHOLD", 0.8),
            alert_escalation_seconds=_env_int("MEDBRAIN_ALERT_ESCALATION_SECONDS", 60),
            series_settle_seconds=_env_float("MEDBRAIN_SERIES_SETTLE_SECONDS", 5.0),
            max_study_instances=_env_int("MEDBRAIN_MAX_STUDY_INSTANCES", 3000),
            max_dicom_upload_bytes=_env_int("MEDBRAIN_MAX_DICOM_UPLOAD_MB", 1024) * 1024 * 1024,
            radiology_worker=os.environ.get("MEDBRAIN_RADIOLOGY_WORKER", "1")
            not in ("0", "false", "no"),
            pacs_ae=os.environ.get("MEDBRAIN_PACS_AE") or None,
            pacs_host=os.environ.get("MEDBRAIN_PACS_HOST") or None,
            pacs_port=_env_int("MEDBRAIN_PACS_PORT", 0) or None,
            ct_dl_weights=os.environ.get("MEDBRAIN_CT_DL_WEIGHTS") or None,
            ct_guideline=os.environ.get("MEDBRAIN_CT_GUIDELINE") or "lungrads",
            rx_rule_editors=tuple(
                name.strip()
                for name in os.environ.get("MEDBRAIN_RX_RULE_EDITORS", "pharmacist").split(",")
                if name.strip()
            ),
        )
