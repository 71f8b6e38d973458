"""Hugging Face repository checks: the code a model repo makes loaders run, and where it points.

``auto_map`` (config.json, tokenizer/processor configs and their nested sub-configs),
``custom_pipelines``, diffusers ``model_index.json``/``modular_model_index.json``
(component libraries and type hints), sentence-transformers ``modules.json``,
Router/Asym ``types`` and WordEmbeddings ``tokenizer_class``, and ``custom_generate/``
name Python files that ``trust_remote_code=True`` (or a local folder) imports; a
TorchServe model folder (``MAR-INF/MANIFEST.json``), a Triton python-backend model
(``config.pbtxt``) and torch.hub's ``hubconf.py`` make their folder's modules code; a spaCy ``config.cfg``
component ``source``, a shipped ``.dist-info`` entry point, open_clip ``tokenizer_kwargs``,
peft ``megatron_core`` and a model_index.json ``auto_map`` (component folders) name code too.
Each reference is resolved to a file of this snapshot (following the relative
imports transformers would fetch too); a missing file or one in another
repository means code this scan never saw. Every ``.py`` gets the AST analysis,
chat templates get the Jinja analysis, requirement files and scripts are listed.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..findings import Coverage, FileResult, Severity
from ..io.reader import ReaderError
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Artifact, Snapshot
from .findings import RepoFindings

if TYPE_CHECKING:
    from ..analysis.python_ast import PyAnalysis

MAX_CONFIG_BYTES = 16 << 20
MAX_CODE_FILES = 500
MAX_TEMPLATE_BYTES = 4 << 20
MAX_CONFIG_ENTRIES = 2000  # auto_map keys, modules.json entries, model_index components ... in one config

AUTO_MAP_CONFIGS = {
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "feature_extractor_config.json",
    "image_processor_config.json",
    "video_preprocessor_config.json",
    "video_processor_config.json",
    "audio_tokenizer_config.json",
    "adapter_config.json",
    # diffusers ModularPipelineBlocks.from_pretrained: auto_map[cls.__name__] -> get_class_from_dynamic_module
    "modular_config.json",
    "modular_model_index.json",
}
TEMPLATE_CONFIGS = {"tokenizer_config.json", "processor_config.json", "chat_template.json"}
DIFFUSERS_LIBRARIES = {
    "diffusers",
    "transformers",
    "onnxruntime.training",
    "k_diffusion",
    "torch",
    "flax",
    None,
}
# diffusers.pipelines submodules (and the deprecated ones it still re-exports): a model_index.json library that
# names one loads a class of diffusers itself (get_class_obj_and_candidates: is_pipeline_module)
DIFFUSERS_PIPELINE_MODULES = frozenset(
    """
    ace_step allegro alt_diffusion amused animatediff anyflow audio_diffusion audioldm audioldm2 aura_flow
    blip_diffusion bria bria_fibo chroma chronoedit cogvideo cogview3 cogview4 consisid consistency_models controlnet
    controlnet_hunyuandit controlnet_sd3 controlnet_xs cosmos dance_diffusion ddim ddpm deepfloyd_if deprecated
    diffusion_gemma dit dreamlite easyanimate ernie_image flux flux2 glm_image helios hidream_image hunyuan_image
    hunyuan_video hunyuan_video1_5 hunyuandit i2vgen_xl ideogram4 joyimage kandinsky kandinsky2_2 kandinsky3
    kandinsky5 kolors krea2 latent_consistency_models latent_diffusion latent_diffusion_uncond latte ledits_pp
    llada2 longcat_audio_dit longcat_image ltx ltx2 lucy lumina lumina2 marigold mochi motif_video musicldm
    nucleusmoe_image omnigen ovis_image pag paint_by_example pia pixart_alpha pndm prx qwenimage repaint sana
    sana_video score_sde_ve semantic_stable_diffusion shap_e skyreels_v2 spectrogram_diffusion stable_audio
    stable_audio_3 stable_cascade stable_diffusion stable_diffusion_3 stable_diffusion_attend_and_excite
    stable_diffusion_diffedit stable_diffusion_gligen stable_diffusion_k_diffusion stable_diffusion_ldm3d
    stable_diffusion_panorama stable_diffusion_safe stable_diffusion_sag stable_diffusion_variants
    stable_diffusion_xl stable_video_diffusion stochastic_karras_ve t2i_adapter text_to_video_synthesis unclip
    unidiffuser versatile_diffusion visualcloze vq_diffusion wan wuerstchen z_image
    """.split()
)
_CUSTOM_GENERATE = re.compile(r"(?:.*/)?custom_generate/")
_SCRIPT_NAMES = re.compile(r"\.(?:sh|bash|zsh|ksh|command|bat|cmd|ps1)$", re.I)
_REQ_NAMES = re.compile(r"(?:^|/)requirements[\w.-]*\.txt$", re.I)


@dataclass
class _Code:
    """One analyzed Python file of the snapshot, with the digest a policy trusts it by."""

    path: str
    analysis: PyAnalysis
    sha256: str | None = None
    oversize: bool = False
    reported: bool = False  # its findings are on the file's result (here or by the per-file Python inspector)


@dataclass
class _Loaded:
    """Why a loader runs one code file: the first config key that makes it run, and every other."""

    loader: str
    key: str
    config: str
    keys: list[str] = field(default_factory=list)


@dataclass
class _Repo(RepoFindings):
    snapshot: Snapshot
    results: dict[str, FileResult]
    rules: RuleDB
    limits: Limits
    arts: dict[str, Artifact] = field(default_factory=dict)
    code: dict[str, _Code] = field(default_factory=dict)
    loaded: dict[str, _Loaded] = field(default_factory=dict)
    extra: list[FileResult] = field(default_factory=list)
    module_dirs: dict[str, set[str]] | None = None  # folders sentence-transformers loads modules from

    def partial(self, path: str, note: str) -> None:
        """Part of this file could not be judged: fail closed through the policy's block_unanalyzed."""
        fr = self.result(path)
        if fr.coverage is Coverage.FULL:
            fr.coverage = Coverage.PARTIAL
        if note not in fr.coverage_notes:
            fr.coverage_notes.append(note)

    def limit(self, path: str, what: str, message: str) -> None:
        self.add(path, "LIMIT-EXCEEDED", message, evidence={"limit": what})
        self.partial(path, f"limit hit: {what}")

    def capped(self, path: str, what: str, items: list[Any], cap: int = MAX_CONFIG_ENTRIES) -> list[Any]:
        """The first ``cap`` entries of a loader config list; more fails closed (an entry past the cap still
        names code a loader runs)."""
        if len(items) > cap:
            self.limit(
                path, "config_entries", f"{what} has {len(items)} entries; only the first {cap} judged"
            )
            return items[:cap]
        return items

    def digest(self, path: str) -> str | None:
        """SHA-256 of the bytes as read now (streamed: any size, bounded memory)."""
        art = self.arts.get(path)
        if art is None:
            return None
        h = hashlib.sha256()
        try:
            with art.open() as r:
                for chunk in r.stream():
                    h.update(chunk)
        except (ReaderError, OSError):
            return None
        return h.hexdigest()

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
    from ..analysis.python_ast import MAX_SOURCE_BYTES, PyAnalysis, analyze_python

    if path in repo.code:
        return repo.code[path]
    if len(repo.code) >= MAX_CODE_FILES:
        return None
    art = repo.arts.get(path)
    if art is None:
        return None
    sha: str | None = None
    oversize = art.size > MAX_SOURCE_BYTES
    if oversize:
        a = PyAnalysis(
            parsed=False, error=f"larger than {MAX_SOURCE_BYTES} bytes; not analyzed"
        )  # hashed if loaded
    else:
        data = repo.read(path, MAX_SOURCE_BYTES)
        a = analyze_python(data) if data is not None else PyAnalysis(parsed=False, error="could not be read")
        sha = hashlib.sha256(data).hexdigest() if data is not None and len(data) == art.size else None
    code = _Code(path, a, sha, oversize or a.limit is not None)
    repo.code[path] = code
    if a.limit is not None and not oversize:
        fr = repo.results.get(path)
        if fr is None or not any(f.rule_id == "LIMIT-EXCEEDED" for f in fr.findings):
            repo.limit(path, a.limit, f"Python source not analyzed: {a.error}")
    elif oversize:
        fr = repo.results.get(path)
        if fr is None or not any(f.rule_id == "LIMIT-EXCEEDED" for f in fr.findings):
            repo.limit(
                path,
                "python_source_bytes",
                f"Python source larger than {MAX_SOURCE_BYTES} bytes not analyzed",
            )
    elif report:
        _report_analysis(repo, code)
    return code


def _report_analysis(repo: _Repo, code: _Code) -> None:
    code.reported = True
    a = code.analysis
    if not a.parsed:
        repo.add(
            code.path,
            "PY-UNPARSEABLE",
            f"Python file could not be analyzed: {a.error}"[:400],
            evidence={"error": (a.error or "")[:300]},
        )
    for i in a.issues:
        ev = dict(i.evidence)
        if i.line is not None:
            ev["line"] = i.line
        repo.add(
            code.path,
            i.rule_id,
            i.message + (f" (line {i.line})" if i.line else ""),
            severity=i.severity,
            evidence=ev,
        )


def _check_python_files(repo: _Repo) -> None:
    """Every .py the per-file scan did not already analyze as Python (Python 2, broken or odd encodings)."""
    for path in sorted(repo.arts):
        if not path.lower().endswith(".py"):
            continue
        fr = repo.results.get(path)
        analyzed = fr is not None and fr.format == "python-source"
        _analyze_code(
            repo, path, report=not analyzed and (fr is None or fr.format in ("text", "unknown", "json"))
        )


# ---------------------------------------------------------------------------- auto_map resolution


@dataclass
class _Ref:
    source: str  # config file
    key: str  # e.g. auto_map.AutoModelForCausalLM
    ref: str
    loader: str = "transformers (trust_remote_code=True)"


