"""Hugging Face repository checks: the code a model repo makes loaders run, and where it points.

``auto_map`` (config.json, tokenizer/processor configs), ``custom_pipelines``,
diffusers ``model_index.json``, sentence-transformers ``modules.json`` and
``custom_generate/`` name Python files that ``trust_remote_code=True`` imports.
Each reference is resolved to a file of this snapshot (following the relative
imports transformers would fetch too); a missing file or one in another
repository means code this scan never saw. Every ``.py`` gets the AST analysis,
chat templates get the Jinja analysis, requirement files and scripts are listed.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from ..analysis.python_ast import MAX_SOURCE_BYTES, PyAnalysis, analyze_python
from ..findings import FileResult, Finding, Severity
from ..formats.tf_savedmodel import check_checkpoint_shards
from ..io.reader import ReaderError
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Artifact, Snapshot

MAX_CONFIG_BYTES = 16 << 20
MAX_CODE_FILES = 500
MAX_TEMPLATE_BYTES = 4 << 20

AUTO_MAP_CONFIGS = {
    "config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json",
    "feature_extractor_config.json", "image_processor_config.json", "video_preprocessor_config.json",
    "video_processor_config.json", "adapter_config.json",
}
TEMPLATE_CONFIGS = {"tokenizer_config.json", "processor_config.json", "chat_template.json"}
DIFFUSERS_LIBRARIES = {"diffusers", "transformers", "onnxruntime.training", "k_diffusion", "torch", "flax", None}
_SCRIPT_NAMES = re.compile(r"\.(?:sh|bash|zsh|ksh|command|bat|cmd|ps1)$", re.I)
_REQ_NAMES = re.compile(r"(?:^|/)requirements[\w.-]*\.txt$", re.I)
_REQ_RISKY = re.compile(r"(?:^\s*-(?:e|-editable|i|-index-url|-extra-index-url|-trusted-host|f|-find-links)\b|://|^\s*git\+|@\s*(?:git\+|https?:|file:))",
                        re.I | re.M)


@dataclass
class _Code:
    """One analyzed Python file of the snapshot."""

    path: str
    analysis: PyAnalysis


@dataclass
class _Repo:
    snapshot: Snapshot
    results: dict[str, FileResult]
    rules: RuleDB
    limits: Limits
    arts: dict[str, Artifact] = field(default_factory=dict)
    code: dict[str, _Code] = field(default_factory=dict)
    extra: list[FileResult] = field(default_factory=list)

    def result(self, path: str) -> FileResult:
        fr = self.results.get(path)
        if fr is None:
            fr = FileResult(path=path, size=0, format="repository")
            self.results[path] = fr
            self.extra.append(fr)
        return fr

    def add(self, path: str, rule_id: str, message: str, *, severity: Severity | None = None,
            evidence: dict[str, Any] | None = None) -> Finding:
        f = self.rules.finding(rule_id, message, path, severity=severity, evidence=evidence)
        self.result(path).findings.append(f)
        return f

    def read(self, path: str, cap: int) -> bytes | None:
        art = self.arts.get(path)
        if art is None or art.size > cap:
            return None
        try:
            with art.open() as r:
                return r.read(0, min(r.size, cap))
        except (ReaderError, OSError):
            return None


# ---------------------------------------------------------------------------- Python files


def _analyze_code(repo: _Repo, path: str, *, report: bool) -> _Code | None:
    if path in repo.code:
        return repo.code[path]
    if len(repo.code) >= MAX_CODE_FILES:
        return None
    art = repo.arts.get(path)
    if art is None:
        return None
    if art.size > MAX_SOURCE_BYTES:
        a = PyAnalysis(parsed=False, error=f"larger than {MAX_SOURCE_BYTES} bytes; not analyzed")
    else:
        data = repo.read(path, MAX_SOURCE_BYTES)
        a = analyze_python(data) if data is not None else PyAnalysis(parsed=False, error="could not be read")
    code = _Code(path, a)
    repo.code[path] = code
    if report:
        if not a.parsed:
            repo.add(path, "PY-UNPARSEABLE", f"Python file could not be analyzed: {a.error}"[:400],
                     evidence={"error": (a.error or "")[:300]})
        for i in a.issues:
            ev = dict(i.evidence)
            if i.line is not None:
                ev["line"] = i.line
            repo.add(path, i.rule_id, i.message + (f" (line {i.line})" if i.line else ""), severity=i.severity, evidence=ev)
    return code


def _check_python_files(repo: _Repo) -> None:
    """Every .py the per-file scan did not already analyze as Python (Python 2, broken or odd encodings)."""
    for path in sorted(repo.arts):
        if not path.lower().endswith(".py"):
            continue
        fr = repo.results.get(path)
        analyzed = fr is not None and fr.format == "python-source"
        _analyze_code(repo, path, report=not analyzed and (fr is None or fr.format in ("text", "unknown", "json")))


# ---------------------------------------------------------------------------- auto_map resolution


@dataclass
class _Ref:
    source: str  # config file
    key: str  # e.g. auto_map.AutoModelForCausalLM
    ref: str


def _module_candidates(base_dir: str, module: str) -> list[str]:
    rel = module.replace(".", "/")
    out = []
    for d in dict.fromkeys([base_dir, ""]):
        out.append(posixpath.join(d, rel + ".py") if d else rel + ".py")
        out.append(posixpath.join(d, rel, "__init__.py") if d else posixpath.join(rel, "__init__.py"))
    return out


def _follow_imports(repo: _Repo, start: str) -> tuple[list[str], list[str]]:
    """Files transformers would fetch with ``start`` (its relative imports, transitively) and the missing ones."""
    files, missing = [start], []
    queue = [start]
    seen = {start}
    while queue and len(seen) < MAX_CODE_FILES:
        cur = queue.pop()
        code = _analyze_code(repo, cur, report=False)
        if code is None:
            continue
        cur_dir = posixpath.dirname(cur)
        for level, mod in code.analysis.relative_imports:
            base = cur_dir
            for _ in range(level - 1):
                base = posixpath.dirname(base)
            if not mod:
                continue
            rel = mod.replace(".", "/")
            cands = [posixpath.join(base, rel + ".py"), posixpath.join(base, rel, "__init__.py")]
            hit = next((c for c in cands if c in repo.arts), None)
            if hit is None:
                # 'from . import x' where x is a name in __init__.py rather than a module: not missing
                if posixpath.join(base, "__init__.py") in repo.arts:
                    continue
                missing.append(cands[0])
            elif hit not in seen:
                seen.add(hit)
                files.append(hit)
                queue.append(hit)
    return files, missing


def _worst(repo: _Repo, files: list[str]) -> str | None:
    sev = None
    for f in files:
        c = repo.code.get(f)
        s = c.analysis.max_severity if c else None
        if s is not None and (sev is None or s > sev):
            sev = s
        if c is not None and not c.analysis.parsed and sev is None:
            sev = Severity.MEDIUM
    return sev.value if sev else None


def _resolve_ref(repo: _Repo, r: _Ref) -> None:
    ref = r.ref.strip()
    if "--" in ref:
        other, _, local = ref.partition("--")
        repo.add(r.source, "HF-AUTOMAP-CROSS-REPO",
                 f"{r.key} loads {local!r} from another repository {other!r}: code outside this scan",
                 evidence={"key": r.key, "reference": ref[:300], "repository": other[:200]})
        return
    if "." not in ref:
        repo.add(r.source, "HF-AUTOMAP-MISSING", f"{r.key} reference {ref!r} names no module",
                 evidence={"key": r.key, "reference": ref[:300]})
        return
    module, cls = ref.rsplit(".", 1)
    base_dir = posixpath.dirname(r.source)
    hit = next((c for c in _module_candidates(base_dir, module) if c in repo.arts), None)
    if hit is None:
        repo.add(r.source, "HF-AUTOMAP-MISSING",
                 f"{r.key} names {ref!r} but {module.replace('.', '/')}.py is not in the repository",
                 evidence={"key": r.key, "reference": ref[:300], "expected": _module_candidates(base_dir, module)[0]})
        return
    files, missing = _follow_imports(repo, hit)
    code = repo.code.get(hit)
    defined = code is not None and cls in code.analysis.classes
    for m in missing:
        repo.add(r.source, "HF-AUTOMAP-MISSING", f"{hit} imports {m} (via {r.key}), which is not in the repository",
                 severity=Severity.MEDIUM, evidence={"key": r.key, "file": hit, "missing": m})
    worst = _worst(repo, files)
    repo.add(r.source, "HF-REMOTE-CODE",
             f"{r.key} -> {ref}: trust_remote_code=True imports {hit}"
             + (f" and {len(files) - 1} more file(s)" if len(files) > 1 else "")
             + (f"; worst finding in that code: {worst}" if worst else ""),
             evidence={"key": r.key, "reference": ref[:300], "class": cls, "class_defined_in_file": defined,
                       "files": files[:20], "worst_severity": worst})


def _refs_from_auto_map(path: str, auto_map: Any) -> list[_Ref]:
    out: list[_Ref] = []
    items: list[tuple[str, Any]]
    if isinstance(auto_map, dict):
        items = [(str(k), v) for k, v in auto_map.items()]
    elif isinstance(auto_map, list):
        items = [("auto_map", v) for v in auto_map]
    else:
        return out
    for key, v in items[:200]:
        vals = v if isinstance(v, list) else [v]
        for x in vals[:4]:
            if isinstance(x, str) and x:
                out.append(_Ref(path, f"auto_map.{key}", x))
    return out


def _load_json(repo: _Repo, path: str) -> Any:
    data = repo.read(path, MAX_CONFIG_BYTES)
    if data is None:
        art = repo.arts.get(path)
        if art is not None and art.size > MAX_CONFIG_BYTES:
            repo.add(path, "HF-CONFIG-INVALID", f"{posixpath.basename(path)} larger than {MAX_CONFIG_BYTES} bytes not parsed")
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        repo.add(path, "HF-CONFIG-INVALID", f"{posixpath.basename(path)} is not valid JSON: {exc}"[:300])
        return None


def _check_configs(repo: _Repo) -> None:
    for path in sorted(repo.arts):
        name = posixpath.basename(path)
        if name in AUTO_MAP_CONFIGS or name in TEMPLATE_CONFIGS or name in ("model_index.json", "modules.json"):
            cfg = _load_json(repo, path)
            if not isinstance(cfg, (dict, list)):
                continue
            if isinstance(cfg, dict):
                for r in _refs_from_auto_map(path, cfg.get("auto_map")):
                    _resolve_ref(repo, r)
                pipes = cfg.get("custom_pipelines")
                if isinstance(pipes, dict):
                    for task, spec in list(pipes.items())[:100]:
                        impl = spec.get("impl") if isinstance(spec, dict) else None
                        if isinstance(impl, str):
                            _resolve_ref(repo, _Ref(path, f"custom_pipelines.{task}", impl))
                if name == "config.json" and cfg.get("trust_remote_code") is True:
                    repo.add(path, "HF-TRUST-REMOTE-CODE-FLAG",
                             "config.json sets trust_remote_code: true (no effect, but a lure to enable remote code)")
                if name in TEMPLATE_CONFIGS:
                    _check_chat_templates(repo, path, cfg.get("chat_template"))
                if name == "model_index.json":
                    _check_model_index(repo, path, cfg)
            if name == "modules.json" and isinstance(cfg, list):
                _check_st_modules(repo, path, cfg)
        elif name.endswith(".jinja") and ("chat_template" in name or posixpath.basename(posixpath.dirname(path))
                                          in ("chat_templates", "additional_chat_templates")):
            data = repo.read(path, MAX_TEMPLATE_BYTES)
            if data is not None:
                _check_chat_templates(repo, path, data.decode("utf-8", "replace"))
    gen = sorted(p for p in repo.arts if p.startswith("custom_generate/") and p.endswith(".py"))
    if gen:
        anchor = "custom_generate/generate.py" if "custom_generate/generate.py" in repo.arts else gen[0]
        files, missing = _follow_imports(repo, anchor)
        worst = _worst(repo, files)
        repo.add(anchor, "HF-REMOTE-CODE",
                 f"custom_generate: generate(trust_remote_code=True) runs {anchor}"
                 + (f"; worst finding in that code: {worst}" if worst else ""),
                 evidence={"key": "custom_generate", "files": files[:20], "worst_severity": worst})


def _check_model_index(repo: _Repo, path: str, cfg: dict[str, Any]) -> None:
    """diffusers: components are [library, class]; a library that is not a known package is a repo module."""
    base = posixpath.dirname(path)
    cls = cfg.get("_class_name")
    if isinstance(cls, list) and len(cls) == 2 and all(isinstance(x, str) for x in cls):
        _resolve_ref(repo, _Ref(path, "_class_name", f"{cls[0]}.{cls[1]}"))
    for comp, spec in list(cfg.items())[:500]:
        if comp.startswith("_") or not isinstance(spec, list) or len(spec) != 2:
            continue
        lib, klass = spec
        if lib in DIFFUSERS_LIBRARIES or not isinstance(lib, str) or not isinstance(klass, str):
            continue
        cands = [posixpath.join(base, comp, lib + ".py"), posixpath.join(base, lib + ".py")]
        hit = next((c for c in cands if c in repo.arts), None)
        if hit:
            files, _missing = _follow_imports(repo, hit)
            repo.add(path, "HF-REMOTE-CODE", f"component {comp!r} loads {klass} from repository code {hit}",
                     evidence={"key": f"model_index.{comp}", "files": files[:20], "worst_severity": _worst(repo, files)})


def _check_st_modules(repo: _Repo, path: str, modules: list[Any]) -> None:
    for m in modules[:200]:
        t = m.get("type") if isinstance(m, dict) else None
        if not isinstance(t, str) or t.startswith("sentence_transformers."):
            continue
        module = t.rsplit(".", 1)[0]
        hit = next((c for c in _module_candidates(posixpath.dirname(path), module) if c in repo.arts), None)
        if hit:
            _resolve_ref(repo, _Ref(path, f"modules.{m.get('name', '?')}", t))
        else:
            repo.add(path, "HF-REMOTE-CODE", f"modules.json imports {t} from an installed package (not in this repository)",
                     evidence={"key": "modules.json", "reference": t[:300]})


# ---------------------------------------------------------------------------- chat templates


def _check_chat_templates(repo: _Repo, path: str, value: Any) -> None:
    templates: list[tuple[str, str]] = []
    if isinstance(value, str):
        templates.append(("default", value))
    elif isinstance(value, list):
        for t in value[:50]:
            if isinstance(t, dict) and isinstance(t.get("template"), str):
                templates.append((str(t.get("name", "?"))[:100], t["template"]))
    elif isinstance(value, dict):
        templates.extend((str(k)[:100], v) for k, v in list(value.items())[:50] if isinstance(v, str))
    if not templates:
        return
    try:
        from ..analysis.jinja_template import analyze_template
    except ImportError:
        fr = repo.result(path)
        note = f"{path}: chat template analyzer unavailable; template not judged"
        if note not in fr.coverage_notes:
            fr.coverage_notes.append(note)
        from ..findings import Coverage

        if fr.coverage is Coverage.FULL:
            fr.coverage = Coverage.PARTIAL
        return
    for name, tpl in templates:
        for issue in analyze_template(tpl, repo.limits):
            ev = dict(issue.evidence)
            ev["template"] = name
            repo.add(path, issue.rule_id, f"chat template {name!r}: {issue.message}"[:500], severity=issue.severity, evidence=ev)


# ---------------------------------------------------------------------------- scripts, requirements, LFS


def _check_misc(repo: _Repo) -> None:
    from ..formats.code_files import parse_lfs_pointer, shell_dangers

    by_sha = {fr.sha256: p for p, fr in repo.results.items() if fr.sha256 and fr.format != "lfs-pointer"}
    for path in sorted(repo.arts):
        fr = repo.results.get(path)
        fmt = fr.format if fr else None
        if _SCRIPT_NAMES.search(path) and fmt in ("text", "unknown", None):
            data = repo.read(path, 4 << 20) or b""
            dangers = shell_dangers(data.decode("utf-8", "replace"))
            repo.add(path, "HF-SHELL-SCRIPT", "script file" + (f" with {', '.join(dangers)}" if dangers else ""),
                     severity=Severity.HIGH if dangers else None, evidence={"patterns": dangers} if dangers else {})
        elif _REQ_NAMES.search(path) and fmt == "text":
            data = (repo.read(path, 1 << 20) or b"").decode("utf-8", "replace")
            lines = [ln.strip() for ln in data.splitlines() if ln.strip() and not ln.strip().startswith("#")]
            risky = [ln[:200] for ln in lines if _REQ_RISKY.search(ln)]
            repo.add(path, "HF-REQUIREMENTS",
                     f"requirements file lists {len(lines)} entr{'y' if len(lines) == 1 else 'ies'}"
                     + (f"; {len(risky)} install from URLs, VCS or extra indexes" if risky else ""),
                     severity=Severity.MEDIUM if risky else None,
                     evidence={"entries": [ln[:100] for ln in lines[:30]], "risky": risky[:10]})
        elif fmt == "lfs-pointer" and fr is not None:
            info = parse_lfs_pointer(repo.read(path, 1024) or b"") or {}
            other = by_sha.get(info.get("oid") or "")
            if other:
                for f in fr.findings:
                    if f.rule_id == "HF-LFS-POINTER":
                        f.evidence["object_present_as"] = other


def check_hf_repo(snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, limits: Limits) -> list[FileResult]:
    repo = _Repo(snapshot, results, rules, limits, arts={a.path: a for a in snapshot.artifacts})
    _check_python_files(repo)
    _check_configs(repo)
    _check_misc(repo)
    return repo.extra


REPO_CHECKS = [check_hf_repo, check_checkpoint_shards]
