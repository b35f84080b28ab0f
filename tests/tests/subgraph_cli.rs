//! `run --set` and `--sweep` on a subgraph node's exposed parameters, through the CLI, on the
//! example `examples/subgraph-deep-scratch.json` (a "deep scratch" block exposing depth 0.3–1,
//! count and seed).

mod common;

use common::*;

#[test]
fn set_and_sweep_reach_exposed_parameters() {
    let env = Env::new();
    let g = example("subgraph-deep-scratch.json");
    let run = |args: &[&str]| {
        let out = env.out();
        let mut all = vec!["run", g.to_str().unwrap(), "--out", out.to_str().unwrap()];
        all.extend_from_slice(args);
        env.run(&all)
    };
    let plain = run(&[]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    let set = run(&["--set", "scratches.count=6"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let (a, b) = (saved_paths(&plain), saved_paths(&set));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(
        sha256(&std::fs::read(&a[0]).unwrap()),
        sha256(&std::fs::read(&b[0]).unwrap()),
        "six scratches must not look like two"
    );
    let sweep = run(&["--sweep", "scratches.depth=0.4,1.0"]);
    assert!(sweep.status.success(), "{}", stderr(&sweep));
    assert_eq!(saved_paths(&sweep).len(), 2);

    // Not exposed, out of the exposed range (0.3..1), unknown node: one clear line each.
    assert_clean_failure(&run(&["--set", "scratches.length=5"]), &["length"]);
    assert_clean_failure(&run(&["--set", "scratches.depth=0.1"]), &["depth"]);
    assert_clean_failure(&run(&["--set", "ghost.count=1"]), &["ghost"]);
}
