"""Keras model-configuration analysis shared by .h5, .keras and keras_metadata.pb.

A Keras config is a JSON tree of serialized objects ({module, class_name,
config, registered_name}). Loading resolves each object to a class or function
and calls it, so the config decides what code runs: marshalled Lambda
bytecode, objects imported from arbitrary modules, Keras's own non-modelling
utilities (get_file, enable_unsafe_deserialization), TFSMLayer and lookup layers
that open paths. The walk is iterative and capped in nodes and depth.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from ..findings import Severity
from .marshal_code import SUSPICIOUS_NAMES, summarize

MAX_DEPTH = 512
MAX_ISSUES = 100
MAX_BLOB_BYTES = 256 << 20

ALLOWED_ROOTS = {"keras", "keras_hub", "keras_cv", "keras_nlp", "tf_keras"}
HUB_ROOTS = {"keras_hub", "keras_nlp", "keras_cv"}
# Functions KerasHub registers with register_keras_serializable (keras-hub 0.32.0, packages "keras_hub" and
# "keras_nlp"): a config resolves "keras_hub>name" through the registry before any module, in safe mode.
# Only gelu_approximate is modelling code; the rest train tokenizers and write vocabulary files, upload
# presets to Kaggle / Hugging Face, or deserialize samplers. A hub function outside this allowlist, under any
# spelling, is not allowed (keras 3.15 safe_mode load_model resolved keras_hub>compute_word_piece_vocabulary
# as a Lambda function and the scan allowed it).
HUB_MODELING_FUNCTIONS = {"gelu_approximate"}
ACTIVATIONS = {
    "relu",
    "relu6",
    "sigmoid",
    "softmax",
    "softplus",
    "softsign",
    "tanh",
    "selu",
    "elu",
    "exponential",
    "linear",
    "leaky_relu",
    "gelu",
    "silu",
    "swish",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "mish",
    "log_softmax",
    "celu",
    "glu",
    "hard_tanh",
    "hard_shrink",
    "soft_shrink",
    "tanh_shrink",
    "squareplus",
    "sparse_plus",
    "sparsemax",
    "threshold",
    "log_sigmoid",
    "sparse_sigmoid",
}
# Functions a {"module": "builtins", "class_name": "function"} reference resolves to before any Python builtin:
# Keras searches keras.{activations,constraints,initializers,losses,metrics,optimizers,regularizers} first
# (measured from keras 3.15.1's API table; tf_keras adds the short loss aliases). None is a Python builtin.
KERAS_BUILTIN_FUNCTIONS = ACTIVATIONS | {
    "binary_accuracy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "categorical_hinge",
    "circle",
    "concordance_correlation",
    "cosine_similarity",
    "ctc",
    "dice",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "pearson_correlation",
    "poisson",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "top_k_categorical_accuracy",
    "tversky",
    "mse",
    "mae",
    "mape",
    "msle",
    "kld",
    "logcosh",
    "kullback_leibler_divergence",
    "huber_loss",
    "acc",
    "accuracy",
}
NON_MODELING = {
    "get_file",
    "enable_unsafe_deserialization",
    "load_model",
    "save_model",
    "model_from_json",
    "model_from_yaml",
    "model_from_config",
    "load_weights",
    "save_weights",
    "load_img",
    "save_img",
    "image_dataset_from_directory",
    "text_dataset_from_directory",
    "audio_dataset_from_directory",
    "split_dataset",
    "deserialize_keras_object",
    "serialize_keras_object",
    "register_keras_serializable",
    "get_registered_object",
    "get_registered_name",
    "get_custom_objects",
    "custom_object_scope",
    "CustomObjectScope",
    "plot_model",
    "model_to_dot",
    "set_random_seed",
    "clear_session",
    "set_floatx",
    "set_epsilon",
    "set_image_data_format",
    "set_backend",
    "disable_interactive_logging",
    "enable_interactive_logging",
    "enable_traceback_filtering",
    "disable_traceback_filtering",
    "set_dtype_policy",
    "enable_flash_attention",
    "disable_flash_attention",
    "load_data",
    "export_saved_model",
    "load_data_and_labels",
    "decode_predictions",
    "get_word_index",
    "set_global_attribute",
    "distribute_tensor",
    "set_distribution",
    "tokenizer_from_json",
    "load_model_from_hdf5",
    "save_model_to_hdf5",
    "load_weights_from_hdf5_group",
    "model_from_saved_model",
    # tf_keras.backend (allowed as keras.backend.*): process-wide switches and printing, not modelling
    "manual_variable_initialization",
    "set_learning_phase",
    "learning_phase_scope",
    "reset_uids",
    "print_tensor",
    "set_session",
    "get_session",
}
# Canonical dotted paths (see _canon: keras.src.X, tf_keras.X, keras._tf_keras.keras.X are keras.X) whose
# members are not modelling code: matched against module + "." + name, so a name spelled with dots under a
# shorter module ("keras" + "datasets.mnist.load_data") is caught like its plain spelling.
NON_MODELING_MODULES = (
    "keras.datasets",
    "keras.config",
    "keras.saving",
    "keras.legacy.saving",
    "keras.utils.file_utils",
    "keras.backend.config",
    "keras.backend.common.global_state",
    "keras.distribution",
    "keras.export",
    "keras.callbacks",
    "keras.models.model_from_json",
    "keras.models.load_model",
    "keras.models.save_model",
    "keras_hub.src.utils.preset_utils",
    "keras_nlp.src.utils.preset_utils",
)
# Allowlist for a callable Keras resolves inside its own packages (a function, or any dotted / lower-case name
# resolved through Keras's public API table, which can also yield a function): modelling namespaces only.
# Keras <= 3.10 returns any attribute of any keras module and tf.keras Lambda any already-imported module's
# function, so "not on the denylist" is not enough (global_state.set_global_attribute turns safe mode off).
_MODELING_CALLABLE = re.compile(
    r"^keras\.(?:"
    r"(?:activations|losses|metrics|ops|random|initializers|regularizers|constraints|layers|optimizers"
    r"|quantizers|dtype_policies|mixed_precision)(?:\.[\w.]*)?"
    r"|legacy\.backend\.\w+"
    r"|backend\.\w+"
    r"|backend\.(?:(?:tensorflow|jax|torch|numpy|openvino)\.)?(?:numpy|nn|math|core|linalg|image|random|rnn)\.\w+"
    r"|applications\.[\w.]*preprocess_input"
    r"|models\.(?:Sequential|Model|Functional)"
    r")$"
)
# tf.keras (tf_keras, Keras 2) op layers: TFOpLambda / SlicingOpLambda resolve "function" as any public
# TensorFlow API symbol (tf_export.get_symbol_from_name) and call it with the node's arguments, constants
# included, eagerly when no input is a Keras tensor: tf_keras 2.21 load_model of an .h5 whose TFOpLambda names
# io.write_file writes the file at load. ClassMethod calls cls_symbol.method_name, InstanceMethod /
# InstanceProperty getattr(tensor, attr_name). Allowed: tensor-math namespaces, as tf_keras writes them.
TF_OP_LAYERS = {"TFOpLambda", "SlicingOpLambda"}
TF_PURE_NAMESPACES = (
    "math",
    "nn",
    "linalg",
    "strings",
    "image",
    "signal",
    "random",
    "sparse",
    "ragged",
    "bitwise",
    "dtypes",
    "__operators__",
    "experimental.numpy",
    "nest",
    "sets",
    "quantization",
    "debugging",
)
TF_DENIED_NAMESPACES = (
    "io",
    "gfile",
    "raw_ops",
    "saved_model",
    "data",
    "debugging.experimental",
    "summary",
    "config",
    "distribute",
    "train",
    "keras",
    "autograph",
    "sysconfig",
    "tpu",
    "lite",
    "profiler",
    "lookup",
    "queue",
    "experimental.dtensor",
    "__internal__",
    "test",
    "feature_column",
    "estimator",
    "compat.v1.io",
    "quantization.experimental",
)
TF_DENIED_NAMES = {
    "print",
    "Print",
    "py_function",
    "numpy_function",
    "py_func",
    "load_op_library",
    "load_library",
    "function",
    "import_graph_def",
    "write_file",
    "read_file",
    "matching_files",
    "init_scope",
    "device",
    "Module",
    "Variable",
    "load_file_system_library",
    "rpc_server",
    "rpc_server_start",
    "rpc_server_register",
    "rpc_client",
    "rpc_call",
    "xla_custom_call",
    "xla_custom_call_v2",
    "xla_call_module",
    "xla_send",
    "xla_recv",
    "d_tensor_restore_v2",
    "Session",
    "InteractiveSession",
    "WholeFileReader",
    "TFRecordReader",
    "TextLineReader",
    "FixedLengthRecordReader",
    "LMDBReader",
    "IdentityReader",
    "quantize_saved_model",
    "TfRecordRepresentativeDatasetSaver",
    "fixed_unigram_candidate_sampler",  # reads its vocab_file argument
}
# Top-level symbols (tf.X and tf.compat.v1.X, the keys tf_export registers) an op layer may name: tensor functions
# only. The top level also exports load_file_system_library (tf_keras 2.21 load_model of an .h5 whose TFOpLambda
# names compat.v1.load_file_system_library with a constant path dlopen()s that library: its constructor ran and
# the scan allowed it), rpc_server/rpc_client, xla_custom_call, d_tensor_restore_v2, readers, sessions, queues,
# variables and collections, global switches (disable_eager_execution, set_random_seed) and functions that take
# callables: none is allowed. Measured from tensorflow 2.21's tf_export table, audited name by name.
TF_TOP_LEVEL_OPS = frozenset(
    """
    abs accumulate_n acos acosh add add_n angle approx_top_k arg_max arg_min argmax argmin argsort as_dtype
    as_string asin asinh assert_equal assert_greater assert_greater_equal assert_integer assert_less
    assert_less_equal assert_near assert_negative assert_non_negative assert_non_positive assert_none_equal
    assert_positive assert_proper_iterable assert_rank assert_rank_at_least assert_rank_in
    assert_same_float_dtype assert_scalar assert_type atan atan2 atanh batch_gather batch_to_space
    batch_to_space_nd betainc bincount bitcast boolean_mask broadcast_dynamic_shape broadcast_static_shape
    broadcast_to cast ceil check_numerics check_pinned cholesky cholesky_solve clip_by_average_norm
    clip_by_global_norm clip_by_norm clip_by_value complex concat confusion_matrix conj constant
    constant_initializer conv conv2d_backprop_filter_v2 conv2d_backprop_input_v2 convert_to_tensor
    convert_to_tensor_or_indexed_slices convert_to_tensor_or_sparse_tensor cos cosh count_nonzero cross
    cumprod cumsum decode_base64 decode_compressed decode_csv decode_json_example decode_raw depth_to_space
    dequantize deserialize_many_sparse diag diag_part digamma dimension_at_index dimension_value div
    div_no_nan divide dynamic_partition dynamic_stitch edit_distance eig eigvals einsum encode_base64
    ensure_shape equal erf erfc exp expand_dims expm1 extract_image_patches extract_volume_patches eye
    fake_quant_with_min_max_args fake_quant_with_min_max_args_gradient fake_quant_with_min_max_vars
    fake_quant_with_min_max_vars_gradient fake_quant_with_min_max_vars_per_channel
    fake_quant_with_min_max_vars_per_channel_gradient fft fft2d fft3d fftnd fill fingerprint floor floor_div
    floordiv floormod gather gather_nd get_static_value global_norm glorot_normal_initializer
    glorot_uniform_initializer greater greater_equal group guarantee_const histogram_fixed_width
    histogram_fixed_width_bins identity identity_n ifft ifft2d ifft3d ifftnd igamma igammac imag
    invert_permutation irfftnd is_finite is_inf is_nan is_non_decreasing is_numeric_tensor
    is_strictly_increasing is_symbolic_tensor is_tensor lbeta less less_equal lgamma lin_space linspace log
    log1p log_sigmoid logical_and logical_not logical_or logical_xor make_ndarray make_tensor_proto matmul
    matrix_band_part matrix_determinant matrix_diag matrix_diag_part matrix_inverse matrix_set_diag
    matrix_solve matrix_solve_ls matrix_square_root matrix_transpose matrix_triangular_solve maximum
    meshgrid minimum mod multinomial multiply negative no_op norm not_equal one_hot ones ones_initializer
    ones_like orthogonal_initializer pad parallel_stack parse_example parse_single_example
    parse_single_sequence_example parse_tensor polygamma pow qr quantize quantize_v2 quantized_concat
    ragged_fill_empty_rows ragged_fill_empty_rows_grad random_crop random_gamma random_index_shuffle
    random_normal random_normal_initializer random_poisson random_shuffle random_uniform
    random_uniform_initializer range rank real realdiv reciprocal reduce_all reduce_any reduce_join
    reduce_logsumexp reduce_max reduce_mean reduce_min reduce_prod reduce_sum regex_replace repeat
    required_space_to_batch_paddings reshape reverse reverse_sequence reverse_v2 rfftnd rint roll round
    rsqrt saturate_cast scalar_mul scatter_nd searchsorted segment_max segment_mean segment_min segment_prod
    segment_sum self_adjoint_eig self_adjoint_eigvals sequence_mask serialize_many_sparse serialize_sparse
    serialize_tensor setdiff1d shape shape_n sigmoid sign sin sinh size slice sort space_to_batch
    space_to_batch_nd space_to_depth sparse_add sparse_concat sparse_fill_empty_rows sparse_mask
    sparse_matmul sparse_maximum sparse_merge sparse_minimum sparse_reduce_max sparse_reduce_max_sparse
    sparse_reduce_sum sparse_reduce_sum_sparse sparse_reorder sparse_reset_shape sparse_reshape
    sparse_retain sparse_segment_mean sparse_segment_sqrt_n sparse_segment_sum sparse_slice sparse_softmax
    sparse_split sparse_tensor_dense_matmul sparse_tensor_to_dense sparse_to_dense sparse_to_indicator
    sparse_transpose split sqrt square squared_difference squeeze stack stop_gradient strided_slice
    string_join string_split string_strip string_to_hash_bucket string_to_hash_bucket_fast
    string_to_hash_bucket_strong string_to_number substr subtract svd tan tanh tensor_scatter_add
    tensor_scatter_nd_add tensor_scatter_nd_max tensor_scatter_nd_min tensor_scatter_nd_sub
    tensor_scatter_nd_update tensor_scatter_sub tensor_scatter_update tensordot tile timestamp to_bfloat16
    to_complex128 to_complex64 to_double to_float to_int32 to_int64 trace transpose truediv truncated_normal
    truncated_normal_initializer truncatediv truncatemod tuple type_spec_from_value
    uniform_unit_scaling_initializer unique unique_with_counts unravel_index unsorted_segment_max
    unsorted_segment_mean unsorted_segment_min unsorted_segment_prod unsorted_segment_sqrt_n
    unsorted_segment_sum unstack variance_scaling_initializer verify_tensor_all_finite where where_v2 zeros
    zeros_initializer zeros_like zeta
