"""Static pickle analysis: opcode walker, allowlist classification, nested payloads.

The walker (``walker.py``) produces one typed result per pickle (``records.py``);
independent checks (``checks.py``) judge it. Other inspectors call
:func:`analyze_pickle_stream` for pickles they find inside their containers
(torch zip/legacy, numpy object arrays, joblib), and :func:`read_literal` for
the plain values a loader reads between raw sections (legacy torch counts and keys).
"""

from .records import NOT_LITERAL
from .stream import PickleStreamSummary, analyze_pickle_stream, read_literal

__all__ = ["NOT_LITERAL", "PickleStreamSummary", "analyze_pickle_stream", "read_literal"]
