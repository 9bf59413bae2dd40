"""Engine and transactions: SQLite (WAL, one writer at a time) or PostgreSQL."""

from __future__ import annotations

import functools
import threading
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnDefault,
    Executable,
    Insert,
    Table,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, Dialect, Engine, Result
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from postdesk.config.errors import TemporaryFailure

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


BUSY_SECONDS = 30
"""How long a writer waits for SQLite's write lock before the work is a temporary failure."""


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL with durable commits and ``BEGIN IMMEDIATE`` so
    writers queue, not fail."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": BUSY_SECONDS, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: every commit reaches the disk before it returns, so a message answered
            # 250 (or exit 0) survives a power cut; NORMAL could roll its rows back.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            _on_driver(conn, "BEGIN IMMEDIATE", ())

    else:
        engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    _savepoints_on_driver(engine.dialect)
    return engine


def _savepoints_on_driver(dialect: Dialect) -> None:
    """Each message's savepoint is begun and released on the driver's cursor: SQLAlchemy
    compiles and executes every one as a new statement (their names differ), 6 % of the
    instructions of a message. SQLAlchemy still keeps the nesting and names them
    (``sa_savepoint_N``); the dialect's own methods are replaced on this engine's instance
    (SQLAlchemy has no event that could stand in for them)."""

    def begin(conn: Connection, name: str) -> None:
        _on_driver(conn, f"SAVEPOINT {name}", ())

    def release(conn: Connection, name: str) -> None:
        _on_driver(conn, f"RELEASE SAVEPOINT {name}", ())

    def roll_back(conn: Connection, name: str) -> None:
        _on_driver(conn, f"ROLLBACK TO SAVEPOINT {name}", ())

    dialect.do_savepoint = begin  # type: ignore[method-assign,assignment]
    dialect.do_release_savepoint = release  # type: ignore[method-assign,assignment]
    dialect.do_rollback_to_savepoint = roll_back  # type: ignore[method-assign,assignment]


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


class Database:
    """The engine plus a session factory; ``transaction()`` is the only way to write."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._turn = threading.RLock() if not is_postgres(self.engine) else None
        """SQLite takes one writer at a time, and every transaction of ours writes or may
        (BEGIN IMMEDIATE). The threads of one process (the listener's writer, the sender,
        the IMAP pollers, the sweeps) wait their turn here, woken as soon as it is theirs:
        SQLite's own wait polls with sleeps of 1 to 100 ms, and a busy writer that begins
        its next group at once kept the sender from its claims for up to 1.4 s. Other
        processes still meet SQLite's wait. Reentrant, so that a transaction opened inside
        another in one thread meets SQLite's lock as before."""

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Commit on success, roll back on error; an unreachable database is temporary."""
        with unavailable_is_temporary(), self._my_turn(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with unavailable_is_temporary(), self._my_turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _my_turn(self) -> Iterator[None]:
        if self._turn is None:
            yield
            return
        if not self._turn.acquire(timeout=BUSY_SECONDS):
            raise TemporaryFailure(
                f"database unavailable: another thread held it for {BUSY_SECONDS} s"
            )
        try:
            yield
        finally:
            self._turn.release()

    def dispose(self) -> None:
        self.engine.dispose()


def run(session: Session, statement: Executable, params: dict[str, Any]) -> Result[Any]:
    """Run a prebuilt column query or table statement on the session's connection: for one
    with an expanding IN, whose SQL depends on how many values come; `query` runs the others.

    The ORM's own execution of such a statement costs more than the database does for
    the ones each message asks. Pending rows are flushed first, as autoflush would."""
    if session.autoflush:
        session.flush()
    return session.connection().execute(statement, params)


def query(session: Session, statement: ClauseElement, params: dict[str, Any]) -> list[Any]:
    """The rows of a prebuilt statement (a query, or a write that returns rows), each a named
    tuple of its columns as SQLAlchemy would give them, its SQL compiled once per dialect and
    run on the driver's cursor (`_on_driver`): through SQLAlchemy, each such statement cost
    ten times what SQLite does for it. Its parameters are named binds, or values it holds
    (``literal``), not an expanding IN. Pending rows are flushed first, as in `run`."""
    if session.autoflush:
        session.flush()
    conn = session.connection()
    prepared = _compiled(conn.dialect, statement)
    found = _on_driver(conn, prepared.sql, prepared.params(params))
    return [prepared.row(row) for row in found]


def insert_row(session: Session, row: DeclarativeBase) -> int:
    """Insert an ORM object's row with one statement and return its id; the object itself
    stays out of the session, a record of what was written.

    Flushing objects cost more than every statement of a message together. Every column
    must be set on ``row``: one left unset is written as NULL, not as its default.
    """
    table = table_of(type(row))
    given = vars(row)  # the instance's dict: an attribute never set reads as None
    values = {key: given.get(key) for key in _written(table)}
    row_id = insert_values(session.connection(), table, values)
    row.id = row_id  # type: ignore[attr-defined]
    return row_id


def table_of(model: type[DeclarativeBase]) -> Table:
    """A model's table, typed as the table it is (declarative models say only FromClause)."""
    return cast(Table, model.__table__)