""".split()
)
# in the tensor-math namespaces, names that switch process-wide state or are classes (TF's op dispatch, which
# builds op layers, only wraps functions): random.set_seed, debugging.set_log_device_placement,
# experimental.numpy.experimental_enable_numpy_behavior, random.set_global_generator, linalg.LinearOperator...
_TF_STATEFUL_NAME = re.compile(
    r"^(?:set_|enable_|disable_|experimental_|get_global_)|global_generator$|^seed$|^[A-Z]"
)
TF_CLASS_SYMBOLS = {"RaggedTensor", "SparseTensor", "Tensor", "TensorShape", "IndexedSlices"}
# Classes whose from_config opens files, loads other models or unpickles, matched on every name the object
# can resolve by (class_name, its last dotted segment, registered_name after ">")
TFSM_LAYERS = {"TFSMLayer"}
TORCH_WRAPPERS = {"TorchModuleWrapper"}
LOOKUP_LAYERS = {"StringLookup", "IntegerLookup", "IndexLookup", "TextVectorization", "Hashing"}
PATH_KEYS = (
    "vocabulary",
    "merges",
    "proto",
    "vocabulary_file",
    "spm_proto",
    "model_file",
    "vocabulary_path",
    "merges_file",
    "vocab_file",
)
# third-party packages whose functions make useful gadgets; other unknown roots are treated as custom code
DANGEROUS_THIRD_PARTY = {
    "numpy",
    "scipy",
    "pandas",
    "torch",
    "torchvision",
    "tensorflow",
    "jax",
    "transformers",
    "huggingface_hub",
    "requests",
    "urllib3",
    "httpx",
    "aiohttp",
    "mlflow",
    "fsspec",
    "joblib",
    "dill",
    "cloudpickle",
    "yaml",
    "sklearn",
    "IPython",
    "setuptools",
    "pip",
    "pkg_resources",
    "h5py",
    "onnx",
    "paramiko",
    "boto3",
    "botocore",
    "gcsfs",
    "s3fs",
    "_pickle",
    "nt",
    "posix",
    "__builtin__",
    "cffi",
    "keras_core",
}
_STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {"builtins", "os", "subprocess", "sys"}


@dataclass
class KerasIssue:
    rule_id: str
    severity: Severity | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class KerasAnalysis:
    issues: list[KerasIssue] = field(default_factory=list)
    blobs: list[tuple[str, bytes]] = field(default_factory=list)  # embedded payloads to inspect as members
    nodes: int = 0
    truncated: str | None = None
    _keys: set[tuple[str, str]] = field(default_factory=set)

    def add(self, rule: str, dedupe: str, message: str, severity: Severity | None = None, **ev: Any) -> None:
        if (rule, dedupe) in self._keys:
            return
        self._keys.add((rule, dedupe))
        if len(self.issues) >= MAX_ISSUES:
            self.truncated = self.truncated or f"more than {MAX_ISSUES} issues"
            return
        self.issues.append(
            KerasIssue(rule, severity, message, {k: v for k, v in ev.items() if v is not None})
        )


def _b64(s: str, cap: int = MAX_BLOB_BYTES) -> bytes | None:
    if len(s) > cap * 4 // 3 + 8:
        return None
    try:
        return base64.b64decode(s.encode("ascii"), validate=False)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _strict_b64(s: str) -> bytes | None:
    """Base64 as ``func_load`` decodes it first (``codecs.decode(..., "base64")`` rejects stray characters)."""
    if len(s) > MAX_BLOB_BYTES * 4 // 3 + 8:
        return None
    try:
        return base64.b64decode("".join(s.split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _lambda_issue(out: KerasAnalysis, where: str, blob_b64: Any, style: str) -> None:
    # keras func_load: base64 -> marshal.loads; text that is not base64 is marshal-loaded as raw_unicode_escape
    # bytes. Either way the loader rebuilds a code object and runs it: a finding whatever the text decodes to.
    ev: dict[str, Any] = {"style": style, "layer": where}
    raw = _strict_b64(blob_b64) if isinstance(blob_b64, str) else None
    if raw is None and isinstance(blob_b64, str):
        ev["encoding"] = "not base64: loaded as raw marshal bytes (source text or hand-made bytecode)"
        raw = blob_b64.encode("raw_unicode_escape", "replace")[:MAX_BLOB_BYTES]
    if raw is None:
        ev["decoded"] = False
        ev["error"] = f"code is a {type(blob_b64).__name__}, not text: the loader's handling is undefined"
    else:
        s = summarize(raw)
        ev.update(s.evidence())
        if not s.ok:
            ev["decoded"] = False
            ev["source_preview"] = blob_b64[:200] if isinstance(blob_b64, str) else None
        bad = sorted(set(s.names) & SUSPICIOUS_NAMES)
        if bad:
            ev["suspicious_names"] = bad
    detail = f"; uses {', '.join(ev['suspicious_names'][:6])}" if ev.get("suspicious_names") else ""
    what = "marshalled Python bytecode" if ev.get("decoded", True) else "code that is not decodable bytecode"
    out.add(
        "KERAS-LAMBDA-CODE",
        f"{where}:{style}:{str(blob_b64)[:64]}",
        f"Lambda layer {where!r} carries {what} ({style}){detail}",
        **ev,
    )


_TF_FUNCTION_TYPES = {"lambda", "function"}


def _lambda_layer(out: KerasAnalysis, where: str, cfg: dict[str, Any]) -> None:
    """A Lambda layer's callables in any form the loaders accept; an unexpected form is a finding, not silence."""
    for key in ("function", "output_shape", "mask"):
        if key not in cfg or cfg[key] is None:
            continue
        val = cfg[key]
        ftype = cfg.get(f"{key}_type" if key != "function" else "function_type")
        if ftype is not None:  # tf.keras: function_type / output_shape_type / mask_type
            if ftype == "lambda" or (ftype == "function" and isinstance(val, str)):
                continue  # judged by the walk
            if ftype == "raw" and key == "output_shape" and isinstance(val, list):
                continue  # a literal shape
            out.add(
                "KERAS-LAMBDA-CODE",
                f"{where}:{key}:{ftype}",
                f"Lambda layer {where!r} has {key} of unexpected type {str(ftype)[:40]!r}",
                severity=Severity.HIGH,
                layer=where,
                key=key,
                type=str(ftype)[:60],
            )
            continue
        if isinstance(val, dict) and isinstance(val.get("class_name"), str):
            continue  # a serialized object (__lambda__ or a named function): judged by the walk
        if key == "output_shape" and isinstance(val, (list, tuple)):
            continue
        if isinstance(val, str) and val in ACTIVATIONS:
            continue
        if isinstance(val, str):
            out.add(
                "KERAS-CUSTOM-OBJECT",
                f"lambda-fn:{where}:{val[:64]}",
                f"Lambda layer {where!r} {key} {val[:80]!r} names a function Keras must find in custom objects",
                layer=where,
                key=key,
                function=val[:200],
            )
            continue
        out.add(
            "KERAS-LAMBDA-CODE",
            f"{where}:{key}:{type(val).__name__}",
            f"Lambda layer {where!r} {key} is a {type(val).__name__} the scanner cannot judge",
            severity=Severity.HIGH,
            layer=where,
            key=key,
            value=str(val)[:200],
        )


