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
        self._deny_by_name: dict[str, list[str]] = {}
        for m, n in db.denylist.names:
            self._deny_by_name.setdefault(n.split(".")[0], []).append(m)

    def allowed(self, module: str, name: str) -> bool:
        if (module, name) in self.extra:
            return True
        return any(p.allows(module, name) for p in self.profiles)

    def deny(self, module: str, name: str) -> tuple[DenyHit | None, str | None]:
        """The denylist entry reached by ``module:name`` under any spelling of the same object.

        Tried in order: the spelling as written, the module alias-normalized
        (posix -> os, sqlite3.dbapi2 -> sqlite3), the same name in an ancestor or
        submodule of a denied ``module:name`` (re-exports), and attribute
        traversal through a dotted name (torch + ``serialization.os.system``).
        """
        for m in self._spellings(module):
            hit = self.db.denylist.lookup(m, name)
            if hit is not None:
                return hit, None if m == module else f"{m}.{name}"
            hit = self._reexport(m, name)
            if hit is not None:
                return hit, f"{hit.match.replace(':', '.')}"
        if "." not in name:
            return None, None
        parts = f"{module}.{name}".split(".")
        for s in range(module.count(".") + 1, len(parts) - 1):
            for e in range(len(parts) - 1, s, -1):
                sub_mod, sub_name = ".".join(parts[s:e]), ".".join(parts[e:])
                for m in self._spellings(sub_mod):
                    hit = self.db.denylist.lookup(m, sub_name)
                    if hit is not None:
                        return hit, f"{sub_mod}.{sub_name}"
        return None, None

    def _spellings(self, module: str) -> list[str]:
        """``module`` and the public module it re-exports, by the longest aliased prefix."""
        out = [module]
        aliases = self.db.denylist.aliases
        parts = module.split(".")
        for i in range(len(parts), 0, -1):
            target = aliases.get(".".join(parts[:i]))
            if target is not None:
                out.append(".".join([target, *parts[i:]]))
                break
        return out

    def _reexport(self, module: str, name: str) -> DenyHit | None:
        """A denied ``m:name`` where ``m`` is an ancestor or a submodule of ``module`` (same name re-exported)."""
        head = name.split(".")[0]
        for m in self._deny_by_name.get(head, ()):
            if m == module:
                continue
            if module.startswith(m + ".") or m.startswith(module + "."):
                hit = self.db.denylist.lookup(m, name)
                if hit is not None:
                    return hit
        return None

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
