"""initial schema: every table, and the installation's own id namespace for FHIR exports

The migration history before the first release, squashed into one revision
(again: it replaces 0001_initial, f6s1, web1, care1, learn1, build1, taper1, wperf1 and xpt1).
Written by Alembic's autogenerate from rehab_bot.models against an empty
database, then reviewed by hand: the server defaults the history gave
columns added to existing rows, the partial claim indexes on delivery
(postgresql_where / sqlite_where), the triggers that keep caseload_figures
current (the caseload's stored figures, rehab_bot/caseload_overview.py), and
the installation row below.
tests/test_migrations.py checks the result against the models on SQLite and
PostgreSQL, and that downgrade to base works.

Revision ID: 0001_squashed
Revises:
Create Date: 2026-11-30
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "0001_squashed"
down_revision: str | None = None
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
        "group_notice",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("noticed_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id"),
    )
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "media_cache",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("file_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "rate_block",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("blocked_until", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.create_table(
        "receiver_lease",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("node", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("acquired_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "send_share",
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("holder"),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_staff_telegram_id"), "staff", ["telegram_id"], unique=True)
    op.create_table(
        "clinic_exercise",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("safety_notes", sa.Text(), nullable=False),
        sa.Column("sets", sa.Integer(), nullable=False),
        sa.Column("reps", sa.Integer(), nullable=True),
        sa.Column("hold_seconds", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("media", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("media_kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=True),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("paused_until", sa.Date(), nullable=True),
        sa.Column("quiet_start", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("quiet_end", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("therapist_id", sa.Integer(), nullable=True),
        sa.Column("surgery_date", sa.Date(), nullable=True),
        sa.Column("surgery_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("programme_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("consent_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("consent_version", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("enrol_step", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""),
        sa.Column("session_times", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""),
        sa.Column("phase_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""),
        sa.Column("unreachable_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("discharged_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("last_activity_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("awaiting", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""),
        sa.Column("awaiting_since", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("tapered_since", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_patient_alias"), "patient", ["alias"], unique=True)
    op.create_index(op.f("ix_patient_status"), "patient", ["status"], unique=False)
    op.create_index(op.f("ix_patient_telegram_id"), "patient", ["telegram_id"], unique=True)
    op.create_index(op.f("ix_patient_therapist_id"), "patient", ["therapist_id"], unique=False)
    op.create_table(
        "experiment_notice",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("told_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ref", sa.Integer(), nullable=True),
        sa.Column("opted_out_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patient_id"),
    )
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
    op.create_table(
        "web_signin",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(op.f("ix_web_signin_staff_id"), "web_signin", ["staff_id"], unique=False)
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("escalated_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_alert_key"),
    )
    op.create_index(op.f("ix_alert_patient_id"), "alert", ["patient_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_log_created_at"), "audit_log", ["created_at"], unique=False)
    op.create_table(
        "care_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("direction", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo_path", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("photo_file_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("photo_bytes", sa.Integer(), nullable=False),
        sa.Column("chat_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("read_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("read_by", sa.Integer(), nullable=True),
        sa.Column("answered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("escalated_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["parent_id"], ["care_message.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["read_by"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_care_message_open", "care_message", ["direction", "answered_at", "read_at"], unique=False)
    op.create_index(op.f("ix_care_message_patient_id"), "care_message", ["patient_id"], unique=False)
    op.create_table(
        "caregiver",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reminders", sa.Boolean(), nullable=False),
        sa.Column("missed", sa.Boolean(), nullable=False),
        sa.Column("emergencies", sa.Boolean(), nullable=False),
        sa.Column("weekly", sa.Boolean(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("consent_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("removed_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_caregiver_code"), "caregiver", ["code"], unique=True)
    op.create_index(op.f("ix_caregiver_patient_id"), "caregiver", ["patient_id"], unique=False)
    op.create_index(op.f("ix_caregiver_telegram_id"), "caregiver", ["telegram_id"], unique=True)
    op.create_table(
        "experiment_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.Integer(), nullable=False),
        sa.Column("decided_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("treated", sa.Boolean(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("local_hour", sa.Integer(), nullable=False),
        sa.Column("programme_day", sa.Integer(), nullable=True),
        sa.Column("adherence", sa.Float(), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=True),
        sa.Column("outcome_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experiment_id", "patient_id", "ref", name="uq_experiment_decision"),
    )
    op.create_index(
        op.f("ix_experiment_decision_experiment_id"), "experiment_decision", ["experiment_id"], unique=False
    )
    op.create_index(op.f("ix_experiment_decision_patient_id"), "experiment_decision", ["patient_id"], unique=False)
    op.create_table(
        "invite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("staff_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("used_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_invite_code"), "invite", ["code"], unique=True)
    op.create_table(
        "motivation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("message_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("sent_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_motivation_log_patient_id"), "motivation_log", ["patient_id"], unique=False)
    op.create_table(
        "note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("crisis", sa.Boolean(), nullable=False),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_note_patient_id"), "note", ["patient_id"], unique=False)
    op.create_table(
        "programme_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("based_on", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id"),
    )
    op.create_table(
        "reminder_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("local_time", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("days", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("every_n_days", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("once", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("next_due_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("next_local_date", sa.Date(), nullable=True),
        sa.Column("last_local_date", sa.Date(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_reminder_rule_next_due_at"), "reminder_rule", ["next_due_at"], unique=False)
    op.create_index(op.f("ix_reminder_rule_patient_id"), "reminder_rule", ["patient_id"], unique=False)
    op.create_table(
        "staff_draft",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("surgery_date", sa.Date(), nullable=True),
        sa.Column("surgery_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("programme_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("staff_id"),
    )
    op.create_table(
        "timing_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("session_index", sa.Integer(), nullable=False),
        sa.Column("from_time", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("to_time", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("usual_time", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("answered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "session_index", "from_time", name="uq_timing_proposal"),
    )
    op.create_index(op.f("ix_timing_proposal_patient_id"), "timing_proposal", ["patient_id"], unique=False)
    op.create_table(
        "timing_window",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("start", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("end", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_table(
        "alert_review",
        sa.Column("alert_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("needed_action", sa.Boolean(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=True),
        sa.Column("slot", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("due_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("not_before", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("claimed_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("sent_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rule_id"], ["reminder_rule.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_delivery_key"),
    )
    op.create_index(
        "ix_delivery_claim",
        "delivery",
        ["priority", "due_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )
    op.create_index(op.f("ix_delivery_patient_id"), "delivery", ["patient_id"], unique=False)
    op.create_index(
        "ix_delivery_queued_not_before",
        "delivery",
        ["not_before"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )
    op.create_index(op.f("ix_delivery_rule_id"), "delivery", ["rule_id"], unique=False)
    op.create_index(
        "ix_delivery_sending",
        "delivery",
        ["chat_id", "claimed_at"],
        unique=False,
        postgresql_where=sa.text("status = 'sending'"),
        sqlite_where=sa.text("status = 'sending'"),
    )
    op.create_table(
        "checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("questionnaire_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("completed_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("local_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_checkin_patient_id"), "checkin", ["patient_id"], unique=False)
    op.create_table(
        "exercise_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("slot", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("phase_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("effort", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pain", sa.Integer(), nullable=True),
        sa.Column("skip_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("answered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("snoozed_until", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("nudged_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "local_date", "slot", name="uq_session_slot"),
    )
    op.create_index(op.f("ix_exercise_session_patient_id"), "exercise_session", ["patient_id"], unique=False)
    op.create_index("ix_exercise_session_status_date", "exercise_session", ["status", "local_date"], unique=False)
    op.create_table(
        "lesson_progress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("lesson_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("safety", sa.Boolean(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("local_date", sa.Date(), nullable=True),
        sa.Column("delivered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("offered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("opened_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.Column("first_answer", sa.Integer(), nullable=True),
        sa.Column("last_answer", sa.Integer(), nullable=True),
        sa.Column("wrong_answers", sa.Integer(), nullable=False),
        sa.Column("understood", sa.Boolean(), nullable=False),
        sa.Column("answered_at", rehab_bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "lesson_id", name="uq_lesson_progress"),
    )
    op.create_index(op.f("ix_lesson_progress_patient_id"), "lesson_progress", ["patient_id"], unique=False)
    op.create_table(
        "answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("answered_at", rehab_bot.models.UTCDateTime(), nullable=False),
        sa.Column("proxy", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("caregiver_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregiver.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkin.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("checkin_id", "item_id", name="uq_answer_item"),
    )
    op.create_index(op.f("ix_answer_checkin_id"), "answer", ["checkin_id"], unique=False)
    op.create_index(op.f("ix_answer_patient_id"), "answer", ["patient_id"], unique=False)
    op.create_index("ix_answer_patient_item_time", "answer", ["patient_id", "item_id", "answered_at"], unique=False)
    # caseload_figures is kept current by triggers on the tables its figures are read from (above).
    statements = _postgres_triggers() if op.get_bind().dialect.name == "postgresql" else _sqlite_triggers()
    for statement in statements:
        op.execute(statement)
    # Generated here, at the first upgrade, so the id namespace exists from the first start.
    op.bulk_insert(
        installation,
        [{"id": 1, "namespace": str(uuid.uuid4()), "created_at": datetime.now(UTC)}],
    )


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
    op.drop_table("experiment_notice")
    op.drop_index("ix_answer_patient_item_time", table_name="answer")
    op.drop_index(op.f("ix_answer_patient_id"), table_name="answer")
    op.drop_index(op.f("ix_answer_checkin_id"), table_name="answer")
    op.drop_table("answer")
    op.drop_index(op.f("ix_lesson_progress_patient_id"), table_name="lesson_progress")
    op.drop_table("lesson_progress")
    op.drop_index("ix_exercise_session_status_date", table_name="exercise_session")
    op.drop_index(op.f("ix_exercise_session_patient_id"), table_name="exercise_session")
    op.drop_table("exercise_session")
    op.drop_index(op.f("ix_checkin_patient_id"), table_name="checkin")
    op.drop_table("checkin")
    op.drop_index(
        "ix_delivery_sending",
        table_name="delivery",
        postgresql_where=sa.text("status = 'sending'"),
        sqlite_where=sa.text("status = 'sending'"),
    )
    op.drop_index(op.f("ix_delivery_rule_id"), table_name="delivery")
    op.drop_index(
        "ix_delivery_queued_not_before",
        table_name="delivery",
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )
    op.drop_index(op.f("ix_delivery_patient_id"), table_name="delivery")
    op.drop_index(
        "ix_delivery_claim",
        table_name="delivery",
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )
    op.drop_table("delivery")
    op.drop_table("alert_review")
    op.drop_table("timing_window")
    op.drop_index(op.f("ix_timing_proposal_patient_id"), table_name="timing_proposal")
    op.drop_table("timing_proposal")
    op.drop_table("staff_draft")
    op.drop_index(op.f("ix_reminder_rule_patient_id"), table_name="reminder_rule")
    op.drop_index(op.f("ix_reminder_rule_next_due_at"), table_name="reminder_rule")
    op.drop_table("reminder_rule")
    op.drop_table("programme_plan")
    op.drop_index(op.f("ix_note_patient_id"), table_name="note")
    op.drop_table("note")
    op.drop_index(op.f("ix_motivation_log_patient_id"), table_name="motivation_log")
    op.drop_table("motivation_log")
    op.drop_index(op.f("ix_invite_code"), table_name="invite")
    op.drop_table("invite")
    op.drop_index(op.f("ix_experiment_decision_patient_id"), table_name="experiment_decision")
    op.drop_index(op.f("ix_experiment_decision_experiment_id"), table_name="experiment_decision")
    op.drop_table("experiment_decision")
    op.drop_index(op.f("ix_caregiver_telegram_id"), table_name="caregiver")
    op.drop_index(op.f("ix_caregiver_patient_id"), table_name="caregiver")
    op.drop_index(op.f("ix_caregiver_code"), table_name="caregiver")
    op.drop_table("caregiver")
    op.drop_index(op.f("ix_care_message_patient_id"), table_name="care_message")
    op.drop_index("ix_care_message_open", table_name="care_message")
    op.drop_table("care_message")
    op.drop_index(op.f("ix_audit_log_created_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_alert_patient_id"), table_name="alert")
    op.drop_table("alert")
    op.drop_index(op.f("ix_web_signin_staff_id"), table_name="web_signin")
    op.drop_table("web_signin")
    op.drop_index(op.f("ix_patient_therapist_id"), table_name="patient")
    op.drop_index(op.f("ix_patient_telegram_id"), table_name="patient")
    op.drop_index(op.f("ix_patient_status"), table_name="patient")
    op.drop_index(op.f("ix_patient_alias"), table_name="patient")
    op.drop_table("patient")
    op.drop_table("clinic_exercise")
    op.drop_index(op.f("ix_staff_telegram_id"), table_name="staff")
    op.drop_table("staff")
    op.drop_table("send_share")
    op.drop_table("receiver_lease")
    op.drop_table("rate_block")
    op.drop_table("media_cache")
    op.drop_table("installation")
    op.drop_table("group_notice")