def _module_issue(out: KerasAnalysis, where: str, module: str, cls: str, reg: Any, cfg: Any) -> None:
    root = module.split(".")[0]
    if root in ALLOWED_ROOTS:
        return
    if root == "builtins" and cls == "function" and isinstance(cfg, str) and cfg in KERAS_BUILTIN_FUNCTIONS:
        return
    ref = f"{module}.{cfg if cls == 'function' and isinstance(cfg, str) else cls}"
    if root in _STDLIB or root in DANGEROUS_THIRD_PARTY or (root != "__main__" and not isinstance(reg, str)):
        sev = Severity.HIGH if root in ("tensorflow", "numpy") and cls != "function" else None
        out.add(
            "KERAS-UNSAFE-MODULE",
            ref,
            f"{where!r} resolves {ref} from module {module!r} outside Keras",
            severity=sev,
            module=module[:200],
            class_name=cls[:200],
            registered_name=reg if isinstance(reg, str) else None,
        )
    elif root == "__main__":  # the loading program's own globals: no module is imported
        out.add(
            "KERAS-CUSTOM-OBJECT",
            ref,
            f"{where!r} needs custom code {ref} (registered as {reg!r})",
            module=module[:200],
            class_name=cls[:200],
            registered_name=reg if isinstance(reg, str) else None,
        )
    else:
        # The registered name is only a lookup key: when nothing is registered under it, tf_keras (2.21, the
        # Keras 2 every TF install uses) and Keras < 3.9 import ``module`` and take the attribute, so a file
        # chooses any installed module by writing any registered_name. tf_keras load_model (safe mode) of a
        # .keras whose object is tensorflow_hub.keras_layer.KerasLayer "registered as" Custom>KerasLayer loaded
        # the SavedModel its handle named and ran that model's initializers; the scan only warned.
        out.add(
            "KERAS-CUSTOM-OBJECT",
            ref,
            f"{where!r} needs custom code {ref} (registered as {reg!r}); tf_keras and Keras < 3.9 import"
            f" {module[:100]!r} when no such name is registered",
            severity=Severity.HIGH,
            module=module[:200],
            class_name=cls[:200],
            registered_name=reg if isinstance(reg, str) else None,
            imported_by="tf_keras, keras<3.9",
        )


