"""care-team messages and caregivers: care_message, caregiver, proxy answers

Revision ID: care1
Revises: web1
Create Date: 2026-11-30

Adds care_message (patient <-> care team messages, threaded, with photos)
and caregiver (a person the patient invited, with their permissions), and
marks check-in answers a caregiver gave on the patient's behalf
(answer.proxy, answer.caregiver_id).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rehab_bot.models

revision: str = "care1"
down_revision: str | None = "web1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
    with op.batch_alter_table("caregiver", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_caregiver_code"), ["code"], unique=True)
        batch_op.create_index(batch_op.f("ix_caregiver_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_caregiver_telegram_id"), ["telegram_id"], unique=True)
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
        sa.ForeignKeyConstraint(["read_by"], ["staff.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("care_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_care_message_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_care_message_open", ["direction", "answered_at", "read_at"], unique=False)
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proxy", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(sa.Column("caregiver_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_answer_caregiver_id_caregiver", "caregiver", ["caregiver_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.drop_constraint("fk_answer_caregiver_id_caregiver", type_="foreignkey")
        batch_op.drop_column("caregiver_id")
        batch_op.drop_column("proxy")
    with op.batch_alter_table("care_message", schema=None) as batch_op:
        batch_op.drop_index("ix_care_message_open")
        batch_op.drop_index(batch_op.f("ix_care_message_patient_id"))
    op.drop_table("care_message")
    with op.batch_alter_table("caregiver", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caregiver_telegram_id"))
        batch_op.drop_index(batch_op.f("ix_caregiver_patient_id"))
        batch_op.drop_index(batch_op.f("ix_caregiver_code"))
    op.drop_table("caregiver")