def insert_values(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    """Insert one row of ``table`` and return its id, with SQL compiled once per table and
    set of columns (``_prepared``). Columns left out get their defaults: a fixed one the
    compiled statement holds; one computed per row (``default=list``) only SQLAlchemy's
    execution gives."""
    keys = tuple(values)
    if _default_per_row(table, keys):
        key = conn.execute(_insert(table), values).inserted_primary_key
        assert key is not None
        return int(key[0])
    prepared = _prepared(conn.dialect, table, "insert", keys)
    return int(_on_driver(conn, prepared.sql, prepared.params(values))[0][0])


def update_values(conn: Connection, table: Table, row_id: int, values: dict[str, Any]) -> None:
    """Change the named columns of one row of ``table``, found by its id."""
    prepared = _prepared(conn.dialect, table, "update", tuple(values))
    _on_driver(conn, prepared.sql, prepared.params({"row_id": row_id, **values}))


def insert_many(conn: Connection, statement: Insert, rows: Sequence[dict[str, Any]]) -> None:
    """Run a prebuilt INSERT that returns nothing once per row, as one ``executemany`` on the
    driver's cursor: through SQLAlchemy, a group's rows cost a group's lone message."""
    if rows:
        prepared = _compiled(conn.dialect, statement)
        _on_driver(conn, prepared.sql, [prepared.params(row) for row in rows])


Params = tuple[Any, ...] | dict[str, Any]


def _on_driver(conn: Connection, sql: str, params: Params | list[Params]) -> list[Any]:
    """Run ``sql`` (a `Prepared` statement's with the parameters it made, a savepoint's, or
    BEGIN) on the driver's own cursor, in the connection's transaction, and return the rows
    it returned, as the driver gives them; a list of parameters runs it once for each.
    SQLAlchemy's execution of even a plain string (``exec_driver_sql``) cost a tenth of the
    instructions of a message, for the seven or eight rows each message writes. What it
    does that matters stays: the engine's ``before_cursor_execute`` listeners see the
    statement, and a driver error is raised as SQLAlchemy's (IntegrityError,
    OperationalError...), a lost connection invalidated first."""
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        many = isinstance(params, list)
        if conn.dispatch.before_cursor_execute:
            conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, many)
        if many:
            cursor.executemany(sql, cast(Sequence[Sequence[Any]], params))
        else:
            cursor.execute(sql, cast(Params, params))
        return list(cursor.fetchall()) if cursor.description else []
    except conn.dialect.loaded_dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, dbapi_conn, cursor)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            params,
            exc,
            conn.dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=conn.dialect,
        ) from exc
    finally:
        cursor.close()


