"""OS-level confinement for the sandbox worker: seccomp-BPF, rlimits, parent-death signal.

Pure standard library (``ctypes``, ``resource``, ``os``, ``signal``). Everything here acts on
the *calling* process and is meant to run inside the forked worker, after its imports are done
and its data files are memory-mapped, immediately before untrusted strategy code runs.

Recommended order in the worker::

    set_parent_death_signal(signal.SIGKILL, expected_ppid=parent_pid)
    apply_rlimits(data_bytes=current_vm_data_bytes() + budget, cpu_seconds=t)
    install_seccomp()          # last: it also locks rlimits (see below)

Seccomp policy (``install_seccomp``) is a deny-list with default ALLOW:

* The ``arch`` field of ``seccomp_data`` must equal the native ``AUDIT_ARCH`` (x86_64
  ``0xC000003E``, aarch64 ``0xC00000B7``); anything else (i386 ``int 0x80``, arm32 compat)
  is ``SECCOMP_RET_KILL_PROCESS``. On x86_64 every x32 syscall (nr >= ``0x40000000``) is EPERM.
* Denied syscalls return ``EPERM`` (``clone3`` returns ``ENOSYS`` so glibc falls back to
  ``clone``, which is then EPERM). Nothing else kills, so Python raises a clean
  ``PermissionError`` / ``OSError``.
* Argument-dependent rules: ``kill``/``tgkill`` are allowed only when aimed at the calling
  process itself (so ``signal.raise_signal``/``abort``/faulthandler keep working);
  ``prlimit64`` only when it does not set a limit, ``setrlimit`` never (``lock_rlimits``);
  ``ioctl`` ``TIOCSTI``/``TIOCLINUX`` (terminal input injection) are denied; with
  ``allow_open_readonly=True``, ``open``/``openat`` are allowed only when the flags carry
  none of ``O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND|__O_TMPFILE``.
* ``sendto``/``recvfrom``/``sendmsg``/``recvmsg``/``read``/``write`` stay allowed: the worker
  talks to its parent over an already-open socketpair / pipe.

Only little-endian x86_64 and aarch64 are supported; elsewhere ``install_seccomp`` returns
False and :func:`last_seccomp_error` says why. Nothing in this module raises for
"unsupported".
"""

from __future__ import annotations

import ctypes
import errno as _errno
import logging
import math
import os
import platform
import resource
import signal
import sys
import threading

__all__ = [
    "AUDIT_ARCH",
    "DENIED_SYSCALLS",
    "OPEN_WRITE_FLAGS",
    "apply_rlimits",
    "build_seccomp_filter",
    "current_vm_data_bytes",
    "denied_syscalls",
    "install_seccomp",
    "last_seccomp_error",
    "limit_native_threads",
    "native_arch",
    "seccomp_status",
    "set_parent_death_signal",
]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# Constants (linux/prctl.h, linux/seccomp.h, linux/filter.h, linux/audit.h)
# --------------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38

SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_DATA = 0x0000FFFF

# classic BPF opcodes
BPF_LD, BPF_ALU, BPF_JMP, BPF_RET = 0x00, 0x04, 0x05, 0x06
BPF_W, BPF_ABS, BPF_K = 0x00, 0x20, 0x00
BPF_JEQ, BPF_JGE, BPF_JSET = 0x10, 0x30, 0x40
BPF_MAXINSNS = 4096

# struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
_OFF_NR = 0
_OFF_ARCH = 4


def _off_arg_lo(i: int) -> int:
    """Offset of the low 32 bits of args[i] (little-endian only)."""
    return 16 + 8 * i


def _off_arg_hi(i: int) -> int:
    return 16 + 8 * i + 4


AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

# O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE: identical on x86_64 and
# aarch64 (asm-generic/fcntl.h). O_TMPFILE is __O_TMPFILE | O_DIRECTORY; O_DIRECTORY alone is
# a legitimate read-only flag (opendir), so only the __O_TMPFILE bit is tested.
OPEN_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000 | 0o20000000

TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# --------------------------------------------------------------------------------------
# Syscall numbers. aarch64 uses the asm-generic table and lacks the legacy calls
# (open, fork, mkdir, ...); names missing from a table are skipped.
# --------------------------------------------------------------------------------------

_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        # network
        "socket": 41, "socketpair": 53, "connect": 42, "bind": 49, "listen": 50,
        "accept": 43, "accept4": 288,
        # process creation / exec
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
        # signalling other processes
        "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297, "pidfd_open": 434, "pidfd_send_signal": 424,
        "pidfd_getfd": 438, "process_mrelease": 448,
        # other processes' memory / debugging
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
        "process_madvise": 440,
        # filesystem opens and mutations
        "open": 2, "openat": 257, "openat2": 437, "creat": 85, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "mkdir": 83, "mkdirat": 258, "mknod": 133,
        "mknodat": 259, "rmdir": 84, "unlink": 87, "unlinkat": 263, "rename": 82,
        "renameat": 264, "renameat2": 316, "link": 86, "linkat": 265, "symlink": 88,
        "symlinkat": 266, "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452,
        "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, "truncate": 76,
        "ftruncate": 77, "fallocate": 285, "utime": 132, "utimes": 235, "utimensat": 280,
        "futimesat": 261, "chdir": 80, "fchdir": 81, "chroot": 161, "pivot_root": 155,
        "file_setattr": 469, "uselib": 134,
        # mounts
        "mount": 165, "umount2": 166, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
        "open_tree_attr": 467,
        # xattrs
        "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "setxattrat": 463,
        "removexattr": 197, "lremovexattr": 198, "fremovexattr": 199, "removexattrat": 466,
        # notification / anonymous files / async io / kernel facilities
        "inotify_init": 253, "inotify_init1": 294, "fanotify_init": 300,
        "memfd_create": 319, "memfd_secret": 447,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
        "keyctl": 250, "add_key": 248, "request_key": 249,
        "personality": 135, "unshare": 272, "setns": 308,
        "init_module": 175, "finit_module": 313, "delete_module": 176,
        "kexec_load": 246, "kexec_file_load": 320, "reboot": 169,
        "swapon": 167, "swapoff": 168, "acct": 163, "quotactl": 179, "quotactl_fd": 443,
        # credentials
        "setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117,
        "setresgid": 119, "setfsuid": 122, "setfsgid": 123, "setgroups": 116, "capset": 126,
        # host-wide state
        "sethostname": 170, "setdomainname": 171, "settimeofday": 164,
        "clock_settime": 227, "adjtimex": 159, "clock_adjtime": 305,
        "iopl": 172, "ioperm": 173, "modify_ldt": 154, "lookup_dcookie": 212,
        "move_pages": 279, "migrate_pages": 256, "syslog": 103, "vhangup": 153,
        "nfsservctl": 180,
        # real-time scheduling (root could starve the host with SCHED_FIFO)
        "sched_setscheduler": 144, "sched_setparam": 142, "sched_setattr": 314,
        # used by argument-dependent rules
        "setrlimit": 160, "prlimit64": 302, "ioctl": 16, "seccomp": 317,
    },
    "aarch64": {
        "socket": 198, "socketpair": 199, "connect": 203, "bind": 200, "listen": 201,
        "accept": 202, "accept4": 242,
        "clone": 220, "clone3": 435, "execve": 221, "execveat": 281,
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138,
        "rt_tgsigqueueinfo": 240, "pidfd_open": 434, "pidfd_send_signal": 424,
        "pidfd_getfd": 438, "process_mrelease": 448,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
        "process_madvise": 440,
        "openat": 56, "openat2": 437, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "mkdirat": 34, "mknodat": 33, "unlinkat": 35, "renameat": 38, "renameat2": 276,
        "linkat": 37, "symlinkat": 36, "fchmod": 52, "fchmodat": 53, "fchmodat2": 452,
        "fchown": 55, "fchownat": 54, "truncate": 45, "ftruncate": 46, "fallocate": 47,
        "utimensat": 88, "chdir": 49, "fchdir": 50, "chroot": 51, "pivot_root": 41,
        "file_setattr": 469,
        "mount": 40, "umount2": 39, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
        "open_tree_attr": 467,
        "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "setxattrat": 463,
        "removexattr": 14, "lremovexattr": 15, "fremovexattr": 16, "removexattrat": 466,
        "inotify_init1": 26, "fanotify_init": 262, "memfd_create": 279, "memfd_secret": 447,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
        "keyctl": 219, "add_key": 217, "request_key": 218,
        "personality": 92, "unshare": 97, "setns": 268,
        "init_module": 105, "finit_module": 273, "delete_module": 106,
        "kexec_load": 104, "kexec_file_load": 294, "reboot": 142,
        "swapon": 224, "swapoff": 225, "acct": 89, "quotactl": 60, "quotactl_fd": 443,
        "setuid": 146, "setgid": 144, "setreuid": 145, "setregid": 143, "setresuid": 147,
        "setresgid": 149, "setfsuid": 151, "setfsgid": 152, "setgroups": 159, "capset": 91,
        "sethostname": 161, "setdomainname": 162, "settimeofday": 170,
        "clock_settime": 112, "adjtimex": 171, "clock_adjtime": 266,
        "lookup_dcookie": 18, "move_pages": 239, "migrate_pages": 238, "syslog": 116,
        "vhangup": 58, "nfsservctl": 42,
        "sched_setscheduler": 119, "sched_setparam": 118, "sched_setattr": 274,
        "setrlimit": 164, "prlimit64": 261, "ioctl": 29, "seccomp": 277,
    },
}