def _module_candidates(base_dir: str, module: str) -> list[str]:
    rel = module.replace(".", "/")
    out = []
    for d in dict.fromkeys([base_dir, ""]):
        out.append(posixpath.join(d, rel + ".py") if d else rel + ".py")
        out.append(posixpath.join(d, rel, "__init__.py") if d else posixpath.join(rel, "__init__.py"))
    return out


_TF_RELATIVE = (
    re.compile(r"^\s*import\s+\.(\S+)\s*$", re.M),
    re.compile(r"^\s*from\s+\.(\S+)\s+import", re.M),
)


def _text_relative_imports(repo: _Repo, path: str, anchor_dir: str) -> list[str]:
    """transformers' own discovery (dynamic_module_utils.get_relative_imports): a regex over the text, resolved
    next to the module first loaded. It also matches lines inside strings, so it can fetch files the AST misses."""
    from ..analysis.python_ast import MAX_SOURCE_BYTES

    data = repo.read(path, MAX_SOURCE_BYTES)
    if data is None:
        return []
    text = data.decode("utf-8", "replace")
    names = {m for rx in _TF_RELATIVE for m in rx.findall(text)}
    out = []
    for m in repo.capped(path, "relative imports", sorted(names)):
        for cand in (
            posixpath.join(anchor_dir, m + ".py"),
            posixpath.join(anchor_dir, m.replace(".", "/") + ".py"),
        ):
            if cand in repo.arts:
                out.append(cand)
    return out


def _follow_imports(repo: _Repo, start: str) -> tuple[list[str], list[str]]:
    """Files importing ``start`` runs (its relative imports, transitively, as Python and transformers resolve them)
    and the missing ones."""
    files: list[str] = [start]
    missing: list[str] = []
    queue = [start]
    seen = {start}
    anchor = posixpath.dirname(start)

    def take(hit: str) -> None:
        if hit not in seen:
            seen.add(hit)
            files.append(hit)
            queue.append(hit)

    while queue and len(seen) < MAX_CODE_FILES:
        cur = queue.pop()
        code = _analyze_code(repo, cur, report=False)
        if code is None:
            continue
        for hit in _text_relative_imports(repo, cur, anchor):
            take(hit)
        cur_dir = posixpath.dirname(cur)
        for level, mod in code.analysis.relative_imports:
            base = cur_dir
            for _ in range(level - 1):
                base = posixpath.dirname(base)
            if not mod:
                continue
            parts = mod.split(".")
            for i in range(1, len(parts)):  # 'from .a.b import c' also runs a/__init__.py
                init = posixpath.join(base, *parts[:i], "__init__.py")
                if init in repo.arts:
                    take(init)
            rel = "/".join(parts)
            cands = [posixpath.join(base, rel + ".py"), posixpath.join(base, rel, "__init__.py")]
            found = next((c for c in cands if c in repo.arts), None)
            if found is None:
                # 'from . import x' where x is a name in __init__.py rather than a module: not missing
                if posixpath.join(base, "__init__.py") in repo.arts:
                    continue
                missing.append(cands[0])
            else:
                take(found)
    if queue:
        repo.limit(
            start,
            "code_files",
            f"more than {MAX_CODE_FILES} code files reachable from {start}; the rest not followed",
        )
    return files, missing


def _absolute_imports(repo: _Repo, files: list[str], folders: list[str], what: str) -> list[str]:
    """``files`` plus the modules of ``folders`` their absolute imports reach, transitively (relative imports of
    those followed too). transformers and diffusers (check_imports) importlib.import_module the top-level name of
    every absolute import in a remote-code file, even one inside a function, before running it; with the model
    folder as the working directory (sys.path[0] == "": python -c, notebooks) a module of that folder is what
    they import. torch.hub puts the hub folder on sys.path the same way."""
    out = list(files)
    seen = set(files)
    queue = list(files)
    while queue and len(seen) < MAX_CODE_FILES:
        code = _analyze_code(repo, queue.pop(), report=False)
        if code is None:
            continue
        for name in repo.capped(code.path, what, sorted(code.analysis.imports)):
            parts = name.split(".")
            cands: list[str] = []
            for folder in folders:
                cands.append(posixpath.join(folder, parts[0] + ".py"))
                cands += [posixpath.join(folder, *parts[:i], "__init__.py") for i in range(1, len(parts))]
                cands += _module_candidates(folder, name)[:2]
            for c in dict.fromkeys(cands):
                if c in repo.arts and c not in seen:
                    for m in _follow_imports(repo, c)[0]:
                        if m not in seen:
                            seen.add(m)
                            out.append(m)
                            queue.append(m)
    if queue:
        repo.limit(
            files[0] if files else "",
            "code_files",
            f"more than {MAX_CODE_FILES} code files reachable by absolute imports; the rest not followed",
        )
    return out


def _mark_loaded(repo: _Repo, files: list[str], loader: str, key: str, config: str) -> None:
    """Record that ``loader`` runs ``files`` because of ``key`` in ``config``; reported once per file at the end."""
    for f in files:
        ld = repo.loaded.get(f)
        if ld is None:
            repo.loaded[f] = _Loaded(loader, key, config, [f"{config}:{key}"])
        elif f"{config}:{key}" not in ld.keys and len(ld.keys) < 20:
            ld.keys.append(f"{config}:{key}")


def _sibling(repo: _Repo, path: str, level: int, mod: str) -> str | None:
    base = posixpath.dirname(path)
    for _ in range(level - 1):
        base = posixpath.dirname(base)
    rel = mod.replace(".", "/")
    cands = [posixpath.join(base, rel + ".py"), posixpath.join(base, rel, "__init__.py")] if rel else []
    cands.append(posixpath.join(base, "__init__.py"))
    return next((c for c in cands if c in repo.arts), None)


def _propagate_reach(repo: _Repo) -> None:
    """Functions of one executed file that another calls on load (import time, __init__ ...) run on load too:
    analyze them again with those functions as roots and report what that adds."""
    roots: dict[str, set[str]] = {}
    pending = sorted(repo.loaded)
    for _ in range(8):
        grew: set[str] = set()
        for path in pending:
            code = repo.code.get(path)
            if code is None or not code.analysis.parsed:
                continue
            for level, mod, name in sorted(code.analysis.external_calls):
                target = _sibling(repo, path, level, mod)
                if target is None or target not in repo.loaded or name in roots.setdefault(target, set()):
                    continue
                roots[target].add(name)
                grew.add(target)
        for target in sorted(grew):
            _reanalyze(repo, target, frozenset(roots[target]))
        pending = sorted(grew)
        if not pending:
            return


def _reanalyze(repo: _Repo, path: str, roots: frozenset[str]) -> None:
    from ..analysis.python_ast import MAX_SOURCE_BYTES, analyze_python

    code = repo.code.get(path)
    data = repo.read(path, MAX_SOURCE_BYTES)
    if code is None or data is None or code.oversize or not code.analysis.parsed:
        return
    new = analyze_python(data, roots=roots)
    if not new.parsed:
        return
    old = {(i.rule_id, i.message) for i in code.analysis.issues}
    code.analysis = new
    for i in new.issues:
        if (i.rule_id, i.message) in old:
            continue
        ev = {**i.evidence, "called_from_sibling": sorted(roots)[:10]}
        if i.line is not None:
            ev["line"] = i.line
        repo.add(
            path,
            i.rule_id,
            i.message + (f" (line {i.line})" if i.line else ""),
            severity=i.severity,
            evidence=ev,
        )


def _report_loaded(repo: _Repo) -> None:
    """One blocking finding per executed code file: only a policy trusted_code entry (by digest) allows it."""
    for path in sorted(repo.loaded):
        from ..analysis.python_ast import escalate_loaded  # here: most repositories load no code

        ld = repo.loaded[path]
        code = repo.code.get(path) or _analyze_code(repo, path, report=True)
        sha = code.sha256 if code else None
        if sha is None:
            sha = repo.digest(path)
        ev: dict[str, Any] = {
            "sha256": sha or "",
            "loader": ld.loader,
            "key": ld.key,
            "config": ld.config,
            "keys": ld.keys,
        }
        if sha:
            how = (
                f"blocks unless your policy has a trusted_code entry with sha256 {sha} and a reason "
                "(trust this code by digest; a changed file blocks again)"
            )
        else:
            how = "blocks: its bytes could not be read to compute a digest, so no policy can trust it"
            repo.partial(path, "code file could not be read")
        repo.add(
            path,
            "CODE-EXECUTED-BY-LOADER",
            f"{ld.loader} runs this code ({ld.key} in {ld.config}); {how}",
            evidence=ev,
        )
        fr = repo.result(path)
        if code is not None and not code.reported and not code.oversize and fr.format != "python-source":
            _report_analysis(repo, code)  # content detection called it something else; the loader imports it
        escalate_loaded(fr.findings)
        if code is None:
            repo.partial(path, f"code a loader runs was not analyzed (more than {MAX_CODE_FILES} code files)")
        elif not code.analysis.parsed and not code.oversize:
            fr = repo.result(path)
            if not any(f.rule_id == "PY-UNPARSEABLE" for f in fr.findings):
                repo.add(
                    path,
                    "PY-UNPARSEABLE",
                    f"Python file could not be analyzed: {code.analysis.error}"[:400],
                    evidence={"error": (code.analysis.error or "")[:300]},
                )
            for f in fr.findings:
                if f.rule_id == "PY-UNPARSEABLE" and f.severity < Severity.HIGH:
                    f.severity = Severity.HIGH  # code a loader runs and this scan could not read: fail closed
            repo.partial(path, "code a loader runs could not be parsed")


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


def _hits(repo: _Repo, candidates: list[str]) -> list[str]:
    return [c for c in dict.fromkeys(candidates) if c in repo.arts]


