"""Parsers shared by several formats; no module here defines a handler."""
