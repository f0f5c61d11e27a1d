"""Content for micro-randomised experiments the clinic runs on its own messages (``experiments.toml``).

One file, in the built-in defaults and optionally in a clinic's content
directory, with the same override rules as the other content files (same id
replaces, a new id adds, ``enabled = false`` removes). Each ``[[experiment]]``:

* ``id``; ``title`` per language (what the report prints);
* ``running`` -- false unless the clinic sets it: experiments are off by
  default, and the consent text mentions experiments only while one runs;
* ``decision`` -- the decision point that is randomised. The only one is
  ``"nudge"``: the follow-up to a session reminder that got no answer.
  Safety messages, red-flag replies, crisis replies, alerts and check-ins are
  never randomised, so no other value is accepted;
* ``probability`` -- the chance of the treatment arm at each decision point,
  0.1 to 0.9;
* ``control`` -- what the control arm does: ``"skip"`` (no nudge) or
  ``"send"`` (the nudge, with ``control_text`` if given);
* ``treatment_text`` / ``control_text`` -- optional nudge texts per
  language (``{slot}`` is the session time); without them the bot's own
  nudge text is used. Two texts make a framing experiment (A vs B);
* ``outcome_hours`` -- the proximal outcome: the session is logged done or
  partly done within this many hours (1-12) after the decision point.

At most one experiment may run per decision point. Plain Python: no telegram imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rehab_bot.content.schema import (
    LANGUAGES,
    Bool,
    Entry,
    Int,
    Lang,
    SourceFile,
    Str,
    Unchecked,
    check_fields,
    did_you_mean,
    enabled_entries,
    merge,
    optional,
    schema,
)

FILE = "experiments.toml"
DECISIONS = ("nudge",)
CONTROLS = ("skip", "send")
MIN_PROBABILITY, MAX_PROBABILITY = 0.1, 0.9
MAX_OUTCOME_HOURS = 12
PLACEHOLDERS = frozenset({"slot"})
_PLACEHOLDER_RE = re.compile(r"{(\w*)}")


@dataclass(frozen=True)
class Experiment:
    id: str
    title: dict[str, str]
    running: bool
    decision: str
    probability: float  # of the treatment arm
    control: str  # "skip" or "send"
    outcome_hours: int
    treatment_text: dict[str, str] | None = None
    control_text: dict[str, str] | None = None
    source: str = "built-in"


ExperimentSchema = schema(
    "ExperimentSchema",
    id=Str,
    enabled=optional(Bool),
    title=Lang,
    running=optional(Bool),
    decision=Str,
    probability=Unchecked,
    control=Str,
    outcome_hours=Int(1),
    treatment_text=optional(Lang),
    control_text=optional(Lang),
)


def _texts(f: SourceFile, v: dict[str, Any], key: str, path: Any, what: str) -> tuple[dict[str, str] | None, bool]:
    raw = v.get(key)
    if raw is None:
        return None, True
    texts = {lang: raw[lang] for lang in LANGUAGES}
    ok = True
    for lang, text in texts.items():
        unknown = set(_PLACEHOLDER_RE.findall(text)) - PLACEHOLDERS
        if unknown:
            f.at(path, f"{what}: {key}.{lang} has unknown placeholder(s) {sorted(unknown)}; only {{slot}}", key)
            ok = False
    return texts, ok


def _parse(f: SourceFile, raws: list[dict[str, Any]]) -> list[Entry]:
    result: list[Entry] = []
    for entry_id, path, raw in enabled_entries(f, raws, "experiment", result):
        what = f"experiment '{entry_id}'"
        v, ok = check_fields(f, raw, path, what, ExperimentSchema)
        decision = v.get("decision")
        if decision is not None and decision not in DECISIONS:
            f.at(
                path,
                f"{what}: decision {decision!r} cannot be randomised; the only decision point is 'nudge' "
                "(safety messages, red-flag replies, alerts and check-ins are never randomised)",
                "decision",
            )
            ok = False
        control = v.get("control")
        if control is not None and control not in CONTROLS:
            f.at(path, f"{what}: control {control!r} must be one of {', '.join(CONTROLS)}", "control")
            ok = False
        probability = v.get("probability")
        if probability is not None and (
            type(probability) not in (int, float) or not MIN_PROBABILITY <= probability <= MAX_PROBABILITY
        ):
            f.at(
                path,
                f"{what}: probability must be a number from {MIN_PROBABILITY} to {MAX_PROBABILITY}, "
                f"not {probability!r}",
                "probability",
            )
            ok = False
        hours = v.get("outcome_hours")
        if hours is not None and hours > MAX_OUTCOME_HOURS:
            f.at(path, f"{what}: outcome_hours must be at most {MAX_OUTCOME_HOURS}", "outcome_hours")
            ok = False
        treatment_text, t_ok = _texts(f, v, "treatment_text", path, what)
        control_text, c_ok = _texts(f, v, "control_text", path, what)
        if control == "skip" and control_text is not None:
            f.at(path, f"{what}: control = 'skip' sends nothing, so control_text is never shown", "control_text")
            ok = False
        if not (ok and t_ok and c_ok):
            continue
        title = v["title"]
        result.append(
            Entry(
                entry_id,
                Experiment(
                    id=entry_id,
                    title={lang: title[lang] for lang in LANGUAGES},
                    running=v.get("running") or False,
                    decision=v["decision"],
                    probability=float(v["probability"]),
                    control=v["control"],
                    outcome_hours=v["outcome_hours"],
                    treatment_text=treatment_text,
                    control_text=control_text,
                    source=f.source,
                ),
                f,
                path,
            )
        )
    return result


class Loader:
    """Collects experiments.toml across layers; checks that one experiment at most runs per decision point."""

    def __init__(self) -> None:
        self.experiments: dict[str, Entry] = {}
        self.disabled: dict[str, Entry] = {}

    def parse(self, f: SourceFile, data: dict[str, Any]) -> None:
        for key in data:
            if key != "experiment":
                f.at((), f"unknown top-level key '{key}'{did_you_mean(key, ('experiment',))}", key)
        raws = data.get("experiment", [])
        if not isinstance(raws, list) or not all(isinstance(e, dict) for e in raws):
            f.at((), "'experiment' must be a list of [[experiment]] tables", "experiment")
            return
        merge("experiment", self.experiments, _parse(f, raws), self.disabled)

    def finish(self) -> dict[str, Experiment]:
        running: dict[str, Entry] = {}
        for entry in self.experiments.values():
            experiment: Experiment = entry.value
            if not experiment.running:
                continue
            first = running.get(experiment.decision)
            if first is not None:
                entry.file.at(
                    entry.path,
                    f"experiment '{entry.id}' runs at decision point '{experiment.decision}', where "
                    f"'{first.id}' already runs; stop one of them (running = false)",
                    "running",
                )
                continue
            running[experiment.decision] = entry
        return {k: e.value for k, e in self.experiments.items()}
