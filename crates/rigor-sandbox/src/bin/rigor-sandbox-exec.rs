//! `rigor-sandbox-exec`: the sandbox's second stage as a stand-alone binary, for programs that
//! link `rigor-sandbox` but cannot call `rigor_sandbox::stage2::run_if_requested` from their own
//! `main` (test binaries, other front ends). The `rigor` binary serves as its own helper.

fn main() {
    rigor_sandbox::stage2::run_if_requested();
    eprintln!(
        "rigor-sandbox-exec is started by rigor's sandbox: rigor-sandbox-exec {} SPEC -- PROGRAM [ARGS...]",
        rigor_sandbox::stage2::STAGE2_FLAG
    );
    std::process::exit(2);
}
