"""The triage table: content, SAFETY.md, the reply of each level, and one language per patient."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from language_check import content_pairs, foreign_sentences, leaks, msgids

from rehab_bot import i18n, redflag, safety_doc, triage
from rehab_bot.config import LANGUAGES, ClinicConfig
from rehab_bot.content import Content, load_content

ROOT = Path(__file__).resolve().parent.parent
CLINIC = ClinicConfig(
    name="Spine Clinic Nord",
    emergency_text={"en": "Emergency: dial 112 at once, day or night.", "de": "Notfall: Wählen Sie sofort die 112."},
    phone="+49 30 1234 567",
    phone_hours={"en": "Monday to Friday, 8 am to 4 pm", "de": "Montag bis Freitag, 8 bis 16 Uhr"},
)


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(None)


def test_safety_md_prints_the_triage_table_of_the_content(content: Content) -> None:
    document = (ROOT / "docs" / "SAFETY.md").read_text(encoding="utf-8")
    assert safety_doc.current_table(document) == safety_doc.table(content), (
        "docs/SAFETY.md is out of date: run python -m rehab_bot.safety_doc --write docs/SAFETY.md"
    )
    for heading in ("## Intended use", "## Hazard log", "## Regulation", "Rule 11", "Article 5(5)", "## Crisis"):
        assert heading in document


def test_the_table_covers_the_spine_red_flags_with_their_follow_ups(content: Content) -> None:
    rows = {row.id.partition(":")[2]: row for row in triage.answer_rows(content)}
    levels = {path: row.level for path, row in rows.items()}
    # The vignette: new weakness in both legs is an emergency, not "the clinic today".
    assert levels["legs=1>legs_both=1"] == "emergency"
    assert levels["legs=1>legs_both=0>legs_worse=1"] == "emergency", "one leg, getting worse"
    assert levels["legs=1>legs_both=0>legs_worse=0"] == "urgent"
    assert levels["bladder=1"] == levels["chest=1"] == "emergency"
    assert levels["walking=1>walking_worse=0"] == "urgent"
    assert levels["calf=1"] == "urgent"
    assert levels["fever=1>fever_neck=0>fever_wound=1"] == "urgent"
    assert levels["fever=1>fever_neck=1"] == "emergency"
    assert levels["wound=1>wound_what=4"] == "urgent", "clear fluid: a possible CSF leak"
    # The positional headache of a leak is asked of everyone with a sign, with or without fluid at the wound.
    assert levels["headache=1>headache_neck=0"] == "urgent", "possible CSF leak"
    assert levels["headache=1>headache_neck=1"] == "emergency", "possible meningitis"
    assert levels["fall=1>fall_hurt=0"] == levels["pain_meds=1>pain_sudden=0"] == "urgent"
    assert all(row.reply == ("red_flag" if row.level == "emergency" else "red_flag_urgent") for row in rows.values())
    rule_levels = {r.rule.id: r.level for r in triage.rule_rows(content)}
    assert rule_levels["pain-critical"] == rule_levels["phq2-positive"] == "urgent"
    assert rule_levels["gad2-positive"] == rule_levels["no-response"] == "routine"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_level_ends_with_the_clinics_own_text(content: Content, lang: str) -> None:
    told = i18n.t(lang, "Your care team has been told.")
    emergency = redflag.reply_text(redflag.Finding("emergency", ("red_flag",), told_team=True), content, lang, CLINIC)
    assert emergency.startswith(content.text("red_flag", lang).strip())
    assert emergency.endswith(CLINIC.emergency_text[lang] + "\n\n" + told)
    urgent = redflag.reply_text(
        redflag.Finding("critical", ("red_flag_urgent",), told_team=True), content, lang, CLINIC
    )
    assert "+49 30 1234 567" in urgent and CLINIC.phone_hours[lang] in urgent and "Spine Clinic Nord" in urgent
    assert "discharge" not in urgent and "Entlassung" not in urgent, "the clinic's number, not a pointer to papers"
    crisis = redflag.reply_text(redflag.Finding("emergency", ("crisis",), told_team=True), content, lang, CLINIC)
    assert content.text("crisis", lang).strip() in crisis and CLINIC.emergency_text[lang] in crisis and told in crisis
    assert redflag.reply_text(redflag.Finding("low"), content, lang, CLINIC) == "", "routine: the therapist sees it"
    no_phone = redflag.reply_text(
        redflag.Finding("high", ("red_flag_urgent",)), content, lang, dataclasses.replace(CLINIC, phone="")
    )
    assert i18n.t(lang, "Call {clinic} on the number in your discharge papers.", clinic="Spine Clinic Nord") in no_phone


# --------------------------------------------------------------------------- one language per patient


def renders(content: Content, lang: str) -> list[str]:
    """Everything a patient of this language can read: UI strings, content, clinic texts, every reply."""
    out = [i18n.gettext_(lang, msgid) for msgid in msgids()]
    out += [pair[lang] for pair in content_pairs(content)]
    for clinic in (CLINIC, ClinicConfig()):
        out += [clinic.text("emergency_text", lang), clinic.text("phone_hours", lang)]
        for row in triage.answer_rows(content):
            finding = redflag.Finding(row.severity or "low", (row.reply,) if row.reply else (), told_team=True)
            out.append(redflag.reply_text(finding, content, lang, clinic))
        for rule_row in triage.rule_rows(content):
            rule = rule_row.rule
            texts = (rule.patient_text,) if rule.patient_text else ()
            out.append(redflag.reply_text(redflag.Finding(rule.severity, texts, rule.message), content, lang, clinic))
        out.append(redflag.reply_text(redflag.Finding("emergency", ("crisis",)), content, lang, clinic))
    return out


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_patient_message_renders_in_the_patients_language(content: Content, lang: str) -> None:
    foreign = foreign_sentences(content, lang, (CLINIC, ClinicConfig()))
    assert len(foreign) > 200, "the check compares real catalogues"
    leaked = leaks(renders(content, lang), foreign)
    assert not leaked, f"{lang} patients would read: {leaked[:5]}"


def test_every_test_the_hazard_log_names_exists() -> None:
    import re

    document = (ROOT / "docs" / "SAFETY.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", document)
    assert len(named) >= 10
    for path, name in named:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert not name or f"def {name}(" in source, f"{path}::{name} does not exist"