def _resolve_ref(repo: _Repo, r: _Ref, literal: str | None = None, subfolders: tuple[str, ...] = ()) -> None:
    """``literal``: the loader opens exactly this file (diffusers' ``<_class_name[0]>.py``), not a dotted module;
    ``subfolders``: folders the loader also reads ``<module>.py`` from (diffusers AutoModel with subfolder=)."""
    ref = r.ref  # not stripped: get_class_from_dynamic_module opens " modeling.py" for " modeling.M"
    if "--" in ref:
        other, _, local = ref.partition("--")
        repo.add(
            r.source,
            "HF-AUTOMAP-CROSS-REPO",
            f"{r.key} loads {local!r} from another repository {other!r}: code outside this scan",
            evidence={"key": r.key, "reference": ref[:300], "repository": other[:200]},
        )
        return
    if "." not in ref:
        repo.add(
            r.source,
            "HF-AUTOMAP-MISSING",
            f"{r.key} reference {ref!r} names no module",
            evidence={"key": r.key, "reference": ref[:300]},
        )
        return
    module, cls = ref.rsplit(".", 1)
    base_dir = posixpath.dirname(r.source)
    # every candidate that exists runs for some caller: get_class_from_dynamic_module reads <module>.py from the
    # folder passed to from_pretrained, which is the repository root when the config sits in a subfolder
    # (from_pretrained(repo, subfolder=...) does not pass the subfolder on) and the config's own folder when that
    # folder is passed; import_from_string / import_module (sentence-transformers, diffusers) take packages too
    cands = _module_candidates(base_dir, module)
    for sub in subfolders:
        cands += _module_candidates(sub, module)[:2]
    hits = _hits(repo, cands)
    if literal is not None:
        hits = [literal] if literal in repo.arts else []
    hit = hits[0] if hits else None
    if hit is None:
        repo.add(
            r.source,
            "HF-AUTOMAP-MISSING",
            f"{r.key} names {ref!r} but {literal or module.replace('.', '/') + '.py'} is not in the repository",
            evidence={
                "key": r.key,
                "reference": ref[:300],
                "expected": literal or _module_candidates(base_dir, module)[0],
            },
        )
        return
    files: list[str] = []
    missing: list[str] = []
    for h in hits:
        more, gone = _follow_imports(repo, h)
        files.extend(f for f in more if f not in files)
        missing.extend(m for m in gone if m not in missing)
    files = _absolute_imports(repo, files, list(dict.fromkeys([base_dir, ""])), "absolute imports")
    _mark_loaded(repo, files, r.loader, r.key, r.source)
    code = repo.code.get(hit)
    defined = code is not None and cls in code.analysis.classes
    for m in missing:
        repo.add(
            r.source,
            "HF-AUTOMAP-MISSING",
            f"{hit} imports {m} (via {r.key}), which is not in the repository",
            severity=Severity.MEDIUM,
            evidence={"key": r.key, "file": hit, "missing": m},
        )
    worst = _worst(repo, files)
    repo.add(
        r.source,
        "HF-REMOTE-CODE",
        f"{r.key} -> {ref}: {r.loader} imports {' or '.join(hits)}"
        + (f" and {len(files) - len(hits)} more file(s)" if len(files) > len(hits) else "")
        + (f"; worst finding in that code: {worst}" if worst else ""),
        evidence={
            "key": r.key,
            "reference": ref[:300],
            "class": cls,
            "class_defined_in_file": defined,
            "files": files[:20],
            "worst_severity": worst,
        },
    )


def _loader_for(config: str) -> str:
    name = posixpath.basename(config)
    if name == "adapter_config.json":
        return "peft / transformers (trust_remote_code=True)"
    if name.startswith("modular_") or name == "model_index.json":
        return "diffusers (trust_remote_code=True)"
    return "transformers (trust_remote_code=True)"


# transformers derives one auto_map entry from another when the config lacks its own: AutoImageProcessor from
# AutoFeatureExtractor (image_processing_auto), AutoVideoProcessor from AutoImageProcessor (video_processing_auto),
# by a plain str.replace over the whole reference, so the module part can change too.
_DERIVED_REFS = {
    "AutoFeatureExtractor": ("FeatureExtractor", "ImageProcessor", "AutoImageProcessor"),
    "AutoImageProcessor": ("ImageProcessor", "VideoProcessor", "AutoVideoProcessor"),
}


def _refs_from_auto_map(repo: _Repo, path: str, auto_map: Any, prefix: str = "auto_map") -> list[_Ref]:
    out: list[_Ref] = []
    items: list[tuple[str, Any]]
    if isinstance(auto_map, dict):
        items = [(str(k), v) for k, v in auto_map.items()]
    elif isinstance(auto_map, (list, tuple)):
        items = [("auto_map", v) for v in auto_map]
    else:
        return out
    for key, v in repo.capped(path, prefix, items):
        # a string, a [slow, fast] pair, or a {backend: reference} mapping (_resolve_auto_map_class_ref)
        vals = list(v.values()) if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else [v]
        for x in repo.capped(path, f"{prefix}.{key}", list(vals), 64):
            if not (isinstance(x, str) and x):
                continue
            out.append(_Ref(path, f"{prefix}.{key}", x, _loader_for(path)))
            derived = _DERIVED_REFS.get(key)
            if derived is not None and isinstance(v, str):
                alt = x.replace(derived[0], derived[1])
                if (
                    alt.rpartition(".")[0] != x.rpartition(".")[0]
                ):  # another module file, not just another class
                    out.append(_Ref(path, f"{prefix}.{key} (as {derived[2]})", alt, _loader_for(path)))
    return out


def _all_auto_map_refs(repo: _Repo, path: str, cfg: dict[str, Any]) -> list[_Ref]:
    """The top-level auto_map and every nested one: processor_config.json nests the processor configs (read from
    there first), and a composite model's sub-configs (text_config, vision_config ...) carry their own auto_map,
    which AutoModel.from_config(sub_config, trust_remote_code=...) imports."""
    refs = _refs_from_auto_map(repo, path, cfg.get("auto_map"))
    # every nested mapping once (iterative; bounded by the parsed document, itself at most MAX_CONFIG_BYTES)
    queue: list[tuple[str, Any]] = [
        (str(k), v) for k, v in cfg.items() if k != "auto_map" and isinstance(v, dict)
    ]
    while queue:
        key, node = queue.pop()
        if "auto_map" in node:
            refs.extend(_refs_from_auto_map(repo, path, node.get("auto_map"), f"{key[:200]}.auto_map"))
        queue.extend(
            (f"{key[:200]}.{k}", v) for k, v in node.items() if k != "auto_map" and isinstance(v, dict)
        )
    return refs


def _load_json(repo: _Repo, path: str) -> Any:
    """A loader config, parsed whole; too big, too deep or invalid fails closed (its auto_map went unseen)."""
    name = posixpath.basename(path)
    art = repo.arts.get(path)
    if art is not None and art.size > MAX_CONFIG_BYTES:
        repo.limit(
            path,
            "config_bytes",
            f"{name} larger than {MAX_CONFIG_BYTES} bytes not parsed; code it names unseen",
        )
        return None
    data = repo.read(path, MAX_CONFIG_BYTES)
    if data is None:
        if art is not None:
            repo.add(path, "HF-CONFIG-INVALID", f"{name} could not be read")
            repo.partial(path, f"{name} could not be read")
        return None
    try:
        return json.loads(data)
    except RecursionError:
        repo.limit(path, "config_depth", f"{name} nested too deeply to parse; code it names unseen")
    except ValueError as exc:
        repo.add(path, "HF-CONFIG-INVALID", f"{name} is not valid JSON: {exc}"[:300])
        repo.partial(path, f"{name} is not valid JSON")
    return None


def _versioned_configs(repo: _Repo) -> set[str]:
    """Files a config.json names in ``configuration_files``: PreTrainedConfig.get_config_dict reads config.json, then
    (get_configuration_file) the listed ``config.<version>.json`` of the highest version not above the installed
    transformers, and uses that dict instead, auto_map included. Which one wins depends on the reader's version:
    every listed file present is read as a config.json."""
    out: set[str] = set()
    for path in sorted(p for p in repo.arts if posixpath.basename(p) == "config.json"):
        data = repo.read(path, MAX_CONFIG_BYTES)
        if data is None or b"configuration_files" not in data:
            continue
        try:
            cfg = json.loads(data)
        except (ValueError, RecursionError):
            continue  # reported when config.json itself is checked
        files = cfg.get("configuration_files") if isinstance(cfg, dict) else None
        if not isinstance(files, list):
            continue
        for f in repo.capped(path, "configuration_files", files):
            if isinstance(f, str) and f.startswith("config.") and f.endswith(".json") and f != "config.json":
                cand = posixpath.normpath(posixpath.join(posixpath.dirname(path), f))
                if cand in repo.arts:
                    out.add(cand)
    return out


