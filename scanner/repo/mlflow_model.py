"""MLflow model folders: what ``mlflow.pyfunc.load_model`` imports and runs, read from ``MLmodel``.

``MLmodel`` (YAML) lists flavors. ``python_function.loader_module`` is imported
and its ``_load_pyfunc`` called: MLflow's own flavor modules are the library,
any other module is code (from the model's ``code`` folder, or from somewhere
this scan never saw). The ``code`` folder is put on ``sys.path`` before loading,
so every file in it is importable code; models-from-code name a ``.py`` that is
executed. Pickles (``python_model.pkl`` via cloudpickle, ``model.pkl``) are
judged by the per-file scan's pickle analysis. ``conda.yaml`` /
``python_env.yaml`` pip entries that install from URLs, VCS or other indexes
are raised. An ``MLmodel`` that cannot be read fails closed.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import Any

from ..analysis.config_yaml import MAX_YAML_BYTES, parse_yaml_config
from ..findings import Coverage, FileResult, Severity
from ..io.reader import ReaderError
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Artifact, Snapshot
from .findings import RepoFindings

LOADER = "mlflow.pyfunc.load_model"
# mlflow/<flavor>: the modules MLflow itself ships as loader_module values
MLFLOW_FLAVORS = {
    "sklearn",
    "pytorch",
    "tensorflow",
    "keras",
    "xgboost",
    "lightgbm",
    "catboost",
    "onnx",
    "transformers",
    "pyfunc",
    "spark",
    "statsmodels",
    "prophet",
    "h2o",
    "spacy",
    "fastai",
    "paddle",
    "pmdarima",
    "diviner",
    "sentence_transformers",
    "langchain",
    "llama_index",
    "openai",
    "dspy",
    "johnsnowlabs",
    "mleap",
    "gluon",
    "promptflow",
    "pyspark",
    "shap",
    "tensorflow.keras",
    "models",
    "ag2",
    "crewai",
    "smolagents",
}
ENV_FILES = ("conda", "virtualenv")


class _Folder(RepoFindings):
    def __init__(self, snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, base: str) -> None:
        self.arts = {a.path: a for a in snapshot.artifacts}
        self.results = results
        self.rules = rules
        self.base = base
        self.extra: list[FileResult] = []

    def path(self, rel: str) -> str:
        return posixpath.normpath(posixpath.join(self.base, rel)) if self.base else posixpath.normpath(rel)

    def fail_closed(self, path: str, note: str) -> None:
        fr = self.result(path)
        if fr.coverage is Coverage.FULL:
            fr.coverage = Coverage.PARTIAL
        if note not in fr.coverage_notes:
            fr.coverage_notes.append(note)

    def read(self, path: str, cap: int) -> bytes | None:
        art = self.arts.get(path)
        if art is None or art.size > cap:
            return None
        try:
            with art.open() as r:
                return r.read(0, min(r.size, cap))
        except (ReaderError, OSError):
            return None

    def digest(self, art: Artifact) -> str | None:
        fr = self.results.get(art.path)
        if fr is not None and fr.sha256:
            return fr.sha256
        h = hashlib.sha256()
        try:
            with art.open() as r:
                for chunk in r.stream(0, chunk=1 << 20):
                    h.update(chunk)
        except (ReaderError, OSError):
            return None
        return h.hexdigest()


def _code(folder: _Folder, path: str, role: str) -> None:
    art = folder.arts.get(path)
    if art is None:
        return
    digest = folder.digest(art)
    if digest is None:
        folder.add(path, "FILE-READ-ERROR", "code file could not be read to compute its digest")
        folder.fail_closed(path, "code digest unavailable")
        return
    from ..formats.carrier_code import trust_message

    folder.add(
        path,
        "CODE-EXECUTED-BY-LOADER",
        trust_message(path, LOADER, digest),
        evidence={"sha256": digest, "loader": LOADER, "role": role, "file": path[:300]},
    )


# modules MLflow's own flavors import by a name read from the model: keras_module (MLmodel flavor key, or
# data/keras_module.txt) and data/pickle_module_info.txt (the pickle module torch.load is given); what MLflow
# itself writes there, anything else is importlib.import_module of a module the model chose
KERAS_MODULES = frozenset({"keras", "tensorflow.keras", "tf_keras"})
PICKLE_MODULES = frozenset({"mlflow.pytorch.pickle_module", "pickle", "cloudpickle", "dill"})
MODULE_SPEC_FILES = {"keras_module.txt": KERAS_MODULES, "pickle_module_info.txt": PICKLE_MODULES}


def _under(path: str, d: str) -> bool:
    return d in ("", ".") or path.startswith(d + "/")


def _module_file(folder: _Folder, code_dirs: list[str], module: str) -> str | None:
    rel = module.replace(".", "/")
    for d in code_dirs:
        for cand in (f"{rel}.py", f"{rel}/__init__.py"):
            cand = cand if d in ("", ".") else f"{d}/{cand}"
            if cand in folder.arts:
                return cand
    return None


def _named_module(
    folder: _Folder, mlmodel: str, code_dirs: list[str], roles: dict[str, str], module: str, where: str
) -> None:
    """A module name MLflow imports: code in the model's code folder, or code from elsewhere (fails closed)."""
    found = _module_file(folder, code_dirs, module)
    if found:
        roles[found] = where
        return
    folder.add(
        mlmodel,
        "CARRIER-CODE-MISSING",
        f"{where} {module[:200]!r} is not a module MLflow writes there and not in the model's code folder: "
        "importlib.import_module runs code from elsewhere",
        evidence={"module": module[:300], "key": where},
    )


