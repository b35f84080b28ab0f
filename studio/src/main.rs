//! The `defect-studio` binary: the studio window with no arguments, the CLI with a subcommand.

fn main() {
    // Reuse freed tensor buffers instead of faulting in fresh pages per op (glibc).
    kernels::alloc::keep_freed_buffers();
    // One pool of worker threads (rayon's) instead of two competing for the cores.
    kernels::threads::one_pool();
    std::process::exit(studio::cli::main());
}