def _check_configs(repo: _Repo) -> None:
    versioned = _versioned_configs(repo)
    for path in sorted(repo.arts):
        # a versioned config replaces config.json for AutoConfig (and everything that reads the model config)
        name = "config.json" if path in versioned else posixpath.basename(path)
        if (
            name in AUTO_MAP_CONFIGS
            or name in TEMPLATE_CONFIGS
            or name in ("model_index.json", "modules.json")
        ):
            cfg = _load_json(repo, path)
            if not isinstance(cfg, (dict, list)):
                continue
            if name in HUB_KERNEL_CONFIGS:
                _check_hub_kernels(repo, path, cfg)
            if isinstance(cfg, dict):
                subs = _model_index_subfolders(path, cfg) if name == "model_index.json" else ()
                for r in _all_auto_map_refs(repo, path, cfg):
                    _resolve_ref(repo, r, subfolders=subs)
                pipes = cfg.get("custom_pipelines")
                if isinstance(pipes, dict):
                    for task, spec in repo.capped(path, "custom_pipelines", list(pipes.items())):
                        impl = spec.get("impl") if isinstance(spec, dict) else None
                        if isinstance(impl, str):
                            _resolve_ref(
                                repo,
                                _Ref(
                                    path,
                                    f"custom_pipelines.{task}",
                                    impl,
                                    "transformers pipeline (trust_remote_code=True)",
                                ),
                            )
                if name == "config.json" and cfg.get("trust_remote_code") is True:
                    repo.add(
                        path,
                        "HF-TRUST-REMOTE-CODE-FLAG",
                        "config.json sets trust_remote_code: true (no effect, but a lure to enable remote code)",
                    )
                if name in TEMPLATE_CONFIGS:
                    _check_chat_templates(repo, path, cfg.get("chat_template"))
                if name in ("model_index.json", "modular_model_index.json"):
                    _check_model_index(repo, path, cfg)
                if name == "adapter_config.json":
                    _check_peft_auto_mapping(repo, path, cfg.get("auto_mapping"))
                    _check_peft_megatron(repo, path, cfg)
            if name == "modules.json" and isinstance(cfg, list):
                _check_st_modules(repo, path, cfg)
        if name == OPEN_CLIP_CONFIG:
            cfg = _load_json(repo, path)
            if isinstance(cfg, dict):
                _check_open_clip(repo, path, cfg)
        if name in ST_TRANSFORMER_CONFIGS:
            cfg = _load_json(repo, path)
            if isinstance(cfg, dict):
                _check_st_transformer_config(repo, path, cfg)
                _check_hub_kernels(repo, path, cfg)
        if name in ST_ACTIVATION_CONFIGS or name in ST_IMPORT_CONFIGS:
            cfg = _load_json(repo, path)
            if isinstance(cfg, dict):
                if name == "config_sentence_transformers.json":
                    _check_hub_kernels(repo, path, cfg)
                if name in ST_ACTIVATION_CONFIGS:
                    _check_st_activations(repo, path, cfg)
                if (
                    name in ST_IMPORT_CONFIGS and path not in versioned
                ):  # module configs are read by name only
                    _check_st_imports(repo, path, cfg)
        elif name.endswith(".jinja") and (
            "chat_template" in name
            or posixpath.basename(posixpath.dirname(path)) in ("chat_templates", "additional_chat_templates")
        ):
            art = repo.arts[path]
            if art.size > MAX_TEMPLATE_BYTES:
                repo.limit(
                    path,
                    "template_bytes",
                    f"chat template larger than {MAX_TEMPLATE_BYTES} bytes not analyzed",
                )
                continue
            data = repo.read(path, MAX_TEMPLATE_BYTES)
            if data is not None:
                _check_chat_templates(repo, path, data.decode("utf-8", "replace"))
    # custom_generate/generate.py of the repository, or of a subfolder a model is loaded from (subfolder=...)
    by_root: dict[str, list[str]] = {}
    for p in sorted(repo.arts):
        m = _CUSTOM_GENERATE.match(p)
        if m is not None and p.endswith(".py"):
            by_root.setdefault(m.group(0), []).append(p)
    for root, gen in sorted(by_root.items()):
        anchor = root + "generate.py" if root + "generate.py" in repo.arts else gen[0]
        files, missing = _follow_imports(repo, anchor)
        files = _absolute_imports(
            repo, files, list(dict.fromkeys([posixpath.dirname(root.rstrip("/")), ""])), "absolute imports"
        )
        _mark_loaded(
            repo,
            files,
            "transformers generate (custom_generate, trust_remote_code=True)",
            "custom_generate",
            anchor,
        )
        worst = _worst(repo, files)
        repo.add(
            anchor,
            "HF-REMOTE-CODE",
            f"custom_generate: generate(trust_remote_code=True) runs {anchor}"
            + (f"; worst finding in that code: {worst}" if worst else ""),
            evidence={"key": "custom_generate", "files": files[:20], "worst_severity": worst},
        )


def _model_index_subfolders(path: str, cfg: dict[str, Any]) -> tuple[str, ...]:
    """diffusers AutoModel.from_pretrained(repo, subfolder=X) reads model_index.json first and, when X is one of its
    components, uses that document's ``auto_map["AutoModel"]``: get_class_from_dynamic_module opens
    ``X/<module>.py`` (diffusers 0.42 ran a component folder's module this way). Every component is such an X."""
    base = posixpath.dirname(path)
    return tuple(
        posixpath.join(base, k)
        for k, v in list(cfg.items())[:MAX_CONFIG_ENTRIES]
        if isinstance(k, str) and k and not k.startswith("_") and isinstance(v, list) and "/" not in k
    )


def _check_model_index(repo: _Repo, path: str, cfg: dict[str, Any]) -> None:
    """diffusers: components are [library, class]; a library that is not a known package is a repo module.

    DiffusionPipeline loads ``<component>/<library>.py`` as remote code when it exists, else it calls
    ``importlib.import_module(library)`` (get_class_obj_and_candidates); the modular pipelines resolve every
    ``[library, class]`` pair and the ``type_hint`` of a ``[library, class, spec]`` triple
    (modular_model_index.json) with ``simple_get_class_obj``, an import with no trust_remote_code at all.
    """
    base = posixpath.dirname(path)
    cls = cfg.get("_class_name")
    if isinstance(cls, list) and len(cls) == 2 and all(isinstance(x, str) for x in cls):
        # _resolve_custom_pipeline_and_cls / _get_custom_pipeline_class open the file "<_class_name[0]>.py" of the
        # model folder as written: "my.pipe" is my.pipe.py, not my/pipe.py
        _resolve_ref(
            repo,
            _Ref(path, "_class_name", f"{cls[0]}.{cls[1]}", "diffusers custom pipeline"),
            literal=posixpath.normpath(posixpath.join(base, cls[0] + ".py")),
        )
    if posixpath.basename(path) == "model_index.json":
        # DiffusionPipeline.from_pretrained(folder) tests os.path.isfile(folder / f"{custom_pipeline}.py") with the
        # caller's custom_pipeline, None by default: a "None.py" beside model_index.json is the custom pipeline
        # (its DiffusionPipeline subclass is found by find_pipeline_class), whatever _class_name says
        none_py = posixpath.join(base, "None.py")
        if none_py in repo.arts:
            _resolve_ref(
                repo,
                _Ref(path, "custom_pipeline=None", "None.DiffusionPipeline", "diffusers custom pipeline"),
                literal=none_py,
            )
    for comp, spec in repo.capped(path, posixpath.basename(path), list(cfg.items())):
        if comp.startswith("_") or not isinstance(spec, list) or len(spec) not in (2, 3):
            continue
        pairs: list[tuple[str, Any, Any]] = []
        if len(spec) == 2:
            pairs.append((f"model_index.{comp}", spec[0], spec[1]))
        if len(spec) == 3 and isinstance(spec[2], dict):
            hint = spec[2].get("type_hint")
            if isinstance(hint, (list, tuple)) and len(hint) == 2:
                pairs.append((f"model_index.{comp}.type_hint", hint[0], hint[1]))
            elif hint is not None:
                repo.add(
                    path,
                    "HF-CONFIG-INVALID",
                    f"component {comp!r} has a type_hint diffusers cannot read: {str(hint)[:100]!r}",
                    severity=Severity.MEDIUM,
                    evidence={"key": f"model_index.{comp}.type_hint"},
                )
        for key, lib, klass in pairs:
            _diffusers_component(repo, path, base, comp, key, lib, klass)


def _diffusers_component(
    repo: _Repo, path: str, base: str, comp: str, key: str, lib: Any, klass: Any
) -> None:
    if not isinstance(lib, str):
        return  # [null, null] leaves a component out; other non-names make the loader fail before importing
    klass = str(klass)
    if lib in DIFFUSERS_PIPELINE_MODULES:
        return  # is_pipeline_module is tested first: a class of diffusers.pipelines
    # <component>/<library>.py is a custom component whatever the library is called, "transformers" included
    dynamic = posixpath.join(base, comp, lib + ".py")
    hit: str | None
    if dynamic in repo.arts:
        hit, loader = dynamic, "diffusers custom component (trust_remote_code=True)"
        hits = [hit]
    elif lib in DIFFUSERS_LIBRARIES:
        return
    else:
        # importlib.import_module(library): a repository module when the model folder is on sys.path (the working
        # directory), else whatever the environment has under that name
        hits = _import_chain(repo, base, lib)  # every package __init__.py on the way runs too
        hit = hits[0] if hits else None
        loader = "diffusers (importlib.import_module of a component library)"
    if hit is None:
        repo.add(
            path,
            "HF-REMOTE-CODE",
            f"component {comp!r} makes diffusers import module {lib!r} (class {klass[:100]!r}) from the "
            "environment: not a diffusers/transformers library or pipeline module",
            severity=Severity.HIGH,
            evidence={"key": key, "reference": f"{lib}.{klass}"[:300], "files": []},
        )
        return
    files: list[str] = []
    for h in hits:
        files.extend(f for f in _follow_imports(repo, h)[0] if f not in files)
    files = _absolute_imports(repo, files, list(dict.fromkeys([base, ""])), "absolute imports")
    _mark_loaded(repo, files, loader, key, path)
    repo.add(
        path,
        "HF-REMOTE-CODE",
        f"component {comp!r} loads {klass} from repository code {' or '.join(hits)}",
        evidence={"key": key, "files": files[:20], "worst_severity": _worst(repo, files)},
    )


_PEFT_PARENTS = ("transformers", "peft", "diffusers", "sentence_transformers", "timm", "torch")


def _check_peft_auto_mapping(repo: _Repo, path: str, mapping: Any) -> None:
    """peft AutoPeftModel: importlib.import_module(auto_mapping.parent_library), then getattr(base_model_class)."""
    if not isinstance(mapping, dict):
        return
    parent = mapping.get("parent_library")
    if not isinstance(parent, str) or parent.split(".")[0] in _PEFT_PARENTS:
        return
    hits = _import_module_of_folder(
        repo, path, parent, "peft AutoPeftModel (import_module)", "auto_mapping.parent_library"
    )
    hit = hits[0] if hits else None
    repo.add(
        path,
        "HF-REMOTE-CODE",
        f"auto_mapping.parent_library makes peft import module {parent!r}"
        + (f" ({hit} in this repository)" if hit else " from the environment, not a known model library"),
        severity=Severity.HIGH,
        evidence={
            "key": "auto_mapping.parent_library",
            "reference": parent[:300],
            "files": hits,
        },
    )


