"""caseload_figures: each patient's caseload figures stored, kept current by triggers

Revision ID: wperf1
Revises: taper1
Create Date: 2026-11-30

The web caseload filters and sorts 2,000 patients by figures that took every
patient's sessions, answers and alerts to compute (rehab_bot/caseload_overview.py).
caseload_figures keeps the rules' last output per patient. Triggers on the
tables those figures are read from bump the row's generation and clear
valid_until on every insert, delete or relevant update, whichever code path
or process writes; a new patient gets an empty row. Existing patients get an
empty (stale) row here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "wperf1"
down_revision: str | None = "taper1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables the figures are read from, and the columns whose change matters (any insert or delete does).
WATCHED: dict[str, tuple[str, ...]] = {
    "exercise_session": ("patient_id", "status", "local_date", "answered_at"),
    "answer": ("patient_id", "item_id", "value", "answered_at"),
    "alert": ("patient_id", "acknowledged_at"),
    "note": ("patient_id", "created_at"),
    "lesson_progress": ("patient_id", "lesson_id", "safety", "wrong_answers", "answered_at"),
}
# Inserts that change no figure, so the trigger skips them: the reminder engine opens every session
# pending and unanswered (only resolved sessions and answers count), once per reminder sent.
QUIET_INSERTS = {"exercise_session": "NEW.status <> 'pending' OR NEW.answered_at IS NOT NULL"}
# The patient's own columns the figures and risk rules read (alias, therapist and surgery date are read live).
PATIENT_COLUMNS = ("status", "timezone", "consent_at", "created_at", "last_activity_at")
STALE = "UPDATE caseload_figures SET generation = generation + 1, valid_until = NULL WHERE patient_id = {who}"
NEW_ROW = (
    "INSERT INTO caseload_figures (patient_id, generation, settings_key, open_alerts, lesson_gaps, risk, risk_count) "
    "VALUES ({who}, 0, '', 0, '', '', 0)"
)
BACKFILL = (
    "INSERT INTO caseload_figures (patient_id, generation, settings_key, open_alerts, lesson_gaps, risk, risk_count) "
    "SELECT id, 0, '', 0, '', '', 0 FROM patient"
)


def _sqlite_triggers() -> list[str]:
    statements = []
    for table, columns in WATCHED.items():
        stale_new, stale_old = STALE.format(who="NEW.patient_id"), STALE.format(who="OLD.patient_id")
        when = f" WHEN {QUIET_INSERTS[table]}" if table in QUIET_INSERTS else ""
        statements += [
            f"CREATE TRIGGER cf_{table}_ins AFTER INSERT ON {table}{when} BEGIN {stale_new}; END",
            f"CREATE TRIGGER cf_{table}_del AFTER DELETE ON {table} BEGIN {stale_old}; END",
            f"CREATE TRIGGER cf_{table}_upd AFTER UPDATE OF {', '.join(columns)} ON {table} "
            f"BEGIN {stale_old}; {stale_new}; END",
        ]
    statements += [
        f"CREATE TRIGGER cf_patient_ins AFTER INSERT ON patient BEGIN {NEW_ROW.format(who='NEW.id')}; END",
        f"CREATE TRIGGER cf_patient_upd AFTER UPDATE OF {', '.join(PATIENT_COLUMNS)} ON patient "
        f"BEGIN {STALE.format(who='NEW.id')}; END",
    ]
    return statements


def _postgres_triggers() -> list[str]:
    statements = [
        "CREATE FUNCTION caseload_figures_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {STALE.format(who='OLD.patient_id')}; END IF; "
        "IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.patient_id IS DISTINCT FROM OLD.patient_id) THEN "
        f"{STALE.format(who='NEW.patient_id')}; END IF; "
        "RETURN NULL; END $$",
        "CREATE FUNCTION caseload_figures_patient() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP = 'INSERT' THEN {NEW_ROW.format(who='NEW.id')}; ELSE {STALE.format(who='NEW.id')}; END IF; "
        "RETURN NULL; END $$",
    ]
    for table, columns in WATCHED.items():
        if table in QUIET_INSERTS:
            statements += [
                f"CREATE TRIGGER cf_{table}_ins AFTER INSERT ON {table} FOR EACH ROW "
                f"WHEN ({QUIET_INSERTS[table]}) EXECUTE FUNCTION caseload_figures_touch()",
                f"CREATE TRIGGER cf_{table} AFTER DELETE OR UPDATE OF {', '.join(columns)} ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION caseload_figures_touch()",
            ]
            continue
        statements.append(
            f"CREATE TRIGGER cf_{table} AFTER INSERT OR DELETE OR UPDATE OF {', '.join(columns)} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION caseload_figures_touch()"
        )
    statements.append(
        f"CREATE TRIGGER cf_patient AFTER INSERT OR UPDATE OF {', '.join(PATIENT_COLUMNS)} ON patient "
        "FOR EACH ROW EXECUTE FUNCTION caseload_figures_patient()"
    )
    return statements


def upgrade() -> None:
    op.create_table(
        "caseload_figures",
        sa.Column("patient_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("valid_until", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("settings_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("computed_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("adherence_7d", sa.Float(), nullable=True),
        sa.Column("last_pain", sa.Integer(), nullable=True),
        sa.Column("last_mood", sa.Integer(), nullable=True),
        sa.Column("open_alerts", sa.Integer(), nullable=False),
        sa.Column("lesson_gaps", sa.Text(), nullable=False),
        sa.Column("risk", sa.Text(), nullable=False),
        sa.Column("risk_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.execute(BACKFILL)
    statements = _postgres_triggers() if op.get_bind().dialect.name == "postgresql" else _sqlite_triggers()
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*WATCHED, "patient"):
            op.execute(f"DROP TRIGGER cf_{table} ON {table}")
        for table in QUIET_INSERTS:
            op.execute(f"DROP TRIGGER cf_{table}_ins ON {table}")
        op.execute("DROP FUNCTION caseload_figures_touch()")
        op.execute("DROP FUNCTION caseload_figures_patient()")
    else:
        for table in WATCHED:
            for event in ("ins", "del", "upd"):
                op.execute(f"DROP TRIGGER cf_{table}_{event}")
        op.execute("DROP TRIGGER cf_patient_ins")
        op.execute("DROP TRIGGER cf_patient_upd")
    op.drop_table("caseload_figures")
