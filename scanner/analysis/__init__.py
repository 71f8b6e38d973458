"""Analyses shared by several format inspectors (chat templates embedded in GGUF, tokenizer configs ...)."""