def _import_module_of_folder(repo: _Repo, path: str, module: str, loader: str, key: str) -> list[str]:
    """``importlib.import_module(module)`` named by ``key`` of ``path``: the repository files of its package
    chain (importable when the model folder is the working directory, ``sys.path[0] == ""``) and what they
    import are code ``loader`` runs. Returns the chain's files."""
    hits = _import_chain(repo, posixpath.dirname(path), module)
    files: list[str] = []
    for h in hits:
        files.extend(f for f in _follow_imports(repo, h)[0] if f not in files)
    files = _absolute_imports(
        repo, files, list(dict.fromkeys([posixpath.dirname(path), ""])), "absolute imports"
    )
    _mark_loaded(repo, files, loader, key, path)
    return hits


def _check_peft_megatron(repo: _Repo, path: str, cfg: dict[str, Any]) -> None:
    """LoRA's dispatch_megatron: with a true ``megatron_config``, peft imports the module named by
    ``megatron_core`` (importlib.import_module) and reads ``tensor_parallel`` from it. peft 0.13 imported any name
    (a module of the model folder, the working directory, ran: marker file); newer releases accept only allowlisted
    prefixes. Anything but megatron.core blocks; a repository module it names is code."""
    if not cfg.get("megatron_config"):
        return
    core = cfg.get("megatron_core", "megatron.core")
    if isinstance(core, str) and (core == "megatron.core" or core.startswith("megatron.core.")):
        return
    hits: list[str] = []
    if isinstance(core, str) and re.fullmatch(r"[A-Za-z_][\w.]*", core):
        hits = _import_module_of_folder(
            repo, path, core, "peft LoRA (import_module of megatron_core)", "megatron_core"
        )
    repo.add(
        path,
        "HF-REMOTE-CODE",
        f"megatron_core {str(core)[:200]!r} with a megatron_config: peft imports that module"
        + (f" ({' and '.join(hits[:3])} in this repository)" if hits else " from the environment"),
        severity=Severity.HIGH,
        evidence={"key": "megatron_core", "reference": str(core)[:300], "files": hits[:20]},
    )


# sentence-transformers calls import_from_string(path)() for these config values: Dense's activation_function
# (base/modules/dense.py), CrossEncoder's sentence_transformers.activation_fn / sbert_ce_default_activation_function
# in config.json and activation_fn in config_sentence_transformers.json (cross_encoder/model.py). Any 'torch.'
# path is called even without trust_remote_code, anything at all with it: judged like a hydra target.
ST_ACTIVATION_CONFIGS = {"config.json", "config_sentence_transformers.json"}
_ST_ACTIVATION_KEYS = ("activation_function", "activation_fn", "sbert_ce_default_activation_function")


# sentence-transformers Transformer module configs (Transformer.load_config tries them in this order); their values
# are passed to Transformer(model_name_or_path, **config)
ST_TRANSFORMER_CONFIGS = {
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
}


def _check_st_transformer_config(repo: _Repo, path: str, cfg: dict[str, Any]) -> None:
    """``tokenizer_name_or_path`` in a saved module config makes Transformer load its tokenizer (AutoTokenizer,
    with the caller's trust_remote_code) from that repository or path instead of this one: its tokenizer code runs
    from outside this scan (sentence-transformers 6.3 ran another folder's tok.py this way). sentence-transformers
    never saves the key."""
    ref = cfg.get("tokenizer_name_or_path")
    if ref is None or ref == "":
        return
    repo.add(
        path,
        "HF-AUTOMAP-CROSS-REPO",
        f"tokenizer_name_or_path {str(ref)[:200]!r}: sentence-transformers loads the tokenizer, and with "
        "trust_remote_code its auto_map code, from another repository or path, outside this scan",
        evidence={"key": "tokenizer_name_or_path", "reference": str(ref)[:300], "repository": str(ref)[:200]},
    )


# transformers' PreTrainedConfig pops ``attn_implementation`` from the config dict (and the ``_attn_implementation``
# property setter takes the same value, a str or a {sub-config: str} mapping), in every sub-config too;
# sentence-transformers passes its module config's ``model_kwargs``/``model_args``/``config_kwargs`` to
# from_pretrained. A value shaped like a Hub repository ("org/repo[@revision][:function]", possibly behind a
# "paged|" prefix: integrations/hub_kernels.is_kernel) makes from_pretrained download that kernel repository with
# the ``kernels`` library and import it, with no trust_remote_code (transformers 5.24
# _check_and_adjust_attn_implementation -> load_and_register_attn_kernel -> get_kernel; an attacker-chosen @revision
# of a trusted repository too). Allowed: exactly the kernels transformers itself loads for flash_attention_*
# (FLASH_ATTN_KERNEL_VERSIONS) and those a model class lists in _compatible_flash_implementations, unpinned
# (measured on transformers 5.24); every other repository-shaped value is code outside this scan.
HUB_KERNEL_CONFIGS = {"config.json"}  # and config_sentence_transformers.json, ST_TRANSFORMER_CONFIGS
_ATTN_KEYS = frozenset({"attn_implementation", "_attn_implementation"})
HUB_KERNELS_ALLOWED = frozenset(
    {
        "kernels-community/flash-attn2",
        "kernels-community/flash-attn3",
        "kernels-community/vllm-flash-attn3",
        "kernels-community/aiter-flash-attn",
        "kernels-community/flash-attn4",
        "kernels-community/metal-flash-sdpa",
        "MiniMaxAI/msa",
    }
)


def _hub_kernel(value: str) -> bool:
    """The loader resolves a Hub kernel from this value (any '/' or ':' is treated as one: is_kernel's pattern is
    applied to the value and to its part after '|'), and it is not one of the allowed stock kernels."""
    if "/" not in value and ":" not in value:
        return False
    return value.removeprefix("paged|") not in HUB_KERNELS_ALLOWED


def _check_hub_kernels(repo: _Repo, path: str, cfg: dict[str, Any] | list[Any]) -> None:
    found: list[tuple[str, str]] = []
    queue: list[tuple[str, Any]] = [("", cfg)]
    seen = 0
    while queue:
        where, node = queue.pop()
        seen += 1
        if seen > 200_000:  # bounded by the parsed document (at most MAX_CONFIG_BYTES); fail closed past it
            repo.limit(
                path, "config_entries", "config nested beyond the attention-kernel walk; kernels unseen"
            )
            break
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for k, v in items:
            key = f"{where}.{k}" if where else str(k)
            if isinstance(k, str) and k in _ATTN_KEYS:
                vals = list(v.items()) if isinstance(v, dict) else [("", v)]
                for sub, x in vals:
                    if isinstance(x, str) and _hub_kernel(x):
                        found.append((f"{key}.{sub}" if sub else key, x))
            if isinstance(v, (dict, list)):
                queue.append((key[:300], v))
    for key, value in repo.capped(path, "attn_implementation", found, 64):
        repo.add(
            path,
            "HF-HUB-KERNEL",
            f"{key} = {value[:200]!r}: from_pretrained downloads this Hub kernel repository with the kernels "
            "library and imports it (no trust_remote_code): code outside this scan",
            evidence={"key": key[:300], "kernel": value[:300]},
        )


def _st_class_name(t: Any) -> str | None:
    return t.rsplit(".", 1)[-1] if isinstance(t, str) else None


def _st_module_dirs(repo: _Repo) -> dict[str, set[str]]:
    """Folders sentence-transformers loads a module from, with the class names loaded there: modules.json entries
    (``path``) and Router/Asym sub-modules (``types`` keys, folders of the router's own folder)."""
    if repo.module_dirs is not None:
        return repo.module_dirs
    out: dict[str, set[str]] = {}
    for path in sorted(repo.arts):
        name = posixpath.basename(path)
        if name not in ("modules.json", "router_config.json", "config.json"):
            continue
        data = repo.read(path, MAX_CONFIG_BYTES)
        if data is None or (b"Dense" not in data and b"Router" not in data and b"Asym" not in data):
            continue
        try:
            cfg = json.loads(data)
        except (ValueError, RecursionError):
            continue  # reported where the file itself is checked
        base = posixpath.dirname(path)
        if name == "modules.json" and isinstance(cfg, list):
            for m in cfg[:MAX_CONFIG_ENTRIES]:
                cls = _st_class_name(m.get("type")) if isinstance(m, dict) else None
                if cls and isinstance(m.get("path"), str):
                    d = posixpath.normpath(posixpath.join(base, m["path"])) if m["path"] else base
                    out.setdefault(d, set()).add(cls)
        elif isinstance(cfg, dict) and isinstance(cfg.get("types"), dict):
            for model_id, t in list(cfg["types"].items())[:MAX_CONFIG_ENTRIES]:
                cls = _st_class_name(t)
                if cls:
                    out.setdefault(posixpath.normpath(posixpath.join(base, str(model_id))), set()).add(cls)
    repo.module_dirs = out
    return out


