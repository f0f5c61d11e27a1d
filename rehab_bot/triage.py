"""The triage table: every red-flag answer and every alert rule, with its level.

The table is not kept anywhere by hand: it is read off the content
(``questionnaires.toml``), so what docs/SAFETY.md prints (see
:mod:`rehab_bot.safety_doc`) and what the end-to-end tests walk through is
what the bot does.

* :func:`answer_rows`: for each questionnaire with flagged answers (the wound
  and symptom check), every path of answers from a warning sign's first
  question, through its follow-up questions (``when``), to the answer that
  decides how urgent it is. A "no" that opens no follow-up is not a row.
* :func:`rule_rows`: the score and inactivity rules.

Levels (:data:`rehab_bot.content.checkins.LEVELS`): emergency (call the
emergency number now), urgent (contact the clinic today; the emergency number
if it gets worse), routine (the therapist sees it), none.

Plain Python: no telegram imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from rehab_bot.content import Content, localize
from rehab_bot.content.checkins import AlertRule, Item, Option, Questionnaire, level_of
from rehab_bot.i18n import t
from rehab_bot.redflag import reply_id


@dataclass(frozen=True)
class Answer:
    """One answer on a path: the question and the option chosen."""

    item: Item
    option: Option

    def label(self, lang: str = "en") -> str:
        if self.item.yes_no:
            return t(lang, "Yes") if self.option.value else t(lang, "No")
        return localize(self.option.label, lang)


@dataclass(frozen=True)
class Row:
    """One path through a questionnaire that ends in a flagged answer."""

    questionnaire: Questionnaire
    answers: tuple[Answer, ...]

    @property
    def deciding(self) -> Answer:
        return self.answers[-1]

    @property
    def severity(self) -> str | None:
        return self.deciding.option.flag

    @property
    def level(self) -> str:
        return level_of(self.severity)

    @property
    def reply(self) -> str | None:
        """The [[text]] id the patient is shown at once."""
        if self.severity is None:
            return None
        return reply_id(self.deciding.option)

    @property
    def ends(self) -> bool:
        """An emergency answer ends the check-in."""
        return self.severity == "emergency"

    @property
    def id(self) -> str:
        return f"{self.questionnaire.id}:" + ">".join(f"{a.item.id}={a.option.value}" for a in self.answers)


@dataclass(frozen=True)
class RuleRow:
    rule: AlertRule

    @property
    def level(self) -> str:
        return level_of(self.rule.severity)

    @property
    def condition(self) -> str:
        """The rule in plain English, for the table."""
        r = self.rule
        if r.kind == "score_at_least":
            return f"{r.questionnaire} score ≥ {r.threshold:g}"
        if r.kind == "rise":
            return f"{r.questionnaire} ≥ {r.min_score or 0:g} and up {r.rise:g} or more from the previous entry"
        if r.kind == "above_baseline":
            return f"{r.questionnaire} {r.rise:g} or more above the mean of the first {r.days} days"
        if r.kind == "trend":
            return f"{r.questionnaire} daily mean rising {r.days} days in a row, by {r.rise:g} or more"
        if r.kind == "inactive":
            return f"no answer of any kind for {r.hours} h"
        return r.kind


def _follow_ups(questionnaire: Questionnaire, item: Item, value: int) -> list[Item]:
    """The items asked because `item` was answered `value` (their `when` names it)."""
    return [i for i in questionnaire.items if i.when is not None and item.id in i.when and value in i.when[item.id]]


def _is_gate(item: Item) -> bool:
    return any(option.ends for option in item.options)


def _paths(questionnaire: Questionnaire, item: Item, prefix: tuple[Answer, ...]) -> list[tuple[Answer, ...]]:
    paths: list[tuple[Answer, ...]] = []
    for option in sorted(item.options, key=lambda o: -o.value):
        path = (*prefix, Answer(item, option))
        if option.flag is not None:
            paths.append(path)
            continue
        for follow_up in _follow_ups(questionnaire, item, option.value):
            paths.extend(_paths(questionnaire, follow_up, path))
    return paths


def answer_rows(content: Content) -> list[Row]:
    """Every path to a flagged answer, questionnaire by questionnaire, in the order asked."""
    rows: list[Row] = []
    for questionnaire in content.questionnaires.values():
        if not any(o.flag for i in questionnaire.items for o in i.options):
            continue
        for item in questionnaire.items:
            if item.when is not None or _is_gate(item):
                continue
            rows.extend(Row(questionnaire, path) for path in _paths(questionnaire, item, ()))
    return rows


def rule_rows(content: Content) -> list[RuleRow]:
    """The score and inactivity rules, most severe first."""
    order = {"emergency": 0, "critical": 1, "high": 2, "low": 3}
    return sorted((RuleRow(r) for r in content.alert_rules.values()), key=lambda r: order[r.rule.severity])
