"""Steered uses of what the omegaconf, torch-nn and hf-trainer (CompileConfig) profile entries allow still block.

The benign shapes (fixtures/ecosystem/omegaconf, lightning/hparams_*.ckpt, torch/whole_*.pt,
legacy/transformers-4.51.3) are cls.__new__ + BUILD of the library's classes, and typing.Any stored as a metadata
type. Calling one of those classes (its __init__ parses content, allocates parameters or reads files), keeping it
where a holder calls it later, calling typing.Any, planting a callable where torch calls it later, or naming a
class the profiles do not list (a structured config's dataclass, OmegaConf itself) must block.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import rule_ids, scan_on_disk, verdict


def _p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _newobj(module: str, name: str, state: bytes = b"}") -> bytes:
    """cls.__new__(cls) then BUILD state: the shape the libraries write."""
    return _glob(module, name) + b")\x81" + state + b"b"


DICTCONFIG = ("omegaconf.dictconfig", "DictConfig")
META = ("omegaconf.base", "ContainerMetadata")

CONTROLS = {
    "dictconfig_rebuilt": _newobj(
        *DICTCONFIG,
        b"}"
        + _str("_metadata")
        + _newobj(*META, b"}" + _str("ref_type") + _glob("typing", "Any") + b"s")
        + b"s",
    ),
    "conv2d_rebuilt": _newobj(
        "torch.nn.modules.conv", "Conv2d", b"}" + _str("padding_mode") + _str("zeros") + b"s"
    ),
    "compile_config_rebuilt": _newobj(
        "transformers.generation.configuration_utils",
        "CompileConfig",
        b"}" + _str("backend") + _str("inductor") + b"s",
    ),
}

STEERED = {
    # DictConfig(content) parses its content (a YAML string, a dataclass it instantiates) in __init__
    "dictconfig_called": _glob(*DICTCONFIG) + b"(" + _str("a: 1") + b"tR",
    "listconfig_called": _glob("omegaconf.listconfig", "ListConfig") + b"(]tR",
    "anynode_called": _glob("omegaconf.nodes", "AnyNode") + b"(" + _str("x") + b"tR",
    "metadata_called": _glob("omegaconf.base", "Metadata") + b"(NNtR",
    "dictconfig_as_defaultdict_factory": _glob("collections", "defaultdict")
    + b"("
    + _glob(*DICTCONFIG)
    + b"tR",
    "typing_any_called": _glob("typing", "Any") + b")R",
    # a structured config's dataclass is the training script's code
    "structured_object_type": _newobj(
        *DICTCONFIG,
        b"}"
        + _str("_metadata")
        + _newobj(*META, b"}" + _str("object_type") + _glob("__main__", "Cfg") + b"s")
        + b"s",
    ),
    "omegaconf_facade": _glob("omegaconf.omegaconf", "OmegaConf") + b")R",
    "omegaconf_create": _glob("omegaconf", "OmegaConf.create") + b"(" + _str("a: 1") + b"tR",
    # Conv2d(3, 4, 3) runs __init__ (allocates parameters from the sizes the file gives)
    "conv2d_called": _glob("torch.nn.modules.conv", "Conv2d") + b"(K\x03K\x04K\x03tR",
    "embedding_called_huge": _glob("torch.nn.modules.sparse", "Embedding")
    + b"(J\xff\xff\xff\x7fJ\xff\xff\xff\x7ftR",
    # a callable planted where torch.nn.Module calls it later (forward hooks)
    "forward_hook_planted": _newobj(
        "torch.nn.modules.linear",
        "Identity",
        b"}"
        + _str("_forward_hooks")
        + _glob("collections", "OrderedDict")
        + b")R"
        + b"K\x00"
        + _glob("builtins", "print")
        + b"s"
        + b"s",
    ),
    "activation_class_as_hook": _newobj(
        "torch.nn.modules.linear",
        "Identity",
        b"}"
        + _str("_forward_pre_hooks")
        + b"}K\x00"
        + _glob("torch.nn.modules.activation", "GELU")
        + b"s"
        + b"s",
    ),
    # a torch.nn class this profile leaves out on purpose, and a module class outside torch.nn
    "transformer_layer": _newobj("torch.nn.modules.transformer", "TransformerEncoderLayer"),
    "lstm": _newobj("torch.nn.modules.rnn", "LSTM"),
    "torchvision_model": _newobj("torchvision.models.resnet", "ResNet"),
    "compile_config_called": _glob("transformers.generation.configuration_utils", "CompileConfig")
    + b"("
    + _str("inductor")
    + b"tR",
}


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_the_library_shape_is_allowed(tmp_path: Path, name: str) -> None:
    fr = scan_on_disk(tmp_path, _p2(CONTROLS[name]), f"{name}.pkl")
    assert verdict(fr).value == "allow", sorted(rule_ids(fr))


@pytest.mark.parametrize("name", sorted(STEERED))
def test_steered_use_blocks(tmp_path: Path, name: str) -> None:
    fr = scan_on_disk(tmp_path, _p2(STEERED[name]), f"{name}.pkl")
    assert verdict(fr).value == "block", sorted(rule_ids(fr))


# pytorch_lightning 1.2-1.4 callback classes are allowed as dict keys only (data-only)
LIGHTNING_KEY = _glob("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")


def test_callback_class_as_a_key_is_allowed(tmp_path: Path) -> None:
    fr = scan_on_disk(tmp_path, _p2(b"}" + LIGHTNING_KEY + b"}s"), "cb_key.pkl")
    assert verdict(fr).value == "allow", sorted(rule_ids(fr))


@pytest.mark.parametrize(
    "body",
    [
        LIGHTNING_KEY + b"(" + _str("/tmp/modelward-ckpt-dir") + b"tR",  # ModelCheckpoint(dirpath) creates it
        _newobj(
            "torch.nn.modules.linear",
            "Identity",
            b"}" + _str("_forward_hooks") + b"}K\x00" + LIGHTNING_KEY + b"ss",
        ),
    ],
    ids=["called", "forward_hook"],
)
def test_callback_class_called_blocks(tmp_path: Path, body: bytes) -> None:
    fr = scan_on_disk(tmp_path, _p2(body), "cb.pkl")
    assert verdict(fr).value == "block", sorted(rule_ids(fr))


# scipy Rotation / RBFInterpolator / Slerp / PchipInterpolator: NEWOBJ + BUILD only
@pytest.mark.parametrize(
    "body",
    [
        _glob("scipy.spatial.transform._rotation", "Rotation") + b"(]tR",
        _glob("scipy.interpolate._rbfinterp", "RBFInterpolator") + b"(]]tR",
        _glob("scipy.spatial.transform._rotation", "Slerp") + b"(]]tR",
        _glob("scipy.interpolate._cubic", "PchipInterpolator") + b"(]]tR",
        _newobj("scipy.spatial.transform._rotation", "Rotation", _glob("os", "getcwd") + b")R\x88\x86"),
    ],
    ids=["rotation_called", "rbf_called", "slerp_called", "pchip_called", "rotation_state_call"],
)
def test_scipy_objects_only_rebuilt(tmp_path: Path, body: bytes) -> None:
    fr = scan_on_disk(tmp_path, _p2(body), "scipy.pkl")
    assert verdict(fr).value == "block", sorted(rule_ids(fr))


def test_category_encoder_called_blocks(tmp_path: Path) -> None:
    body = _glob("category_encoders.target_encoder", "TargetEncoder") + b"(]tR"
    fr = scan_on_disk(tmp_path, _p2(body), "enc.pkl")
    assert verdict(fr).value == "block", sorted(rule_ids(fr))


def test_category_encoder_rebuilt_is_allowed(tmp_path: Path) -> None:
    body = _newobj(
        "category_encoders.ordinal", "OrdinalEncoder", b"}" + _str("cols") + b"]" + _str("c") + b"as"
    )
    fr = scan_on_disk(tmp_path, _p2(body), "enc.pkl")
    assert verdict(fr).value == "allow", sorted(rule_ids(fr))
