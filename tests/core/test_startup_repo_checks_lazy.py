"""Start-up (issue #13, seventh pass): the repository checks import a format handler module only where a
repository holds such files (an index, a shard, a TorchServe folder, a script, a requirements file, an LFS
pointer), so a one-pickle scan loads none of them; sniffing no longer does either
(``tests/core/test_startup_registry_split.py``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.core.test_startup_registry_split import _modules

LOADED_BY_THE_REPOSITORY_CHECKS = (
    "scanner.formats.carrier_code",  # scanner/repo/hf_repo.py, mlflow_model.py: module level
    "scanner.formats.code_files",  # through carrier_code
    "scanner.formats.tensorflow.tf_savedmodel",  # hf_repo.py: check_checkpoint_shards, module level
    "scanner.formats.keras.keras_h5",  # through tf_savedmodel
    "scanner.formats.onnx.onnx_model",  # safetensors_index.py: check_location, module level
    "scanner.formats.safetensors_file",  # safetensors_index.py: read_header, module level
    "scanner.formats.torchserve_mar",  # hf_repo._check_torchserve_folders, before it finds a MAR-INF folder
    "scanner.formats.torch_legacy",  # through torchserve_mar
    "scanner.formats.tar_archive",  # through torchserve_mar
    "scanner.formats.torch.torch_zip",  # through torch_legacy
)


@pytest.mark.slow
def test_a_pickle_scan_imports_no_format_module_for_the_repository_checks(tmp_path: Path) -> None:
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({"coef": [0.1, 0.2], "intercept": 0.3}, protocol=4))
    res, loaded = _modules(tmp_path, "scan", "-q", str(small))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "scanner.repo.hf_repo" in loaded  # the repository checks ran
    assert sorted(m for m in LOADED_BY_THE_REPOSITORY_CHECKS if m in loaded) == []
