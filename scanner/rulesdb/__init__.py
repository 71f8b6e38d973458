"""Keeping defences current: signed rule-database bundles and exchangeable known-bad feeds."""
