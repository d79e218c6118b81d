"""Backup and restore of a SQLite store (`ape run keeper backup --to PATH`,
`ape run keeper restore --from PATH`).

Both copy through SQLite's online backup API, never as a file copy: it reads every page
in one read transaction, so the copy is a consistent snapshot even while a keeper
writes (in WAL mode readers never block the writer). The copy goes to a temporary file
beside its destination, is switched to a single self-contained file (rollback journal;
the keeper turns WAL back on when it opens it), checked, flushed to disk and renamed
over the destination: a crash leaves the old file or the new one, never half of one.

A restore first validates the file (SQLite's integrity check; a Sentinel store at a
schema revision this version knows) and refuses while a keeper looks alive in the
target store (an unexpired lease, or a fresh heartbeat of a process that still runs)
unless forced; it drops the leases the backup holds (their keepers are gone), and before
the rename it folds the target's WAL into the old file and removes the -wal and -shm
files, so no stale WAL is replayed onto the restored store.
PostgreSQL stores are refused: pg_dump and pg_restore do this job there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from keepers.base.errors import SentinelError
from keepers.persistence.engine import MIGRATIONS_DIR
from keepers.persistence.store import Store

_WAL_FILES = ("-wal", "-shm")


@dataclass(frozen=True)
class CopyResult:
    """What a backup or restore copied: from where to where, at which schema revision."""

    source: Path
    target: Path
    revision: str
    trades: int


def backup_store(store_url: str, target: Path) -> CopyResult:
    """Copies the store at ``store_url`` to ``target`` (replaced atomically if it exists)."""
    source = sqlite_store_path(store_url, "backup")
    if not source.is_file():
        raise SentinelError(f"store_url: no store at {source}; nothing to back up (check --store-url / store_url)")
    target = Path(target)
    if target.is_dir():
        raise SentinelError(f"--to {target}: is a folder; give the backup's file name")
    if target.resolve() == source.resolve():
        raise SentinelError(f"--to {target}: is the store itself; give another file")
    _copy_database(source, target, restoring=False)
    return _describe(source, target)


def restore_store(store_url: str, source: Path, *, force: bool, now: datetime, fresh_seconds: int) -> CopyResult:
    """Replaces the store at ``store_url`` with the backup ``source``, after validating it
    and (unless ``force``) checking that no keeper is alive in the store; a heartbeat
    counts as alive for ``fresh_seconds``."""
    target = sqlite_store_path(store_url, "restore")
    source = Path(source)
    validate_backup(source)
    if source.resolve() == target.resolve():
        raise SentinelError(f"--from {source}: is the store itself; give a backup file")
    alive = live_keepers(target, now, fresh_seconds)
    if alive and not force:
        raise SentinelError(f"store_url: {alive[0]}; stop the keepers first (or --force if none runs, "
                            "e.g. a lease left by a crashed keeper)")
    _copy_database(source, target, restoring=True)
    return _describe(source, target)


def sqlite_store_path(store_url: str, action: str) -> Path:
    """The file of a SQLite store URL; SentinelError for PostgreSQL or an in-memory store."""
    url = make_url(store_url)
    if url.get_backend_name() != "sqlite":
        raise SentinelError(f"store_url: {action} works on a SQLite store; for a {url.get_backend_name()} store "
                            "use pg_dump / pg_restore")
    if not url.database or url.database == ":memory:":
        raise SentinelError(f"store_url: an in-memory store cannot {action}; give a SQLite file")
    return Path(url.database)


def validate_backup(path: Path) -> None:
    """SentinelError naming the problem unless ``path`` holds a whole Sentinel store at a
    schema revision this version knows."""
    if not path.is_file():
        raise SentinelError(f"--from {path}: no such file")
    hint = "give a file made by `ape run keeper backup`"
    try:
        with contextlib.closing(_read_only(path)) as connection:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = (connection.execute("SELECT version_num FROM alembic_version").fetchone()
                        if "alembic_version" in tables else None)
    except sqlite3.Error as error:
        raise SentinelError(f"--from {path}: not a readable SQLite database ({error}); {hint}") from None
    if problems != ["ok"]:
        raise SentinelError(f"--from {path}: fails SQLite's integrity check ({problems[0]}); use another backup")
    if revision is None:
        raise SentinelError(f"--from {path}: not a Sentinel store (no schema revision); {hint}")
    known = [script.revision for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()]
    if revision[0] not in known:
        raise SentinelError(f"--from {path}: schema revision {revision[0]!r} is not one this version knows "
                            f"({', '.join(sorted(known))}); restore it with the version that made it")


def live_keepers(path: Path, now: datetime, fresh_seconds: int) -> list[str]:
    """Why a keeper may be running on the store at ``path``: unexpired leases, and fresh
    heartbeats of processes that still run (on this host; another host's is taken as
    running). Empty when there is no store or it has no such tables."""
    if not path.is_file():
        return []
    store = Store(create_engine(f"sqlite:///{path.resolve().as_uri()}?mode=ro&uri=true"))
    try:
        leases, beats = store.leases(), store.heartbeats()
    except DBAPIError:  # not a store with leases and heartbeats: no keeper can be on it
        return []
    finally:
        store.close()
    host = socket.gethostname()
    alive = [f"keeper {lease.owner} holds {lease.user_id}'s lease until {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC"
             for lease in leases if lease.expires_at > now]
    alive += [f"keeper {beat.keeper_id} (pid {beat.pid} on {beat.host}) beat "
              f"{(now - beat.last_seen).total_seconds():.0f} s ago"
              for beat in beats if (now - beat.last_seen).total_seconds() <= fresh_seconds
              and (beat.host != host or _process_runs(beat.pid))]
    return alive


def _copy_database(source: Path, target: Path, *, restoring: bool) -> None:
    """Copies ``source`` through the backup API into a checked, flushed temporary file
    beside ``target`` and renames it over ``target``. A restore also drops the copy's
    leases (they belong to keepers that ran when the backup was taken, and would keep
    the next keeper off those users until they expire) and retires the target's WAL."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_beside(target) as temporary:
        with contextlib.closing(_read_only(source)) as reader, contextlib.closing(sqlite3.connect(temporary)) as copy:
            reader.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            if restoring and copy.execute("SELECT 1 FROM sqlite_master WHERE name = 'leases'").fetchone():
                with copy:
                    copy.execute("DELETE FROM leases")
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise SentinelError(f"{source}: the copy fails SQLite's integrity check ({problems[0]}); nothing replaced")
        _fsync(temporary)
        if restoring:
            _retire_wal(target)
        os.replace(temporary, target)
    _fsync(target.parent)


def _retire_wal(target: Path) -> None:
    """Folds the target's WAL into its file and removes the -wal and -shm files."""
    if target.is_file():
        with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(target)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in _WAL_FILES:
        Path(f"{target}{suffix}").unlink(missing_ok=True)


def _describe(source: Path, target: Path) -> CopyResult:
    with contextlib.closing(_read_only(target)) as connection:
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        trades = connection.execute("SELECT count(*) FROM trades").fetchone()[0]
    return CopyResult(source=source, target=target, revision=revision, trades=trades)


def _read_only(path: Path) -> sqlite3.Connection:
    # A URI keeps SQLite from creating a file that is not there; `?` or `#` in a path
    # are escaped by as_uri.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


@contextlib.contextmanager
def _temporary_beside(target: Path) -> Iterator[Path]:
    """A new empty file in the target's folder (same file system: the rename is atomic),
    removed unless it was renamed."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
        for suffix in _WAL_FILES:
            Path(f"{name}{suffix}").unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flushes a file, or a folder's entries, to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as another user
        return True
    return True
