"""Persistence: the only package that imports SQLAlchemy and database drivers."""
