"""Integrity: streaming hashes, OpenSSF model-signing manifests, and signature sign/verify.

Wire-compatible with PyPI ``model-signing`` 1.1.1 (Sigstore bundle v0.3, DSSE, in-toto), but
implemented on ``cryptography`` alone so a scanner can verify offline without sigstore/pyOpenSSL.
"""
