//! `defect-studio diff A B` on the golden pair of `tests/fixtures/diff/` (made and checked
//! against the library in `nodes/tests/diff_golden.rs`): the command prints exactly the
//! golden text, says the same thing as JSON, and follows `git diff --exit-code`.

mod common;

use common::{repo, Env};

fn golden(name: &str) -> std::path::PathBuf {
    repo().join("tests/fixtures/diff").join(name)
}

#[test]
fn diff_of_the_golden_pair_prints_the_golden_text() {
    let env = Env::new();
    let (a, b) = (golden("before.json"), golden("after.json"));
    let out = env.run(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(golden("expected.txt")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    // JSON: the same lines with their kind, and the counts.
    let out = env.run(&["diff", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.len(), expected.lines().count());
    let mark = |c: &str| match c {
        "added" => '+',
        "removed" => '-',
        _ => '~',
    };
    for (l, want) in lines.iter().zip(expected.lines()) {
        let text = format!(
            "{} {}",
            mark(l["change"].as_str().unwrap()),
            l["text"].as_str().unwrap()
        );
        assert_eq!(text, want);
    }
    assert_eq!(v["same"], false);
    let n = |k: &str| v[k].as_u64().unwrap() as usize;
    assert_eq!(
        n("added") + n("removed") + n("changed"),
        expected.lines().count()
    );

    // --exit-code: 1 when they differ, 0 (and nothing printed) when they do not.
    let out = env.run(&[
        "diff",
        "--exit-code",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.run(&[
        "diff",
        "--exit-code",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn diff_of_a_missing_file_is_one_error_line() {
    let env = Env::new();
    let a = golden("before.json");
    let out = env.run(&["diff", a.to_str().unwrap(), "/nonexistent/recipe.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/recipe.json"), "{err}");
}
