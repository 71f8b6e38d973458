"""Write the real-library pickles the pickle tests read (run in /work/genvenv; never loads anything).

    /work/genvenv/bin/python tests/formats/pickle/make_data.py

Outputs are small and committed under tests/formats/pickle/data/ so the test suite needs
no torch/sklearn. Torch zip checkpoints contribute their ``data.pkl`` member (the
pickle torch.load runs); legacy-format files are kept whole.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).parent / "data"


def torch_data_pkl(obj: object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        return zf.read(name)


def torch_legacy(obj: object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def main() -> None:
    import joblib
    import numpy as np
    import sklearn
    import torch
    from sklearn import ensemble, feature_extraction, linear_model, pipeline, preprocessing, svm, tree

    OUT.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    torch.manual_seed(0)

    # torch state dicts: every dtype family
    dts = {
        "f32": torch.float32,
        "f16": torch.float16,
        "bf16": torch.bfloat16,
        "f64": torch.float64,
        "i64": torch.int64,
        "i32": torch.int32,
        "i16": torch.int16,
        "i8": torch.int8,
        "u8": torch.uint8,
        "bool": torch.bool,
        "c64": torch.complex64,
        "f8e4m3": torch.float8_e4m3fn,
        "f8e5m2": torch.float8_e5m2,
        "u16": torch.uint16,
    }
    sd = {f"w_{k}": torch.zeros(2, dtype=v) for k, v in dts.items()}
    files["torch_dtypes.data.pkl"] = torch_data_pkl(sd)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2), torch.nn.ReLU())
    files["torch_state_dict.data.pkl"] = torch_data_pkl(net.state_dict())
    files["torch_parameter.data.pkl"] = torch_data_pkl({"p": torch.nn.Parameter(torch.ones(2))})
    files["torch_sparse_quant.data.pkl"] = torch_data_pkl(
        {
            "coo": torch.eye(3).to_sparse(),
            "q": torch.quantize_per_tensor(torch.ones(4), 0.1, 10, torch.quint8),
        }
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    files["torch_optimizer.data.pkl"] = torch_data_pkl(opt.state_dict())
    files["torch_scheduler.data.pkl"] = torch_data_pkl(sched.state_dict())
    files["torch_checkpoint.data.pkl"] = torch_data_pkl(
        {
            "model": net.state_dict(),
            "epoch": 3,
            "device": torch.device("cpu"),
            "size": torch.Size([2, 3]),
            "dtype": torch.float32,
        }
    )
    # HF Trainer rng_state.pth
    random.seed(0)
    np.random.seed(0)
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()}
    files["hf_rng_state.data.pkl"] = torch_data_pkl(rng)
    files["torch_legacy_state_dict.pt"] = torch_legacy(torch.nn.Linear(2, 2).state_dict())

    # numpy
    arr = np.arange(12, dtype="f4").reshape(3, 4)
    for proto in (2, 4, 5):
        files[f"numpy_array_p{proto}.pkl"] = pickle.dumps(
            {"a": arr, "i": np.arange(3), "s": np.float64(1.5)}, protocol=proto
        )

    # scikit-learn
    rs = np.random.RandomState(0)
    x = rs.rand(30, 3)
    y = (x[:, 0] > 0.5).astype(int)
    texts = ["alpha beta", "beta gamma", "gamma delta", "delta alpha"] * 5
    models = {
        "sk_pipeline": pipeline.Pipeline(
            [("s", preprocessing.StandardScaler()), ("m", linear_model.LogisticRegression())]
        ).fit(x, y),
        "sk_forest": ensemble.RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(x, y),
        "sk_tree": tree.DecisionTreeClassifier(max_depth=2).fit(x, y),
        "sk_gb": ensemble.GradientBoostingClassifier(n_estimators=2, max_depth=2).fit(x, y),
        "sk_svc": svm.SVC().fit(x, y),
        "sk_tfidf": pipeline.make_pipeline(
            feature_extraction.text.TfidfVectorizer(), linear_model.LogisticRegression()
        ).fit(texts, [0, 1] * 10),
    }
    for name, m in models.items():
        files[f"{name}.pkl"] = pickle.dumps(m, protocol=4)
        buf = io.BytesIO()
        joblib.dump(m, buf)
        files[f"{name}.joblib"] = buf.getvalue()
    buf = io.BytesIO()
    joblib.dump(
        {
            "num": np.arange(5.0),
            "obj": np.array(["x", 1, None], dtype=object),
            "u": np.array(["ab"]),
            "empty": np.zeros((0, 3)),
            "scalar": np.array(2.0),
        },
        buf,
    )
    files["joblib_mixed_arrays.joblib"] = buf.getvalue()
    files["sk_forest_p5.pkl"] = pickle.dumps(models["sk_forest"], protocol=5)

    # code objects (must be flagged): dill and cloudpickle functions
    import cloudpickle
    import dill

    files["code_dill_lambda.pkl"] = dill.dumps(lambda v: v + 1)
    files["code_cloudpickle_lambda.pkl"] = cloudpickle.dumps(lambda v: v * 2)

    try:  # optional: transformers in a side install (PYTHONPATH)
        from transformers import TrainingArguments

        buf = io.BytesIO()
        torch.save(TrainingArguments(output_dir="/tmp/out", report_to="none"), buf)
        with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
            files["hf_training_args.data.pkl"] = zf.read(
                next(n for n in zf.namelist() if n.endswith("/data.pkl"))
            )
    except Exception as exc:  # noqa: BLE001 - optional sample
        print(f"training_args.bin skipped: {exc}", file=sys.stderr)

    for name, data in files.items():
        (OUT / name).write_bytes(data)
    versions = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "joblib": joblib.__version__,
        "python": sys.version.split()[0],
    }
    (OUT / "VERSIONS.json").write_text(json.dumps(versions, indent=1) + "\n")
    print(f"{len(files)} files, {sum(map(len, files.values()))} bytes")


if __name__ == "__main__":
    main()
