"""Zip archives: listing (structure, cheap enough for sniffers), checks (reader disagreements as findings),
members (bounded inflation, inspection by content) and the generic zip handler."""
