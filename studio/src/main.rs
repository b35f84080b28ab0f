//! The `defect-studio` binary: the studio window with no arguments, the CLI with a subcommand.

fn main() {
    std::process::exit(studio::cli::main());
}
