"""The words of a session reminder: the short reminder, each exercise's card with its dose, and the duration.

One renderer for every place that shows a session: the engine's reminders and
the exercises that ▶ Start sends (rehab_bot/bot/session.py), and the
programme builder's preview of the patient's next reminder
(rehab_bot/programme.py), so the preview says what the patient will read. The
texts come from the i18n catalogues and the clinic's content (exercise names,
instructions, safety notes, phase titles and notes) and, for a patient's own
plan, the therapist's dose and note.

Plain Python: no telegram imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rehab_bot.content import Exercise, localize
from rehab_bot.i18n import t, tn

if TYPE_CHECKING:
    from rehab_bot.programme import PhaseChange

SECONDS_PER_REP = 3  # the movement itself, on top of any hold
REST_BETWEEN_SETS = 30
SETTLE_PER_EXERCISE = 20  # getting into position, reading the card
UNTIMED_MINUTES = 5  # an exercise without repetitions, hold or duration (walking): the shortest advised


def estimated_minutes(exercises: Sequence[Exercise]) -> int:
    """A session's estimated duration in whole minutes (at least 1), from the exercises' doses.

    Per exercise: sets x reps x (hold + 3 s), 30 s rest between sets, 20 s to
    get ready; one with a duration (a plan's) counts sets x duration; one
    without repetitions, hold or duration (walking) counts 5 minutes, one with
    a hold but no repetitions counts sets x hold.
    """
    seconds = 0
    for ex in exercises:
        if ex.duration_seconds is not None:
            seconds += ex.sets * ex.duration_seconds
        elif ex.reps is not None:
            seconds += ex.sets * ex.reps * ((ex.hold_seconds or 0) + SECONDS_PER_REP)
        elif ex.hold_seconds is not None:
            seconds += ex.sets * ex.hold_seconds
        else:
            seconds += UNTIMED_MINUTES * 60
        seconds += (ex.sets - 1) * REST_BETWEEN_SETS + SETTLE_PER_EXERCISE
    return max(1, -(-seconds // 60))


def _duration(lang: str, seconds: int) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return t(lang, "{minutes} min", minutes=seconds // 60)
    return t(lang, "{seconds} s", seconds=seconds)


def dose(lang: str, exercise: Exercise) -> str:
    """ "1 × 10 repetitions, hold 5 s" (empty for an exercise without a count, like walking)."""
    parts = []
    if exercise.reps is not None:
        parts.append(t(lang, "{sets} × {reps} repetitions", sets=exercise.sets, reps=exercise.reps))
    elif exercise.sets > 1:
        parts.append(t(lang, "{sets} sets", sets=exercise.sets))
    if exercise.hold_seconds is not None:
        parts.append(t(lang, "hold {seconds} s", seconds=exercise.hold_seconds))
    if exercise.duration_seconds is not None:
        parts.append(_duration(lang, exercise.duration_seconds))
    return ", ".join(parts)


def note(lang: str, exercise: Exercise) -> str:
    """The therapist's note on this exercise in a patient's own plan, in lang (English fallback; "" without)."""
    return (exercise.note.get(lang) or exercise.note.get("en") or "").strip()


def reminder_text(
    lang: str,
    *,
    slot: str,
    late: bool,
    exercises: list[Exercise],
    change: PhaseChange | None = None,
    session_name: str = "",
    encouragement: str = "",
) -> str:
    """The short session reminder (about 400 characters at most): the session and its time,
    how many exercises and about how long, one line of encouragement; on the first
    reminder of a new phase also what changed. The exercises themselves come with Start."""
    if late:
        header = t(lang, "Sorry, this reminder comes late: your {slot} session.", slot=slot)
    else:
        header = t(lang, "Time for your exercise session ({slot}).", slot=slot)
    summary = tn(
        lang,
        "{n} exercise, about {minutes} min",
        "{n} exercises, about {minutes} min",
        len(exercises),
        n=len(exercises),
        minutes=estimated_minutes(exercises),
    )
    if change is not None and change.title(lang) == session_name:
        session_name = ""  # the new phase's title heads its note below: said once
    parts = [header, f"{session_name}\n{summary}" if session_name else summary]
    if change is not None:
        parts.append(f"🆕 {change.title(lang)}\n{change.note(lang).strip()}")
    if encouragement:
        parts.append(encouragement)
    return "\n\n".join(parts)


def exercise_card(lang: str, number: int, count: int, exercise: Exercise) -> str:
    """One exercise of a session played in the chat: which of how many, name, dose, instructions,
    the therapist's note (a patient's own plan), safety note."""
    amount = dose(lang, exercise)
    head = f"{number}/{count} · {localize(exercise.name, lang)}"
    lines = [head] + ([amount] if amount else []) + ["", localize(exercise.instructions, lang).strip()]
    said = note(lang, exercise)
    if said:
        lines += ["", "📝 " + said]
    safety = localize(exercise.safety_notes, lang).strip() if exercise.safety_notes else ""
    if safety:
        lines += ["", "⚠️ " + safety]
    return "\n".join(lines)