@dataclass(frozen=True)
class Prepared:
    """A statement compiled for one dialect, run as its SQL text with the values each of its
    parameters' types turns into what the driver takes, and its rows turned into what each
    column's type reads. SQLAlchemy's own execution of a cached statement looks it up and
    processes its parameters anew every time: it cost twice what the database does for the
    rows a message writes."""

    sql: str
    names: tuple[str, ...]
    converted: tuple[tuple[int, Callable[[Any], Any]], ...]
    """The parameters whose type turns the value into another (by position in ``names``):
    most pass as they are."""
    positional: bool
    held: Mapping[str, Any]
    """The values the statement holds itself (a ``literal``, a constant in a WHERE)."""
    readers: tuple[Callable[[Any], Any] | None, ...]
    columns: type[tuple[Any, ...]]

    def params(self, values: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        given = {**self.held, **values} if self.held else values
        found = list(map(given.__getitem__, self.names))
        for i, process in self.converted:
            found[i] = process(found[i])
        return tuple(found) if self.positional else dict(zip(self.names, found, strict=True))

    def row(self, found: Sequence[Any]) -> Any:
        return self.columns(
            *(
                value if read is None or value is None else read(value)
                for read, value in zip(self.readers, found, strict=True)
            )
        )


@functools.cache
def _prepared(dialect: Dialect, table: Table, kind: str, keys: tuple[str, ...]) -> Prepared:
    """An INSERT of ``keys`` that returns the new id, or an UPDATE of ``keys`` by id."""
    binds = typed_binds(table, keys)
    statement = (
        table.insert().values(binds).returning(table.c.id)
        if kind == "insert"
        else table.update().where(table.c.id == bindparam("row_id")).values(binds)
    )
    return _compiled(dialect, statement)


def typed_binds(table: Table, keys: Sequence[str]) -> dict[str, BindParameter[Any]]:
    """A named parameter per column, of the column's type, for ``values()`` of a statement
    compiled once: its values then go through the type's processing, as SQLAlchemy's own."""
    return {key: bindparam(key, type_=table.c[key].type) for key in keys}


@functools.cache
def _written(table: Table) -> tuple[str, ...]:
    """The columns an inserted row gives, all but its id; asked of every insert."""
    return tuple(c.key for c in table.columns if not c.primary_key)


@functools.cache
def _default_per_row(table: Table, keys: tuple[str, ...]) -> bool:
    """Whether a column left out of ``keys`` has a default computed per row."""
    return any(
        c.default is not None and not _fixed_default(c) for c in table.columns if c.key not in keys
    )


def _fixed_default(column: Column[Any]) -> bool:
    return isinstance(column.default, ColumnDefault) and column.default.is_scalar


@functools.cache
def _compiled(dialect: Dialect, statement: ClauseElement) -> Prepared:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    if compiled.positiontup is not None:
        names = tuple(compiled.positiontup)
    else:
        names = tuple(dict.fromkeys(compiled.bind_names.values()))
    binds = compiled.binds
    if any(binds[name].expanding for name in names):
        raise ValueError("an expanding IN has no SQL of its own: run() it")
    processors = [binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    converted = tuple((i, process) for i, process in enumerate(processors) if process is not None)
    held = {name: binds[name].value for name in names if not binds[name].required}
    for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
        # a column the statement leaves out takes its default, as SQLAlchemy would set it
        if not _fixed_default(column):
            raise ValueError(f"{column} has no fixed default: give it a value")
        held[column.key] = cast(ColumnDefault, column.default).arg
    exported = list(getattr(statement, "exported_columns", ()))
    readers = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in exported
    )
    columns = namedtuple("Row", [column.key for column in exported], rename=True)  # type: ignore[misc]
    return Prepared(
        compiled.string,
        names,
        converted,
        compiled.positiontup is not None,
        held,
        readers,
        columns,
    )


def dialect_insert(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that can say ON CONFLICT: SQLite and PostgreSQL spell it the same way.
    Each dialect's module is imported by the first statement for it: PostgreSQL's (with
    the drivers it knows) costs an SQLite installation's start-up more than its own."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@functools.cache
def _insert(table: Table) -> Insert:
    """Built once per table: building a statement costs more than running it."""
    return table.insert()


@contextmanager
def unavailable_is_temporary() -> Iterator[None]:
    try:
        yield
    except (OperationalError, DBAPIError) as exc:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise TemporaryFailure(f"database unavailable: {first_line(exc)}") from exc
        raise


def first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