def analyze_keras_config(root: Any, *, max_nodes: int = 1_000_000) -> KerasAnalysis:
    """Walk a parsed Keras config (any nesting of models/layers) and report what loading it would run."""
    out = KerasAnalysis()
    stack: list[tuple[Any, int, str]] = [(root, 0, "model")]
    while stack:
        node, depth, where = stack.pop()
        out.nodes += 1
        if out.nodes > max_nodes:
            out.truncated = f"more than {max_nodes} config nodes"
            break
        if depth > MAX_DEPTH:
            out.truncated = f"config nested deeper than {MAX_DEPTH}"
            continue
        if isinstance(node, list):
            stack.extend((x, depth + 1, where) for x in node)
            continue
        if not isinstance(node, dict):
            continue
        cls = node.get("class_name")
        cfg = node.get("config")
        name = cfg.get("name") if isinstance(cfg, dict) and isinstance(cfg.get("name"), str) else None
        here = name or (where if where != "model" or not isinstance(cls, str) else cls)
        if isinstance(cls, str):
            _check_object(out, node, cls, cfg, here)
        if isinstance(cfg, dict) and cfg.get("function_type") == "lambda":
            _lambda_issue(out, here, _legacy_blob(cfg.get("function")), "function_type lambda")
        if isinstance(cfg, dict) and cfg.get("output_shape_type") == "lambda":
            _lambda_issue(out, here, _legacy_blob(cfg.get("output_shape")), "output_shape lambda")
        if isinstance(cfg, dict) and cfg.get("mask_type") == "lambda":
            _lambda_issue(out, here, _legacy_blob(cfg.get("mask")), "mask lambda")
        if cls == "Lambda" and isinstance(cfg, dict):
            _lambda_layer(out, here, cfg)
        if isinstance(cfg, dict):
            # tf.keras Lambda: each callable names its own module (module / output_shape_module /
            # mask_module), whose namespace the loader searches: every one is judged
            for key, type_key, mod_key in _NAMED_CALLABLES:
                fn, mod = cfg.get(key), cfg.get(mod_key)
                if cfg.get(type_key) == "function" and isinstance(fn, str):
                    _named_function(out, here, fn, mod if isinstance(mod, str) else None, key)
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                stack.append((v, depth + 1, here if k == "config" else where))
    return out


