"""A sandbox for the processes that load and run a package's weights: after `enter_sandbox`, the process (and
everything it starts) can write only under its scratch folder, read only the package, the scratch folder and
what Python and the frameworks need to run, and reach no network.

Linux only, from two kernel features that need no privileges: Landlock (file access; TCP bind/connect from ABI 4
on) and, where permitted, a new network namespace (no interface but a down loopback, so UDP and Unix abstract
sockets reach nothing either). What the platform cannot provide is said in the returned status, never hidden:
the report shows it."""

from __future__ import annotations

import ctypes
import glob
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # the same on x86_64 and aarch64
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_RULE_PATH_BENEATH = 1

# Landlock filesystem rights, by the ABI version that introduced them
_FS = {
    "execute": (1 << 0, 1),
    "write_file": (1 << 1, 1),
    "read_file": (1 << 2, 1),
    "read_dir": (1 << 3, 1),
    "remove_dir": (1 << 4, 1),
    "remove_file": (1 << 5, 1),
    "make_char": (1 << 6, 1),
    "make_dir": (1 << 7, 1),
    "make_reg": (1 << 8, 1),
    "make_sock": (1 << 9, 1),
    "make_fifo": (1 << 10, 1),
    "make_block": (1 << 11, 1),
    "make_sym": (1 << 12, 1),
    "refer": (1 << 13, 2),
    "truncate": (1 << 14, 3),
    "ioctl_dev": (1 << 15, 5),
}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_READ = ("execute", "read_file", "read_dir")
_FILE_RIGHTS = ("execute", "write_file", "read_file", "truncate", "ioctl_dev")  # what a rule on a file may hold

# system locations every Python process reads (shared libraries, /proc and /sys for CPU counts, devices)
SYSTEM_READABLE = (
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/sbin",
    "/opt",
    "/proc",
    "/sys",
    "/dev",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl",
    "/etc/alternatives",
)
SYSTEM_WRITABLE = ("/dev/null",)


@dataclass
class SandboxStatus:
    files: bool = False  # writes confined to the scratch folder, reads to the package and the runtime
    network: bool = False  # no network reachable
    notes: list[str] = field(default_factory=list)  # what could not be provided, and why

    def to_dict(self) -> dict:
        return {"files": self.files, "network": self.network, "notes": list(self.notes), "summary": self.summary}

    @property
    def summary(self) -> str:
        parts = [
            f"files {'confined' if self.files else 'NOT confined'}",
            f"network {'cut' if self.network else 'NOT cut'}",
        ]
        return ", ".join(parts) + (f" ({'; '.join(self.notes)})" if self.notes else "")


def enter_sandbox(readable: list[Path], writable: list[Path], device: str = "cpu") -> SandboxStatus:
    """Confine this process from now on. `readable`: the package; `writable`: the scratch folder (temporary files
    go there: TMPDIR and HOME are pointed at it). With a CUDA `device`, the GPU's device files and /dev/shm are
    writable too. Call it first thing in a fresh process, before threads start."""
    status = SandboxStatus()
    if platform.system() != "Linux":
        status.notes.append(f"no sandbox on {platform.system()}")
        return status
    libc = ctypes.CDLL(None, use_errno=True)
    if writable:  # temporary files, caches and framework settings (~/.keras) go to the scratch folder
        for variable in ("TMPDIR", "HOME", "KERAS_HOME", "XDG_CACHE_HOME"):
            os.environ[variable] = str(writable[0])
        import tempfile

        tempfile.tempdir = str(writable[0])
    status.network = _cut_network(libc, status)
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        status.notes.append(f"Landlock unavailable ({os.strerror(ctypes.get_errno())})")
        return status
    try:
        devices = [*glob.glob("/dev/nvidia*"), "/dev/shm"] if device.startswith("cuda") else []
        net_by_landlock = _landlock(libc, abi, readable, [*writable, *map(Path, devices)])
    except OSError as e:
        status.notes.append(f"Landlock failed ({e})")
        return status
    status.files = True
    if not status.network and net_by_landlock:
        status.network = True
        status.notes.append("TCP cut by Landlock; UDP not")
    return status


def _cut_network(libc, status: SandboxStatus) -> bool:
    """A network namespace of its own (as root, or inside a new user namespace when that is allowed)."""
    if libc.unshare(_CLONE_NEWNET) == 0:
        return True
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        return True
    status.notes.append(f"no network namespace ({os.strerror(ctypes.get_errno())})")
    return False


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _rights(names, abi: int) -> int:
    return sum(bit for name, (bit, since) in _FS.items() if name in names and since <= abi)


def _landlock(libc, abi: int, readable: list[Path], writable: list[Path]) -> bool:
    handled = _rights(_FS, abi)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    attr = _RulesetAttr(handled, net)
    size = ctypes.sizeof(attr) if abi >= 4 else 8
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        python = _python_locations()
        for path in [*SYSTEM_READABLE, *python, *map(str, readable)]:
            _allow(libc, ruleset, path, _rights(_READ, abi))
        for path in [*SYSTEM_WRITABLE, *map(str, writable)]:
            _allow(libc, ruleset, path, handled)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return bool(net)


def _python_locations() -> set[str]:
    """The interpreter, its site-packages and zoo's own source (an editable install lives outside them); not
    the working folder nor a script's folder that sys.path may also hold."""
    import site

    zoo_parent = Path(__file__).resolve().parents[2]  # the folder that holds the zoo package
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(zoo_parent)}
    try:
        found.update(site.getsitepackages())
    except AttributeError:  # a virtualenv's old site module
        pass
    found.update(p for p in sys.path if p and any(p.startswith(prefix) for prefix in (sys.prefix, sys.base_prefix)))
    return found


def _allow(libc, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a location this system does not have
    try:
        if not os.path.isdir(path):
            rights &= sum(_FS[name][0] for name in _FILE_RIGHTS)
        rule = _PathBeneath(rights, fd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}): {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


__all__ = ["SandboxStatus", "enter_sandbox"]
