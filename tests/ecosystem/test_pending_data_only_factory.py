"""A data-only allowlist entry handed to a holder that calls it later: a gap owned by the pickle analyzer.

The audit's ``data-only`` constraint (signatures/pickle/audit) says the global is a stored value that nothing calls.
The walker counts REDUCE calls and module hooks (a ``_forward_hooks`` value blocks), but not the ``invoked: true``
argument of ``collections.defaultdict`` (gadgets.yaml): ``defaultdict(<data-only global>)`` is allowed, and the
factory runs on every missing key after loading. Checked with the real loader (pickle.loads in a throwaway venv,
torch 2.13): ``defaultdict(builtins.print)['k']`` prints; ``defaultdict(torch.cuda.FloatStorage)['k']`` calls
into CUDA initialisation. The impact of today's data-only entries is small (no argument reaches them), but the
constraint is what every future data-only entry relies on. The fix (``scanner/formats/pickle/checks.py``, which
today counts every helper position as an allowed use of a data-only global): count a data-only import in a
deferred-call position (the defaultdict factory) as a call, while the rebuild helpers' class positions stay accepted
(``_rebuild_from_type_v2`` new_type: fastai TensorBase; ``_rebuild_wrapper_subclass`` cls).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import rule_ids, scan_on_disk, verdict


def _factory(module: str, name: str) -> bytes:
    return b"\x80\x02ccollections\ndefaultdict\n(c" + module.encode() + b"\n" + name.encode() + b"\ntR."


@pytest.mark.xfail(
    strict=True,
    reason="data-only globals are accepted in gadgets.yaml 'invoked: true' positions (defaultdict factory): "
    "scanner/formats/pickle/checks.py counts only REDUCE calls and hooks against data-only (pickle analyzer's area)",
)
@pytest.mark.parametrize(
    "glob",
    [("builtins", "print"), ("torch.cuda", "FloatStorage"), ("spacy.util", "raise_error")],
    ids=["print", "cuda_storage", "raise_error"],
)
def test_data_only_global_as_defaultdict_factory_blocks(tmp_path: Path, glob: tuple[str, str]) -> None:
    fr = scan_on_disk(tmp_path, _factory(*glob), "factory.pkl")
    assert verdict(fr).value == "block", sorted(rule_ids(fr))
