"""The built-in decision used when no policy is named: the shipped ``default`` policy.

Block on critical/high findings and on any file not fully analyzed (fail
closed); warn on medium; everything else is reported and allowed. The decision
itself is ``scanner.policy.decide.decide`` (re-exported here); this module only names the policy.
"""

from __future__ import annotations

from .decide import decide
from .loader import DEFAULT_POLICY as POLICY_NAME

__all__ = ["POLICY_NAME", "decide"]
