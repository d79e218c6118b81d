"""User revisions (issue 24, incremental state): ``user_revisions`` counts the writes to
each user's state, so that a keeper holding a user's rows in memory can tell with one
indexed read whether anything changed since it read them.

Every table a cycle reads of its user has triggers that bump the user's counter (the
global kill switch's rows bump GLOBAL_USER's) on insert, update and delete, whoever
writes: the keeper, another worker, the status page's controls, the command line, a
rebuild. A trigger rather than code in each store method: a write that forgot to count
would leave a keeper acting on stale state.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The tables a cycle reads of its user (Store.user_rows, Store.decision_view's signals).
COUNTED_TABLES = ("trades", "signals", "positions", "risk_trades", "risk_locks", "risk_clears", "risk_peaks",
                  "exit_marks", "control_actions")
EVENTS = ("INSERT", "UPDATE", "DELETE")
BUMP = ("INSERT INTO user_revisions (user_id, revision) VALUES ({row}.user_id, 1) "
        "ON CONFLICT (user_id) DO UPDATE SET revision = user_revisions.revision + 1;")


def upgrade() -> None:
    op.create_table(
        "user_revisions",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION sentinel_bump_user_revision() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'INSERT' THEN {BUMP.format(row="OLD")} END IF;
                IF TG_OP <> 'DELETE' THEN {BUMP.format(row="NEW")} END IF;
                RETURN NULL;
            END $$""")
        for table in COUNTED_TABLES:
            op.execute(f"CREATE TRIGGER {table}_bump_revision AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION sentinel_bump_user_revision()")
        return
    for table in COUNTED_TABLES:
        for event in EVENTS:
            rows = {"INSERT": ("NEW",), "UPDATE": ("OLD", "NEW"), "DELETE": ("OLD",)}[event]
            op.execute(f"CREATE TRIGGER {table}_{event.lower()}_bump_revision AFTER {event} ON {table} "
                       f"FOR EACH ROW BEGIN {' '.join(BUMP.format(row=row) for row in rows)} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in COUNTED_TABLES:
            op.execute(f"DROP TRIGGER {table}_bump_revision ON {table}")
        op.execute("DROP FUNCTION sentinel_bump_user_revision()")
    else:
        for table in COUNTED_TABLES:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER {table}_{event.lower()}_bump_revision")
    op.drop_table("user_revisions")
