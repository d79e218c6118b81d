"""The keeper's store: the tables (persistence.tables), the engines and migration
plumbing (persistence.engine), the repository every writer and reader goes through
(persistence.store), backup and restore, and the Alembic migrations. May import
keepers.base only."""
