"""NeMo ``.nemo`` archives: a tar (often gzip-compressed) of ``model_config.yaml`` and ``model_weights.ckpt``.

``ModelPT.restore_from`` extracts the tar, loads the YAML with OmegaConf and
instantiates the model class its ``target`` names; sub-modules are built by
hydra from ``_target_`` keys. The archive gets the tar treatment (every member
by content: the checkpoint through the torch zip inspector, tokenizers by
format, so ``model_config.yaml``'s hydra ``_target_`` values are judged by the
YAML config analysis); the config must be readable (fail closed) and NeMo's
own top-level ``target`` (the model class ``from_config_dict`` imports and
calls) is judged like a hydra target.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from ..findings import Severity
from ..io.reader import Reader
from . import tar_archive
from .interface import FormatHandler, InspectContext
from .torch_legacy import tar_members

CONFIG = "model_config.yaml"
# NeMo model classes (ModelPT subclasses) live in nemo.collections.<domain>[...].models[...] and are named *Model*
# (EncDecCTCModelBPE, MegatronGPTModel, FastPitchModel, ...); from_config_dict imports the class by path and
# calls it with (cfg=, trainer=). Anything else goes through the hydra target judgement.
MODEL_CLASS = re.compile(
    r"nemo\.collections(?:\.[a-z][a-z0-9_]*)*\.models?(?:\.[a-z][a-z0-9_]*)*\.[A-Z][A-Za-z0-9]*Model[A-Za-z0-9]*"
)
SNIFF_MEMBERS = 64


def _sniff(head: bytes, reader: Reader) -> bool:
    if not tar_archive.looks_like_tar_header(head):
        return False
    members, _ = tar_members(reader, SNIFF_MEMBERS)
    return any(posixpath.basename(m.name) == CONFIG for m in members)


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    from ..analysis.config_yaml import MAX_YAML_BYTES, parse_yaml_config  # yaml: only when judging

    tar_archive.TAR_ARCHIVE.inspect(reader, ctx)  # structure and every member by content
    members, _ = tar_members(reader, ctx.limits.max_members)
    configs = [m for m in members if posixpath.basename(m.name) == CONFIG]
    targets: list[str] = []
    for m in configs:
        if m.size > MAX_YAML_BYTES:
            ctx.add(
                "CARRIER-CONFIG-INVALID",
                f"NeMo {m.name}: {m.size} bytes exceed the {MAX_YAML_BYTES}-byte limit",
                evidence={"member": m.name[:300]},
            )
            ctx.partial("NeMo config not analyzed")
            continue
        cfg = parse_yaml_config(reader.read(m.offset, m.size))
        if cfg.error:
            ctx.add(
                "CARRIER-CONFIG-INVALID", f"NeMo {m.name}: {cfg.error}", evidence={"member": m.name[:300]}
            )
            ctx.partial("NeMo config not analyzed")
            continue
        if cfg.python_tags:
            ctx.add(
                "CARRIER-CONFIG-INVALID",
                f"NeMo {m.name} carries Python object tags, which OmegaConf refuses "
                "and unsafe YAML loaders construct",
                severity=Severity.CRITICAL,
                evidence={"member": m.name[:300], "tags": cfg.python_tags[:10]},
            )
        for path, target in cfg.targets:
            targets.append(target)
            _judge_target(ctx, m.name, path, target)
        for path in _remote_code_paths(cfg.data):
            # NeMo passes trust_remote_code on to transformers (tokenizer/model configs): that repository's code runs
            ctx.add(
                "CONFIG-TARGET-UNLISTED",
                f"NeMo {m.name}: {path or '<root>'} passes a true trust_remote_code (as Python tests it); "
                "the Hugging Face repository code it loads is outside this scan",
                evidence={"member": m.name[:300], "key": f"{path}.trust_remote_code".lstrip(".")[:200]},
            )
    ctx.add(
        "CARRIER-MODEL",
        f"NeMo archive: {len(configs)} config(s), {len(targets)} instantiated target(s)",
        evidence={"kind": "nemo", "targets": sorted(set(targets))[:50]},
    )


def _remote_code_paths(data: object, limit: int = 20) -> list[str]:
    """Key paths of mappings in the config that hand a true trust_remote_code on (iterative, each container once).
    NeMo passes the value to transformers, which tests plain truthiness: "False", "no", a list, a mapping or a
    nested target's object are true too, and node interpolations are followed (hydra_targets.truthy_when_passed);
    a ``_target_`` given it positionally (``_args_``) counts as well."""
    from ..analysis.hydra_targets import remote_code_args

    out: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[object, str, Any]] = [(data, "", None)]
    while stack and len(out) < limit and len(seen) < 500_000:
        obj, path, parent = stack.pop()
        if not isinstance(obj, (dict, list)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        link = (obj, parent)  # linked, never copied: a deep spine with many leaves stays linear
        if isinstance(obj, dict):
            if remote_code_args(obj, link, data) is not None:
                out.append(path)
            stack.extend((v, f"{path}.{k}".lstrip("."), link) for k, v in obj.items())
        else:
            stack.extend((v, f"{path}[{i}]", link) for i, v in enumerate(obj))
    return out


def _judge_target(ctx: InspectContext, member: str, path: str, target: str) -> None:
    legacy = path == "cls" or path.endswith(".cls")
    if path != "target" and not legacy:
        return  # hydra _target_ values: judged where the member itself is inspected as a YAML config
    from ..analysis.hydra_targets import judge_target

    # Hydra 0.x 'cls' (with 'params'): NeMo's maybe_update_config_version renames it to '_target_' at every
    # level of the config before from_config_dict instantiates it, so it is judged as a hydra target
    issue = judge_target(target, "cls" if legacy else "target", ctx.rules)
    if legacy:
        if issue is not None:
            ctx.add(
                issue.rule_id,
                f"NeMo {member}: {path[:200]} (Hydra 0.x cls, instantiated as _target_): {issue.message}",
                severity=issue.severity,
                evidence={"member": member[:300], "key": path[:200], "target": target[:300]},
            )
        return
    if (
        issue is not None
        and MODEL_CLASS.fullmatch(target.strip())
        and issue.rule_id == "CONFIG-TARGET-UNLISTED"
    ):
        return
    if issue is not None:
        ctx.add(
            issue.rule_id,
            f"NeMo {member}: model class {issue.message}",
            severity=issue.severity,
            evidence={"member": member[:300], "key": path[:200], "target": target[:300]},
        )


NEMO_ARCHIVE = FormatHandler("nemo-archive", _sniff, _inspect, family="archive", can_carry_code=True)
