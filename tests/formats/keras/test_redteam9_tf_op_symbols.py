"""Red-team round 9: a tf.keras op layer's ``function`` is allowed only when it is a tensor function.

TFOpLambda / SlicingOpLambda resolve ``function`` through tf_export's table (``tf.X`` and ``tf.compat.v1.X``
keys) and call it while the model is rebuilt, eagerly when the inbound node holds constants. The top level was
judged by a denylist: ``compat.v1.load_file_system_library`` with a constant path passed, and tf_keras 2.21
``load_model`` of the sample below dlopen()ed the library (its constructor wrote /tmp/mw_tfop/SO_PWNED) while the
scan allowed the file. Top-level names now come from a measured allowlist of tensor functions; inside the
tensor-math namespaces, global switches, classes and file-reading samplers are refused too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.findings import Severity
from tests.harness import inspect_bytes, make_zip, scan_file

SAMPLES = Path(__file__).parent / "samples"
BLOCKING = (Severity.CRITICAL, Severity.HIGH)


def _keras(*layers: dict) -> bytes:
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": list(layers)}}
    return make_zip(
        {"config.json": json.dumps(cfg).encode(), "metadata.json": b'{"keras_version": "3.15.1"}'}
    )


def _op(function: str, cls: str = "TFOpLambda") -> dict:
    return {"class_name": cls, "config": {"name": "op", "function": function}}


@pytest.mark.slow
def test_real_tf_keras_load_file_system_library_blocks() -> None:
    fr = scan_file(SAMPLES / "tf_keras_tfop_load_fs_library.h5")
    found = [f for f in fr.findings if f.rule_id == "KERAS-UNSAFE-MODULE"]
    assert found and found[0].severity is Severity.CRITICAL, [f.message for f in fr.findings]
    assert "load_file_system_library" in found[0].message


@pytest.mark.parametrize(
    ("function", "severity"),
    [
        ("compat.v1.load_file_system_library", Severity.CRITICAL),
        ("rpc_server", Severity.CRITICAL),
        ("compat.v1.rpc_client", Severity.CRITICAL),
        ("xla_custom_call_v2", Severity.CRITICAL),
        ("d_tensor_restore_v2", Severity.CRITICAL),
        ("compat.v1.WholeFileReader", Severity.CRITICAL),
        ("compat.v1.Session", Severity.CRITICAL),
        ("quantization.experimental.quantize_saved_model", Severity.CRITICAL),
        ("random.fixed_unigram_candidate_sampler", Severity.CRITICAL),
        ("compat.v1.disable_eager_execution", Severity.HIGH),
        ("compat.v1.set_random_seed", Severity.HIGH),
        ("register_tensor_conversion_function", Severity.HIGH),
        ("compat.v1.get_variable", Severity.HIGH),
        ("configure_and_initialize_global_tpu", Severity.HIGH),
        ("random.set_seed", Severity.HIGH),
        ("random.set_global_generator", Severity.HIGH),
        ("debugging.set_log_device_placement", Severity.HIGH),
        ("debugging.disable_traceback_filtering", Severity.HIGH),
        ("experimental.numpy.experimental_enable_numpy_behavior", Severity.HIGH),
        ("experimental.numpy.random.seed", Severity.HIGH),
        ("linalg.LinearOperatorFullMatrix", Severity.HIGH),
        ("a_name_tensorflow_does_not_export", Severity.HIGH),
    ],
)
@pytest.mark.parametrize("cls", ["TFOpLambda", "SlicingOpLambda"])
def test_tf_op_layer_outside_tensor_functions_blocks(function: str, severity: Severity, cls: str) -> None:
    fr = inspect_bytes(_keras(_op(function, cls)), "m.keras")
    found = [f for f in fr.findings if f.rule_id == "KERAS-UNSAFE-MODULE"]
    assert found and found[0].severity is severity, [(f.rule_id, f.severity, f.message) for f in fr.findings]


@pytest.mark.parametrize(
    "function",
    [
        "reshape",
        "concat",
        "einsum",
        "compat.v1.to_float",
        "compat.v1.shape",
        "tile",
        "where",
        "math.add",
        "nn.relu",
        "image.resize",
        "random.uniform",
        "quantization.fake_quant_with_min_max_args",
        "experimental.numpy.mean",
        "__operators__.getitem",
    ],
)
def test_tf_op_layer_tensor_functions_stay_clean(function: str) -> None:
    fr = inspect_bytes(_keras(_op(function)), "m.keras")
    assert fr.max_severity is None, [(f.rule_id, f.message) for f in fr.findings]


@pytest.mark.slow
def test_real_tf_keras_model_with_many_tf_ops_is_clean() -> None:
    """tf_keras 2.21 Functional model calling 40 TF functions on Keras tensors (reshape, concat, einsum, one_hot,
    sequence_mask, compat.v1.gather/norm/pad/squeeze/transpose, math.*, nn.*, image.resize, ...)."""
    fr = scan_file(SAMPLES / "tf_keras_tf_ops_wide.h5")
    assert fr.max_severity is None, [(f.rule_id, f.message) for f in fr.findings]


@pytest.mark.parametrize(
    "name", ["manual_variable_initialization", "set_learning_phase", "print_tensor", "reset_uids"]
)
@pytest.mark.parametrize("module", ["keras.backend", "tf_keras.backend"])
def test_tf_keras_backend_switches_are_not_modelling_functions(module: str, name: str) -> None:
    """tf_keras resolves keras.backend.<name> through its API table (measured: these passed as activations)."""
    fn = {"module": module, "class_name": "function", "config": name, "registered_name": None}
    layer = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "activation": fn}}
    fr = inspect_bytes(_keras(layer), "m.keras")
    assert "KERAS-NONMODELING-API" in {f.rule_id for f in fr.findings}, [f.message for f in fr.findings]