# Denied unconditionally (EPERM unless listed in _ERRNO_OVERRIDES). Names absent from the
# native table (e.g. "fork" on aarch64) are skipped.
DENIED_SYSCALLS: tuple[str, ...] = (
    # network: creating or wiring sockets. send*/recv* on inherited fds stay allowed.
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    # process creation and exec (clone also blocks threads)
    "fork", "vfork", "clone", "clone3", "execve", "execveat",
    # signalling other processes (kill/tgkill: see argument rules, self is allowed)
    "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal",
    "pidfd_getfd", "process_mrelease",
    # debugging / other processes' memory
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "process_madvise",
    # filesystem opens (open/openat: see argument rules) and mutations
    "openat2", "creat", "open_by_handle_at", "name_to_handle_at",
    "mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "truncate", "ftruncate", "fallocate", "utime", "utimes", "utimensat", "futimesat",
    "chdir", "fchdir", "chroot", "pivot_root", "file_setattr", "uselib",
    "mount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "open_tree_attr",
    "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
    "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
    "inotify_init", "inotify_init1", "fanotify_init", "memfd_create", "memfd_secret",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "personality", "unshare", "setns",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "setfsuid", "setfsgid", "setgroups", "capset",
    "sethostname", "setdomainname", "settimeofday", "clock_settime", "adjtimex",
    "clock_adjtime", "iopl", "ioperm", "modify_ldt", "lookup_dcookie",
    "move_pages", "migrate_pages", "syslog", "vhangup", "nfsservctl",
    "sched_setscheduler", "sched_setparam", "sched_setattr",
)
# Deliberately allowed: sendto/recvfrom/sendmsg/recvmsg (parent channel), seccomp (a further
# filter can only restrict), setpriority, mbind, prctl, setitimer/alarm and the signal calls.

_ERRNO_OVERRIDES = {"clone3": _errno.ENOSYS}

_LAST_ERROR: str | None = None
_STATUS_FD: tuple[int, int] | None = None  # (pid, fd of /proc/self/status opened pre-filter)
_STATUS_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------
# ctypes plumbing
# --------------------------------------------------------------------------------------


