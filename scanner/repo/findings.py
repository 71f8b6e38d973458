"""Where repository checks put their findings: on the file's own result, else on a new 'repository' result."""

from __future__ import annotations

from typing import Any

from ..findings import FileResult, Finding, Severity
from ..rules import RuleDB


class RepoFindings:
    """Mixin for a check's state; the using class provides ``results``, ``extra`` and ``rules``."""

    results: dict[str, FileResult]
    extra: list[FileResult]
    rules: RuleDB

    def result(self, path: str) -> FileResult:
        fr = self.results.get(path)
        if fr is None:
            fr = FileResult(path=path, size=0, format="repository")
            self.results[path] = fr
            self.extra.append(fr)
        return fr

    def add(
        self,
        path: str,
        rule_id: str,
        message: str,
        *,
        severity: Severity | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Finding:
        f = self.rules.finding(rule_id, message, path, severity=severity, evidence=evidence)
        self.result(path).findings.append(f)
        return f