def _check_st_activations(repo: _Repo, path: str, cfg: dict[str, Any]) -> None:
    from ..analysis.hydra_targets import DOTTED_NAME, judge_target

    keys = ["sbert_ce_default_activation_function"]
    # a Dense module's config: Dense.load imports activation_function before Dense(**config) checks in_features/
    # out_features, so the folder a modules.json (or Router/Asym types) entry loads as Dense counts without them
    if (
        "in_features" in cfg
        or "out_features" in cfg
        or "Dense" in _st_module_dirs(repo).get(posixpath.dirname(path), ())
    ):
        keys.append("activation_function")
    if posixpath.basename(path) == "config_sentence_transformers.json":
        keys.append("activation_fn")
    found: list[tuple[str, Any]] = [(k, cfg[k]) for k in keys if k in cfg]
    st = cfg.get("sentence_transformers")
    if isinstance(st, dict):
        found += [(f"sentence_transformers.{k}", st[k]) for k in _ST_ACTIVATION_KEYS if k in st]
    for key, value in found:
        if not isinstance(value, str) or "." not in value:
            continue  # import_from_string needs 'module.attr'; GPT-2's "activation_function": "gelu_new" is a name
        if not value.startswith("torch.") and DOTTED_NAME.fullmatch(value):
            hits = _import_chain(repo, posixpath.dirname(path), value)
            if hits:  # with trust_remote_code, import_from_string imports the model folder's module (cwd)
                _st_repo_code(repo, path, key, value, hits)
                continue
        issue = judge_target(value, key, repo.rules)
        if issue is not None:
            repo.add(
                path,
                issue.rule_id,
                f"sentence-transformers calls {key} {str(value)[:200]!r} with no arguments "
                f"(import_from_string(...)()): {issue.message}"[:500],
                severity=issue.severity,
                evidence={"key": key, "target": str(value)[:300], "loader": "sentence-transformers"},
            )


def _check_st_modules(repo: _Repo, path: str, modules: list[Any]) -> None:
    for m in repo.capped(path, "modules.json", modules):
        t = m.get("type") if isinstance(m, dict) else None
        if t is None and isinstance(m, dict) and "type" not in m:
            continue
        _st_class_ref(repo, path, f"modules.{m.get('name', '?') if isinstance(m, dict) else '?'}", t)


# Module configs whose values sentence-transformers imports with import_from_string(value) and then calls .load()
# on: Router (router_config.json, or the legacy config.json of Router/Asym with "types" and "structure") for each
# of its sub-modules, WordEmbeddings (wordembedding_config.json) for its tokenizer class.
ST_IMPORT_CONFIGS = {"router_config.json", "config.json", "wordembedding_config.json"}


def _check_st_imports(repo: _Repo, path: str, cfg: dict[str, Any]) -> None:
    name = posixpath.basename(path)
    if name == "wordembedding_config.json":
        if "tokenizer_class" in cfg:
            _st_class_ref(repo, path, "tokenizer_class", cfg["tokenizer_class"])
        return
    types = cfg.get("types")
    # Router.load reads config.json when the folder has no router_config.json and imports every type before it
    # reads "structure": a folder modules.json loads as a Router/Asym is one without it
    router_dir = (
        bool({"Router", "Asym"} & _st_module_dirs(repo).get(posixpath.dirname(path), set()))
        and posixpath.join(posixpath.dirname(path), "router_config.json") not in repo.arts
    )
    if name == "config.json" and not (isinstance(types, dict) and ("structure" in cfg or router_dir)):
        return  # a model config, not a Router/Asym module config
    if name == "router_config.json" and types is not None and not isinstance(types, dict):
        repo.add(
            path,
            "HF-CONFIG-INVALID",
            f"{name} 'types' is not a mapping; the modules sentence-transformers imports cannot be judged",
            evidence={"key": "types"},
        )
        repo.partial(path, f"{name} types unreadable")
        return
    for model_id, ref in repo.capped(path, "types", list((types or {}).items())):
        _st_class_ref(repo, path, f"types.{str(model_id)[:100]}", ref)


# The classes sentence-transformers saves as module types (modules.json, Router "types", WordEmbeddings
# tokenizer_class), measured on sentence-transformers 6.3 (every torch.nn.Module subclass with a load() in the
# package, plus its tokenizers) and the names older releases wrote (Asym, T5, CSRSparsity, IDF). Any
# "sentence_transformers.<module path>.<one of these>" is that class at a current or deprecated path: import_from_string
# only reaches attributes of real sentence_transformers modules.
ST_MODULE_CLASSES = frozenset(
    """
    Asym BaseTokenPooling BoW CLIPModel CNN CSRSparsity Dense Dropout HierarchicalTokenPooling IDF InputModule LSTM
    LambdaTokenPooling LayerNorm LogitScore MLMTransformer Module MultiVectorMask Normalize Pooling Router
    SentenceTransformer SparseAutoEncoder SparseStaticEmbedding SpladePooling StaticEmbedding T5 Transformer
    WeightedLayerPooling WordEmbeddings WordWeights
    PhraseTokenizer TransformersTokenizerWrapper WhitespaceTokenizer WordTokenizer
    """.split()
)
# references of other libraries sentence-transformers maps to its own class without importing them
# (MultiVectorEncoder _CLASS_REF_ALIASES: PyLate's saved Dense)
ST_CLASS_ALIASES = frozenset({"pylate.models.Dense.Dense"})


def _st_own_class(t: str) -> bool:
    from ..analysis.hydra_targets import DOTTED_NAME

    parts = t.split(".")
    return (
        len(parts) >= 3
        and parts[0] == "sentence_transformers"
        and parts[-1] in ST_MODULE_CLASSES
        and DOTTED_NAME.fullmatch(t) is not None
    )


def _import_chain(repo: _Repo, base_dir: str, dotted: str) -> list[str]:
    """Repository files ``importlib.import_module`` runs for ``dotted`` or any of its prefixes (import_from_string
    tries the whole path as a module first, then its parent): every package ``__init__.py`` on the way and the
    module itself, namespace packages (no ``__init__.py``) included, beside the config and at the repository root
    (the model folder as the working directory)."""
    parts = dotted.split(".")
    cands: list[str] = []
    for d in dict.fromkeys([base_dir, ""]):
        for i in range(1, len(parts) + 1):
            rel = "/".join(parts[:i])
            cands.append(posixpath.join(d, rel + ".py") if d else rel + ".py")
            cands.append(posixpath.join(d, rel, "__init__.py") if d else posixpath.join(rel, "__init__.py"))
    return _hits(repo, cands)


def _st_repo_code(repo: _Repo, path: str, key: str, ref: str, hits: list[str]) -> None:
    """Repository modules sentence-transformers imports for ``ref`` (and what they import): code."""
    loader = "sentence-transformers (trust_remote_code=True or a local folder)"
    files: list[str] = []
    missing: list[str] = []
    for h in hits:
        more, gone = _follow_imports(repo, h)
        files.extend(f for f in more if f not in files)
        missing.extend(m for m in gone if m not in missing)
    files = _absolute_imports(
        repo, files, list(dict.fromkeys([posixpath.dirname(path), ""])), "absolute imports"
    )
    _mark_loaded(repo, files, loader, key, path)
    for m in missing[:20]:
        repo.add(
            path,
            "HF-AUTOMAP-MISSING",
            f"{' or '.join(hits[:3])} imports {m} (via {key}), which is not in the repository",
            severity=Severity.MEDIUM,
            evidence={"key": key, "missing": m},
        )
    worst = _worst(repo, files)
    repo.add(
        path,
        "HF-REMOTE-CODE",
        f"{key} -> {ref[:200]}: {loader} imports {' and '.join(hits[:5])}"
        + (f"; worst finding in that code: {worst}" if worst else ""),
        evidence={"key": key, "reference": ref[:300], "files": files[:20], "worst_severity": worst},
    )


def _st_class_ref(repo: _Repo, path: str, key: str, t: Any) -> None:
    """One class reference sentence-transformers imports and calls ``.load`` (or the constructor) on: its own
    module classes, repository code, or anything else. Since 6.0 a reference outside ``sentence_transformers.``
    needs trust_remote_code=True (before it, a local folder imported it silently): get_class_from_dynamic_module
    for ``module.Class``, else import_from_string from the environment. Not a hydra target (nothing vouches for
    what ``.load(folder, subfolder=..., ...)`` of an arbitrary importable does): allowlist first, everything
    else blocks."""
    from ..analysis.hydra_targets import DOTTED_NAME, judge_target

    if isinstance(t, str) and _st_own_class(t):
        return
    loader = "sentence-transformers (trust_remote_code=True or a local folder)"
    if isinstance(t, str) and "--" in t:
        # "org/repo--module.Class": get_class_from_dynamic_module fetches another repository
        _resolve_ref(repo, _Ref(path, key, t, loader))
        return
    if isinstance(t, str) and DOTTED_NAME.fullmatch(t):
        hits = _import_chain(repo, posixpath.dirname(path), t)
        if hits:
            _st_repo_code(repo, path, key, t, hits)
            return
    if t in ST_CLASS_ALIASES:
        return  # the library's own class (from the environment: a pylate/ folder shipped here is code, above)
    issue = judge_target(t, key, repo.rules)
    if issue is not None and issue.rule_id == "CONFIG-TARGET-DANGEROUS":
        repo.add(
            path,
            issue.rule_id,
            f"sentence-transformers imports {key} {str(t)[:200]!r} (import_from_string) and calls it: "
            f"{issue.message}"[:500],
            severity=issue.severity,
            evidence={"key": key, "target": str(t)[:300], "loader": "sentence-transformers"},
        )
        return
    repo.add(
        path,
        "HF-REMOTE-CODE",
        f"{key} {str(t)[:200]!r} is not a sentence-transformers module class and not in this repository: "
        "sentence-transformers imports it from the environment (trust_remote_code=True, or any local folder "
        "before 6.0) and calls its load()",
        severity=Severity.HIGH,
        evidence={"key": key, "reference": str(t)[:300], "files": [], "loader": "sentence-transformers"},
    )


# ---------------------------------------------------------------------------- code folders other loaders import

TORCHSERVE_MANIFEST = "MAR-INF/MANIFEST.json"
TORCHSERVE_LOADER = "TorchServe (ts.model_loader, no-archive model folder)"
HUBCONF_LOADER = "torch.hub.load (hubconf.py)"


def _folder_py(repo: _Repo, folder: str) -> list[str]:
    prefix = folder + "/" if folder else ""
    return sorted(p for p in repo.arts if p.startswith(prefix) and p.lower().endswith(".py"))


