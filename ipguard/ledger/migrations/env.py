"""Alembic environment: migrations run on the connection the store hands over.

All of them in one transaction, on SQLite too (alembic's default there is a commit per migration):
the store's connections issue their own BEGIN IMMEDIATE, so DDL is transactional, and a second
process opening a fresh ledger at the same moment waits on the write lock and then finds the schema
at head. Committed one by one, two processes interleaved and the later one re-ran a migration the
other had just applied ("table scan_run already exists").
"""

from alembic import context

connection = context.config.attributes["connection"]
sqlite = connection.dialect.name == "sqlite"
context.configure(connection=connection, render_as_batch=sqlite, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