def _legacy_blob(fn: Any) -> Any:
    if isinstance(fn, list) and fn:
        return fn[0]
    return fn


_NAMED_CALLABLES = (
    ("function", "function_type", "module"),
    ("output_shape", "output_shape_type", "output_shape_module"),
    ("mask", "mask_type", "mask_module"),
)


def _named_function(
    out: KerasAnalysis, where: str, fn: str, module: str | None, key: str = "function"
) -> None:
    full = _canon(f"{module}.{fn}" if module else fn)
    if _nonmodeling(_names(fn, None), full) or (module and _under(_canon(module), NON_MODELING_MODULES)):
        out.add(
            "KERAS-NONMODELING-API",
            f"fn:{module}:{fn}",
            f"Lambda {where!r} calls Keras non-modelling API {module or 'keras'}.{fn}",
            function=fn,
            module=module,
        )
        return
    root = (module or "").split(".")[0]
    if root in ALLOWED_ROOTS and _outside_modelling(full, fn, True):
        out.add(
            "KERAS-NONMODELING-API",
            f"fn:{module}:{fn}",
            f"Lambda {where!r} {key} calls {full}, inside Keras but outside its modelling namespaces",
            severity=Severity.HIGH,
            function=fn,
            module=module,
        )
        return
    if root in ALLOWED_ROOTS or fn in ACTIVATIONS:
        return
    if module is None:  # looked up among the layer module's globals and the custom objects
        out.add(
            "KERAS-CUSTOM-OBJECT",
            f"lambda-fn:{where}:{fn[:64]}",
            f"Lambda {where!r} {key} {fn[:80]!r} names a function Keras must find in custom objects",
            layer=where,
            key=key,
            function=fn[:200],
        )
        return
    if root in _STDLIB or root in DANGEROUS_THIRD_PARTY:
        out.add(
            "KERAS-UNSAFE-MODULE",
            f"{module}.{fn}",
            f"Lambda {where!r} {key} calls {module}.{fn}",
            severity=Severity.HIGH if root in ("tensorflow", "numpy") else None,
            module=module[:200],
            function=fn,
        )
    else:
        out.add(
            "KERAS-CUSTOM-OBJECT",
            f"{module}.{fn}",
            f"Lambda {where!r} needs custom function {module}.{fn}",
            module=module[:200],
            function=fn,
        )