class SockFilter(ctypes.Structure):
    """``struct sock_filter``."""

    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class SockFprog(ctypes.Structure):
    """``struct sock_fprog``."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


_LIBC: ctypes.CDLL | None = None
_LIBC_FAILED = False


def _libc() -> ctypes.CDLL | None:
    """The C library (loaded without opening files, so it also works under the filter)."""
    global _LIBC, _LIBC_FAILED
    if _LIBC is None and not _LIBC_FAILED:
        if not sys.platform.startswith("linux"):
            _LIBC_FAILED = True
            return None
        for name in (None, "libc.so.6"):
            try:
                lib = ctypes.CDLL(name, use_errno=True)
                lib.prctl.restype = ctypes.c_int
                lib.syscall.restype = ctypes.c_long
            except (OSError, AttributeError):
                continue
            _LIBC = lib
            break
        else:
            _LIBC_FAILED = True
    return _LIBC


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> tuple[int, int]:
    """Call prctl; returns (rc, errno). rc is -1 with errno ENOSYS when prctl is unavailable."""
    lib = _libc()
    if lib is None:
        return -1, _errno.ENOSYS
    ctypes.set_errno(0)
    rc = lib.prctl(
        ctypes.c_int(option),
        ctypes.c_ulong(arg2),
        ctypes.c_ulong(arg3),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )
    return int(rc), ctypes.get_errno()


def native_arch() -> str | None:
    """'x86_64' / 'aarch64' when this process can be filtered, else None."""
    if not sys.platform.startswith("linux") or sys.byteorder != "little":
        return None
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return None  # 32-bit userland on a 64-bit kernel: different ABI
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "aarch64"
    return None


def last_seccomp_error() -> str | None:
    """Why the most recent ``install_seccomp`` returned False (None after a success)."""
    return _LAST_ERROR


def denied_syscalls(arch: str | None = None, *, allow_open_readonly: bool = False) -> dict[str, int]:
    """Map of syscall name -> number denied outright on ``arch`` (default: native)."""
    arch = arch or native_arch()
    if arch not in _SYSCALLS:
        return {}
    table = _SYSCALLS[arch]
    names = list(DENIED_SYSCALLS)
    if not allow_open_readonly:
        names += ["open", "openat"]
    return {n: table[n] for n in names if n in table}


# --------------------------------------------------------------------------------------
# BPF program
# --------------------------------------------------------------------------------------


def _stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k & 0xFFFFFFFF)


def _jump(code: int, k: int, jt: int, jf: int) -> tuple[int, int, int, int]:
    if not (0 <= jt <= 255 and 0 <= jf <= 255):
        raise ValueError("BPF jump offset out of range")
    return (code, jt, jf, k & 0xFFFFFFFF)


def _ld(offset: int) -> tuple[int, int, int, int]:
    return _stmt(BPF_LD | BPF_W | BPF_ABS, offset)


def _ret(value: int) -> tuple[int, int, int, int]:
    return _stmt(BPF_RET | BPF_K, value)


def _ret_errno(err: int) -> tuple[int, int, int, int]:
    return _ret(SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA))


_Insn = tuple[int, int, int, int]


def build_seccomp_filter(
    arch: str,
    *,
    allow_open_readonly: bool = False,
    self_pid: int | None = None,
    lock_rlimits: bool = True,
) -> list[_Insn]:
    """Return the filter as (code, jt, jf, k) tuples for ``arch`` ('x86_64' / 'aarch64').

    Layout (every jump is tiny, so the 8-bit jt/jf limit never matters)::

        ld arch; jeq AUDIT_ARCH ? +1 : 0; ret KILL_PROCESS
        ld nr
        [x86_64] jge 0x40000000 ? 0 : +1; ret ERRNO(EPERM)
        for each denied nr:  jeq nr ? 0 : +1; ret ERRNO(e)
        for each argument rule: jeq nr ? 0 : +len(block); block (always ends in ret)
        ret ALLOW
    """
    if arch not in _SYSCALLS:
        raise ValueError(f"unsupported arch {arch!r}")
    table = _SYSCALLS[arch]
    eperm = _errno.EPERM
    jeq = BPF_JMP | BPF_JEQ | BPF_K
    prog: list[_Insn] = [
        _ld(_OFF_ARCH),
        _jump(jeq, AUDIT_ARCH[arch], 1, 0),
        _ret(SECCOMP_RET_KILL_PROCESS),
        _ld(_OFF_NR),
    ]
    if arch == "x86_64":
        prog += [_jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1), _ret_errno(eperm)]

    for name, nr in denied_syscalls(arch, allow_open_readonly=allow_open_readonly).items():
        prog += [_jump(jeq, nr, 0, 1), _ret_errno(_ERRNO_OVERRIDES.get(name, eperm))]

    blocks: list[tuple[int, list[_Insn]]] = []

    if allow_open_readonly:
        bad = OPEN_WRITE_FLAGS
        for name, flags_arg in (("open", 1), ("openat", 2)):
            if name in table:
                # flags is an int in the kernel: the high 32 bits of the register are ignored.
                blocks.append((table[name], [
                    _ld(_off_arg_lo(flags_arg)),
                    _jump(BPF_JMP | BPF_JSET | BPF_K, bad, 0, 1),
                    _ret_errno(eperm),
                    _ret(SECCOMP_RET_ALLOW),
                ]))

    if self_pid is None:
        self_pid = os.getpid()
    # kill(pid, sig) / tgkill(tgid, tid, sig): allowed only for this process (pid_t is an int,
    # so only the low 32 bits reach the kernel). kill(0|-1|-pgrp) and other pids: EPERM.
    for name in ("kill", "tgkill"):
        blocks.append((table[name], [
            _ld(_off_arg_lo(0)),
            _jump(jeq, self_pid, 0, 1),
            _ret(SECCOMP_RET_ALLOW),
            _ret_errno(eperm),
        ]))

    if lock_rlimits:
        # Keep the limits set by apply_rlimits: setrlimit never, prlimit64 only as a getter
        # (new_limit pointer == NULL, all 64 bits).
        blocks.append((table["setrlimit"], [_ret_errno(eperm)]))
        blocks.append((table["prlimit64"], [
            _ld(_off_arg_lo(2)),
            _jump(jeq, 0, 0, 3),
            _ld(_off_arg_hi(2)),
            _jump(jeq, 0, 0, 1),
            _ret(SECCOMP_RET_ALLOW),
            _ret_errno(eperm),
        ]))

    # ioctl(fd, TIOCSTI|TIOCLINUX): pushing input into a terminal shared with the parent.
    blocks.append((table["ioctl"], [
        _ld(_off_arg_lo(1)),
        _jump(jeq, TIOCSTI, 2, 0),
        _jump(jeq, TIOCLINUX, 1, 0),
        _ret(SECCOMP_RET_ALLOW),
        _ret_errno(eperm),
    ]))

    for nr, block in blocks:
        # Blocks clobber the accumulator, but each one ends in ret on every path, so the
        # nr comparisons before it never see a reloaded value.
        prog.append(_jump(jeq, nr, 0, len(block)))
        prog += block

    prog.append(_ret(SECCOMP_RET_ALLOW))
    if len(prog) > BPF_MAXINSNS:
        raise ValueError("seccomp filter too long")
    return prog


def _to_ctypes(prog: list[_Insn]) -> tuple[ctypes.Array, SockFprog]:
    arr = (SockFilter * len(prog))(*(SockFilter(c, jt, jf, k) for c, jt, jf, k in prog))
    fprog = SockFprog(len(prog), ctypes.cast(arr, ctypes.POINTER(SockFilter)))
    return arr, fprog


# Native thread pools. clone is denied, so a BLAS library that lazily (re)creates its worker
# threads after fork (OpenBLAS does, on the first large matmul) would fail and abort the
# process. Pin every loaded pool to one thread before installing the filter.
_THREADPOOL_LIB_MARKERS = ("openblas", "mkl_rt", "libmkl", "libgomp", "libomp", "libiomp", "blis")
_THREADPOOL_SYMBOLS = tuple(
    f"{prefix}openblas_set_num_threads{suffix}"
    for prefix in ("", "scipy_")
    for suffix in ("", "64_", "_64")
) + ("MKL_Set_Num_Threads", "bli_thread_set_num_threads", "omp_set_num_threads")
_THREAD_ENV_VARS = (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
)


def limit_native_threads(n: int = 1) -> list[str]:
    """Pin already-loaded BLAS/OpenMP thread pools to ``n`` threads; return what was pinned.

    Finds the libraries through /proc/self/maps (call before the filter), re-opens them with
    RTLD_NOLOAD (no new library is ever loaded) and calls their ``*_set_num_threads``.
    Also sets the usual ``*_NUM_THREADS`` environment variables. Never raises.
    """
    n = max(1, int(n))
    for var in _THREAD_ENV_VARS:
        os.environ[var] = str(n)
    done: list[str] = []
    paths: set[str] = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    paths.add(fields[5].rstrip("\n"))
    except OSError:
        return done
    mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 1)
    for path in sorted(paths):
        base = os.path.basename(path).lower()
        if not base.startswith("lib") or ".so" not in base:
            continue
        if not any(m in base for m in _THREADPOOL_LIB_MARKERS):
            continue
        try:
            lib = ctypes.CDLL(path, mode=mode)
        except OSError:
            continue
        for sym in _THREADPOOL_SYMBOLS:
            fn = getattr(lib, sym, None)
            if fn is None:
                continue
            try:
                fn.restype = None
                fn(ctypes.c_int(n))
            except Exception as exc:  # noqa: BLE001 - best effort
                _log.debug("%s:%s failed: %r", path, sym, exc)
                continue
            done.append(f"{os.path.basename(path)}:{sym}")
            if "openblas" in sym:
                break  # one entry point per OpenBLAS build is enough
    return done


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _fail(reason: str) -> bool:
    global _LAST_ERROR
    _LAST_ERROR = reason
    _log.warning("seccomp filter not installed: %s", reason)
    return False


def install_seccomp(
    *,
    allow_open_readonly: bool = False,
    lock_rlimits: bool = True,
    limit_threads: bool = True,
) -> bool:
    """Install the deny-list seccomp-BPF filter in the calling process (all its threads).

    Returns True when installed; False when unsupported (non-Linux, unsupported arch,
    kernel without seccomp filters, prctl/seccomp blocked by an outer sandbox, ...), with the
    reason in :func:`last_seccomp_error`. Never raises for "unsupported".

    ``allow_open_readonly``: allow ``open``/``openat`` for reading only instead of denying
    them (``openat2`` stays denied). ``lock_rlimits``: deny ``setrlimit`` and ``prlimit64``
    calls that set a limit, so call :func:`apply_rlimits` first. ``limit_threads``: pin loaded
    BLAS/OpenMP pools to one thread first (:func:`limit_native_threads`), because ``clone`` is
    denied and OpenBLAS aborts the process when it cannot start its threads.

    Irreversible: the filter (and ``no_new_privs``) stay for the life of the process.
    """
    global _LAST_ERROR
    arch = native_arch()
    if arch is None:
        return _fail(
            f"unsupported platform {sys.platform}/{platform.machine()}/{sys.byteorder}-endian "
            "(needs little-endian x86_64 or aarch64 Linux)"
        )
    lib = _libc()
    if lib is None:
        return _fail("C library (prctl/syscall) not available through ctypes")
    try:
        prog = build_seccomp_filter(
            arch, allow_open_readonly=allow_open_readonly, lock_rlimits=lock_rlimits
        )
    except ValueError as exc:  # pragma: no cover - static tables
        return _fail(f"cannot build filter: {exc}")
    _arr, fprog = _to_ctypes(prog)

    rc, err = _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if rc != 0:
        return _fail(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(err)} (errno {err})")

    # Keep a descriptor on /proc/self/status so seccomp_status()/current_vm_data_bytes()
    # still work once open() is denied.
    _ensure_status_fd()
    if limit_threads:
        pinned = limit_native_threads(1)
        if pinned:
            _log.debug("pinned native thread pools to 1 thread: %s", ", ".join(pinned))

    # Prefer seccomp(2) with TSYNC so every thread of the process gets the filter.
    nr_seccomp = _SYSCALLS[arch]["seccomp"]
    installed = False
    reason = ""
    for flags in (SECCOMP_FILTER_FLAG_TSYNC, 0):
        ctypes.set_errno(0)
        rc = lib.syscall(
            ctypes.c_long(nr_seccomp),
            ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
            ctypes.c_ulong(flags),
            ctypes.byref(fprog),
        )
        err = ctypes.get_errno()
        if rc == 0:
            installed = True
            break
        if rc > 0:
            # TSYNC: thread `rc` could not be synchronised; fall back to this thread only.
            _log.warning("seccomp TSYNC failed for thread %d; filtering calling thread only", rc)
            continue
        reason = f"seccomp(SECCOMP_SET_MODE_FILTER) failed: {os.strerror(err)} (errno {err})"
        if err in (_errno.ENOSYS, _errno.EPERM):
            break  # try the prctl interface
        if err == _errno.EINVAL and flags:
            continue  # flag unknown: retry without TSYNC
        break
    if not installed:
        rc, err = _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
        if rc != 0:
            return _fail(
                f"{reason + '; ' if reason else ''}prctl(PR_SET_SECCOMP) failed: "
                f"{os.strerror(err)} (errno {err})"
            )
    _LAST_ERROR = None
    return True


def apply_rlimits(
    *,
    data_bytes: int | None,
    cpu_seconds: float | None,
    fsize: int = 0,
    nofile: int | None = None,
    core: int = 0,
    nproc: int | None = 0,
) -> dict:
    """Set resource limits on the calling process; return ``{name: (soft, hard)}`` as set.

    ``None`` leaves a limit untouched. Limits are clamped to the current hard limit (never
    raised above it).

    * ``data_bytes`` -> RLIMIT_DATA (soft = hard). Since Linux 4.7 this covers anonymous
      private mmaps, so large numpy/bytearray allocations raise MemoryError. The value is
      absolute: pass ``current_vm_data_bytes() + budget``.
    * ``cpu_seconds`` -> RLIMIT_CPU, a budget counted from now: soft = ceil(cpu used so far +
      cpu_seconds) (SIGXCPU), hard = soft + 2 (SIGKILL).
    * ``fsize`` -> RLIMIT_FSIZE (0: no regular file can grow; Python ignores SIGXFSZ, so the
      write fails with EFBIG). Pipes and sockets are unaffected.
    * ``nofile`` -> RLIMIT_NOFILE, ``core`` -> RLIMIT_CORE, ``nproc`` -> RLIMIT_NPROC (not
      enforced for root / CAP_SYS_RESOURCE; seccomp blocks fork regardless).

    Raises ValueError for negative values and OSError if the kernel refuses a limit (e.g.
    when called after ``install_seccomp`` locked them).
    """
    plan: list[tuple[str, str, int, int]] = []  # (key, RLIMIT_ name, soft, hard)

    def _check(name: str, value: float) -> None:
        if value < 0 or (isinstance(value, float) and math.isnan(value)):
            raise ValueError(f"{name} must be >= 0, got {value!r}")

    if data_bytes is not None:
        _check("data_bytes", data_bytes)
        plan.append(("data", "RLIMIT_DATA", int(data_bytes), int(data_bytes)))
    if cpu_seconds is not None:
        _check("cpu_seconds", cpu_seconds)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        soft = max(1, math.ceil(ru.ru_utime + ru.ru_stime + float(cpu_seconds)))
        plan.append(("cpu", "RLIMIT_CPU", soft, soft + 2))
    if fsize is not None:
        _check("fsize", fsize)
        plan.append(("fsize", "RLIMIT_FSIZE", int(fsize), int(fsize)))
    if nofile is not None:
        _check("nofile", nofile)
        plan.append(("nofile", "RLIMIT_NOFILE", int(nofile), int(nofile)))
    if core is not None:
        _check("core", core)
        plan.append(("core", "RLIMIT_CORE", int(core), int(core)))
    if nproc is not None:
        _check("nproc", nproc)
        plan.append(("nproc", "RLIMIT_NPROC", int(nproc), int(nproc)))

    applied: dict[str, tuple[int, int]] = {}
    for key, rname, soft, hard in plan:
        res = getattr(resource, rname, None)
        if res is None:  # pragma: no cover - all exist on Linux
            _log.warning("%s not available on this platform; skipped", rname)
            continue
        _cur_soft, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError) as exc:
            if seccomp_status() == "filter":
                raise OSError(
                    getattr(exc, "errno", None) or _errno.EPERM,
                    f"cannot set {rname}={soft, hard}: {exc} "
                    "(call apply_rlimits before install_seccomp, which locks rlimits)",
                ) from exc
            raise
        applied[key] = (soft, hard)
    return applied


def _ensure_status_fd() -> int | None:
    """A descriptor on this process's /proc status file, opened before any filter."""
    global _STATUS_FD
    with _STATUS_LOCK:
        pid = os.getpid()
        if _STATUS_FD is not None:
            owner, fd = _STATUS_FD
            if owner == pid:
                return fd
            _STATUS_FD = None  # inherited across fork: it describes the parent; don't close
        try:
            fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        _STATUS_FD = (pid, fd)
        return fd