def _check_torchserve_folders(repo: _Repo) -> None:
    """A TorchServe model folder (torch-model-archiver --archive-format no-archive): the server puts the folder
    first on sys.path and imports the handler and model file; every .py of it is importable, so all are code."""
    for path in sorted(
        p for p in repo.arts if p == TORCHSERVE_MANIFEST or p.endswith("/" + TORCHSERVE_MANIFEST)
    ):
        from ..formats.torchserve_mar import BUILTIN_HANDLERS

        folder = path[: -len(TORCHSERVE_MANIFEST)].rstrip("/")
        code = _folder_py(repo, folder)
        _mark_loaded(repo, code, TORCHSERVE_LOADER, "model folder", path)
        cfg = _load_json(repo, path)
        model = cfg.get("model") if isinstance(cfg, dict) else None
        handler = model.get("handler") if isinstance(model, dict) else None
        if not isinstance(handler, str) or not handler.strip():
            if cfg is not None:
                repo.add(
                    path,
                    "HF-CONFIG-INVALID",
                    "TorchServe manifest names no handler; which code the server runs is unknown",
                )
                repo.partial(path, "TorchServe handler unknown")
            continue
        # ts.model_loader: "module[.py][:function]", the last path component imported from the folder first
        module = handler.split(":", 1)[0].strip()
        module = (module[:-3] if module.endswith(".py") else module).split("/")[-1]
        rel = module.replace(".", "/")
        local = {posixpath.join(folder, rel + ".py"), posixpath.join(folder, rel, "__init__.py")} & set(
            repo.arts
        )
        builtin = module in BUILTIN_HANDLERS or module.startswith("ts.torch_handler.")
        if not local and not builtin:
            repo.add(
                path,
                "HF-AUTOMAP-MISSING",
                f"TorchServe handler {handler[:200]!r} is neither in the model folder nor a built-in handler: "
                "code from elsewhere runs",
                evidence={"key": "model.handler", "reference": handler[:300]},
            )
        repo.add(
            path,
            "HF-REMOTE-CODE",
            f"TorchServe model folder: handler {handler[:100]!r}, {len(code)} Python file(s) importable",
            evidence={"key": "model.handler", "reference": handler[:300], "files": code[:20]},
        )


TRITON_LOADER = "Triton Inference Server (python backend)"
_TRITON_PYTHON = re.compile(rb"""\bbackend\s*:\s*["']python["']""")


def _check_triton_models(repo: _Repo) -> None:
    """A Triton model folder whose config.pbtxt selects the python backend: the server imports
    <version>/model.py (or default_model_filename) and everything it imports; every .py of the folder is code."""
    for path in sorted(p for p in repo.arts if posixpath.basename(p) == "config.pbtxt"):
        data = repo.read(path, MAX_CONFIG_BYTES)
        if data is None:
            repo.limit(path, "config_bytes", "config.pbtxt too large or unreadable; its backend unknown")
            continue
        if not _TRITON_PYTHON.search(data):
            continue
        folder = posixpath.dirname(path)
        code = _folder_py(repo, folder)
        _mark_loaded(repo, code, TRITON_LOADER, "backend: python", path)
        repo.add(
            path,
            "HF-REMOTE-CODE",
            f"Triton python backend model: {len(code)} Python file(s) the server imports",
            evidence={"key": "backend", "files": code[:20]},
        )
        if b"EXECUTION_ENV_PATH" in data:
            repo.add(
                path,
                "CARRIER-ENVIRONMENT",
                "Triton python backend EXECUTION_ENV_PATH: the model runs in a packed environment it ships "
                "(interpreter and libraries from the archive)",
                severity=Severity.HIGH,
                evidence={"key": "EXECUTION_ENV_PATH"},
            )


def _check_hubconf(repo: _Repo) -> None:
    """torch.hub.load(folder or GitHub repo) puts the folder on sys.path, imports hubconf.py and calls the named
    entry point: hubconf.py and the folder's modules it imports are code."""
    for path in sorted(p for p in repo.arts if posixpath.basename(p) == "hubconf.py"):
        folder = posixpath.dirname(path)
        files, missing = _follow_imports(repo, path)
        files = _absolute_imports(repo, files, [folder], "hubconf imports")
        _mark_loaded(repo, files, HUBCONF_LOADER, "hubconf", path)
        repo.add(
            path,
            "HF-REMOTE-CODE",
            f"torch.hub.load imports {path} and calls its entry points"
            + (f" ({len(files) - 1} more repository file(s) imported)" if len(files) > 1 else ""),
            evidence={"key": "hubconf", "files": files[:20], "worst_severity": _worst(repo, files)},
        )


# ---------------------------------------------------------------------------- open_clip

OPEN_CLIP_CONFIG = "open_clip_config.json"
# open_clip get_tokenizer: text_cfg.tokenizer_kwargs go to HFTokenizer (its own parameters) or SimpleTokenizer, and
# HFTokenizer hands every other key to AutoTokenizer.from_pretrained(hf_tokenizer_name, **kwargs) (open_clip 3.3)
OPEN_CLIP_TOKENIZER_KWARGS = frozenset(
    {
        "clean",
        "strip_sep_token",
        "language",
        "tokenizer_mode",
        "context_length",
        "additional_special_tokens",
        "reduction_mask",
        "use_fast",
        "padding_side",
        "model_max_length",
        "do_lower_case",
    }
)


def _check_open_clip(repo: _Repo, path: str, cfg: dict[str, Any]) -> None:
    """``tokenizer_kwargs`` of an open_clip config reach ``AutoTokenizer.from_pretrained`` of ``hf_tokenizer_name``
    (another repository for an ``hf-hub:`` model, this folder for ``local-dir:``): ``trust_remote_code`` there
    runs that tokenizer's auto_map code, and other loader options (revision, subfolder, ...) choose what is
    loaded. The keys open_clip's own tokenizers take are allowed; any other blocks."""
    model_cfg = cfg.get("model_cfg", cfg)
    text_cfg = model_cfg.get("text_cfg") if isinstance(model_cfg, dict) else None
    if not isinstance(text_cfg, dict) or "tokenizer_kwargs" not in text_cfg:
        return
    kwargs = text_cfg["tokenizer_kwargs"]
    if not isinstance(kwargs, dict):
        if kwargs is not None:
            repo.add(
                path,
                "HF-CONFIG-INVALID",
                "open_clip text_cfg.tokenizer_kwargs is not a mapping; what the tokenizer is given is unknown",
                severity=Severity.HIGH,
                evidence={"key": "model_cfg.text_cfg.tokenizer_kwargs"},
            )
        return
    tok = text_cfg.get("hf_tokenizer_name")
    for k, v in repo.capped(path, "tokenizer_kwargs", list(kwargs.items())):
        if k in OPEN_CLIP_TOKENIZER_KWARGS:
            continue
        remote = k == "trust_remote_code"
        if remote and not v:  # JSON as json.load gives it: Python truthiness
            continue
        repo.add(
            path,
            "HF-REMOTE-CODE" if remote else "HF-CONFIG-INVALID",
            f"open_clip text_cfg.tokenizer_kwargs.{str(k)[:100]} = {str(v)[:100]!r} is passed to "
            f"AutoTokenizer.from_pretrained({str(tok)[:200]!r})"
            + (
                ": the tokenizer's auto_map code runs"
                if remote
                else ": not an option open_clip's tokenizers take"
            ),
            severity=Severity.HIGH,
            evidence={
                "key": f"model_cfg.text_cfg.tokenizer_kwargs.{str(k)[:100]}",
                "reference": str(tok)[:300],
            },
        )


# ---------------------------------------------------------------------------- spaCy pipelines

SPACY_LOADER = "spacy.load (a sourced component)"
_SPACY_SECTION = re.compile(rb"^\s*\[(?:nlp|components)[\].]", re.M)


def _spacy_tree(text: str) -> dict[str, Any]:
    """config.cfg as thinc's Config reads it: configparser (strict, case-sensitive keys, no interpolation here),
    section names split on '.', every value JSON when it parses as JSON, else the text. Raises ValueError."""
    import configparser

    cp = configparser.ConfigParser(interpolation=None, allow_no_value=True)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        cp.read_string(text)
    except configparser.Error as exc:
        raise ValueError(str(exc)) from exc
    tree: dict[str, Any] = {}
    for section in cp.sections()[:MAX_CONFIG_ENTRIES]:
        node = tree
        for part in section.split("."):
            nxt = node.setdefault(part, {})
            node = nxt if isinstance(nxt, dict) else {}
        for key, raw in list(cp.items(section, raw=True))[:MAX_CONFIG_ENTRIES]:
            try:
                node[key] = json.loads(raw) if raw is not None else None
            except ValueError:
                node[key] = raw
    return tree


def _spacy_remote_code(repo: _Repo, path: str, tree: dict[str, Any]) -> None:
    """A true ``trust_remote_code`` anywhere in the config: spacy-transformers hands ``tokenizer_config`` /
    ``transformer_config`` to transformers' from_pretrained: of the model ``name`` (another repository) at
    initialize, and of the pipeline's own ``transformer/model`` folder under spacy.load (the v1.0 layout: 1.4 ran
    that folder's auto_map code this way, marker file). A saved pipeline never needs one."""
    stack: list[tuple[str, Any]] = [("", tree)]
    seen = 0
    while stack and seen < 100_000:
        where, node = stack.pop()
        seen += 1
        if not isinstance(node, dict):
            continue
        for k, v in node.items():
            key = f"{where}.{k}" if where else str(k)
            if k == "trust_remote_code" and v:  # thinc JSON values; an interpolation is a non-empty string
                repo.add(
                    path,
                    "HF-REMOTE-CODE",
                    f"{key[:200]} = {str(v)[:100]!r}: a transformers loader of this pipeline runs the named "
                    "model's auto_map code, outside this scan",
                    severity=Severity.HIGH,
                    evidence={"key": key[:300], "loader": "spacy"},
                )
            elif isinstance(v, dict):
                stack.append((key[:300], v))


