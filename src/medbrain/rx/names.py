"""Drug-name resolution: Chinese/English generic names, brands and synonyms.

Names are normalised (NFKC full-width → half-width, lower case, no spaces), then tried as
written, without parenthesised specs and strengths, without dosage-form words
(``胶囊``, ``注射用`` …) and without salt words (``盐酸``, ``钠``, ``hydrochloride`` …).

References
----------
《中国药品通用名称命名原则》(国家药典委员会): salt and dosage-form naming conventions;
Unicode Standard Annex #15 (NFKC normalisation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medbrain.rx.knowledge import RxKnowledge, normalize_text

_PARENS = re.compile(r"[\(\[（【{].*?[\)\]）】}]")
_STRENGTH = re.compile(
    r"\d+(?:\.\d+)?(?:万u|万iu|mg|g|ug|µg|μg|mcg|iu|u|ml|%)(?:[:/×x*]\d+(?:\.\d+)?(?:mg|g|ml|片|粒|支|袋)?)*"
)
_SALT_PREFIXES = (
    "硫酸氢",
    "盐酸",
    "硫酸",
    "磷酸",
    "马来酸",
    "苯磺酸",
    "甲磺酸",
    "琥珀酸",
    "酒石酸",
    "富马酸",
    "枸橼酸",
    "草酸",
    "氢溴酸",
    "醋酸",
    "乳糖酸",
    "乳酸",
    "注射用",
)
_SALT_SUFFIXES = ("钠", "钾", "钙", "镁", "酯")
_EN_SUFFIXES = (
    "hydrochloride",
    "hcl",
    "sodium",
    "potassium",
    "calcium",
    "magnesium",
    "maleate",
    "besylate",
    "besilate",
    "succinate",
    "tartrate",
    "mesylate",
    "phosphate",
    "sulfate",
    "forinjection",
    "injection",
    "tablets",
    "tablet",
    "capsules",
    "capsule",
    "oralsuspension",
    "extended-release",
    "er",
    "sr",
    "xr",
    "cr",
    "mr",
)


@dataclass(frozen=True, slots=True)
class Resolution:
    """How a written name was matched: the drug id and the step that matched."""

    drug_id: str
    method: str  # exact | spec | form | salt


def _strip_forms(text: str, kb: RxKnowledge) -> str:
    changed = True
    while changed:
        changed = False
        for word, _form in kb.vocab.form_words:
            if text.startswith(word) and len(text) > len(word):
                text, changed = text[len(word) :], True
            elif text.endswith(word) and len(text) > len(word):
                text, changed = text[: -len(word)], True
    return text


def _strip_salts(text: str) -> list[str]:
    out = []
    for prefix in _SALT_PREFIXES:
        if text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix) :]
            out.append(text)
    for suffix in _SALT_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix) + 1:
            out.append(text[: -len(suffix)])
    stripped = text
    changed = True
    while changed:
        changed = False
        for suffix in _EN_SUFFIXES:
            if stripped.endswith(suffix) and len(stripped) > len(suffix) + 2:
                stripped, changed = stripped[: -len(suffix)].rstrip("-"), True
    out.append(stripped)
    return out


def resolve_name(name: str, kb: RxKnowledge) -> Resolution | None:
    """Resolve a written drug name to a dictionary drug, or None if unknown.

    An eye/ear/nasal product (``滴眼液`` …) never resolves to a drug that cannot be given by
    that route (a systemic row): it is a product of its own, else unknown.
    """
    found = _resolve(name, kb)
    if found is None:
        return None
    form = _local_form(normalize_text(name), kb)
    if form is not None:
        routes = kb.vocab.form_routes.get(form, ())
        if not set(routes) & set(kb.drugs[found.drug_id].routes):
            return None
    return found


def _local_form(text: str, kb: RxKnowledge) -> str | None:
    for word, form in kb.vocab.local_form_words:
        if word in text:
            return form
    return None


def _resolve(name: str, kb: RxKnowledge) -> Resolution | None:
    names = kb.names
    text = normalize_text(name)
    if text in names:
        return Resolution(names[text], "exact")
    spec = _STRENGTH.sub("", _PARENS.sub("", text))
    if spec in names:
        return Resolution(names[spec], "spec")
    form = _strip_forms(spec, kb)
    if form in names:
        return Resolution(names[form], "form")
    for candidate in (*_strip_salts(form), *_strip_salts(spec)):
        if candidate in names:
            return Resolution(names[candidate], "salt")
        again = _strip_forms(candidate, kb)
        if again in names:
            return Resolution(names[again], "salt")
    return None
