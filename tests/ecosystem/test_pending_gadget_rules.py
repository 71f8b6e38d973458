"""Benign files of real libraries that the default policy blocks because of a rule outside the profiles.

Each sample was written by the named library (pickle.dumps, protocol 4) and loads with that library's own
``pickle.load`` (checked in a throwaway venv). The fix is in ``signatures/pickle/gadgets.yaml`` (argument rules of
a pandas rebuild helper) or in the hydra-target analysis, owned by other areas: these tests are strict xfails that
pass the day the fix lands.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import rule_ids, scan, scan_on_disk, verdict

SAMPLES = Path(__file__).parent / "samples"


def _allowed(tmp_path: Path, name: str, blob: bytes) -> bool:
    fr = scan_on_disk(tmp_path, blob, name)
    return verdict(fr).value == "allow" and not (
        rule_ids(fr)
        & {
            "PICKLE-CALL-UNLISTED",
            "PICKLE-GADGET-ARGUMENT",
            "PICKLE-CONSTRAINT-VIOLATION",
            "CONFIG-TARGET-UNLISTED",
        }
    )


@pytest.mark.xfail(
    strict=True,
    reason="pandas 1.x writes Int64Index/Float64Index/UInt64Index (pandas.core.indexes.numeric) as argument 0 of "
    "_new_Index; gadgets.yaml's one_of for _new_Index lists only pandas 2+ index classes (pickle analyzer area)",
)
def test_pandas_1x_int64index_series_is_allowed(tmp_path: Path) -> None:
    # pd.Series([1.0, 2.0], index=pd.Index([10, 20])) under pandas 1.5.3
    assert _allowed(tmp_path, "series.pkl", (SAMPLES / "int64index_pandas153.pkl").read_bytes())


@pytest.mark.xfail(
    strict=True,
    reason="pandas 3 pickles a TimedeltaIndex as _new_TimedeltaIndex(TimedeltaIndex, d), a factory over its first "
    "argument like _new_DatetimeIndex: it needs the same gadgets.yaml rule (invoked new, one_of TimedeltaIndex) "
    "before a profile may list it (pickle analyzer area)",
)
def test_pandas_3_timedeltaindex_is_allowed(tmp_path: Path) -> None:
    assert _allowed(tmp_path, "tdi.pkl", (SAMPLES / "timedeltaindex_pandas311.pkl").read_bytes())


@pytest.mark.xfail(
    strict=True,
    reason="pandas 3 pickles DateOffset(months=1) as REDUCE DateOffset() (no arguments) + BUILD holding a "
    "dateutil relativedelta; the audit marks DateOffset newobj-only, and a no-argument call needs an argument "
    "rule in gadgets.yaml (pickle analyzer area); relativedelta (NEWOBJ + BUILD) can then be profiled",
)
def test_pandas_dateoffset_with_months_is_allowed(tmp_path: Path) -> None:
    assert _allowed(tmp_path, "offset.pkl", (SAMPLES / "dateoffset_pandas311.pkl").read_bytes())


@pytest.mark.xfail(
    strict=True,
    reason="a tokenizer vocabulary holding the token '_target_' maps it to an int id; hydra never reads "
    "tokenizer.json/vocab.json, and a non-string _target_ imports nothing, yet CONFIG-TARGET-UNLISTED is high "
    "(hydra target analysis, code carriers area)",
)
@pytest.mark.parametrize("name", ["tokenizer.json", "vocab.json"])
def test_vocabulary_with_target_token_is_allowed(tmp_path: Path, name: str) -> None:
    vocab = {"<|endoftext|>": 0, "_target_": 1, "Ġthe": 2, "os": 3}
    doc = (
        vocab
        if name == "vocab.json"
        else {"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": []}}
    )
    assert _allowed(tmp_path, name, json.dumps(doc).encode())


@pytest.mark.xfail(
    strict=True,
    reason="a torch.distributed.checkpoint shard holding a non-tensor value (a step counter: every FSDP / NeMo 2 / "
    "Megatron torch_dist optimizer state has one) is that value's torch.save zip followed by raw tensor bytes at the "
    "offsets .metadata lists; the zip handler reports ZIP-PREFIX-DATA/ZIP-EXTRA-DATA and FORMAT-UNKNOWN instead of "
    "carving the shard by its index (torch/zip format handlers, repository checks)",
)
def test_dcp_checkpoint_with_a_step_counter_is_allowed() -> None:
    # dcp.save({'a': torch.ones(2, dtype=torch.bfloat16), 'step': 3}, FileSystemWriter(d), no_dist=True), torch 2.13;
    # dcp.load of it restores both values (checked in a throwaway venv)
    report = scan(SAMPLES / "dcp_with_step")
    assert report.verdict is not None and report.verdict.decision.value == "allow", sorted(
        f.rule_id for f in report.all_findings()
    )


@pytest.mark.xfail(
    strict=True,
    reason="numpy writes an array of ml_dtypes bfloat16/float8 values (JAX, tensorstore/zarr distributed "
    "checkpoints) as numpy.dtype(ml_dtypes.bfloat16, False, True): a registered-descriptor lookup; gadgets.yaml's "
    "one_of for numpy:dtype argument 0 accepts only literals and numpy:record (pickle analyzer area). The types "
    "are in the numpy profile (data-only) already",
)
def test_ml_dtypes_bf16_fp8_arrays_are_allowed(tmp_path: Path) -> None:
    # pickle.dumps({'w': np.ones(3, ml_dtypes.bfloat16), 'f8': np.zeros(2, ml_dtypes.float8_e4m3fn)}), ml_dtypes 0.7.0
    assert _allowed(tmp_path, "state.pkl", (SAMPLES / "ml_dtypes_bf16_fp8.pkl").read_bytes())
