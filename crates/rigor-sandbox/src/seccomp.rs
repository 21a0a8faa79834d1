//! The seccomp filters bubblewrap installs right before it executes the sandboxed command.
//!
//! Two filters, both compiled to classic BPF with `seccompiler` and handed to bubblewrap as
//! `--add-seccomp-fd` file descriptors:
//!
//! 1. `EPERM` for system calls a build or a test suite never needs and that widen the attack
//!    surface or undo the other layers: tracing other processes (`ptrace`, `process_vm_*`),
//!    mounting and pivoting, creating or entering namespaces (`unshare`, `setns`, and `clone`
//!    with any `CLONE_NEW*` flag), kernel modules and `kexec`, BPF and perf events, keyrings,
//!    `io_uring` (whose operations bypass seccomp), `userfaultfd`, handle-based opens
//!    (`open_by_handle_at`, a classic container escape), swap, clock and reboot control, and
//!    terminal input injection (`ioctl(TIOCSTI)`). Also `EPERM` for making a setuid or setgid
//!    file: `chmod`, `fchmod`, `fchmodat`, `fchmodat2`, `mknod`/`mknodat`, and `open`/`openat`/
//!    `creat` that create a file, with `S_ISUID` or `S_ISGID` in the mode (a workspace can outlive
//!    the run with `--keep-workspace`, and the commands may run as root), and `mknod`/`mknodat`
//!    of anything but a regular file or a FIFO (device nodes, sockets).
//! 2. `ENOSYS` for `clone3` and `openat2`, whose flags and modes live in memory a filter cannot
//!    inspect: the C library then falls back to `clone`, and programs to `openat`, which filter 1
//!    does inspect.
//!
//! This module only builds the programs; it installs nothing in the calling process.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// Namespace flags of `clone(2)`.
const CLONE_NEW_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `fchmodat2(2)` (Linux 6.6), the same number on x86_64 and aarch64; not in every `libc`.
const SYS_FCHMODAT2: i64 = 452;

/// The set-user-ID and set-group-ID bits of a file mode.
const SETID_BITS: [u64; 2] = [libc::S_ISUID as u64, libc::S_ISGID as u64];

/// The file types `mknod` may create: a regular file (also spelt as type 0) and a FIFO.
const MKNOD_ALLOWED_TYPES: [u64; 3] = [0, libc::S_IFREG as u64, libc::S_IFIFO as u64];

/// System calls refused outright with `EPERM`.
fn denied_syscalls() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_userfaultfd,
        libc::SYS_syslog,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_fanotify_init,
        libc::SYS_vhangup,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_iopl, libc::SYS_ioperm, libc::SYS_uselib]);
    calls
}

fn target_arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp: unsupported architecture: {e}"))
}

fn condition(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| format!("seccomp condition: {e}"))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| format!("seccomp rule: {e}"))
}

/// Rules matching a mode argument (`arg`) with the setuid or the setgid bit, each also under
/// the extra conditions (`open` flags, for instance).
fn setid_mode_rules(arg: u8, extra: &[SeccompCondition]) -> Result<Vec<SeccompRule>, String> {
    SETID_BITS
        .iter()
        .map(|&bit| {
            let mut conditions = extra.to_vec();
            conditions.push(condition(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(bit), bit)?);
            rule(conditions)
        })
        .collect()
}

/// `open`-like calls (`flags` and `mode` argument positions) that create a file with a setuid
/// or setgid mode, through `O_CREAT` or `O_TMPFILE`.
fn setid_create_rules(flags: u8, mode: u8) -> Result<Vec<SeccompRule>, String> {
    let mut rules = Vec::new();
    for creating in [libc::O_CREAT as u64, libc::O_TMPFILE as u64] {
        let creates = condition(flags, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(creating), creating)?;
        rules.extend(setid_mode_rules(mode, &[creates])?);
    }
    Ok(rules)
}

/// `mknod`-like calls (`mode` argument position): setuid/setgid modes and every file type but
/// a regular file or a FIFO.
fn mknod_rules(mode: u8) -> Result<Vec<SeccompRule>, String> {
    let mut rules = setid_mode_rules(mode, &[])?;
    let mask = libc::S_IFMT as u64;
    for kind in (0..16u64).map(|k| k << 12).filter(|k| !MKNOD_ALLOWED_TYPES.contains(k)) {
        rules.push(rule(vec![condition(mode, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(mask), kind)?])?);
    }
    Ok(rules)
}

/// Conditional `EPERM` rules against setuid/setgid files and device nodes.
fn setid_rules() -> Result<Vec<(i64, Vec<SeccompRule>)>, String> {
    #[allow(unused_mut)] // x86_64 adds the legacy calls
    let mut rules = vec![
        (libc::SYS_fchmod, setid_mode_rules(1, &[])?),
        (libc::SYS_fchmodat, setid_mode_rules(2, &[])?),
        (SYS_FCHMODAT2, setid_mode_rules(2, &[])?),
        (libc::SYS_mknodat, mknod_rules(2)?),
        (libc::SYS_openat, setid_create_rules(2, 3)?),
    ];
    #[cfg(target_arch = "x86_64")]
    rules.extend([
        (libc::SYS_chmod, setid_mode_rules(1, &[])?),
        (libc::SYS_mknod, mknod_rules(1)?),
        (libc::SYS_open, setid_create_rules(1, 2)?),
        (libc::SYS_creat, setid_mode_rules(1, &[])?),
    ]);
    Ok(rules)
}

/// The two filter programs, as the raw bytes bubblewrap reads (`struct sock_filter` array).
pub(crate) fn filter_programs() -> Result<Vec<Vec<u8>>, String> {
    let arch = target_arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied_syscalls().into_iter().map(|n| (n, Vec::new())).collect();
    let clone_rules = CLONE_NEW_FLAGS
        .iter()
        .map(|&flag| rule(vec![condition(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag)?]))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    rules.insert(
        libc::SYS_ioctl,
        vec![rule(vec![condition(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::TIOCSTI)?])?],
    );
    rules.extend(setid_rules()?);
    let deny = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new()), (libc::SYS_openat2, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| format!("seccomp filter: {e}"))?;
    [deny, clone3]
        .into_iter()
        .map(|filter| {
            let program: BpfProgram = filter.try_into().map_err(|e| format!("seccomp compile: {e}"))?;
            Ok(to_bytes(&program))
        })
        .collect()
}

fn to_bytes(program: &BpfProgram) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_to_whole_instructions() {
        let programs = filter_programs().unwrap();
        assert_eq!(programs.len(), 2);
        for p in programs {
            assert!(!p.is_empty() && p.len().is_multiple_of(8));
            assert!(p.len() / 8 <= 4096, "{} instructions: more than the kernel's BPF_MAXINSNS", p.len() / 8);
        }
    }
}
