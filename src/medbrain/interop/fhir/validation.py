"""Structural validation of FHIR R4 resources with ``fhir.resources`` (R4B models).

Every failure becomes an :class:`~medbrain.core.errors.InputError` whose ``field`` is the
path of the offending element written the way a person reads it
(``entry[3].resource.name[0].given``), so a clinician or an interface engineer can find it
in the file without a traceback.

References
----------
HL7 FHIR R4 (4.0.1) §2.1.0 Resource index; §3.1 Datatypes (date, dateTime, instant regexes);
FHIR R4B (4.3.0) is wire-compatible for the resources MedBrain reads.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource as _FhirResource
from pydantic import ValidationError

from medbrain.core.errors import InputError

_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
# Abstract bases that are valid model names but never a concrete resource on the wire.
_ABSTRACT = frozenset({"Resource", "DomainResource"})


@lru_cache(maxsize=256)
def is_resource_type(name: str) -> bool:
    """True when ``name`` is a concrete FHIR R4 resource type (``Patient``, ``Claim``, ...).

    Data types (``HumanName``) and abstract bases are not resource types.
    """
    if not _TYPE_NAME.match(name) or name in _ABSTRACT:
        return False
    try:
        model = get_fhir_model_class(name)
    except (ValueError, KeyError):
        return False
    return issubclass(model, _FhirResource)


def field_path(prefix: str, loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``("name", 0, "given")`` under ``entry[2].resource`` → ``entry[2].resource.name[0].given``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out = f"{out}.{part}" if out else str(part)
    return out


def _describe(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ").rstrip(".")
    value = error.get("input")
    if isinstance(value, str | int | float | bool) and error.get("type") != "missing":
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "...'"
        message = f"{message} (got {shown})"
    return message


def raise_validation_error(source: str, prefix: str, exc: ValidationError) -> None:
    """Translate the first pydantic error into an ``InputError``; mention how many more."""
    errors = exc.errors()
    if not errors:
        raise InputError(source, prefix, "invalid FHIR content") from None
    first = errors[0]
    problem = _describe(dict(first))
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    raise InputError(source, field_path(prefix, tuple(first["loc"])), problem) from None


def validate_resource(source: str, prefix: str, resource: dict[str, Any]) -> None:
    """Validate one resource against its R4B model; ``prefix`` locates it in the input.

    Raises
    ------
    InputError
        For an unknown ``resourceType`` (not a FHIR R4 resource at all) or any structural
        problem (unknown element, wrong type, bad date, missing required element).
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InputError(source, f"{prefix}.resourceType", "missing resourceType")
    if not is_resource_type(resource_type):
        raise InputError(
            source,
            f"{prefix}.resourceType",
            f"unknown FHIR R4 resource type {resource_type!r}",
        )
    model = get_fhir_model_class(resource_type)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise_validation_error(source, prefix, exc)
    except (TypeError, ValueError, KeyError) as exc:  # fhir.resources' own pre-validators
        raise InputError(source, prefix, f"invalid {resource_type}: {exc}") from None


def validate_envelope(source: str, bundle: dict[str, Any]) -> None:
    """Validate the Bundle itself, with the entries' resources checked separately.

    Stripping ``entry[i].resource`` keeps a bad resource from being reported at a less
    precise path, and lets unknown resource types be named by their entry.
    """
    entries = bundle.get("entry")
    shell = dict(bundle)
    if isinstance(entries, list):
        shell["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in entries
        ]
    model = get_fhir_model_class("Bundle")
    try:
        model.model_validate(shell)
    except ValidationError as exc:
        raise_validation_error(source, "", exc)
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(source, "", f"invalid Bundle: {exc}") from None
