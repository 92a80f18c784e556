"""CDS Hooks 2.0 wire format: discovery, request parsing, Finding → card, feedback parsing.

Pure functions: JSON in, JSON out; no web, no database, no clock (callers pass ``today``).
The router (:mod:`medbrain.api.routers.cds_hooks`) runs the engines and audits the calls.

A :class:`~medbrain.core.findings.Finding` maps 1:1 to a card (STYLE.md §6):

=====================  =====================================================================
Finding                Card (CDS Hooks 2.0 §"Card Attributes")
=====================  =====================================================================
``message``            ``summary`` (under 140 characters, cut on a word or character boundary)
``severity``           ``indicator`` (``info`` | ``warning`` | ``critical``, same words)
evidence ``source``    ``source.label``; ``rule_id`` as ``source.topic``
message + suggestion   ``detail`` (GitHub-flavoured markdown, with the evidence quotes)
+ evidence quotes
``suggestion``         ``suggestions[0]``: ``delete`` (or ``update``) of the offending draft
                       MedicationRequest, for dose / duplication / interaction findings that
                       name a draft order
—                      ``overrideReasons`` (configured zh/en list), ``selectionBehavior``
—                      ``links[0]``: ``type: absolute`` to the MedBrain UI
=====================  =====================================================================

References
----------
CDS Hooks 2.0 (HL7, 2022), https://cds-hooks.hl7.org/2.0/: §"Discovery" (response: ``services``
with ``hook``, ``title``, ``description``, ``id``, ``prefetch``), §"Prefetch Template",
§"Calling a CDS Service" (``hook``, ``hookInstance``, ``fhirServer``, ``fhirAuthorization``,
``context``, ``prefetch``), §"CDS Service Response" / §"Card Attributes" (``uuid``, ``summary``
< 140 characters, ``detail``, ``indicator``, ``source`` {``label``, ``url``, ``topic``},
``suggestions``, ``selectionBehavior``, ``overrideReasons``, ``links`` of ``type``
``absolute``), §"Suggestion" / §"Action" (``create`` | ``update`` | ``delete``; ``resourceId``
for delete), §"Feedback" (``card``, ``outcome`` ``accepted`` | ``overridden``,
``acceptedSuggestions``, ``overrideReason`` {``reason``, ``userComment``},
``outcomeTimestamp``); hooks ``order-sign`` 1.1, ``order-select`` 1.1 and ``patient-view`` 1.0
(``context.userId``, ``patientId``, ``encounterId``, ``draftOrders``, ``selections``).
"""

from __future__ import annotations

import copy
import re
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from medbrain.core.errors import InputError
from medbrain.core.findings import Finding
from medbrain.core.i18n import t
from medbrain.rare.labs import default_lab_hpo

SOURCE = "cds-hooks"
"""``InputError.source`` of every refusal in this module."""

SUMMARY_MAX = 139
"""Longest summary: the spec asks for fewer than 140 characters (§"Card Attributes")."""

LABEL_MAX = 139
"""Longest ``source.label`` and suggestion label (the spec wants them short)."""

OVERRIDE_REASON_SYSTEM = "urn:medbrain:cds-hooks:override-reason"
"""``Coding.system`` of MedBrain's override reasons (an identifier, never fetched)."""

RULE_SYSTEM = "urn:medbrain:rule"
"""``Coding.system`` of ``source.topic``: the finding's ``rule_id``."""

EXTENSION_KEY = "org.medbrain.finding"
"""Card ``extension`` key (§"Extensions": reverse-domain names) with the finding's ids."""

OVERRIDE_REASON_CODES: tuple[str, ...] = (
    "benefit_outweighs_risk",
    "already_monitored",
    "patient_tolerated",
    "not_applicable",
    "other",
)
"""Default override reasons; their zh/en display lives in ``messages.yaml`` (``cds.override.*``)."""

SUGGESTION_CATEGORIES = frozenset({"dose", "duplication", "interaction"})
"""Rx categories whose card suggests removing (or correcting) the offending draft order."""

