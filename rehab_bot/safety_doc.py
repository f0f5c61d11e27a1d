"""Print the triage table of docs/SAFETY.md from the content, or write it into the file.

    python -m rehab_bot.safety_doc                      # print the table (built-in content)
    python -m rehab_bot.safety_doc --content DIR        # the table with a clinic's content
    python -m rehab_bot.safety_doc --write docs/SAFETY.md   # replace the table in the file

The table sits between the markers ``<!-- triage-table:start -->`` and
``<!-- triage-table:end -->``; tests/test_triage.py fails when the file and the
built-in content disagree. Plain Python: no telegram imports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rehab_bot import crisis
from rehab_bot.content import Content, load_content
from rehab_bot.content.checkins import level_of
from rehab_bot.redflag import session_pain_rules
from rehab_bot.triage import Row, answer_rows, rule_rows

START = "<!-- triage-table:start -->"
END = "<!-- triage-table:end -->"

LEVEL_WORDS = {
    "emergency": "**emergency**: call the emergency number now",
    "urgent": "**urgent**: contact the clinic today; the emergency number if it gets worse",
    "routine": "routine: the therapist sees it",
    "none": "none",
}
FOOTER = {
    "emergency": " + the clinic's `emergency_text`",
    "urgent": " + the clinic's `phone` and `phone_hours`",
    "routine": "",
    "none": "",
}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _path(row: Row) -> str:
    return "; ".join(f"{_first_line(a.item.text['en'])} → **{a.label('en')}**" for a in row.answers)


def table(content: Content) -> str:
    """The triage table as Markdown (English; the patient reads the same texts in their language)."""
    out = [
        "### Answers in the check-ins",
        "",
        "Each row is one path of answers, from a warning sign's first question through its follow-up",
        "questions to the answer that decides the level. The alert goes to the patient's therapist",
        "and the clinic's alert chat; the patient's reply is sent at once, before anything else.",
        "An emergency answer ends the check-in.",
        "",
        "| # | Questionnaire | Answers | Level | Alert severity | Patient is told |",
        "|---|---|---|---|---|---|",
    ]
    for n, row in enumerate(answer_rows(content), 1):
        told = f'`{row.reply}`{FOOTER[row.level]}, "Your care team has been told."'
        out.append(
            f"| {n} | {_cell(row.questionnaire.title['en'])} | {_cell(_path(row))} | {LEVEL_WORDS[row.level]} "
            f"| {row.severity} | {told} |"
        )
    out += [
        "",
        "### Rules on scores and silence",
        "",
        "| Rule | When | Level | Alert severity | Patient is told |",
        "|---|---|---|---|---|",
    ]
    for rule_row in rule_rows(content):
        rule = rule_row.rule
        if rule.kind == "inactive":
            told = "nothing (the care team reaches out)"
        elif rule.message or rule.patient_text:
            parts = []
            if rule.message:
                parts.append(f"«{_cell(_first_line(rule.message['en']))}»")
            if rule.patient_text:
                parts.append(f"`{rule.patient_text}`")
            told = " + ".join(parts) + FOOTER[rule_row.level]
        elif rule_row.level == "routine":
            told = 'no advice, only "Your care team has been told."'
        else:
            told = "`emergency`" + FOOTER[rule_row.level]
        out.append(
            f"| `{rule.id}` | {_cell(rule_row.condition)} | {LEVEL_WORDS[rule_row.level]} | {rule.severity} | {told} |"
        )
    session_rules = session_pain_rules(content)
    if session_rules:
        out += [
            "",
            "### Pain during a session",
            "",
            "The 0-10 the patient gives after Done or Partly (chat or Mini App), held to the pain check-in's",
            "`score_at_least` rules (`redflag.on_session_pain`): one alert per session, and the clinic's",
            "`exercise_pain` text instead of praise (the rule's own text when the content has none).",
            "Below the threshold: praise, no alert.",
            "",
            "| Rule | When | Level | Alert severity | Patient is told |",
            "|---|---|---|---|---|",
        ]
        for rule in session_rules:
            level = level_of(rule.severity)
            message = f"«{_cell(_first_line(rule.message['en']))}» + " if rule.message else ""
            threshold = f"{rule.threshold:g}" if rule.threshold is not None else "?"
            out.append(
                f"| `{rule.id}` | pain during the exercises ≥ {threshold} | {LEVEL_WORDS[level]} "
                f"| {rule.severity} (kind session_pain) "
                f'| {message}`exercise_pain`{FOOTER[level]}, "Your care team has been told." |'
            )
    out += [
        "",
        "### Anything the patient types",
        "",
        "| Trigger | Level | Alert severity | Patient is told |",
        "|---|---|---|---|",
        f"| a crisis phrase (`crisis.toml`) | {LEVEL_WORDS['emergency']} | emergency (kind crisis) "
        f'| `crisis`{FOOTER["emergency"]}, "Your care team has been told." |',
    ]
    if content.concern and crisis.QUESTION in content.texts:
        out.append(
            "| a concern word (`[[concern]]` in `crisis.toml`), no crisis phrase | none until answered: "
            "Yes is a crisis phrase's level, No is no alert | emergency (kind crisis) on Yes; critical "
            "(kind crisis_question) when neither is answered within `[staff] crisis_question_minutes` "
            "| `crisis_question` with Yes and No |"
        )
    return "\n".join(out) + "\n"


def replace_table(document: str, content: Content) -> str:
    """The document with the text between the markers replaced by the current table."""
    if START not in document or END not in document:
        raise ValueError(f"the document has no {START} ... {END} markers")
    head, _, rest = document.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table(content)}{END}{tail}"


def current_table(document: str) -> str:
    """The text between the markers."""
    return document.partition(START)[2].partition(END)[0].removeprefix("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehab_bot.safety_doc", description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=None, help="a clinic content folder (default: built-in)")
    parser.add_argument("--write", type=Path, default=None, help="replace the table in this Markdown file")
    args = parser.parse_args(argv)
    content = load_content(args.content)
    if args.write is None:
        sys.stdout.write(table(content))
        return 0
    document = args.write.read_text(encoding="utf-8")
    args.write.write_text(replace_table(document, content), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
