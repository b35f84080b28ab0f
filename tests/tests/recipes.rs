//! The recipe library through the CLI: `recipes add|list|show` in an isolated data folder,
//! extra folders from `DEFECT_STUDIO_RECIPE_DIRS`, broken files listed but never fatal, and the
//! thumbnail (the last output of a run of the recipe) read from the store.

mod common;

use common::*;

/// A small valid recipe: a grey plate, saved.
fn plate(title: &str, tags: &[&str]) -> String {
    format!(
        r#"{{"format": "defect-studio/graph", "version": 2,
        "nodes": {{"bg": {{"kind": "SolidColor", "version": 1, "params": {{"width": 16, "height": 12}}}},
                  "save": {{"kind": "SaveImage", "version": 1}}}},
        "links": [{{"from": ["bg", "image"], "to": ["save", "image"]}}],
        "meta": {{"title": {title:?}, "notes": "A flat plate", "tags": {tags:?}}}}}"#
    )
}

fn names(o: &std::process::Output) -> Vec<String> {
    assert!(o.status.success(), "{}", stderr(o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn list_shows_an_added_recipe_and_searches_it() {
    let env = Env::new();
    let o = env.run(&["recipes", "list", "--json"]);
    assert!(names(&o).is_empty());

    let file = env.write("grey-plate.json", &plate("Grey plate", &["flat"]));
    let o = env.run(&[
        "recipes",
        "add",
        file.to_str().unwrap(),
        "--name",
        "metal/grey",
        "--tag",
        "metal",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stored = env.home().join("recipes/metal/grey.json");
    assert!(
        stdout(&o).contains(stored.to_str().unwrap()),
        "{}",
        stdout(&o)
    );
    let doc = nodes::GraphDoc::from_json(&std::fs::read_to_string(&stored).unwrap()).unwrap();
    assert_eq!(doc.meta.tags, ["flat", "metal"]);

    // The plain listing names it, with its title and tags.
    let o = env.run(&["recipes", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.starts_with("metal/grey "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("Grey plate") && line.contains("[flat, metal]"),
        "{line}"
    );
    assert_eq!(
        names(&env.run(&["recipes", "list", "--json"])),
        ["metal/grey"]
    );
    // Search words (any field, any case) and exact tags.
    assert_eq!(
        names(&env.run(&["recipes", "list", "--json", "GREY", "solidcolor"])),
        ["metal/grey"]
    );
    assert!(names(&env.run(&["recipes", "list", "--json", "scratch"])).is_empty());
    assert_eq!(
        names(&env.run(&["recipes", "list", "--json", "--tag", "metal"])),
        ["metal/grey"]
    );
    assert!(names(&env.run(&["recipes", "list", "--json", "--tag", "Metal"])).is_empty());

    // Adding the same name again is refused, naming it; nothing is replaced.
    let other = env.write("other.json", &plate("Other", &[]));
    let o = env.run(&[
        "recipes",
        "add",
        other.to_str().unwrap(),
        "--name",
        "metal/grey",
    ]);
    assert_clean_failure(&o, &["metal/grey", "already exists"]);
    let again = nodes::GraphDoc::from_json(&std::fs::read_to_string(&stored).unwrap()).unwrap();
    assert_eq!(again.meta.title, "Grey plate");
    // An invalid recipe is refused before anything is written.
    let bad = env.write(
        "bad.json",
        r#"{"format": "defect-studio/graph", "version": 2,
            "nodes": {"x": {"kind": "NoSuchKind", "version": 1}}}"#,
    );
    let o = env.run(&["recipes", "add", bad.to_str().unwrap()]);
    assert_clean_failure(&o, &["recipe \"bad\"", "NoSuchKind"]);
    assert!(!env.home().join("recipes/bad.json").exists());
    // A name that leaves the folder is refused.
    let o = env.run(&["recipes", "add", other.to_str().unwrap(), "--name", "../x"]);
    assert_clean_failure(&o, &["recipe name \"../x\""]);

    // `show` describes it.
    let o = env.run(&["recipes", "show", "metal/grey"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for needle in [
        "Grey plate",
        "flat, metal",
        "SaveImage ×1",
        "SolidColor ×1",
        "models  none",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let o = env.run(&["recipes", "show", "nope"]);
    assert_clean_failure(&o, &["no recipe \"nope\""]);
}

#[test]
fn extra_folders_add_recipes_and_broken_files_are_listed_not_fatal() {
    let env = Env::new();
    let extra = env.dir.path().join("team-recipes");
    std::fs::create_dir_all(extra.join("plates")).unwrap();
    std::fs::write(extra.join("plates/blue.json"), plate("Blue plate", &[])).unwrap();
    std::fs::write(extra.join("broken.json"), "{ \"format\": ").unwrap();
    std::fs::write(extra.join("readme.txt"), "not a recipe").unwrap();
    let own = env.home().join("recipes");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("grey.json"), plate("Grey plate", &[])).unwrap();
    std::fs::write(own.join("wrong-format.json"), r#"{"nodes": {}}"#).unwrap();

    let list = |extra_dirs: Option<&str>, json: bool| {
        let mut c = env.cmd();
        c.args(["recipes", "list"]);
        if json {
            c.arg("--json");
        }
        if let Some(d) = extra_dirs {
            c.env("DEFECT_STUDIO_RECIPE_DIRS", d);
        }
        c.output().unwrap()
    };
    assert_eq!(names(&list(None, true)), ["grey"]);
    let joined =
        std::env::join_paths([extra.as_path(), env.dir.path().join("nowhere").as_path()]).unwrap();
    let o = list(Some(joined.to_str().unwrap()), true);
    assert_eq!(names(&o), ["grey", "plates/blue"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems: Vec<String> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["path"].as_str().unwrap(),
                p["problem"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("broken.json") && p.contains("line")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("wrong-format.json") && p.contains("format")),
        "{problems:?}"
    );
    // The plain listing lists them on stderr and still succeeds.
    let o = list(Some(joined.to_str().unwrap()), false);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("plates/blue"), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("problem: ") && err.contains("broken.json"),
        "{err}"
    );
}

/// The thumbnail is the last output of the newest run of the recipe (by file or by name); a
/// recipe never run has none.
#[test]
fn thumbnail_is_the_last_output_of_a_run_of_the_recipe() {
    let env = Env::new();
    for (name, title) in [
        ("plate", "Grey plate"),
        ("blue", "Blue plate"),
        ("never", "Never run"),
    ] {
        let file = env.write(&format!("{name}.json"), &plate(title, &[]));
        let o = env.run(&["recipes", "add", file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let run = |recipe: &str, color: &str| {
        let path = env.home().join(format!("recipes/{recipe}.json"));
        let set = format!("bg.color={color}");
        let o = env.run(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            env.out().to_str().unwrap(),
            "--set",
            &set,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run("plate", "#ff0000");
    run("plate", "#00ff00");
    run("blue", "#0000ff");

    let lib = engine::recipes::Library::scan(&[env.home().join("recipes")]);
    let store = engine::Store::open_read_only(&env.store()).unwrap();
    let pixel = |name: &str| -> Option<[u8; 3]> {
        let png = engine::recipes::thumbnail(&store, lib.get(name).unwrap()).unwrap()?;
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        Some(img.get_pixel(0, 0).0)
    };
    assert_eq!(
        pixel("plate"),
        Some([0, 255, 0]),
        "the newest run of the recipe"
    );
    assert_eq!(pixel("blue"), Some([0, 0, 255]));
    assert_eq!(pixel("never"), None);
    // All at once, for a panel: the same outputs.
    let names: Vec<&str> = lib.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["blue", "never", "plate"]);
    let ids = engine::recipes::thumbnail_outputs(&store, lib.entries()).unwrap();
    assert!(ids[1].is_none());
    let png = store.output_png(ids[2].unwrap()).unwrap().unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(img.get_pixel(0, 0).0, [0, 255, 0]);
    assert_ne!(ids[0], ids[2]);
}