def _canon(path: str) -> str:
    """One spelling per Keras object path: keras.src.X, keras.api.X, keras._tf_keras.keras.X, tf_keras(.src).X
    and keras._legacy.X are the same namespaces to the loaders (the public API table and the src tree)."""
    parts = path.split(".")
    if parts[0] not in ("keras", "tf_keras"):
        return path
    rest = parts[1:]
    changed = True
    while changed:
        changed = False
        for prefix in (["_tf_keras", "keras"], ["src"], ["api"]):
            if rest[: len(prefix)] == prefix:
                rest = rest[len(prefix) :]
                changed = True
    if rest[:1] == ["_legacy"]:
        rest = ["legacy", *rest[1:]]
    return ".".join(["keras", *rest])


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def _names(called: str, reg: Any) -> set[str]:
    """Every name an object can resolve by: its class/function name, that name's last dotted segment (Keras
    joins module + "." + name and looks the result up in its public API table), and the registered name,
    which the custom-object lookup tries first ("package>Name")."""
    names = {called, called.rsplit(".", 1)[-1]}
    if isinstance(reg, str) and reg:
        tail = reg.split(">")[-1]
        names |= {tail, tail.rsplit(".", 1)[-1]}
    return names


def _nonmodeling(names: set[str], full: str) -> bool:
    return bool(names & NON_MODELING) or _under(full, NON_MODELING_MODULES)


