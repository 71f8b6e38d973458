"""File identity: how an audit knows, without reading a byte, that a file is the one it judged before.

Local files: (device, inode, size, mtime_ns, ctime_ns). A same-size rewrite with its mtime restored
still moves ctime, which no unprivileged writer can set back. Git's racy-timestamp rule applies: a
file whose mtime or ctime is not safely older than the moment its identity is recorded may change
again within the same timestamp tick, so its identity is not recorded and the next run re-hashes it.
Registry files: the immutable revision plus the registry's content digest and size.
"""

from __future__ import annotations

import os
import time

from ..sources.base import Artifact, Snapshot

RACY_WINDOW_NS = 2_000_000_000  # coarse file systems (FAT, some network mounts) tick in 2 s


def local_identity(path: str) -> tuple[str, bool] | None:
    """(identity, racy) of a file on disk; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    racy = max(st.st_mtime_ns, st.st_ctime_ns) >= time.time_ns() - RACY_WINDOW_NS
    return f"local:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}", racy


def artifact_identity(snap: Snapshot, art: Artifact) -> tuple[str, bool] | None:
    """The identity to compare with the inventory, or None when there is none worth trusting."""
    if art.local_path:
        return local_identity(art.local_path)
    if snap.kind == "objectstore":  # the store's own version of the bytes: ETag (+ version id) and size
        etag = art.info.get("etag")
        return (
            (
                f"objectstore:{snap.resolved}:{art.path}:{etag}:{art.info.get('version_id', '')}:{art.size}",
                False,
            )
            if etag
            else None
        )
    if snap.kind == "mlflow":  # a registered version or a run is immutable once logged: version + path + size
        return f"mlflow:{snap.resolved}:{art.path}:{art.size}", False
    digest = art.claimed_sha256 or art.claimed_git_sha1
    if snap.kind == "local" or not digest or not snap.resolved:
        return None
    return f"{snap.kind}:{snap.resolved}:{art.path}:{digest}:{art.size}", False