def _check_transformers_sources(folder: _Folder, mlmodel: str, flavor: dict[str, Any]) -> None:
    """mlflow.transformers (_load_pyfunc / load_model, MLflow 3.18 transformers/__init__.py and model_io.py) loads
    the model from outside the folder when the flavor says so: ``local_base_model_path`` (a PEFT base model at a
    local path) or ``source_model_revision`` (saved with save_pretrained=False: ``source_model_name`` at that
    revision from the Hugging Face Hub, and then its components from ``<name>_name``). When
    ``pipeline_model_type`` (or a component type) is not a transformers class, AutoConfig and the model load with
    trust_remote_code=True: that repository's code runs (MLflow >= 3.18 asks MLFLOW_ALLOW_MODEL_CODE_EXECUTION
    first, earlier versions do not). Weights and code from there are outside this scan."""
    sources: list[tuple[str, str]] = []
    base = flavor.get("local_base_model_path")
    if base:
        sources.append(("local_base_model_path", str(base)))
    elif "source_model_revision" in flavor:
        name = flavor.get("source_model_name")
        sources.append(("source_model_name", f"{name}@{flavor.get('source_model_revision')}"))
        comps = flavor.get("components")
        names = [c for c in (comps if isinstance(comps, list) else [])[:20] if isinstance(c, str)]
        for c in [
            *names,
            "processor",
        ]:  # every component comes from the Hub then (_load_component, no local path)
            ref = flavor.get(f"{c}_name")
            if ref and ref != name:
                sources.append((f"{c}_name", f"{ref}@{flavor.get(f'{c}_revision')}"))
    for key, ref in sources:
        folder.add(
            mlmodel,
            "CARRIER-CODE-MISSING",
            f"MLmodel transformers.{key} {ref[:200]!r}: mlflow.transformers loads the model from outside this "
            "folder (with trust_remote_code=True for a class transformers lacks); its weights and code are "
            "outside this scan",
            evidence={"key": f"transformers.{key}", "reference": ref[:300]},
        )


def _check_env(folder: _Folder, mlmodel: str, env: Any) -> None:
    files = (
        [env] if isinstance(env, str) else [env.get(k) for k in ENV_FILES] if isinstance(env, dict) else []
    )
    for rel in files:
        if not isinstance(rel, str):
            continue
        path = folder.path(rel)
        if path not in folder.arts:
            continue
        raw = folder.read(path, MAX_YAML_BYTES)
        cfg = parse_yaml_config(raw) if raw is not None else None
        if cfg is None:
            folder.add(
                path,
                "CARRIER-CONFIG-INVALID",
                f"MLflow environment file larger than {MAX_YAML_BYTES} bytes "
                "or unreadable: what it installs is unknown",
            )
            folder.fail_closed(path, "environment file not analyzed")
            continue
        if cfg.error:
            folder.add(path, "CARRIER-CONFIG-INVALID", f"MLflow environment file: {cfg.error}")
            folder.fail_closed(path, "environment file not parseable")
            continue
        from ..formats.carrier_code import risky_requirements

        pip = list(_pip_entries(cfg.data))
        risky = risky_requirements("\n".join(pip)) + _risky_conda(cfg.data)
        folder.add(
            path,
            "CARRIER-ENVIRONMENT",
            f"MLflow environment lists {len(pip)} pip entr{'y' if len(pip) == 1 else 'ies'}"
            + (f"; {len(risky)} install from URLs, VCS or other indexes" if risky else ""),
            severity=Severity.MEDIUM if risky else None,
            evidence={"entries": [p[:100] for p in pip[:30]], "risky": risky[:10], "mlmodel": mlmodel},
        )