ORDER_PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&category=laboratory&_sort=-date",
}
PATIENT_VIEW_PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "observations": "Observation?patient={{context.patientId}}&_sort=-date",
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
}

#: Prefetch key → the resource types accepted under it (others, e.g. OperationOutcome, skipped).
PREFETCH_TYPES: dict[str, frozenset[str]] = {
    "patient": frozenset({"Patient"}),
    "conditions": frozenset({"Condition"}),
    "allergies": frozenset({"AllergyIntolerance"}),
    "observations": frozenset({"Observation"}),
    "medications": frozenset({"MedicationRequest"}),
}


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """One CDS Service as the discovery endpoint lists it (§"Discovery", "Response")."""

    id: str
    hook: str
    message_key: str  # ``cds.service.<key>.title`` / ``.description`` in messages.yaml
    prefetch: Mapping[str, str]
    context: tuple[str, ...]  # context fields this service requires

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": t(f"cds.service.{self.message_key}.title", lang),
            "description": t(f"cds.service.{self.message_key}.description", lang),
            "prefetch": dict(self.prefetch),
        }


SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef(
        "medbrain-order-sign",
        "order-sign",
        "order_sign",
        ORDER_PREFETCH,
        ("userId", "patientId", "draftOrders"),
    ),
    ServiceDef(
        "medbrain-order-select",
        "order-select",
        "order_select",
        ORDER_PREFETCH,
        ("userId", "patientId", "selections", "draftOrders"),
    ),
    ServiceDef(
        "medbrain-patient-view",
        "patient-view",
        "patient_view",
        PATIENT_VIEW_PREFETCH,
        ("userId", "patientId"),
    ),
)
SERVICES_BY_ID: dict[str, ServiceDef] = {s.id: s for s in SERVICES}


def discovery(lang: str = "zh") -> dict[str, Any]:
    """The discovery document ``{"services": [...]}`` (§"Discovery")."""
    return {"services": [s.to_dict(lang) for s in SERVICES]}


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class HookRequest:
    """A validated CDS Hooks call (§"Calling a CDS Service").

    ``draft_orders`` holds the MedicationRequests of ``context.draftOrders`` with, in
    ``draft_paths``, where each sits in the request (for error messages); ``prefetch`` maps
    each given prefetch key to its resources (a key the client sent as ``null`` or left out
    is absent, so the caller can fill it from MedBrain's own store).
    """

    hook: str
    hook_instance: str
    patient_id: str
    user_id: str | None
    encounter_id: str | None
    fhir_server: str | None
    draft_orders: tuple[dict[str, Any], ...] = ()
    draft_paths: tuple[str, ...] = ()
    selections: tuple[str, ...] = ()
    prefetch: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _require_text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        raise InputError(SOURCE, where, "is required")
    if not isinstance(value, str):
        raise InputError(SOURCE, where, "must be a string")
    return value


def _optional_text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(SOURCE, where, "must be a string")
    return value


