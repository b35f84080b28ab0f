//! The explorer's catalogue through the CLI: queries over the outputs of real runs, manual
//! tags by id and by query, `dataset import` with its report, and an import killed midway
//! (the dataset is absent or complete, never half).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{assert_clean_failure, repo, stderr, stdout, Env};

fn query(env: &Env, q: &str) -> Vec<serde_json::Value> {
    let o = env.run(&["query", q, "--json"]);
    assert!(o.status.success(), "query {q}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn ids(env: &Env, q: &str) -> Vec<u64> {
    query(env, q)
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn queries_and_tags_over_the_outputs_of_real_runs() {
    let env = Env::new();
    let out = env.out();
    for (name, count) in [
        ("scratches-on-brushed-metal", "3"),
        ("cracks-on-concrete", "2"),
    ] {
        let o = env
            .cmd()
            .current_dir(repo())
            .args(["run", &format!("examples/{name}.json"), "--count", count])
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let scratches = query(&env, "label:scratch");
    assert_eq!(scratches.len(), 3, "{scratches:#?}");
    for it in &scratches {
        assert_eq!(it["source"], "generated");
        let tags: Vec<&str> = it["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(tags.contains(&"source:generated"), "{tags:?}");
        assert!(
            tags.contains(&"graph:scratches-on-brushed-metal"),
            "{tags:?}"
        );
        assert!(tags.iter().any(|t| t.starts_with("run:")), "{tags:?}");
        let fields = it["fields"].as_object().unwrap();
        assert!(fields["area"].as_f64().unwrap() > 0.0, "{fields:?}");
        assert!(fields["defects"].as_f64().unwrap() >= 1.0, "{fields:?}");
        assert!(
            fields.keys().any(|k| k.contains('.')),
            "recipe parameters as NODE.PARAM: {fields:?}"
        );
        assert!(std::path::Path::new(it["name"].as_str().unwrap()).is_file());
    }
    assert_eq!(ids(&env, "label:crack").len(), 2);
    assert_eq!(ids(&env, "source:generated").len(), 5);
    assert_eq!(
        ids(
            &env,
            "graph:cracks-on-concrete OR graph:scratches-on-brushed-metal"
        )
        .len(),
        5
    );
    assert_eq!(
        ids(&env, "label:scratch AND NOT label:crack"),
        ids(&env, "label:scratch")
    );
    assert!(ids(&env, "source:imported").is_empty());
    assert_eq!(
        ids(&env, "created>=2020-01-01 AND area>0 AND width>=64").len(),
        5
    );
    // Querying again finds nothing new to itemise: the same ids.
    assert_eq!(ids(&env, "label:*").len(), 5);

    // Tags: on a query's result, then removed from one item by id.
    let o = env.run(&["tag", "add", "keep", "--query", "label:scratch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("tagged \"keep\" on 3 of 3"),
        "{}",
        stdout(&o)
    );
    let keep = ids(&env, "keep");
    assert_eq!(keep, ids(&env, "label:scratch"));
    let first = keep[0].to_string();
    let o = env.run(&["tag", "remove", "keep", &first]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&env, "keep"), keep[1..]);
    let o = env.run(&["tag", "add", "reviewed:yes", &first]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&env, "reviewed:yes AND -keep"), vec![keep[0]]);
    // The text listing names each item.
    let o = env.run(&["query", "reviewed:*"]);
    assert!(stdout(&o).contains(&format!("#{first}")) && stdout(&o).contains("reviewed:yes"));

    // Bad input: one clear line.
    assert_clean_failure(
        &env.run(&["query", "label:scratch AND (area>"]),
        &["character 24", "number"],
    );
    assert_clean_failure(
        &env.run(&["tag", "add", "x", "99999"]),
        &["no such item: 99999"],
    );
    assert_clean_failure(
        &env.run(&["tag", "add", "x", "1", "--query", "keep"]),
        &["either --query"],
    );
}

fn noise_png(seed: u32, side: u32) -> Vec<u8> {
    let px: Vec<u8> = (0..side * side * 4)
        .map(|i| ((i ^ seed.wrapping_mul(0x9E37_79B9)).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    engine::codec::encode_rgba8_png(side, side, &px).unwrap()
}

#[test]
fn import_reports_and_an_interrupted_import_leaves_no_half_dataset() {
    let env = Env::new();
    let dir = env.dir.path().join("photos");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..3 {
        std::fs::write(dir.join(format!("p{i}.png")), noise_png(i, 24)).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    let meta = env.write("meta.csv", "file,label\np0.png,scratch\ngone.png,dent\n");
    let o = env.run(&[
        "dataset",
        "import",
        dir.to_str().unwrap(),
        "--name",
        "real",
        "--meta",
        meta.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("notes.txt: not an image"), "{text}");
    assert!(
        text.contains("metadata line 3 names \"gone.png\""),
        "{text}"
    );
    assert!(
        text.contains("imported 3 file(s) to dataset \"real\""),
        "{text}"
    );
    assert_eq!(ids(&env, "dataset:real AND label:scratch").len(), 1);
    let o = env.run(&["dataset", "import", dir.to_str().unwrap(), "--name", "real"]);
    assert!(stdout(&o).contains("it existed"), "{}", stdout(&o));
    assert_clean_failure(
        &env.run(&["dataset", "import", "/no/such/dir", "--name", "x"]),
        &["/no/such/dir", "no such file"],
    );

    // A large import, killed after its first files.
    let big = env.dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    let n = 300;
    for i in 0..n {
        std::fs::write(big.join(format!("b{i:03}.png")), noise_png(1000 + i, 160)).unwrap();
    }
    let mut child = env
        .cmd()
        .args(["dataset", "import", big.to_str().unwrap(), "--name", "big"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("imported 1:"), "{first}");
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let o = env.run(&["dataset", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sets: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let listed = sets.iter().find(|d| d["name"] == "big");
    let found = ids(&env, "dataset:big").len();
    match listed {
        None => assert_eq!(found, 0, "a half-imported dataset"),
        Some(d) => {
            assert_eq!(d["items"], n);
            assert_eq!(found, n as usize);
        }
    }
    assert!(
        running,
        "the import finished before it could be killed: make it bigger"
    );
    assert!(
        listed.is_none(),
        "killed mid-import, yet the dataset is listed"
    );
    // Importing again completes it.
    let o = env.run(&["dataset", "import", big.to_str().unwrap(), "--name", "big"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&env, "dataset:big").len(), n as usize);
    assert_eq!(
        ids(&env, "dataset:real").len(),
        3,
        "the earlier dataset is intact"
    );
}
