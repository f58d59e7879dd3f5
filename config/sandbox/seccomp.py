"""A seccomp filter for jobs (bwrap `--seccomp FD`), built here as classic BPF.

Namespaces hide the host from a job; the kernel stays shared. This filter takes away the
system calls a job never needs and that most kernel escapes start from: new user namespaces
(`unshare`/`clone` with CLONE_NEWUSER; `clone3`, whose flags a filter cannot read, answers
ENOSYS so the C library falls back to `clone`), mounting, keyrings, BPF, userfaultfd,
io_uring, perf events, module and kexec loading, reboot, swap, quotas, accounting, raw I/O
ports, the kernel log, handle-based opens (which step past a bind mount), reading other
processes' memory, and other ABIs than the native one (x32, i386) through which a filter on
native numbers could be walked around. Each answers EPERM; everything else is allowed. The
list follows Flatpak's and Docker's default profiles.
"""

import platform
import struct

# seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
NR, ARCH, ARG0 = 0, 4, 16
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
CLONE_NEWUSER = 0x10000000
X32_BIT = 0x40000000

DENIED = {  # name: (x86_64, aarch64)
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "swapon": (167, 224),
    "swapoff": (168, 225), "reboot": (169, 142), "kexec_load": (246, 104),
    "kexec_file_load": (320, 294), "init_module": (175, 105), "finit_module": (313, 273),
    "delete_module": (176, 106), "acct": (163, 89), "quotactl": (179, 60), "setns": (308, 268),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "syslog": (103, 116),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218), "bpf": (321, 280),
    "userfaultfd": (323, 282), "perf_event_open": (298, 241), "vhangup": (153, 58),
    "lookup_dcookie": (212, 18), "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271), "kcmp": (312, 272), "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426), "io_uring_register": (427, 427), "open_tree": (428, 428),
    "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "iopl": (172, None), "ioperm": (173, None), "uselib": (134, None),
}
CLONE = {"clone": (56, 220), "unshare": (272, 97)}
CLONE3 = 435

# classic BPF opcodes
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def supported(machine: str = "") -> bool:
    return (machine or platform.machine()) in AUDIT_ARCH


def program(machine: str = "") -> bytes:
    """The filter for this machine's architecture (x86_64 or aarch64)."""
    machine = machine or platform.machine()
    column = 0 if machine == "x86_64" else 1
    denied = sorted(n[column] for n in DENIED.values() if n[column] is not None)
    clone = [n[column] for n in CLONE.values()]
    errno = {"perm": RET_ERRNO | EPERM, "nosys": RET_ERRNO | ENOSYS}
    body = [_insn(LD_W_ABS, 0, 0, ARCH),
            _insn(JEQ_K, 1, 0, AUDIT_ARCH[machine]),
            _insn(RET_K, 0, 0, errno["nosys"]),   # another ABI: nothing of it runs
            _insn(LD_W_ABS, 0, 0, NR)]
    if machine == "x86_64":
        body += [_insn(JGE_K, 0, 1, X32_BIT), _insn(RET_K, 0, 0, errno["nosys"])]
    body += [_insn(JEQ_K, 0, 1, CLONE3), _insn(RET_K, 0, 0, errno["nosys"])]
    for number in denied:
        body += [_insn(JEQ_K, 0, 1, number), _insn(RET_K, 0, 0, errno["perm"])]
    for number in clone:  # flags are the first argument of both (its low 32 bits)
        body += [_insn(JEQ_K, 0, 3, number), _insn(LD_W_ABS, 0, 0, ARG0),
                 _insn(JSET_K, 0, 1, CLONE_NEWUSER), _insn(RET_K, 0, 0, errno["perm"]),
                 _insn(LD_W_ABS, 0, 0, NR)]
    body.append(_insn(RET_K, 0, 0, RET_ALLOW))
    return b"".join(body)
