"""Profile entries added from the 2026-12-03 version sweep (scikit-learn 1.2-1.9, pandas 1.5-3.1, scipy 1.10-1.17,
numpy 1.23-2.4, statsmodels 0.13-0.14, catboost): the benign files are in fixtures/ecosystem/legacy/*/v_*.pkl
(tests/formats/pickle/test_ecosystem_corpus.py); here, the shapes they are allowed in and the ones they are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import rule_ids, scan_on_disk, verdict


def _global(ref: str) -> bytes:
    module, name = ref.split(":")
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _called(ref: str) -> bytes:
    """protocol 2: ref() by REDUCE with no arguments."""
    return b"\x80\x02" + _global(ref) + b")R."


def _newobj_build(ref: str) -> bytes:
    """protocol 2: ref.__new__(ref) then BUILD {'a': 1} (the shape the libraries write)."""
    return b"\x80\x02" + _global(ref) + b")\x81}U\x01aK\x01sb."


def _stored(ref: str) -> bytes:
    """protocol 2: {'f': ref} (a value, never called)."""
    return b"\x80\x02}U\x01f" + _global(ref) + b"s."


NEWOBJ_ONLY = [
    "sklearn.ensemble._gb_losses:LeastSquaresError",
    "sklearn.metrics._scorer:_PredictScorer",
    "sklearn.compose._column_transformer:_RemainderColsList",
    "sklearn.multiclass:_ConstantPredictor",
    "scipy.sparse._arrays:lil_array",
    "pandas.core.arrays.sparse.dtype:SparseDtype",
    "statsmodels.genmod.families.family:Binomial",
    "statsmodels.genmod.families.links:logit",
    "catboost.core:CatBoostRanker",
    "scipy.stats._kde:gaussian_kde",
    "scipy.interpolate._interpolate:interp1d",
    "scipy.stats._multivariate:_PSD",
    "numpy.polynomial.polynomial:Polynomial",
    "numpy:poly1d",
    "sklearn.impute._iterative:IterativeImputer",
    "sklearn.model_selection._search_successive_halving:HalvingGridSearchCV",
    "sklearn.covariance._graph_lasso:_DictWithDeprecatedKeys",
    "torch.distributed.checkpoint.metadata:Metadata",
    "torch.distributed.checkpoint.metadata:TensorProperties",
    "torch.distributed.checkpoint.filesystem:_StorageInfo",
]
DATA_ONLY = [
    "sklearn.metrics._scorer:_passthrough_scorer",
    "sklearn.utils.validation:check_array",
    "scipy.interpolate._interpolate:interp1d._call_linear_np",
    "ml_dtypes:bfloat16",
]


@pytest.mark.parametrize("ref", NEWOBJ_ONLY)
def test_newobj_build_shape_is_allowed(tmp_path: Path, ref: str) -> None:
    fr = scan_on_disk(tmp_path, _newobj_build(ref), "model.pkl")
    assert verdict(fr).value == "allow", rule_ids(fr)


@pytest.mark.parametrize("ref", NEWOBJ_ONLY)
def test_called_by_reduce_is_blocked(tmp_path: Path, ref: str) -> None:
    # __init__ of these classes fits, decomposes, parses dtype strings or allocates: only cls.__new__ is audited
    fr = scan_on_disk(tmp_path, _called(ref), "model.pkl")
    assert verdict(fr).value == "block"
    assert "PICKLE-CONSTRAINT-VIOLATION" in rule_ids(fr)


@pytest.mark.parametrize("ref", DATA_ONLY)
def test_stored_function_is_allowed_and_calling_it_is_blocked(tmp_path: Path, ref: str) -> None:
    assert verdict(scan_on_disk(tmp_path, _stored(ref), "stored.pkl")).value == "allow"
    fr = scan_on_disk(tmp_path, _called(ref), "called.pkl")
    assert verdict(fr).value == "block"
    assert "PICKLE-CONSTRAINT-VIOLATION" in rule_ids(fr)


def test_pyx_unpickle_of_an_unlisted_type_is_blocked(tmp_path: Path) -> None:
    # __pyx_unpickle_CyHalfSquaredError(type, checksum, state) instantiates type: an unlisted class there still blocks
    blob = (
        b"\x80\x02"
        + _global("sklearn._loss._loss:__pyx_unpickle_CyHalfSquaredError")
        + _global("os:system")
        + b"J\x00\x00\x00\x00N\x87R."
    )
    fr = scan_on_disk(tmp_path, blob, "model.pkl")
    assert verdict(fr).value == "block"