def _outside_modelling(full: str, called: str, is_function: bool) -> bool:
    """A Keras-namespace object that could be a callable and is not in a modelling namespace.

    Functions always; for classes, names Keras serialization never writes (dotted, or not CamelCase),
    which resolve through the API table to any exported symbol, functions included."""
    root = full.split(".")[0]
    if root != "keras" or called.startswith("__"):
        return False
    last = called.rsplit(".", 1)[-1]
    if not (is_function or "." in called or not last[:1].isupper()):
        return False
    return not _MODELING_CALLABLE.match(full)


def _check_object(out: KerasAnalysis, node: dict[str, Any], cls: str, cfg: Any, where: str) -> None:
    module = node.get("module")
    reg = node.get("registered_name")
    if cls == "__lambda__":
        _lambda_issue(out, where, cfg.get("code") if isinstance(cfg, dict) else None, "__lambda__")
        return
    if cls == "__typespec__" and isinstance(node.get("spec_name"), str):
        cls = node["spec_name"]  # resolved as a class from module + spec_name
    called = cfg if cls == "function" and isinstance(cfg, str) else cls
    names = _names(called, reg)
    mod = module if isinstance(module, str) and module else None
    full = _canon(f"{mod}.{called}" if mod else called)
    if _nonmodeling(names, full) or (mod is not None and _under(_canon(mod), NON_MODELING_MODULES)):
        out.add(
            "KERAS-NONMODELING-API",
            f"api:{module}:{called}",
            f"{where!r} references Keras non-modelling API {module or 'keras'}.{called}",
            module=mod,
            name=called,
            resolves_as=full if full != f"{mod}.{called}" else None,
        )
        return
    if mod is not None and mod != "builtins" and _outside_modelling(full, called, cls == "function"):
        out.add(
            "KERAS-NONMODELING-API",
            f"api:{module}:{called}",
            f"{where!r} resolves {full} inside Keras but outside its modelling namespaces"
            " (activations, losses, metrics, ops, layers, ...): not an allowed callable",
            severity=Severity.HIGH,
            module=mod,
            name=called,
        )
        return
    if _hub_function(out, where, cls, cfg, reg, mod):
        return
    if isinstance(module, str):
        _module_issue(out, where, module, cls, reg, cfg)
    if (
        isinstance(reg, str)
        and ">" in reg
        and reg.split(">")[0] not in ALLOWED_ROOTS
        and not (isinstance(module, str) and module.split(".")[0] not in ALLOWED_ROOTS)
    ):
        out.add(
            "KERAS-CUSTOM-OBJECT",
            f"reg:{reg}",
            f"{where!r} is registered custom object {reg!r}",
            registered_name=reg[:200],
        )
    if not isinstance(cfg, dict):
        return
    if names & TF_OP_LAYERS:
        _tf_symbol(out, where, cfg.get("function"), "function")
    if "ClassMethod" in names:
        sym, meth = cfg.get("cls_symbol"), cfg.get("method_name")
        if sym not in TF_CLASS_SYMBOLS or not isinstance(meth, str) or meth.startswith("_"):
            _tf_symbol_finding(out, where, f"{sym}.{meth}", "cls_symbol/method_name", Severity.HIGH)
    if names & {"InstanceMethod", "InstanceProperty"}:
        attr = cfg.get("attr_name")
        if not isinstance(attr, str) or attr.startswith("_"):
            _tf_symbol_finding(out, where, f"<tensor>.{attr}", "attr_name", Severity.HIGH)
    if names & TFSM_LAYERS:
        fp = cfg.get("filepath")
        out.add(
            "KERAS-TFSMLAYER",
            f"tfsm:{fp}",
            f"TFSMLayer {where!r} loads the SavedModel at {str(fp)[:200]!r}",
            filepath=str(fp)[:300],
        )
    if names & TORCH_WRAPPERS:
        raw = _b64(cfg["module"]) if isinstance(cfg.get("module"), str) else None
        out.add(
            "KERAS-TORCH-WRAPPER",
            f"torch:{where}",
            f"TorchModuleWrapper {where!r} torch.load()s an embedded module",
            embedded_bytes=len(raw) if raw is not None else None,
        )
        if raw:
            out.blobs.append((f"{where}.TorchModuleWrapper.module", raw))
    if names & LOOKUP_LAYERS or any(n.endswith("Tokenizer") for n in names):
        layer_cls = next(iter(sorted(names & LOOKUP_LAYERS)), None) or cls
        for key in PATH_KEYS:
            v = cfg.get(key)
            if isinstance(v, str) and v.strip():
                out.add(
                    "KERAS-EXTERNAL-PATH",
                    f"path:{where}:{key}",
                    f"{layer_cls} {where!r} reads {key} from {v[:200]!r} when loaded",
                    layer_class=layer_cls,
                    key=key,
                    path=v[:300],
                )


