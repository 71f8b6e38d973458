"""Static pickle analysis: opcode walker, allowlist classification, nested payloads.

Other inspectors call :func:`analyze_pickle_stream` for pickles they find inside
their containers (torch zip/legacy, numpy object arrays, joblib).
"""

from .stream import PickleStreamSummary, analyze_pickle_stream

__all__ = ["PickleStreamSummary", "analyze_pickle_stream"]
