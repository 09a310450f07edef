"""SQLite storage: one module per table, plain functions taking the database first.

`open_database(path)` gives a ready database (WAL, foreign keys, migrations run).
Every function that returns or deletes a user's data takes that user's id and
filters by it, so a user can only ever reach their own rows.
"""