def _read_proc_status() -> str | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        pass
    # Under the filter open() is denied: use the descriptor kept by install_seccomp.
    entry = _STATUS_FD
    if entry is None or entry[0] != os.getpid():
        return None
    try:
        chunks = []
        offset = 0
        while True:
            chunk = os.pread(entry[1], 65536, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode("ascii", "replace")
    except OSError:
        return None


def _status_field(text: str, field: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


def current_vm_data_bytes() -> int:
    """VmData (bytes) of this process from /proc/self/status; fallback: peak RSS (bytes)."""
    text = _read_proc_status()
    if text is not None:
        value = _status_field(text, "VmData")
        if value:
            parts = value.split()
            try:
                num = int(parts[0])
            except (ValueError, IndexError):
                num = None
            if num is not None:
                unit = parts[1].lower() if len(parts) > 1 else "kb"
                return num * {"kb": 1024, "mb": 1024**2, "gb": 1024**3}.get(unit, 1)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss) * (1 if sys.platform == "darwin" else 1024)


def set_parent_death_signal(sig: int = signal.SIGKILL, *, expected_ppid: int | None = None) -> bool:
    """prctl(PR_SET_PDEATHSIG, sig): get ``sig`` when the parent (thread) dies.

    Returns True when set, False when prctl is unavailable. With ``expected_ppid``, closes the
    fork race: if the parent already died (``getppid() != expected_ppid``) the signal is
    delivered to ourselves right away, as the kernel would have done.
    """
    sig = int(sig)
    if not 0 < sig < signal.NSIG:
        raise ValueError(f"invalid signal {sig}")
    rc, err = _prctl(PR_SET_PDEATHSIG, sig)
    if rc != 0:
        _log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(err))
        return False
    if expected_ppid is not None and os.getppid() != expected_ppid:
        os.kill(os.getpid(), sig)
    return True


def seccomp_status() -> str:
    """'filter' / 'disabled' (or 'strict') from /proc/self/status; 'unknown' if unreadable.

    Falls back to prctl(PR_GET_SECCOMP) when /proc cannot be read (e.g. under the filter).
    """
    mode: str | None = None
    text = _read_proc_status()
    if text is not None:
        mode = _status_field(text, "Seccomp")
    if mode is None:
        rc, _err = _prctl(PR_GET_SECCOMP)
        if rc >= 0:
            mode = str(rc)
    return {"0": "disabled", "1": "strict", "2": "filter"}.get(mode or "", "unknown")
