"""Persistence: SQLAlchemy tables, the engine and its transactions, queries per area.

Store functions take a ``Session`` inside a transaction the service opened; they flush, never
commit, and return domain objects, never rows.
"""
