"""The words of a session reminder: its exercises with their dose, and the reminder itself.

One renderer for every place that shows a session reminder: the engine's
reminders (rehab_bot/bot/session.py), and the programme builder's preview of
the patient's next reminder (rehab_bot/programme.py), so the preview says
exactly what the patient will read. The texts come from the i18n catalogues
and the clinic's content (exercise names, instructions, safety notes, phase
notes) and, for a patient's own plan, the therapist's dose and note.

Plain Python: no telegram imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rehab_bot.content import Exercise, localize
from rehab_bot.i18n import t

if TYPE_CHECKING:
    from rehab_bot.programme import PhaseChange


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


def exercise_block(lang: str, number: int, exercise: Exercise) -> str:
    """One exercise: name and dose, instructions, the therapist's note, safety notes."""
    amount = dose(lang, exercise)
    head = f"{number}. {localize(exercise.name, lang)}" + (f" ({amount})" if amount else "")
    lines = [head, localize(exercise.instructions, lang).strip()]
    note = (exercise.note.get(lang) or exercise.note.get("en") or "").strip()
    if note:
        lines.append("📝 " + note)
    safety = localize(exercise.safety_notes, lang).strip() if exercise.safety_notes else ""
    if safety:
        lines.append("⚠️ " + safety)
    return "\n".join(lines)


def reminder_text(
    lang: str,
    *,
    slot: str,
    late: bool,
    exercises: list[Exercise],
    change: PhaseChange | None = None,
) -> str:
    """The session reminder: header, what changed (on a new phase), the exercises, what to do."""
    if late:
        header = t(lang, "Sorry, this reminder comes late: your {slot} session.", slot=slot)
    else:
        header = t(lang, "Time for your exercise session ({slot}).", slot=slot)
    parts = [header]
    if change is not None:
        parts.append(f"🆕 {change.title(lang)}\n{change.note(lang).strip()}")
    parts.extend(exercise_block(lang, n, ex) for n, ex in enumerate(exercises, start=1))
    parts.append(t(lang, "When you have finished, tap a button below."))
    return "\n\n".join(parts)
