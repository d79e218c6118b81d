"""A decision stored already acted on does not move its user's revision (issue 24).

A cycle whose decisions make no trade stores each of them with its outcome, acted on at
once (keepers/engine/decision_log.py). Such a row changes nothing a cycle reads of its
user: the open decisions are the same, and a pair decided on a bar reads as decided
either way (a second decision of it conflicts with the first). Counting it would make
every new bar re-read a user's whole state for the keeper's own write. An open decision
(``acted`` false), its settling (an update) and a delete still count.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BUMP = ("INSERT INTO user_revisions (user_id, revision) VALUES (NEW.user_id, 1) "
        "ON CONFLICT (user_id) DO UPDATE SET revision = user_revisions.revision + 1;")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER signals_bump_revision ON signals")
        op.execute("CREATE TRIGGER signals_bump_revision AFTER UPDATE OR DELETE ON signals "
                   "FOR EACH ROW EXECUTE FUNCTION sentinel_bump_user_revision()")
        op.execute("CREATE TRIGGER signals_insert_bump_revision AFTER INSERT ON signals "
                   "FOR EACH ROW WHEN (NOT NEW.acted) EXECUTE FUNCTION sentinel_bump_user_revision()")
        return
    op.execute("DROP TRIGGER signals_insert_bump_revision")
    op.execute("CREATE TRIGGER signals_insert_bump_revision AFTER INSERT ON signals "
               f"FOR EACH ROW WHEN NOT NEW.acted BEGIN {BUMP} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER signals_insert_bump_revision ON signals")
        op.execute("DROP TRIGGER signals_bump_revision ON signals")
        op.execute("CREATE TRIGGER signals_bump_revision AFTER INSERT OR UPDATE OR DELETE ON signals "
                   "FOR EACH ROW EXECUTE FUNCTION sentinel_bump_user_revision()")
        return
    op.execute("DROP TRIGGER signals_insert_bump_revision")
    op.execute(f"CREATE TRIGGER signals_insert_bump_revision AFTER INSERT ON signals FOR EACH ROW BEGIN {BUMP} END")