_CONDA_SOURCE = re.compile(r"://|^\s*(?:file:|[./\\~])|^\s*[A-Za-z]:[/\\]")


def _risky_conda(data: Any) -> list[str]:
    """conda.yaml channels and packages that come from a URL or a local path (conda runs a package's link
    scripts when it installs it) instead of a named channel."""
    if not isinstance(data, dict) or data.get("python") is not None:
        return []  # python_env.yaml: its dependencies are pip entries, judged as requirements
    out: list[str] = []
    for key in ("channels", "dependencies"):
        items = data.get(key)
        for x in items if isinstance(items, list) else []:
            if isinstance(x, str) and _CONDA_SOURCE.search(x):
                out.append(f"{key}: {x}"[:200])
    return out


def _pip_entries(data: Any) -> Any:
    """pip requirement strings of a conda.yaml (dependencies: [- pip: [...]]) or python_env.yaml."""
    if not isinstance(data, dict):
        return
    deps = data.get("dependencies")
    for d in deps if isinstance(deps, list) else []:
        if isinstance(d, dict) and isinstance(d.get("pip"), list):
            yield from (str(x) for x in d["pip"] if x is not None)
        elif (
            isinstance(d, str) and data.get("python") is not None
        ):  # python_env.yaml lists pip entries directly
            yield d
    build = data.get("build_dependencies")
    for d in build if isinstance(build, list) else []:
        if isinstance(d, str):
            yield d


