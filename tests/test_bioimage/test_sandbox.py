"""The sandbox of the processes that run weights: writes only to scratch, reads only the package and the
runtime, no network. Each case runs in a fresh process (a sandbox cannot be left)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import json, socket, sys
    from pathlib import Path
    from zoo.bioimage.sandbox import enter_sandbox

    package, scratch, outside, port = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    status = enter_sandbox([package], [scratch])
    results = {"files": status.files, "network": status.network}

    def attempt(name, action):
        try:
            action()
            results[name] = "allowed"
        except OSError:
            results[name] = "denied"

    attempt("write scratch", lambda: (scratch / "ok").write_text("x"))
    attempt("write outside", lambda: (outside / "created").write_text("x"))
    attempt("read package", lambda: (package / "weights.bin").read_bytes())
    attempt("read outside", lambda: (outside / "secret").read_text())
    attempt("connect", lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close())
    attempt("import torch", lambda: __import__("torch").ones(2).sum())
    print(json.dumps(results))
    """
)


def test_sandboxed_process_writes_only_scratch_and_reaches_no_network(tmp_path):
    package, scratch, outside = tmp_path / "package", tmp_path / "scratch", tmp_path / "outside"
    for folder in (package, scratch, outside):
        folder.mkdir()
    (package / "weights.bin").write_bytes(b"weights")
    (outside / "secret").write_text("host file")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        run = subprocess.run(
            [sys.executable, "-c", PROBE, str(package), str(scratch), str(outside), str(server.getsockname()[1])],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=str(outside),
        )
    finally:
        server.close()
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    if not results["files"]:
        pytest.skip("this kernel offers no Landlock: the report says files are not confined")
    assert results["write scratch"] == "allowed"
    assert results["read package"] == "allowed"
    assert results["import torch"] == "allowed"
    assert results["write outside"] == "denied"
    assert results["read outside"] == "denied"
    assert results["network"] is True
    assert results["connect"] == "denied"
    assert not (outside / "created").exists()
