"""Policies turn a scan report into allow / warn / block with reasons."""
