"""Allowlist-first classification of imports against the rule database.

The allowlist (profiles + policy extras) decides whether an import is a finding
at all; the denylist only raises the severity and names the reason. Dynamic
imports are never allowlisted unless their exact full path is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...rules import DenyHit, PickleProfile, RuleDB

DANGEROUS = "PICKLE-DANGEROUS-GLOBAL"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str | None  # denylist-driven rule id (dangerous / code object / tampering / legacy wrapper)
    deny: DenyHit | None
    via: str | None = None  # the dotted sub-path that matched the denylist


class Classifier:
    def __init__(self, db: RuleDB, profile_names: list[str] | None, extra: list[str]) -> None:
        self.db = db
        if profile_names is None:
            self.profiles: list[PickleProfile] = db.default_profiles()
        else:
            self.profiles = [db.profiles[n] for n in profile_names if n in db.profiles]
        self.extra: set[tuple[str, str]] = set()
        for e in extra:
            if e.count(":") == 1:
                m, n = e.split(":")
                self.extra.add((m, n))
        self._cache: dict[tuple[str, str], Verdict] = {}

    def allowed(self, module: str, name: str) -> bool:
        if (module, name) in self.extra:
            return True
        return any(p.allows(module, name) for p in self.profiles)

    def deny(self, module: str, name: str) -> tuple[DenyHit | None, str | None]:
        hit = self.db.denylist.lookup(module, name)
        if hit is not None:
            return hit, None
        # attribute traversal: `torch` + `serialization.os.system` reaches os.system
        if "." not in name:
            return None, None
        parts = f"{module}.{name}".split(".")
        for s in range(module.count(".") + 1, len(parts) - 1):
            for e in range(len(parts) - 1, s, -1):
                sub_mod, sub_name = ".".join(parts[s:e]), ".".join(parts[e:])
                hit = self.db.denylist.lookup(sub_mod, sub_name)
                if hit is not None:
                    return hit, f"{sub_mod}.{sub_name}"
        return None, None

    def classify(self, module: str, name: str, raw: str | None = None) -> Verdict:
        key = (module, name)
        v = self._cache.get(key)
        if v is None:
            hit, via = self.deny(module, name)
            if hit is None and raw is not None:
                rm, _, rn = raw.partition(":")
                hit, via = self.deny(rm, rn)
            rule = (hit.rule or DANGEROUS) if hit is not None else None
            v = Verdict(allowed=self.allowed(module, name), rule=rule, deny=hit, via=via)
            self._cache[key] = v
        return v
