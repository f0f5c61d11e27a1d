"""Learned reminder times against fixed ones: a simulation with synthetic patients who have their own habits.

    python bench/timing_sim.py                 # 1,000 patients x 42 days per scenario, prints a Markdown section
    python bench/timing_sim.py --patients 200 --seed 2

The decision is the bot's own (rehab_bot.timing.decide, with quiet hours
21:30-07:30); only the patients are simulated. The figures depend on the
behaviour model below, which is an assumption, not a measurement of people.

Patients (one session a day, 42 days):

* a habit H, uniform 07:00-20:00; each day they mean to exercise at
  T = H + N(0, s), s uniform 5-25 minutes per patient; on 10 % of days they
  are off their habit (T uniform 07:00-21:00);
* the reminder R: "picked" = the time the patient chose at enrolment, their
  habit give or take up to 3 hours (uniform), kept out of quiet hours;
  "default" = the clinic's 09:00 for everybody;
* a reminder at or before T (a cue in time): they exercise at T with
  probability 0.85 (0.70 when it came more than an hour before T);
* a reminder after T (no cue by then): with probability 0.5 they exercise at T
  anyway (habit), else with probability 0.6 within 20 minutes of the reminder;
* the one nudge goes out 3 hours after the reminder (delivery.nudge_after_hours)
  when the session is still open; a patient who had not exercised yet does so
  within 30 minutes of it with probability 0.3;
* the Done press is at the exercise time; after each logged day the bot
  decides, and a patient asked accepts with probability 0.8 (asked once per
  reminder time, as the bot does).

Measured per reminder sent: the share that arrived within 15 minutes before
the exercise (0 <= exercise - reminder <= 15; a day without exercise is a
miss), over all 42 days and over weeks 4-6 (after the learning), nudges per
completed session, and sessions completed per day.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from datetime import time

from rehab_bot.schedule import QuietHours
from rehab_bot.timing import decide

DAYS = 42
NUDGE_AFTER = 180
QUIET = QuietHours(time(21, 30), time(7, 30))


@dataclass
class Totals:
    reminders: int = 0
    in_time: int = 0  # reminder 0-15 minutes before the exercise
    late_reminders: int = 0  # weeks 4-6 only: after the learning
    late_in_time: int = 0
    done: int = 0
    nudges: int = 0
    moves: int = 0
    asked: int = 0

    def add(self, other: Totals) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def clamp_out_of_quiet(minutes: int) -> int:
    minutes = max(0, min(minutes, 24 * 60 - 5))
    if QUIET.contains(time(minutes // 60, minutes % 60)):
        return 7 * 60 + 30 if minutes < 12 * 60 else 21 * 60 + 25
    return minutes


def one_day(rng: random.Random, habit: int, spread: float, reminder: int) -> tuple[int | None, bool]:
    """(exercise time or None, nudged) for one day."""
    intended = rng.randrange(7 * 60, 21 * 60) if rng.random() < 0.10 else round(rng.gauss(habit, spread))
    done: int | None = None
    if reminder <= intended:
        if rng.random() < (0.85 if intended - reminder <= 60 else 0.70):
            done = intended
    elif rng.random() < 0.5:
        done = intended
    elif rng.random() < 0.6:
        done = reminder + rng.randrange(0, 21)
    nudge_at = reminder + NUDGE_AFTER
    nudged = nudge_at < 24 * 60 and (done is None or done > nudge_at)
    if nudged and done is None and rng.random() < 0.3:
        done = nudge_at + rng.randrange(0, 31)
    if done is not None and done >= 24 * 60:
        done = None  # the day ended first: recorded as missed
    return done, nudged


def patient_run(rng: random.Random, start: str, learned: bool) -> Totals:
    habit = rng.randrange(7 * 60, 20 * 60 + 1, 5)
    spread = rng.uniform(5, 25)
    reminder = 9 * 60 if start == "default" else clamp_out_of_quiet(habit + rng.randrange(-180, 181, 5))
    history: list[int] = []
    asked: set[int] = set()
    totals = Totals()
    for day in range(DAYS):
        done, nudged = one_day(rng, habit, spread, reminder)
        totals.reminders += 1
        totals.nudges += nudged
        late = day >= 21
        totals.late_reminders += late
        if done is not None:
            totals.done += 1
            totals.in_time += 0 <= done - reminder <= 15
            totals.late_in_time += late and 0 <= done - reminder <= 15
            history.append(done)
            if learned and reminder not in asked:
                decision = decide(history, reminder, [], QUIET)
                if decision is not None:
                    asked.add(reminder)
                    totals.asked += 1
                    if rng.random() < 0.8:
                        reminder = decision.to
                        totals.moves += 1
    return totals


def scenario(patients: int, seed: int, start: str, learned: bool) -> Totals:
    rng = random.Random(f"{seed}:{start}")  # the same patients and days for fixed and learned
    totals = Totals()
    for _ in range(patients):
        totals.add(patient_run(rng, start, learned))
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    lines = [
        "| start time | reminders | within 15 min before exercise | same, weeks 4-6 | nudges per completed session "
        "| sessions done per day | questions per patient | moves per patient |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for start in ("picked", "default"):
        for learned in (False, True):
            r = scenario(args.patients, args.seed, start, learned)
            lines.append(
                f"| {start}, {'learned' if learned else 'fixed'} | {r.reminders:,} | {r.in_time / r.reminders:.1%} "
                f"| {r.late_in_time / r.late_reminders:.1%} "
                f"| {r.nudges / max(r.done, 1):.3f} | {r.done / r.reminders:.1%} "
                f"| {r.asked / args.patients:.2f} | {r.moves / args.patients:.2f} |"
            )
    print(f"{args.patients:,} synthetic patients x {DAYS} days per row, seed {args.seed}.\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