def _check_spacy_configs(repo: _Repo) -> None:
    """A spaCy pipeline folder: ``spacy.load`` builds every ``[components.<name>]`` from its config. One with a
    ``source`` is taken from another pipeline (Language.from_config -> util.load_model(source)): an installed
    package of that name is imported and its ``load()`` called (is_package: any distribution on sys.path, the
    working directory's ``<name>.dist-info`` included), else a pipeline folder at that path (relative to the
    working directory) is loaded. ``nlp.to_disk`` never writes ``source`` (the sourced component's own config is
    saved), so every one is code or a model from outside this scan (spaCy 3.8 imported a package of the model
    folder this way)."""
    for path in sorted(p for p in repo.arts if posixpath.basename(p) == "config.cfg"):
        data = repo.read(path, MAX_CONFIG_BYTES)
        if data is None:
            repo.limit(path, "config_bytes", "config.cfg too large or unreadable; its components unseen")
            continue
        if not _SPACY_SECTION.search(data):
            continue
        try:
            tree = _spacy_tree(data.decode("utf-8", "replace"))
        except ValueError as exc:
            repo.add(
                path,
                "HF-CONFIG-INVALID",
                f"spaCy config.cfg does not parse: {exc}"[:300],
                severity=Severity.HIGH,
            )
            repo.partial(path, "spaCy config.cfg unreadable; its components unseen")
            continue
        _spacy_remote_code(repo, path, tree)
        comps = tree.get("components")
        if not isinstance(comps, dict):
            continue
        base = posixpath.dirname(path)
        for name, comp in repo.capped(path, "components", list(comps.items())):
            if not isinstance(comp, dict) or "source" not in comp:
                continue
            src = comp["source"]
            key = f"components.{str(name)[:100]}.source"
            hits: list[str] = []
            if isinstance(src, str) and re.fullmatch(r"[A-Za-z_][\w.-]*", src):
                module = src.replace("-", "_")
                hits = _import_chain(repo, base, module)
            if hits:
                files: list[str] = []
                for h in hits:
                    files.extend(f for f in _follow_imports(repo, h)[0] if f not in files)
                files = _absolute_imports(repo, files, list(dict.fromkeys([base, ""])), "absolute imports")
                _mark_loaded(repo, files, SPACY_LOADER, key, path)
            repo.add(
                path,
                "HF-REMOTE-CODE",
                f"{key} = {str(src)[:200]!r}: spacy.load imports the package of that name and calls its load(), "
                "or loads the pipeline at that path"
                + (
                    f" ({' and '.join(hits[:3])} in this repository)"
                    if hits
                    else ": code or a model outside this scan"
                ),
                severity=Severity.HIGH,
                evidence={"key": key, "reference": str(src)[:300], "files": hits[:20], "loader": "spacy"},
            )


ENTRY_POINTS_LOADER = "importlib.metadata entry points (a distribution in the model folder)"
_DIST_INFO = re.compile(r"(?:^|/)[^/]+\.(?:dist|egg)-info/entry_points\.txt$", re.I)


def _check_entry_points(repo: _Repo) -> None:
    """``<name>.dist-info/entry_points.txt`` (or ``.egg-info``) shipped in a repository: with the model folder on
    sys.path (the working directory: python -c, notebooks) importlib.metadata lists that distribution, and any
    library that looks plugins up by entry point imports the module named (spaCy's registries: a config.cfg
    ``factory`` or ``@architectures`` name found there imported the folder's module under spacy.load). Every
    module it names is code; the file itself is a distribution no model needs."""
    for path in sorted(p for p in repo.arts if _DIST_INFO.search(p)):
        import configparser  # only when such a file exists: 8 M instructions of every local scan (issue #13)

        folder = posixpath.dirname(posixpath.dirname(path))
        data = repo.read(path, MAX_CONFIG_BYTES)
        refs: list[tuple[str, str]] = []
        err = None
        if data is None:
            err = "too large or unreadable"
        else:
            cp = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
            cp.optionxform = str  # type: ignore[assignment,method-assign]
            try:
                cp.read_string(data.decode("utf-8", "replace"))
                for section in cp.sections():
                    refs += [(f"{section}.{k}", v or "") for k, v in cp.items(section, raw=True)]
            except configparser.Error as exc:
                err = str(exc)
        if err is not None:
            repo.partial(path, f"entry points unreadable: {err}"[:200])
        files: list[str] = []
        for _key, value in repo.capped(path, "entry points", refs):
            module = value.split(":", 1)[0].split("[", 1)[0].strip()
            if not module:
                continue
            for h in _import_chain(repo, folder, module):
                for f in _follow_imports(repo, h)[0]:
                    if f not in files:
                        files.append(f)
        files = _absolute_imports(repo, files, [folder], "absolute imports")
        _mark_loaded(repo, files, ENTRY_POINTS_LOADER, "entry_points", path)
        repo.add(
            path,
            "HF-REMOTE-CODE",
            f"a Python distribution's entry points ({len(refs)}) in the repository: libraries that load plugins by "
            "entry point import the modules it names when the folder is on sys.path"
            + (f" ({', '.join(files[:3])} in this repository)" if files else ""),
            severity=Severity.HIGH,
            evidence={
                "key": "entry_points",
                "entries": [f"{k} = {v}"[:200] for k, v in refs[:20]],
                "files": files[:20],
            },
        )


# ---------------------------------------------------------------------------- chat templates


def _check_chat_templates(repo: _Repo, path: str, value: Any) -> None:
    if path in repo.results:
        return  # the file's own inspection judged its templates by content (analysis.template_carriers)
    templates: list[tuple[str, str]] = []
    if isinstance(value, str):
        templates.append(("default", value))
    elif isinstance(value, list):
        for t in repo.capped(path, "chat_template", value, 256):
            if isinstance(t, dict) and isinstance(t.get("template"), str):
                templates.append((str(t.get("name", "?"))[:100], t["template"]))
    elif isinstance(value, dict):
        items = repo.capped(path, "chat_template", list(value.items()), 256)
        templates.extend((str(k)[:100], v) for k, v in items if isinstance(v, str))
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
            repo.add(
                path,
                issue.rule_id,
                f"chat template {name!r}: {issue.message}"[:500],
                severity=issue.severity,
                evidence=ev,
            )


# ---------------------------------------------------------------------------- scripts, requirements, LFS


def _check_misc(repo: _Repo) -> None:
    from .results import digest_owners, format_lookup

    # formats and digests asked of the results, not every result loaded (a ResultTable keeps them on disk)
    format_of = format_lookup(repo.results)
    by_sha: dict[str, str] | None = None  # built at the first LFS pointer
    for path in sorted(repo.arts):
        fmt = format_of(path)
        if _SCRIPT_NAMES.search(path) and fmt in ("text", "unknown", None):
            from ..formats.code_files import shell_dangers

            data = repo.read(path, 4 << 20) or b""
            dangers = shell_dangers(data.decode("utf-8", "replace"))
            repo.add(
                path,
                "HF-SHELL-SCRIPT",
                "script file" + (f" with {', '.join(dangers)}" if dangers else ""),
                severity=Severity.HIGH if dangers else None,
                evidence={"patterns": dangers} if dangers else {},
            )
        elif _REQ_NAMES.search(path) and fmt == "text":
            req_text = (repo.read(path, 1 << 20) or b"").decode("utf-8", "replace")
            lines = [
                ln.strip() for ln in req_text.splitlines() if ln.strip() and not ln.strip().startswith("#")
            ]
            from ..formats.carrier_code import RISKY_REQUIREMENT

            risky = [ln[:200] for ln in lines if RISKY_REQUIREMENT.search(ln)]
            repo.add(
                path,
                "HF-REQUIREMENTS",
                f"requirements file lists {len(lines)} entr{'y' if len(lines) == 1 else 'ies'}"
                + (f"; {len(risky)} install from URLs, VCS or extra indexes" if risky else ""),
                severity=Severity.MEDIUM if risky else None,
                evidence={"entries": [ln[:100] for ln in lines[:30]], "risky": risky[:10]},
            )
        elif fmt == "lfs-pointer":
            from ..formats.code_files import parse_lfs_pointer

            fr = repo.results[path]
            if by_sha is None:
                by_sha = {sha: p for p, sha, f in digest_owners(repo.results) if sha and f != "lfs-pointer"}
            info = parse_lfs_pointer(repo.read(path, 1024) or b"") or {}
            other = by_sha.get(info.get("oid") or "")
            if other:
                for f in fr.findings:
                    if f.rule_id == "HF-LFS-POINTER":
                        f.evidence["object_present_as"] = other


def check_hf_repo(
    snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    repo = _Repo(snapshot, results, rules, limits, arts={a.path: a for a in snapshot.artifacts})
    _check_python_files(repo)
    _check_configs(repo)
    _check_torchserve_folders(repo)
    _check_triton_models(repo)
    _check_hubconf(repo)
    _check_spacy_configs(repo)
    _check_entry_points(repo)
    _propagate_reach(repo)
    _report_loaded(repo)
    _check_misc(repo)
    return repo.extra


_TF_SHARD_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")


def check_tf_checkpoint_shards(snapshot, results, rules, limits):  # type: ignore[no-untyped-def]
    """TensorFlow checkpoint shards beside their index (``tf_savedmodel.check_checkpoint_shards``), importing
    the TensorFlow module only for a snapshot that holds a shard (issue #13: a one-file scan never does)."""
    if not any(_TF_SHARD_SUFFIX.search(a.path) for a in snapshot.artifacts):
        return []
    from ..formats.tensorflow.tf_savedmodel import check_checkpoint_shards

    return check_checkpoint_shards(snapshot, results, rules, limits)


REPO_CHECKS = [check_hf_repo, check_tf_checkpoint_shards]