def _bundle_resources(
    value: Any, where: str, types: frozenset[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """``(path, resource)`` for each entry of a Bundle (or for a lone resource)."""
    if not isinstance(value, Mapping):
        raise InputError(SOURCE, where, "must be a FHIR resource or Bundle (a JSON object)")
    if value.get("resourceType") != "Bundle":
        if not isinstance(value.get("resourceType"), str):
            raise InputError(SOURCE, f"{where}.resourceType", "is required")
        if types is not None and value["resourceType"] not in types:
            return []
        return [(where, dict(value))]
    entries = value.get("entry") or []
    if not isinstance(entries, list):
        raise InputError(SOURCE, f"{where}.entry", "must be an array")
    out: list[tuple[str, dict[str, Any]]] = []
    for n, entry in enumerate(entries):
        path = f"{where}.entry[{n}].resource"
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            raise InputError(SOURCE, path, "is required (a FHIR resource)")
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            raise InputError(SOURCE, f"{path}.resourceType", "is required")
        if types is None or rtype in types:
            out.append((path, dict(resource)))
    return out


def _parse_prefetch(
    raw: Any, keys: Sequence[str], patient_id: str
) -> dict[str, list[dict[str, Any]]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError(SOURCE, "prefetch", "must be an object of prefetch keys")
    out: dict[str, list[dict[str, Any]]] = {}
    for key in keys:
        value = raw.get(key)
        if value is None:  # §"Prefetch": a client that could not fetch sends null or omits it
            continue
        found = _bundle_resources(value, f"prefetch.{key}", PREFETCH_TYPES[key])
        if key == "patient":
            if len(found) != 1:
                raise InputError(SOURCE, "prefetch.patient", "must be one Patient resource")
            path, patient = found[0]
            if patient.get("id") not in (None, patient_id):
                raise InputError(
                    SOURCE,
                    f"{path}.id",
                    f"is {patient.get('id')!r} but context.patientId is {patient_id!r}",
                )
        out[key] = [resource for _path, resource in found]
    return out


def parse_request(body: Any, service: ServiceDef) -> HookRequest:
    """Validate a call to ``service``; refusals name the field (``context.draftOrders``).

    Raises
    ------
    InputError
        A missing or malformed ``hook``, ``hookInstance``, ``context`` field or prefetch.
    """
    if not isinstance(body, Mapping):
        raise InputError(SOURCE, "", "the request body must be a JSON object")
    hook = _require_text(body, "hook", "hook")
    if hook != service.hook:
        raise InputError(
            SOURCE, "hook", f"is {hook!r}; service {service.id} answers {service.hook!r}"
        )
    hook_instance = _require_text(body, "hookInstance", "hookInstance")
    fhir_server = _optional_text(body, "fhirServer", "fhirServer")
    context = body.get("context")
    if context is None:
        raise InputError(SOURCE, "context", "is required")
    if not isinstance(context, Mapping):
        raise InputError(SOURCE, "context", "must be an object")
    for name in service.context:
        if context.get(name) in (None, "", []):
            raise InputError(SOURCE, f"context.{name}", "is required")
    user_id = _optional_text(context, "userId", "context.userId")
    patient_id = _require_text(context, "patientId", "context.patientId")
    encounter_id = _optional_text(context, "encounterId", "context.encounterId")
    drafts: list[tuple[str, dict[str, Any]]] = []
    if "draftOrders" in service.context:
        raw = context["draftOrders"]
        if not isinstance(raw, Mapping) or raw.get("resourceType") != "Bundle":
            raise InputError(SOURCE, "context.draftOrders", "must be a FHIR Bundle")
        drafts = _bundle_resources(raw, "context.draftOrders", frozenset({"MedicationRequest"}))
    selections: tuple[str, ...] = ()
    if "selections" in service.context:
        raw_sel = context["selections"]
        if not isinstance(raw_sel, list) or not all(isinstance(s, str) for s in raw_sel):
            raise InputError(SOURCE, "context.selections", "must be an array of strings")
        selections = tuple(raw_sel)
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        patient_id=patient_id,
        user_id=user_id,
        encounter_id=encounter_id,
        fhir_server=fhir_server,
        draft_orders=tuple(r for _p, r in drafts),
        draft_paths=tuple(p for p, _r in drafts),
        selections=selections,
        prefetch=_parse_prefetch(body.get("prefetch"), list(service.prefetch), patient_id),
    )


# --------------------------------------------------------------------------- engine input


@dataclass(frozen=True, slots=True)
class EngineBundle:
    """A Bundle for an engine, and where each entry came from in the request."""

    bundle: dict[str, Any]
    origins: tuple[str, ...]

    def remap(self, error: InputError) -> InputError:
        """The engine's ``entry[i]...`` field, rewritten to the request's path."""
        match = re.match(r"entry\[(\d+)\](?:\.resource)?(.*)", error.field or "")
        if match is None or int(match.group(1)) >= len(self.origins):
            return InputError(SOURCE, error.field, error.problem)
        return InputError(SOURCE, self.origins[int(match.group(1))] + match.group(2), error.problem)


def engine_bundle(
    resources: Sequence[tuple[str, Mapping[str, Any]]], *, today: date | None = None
) -> EngineBundle:
    """A ``collection`` Bundle of ``(origin, resource)`` pairs, in the order given.

    ``today`` dates the first MedicationRequest that has no ``authoredOn`` (a draft order is
    being signed today), so the rx engine can work out the patient's age.
    """
    entries: list[dict[str, Any]] = []
    dated = today is None
    for _origin, resource in resources:
        res = dict(resource)
        if not dated and res.get("resourceType") == "MedicationRequest":
            dated = True
            if not isinstance(res.get("authoredOn"), str) and today is not None:
                res["authoredOn"] = today.isoformat()
        entries.append({"resource": res})
    return EngineBundle(
        bundle={"resourceType": "Bundle", "type": "collection", "entry": entries},
        origins=tuple(origin for origin, _r in resources),
    )


def order_review_bundle(
    request: HookRequest,
    context_resources: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    today: date | None = None,
) -> EngineBundle:
    """Draft orders first (so rx item *i* is draft order *i*), then the patient's context."""
    pairs: list[tuple[str, Mapping[str, Any]]] = list(
        zip(request.draft_paths, request.draft_orders, strict=True)
    )
    for key in ("patient", "conditions", "allergies", "observations"):
        for n, resource in enumerate(context_resources.get(key, ())):
            pairs.append((f"prefetch.{key}[{n}]", resource))
    return engine_bundle(pairs, today=today)


def patient_view_bundle(
    context_resources: Mapping[str, Sequence[Mapping[str, Any]]],
) -> EngineBundle:
    """One patient's Bundle for the alerts engine."""
    pairs: list[tuple[str, Mapping[str, Any]]] = []
    for key in ("patient", "conditions", "observations", "medications"):
        for n, resource in enumerate(context_resources.get(key, ())):
            pairs.append((f"prefetch.{key}[{n}]", resource))
    return engine_bundle(pairs)


LOINC = "http://loinc.org"


def rare_case_fields(
    context_resources: Mapping[str, Sequence[Mapping[str, Any]]], today: date
) -> dict[str, Any]:
    """A ``medbrain rare rank`` case document from the prefetch: the numeric results whose
    LOINC code the lab → HPO table knows (``labs``, each naming its resource), the
    conditions' text (``text``), sex and age."""
    known = default_lab_hpo().by_loinc
    labs: list[dict[str, Any]] = []
    for n, obs in enumerate(context_resources.get("observations", ())):
        quantity = obs.get("valueQuantity")
        codings = (obs.get("code") or {}).get("coding") or []
        loinc = next(
            (c.get("code") for c in codings if isinstance(c, Mapping) and c.get("system") == LOINC),
            None,
        )
        if not isinstance(quantity, Mapping) or loinc not in known:
            continue
        value = quantity.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            continue
        reference = f"Observation/{obs['id']}" if obs.get("id") else f"prefetch.observations[{n}]"
        labs.append(
            {
                "loinc": loinc,
                "value": float(value),
                "unit": quantity.get("code") or quantity.get("unit"),
                "resource": reference,
            }
        )
    texts = []
    for condition in context_resources.get("conditions", ()):
        code = condition.get("code")
        if not isinstance(code, Mapping):
            continue
        codings = code.get("coding")
        if not isinstance(codings, list):
            codings = []
        text = code.get("text") or next(
            (c["display"] for c in codings if isinstance(c, Mapping) and c.get("display")), None
        )
        if isinstance(text, str) and text.strip():
            texts.append(text.strip())
    fields: dict[str, Any] = {"labs": labs}
    if texts:
        fields["text"] = "。".join(dict.fromkeys(texts))
    patient = next(iter(context_resources.get("patient", ())), None) or {}
    if patient.get("gender") in ("male", "female"):
        fields["sex"] = patient["gender"]
    born = patient.get("birthDate")
    if isinstance(born, str) and len(born) >= 4 and born[:4].isdigit():
        try:
            birth = date.fromisoformat(born) if len(born) == 10 else date(int(born[:4]), 7, 1)
        except ValueError:
            birth = None
        if birth is not None and birth <= today:
            fields["age_years"] = min(130.0, (today - birth).days / 365.25)
    return fields


# --------------------------------------------------------------------------- cards


def truncate(text: str, limit: int = SUMMARY_MAX) -> str:
    """``text`` on one line, at most ``limit`` characters, cut on a word (or, for text without
    spaces such as Chinese, a character) boundary and ended with ``…``."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2 and not flat[limit - 1].isspace():
        cut = cut[:space]
    return cut.rstrip(" ,;:，；：、。.") + "…"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _md(text: str) -> str:
    """Input text shown in markdown literally (no links, emphasis or HTML from the input)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


@dataclass(frozen=True, slots=True)
class CardOptions:
    """What a card needs beyond its finding.

    ``draft_orders`` maps an rx item index to its draft MedicationRequest; ``selections`` are
    the order-select hook's newly selected orders (``MedicationRequest/id``), preferred as the
    order a suggestion removes; ``link_url`` is the absolute MedBrain UI address for the card's
    link.
    """

    lang: str = "zh"
    link_url: str | None = None
    link_label_key: str = "cds.link.inbox"
    draft_orders: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    selections: tuple[str, ...] = ()
    override_reasons: tuple[str, ...] = OVERRIDE_REASON_CODES
    suggestion_categories: frozenset[str] = SUGGESTION_CATEGORIES


def override_reasons(
    lang: str, codes: Sequence[str] = OVERRIDE_REASON_CODES
) -> list[dict[str, str]]:
    """``overrideReasons`` Codings (§"Card Attributes"), displayed in ``lang``."""
    return [
        {"code": code, "system": OVERRIDE_REASON_SYSTEM, "display": t(f"cds.override.{code}", lang)}
        for code in codes
    ]


def _detail(finding: Finding, lang: str) -> str:
    lines = [_md(finding.message)]
    if finding.suggestion:
        lines += ["", f"**{t('cds.detail.suggestion', lang)}:** {_md(finding.suggestion)}"]
    quotes = [e for e in finding.evidence if e.quote]
    if quotes:
        lines += ["", f"**{t('cds.detail.evidence', lang)}:**"]
        for e in quotes:
            where = e.resource or e.document
            suffix = f" ({_md(where)})" if where else ""
            lines.append(f"- “{_md(e.quote or '')}”{suffix}")
    tests = [x for x in finding.extra.get("recommended_tests", []) if isinstance(x, str)]
    if tests:  # alerts findings (DESIGN.md §3 ``alerts evaluate``)
        lines += ["", f"**{t('cds.detail.tests', lang)}:**"] + [f"- {_md(x)}" for x in tests]
    sources = [e.source for e in finding.evidence if e.source]
    if sources:
        lines += ["", f"**{t('cds.detail.source', lang)}:** " + "; ".join(_md(s) for s in sources)]
    if finding.needs_review:
        lines += [
            "",
            f"_{t('cds.detail.needs_review', lang, confidence=f'{finding.confidence:.2f}')}_",
        ]
    return "\n".join(lines)


def _order_ref(resource: Mapping[str, Any]) -> str | None:
    rid = resource.get("id")
    return f"MedicationRequest/{rid}" if isinstance(rid, str) and rid else None


def _drug_name(resource: Mapping[str, Any]) -> str:
    concept = resource.get("medicationCodeableConcept") or {}
    if isinstance(concept, Mapping):
        if isinstance(concept.get("text"), str):
            return str(concept["text"])
        for coding in concept.get("coding") or []:
            if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
                return str(coding["display"])
    return _order_ref(resource) or "MedicationRequest"


def _target_order(finding: Finding, options: CardOptions) -> Mapping[str, Any] | None:
    """The draft order a suggestion acts on: a selected one if any, else the last one named."""
    items = [i for i in finding.extra.get("items", []) if isinstance(i, int)]
    drafts = [options.draft_orders[i] for i in items if i in options.draft_orders]
    drafts = [d for d in drafts if _order_ref(d)]
    if not drafts:
        return None
    selected = [d for d in drafts if _order_ref(d) in options.selections]
    return (selected or drafts)[-1]


def _updated_dose(order: Mapping[str, Any], dose: Any) -> dict[str, Any] | None:
    """A copy of ``order`` with its first dose set to ``dose`` ({value, unit}), or None."""
    if not isinstance(dose, Mapping) or not isinstance(dose.get("value"), int | float):
        return None
    updated = copy.deepcopy(dict(order))
    try:
        quantity = updated["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(quantity, dict):
        return None
    quantity["value"] = dose["value"]
    if isinstance(dose.get("unit"), str):
        quantity["unit"] = dose["unit"]
    return updated


def _suggestions(finding: Finding, options: CardOptions) -> list[dict[str, Any]]:
    """§"Suggestion": remove the offending draft order, or correct its dose.

    A dose finding whose ``extra`` carries ``suggested_dose`` ({value, unit}) becomes an
    ``update`` of the order; every other dose/duplication/interaction finding that names a
    draft order becomes a ``delete`` of it (``resourceId``, §"Action").
    """
    if finding.category not in options.suggestion_categories:
        return []
    order = _target_order(finding, options)
    if order is None:
        return []
    ref = _order_ref(order)
    drug = _drug_name(order)
    action: dict[str, Any]
    updated = (
        _updated_dose(order, finding.extra.get("suggested_dose"))
        if finding.category == "dose"
        else None
    )
    if updated is not None:
        dose = finding.extra["suggested_dose"]
        label = t(
            "cds.suggestion.update",
            options.lang,
            drug=drug,
            dose=dose["value"],
            unit=dose.get("unit", ""),
        )
        action = {"type": "update", "description": truncate(label, LABEL_MAX), "resource": updated}
    else:
        label = t("cds.suggestion.delete", options.lang, drug=drug)
        action = {"type": "delete", "description": truncate(label, LABEL_MAX), "resourceId": ref}
    return [
        {
            "label": truncate(label, LABEL_MAX),
            "uuid": str(uuid_module.uuid4()),
            "isRecommended": True,
            "actions": [action],
        }
    ]


def finding_to_card(
    finding: Finding, options: CardOptions, card_uuid: str | None = None
) -> dict[str, Any]:
    """One finding as one card (STYLE.md §6; CDS Hooks 2.0 §"Card Attributes")."""
    source_text = next((e.source for e in finding.evidence if e.source), None)
    card: dict[str, Any] = {
        "uuid": card_uuid or str(uuid_module.uuid4()),
        "summary": truncate(finding.message),
        "detail": _detail(finding, options.lang),
        "indicator": finding.severity.value,
        "source": {
            "label": truncate(source_text or "MedBrain", LABEL_MAX),
            "topic": {"system": RULE_SYSTEM, "code": finding.rule_id, "display": finding.category},
        },
    }
    suggestions = _suggestions(finding, options)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    if options.override_reasons:
        card["overrideReasons"] = override_reasons(options.lang, options.override_reasons)
    if options.link_url:
        card["links"] = [
            {
                "label": t(options.link_label_key, options.lang),
                "url": options.link_url,
                "type": "absolute",
            }
        ]
    card["extension"] = {
        EXTENSION_KEY: {
            "rule_id": finding.rule_id,
            "category": finding.category,
            "confidence": round(finding.confidence, 4),
            "needs_review": finding.needs_review,
        }
    }
    return card


def involves_selection(finding: Finding, options: CardOptions) -> bool:
    """For order-select: the finding names a newly selected order (or no order at all)."""
    items = [i for i in finding.extra.get("items", []) if isinstance(i, int)]
    if not items or not options.selections:
        return True
    return any(
        _order_ref(options.draft_orders[i]) in options.selections
        for i in items
        if i in options.draft_orders
    )


# --------------------------------------------------------------------------- feedback


@dataclass(frozen=True, slots=True)
class Feedback:
    """One feedback item (§"Feedback")."""

    card: str
    outcome: str  # accepted | overridden
    accepted_suggestions: tuple[str, ...]
    override_code: str | None
    override_display: str | None
    user_comment: str | None
    outcome_timestamp: str | None

    def to_detail(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "acceptedSuggestions": list(self.accepted_suggestions),
            "overrideReason": self.override_code,
            "overrideReasonDisplay": self.override_display,
            "userComment": self.user_comment,
            "outcomeTimestamp": self.outcome_timestamp,
        }


def parse_feedback(body: Any) -> list[Feedback]:
    """Validate a feedback body ``{"feedback": [...]}``.

    MedBrain asks one thing more than the spec, whose ``overrideReason`` is optional: an
    ``overridden`` outcome needs ``overrideReason.reason`` or ``overrideReason.userComment``,
    as every override in MedBrain carries a reason (DESIGN.md §2).

    Raises
    ------
    InputError
        Naming ``feedback[i].card``, ``feedback[i].outcome``, ``feedback[i].overrideReason``...
    """
    if not isinstance(body, Mapping):
        raise InputError(SOURCE, "", "the request body must be a JSON object")
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise InputError(SOURCE, "feedback", "is required (a non-empty array)")
    out: list[Feedback] = []
    for n, item in enumerate(items):
        where = f"feedback[{n}]"
        if not isinstance(item, Mapping):
            raise InputError(SOURCE, where, "must be an object")
        card = _require_text(item, "card", f"{where}.card")
        outcome = _require_text(item, "outcome", f"{where}.outcome")
        if outcome not in ("accepted", "overridden"):
            raise InputError(
                SOURCE, f"{where}.outcome", f"must be accepted or overridden, got {outcome!r}"
            )
        stamp = _optional_text(item, "outcomeTimestamp", f"{where}.outcomeTimestamp")
        if stamp is not None:
            try:
                datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                raise InputError(
                    SOURCE, f"{where}.outcomeTimestamp", "must be an ISO 8601 time"
                ) from None
        accepted: list[str] = []
        raw_accepted = item.get("acceptedSuggestions") or []
        if not isinstance(raw_accepted, list):
            raise InputError(SOURCE, f"{where}.acceptedSuggestions", "must be an array")
        for k, suggestion in enumerate(raw_accepted):
            if not isinstance(suggestion, Mapping) or not isinstance(suggestion.get("id"), str):
                raise InputError(SOURCE, f"{where}.acceptedSuggestions[{k}].id", "is required")
            accepted.append(suggestion["id"])
        code = display = comment = None
        reason = item.get("overrideReason")
        if reason is not None:
            if not isinstance(reason, Mapping):
                raise InputError(SOURCE, f"{where}.overrideReason", "must be an object")
            coding = reason.get("reason")
            if coding is not None:
                if not isinstance(coding, Mapping) or not isinstance(coding.get("code"), str):
                    raise InputError(SOURCE, f"{where}.overrideReason.reason.code", "is required")
                code = coding["code"]
                display = coding.get("display") if isinstance(coding.get("display"), str) else None
            comment = _optional_text(reason, "userComment", f"{where}.overrideReason.userComment")
            comment = (comment or "").strip() or None
        if outcome == "overridden" and code is None and comment is None:
            raise InputError(
                SOURCE,
                f"{where}.overrideReason",
                "an override needs a reason (reason.code or userComment)",
            )
        out.append(
            Feedback(
                card=card,
                outcome=outcome,
                accepted_suggestions=tuple(accepted),
                override_code=code,
                override_display=display,
                user_comment=comment,
                outcome_timestamp=stamp,
            )
        )
    return out
