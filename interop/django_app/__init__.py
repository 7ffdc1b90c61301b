"""A minimal Django project for sessio's live interoperability tests (see ../README.md)."""
