"""Red-team round 4: repository code carriers, modelled on the loaders' own file resolution.

- transformers reads ``config.<version>.json`` instead of config.json when config.json lists it in
  ``configuration_files`` (PreTrainedConfig.get_config_dict / get_configuration_file), auto_map included;
- get_class_from_dynamic_module reads ``<module>.py`` from the folder passed to from_pretrained: the repository
  root when the config is read from a subfolder (``subfolder=`` is not passed on), the config's folder when that
  folder is passed; every candidate present is code;
- diffusers opens ``<_class_name[0]>.py`` as written (``my.pipe`` is ``my.pipe.py``), and a ``None.py`` beside
  model_index.json is the custom pipeline of every ``DiffusionPipeline.from_pretrained(folder,
  trust_remote_code=True)`` (``f"{custom_pipeline}.py"`` with the default ``custom_pipeline=None``).

Each shape was run with transformers 5.24 / diffusers 0.42 and wrote its marker; each was a warning at most.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

from scanner.findings import Decision
from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.decide import decide
from scanner.policy.loader import load_policy
from scanner.policy.scan_settings import compile_scan_settings
from tests.harness import rule_ids, scan_files

QUIET = "class Evil:\n    def __init__(self):\n        self.x = 1\n"
OTHER = "class Evil:\n    def __init__(self):\n        self.y = 2\n"


def _loaded(res: dict, path: str) -> bool:
    return path in res and "CODE-EXECUTED-BY-LOADER" in rule_ids(res[path])


# ---------------------------------------------------------------------------- versioned configuration files


def test_versioned_config_auto_map_is_code() -> None:
    res = scan_files(
        {
            "config.json": json.dumps({"model_type": "bert", "configuration_files": ["config.4.0.0.json"]}),
            "config.4.0.0.json": json.dumps(
                {"model_type": "x", "auto_map": {"AutoConfig": "modeling_x.XConfig"}}
            ),
            "modeling_x.py": QUIET,
        }
    )
    assert _loaded(res, "modeling_x.py")
    assert "HF-REMOTE-CODE" in rule_ids(res["config.4.0.0.json"])


def test_versioned_config_in_a_subfolder_and_trust_flag() -> None:
    res = scan_files(
        {
            "sub/config.json": json.dumps({"configuration_files": ["config.1.json", "config.99.0.json"]}),
            "sub/config.99.0.json": json.dumps(
                {"trust_remote_code": True, "auto_map": {"AutoModel": "modeling_y.M"}}
            ),
            "modeling_y.py": QUIET,
        }
    )
    assert _loaded(res, "modeling_y.py")
    assert "HF-TRUST-REMOTE-CODE-FLAG" in rule_ids(res["sub/config.99.0.json"])


def test_unlisted_versioned_config_is_not_read() -> None:
    """A config.<v>.json that config.json does not list is never read by the loader."""
    res = scan_files(
        {
            "config.json": json.dumps({"model_type": "bert"}),
            "config.4.0.0.json": json.dumps({"auto_map": {"AutoConfig": "modeling_x.XConfig"}}),
            "modeling_x.py": QUIET,
        }
    )
    assert not _loaded(res, "modeling_x.py")


# ---------------------------------------------------------------------------- subfolder configs


def test_subfolder_config_code_at_the_root_and_beside_it_are_both_code() -> None:
    """from_pretrained(repo, subfolder="sub") reads sub/config.json but <module>.py from the repository root."""
    res = scan_files(
        {
            "sub/config.json": json.dumps({"auto_map": {"AutoConfig": "modeling_x.XConfig"}}),
            "sub/modeling_x.py": QUIET,
            "modeling_x.py": OTHER,
        }
    )
    assert _loaded(res, "modeling_x.py")
    assert _loaded(res, "sub/modeling_x.py")


def test_subfolder_config_code_only_at_the_root_is_code() -> None:
    res = scan_files(
        {
            "sub/tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["tok.T", None]}}),
            "tok.py": QUIET,
        }
    )
    assert _loaded(res, "tok.py")


def test_trusting_the_subfolder_copy_does_not_allow_the_root_module(tmp_path: Path) -> None:
    """The decoy beside the config is trusted by digest; the root module the Hub loader runs still blocks."""
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "config.json").write_text(json.dumps({"auto_map": {"AutoConfig": "modeling_x.XConfig"}}))
    (repo / "sub" / "modeling_x.py").write_text(QUIET)
    (repo / "modeling_x.py").write_text(OTHER)
    sha = hashlib.sha256(QUIET.encode()).hexdigest()
    pol = tmp_path / "p.yaml"
    pol.write_text(
        "version: 1\nextends: default\n"
        + textwrap.dedent(f"""
        trusted_code:
          - sha256: {sha}
            reason: reviewed
        """).lstrip()
    )
    policy = load_policy(pol)
    report = scan_targets([str(repo)], ScanOptions(scoped=compile_scan_settings(policy)))
    report.verdict = decide(report, policy)
    assert report.verdict.decision is Decision.BLOCK
    blocked = {
        Path(r.path).as_posix()
        for r in report.verdict.reasons
        if r.decision is Decision.BLOCK and r.rule_id == "CODE-EXECUTED-BY-LOADER"
    }
    assert blocked == {"modeling_x.py"}, blocked  # the trusted sub/modeling_x.py is allowed


# ---------------------------------------------------------------------------- diffusers custom pipelines


def test_class_name_pipeline_file_is_opened_as_written() -> None:
    res = scan_files(
        {
            "model_index.json": json.dumps({"_class_name": ["my.pipe", "P"], "_diffusers_version": "0.30.0"}),
            "my.pipe.py": QUIET,
            "my/pipe.py": OTHER,
        }
    )
    assert _loaded(res, "my.pipe.py")
    assert not _loaded(res, "my/pipe.py")


def test_class_name_pipeline_file_missing_fails_closed(tmp_path: Path) -> None:
    res = scan_files(
        {
            "model_index.json": json.dumps({"_class_name": ["my.pipe", "P"]}),
            "my/pipe.py": QUIET,
        }
    )
    assert "HF-AUTOMAP-MISSING" in rule_ids(res["model_index.json"])


def test_none_py_beside_model_index_is_the_custom_pipeline() -> None:
    res = scan_files(
        {
            "model_index.json": json.dumps({"_class_name": "DDPMPipeline", "_diffusers_version": "0.30.0"}),
            "None.py": QUIET,
        }
    )
    assert _loaded(res, "None.py")


def test_none_py_elsewhere_is_not_a_pipeline() -> None:
    res = scan_files({"model_index.json": json.dumps({"_class_name": "DDPMPipeline"}), "unet/None.py": QUIET})
    assert not _loaded(res, "unet/None.py")


# ---------------------------------------------------------------------------- absolute imports of loaded code


def test_absolute_import_of_a_repository_module_is_code() -> None:
    """check_imports importlib.import_module()s every absolute import's top-level name (even one inside a function
    that never runs); from the model folder as working directory that is the repository's module."""
    modeling = (
        "from transformers import PretrainedConfig\n\n"
        "class XConfig(PretrainedConfig):\n"
        "    def _unused(self):\n"
        "        import xq_helpers\n"
        "        return xq_helpers\n"
    )
    res = scan_files(
        {
            "config.json": json.dumps({"auto_map": {"AutoConfig": "modeling_x.XConfig"}}),
            "modeling_x.py": modeling,
            "xq_helpers.py": QUIET,
            "pkg/__init__.py": "",
            "pkg/deep.py": QUIET,
            "other.py": QUIET,
        }
    )
    assert _loaded(res, "xq_helpers.py")
    assert not _loaded(res, "other.py")
    res = scan_files(
        {
            "config.json": json.dumps({"auto_map": {"AutoConfig": "modeling_x.XConfig"}}),
            "modeling_x.py": "import pkg.deep\nfrom pkg import deep\n",
            "pkg/__init__.py": "",
            "pkg/deep.py": QUIET,
        }
    )
    assert _loaded(res, "pkg/__init__.py") and _loaded(res, "pkg/deep.py")


def test_absolute_import_of_custom_generate_and_components_is_code() -> None:
    res = scan_files({"custom_generate/generate.py": "import gen_helpers\n", "gen_helpers.py": QUIET})
    assert _loaded(res, "gen_helpers.py")
    res = scan_files(
        {
            "model_index.json": json.dumps({"_class_name": "X", "unet": ["my_unet", "U"]}),
            "unet/my_unet.py": "import unet_helpers\n",
            "unet_helpers.py": QUIET,
        }
    )
    assert _loaded(res, "unet_helpers.py")
