"""Remote benchmark (issue #4): judge a multi-GB checkpoint on a Hub without downloading it.

Serves, from the test suite's local Hugging Face Hub server (127.0.0.1 only, a second port
acting as the CDN):
  * ``bench/torch``   -- one PyTorch zip checkpoint of --size-gb (default 2.0 GB; zero tensor
                         bytes written as sparse holes, a hand-built torch.save-style data.pkl);
  * ``bench/sharded`` -- a sharded safetensors model (--shards x --shard-mb, index + config).
and prints, for each repo:
  * ``modelward scan hf://…``       -- bytes read, requests made, wall time (Range reads only);
  * full download + local scan      -- huggingface_hub snapshot_download, then ``modelward scan``;
  * ``modelward pull``              -- verified download (hash every byte, scan, install);
  * ModelAudit ``hf://`` and picklescan ``--huggingface`` when they can be pointed at a custom
    endpoint (searched in --peer-bin); otherwise "not available" with the reason.

Usage: python benchmarks/bench_remote.py [--size-gb 2.0] [--shards 3] [--shard-mb 400] [--peer-bin DIR]
Nothing here contacts a public host: every client gets HF_ENDPOINT=http://127.0.0.1:<port>, and peer
tools run with HTTP(S)_PROXY pointed at a dead loopback port so a stray public request fails fast.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.registries.models import write_safetensors, write_torch_checkpoint  # noqa: E402
from tests.registries.servers.hf_hub_server import HubServer  # noqa: E402


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def build(work: Path, size_gb: float, shards: int, shard_mb: int) -> tuple[Path, Path]:
    torch_dir = work / "torch"
    torch_dir.mkdir()
    n = int(size_gb * 1e9) // 4
    write_torch_checkpoint(
        torch_dir / "pytorch_model.bin", {"model.embed.weight": n // 2, "model.head.weight": n - n // 2}
    )
    (torch_dir / "config.json").write_text(json.dumps({"model_type": "bench", "hidden_size": 8}))
    sh_dir = work / "sharded"
    sh_dir.mkdir()
    weight_map = {}
    per = shard_mb * 1_000_000 // 4
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {f"layers.{i}.w": per // 2, f"layers.{i}.b": per - per // 2}
        write_safetensors(sh_dir / name, tensors)
        weight_map.update({t: name for t in tensors})
    (sh_dir / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    (sh_dir / "config.json").write_text(json.dumps({"model_type": "bench"}))
    return torch_dir, sh_dir


def publish(hub: HubServer, repo: str, folder: Path) -> None:
    files: dict[str, bytes | Path] = {p.name: p for p in folder.iterdir()}
    hub.add_repo(repo, files)


def modelward_scan(target: str) -> dict:
    from scanner.pipeline import ScanOptions, scan_targets
    from scanner.policy.default import decide

    t0 = time.monotonic()
    report = scan_targets([target], ScanOptions())
    report.verdict = decide(report)
    return {
        "seconds": time.monotonic() - t0,
        "bytes_read": report.bytes_read,
        "total": report.total_size,
        "verdict": report.verdict.decision.value,
        "errors": report.errors,
        "formats": sorted({f.format for f in report.files}),
    }


def run_case(hub: HubServer, repo: str, work: Path, peer_bin: Path | None) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    hub.clear_log()
    r = modelward_scan(f"hf://{repo}")
    reqs = len(hub.log)
    pct = 100.0 * r["bytes_read"] / max(1, r["total"])
    rows.append(
        (
            "modelward scan hf:// (Range)",
            f"{human(r['bytes_read'])} of {human(r['total'])} ({pct:.4f} %), {reqs} requests, "
            f"{r['seconds']:.2f} s, verdict {r['verdict']}, formats {','.join(r['formats'])}"
            + (f", errors {r['errors']}" if r["errors"] else ""),
        )
    )

    from huggingface_hub import snapshot_download

    cache = work / "dl-cache"
    hub.clear_log()
    t0 = time.monotonic()
    local = snapshot_download(repo, endpoint=hub.endpoint, token=False, cache_dir=cache)
    t_dl = time.monotonic() - t0
    dl_reqs, dl_bytes = len(hub.log), hub.bytes_sent()
    r2 = modelward_scan(local)
    rows.append(
        (
            "full download + local scan",
            f"{human(dl_bytes)} downloaded, {dl_reqs} requests, download {t_dl:.2f} s + scan "
            f"{r2['seconds']:.2f} s (incl. SHA-256 of every byte) = {t_dl + r2['seconds']:.2f} s",
        )
    )
    shutil.rmtree(cache, ignore_errors=True)

    from scanner.pull import PullOptions, pull

    hub.clear_log()
    t0 = time.monotonic()
    out = pull(f"hf://{repo}", PullOptions(progress=False, cache_dir=work / "pull-cache"))
    t_pull = time.monotonic() - t0
    rows.append(
        (
            "modelward pull (verified)",
            f"{human(hub.bytes_sent())} downloaded, {len(hub.log)} requests, {t_pull:.2f} s, "
            f"verdict {out.report.verdict.decision.value}, installed {len(out.installed)} file(s)",
        )
    )
    shutil.rmtree(work / "pull-cache", ignore_errors=True)

    rows.append(("ModelAudit hf://", peer_modelaudit(hub, repo, peer_bin, work)))
    rows.append(("picklescan --huggingface", peer_picklescan(peer_bin)))
    return rows


def _peer(name: str, peer_bin: Path | None) -> str | None:
    if peer_bin and (peer_bin / name).exists():
        return str(peer_bin / name)
    return shutil.which(name)


def _sealed_env(hub: HubServer, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("HF_", "HTTP", "NO_PROXY"))}
    # A fresh HOME: ModelAudit caches results per user, which would hide the download on a second run.
    env.update(
        {
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "HF_ENDPOINT": hub.endpoint,
            "HF_HOME": str(home / "hf"),
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "NO_ANALYTICS": "1",
            "DO_NOT_TRACK": "1",
            "CI": "1",
            # any request to a non-loopback host goes to a dead local proxy and fails at once
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def peer_modelaudit(hub: HubServer, repo: str, peer_bin: Path | None, work: Path) -> str:
    exe = _peer("modelaudit", peer_bin)
    if not exe:
        return "not available (modelaudit not found; pass --peer-bin)"
    home = work / "modelaudit-home"
    hub.clear_log()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [exe, "scan", f"hf://{repo}", "--format", "json"],
            env=_sealed_env(hub, home),
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except subprocess.TimeoutExpired:
        return "timed out after 1800 s"
    secs = time.monotonic() - t0
    shutil.rmtree(home, ignore_errors=True)
    if not hub.log:
        return f"not available against a custom endpoint (no request reached it; exit {proc.returncode})"
    return (
        f"{human(hub.bytes_sent())} downloaded, {len(hub.log)} requests, {secs:.2f} s, exit {proc.returncode}"
        + ("" if proc.returncode in (0, 1) else f" ({(proc.stderr or proc.stdout).strip()[-160:]!r})")
    )


def peer_picklescan(peer_bin: Path | None) -> str:
    exe = _peer("picklescan", peer_bin)
    if not exe:
        return "not available (picklescan not found; pass --peer-bin)"
    try:
        import importlib.util

        spec_dirs = list(
            Path(exe).resolve().parents[1].glob("lib/python3*/site-packages/picklescan/scanner.py")
        )
        src = spec_dirs[0].read_text() if spec_dirs else ""
        del importlib
    except OSError:
        src = ""
    if "https://huggingface.co/api/models" in src and "HF_ENDPOINT" not in src:
        return "not available against a custom endpoint (its --huggingface mode hard-codes https://huggingface.co); not run"
    return "not run (could not confirm it honours HF_ENDPOINT; refusing to risk a public request)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--shard-mb", type=int, default=400)
    ap.add_argument(
        "--peer-bin",
        type=Path,
        default=Path("/work/peervenv/bin") if Path("/work/peervenv/bin").is_dir() else None,
    )
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mw-bench-remote-", dir=args.workdir))
    os.environ.update(
        {
            "HF_HOME": str(work / "hf-home"),
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
    )
    for var in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        os.environ.pop(var, None)
    hub = HubServer()
    try:
        t0 = time.monotonic()
        torch_dir, sh_dir = build(work, args.size_gb, args.shards, args.shard_mb)
        hub.start()
        os.environ["HF_ENDPOINT"] = hub.endpoint
        publish(hub, "bench/torch", torch_dir)
        publish(hub, "bench/sharded", sh_dir)
        print(f"built and published in {time.monotonic() - t0:.1f} s (hub {hub.endpoint}, cdn {hub.cdn})")
        for repo, folder in (("bench/torch", torch_dir), ("bench/sharded", sh_dir)):
            total = sum(p.stat().st_size for p in folder.iterdir())
            print(f"\n== hf://{repo}  ({len(list(folder.iterdir()))} files, {human(total)})")
            for label, text in run_case(hub, repo, work, args.peer_bin):
                print(f"  {label:<32} {text}")
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