def _hub_function(out: KerasAnalysis, where: str, cls: str, cfg: Any, reg: Any, mod: str | None) -> bool:
    """A KerasHub / KerasNLP / KerasCV callable outside the measured modelling functions.

    A function is looked up by its name (the config string) in the registry first, so "keras_hub>x" resolves
    whatever the module says; from a hub module (Keras <= 3.8 returns any module attribute) a function, or a
    name no class has (dotted, lower-case), resolves to any symbol there."""
    refs: list[str] = []
    if cls == "function" and isinstance(cfg, str):
        pkg, sep, tail = cfg.partition(">")
        if sep and pkg in HUB_ROOTS and tail not in HUB_MODELING_FUNCTIONS:
            refs.append(cfg)
        elif (
            not sep
            and mod is not None
            and mod.split(".")[0] in HUB_ROOTS
            and cfg not in HUB_MODELING_FUNCTIONS
        ):
            refs.append(f"{mod}.{cfg}")
    elif mod is not None and mod.split(".")[0] in HUB_ROOTS and ("." in cls or not cls[:1].isupper()):
        refs.append(f"{mod}.{cls}")
    if isinstance(reg, str) and reg.partition(">")[0] in HUB_ROOTS:
        tail = reg.partition(">")[2]
        if tail and (not tail[:1].isupper() or "." in tail) and tail not in HUB_MODELING_FUNCTIONS:
            refs.append(reg)
    if not refs:
        return False
    out.add(
        "KERAS-NONMODELING-API",
        f"hub:{refs[0][:200]}",
        f"{where!r} resolves {refs[0][:200]}, a KerasHub callable outside its modelling functions"
        " (tokenizer trainers that write files, preset upload, sampler deserialization): not an allowed callable",
        severity=Severity.HIGH,
        module=mod,
        name=refs[0][:200],
    )
    return True


def _tf_symbol(out: KerasAnalysis, where: str, sym: Any, key: str) -> None:
    """Judge the TensorFlow API symbol an op layer resolves: tensor math passes, the rest is reported."""
    if not isinstance(sym, str) or not sym:
        _tf_symbol_finding(out, where, str(sym)[:100], key, Severity.HIGH)
        return
    s = sym[3:] if sym.startswith("tf.") else sym
    while s.startswith(("compat.v1.", "compat.v2.")):
        s = s[len("compat.v1.") :]
    ns, _, name = s.rpartition(".")
    if (
        name in TF_DENIED_NAMES
        or _under(s, TF_DENIED_NAMESPACES)
        or (ns and _under(ns, TF_DENIED_NAMESPACES))
    ):
        _tf_symbol_finding(out, where, sym, key, None)
    elif (
        name.startswith("_")
        or (ns and not _under(ns, TF_PURE_NAMESPACES))
        or (not ns and name not in TF_TOP_LEVEL_OPS)
        or (ns and ns != "__operators__" and _TF_STATEFUL_NAME.search(name))
    ):
        _tf_symbol_finding(out, where, sym, key, Severity.HIGH)


def _tf_symbol_finding(out: KerasAnalysis, where: str, sym: str, key: str, severity: Severity | None) -> None:
    what = (
        "outside the tensor-math namespaces"
        if severity is not None
        else "that reaches files, host Python or TF"
    )
    out.add(
        "KERAS-UNSAFE-MODULE",
        f"tfop:{where}:{sym[:100]}",
        f"tf.keras op layer {where!r} calls TensorFlow API tf.{sym[:120]} ({what}) with arguments from the config",
        severity=severity,
        symbol=sym[:200],
        key=key,
    )


def parse_config_json(raw: bytes | str, max_bytes: int) -> tuple[Any, str | None]:
    """(parsed JSON, error). Bounded by ``max_bytes``; deep nesting is an error, not a crash."""
    if len(raw) > max_bytes:
        return None, f"config of {len(raw)} bytes exceeds the {max_bytes}-byte limit"
    try:
        return json.loads(raw), None
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON: {exc}"[:300]
