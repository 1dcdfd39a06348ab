"""Tests for stratagem.sandbox.oslimits (seccomp-BPF filter, rlimits, parent-death signal).

Every test that installs a filter or sets a limit does it in a forked child (``run_in_child``):
the child acts, writes a one-byte result code (plus an optional detail string) to a pipe and
``os._exit``s, so the pytest process itself is never filtered or limited.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# numpy 2 imports submodules lazily; import them now, as the worker does, because importing
# (open) is denied under the filter.
import numpy as np
import numpy.linalg
import numpy.random
import pytest

try:
    from stratagem.sandbox import oslimits
except ImportError:  # package not installed: import from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
    from stratagem.sandbox import oslimits

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(os, "fork"),
    reason="oslimits targets Linux (fork, prctl, seccomp)",
)

# result codes written by children
OK = 1  # the action behaved as the test expects
DENIED = 2  # the action failed with EPERM / PermissionError
WRONG = 3  # the action had an unexpected outcome (detail says what)
NOT_INSTALLED = 4  # install_seccomp() returned False (detail: last_seccomp_error())
CRASH = 5  # unexpected exception in the child (detail: repr)
TIMEOUT = 6  # the child gave up waiting for something

IS_X86_64 = oslimits.native_arch() == "x86_64"


@dataclass
class Outcome:
    code: int | None
    detail: str
    status: int

    @property
    def killed_by(self) -> int | None:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    def __str__(self) -> str:
        return f"code={self.code} detail={self.detail!r} killed_by={self.killed_by}"


def run_in_child(
    action: Callable[[], int | tuple[int, str]],
    *,
    seccomp: dict | None = None,
    timeout: float = 60.0,
) -> Outcome:
    """Fork; in the child optionally install_seccomp(**seccomp), run ``action``, report."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(r)
            code, detail = CRASH, ""
            try:
                if seccomp is not None and not oslimits.install_seccomp(**seccomp):
                    code, detail = NOT_INSTALLED, oslimits.last_seccomp_error() or ""
                else:
                    res = action()
                    code, detail = res if isinstance(res, tuple) else (res, "")
            except BaseException:  # noqa: BLE001 - everything is reported
                code, detail = CRASH, traceback.format_exc()[-1500:]
            os.write(w, bytes([code]) + detail.encode("utf-8", "replace")[:2000])
        finally:
            os._exit(0)
    os.close(w)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                continue
            chunk = os.read(r, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    return Outcome(data[0] if data else None, data[1:].decode("utf-8", "replace"), status)


def expect_denied(fn: Callable[[], object], what: str) -> tuple[int, str] | None:
    """None when fn raised EPERM; otherwise a (WRONG, detail) result for the child."""
    try:
        fn()
    except PermissionError:
        return None
    except OSError as exc:
        return WRONG, f"{what}: expected EPERM, got {exc!r}"
    return WRONG, f"{what}: succeeded under the filter"


def all_denied(*checks: tuple[str, Callable[[], object]]) -> int | tuple[int, str]:
    for what, fn in checks:
        bad = expect_denied(fn, what)
        if bad is not None:
            return bad
    return DENIED


@pytest.fixture(scope="module")
def seccomp_ok() -> None:
    """Skip (with the reason) when this kernel/arch cannot take the filter."""
    if oslimits.native_arch() is None:
        pytest.skip(f"seccomp filter unsupported on {platform.machine()} / {sys.byteorder}-endian")
    out = run_in_child(lambda: OK, seccomp={})
    if out.code == NOT_INSTALLED:
        pytest.skip(f"seccomp unsupported here: {out.detail}")
    assert out.code == OK, str(out)


def _disable_core_dumps() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(4, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


# ======================================================================================
# Filter structure (no fork): a tiny cBPF interpreter checks both arches' programs.
# ======================================================================================

SECCOMP_RET_ACTION_FULL = 0xFFFF0000


def run_bpf(prog: list[tuple[int, int, int, int]], data: bytes) -> int:
    pc, acc = 0, 0
    for _ in range(len(prog) + 1):
        code, jt, jf, k = prog[pc]
        if code == 0x20:  # ld w abs
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == 0x15:  # jeq k
            pc += 1 + (jt if acc == k else jf)
        elif code == 0x35:  # jge k
            pc += 1 + (jt if acc >= k else jf)
        elif code == 0x45:  # jset k
            pc += 1 + (jt if acc & k else jf)
        elif code == 0x06:  # ret k
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        assert 0 <= pc < len(prog), "jump out of the program"
    raise AssertionError("no return")


def seccomp_data(arch: str, nr: int, *args: int, audit_arch: int | None = None) -> bytes:
    full = [a & 0xFFFFFFFFFFFFFFFF for a in args] + [0] * (6 - len(args))
    aa = oslimits.AUDIT_ARCH[arch] if audit_arch is None else audit_arch
    return struct.pack("<iIQ6Q", nr, aa, 0x1000, *full)


def verdict(ret: int) -> str:
    action = ret & SECCOMP_RET_ACTION_FULL
    if action == oslimits.SECCOMP_RET_ALLOW:
        return "allow"
    if action == oslimits.SECCOMP_RET_KILL_PROCESS:
        return "kill"
    if action == oslimits.SECCOMP_RET_ERRNO:
        return errno.errorcode[ret & 0xFFFF]
    return hex(ret)


ARCHES = ("x86_64", "aarch64")
NR = {  # a few well-known numbers per arch, independent of the module's tables
    "x86_64": {"read": 0, "write": 1, "openat": 257, "open": 2, "socket": 41, "clone3": 435,
               "kill": 62, "tgkill": 234, "prlimit64": 302, "setrlimit": 160, "ioctl": 16,
               "mmap": 9, "setitimer": 38, "sendmsg": 46, "recvfrom": 45, "execve": 59,
               "fork": 57, "getpid": 39, "openat2": 437, "seccomp": 317},
    "aarch64": {"read": 63, "write": 64, "openat": 56, "socket": 198, "clone3": 435,
                "kill": 129, "tgkill": 131, "prlimit64": 261, "setrlimit": 164, "ioctl": 29,
                "mmap": 222, "setitimer": 103, "sendmsg": 211, "recvfrom": 207, "execve": 221,
                "getpid": 172, "openat2": 437, "seccomp": 277},
}
O_DIRECTORY = {"x86_64": 0o200000, "aarch64": 0o40000}
O_CLOEXEC = 0o2000000


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("readonly", [False, True])
def test_filter_program_is_well_formed(arch: str, readonly: bool) -> None:
    prog = oslimits.build_seccomp_filter(arch, allow_open_readonly=readonly, self_pid=4242)
    assert len(prog) < oslimits.BPF_MAXINSNS
    assert prog[-1] == (0x06, 0, 0, oslimits.SECCOMP_RET_ALLOW), "default action is ALLOW"
    assert prog[0] == (0x20, 0, 0, 4), "first instruction loads seccomp_data.arch"
    for i, (code, jt, jf, k) in enumerate(prog):
        assert 0 <= jt <= 255 and 0 <= jf <= 255
        if code & 0x07 == 0x05:  # jumps stay inside the program
            assert i + 1 + max(jt, jf) < len(prog)
        if code == 0x20:
            assert k % 4 == 0 and k < 64, "aligned load inside struct seccomp_data"
        if code == 0x06:  # never KILL except for the arch check
            assert verdict(k) != "kill" or i == 2
        assert 0 <= k <= 0xFFFFFFFF


def test_syscall_tables_are_consistent() -> None:
    for arch in ARCHES:
        table = oslimits._SYSCALLS[arch]
        assert len(set(table.values())) == len(table), f"duplicate numbers in {arch} table"
        for name, nr in NR[arch].items():
            if name in table:
                assert table[name] == nr, (arch, name)
    legacy = {"open", "fork", "vfork", "mkdir", "unlink", "rename", "creat", "chmod", "chown",
              "inotify_init", "iopl", "ioperm", "modify_ldt", "utime", "utimes", "futimesat"}
    assert not legacy & set(oslimits._SYSCALLS["aarch64"]), "aarch64 has no legacy syscalls"
    assert legacy <= set(oslimits._SYSCALLS["x86_64"])
    # every denied name exists on at least one arch (catches typos)
    for name in oslimits.DENIED_SYSCALLS:
        assert any(name in oslimits._SYSCALLS[a] for a in ARCHES), name


UAPI_HEADERS = {
    # aarch64 uses the asm-generic table
    "x86_64": ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"),
    "aarch64": ("/usr/include/asm-generic/unistd.h",),
}


@pytest.mark.parametrize("arch", ARCHES)
def test_syscall_tables_match_kernel_headers(arch: str) -> None:
    """When the kernel UAPI headers are installed, every number we know must agree."""
    header = next((h for h in UAPI_HEADERS[arch] if os.path.exists(h)), None)
    if header is None:
        pytest.skip(f"kernel UAPI headers not installed ({', '.join(UAPI_HEADERS[arch])})")
    defs: dict[str, str] = {}
    for line in Path(header).read_text().splitlines():
        m = re.match(r"#define (__NR3264_\w+|__NR_\w+)\s+(\w+)", line)
        if m:
            defs[m.group(1)] = m.group(2)

    def resolve(v: str) -> int | None:
        for _ in range(5):
            if v.isdigit():
                return int(v)
            v = defs.get(v, v)
        return None

    known = {k[len("__NR_"):]: resolve(v) for k, v in defs.items() if k.startswith("__NR_")}
    table = oslimits._SYSCALLS[arch]
    mismatches = {n: (nr, known[n]) for n, nr in table.items() if known.get(n) not in (None, nr)}
    assert not mismatches
    assert sum(1 for n in table if n in known) > 100


@pytest.mark.parametrize("arch", ARCHES)
def test_filter_semantics_default_mode(arch: str) -> None:
    nr, pid = NR[arch], 4242
    prog = oslimits.build_seccomp_filter(arch, self_pid=pid)

    def v(name: str, *args: int, **kw: int) -> str:
        return verdict(run_bpf(prog, seccomp_data(arch, nr[name], *args, **kw)))

    # wrong audit arch (e.g. i386 int 0x80 / arm32 compat) -> kill, whatever the syscall
    assert v("read", audit_arch=0x40000003) == "kill"
    assert v("read", audit_arch=0x40000028) == "kill"
    for allowed in ("read", "write", "mmap", "setitimer", "sendmsg", "recvfrom", "getpid",
                    "seccomp"):
        assert v(allowed) == "allow", allowed
    for denied in ("socket", "execve", "openat", "openat2", "setrlimit"):
        assert v(denied) == "EPERM", denied
    assert v("openat", 0, 0, 0) == "EPERM"  # even O_RDONLY in default mode
    assert v("clone3") == "ENOSYS"
    assert v("kill", pid, 0) == "allow" and v("kill", pid + 1, 9) == "EPERM"
    assert v("kill", 0, 9) == "EPERM" and v("kill", -1, 9) == "EPERM"
    assert v("tgkill", pid, pid, 10) == "allow" and v("tgkill", 1, 1, 9) == "EPERM"
    assert v("prlimit64", 0, 7, 0, 0x7FFF0000) == "allow"  # getter: new_limit == NULL
    assert v("prlimit64", 0, 7, 0x7FFF0000, 0) == "EPERM"
    assert v("prlimit64", 0, 7, 1 << 40, 0) == "EPERM"  # pointer with only high bits set
    assert v("ioctl", 0, 0x5412) == "EPERM" and v("ioctl", 0, 0x541C) == "EPERM"
    assert v("ioctl", 0, 0x5401) == "allow"  # TCGETS
    for name, number in oslimits.denied_syscalls(arch).items():
        expect = "ENOSYS" if name == "clone3" else "EPERM"
        assert verdict(run_bpf(prog, seccomp_data(arch, number))) == expect, name
    if arch == "x86_64":
        assert v("fork") == "EPERM" and v("open", 0, 0) == "EPERM"
        x32 = verdict(run_bpf(prog, seccomp_data(arch, 0x40000000 | nr["getpid"])))
        assert x32 == "EPERM"


@pytest.mark.parametrize("arch", ARCHES)
def test_filter_semantics_readonly_mode(arch: str) -> None:
    nr = NR[arch]
    prog = oslimits.build_seccomp_filter(arch, allow_open_readonly=True, self_pid=1)
    at_fdcwd = -100
    o_rdonly_dir = O_DIRECTORY[arch] | O_CLOEXEC

    def openat(flags: int) -> str:
        return verdict(run_bpf(prog, seccomp_data(arch, nr["openat"], at_fdcwd, 0, flags)))

    assert openat(0) == "allow"
    assert openat(O_CLOEXEC) == "allow"
    assert openat(o_rdonly_dir) == "allow"  # opendir must keep working
    for bad in (0o1, 0o2, 0o100, 0o1000, 0o2000, 0o20000000 | O_DIRECTORY[arch] | 0o2,
                0o1000 | O_CLOEXEC):
        assert openat(bad) == "EPERM", oct(bad)
    assert verdict(run_bpf(prog, seccomp_data(arch, nr["openat2"]))) == "EPERM"
    if arch == "x86_64":  # open(path, flags): flags are args[1]
        assert verdict(run_bpf(prog, seccomp_data(arch, nr["open"], 0, 0))) == "allow"
        assert verdict(run_bpf(prog, seccomp_data(arch, nr["open"], 0, 0o101))) == "EPERM"


# ======================================================================================
# Behaviour under a real filter (forked children)
# ======================================================================================


def test_open_for_write_denied_and_file_absent(seccomp_ok: None, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"

    def act() -> int | tuple[int, str]:
        bad = expect_denied(lambda: open(target, "w"), "open(w)")  # noqa: SIM115
        return bad or DENIED

    out = run_in_child(act, seccomp={})
    assert out.code == DENIED, str(out)
    assert not target.exists()


def test_read_denied_by_default(seccomp_ok: None, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("secret")

    def act() -> int | tuple[int, str]:
        return all_denied(
            ("open(r)", lambda: open(src).read()),
            ("listdir", lambda: os.listdir(tmp_path)),
        )

    out = run_in_child(act, seccomp={})
    assert out.code == DENIED, str(out)


def test_readonly_mode_allows_reading_not_writing(seccomp_ok: None, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("hello")
    new = tmp_path / "new.txt"

    def act() -> int | tuple[int, str]:
        with open(src) as fh:
            if fh.read() != "hello":
                return WRONG, "read returned the wrong content"
        if sorted(os.listdir(tmp_path)) != ["in.txt"]:
            return WRONG, "listdir (O_DIRECTORY) failed"
        libc = ctypes.CDLL(None, use_errno=True)
        how = struct.pack("QQQ", os.O_RDONLY, 0, 0)  # struct open_how
        nr_openat2 = oslimits._SYSCALLS[oslimits.native_arch()]["openat2"]

        def openat2() -> None:
            rc = libc.syscall(ctypes.c_long(nr_openat2), ctypes.c_int(-100),
                              ctypes.c_char_p(bytes(src)), ctypes.c_char_p(how),
                              ctypes.c_size_t(len(how)))
            if rc < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))

        return all_denied(
            ("open(new, w)", lambda: open(new, "w")),
            ("open(src, w)", lambda: open(src, "w")),
            ("open(src, a)", lambda: open(src, "a")),
            ("open(src, r+)", lambda: open(src, "r+")),
            ("O_RDONLY|O_TRUNC", lambda: os.open(src, os.O_RDONLY | os.O_TRUNC)),
            ("O_RDONLY|O_CREAT", lambda: os.open(new, os.O_RDONLY | os.O_CREAT)),
            ("O_TMPFILE", lambda: os.open(tmp_path, os.O_TMPFILE | os.O_RDWR)),
            ("openat2(O_RDONLY)", openat2),
        )

    out = run_in_child(act, seccomp={"allow_open_readonly": True})
    assert out.code == DENIED, str(out)
    assert src.read_text() == "hello"
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_filesystem_mutations_denied(seccomp_ok: None, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("data")
    f.chmod(0o644)
    d = tmp_path / "d"
    d.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    mtime = f.stat().st_mtime_ns
    held = os.open(f, os.O_RDWR)  # an fd opened before the filter

    def act() -> int | tuple[int, str]:
        return all_denied(
            ("mkdir", lambda: os.mkdir(tmp_path / "new")),
            ("rmdir", lambda: os.rmdir(d)),
            ("unlink", lambda: os.unlink(f)),
            ("rename", lambda: os.rename(f, tmp_path / "g")),
            ("chmod", lambda: os.chmod(f, 0o777)),
            ("fchmod", lambda: os.fchmod(held, 0o777)),
            ("chown", lambda: os.chown(f, 0, 0)),
            ("truncate", lambda: os.truncate(f, 0)),
            ("ftruncate", lambda: os.ftruncate(held, 0)),
            ("symlink", lambda: os.symlink(f, tmp_path / "s")),
            ("link", lambda: os.link(f, tmp_path / "l")),
            ("utime", lambda: os.utime(f, (0, 0))),
            ("mkfifo", lambda: os.mkfifo(tmp_path / "p")),
            ("chdir", lambda: os.chdir("/")),
            ("chroot", lambda: os.chroot("/")),
            ("setuid", lambda: os.setuid(os.getuid())),
            ("setgid", lambda: os.setgid(os.getgid())),
            ("memfd_create", lambda: os.memfd_create("x")),
            ("unshare", lambda: os.unshare(0) if hasattr(os, "unshare") else _raw_unshare()),
            ("execv", lambda: os.execv("/bin/true", ["/bin/true"])),
        )

    try:
        out = run_in_child(act, seccomp={})
    finally:
        os.close(held)
    assert out.code == DENIED, str(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert f.read_text() == "data"
    assert f.stat().st_mode & 0o777 == 0o644
    assert f.stat().st_mtime_ns == mtime


def _raw_unshare() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def test_socket_creation_denied(seccomp_ok: None) -> None:
    def act() -> int | tuple[int, str]:
        return all_denied(
            ("socket()", lambda: socket.socket()),
            ("socket(AF_UNIX)", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
            ("socketpair()", lambda: socket.socketpair()),
        )

    out = run_in_child(act, seccomp={})
    assert out.code == DENIED, str(out)


def test_inherited_socketpair_and_pipe_still_work(seccomp_ok: None) -> None:
    parent_sock, child_sock = socket.socketpair()
    pr, pw = os.pipe()
    try:
        parent_sock.sendall(b"ping")

        def act() -> int | tuple[int, str]:
            if child_sock.recv(4) != b"ping":
                return WRONG, "recv"
            child_sock.sendmsg([b"po", b"ng"])
            child_sock.sendall(b"!")
            os.write(pw, b"through the pipe")
            return OK

        out = run_in_child(act, seccomp={})
        assert out.code == OK, str(out)
        parent_sock.settimeout(5)
        got = b""
        while len(got) < 5:
            got += parent_sock.recv(16)
        assert got == b"pong!"
        assert os.read(pr, 100) == b"through the pipe"
    finally:
        parent_sock.close()
        child_sock.close()
        os.close(pr)
        os.close(pw)


def test_process_creation_denied(seccomp_ok: None) -> None:
    def act() -> int | tuple[int, str]:
        bad = all_denied(
            ("os.fork", os.fork),
            ("subprocess.run", lambda: subprocess.run(["/bin/true"], check=False)),
            ("posix_spawn", lambda: os.posix_spawn("/bin/true", ["/bin/true"], os.environ)),
        )
        if bad != DENIED:
            return bad
        try:
            threading.Thread(target=lambda: None).start()
        except RuntimeError:
            pass
        else:
            return WRONG, "thread started under the filter"
        libc = ctypes.CDLL(None, use_errno=True)
        nr_clone3 = oslimits._SYSCALLS[oslimits.native_arch()]["clone3"]
        rc = libc.syscall(ctypes.c_long(nr_clone3), ctypes.c_void_p(0), ctypes.c_size_t(0))
        if rc != -1 or ctypes.get_errno() != errno.ENOSYS:
            return WRONG, f"clone3 -> {rc}, errno {ctypes.get_errno()} (want ENOSYS)"
        return DENIED

    out = run_in_child(act, seccomp={})
    assert out.code == DENIED, str(out)


def test_signalling_other_processes_denied_self_allowed(seccomp_ok: None) -> None:
    def act() -> int | tuple[int, str]:
        bad = all_denied(
            ("kill(ppid, 0)", lambda: os.kill(os.getppid(), 0)),
            ("kill(ppid, SIGCONT)", lambda: os.kill(os.getppid(), signal.SIGCONT)),
            ("kill(1, 0)", lambda: os.kill(1, 0)),
            ("killpg", lambda: os.killpg(os.getpgrp(), 0)),
            ("pidfd_open", lambda: os.pidfd_open(os.getppid())),
        )
        if bad != DENIED:
            return bad
        got: list[int] = []
        signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
        os.kill(os.getpid(), signal.SIGUSR1)  # kill(self)
        signal.raise_signal(signal.SIGUSR1)  # tgkill(self, self)
        if got != [signal.SIGUSR1, signal.SIGUSR1]:
            return WRONG, f"self-signals not delivered: {got}"
        return DENIED

    out = run_in_child(act, seccomp={})
    assert out.code == DENIED, str(out)


def test_worker_essentials_still_work(seccomp_ok: None) -> None:
    pr, pw = os.pipe()

    def act() -> int | tuple[int, str]:
        a = np.arange(1_000_000, dtype=np.float64)
        if float((a * 2 + 1).sum()) != 1_000_000.0**2:
            return WRONG, "numpy arithmetic"
        m = np.random.default_rng(0).random((400, 400))
        if not np.allclose(m @ np.linalg.inv(m), np.eye(400), atol=1e-6):
            return WRONG, "numpy matmul/inv (BLAS)"
        d = {i: [i] * 3 for i in range(1000)}
        if sum(len(v) for v in d.values()) != 3000 or max(d) != 999:
            return WRONG, "list/dict"
        time.sleep(0)
        time.sleep(0.001)
        fired: list[int] = []
        signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        deadline = time.monotonic() + 5
        while not fired and time.monotonic() < deadline:
            pass
        signal.setitimer(signal.ITIMER_REAL, 0)
        if fired != [signal.SIGALRM]:
            return WRONG, "setitimer/SIGALRM handler did not run"
        buf = mmap.mmap(-1, 1 << 20)
        buf[:5] = b"hello"
        big = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        big[-1:] = b"x"
        if buf[:5] != b"hello" or big[-1:] != b"x":
            return WRONG, "anonymous mmap"
        os.write(pw, b"ok-from-child")
        if oslimits.seccomp_status() != "filter":
            return WRONG, f"seccomp_status() = {oslimits.seccomp_status()}"
        if oslimits.current_vm_data_bytes() <= 0:
            return WRONG, "current_vm_data_bytes under the filter"
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 0:
            return WRONG, "getrlimit"
        return OK

    try:
        out = run_in_child(act, seccomp={})
        assert out.code == OK, str(out)
        assert os.read(pr, 100) == b"ok-from-child"
    finally:
        os.close(pr)
        os.close(pw)


def test_rlimits_locked_after_install(seccomp_ok: None) -> None:
    def act() -> int | tuple[int, str]:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        except (ValueError, OSError):
            pass
        else:
            return WRONG, "setrlimit allowed"
        try:
            resource.prlimit(0, resource.RLIMIT_NOFILE, (soft, hard))
        except (ValueError, OSError):
            pass
        else:
            return WRONG, "prlimit(set) allowed"
        if resource.prlimit(0, resource.RLIMIT_NOFILE) != (soft, hard):
            return WRONG, "prlimit(get)"
        try:
            oslimits.apply_rlimits(data_bytes=None, cpu_seconds=None, nofile=soft)
        except OSError as exc:
            if "before install_seccomp" not in str(exc):
                return WRONG, f"unhelpful error: {exc}"
        else:
            return WRONG, "apply_rlimits after install succeeded"
        return DENIED

    out = run_in_child(act, seccomp={})
    assert out.code == DENIED, str(out)
    # lock_rlimits=False keeps setrlimit usable
    out = run_in_child(
        lambda: OK if oslimits.apply_rlimits(data_bytes=None, cpu_seconds=None) else WRONG,
        seccomp={"lock_rlimits": False},
    )
    assert out.code == OK, str(out)


def test_tiocsti_denied(seccomp_ok: None) -> None:
    import fcntl
    import termios

    try:
        master, slave = os.openpty()
    except OSError as exc:
        pytest.skip(f"no pty: {exc}")
    try:
        def act() -> int | tuple[int, str]:
            return all_denied(("TIOCSTI", lambda: fcntl.ioctl(slave, termios.TIOCSTI, b"x")))

        out = run_in_child(act, seccomp={})
        assert out.code == DENIED, str(out)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(not IS_X86_64, reason="x32 ABI exists only on x86_64")
def test_x32_abi_denied(seccomp_ok: None) -> None:
    def act() -> int | tuple[int, str]:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        rc = libc.syscall(ctypes.c_long(0x40000000 | 39))  # x32 getpid
        err = ctypes.get_errno()
        if rc == -1 and err == errno.EPERM:
            return DENIED
        return WRONG, f"x32 getpid -> {rc} errno {err}"

    out = run_in_child(act, seccomp={})
    assert out.code == DENIED, str(out)


def _int80_getpid() -> int:
    """Run i386 getpid (nr 20) through `int 0x80` from executable anonymous memory."""
    code = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])  # mov eax,20; int 0x80; ret
    mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    mem[: len(code)] = code
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    return ctypes.CFUNCTYPE(ctypes.c_int)(addr)()


@pytest.mark.skipif(not IS_X86_64, reason="i386 compat syscalls exist only on x86_64")
def test_i386_abi_kills_process(seccomp_ok: None) -> None:
    def control() -> int | tuple[int, str]:
        _disable_core_dumps()
        pid = _int80_getpid()
        return (OK, "") if pid == os.getpid() else (WRONG, f"int 0x80 getpid -> {pid}")

    ctrl = run_in_child(control)
    if ctrl.code != OK:
        pytest.skip(f"i386 syscall emulation unavailable here ({ctrl})")

    def act() -> int | tuple[int, str]:
        _disable_core_dumps()
        if not oslimits.install_seccomp():
            return NOT_INSTALLED, oslimits.last_seccomp_error() or ""
        _int80_getpid()
        return WRONG, "i386 syscall returned under the filter"

    out = run_in_child(act)
    assert out.code is None and out.killed_by == signal.SIGSYS, str(out)


def test_status_helpers_and_filter_flag(seccomp_ok: None) -> None:
    assert oslimits.seccomp_status() in {"disabled", "filter"}
    before = oslimits.current_vm_data_bytes()
    assert before > 0
    block = np.ones(16 << 20, dtype=np.uint8)  # 16 MiB, mapped by the allocator
    assert oslimits.current_vm_data_bytes() >= before + (8 << 20)
    del block

    out = run_in_child(
        lambda: (OK, "") if oslimits.seccomp_status() == "filter" else (WRONG, "status"),
        seccomp={},
    )
    assert out.code == OK, str(out)


# ======================================================================================
# Degradation (in-process, nothing real is installed)
# ======================================================================================


def test_unsupported_arch_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oslimits, "native_arch", lambda: None)
    assert oslimits.install_seccomp(limit_threads=False) is False
    assert "unsupported platform" in (oslimits.last_seccomp_error() or "")


def test_missing_libc_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oslimits, "_libc", lambda: None)
    assert oslimits.install_seccomp(limit_threads=False) is False
    assert "C library" in (oslimits.last_seccomp_error() or "")
    assert oslimits.set_parent_death_signal(signal.SIGTERM) is False


class _RefusingLibc:
    """A libc whose prctl/syscall fail with EINVAL (kernel without seccomp filters)."""

    calls: list[int]

    def __init__(self) -> None:
        self.calls = []

    def prctl(self, option: ctypes.c_int, *args: object) -> int:
        self.calls.append(option.value)
        ctypes.set_errno(errno.EINVAL)
        return -1

    def syscall(self, *args: object) -> int:
        ctypes.set_errno(errno.ENOSYS)
        return -1


def test_kernel_refusal_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _RefusingLibc()
    monkeypatch.setattr(oslimits, "_libc", lambda: fake)
    assert oslimits.install_seccomp(limit_threads=False) is False
    assert "PR_SET_NO_NEW_PRIVS" in (oslimits.last_seccomp_error() or "")
    assert fake.calls == [oslimits.PR_SET_NO_NEW_PRIVS]

    # no_new_privs accepted, but neither seccomp(2) nor PR_SET_SECCOMP is
    class HalfLibc(_RefusingLibc):
        def prctl(self, option: ctypes.c_int, *args: object) -> int:
            self.calls.append(option.value)
            if option.value == oslimits.PR_SET_NO_NEW_PRIVS:
                return 0
            ctypes.set_errno(errno.EINVAL)
            return -1

    half = HalfLibc()
    monkeypatch.setattr(oslimits, "_libc", lambda: half)
    assert oslimits.install_seccomp(limit_threads=False) is False
    reason = oslimits.last_seccomp_error() or ""
    assert "PR_SET_SECCOMP" in reason and "seccomp(SECCOMP_SET_MODE_FILTER)" in reason
    assert oslimits.seccomp_status() in {"disabled", "filter"}  # the real process: untouched


# ======================================================================================
# rlimits and parent-death signal
# ======================================================================================


def test_data_limit_makes_big_allocation_fail() -> None:
    def act() -> int | tuple[int, str]:
        limit = oslimits.current_vm_data_bytes() + (64 << 20)
        applied = oslimits.apply_rlimits(data_bytes=limit, cpu_seconds=None)
        if applied.get("data") != (limit, limit):
            return WRONG, f"applied {applied}"
        if resource.getrlimit(resource.RLIMIT_DATA) != (limit, limit):
            return WRONG, "getrlimit(RLIMIT_DATA)"
        small = np.ones(1 << 20, dtype=np.uint8)  # 1 MiB still fine
        try:
            np.ones(512 << 20, dtype=np.uint8)
        except MemoryError:
            pass
        else:
            return WRONG, "512 MiB numpy allocation succeeded"
        try:
            bytearray(512 << 20)
        except MemoryError:
            pass
        else:
            return WRONG, "512 MiB bytearray succeeded"
        return OK if int(small.sum()) == 1 << 20 else (WRONG, "small alloc")

    out = run_in_child(act)
    assert out.code == OK, str(out)


class _CpuLimit(Exception):
    pass


def test_cpu_limit_delivers_sigxcpu() -> None:
    def act() -> int | tuple[int, str]:
        def on_xcpu(signum: int, frame: object) -> None:
            raise _CpuLimit

        signal.signal(signal.SIGXCPU, on_xcpu)
        applied = oslimits.apply_rlimits(data_bytes=None, cpu_seconds=1)
        soft, hard = applied["cpu"]
        if hard != soft + 2 or resource.getrlimit(resource.RLIMIT_CPU) != (soft, hard):
            return WRONG, f"cpu limit {applied['cpu']}"
        deadline = time.monotonic() + 30
        try:
            x = 0
            while time.monotonic() < deadline:
                x += 1
        except _CpuLimit:
            return OK, f"cpu {applied['cpu']}"
        return TIMEOUT, "no SIGXCPU within 30 s"

    out = run_in_child(act)
    assert out.code == OK, str(out)


def test_cpu_hard_limit_kills_two_seconds_later() -> None:
    def act() -> int | tuple[int, str]:
        _disable_core_dumps()
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        t0 = time.process_time()
        soft, hard = oslimits.apply_rlimits(data_bytes=None, cpu_seconds=0.5)["cpu"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pass
        return TIMEOUT, f"still alive after {time.process_time() - t0:.1f}s cpu ({soft}, {hard})"

    started = time.monotonic()
    out = run_in_child(act)
    assert out.code is None and out.killed_by == signal.SIGKILL, str(out)
    assert time.monotonic() - started >= 2.0


def test_fsize_zero_blocks_file_growth(tmp_path: Path) -> None:
    target = tmp_path / "grow.bin"
    pr, pw = os.pipe()

    def act() -> int | tuple[int, str]:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
        applied = oslimits.apply_rlimits(data_bytes=None, cpu_seconds=None)  # fsize=0 default
        if applied.get("fsize") != (0, 0) or applied.get("core") != (0, 0):
            return WRONG, f"applied {applied}"
        try:
            os.write(fd, b"x")
        except OSError as exc:
            if exc.errno != errno.EFBIG:
                return WRONG, repr(exc)
        else:
            return WRONG, "file grew"
        os.write(pw, b"pipes still fine")  # RLIMIT_FSIZE does not touch pipes
        return DENIED

    try:
        out = run_in_child(act)
        assert out.code == DENIED, str(out)
        assert os.read(pr, 100) == b"pipes still fine"
    finally:
        os.close(pr)
        os.close(pw)
    assert target.exists() and target.stat().st_size == 0


def test_apply_rlimits_values_and_validation() -> None:
    with pytest.raises(ValueError):
        oslimits.apply_rlimits(data_bytes=-1, cpu_seconds=None)  # validated before any set
    with pytest.raises(ValueError):
        oslimits.apply_rlimits(data_bytes=None, cpu_seconds=float("nan"))

    def act() -> int | tuple[int, str]:
        applied = oslimits.apply_rlimits(
            data_bytes=None, cpu_seconds=None, fsize=1 << 20, nofile=64, core=0, nproc=None
        )
        want = {"fsize": (1 << 20, 1 << 20), "nofile": (64, 64), "core": (0, 0)}
        if applied != want:
            return WRONG, f"{applied}"
        if resource.getrlimit(resource.RLIMIT_NOFILE) != (64, 64):
            return WRONG, "nofile not applied"
        # never raised above the existing hard limit
        again = oslimits.apply_rlimits(data_bytes=None, cpu_seconds=None, nofile=4096, nproc=None)
        return OK if again["nofile"] == (64, 64) else (WRONG, f"raised: {again}")

    out = run_in_child(act)
    assert out.code == OK, str(out)


def test_parent_death_signal_fires_when_parent_exits() -> None:
    r, w = os.pipe()

    def middle() -> int | tuple[int, str]:
        mid = os.getpid()
        pid = os.fork()
        if pid == 0:  # grandchild
            try:
                os.close(r)

                def on_death(signum: int, frame: object) -> None:
                    os.write(w, b"D")
                    os._exit(0)

                signal.signal(signal.SIGUSR2, on_death)
                ok = oslimits.set_parent_death_signal(signal.SIGUSR2, expected_ppid=mid)
                os.write(w, b"R" if ok else b"F")
                end = time.monotonic() + 20
                while time.monotonic() < end:
                    time.sleep(0.05)
                os.write(w, b"T")
            finally:
                os._exit(0)
        time.sleep(0.5)  # let the grandchild arm the signal, then die (parent exits)
        return OK

    out = run_in_child(middle)
    os.close(w)
    got = b""
    deadline = time.monotonic() + 25
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], 1)
            if ready:
                chunk = os.read(r, 16)
                if not chunk:
                    break
                got += chunk
    finally:
        os.close(r)
    assert out.code == OK, str(out)
    assert got == b"RD", got


def test_parent_death_signal_after_filter(seccomp_ok: None) -> None:
    out = run_in_child(
        lambda: OK if oslimits.set_parent_death_signal(signal.SIGKILL) else WRONG,
        seccomp={},
    )
    assert out.code == OK, str(out)