def _check_mlmodel(folder: _Folder, mlmodel: str) -> None:
    raw = folder.read(mlmodel, MAX_YAML_BYTES)
    cfg = parse_yaml_config(raw) if raw is not None else None
    if (
        cfg is None
        or cfg.error
        or not isinstance(cfg.data, dict)
        or not isinstance(cfg.data.get("flavors"), dict)
    ):
        why = "too large or unreadable" if cfg is None else cfg.error or "no 'flavors' mapping"
        folder.add(
            mlmodel,
            "CARRIER-CONFIG-INVALID",
            f"MLmodel: {why}; what mlflow.pyfunc.load_model imports is unknown",
        )
        folder.fail_closed(mlmodel, "MLmodel not analyzed")
        return
    if cfg.python_tags:
        folder.add(
            mlmodel,
            "CARRIER-CONFIG-INVALID",
            "MLmodel carries Python object tags",
            severity=Severity.CRITICAL,
            evidence={"tags": cfg.python_tags[:10]},
        )
    flavors: dict[str, Any] = cfg.data["flavors"]
    code_dirs: list[str] = []
    for flavor in flavors.values():
        code = flavor.get("code") if isinstance(flavor, dict) else None
        if isinstance(code, str) and code:
            rel = posixpath.normpath(code.replace("\\", "/"))
            if rel.startswith("/") or rel == ".." or rel.startswith("../") or re.match(r"[A-Za-z]:", rel):
                # os.path.join(model_dir, code) then sys.path.insert: a folder outside the model is code unseen
                folder.add(
                    mlmodel,
                    "CARRIER-CODE-MISSING",
                    f"MLmodel code folder {code[:200]!r} is outside the model folder: "
                    "mlflow puts it on sys.path, so code this scan never saw can be imported",
                    evidence={"code": code[:300]},
                )
            code_dirs.append(folder.path(code))
        elif code not in (None, ""):  # MLflow writes a folder name or null; anything else is not understood
            folder.add(
                mlmodel,
                "CARRIER-CONFIG-INVALID",
                f"MLmodel code entry {str(code)[:100]!r} is not a folder name",
            )
            folder.fail_closed(mlmodel, "MLmodel code entry not understood")
    code_dirs = sorted(set(code_dirs))
    roles: dict[str, str] = {}
    for d in code_dirs:
        for p in folder.arts:
            if _under(p, d):  # code: "." puts the model folder itself on sys.path
                roles[p] = "code folder (on sys.path at load)"
    for flavor_name, flavor in flavors.items():
        # models from code: pyfunc, langchain and llama_index load os.path.join(model_dir, basename(model_code_path))
        # with spec_from_file_location + exec_module (models/utils.py _load_model_code_path), whatever its suffix
        mcp = flavor.get("model_code_path") if isinstance(flavor, dict) else None
        if isinstance(mcp, str) and mcp:
            p = folder.path(posixpath.basename(mcp.replace("\\", "/")))
            if p in folder.arts:
                roles[p] = f"{flavor_name}.model_code_path (models from code: executed)"
            else:
                folder.add(
                    mlmodel,
                    "CARRIER-CODE-MISSING",
                    f"MLmodel {flavor_name}.model_code_path {mcp[:200]!r}: {posixpath.basename(p)} "
                    "is not in the model folder",
                    evidence={"model_code_path": mcp[:300], "flavor": flavor_name},
                )
        if flavor_name == "transformers" and isinstance(flavor, dict):
            _check_transformers_sources(folder, mlmodel, flavor)
        km = flavor.get("keras_module") if isinstance(flavor, dict) else None
        if km is not None and km not in KERAS_MODULES:
            _named_module(folder, mlmodel, code_dirs, roles, str(km), f"{flavor_name}.keras_module")
    for p in sorted(folder.arts):
        allowed = MODULE_SPEC_FILES.get(posixpath.basename(p))
        if allowed is None or not _under(p, folder.base):
            continue
        raw = folder.read(p, 4096)
        name = raw.decode("utf-8", "replace").strip() if raw is not None else None
        if name is None:
            folder.add(p, "CARRIER-CONFIG-INVALID", "module name file too large or unreadable")
            folder.fail_closed(p, "module name file not read")
        elif name not in allowed:
            _named_module(folder, mlmodel, code_dirs, roles, name, posixpath.basename(p))
    pyfunc = flavors.get("python_function")
    if isinstance(pyfunc, dict):
        module = pyfunc.get("loader_module")
        if isinstance(module, str) and module:
            parts = module.split(".")
            own = parts[0] == "mlflow" and (len(parts) == 1 or parts[1] in MLFLOW_FLAVORS)
            if not own:
                found = _module_file(folder, code_dirs, module)
                if found:
                    roles[found] = "loader_module"
                else:
                    folder.add(
                        mlmodel,
                        "CARRIER-CODE-MISSING",
                        f"MLmodel loader_module {module[:200]!r} is not an "
                        "MLflow flavor and not in the model's code folder: code from elsewhere runs",
                        evidence={"loader_module": module[:300]},
                    )
        for key in ("python_model",):
            v = pyfunc.get(key)
            if isinstance(v, str) and v.endswith(".py"):
                p = folder.path(v)
                if p in folder.arts:
                    roles[p] = f"{key} (models from code: executed)"
                else:
                    folder.add(
                        mlmodel,
                        "CARRIER-CODE-MISSING",
                        f"MLmodel {key} {v[:200]!r} is not in the model folder",
                        evidence={key: v[:300]},
                    )
        _check_env(folder, mlmodel, pyfunc.get("env"))
    for p, role in sorted(roles.items()):
        if p.lower().endswith((".py", ".pyw")) or role != "code folder (on sys.path at load)":
            _code(folder, p, role)
    folder.add(
        mlmodel,
        "CARRIER-MODEL",
        f"MLflow model: flavors {', '.join(sorted(flavors))[:200]}",
        evidence={"kind": "mlflow", "flavors": sorted(flavors)[:20], "code_dirs": code_dirs[:10]},
    )


def check_mlflow_models(
    snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    extra: list[FileResult] = []
    for art in snapshot.artifacts:
        if posixpath.basename(art.path) == "MLmodel":
            folder = _Folder(snapshot, results, rules, posixpath.dirname(art.path))
            _check_mlmodel(folder, art.path)
            extra.extend(folder.extra)
    return extra


REPO_CHECKS = [check_mlflow_models]
