//! End-to-end tests of Defect Studio live in `tests/tests/`: they run recipes through the CLI
//! (spawned as a separate process, as a user or a cluster job would), then check the output
//! folder, the redb store and the history. The package's `defect-studio-e2e` binary is the CLI
//! built from `studio::cli`, the same code as `defect-studio`.
