//! `defect-studio-e2e`: the `defect-studio` CLI built for this package's end-to-end tests.

fn main() {
    std::process::exit(studio::cli::main());
}
