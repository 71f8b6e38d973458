"""A project's declared model dependencies: ``modelward.toml`` or ``[tool.modelward]`` in pyproject.toml.

policy = "default"                      # shipped name or a path, relative to the config file
[models]
bert = "hf://google-bert/bert-base-uncased@main"
classifier = { source = "models/classifier", policy = "strict" }
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_NAME = "modelward.toml"
LOCK_NAME = "modelward.lock"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ConfigError(Exception):
    """The project configuration or lockfile is unusable; the message names the file (and line)."""


@dataclass(frozen=True)
class Dependency:
    name: str
    source: str  # as written; local paths resolved against the project dir at use
    policy: str | None


@dataclass
class ProjectConfig:
    path: Path
    root: Path
    policy: str
    models: dict[str, Dependency]

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    def target_for(self, dep: Dependency) -> str:
        """The target URI to resolve: local paths become absolute, relative to the project."""
        if "://" in dep.source and not dep.source.startswith("file://"):
            return dep.source
        raw = dep.source.removeprefix("file://")
        p = Path(raw).expanduser()
        return str(p if p.is_absolute() else (self.root / p))

    def policy_spec(self, spec: str) -> str:
        if re.fullmatch(r"[a-z]+", spec):
            return spec
        p = Path(spec).expanduser()
        return str(p if p.is_absolute() else self.root / p)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _parse(section: dict[str, Any], path: Path, where: str) -> ProjectConfig:
    allowed = {"policy", "models"}
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"{path}: {where}: unknown key {unknown[0]!r} (expected: policy, models)")
    policy = section.get("policy", "default")
    if not isinstance(policy, str) or not policy:
        raise ConfigError(f"{path}: {where}.policy: expected a policy name or path")
    models_raw = section.get("models", {})
    if not isinstance(models_raw, dict) or not models_raw:
        raise ConfigError(f'{path}: {where}.models: declare at least one model, e.g. bert = "hf://org/name"')
    models: dict[str, Dependency] = {}
    for name, spec in models_raw.items():
        if not NAME_RE.fullmatch(name):
            raise ConfigError(f"{path}: {where}.models.{name}: names use letters, digits, '.', '_' and '-'")
        if isinstance(spec, str):
            models[name] = Dependency(name, spec, None)
        elif isinstance(spec, dict):
            extra = sorted(set(spec) - {"source", "policy"})
            if extra or not isinstance(spec.get("source"), str):
                bad = extra[0] if extra else "source"
                raise ConfigError(
                    f'{path}: {where}.models.{name}.{bad}: expected {{ source = "…", policy = "…" }}'
                )
            pol = spec.get("policy")
            if pol is not None and not isinstance(pol, str):
                raise ConfigError(f"{path}: {where}.models.{name}.policy: expected a string")
            models[name] = Dependency(name, spec["source"], pol)
        else:
            raise ConfigError(f"{path}: {where}.models.{name}: expected a target string or a table")
    return ProjectConfig(path=path, root=path.parent, policy=policy, models=models)


def load_config(start: Path | None = None, explicit: Path | None = None) -> ProjectConfig:
    """``modelward.toml`` in the project folder, else ``[tool.modelward]`` in its pyproject.toml."""
    if explicit is not None:
        data = read_toml(explicit)
        if explicit.name == "pyproject.toml":
            section = data.get("tool", {}).get("modelward")
            if section is None:
                raise ConfigError(f"{explicit}: no [tool.modelward] section")
            return _parse(section, explicit, "tool.modelward")
        return _parse(data, explicit, "modelward")
    root = (start or Path.cwd()).resolve()
    for folder in (
        root,
        *root.parents,
    ):  # like git, uv and npm: the nearest project above the working directory
        cfg = folder / CONFIG_NAME
        if cfg.is_file():
            return _parse(read_toml(cfg), cfg, "modelward")
        py = folder / "pyproject.toml"
        if py.is_file():
            section = read_toml(py).get("tool", {}).get("modelward")
            if section is not None:
                return _parse(section, py, "tool.modelward")
    raise ConfigError(
        f"{root}: no {CONFIG_NAME} and no [tool.modelward] in pyproject.toml here or in a parent "
        "folder; declare your models first"
    )
