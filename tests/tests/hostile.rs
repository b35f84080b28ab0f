//! Hostile input through the CLI: planted symbolic links, concurrent writers, memory bombs,
//! FIFOs and devices, damaged stores, closed pipes and killed writers. Each case must end in a
//! clear error (never a panic, an abort or a hang), write nothing outside the output folder,
//! and lose nothing committed.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A quick recipe: a textured plate and a shape mask saved under `filename`.
fn plate(filename: &str, side: u32) -> String {
    format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{"tex": {{"kind": "Texture", "version": 1, "params": {{"width": {side}, "height": {side}}}}},
                      "m": {{"kind": "ShapeMask", "version": 1}},
                      "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "{filename}"}}}}}},
            "links": [{{"from": ["tex", "image"], "to": ["save", "image"]}},
                      {{"from": ["tex", "image"], "to": ["m", "like"]}},
                      {{"from": ["m", "mask"], "to": ["save", "mask"]}}]}}"#
    )
}

/// A recipe that loads `source` and saves it.
fn load(source: &str) -> String {
    format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{"photo": {{"kind": "LoadImage", "version": 1, "params": {{"source": "{source}"}}}},
                      "save": {{"kind": "SaveImage", "version": 1}}}},
            "links": [{{"from": ["photo", "image"], "to": ["save", "image"]}}]}}"#
    )
}

/// Runs `cmd` under a 2 GiB address-space limit, killing it (and failing) after 60 s.
fn run_limited(mut cmd: Command) -> Output {
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the command hung (killed after 60 s)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Asserts a clean failure (exit code 1, one `error:` line naming every needle) that is not
/// an abort, a signal or a panic.
fn assert_refused(o: &Output, needles: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit code 1, got {:?} (signal {:?}); stderr: {}",
        o.status.code(),
        o.status.signal(),
        stderr(o)
    );
    assert_clean_failure(o, needles);
}

/// Every file under `dir`, recursively (links not followed).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every stored output's record matches its bytes in the store and its files on disk; returns
/// the image paths.
fn assert_records_match_files(store: &Path) -> Vec<PathBuf> {
    let store = engine::Store::open_read_only(store).unwrap();
    let mut paths = Vec::new();
    for (id, rec) in store.outputs(None).unwrap() {
        let png = store.output_png(id).unwrap().expect("png bytes");
        assert_eq!(sha256(&png), rec.sha256, "output {id}: stored bytes");
        let on_disk = std::fs::read(&rec.path).unwrap();
        assert_eq!(
            sha256(&on_disk),
            rec.sha256,
            "output {id}: {} holds another image than its record",
            rec.path
        );
        if let (Some(mp), Some(ms)) = (&rec.mask_path, &rec.mask_sha256) {
            assert_eq!(
                &sha256(&std::fs::read(mp).unwrap()),
                ms,
                "output {id}: mask"
            );
        }
        assert!(
            !std::fs::symlink_metadata(&rec.path)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{}",
            rec.path
        );
        paths.push(PathBuf::from(&rec.path));
    }
    paths
}

#[test]
fn planted_links_at_the_temporary_names_are_never_followed() {
    let env = Env::new();
    let graph = env.write("plate.json", &plate("sub/plate.png", 32));
    let outside = env.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let sub = env.out().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let victims = [outside.join("victim.txt"), outside.join("victim_mask.txt")];
    for v in &victims {
        std::fs::write(v, "precious").unwrap();
    }
    // The names the writer used to open by following whatever was there.
    std::os::unix::fs::symlink(&victims[0], sub.join("plate.png.part")).unwrap();
    std::os::unix::fs::symlink(&victims[1], sub.join("plate_mask.png.part")).unwrap();
    // A dangling link at the final name is not replaced either.
    std::os::unix::fs::symlink(outside.join("nothing"), sub.join("plate.png")).unwrap();
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for v in &victims {
        assert_eq!(std::fs::read_to_string(v).unwrap(), "precious");
    }
    assert_eq!(files_under(&outside), victims.to_vec());
    let paths = assert_records_match_files(&env.store());
    assert_eq!(paths, vec![sub.join("plate-1.png")]);
    assert!(sub.join("plate-1_mask.png").is_file());
    // The run's temporary folder is gone.
    assert!(!env.out().join(".defect-studio-tmp").exists());
}

#[test]
fn a_linked_folder_in_the_output_folder_is_refused() {
    let env = Env::new();
    let graph = env.write("plate.json", &plate("sub/deeper/plate.png", 32));
    let elsewhere = env.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(env.out()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.out().join("sub")).unwrap();
    let run = || {
        env.run(&[
            "run",
            graph.to_str().unwrap(),
            "--out",
            env.out().to_str().unwrap(),
        ])
    };
    let o = run();
    assert_refused(&o, &["sub", "symbolic link"]);
    assert!(files_under(&elsewhere).is_empty());
    // A link planted where the run keeps its temporary files is refused too.
    std::fs::remove_file(env.out().join("sub")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.out().join(".defect-studio-tmp")).unwrap();
    let o = run();
    assert_refused(&o, &[".defect-studio-tmp", "symbolic link"]);
    assert!(files_under(&elsewhere).is_empty());
}

#[test]
fn two_processes_writing_one_template_never_overwrite_each_other() {
    let env = Env::new();
    // Every item of both runs wants the same name.
    let graph = env.write("plate.json", &plate("sub/plate.png", 48));
    let per_run = 12;
    let spawn = |seed: &str| {
        env.cmd()
            .args([
                "run",
                graph.to_str().unwrap(),
                "--count",
                &per_run.to_string(),
                "--seed",
                seed,
                "--out",
                env.out().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("0"), spawn("1000"));
    for child in [a, b] {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let paths = assert_records_match_files(&env.store());
    assert_eq!(paths.len(), 2 * per_run);
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), paths.len(), "two records share a file");
    let images: Vec<PathBuf> = files_under(&env.out().join("sub"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with("_mask.png"))
        .collect();
    assert_eq!(images, unique, "files on disk without a record");
}

/// A PNG (1×1 grey) carrying a zTXt chunk that inflates to `inflated` bytes.
fn ztxt_bomb(inflated: usize) -> Vec<u8> {
    use std::io::Write;
    fn chunk(out: &mut Vec<u8>, ty: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = ty.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        let mut h = flate2::Crc::new();
        h.update(&body);
        out.extend_from_slice(&h.sum().to_be_bytes());
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1 << 20];
    for _ in 0..inflated / block.len() {
        z.write_all(&block).unwrap();
    }
    let compressed = z.finish().unwrap();
    let mut png = vec![137, 80, 78, 71, 13, 10, 26, 10];
    chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
    let mut ztxt = b"parameters\0\0".to_vec();
    ztxt.extend_from_slice(&compressed);
    chunk(&mut png, b"zTXt", &ztxt);
    let mut idat = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    idat.write_all(&[0, 128]).unwrap();
    chunk(&mut png, b"IDAT", &idat.finish().unwrap());
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn memory_bombs_devices_and_fifos_are_refused_within_2_gib() {
    let env = Env::new();
    let out = env.out();
    let out = out.to_str().unwrap();
    // An 800 MB text chunk in a file of under a megabyte.
    let bomb = env.dir.path().join("bomb.png");
    std::fs::write(&bomb, ztxt_bomb(800 << 20)).unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 2 << 20);
    let mut cmd = env.cmd();
    cmd.args(["run", bomb.to_str().unwrap(), "--out", out]);
    assert_refused(&run_limited(cmd), &["zTXt", "MiB of text"]);
    // A device that never ends, planned as the largest batch allowed.
    let zero = env.write("zero.json", &load("/dev/zero"));
    let mut cmd = env.cmd();
    cmd.args([
        "run",
        zero.to_str().unwrap(),
        "--count",
        "100000000",
        "--out",
        out,
    ]);
    assert_refused(
        &run_limited(cmd),
        &["photo", "/dev/zero", "not a regular file"],
    );
    // A FIFO nobody writes to.
    let fifo = env.dir.path().join("pipe.png");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let graph = env.write("fifo.json", &load(fifo.to_str().unwrap()));
    let mut cmd = env.cmd();
    cmd.args(["run", graph.to_str().unwrap(), "--out", out]);
    assert_refused(
        &run_limited(cmd),
        &["photo", "pipe.png", "not a regular file"],
    );
}

#[test]
fn a_corrupt_jpeg_claiming_a_huge_size_is_refused() {
    let env = Env::new();
    // A real JPEG, then its frame header changed to claim 8192×8192.
    let mut jpeg = Vec::new();
    image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 3, 90]))
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline frame header");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0x20, 0x00, 0x20, 0x00]);
    std::fs::write(env.dir.path().join("huge.jpg"), &jpeg).unwrap();
    let graph = env.write("jpeg.json", &load("huge.jpg"));
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert_refused(&o, &["photo", "8192×8192", "truncated or corrupt"]);
    assert!(files_under(&env.out()).is_empty());
}

/// Runs a quick recipe once so the store holds a run and an output.
fn one_run(env: &Env) {
    let graph = env.write("plate.json", &plate("plate.png", 32));
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn reading_commands_leave_the_store_byte_identical() {
    let env = Env::new();
    one_run(&env);
    let before = sha256(&std::fs::read(env.store()).unwrap());
    let store = env.store();
    let store = store.to_str().unwrap();
    let dataset = env.dir.path().join("dataset");
    for args in [
        vec!["history"],
        vec!["history", "--json"],
        vec!["history", "--trainings"],
        vec!["store", "check"],
        vec!["store", "check", "--store", store],
        vec![
            "export",
            "--format",
            "folder",
            "--out",
            dataset.to_str().unwrap(),
        ],
    ] {
        let o = env.run(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(
            sha256(&std::fs::read(env.store()).unwrap()),
            before,
            "`{}` changed the store file",
            args.join(" ")
        );
    }
}

#[test]
fn an_empty_or_unreadable_store_is_an_error_never_replaced() {
    let env = Env::new();
    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::write(env.store(), b"").unwrap();
    let graph = env.write("plate.json", &plate("plate.png", 32));
    for args in [
        vec!["history"],
        vec!["store", "check"],
        vec![
            "run",
            graph.to_str().unwrap(),
            "--out",
            env.out().to_str().unwrap(),
        ],
    ] {
        let o = env.run(&args);
        assert_refused(&o, &["store.redb", "empty file"]);
        assert_eq!(std::fs::metadata(env.store()).unwrap().len(), 0);
    }
    std::fs::write(env.store(), vec![7u8; 10_000]).unwrap();
    let o = env.run(&["history"]);
    assert_refused(&o, &["store.redb"]);
    assert_eq!(std::fs::read(env.store()).unwrap(), vec![7u8; 10_000]);
}

/// Replaces output `id`'s stored PNG bytes (what a damaged disk would do).
fn damage_output(store: &Path, id: u64) {
    use redb::ReadableTable;
    const OUTPUT_PNG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("output_png");
    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open(store)
        .unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(OUTPUT_PNG).unwrap();
        let mut bytes = t.get(id).unwrap().unwrap().value().to_vec();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xFF;
        t.insert(id, bytes.as_slice()).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn store_check_finds_damaged_outputs_and_export_leaves_them_out() {
    let env = Env::new();
    one_run(&env);
    one_run(&env);
    one_run(&env);
    let o = env.run(&["store", "check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("3 output(s) checked, 0 bad"),
        "{}",
        stdout(&o)
    );
    damage_output(&env.store(), 2);
    let o = env.run(&["store", "check"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("bad output 2: image:"), "{text}");
    assert!(text.contains("3 output(s) checked, 1 bad"), "{text}");
    // Export leaves the bad one out and says so.
    let dataset = env.dir.path().join("dataset");
    let o = env.run(&[
        "export",
        "--format",
        "folder",
        "--out",
        dataset.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The two sound outputs are identical re-runs: exported once (dedupe), the copy counted.
    assert!(
        stdout(&o).contains("exported 1 image(s)") && stdout(&o).contains("1 duplicate(s)"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("left out 1 bad") && err.contains("output 2"),
        "{err}"
    );
    // --strict refuses and writes nothing.
    let strict = env.dir.path().join("strict");
    let o = env.run(&[
        "export",
        "--strict",
        "--format",
        "folder",
        "--out",
        strict.to_str().unwrap(),
    ]);
    assert_refused(&o, &["--strict", "output 2"]);
    assert!(!strict.exists());
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let env = Env::new();
    one_run(&env);
    let mut fds = [0; 2];
    // SAFETY: a valid array for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // The reader is gone before the command writes anything.
    // SAFETY: closing the read end this test just made.
    unsafe { libc::close(fds[0]) };
    // SAFETY: the write end is owned from here on by the Stdio.
    let stdout = unsafe { <Stdio as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let o = env
        .cmd()
        .args(["history", "--json"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(err.is_empty(), "stderr: {err}");
    assert!(
        o.status.signal() == Some(libc::SIGPIPE) || o.status.success(),
        "{:?}",
        o.status
    );
}

#[test]
fn writers_killed_at_random_points_lose_nothing_committed() {
    let env = Env::new();
    let graph = env.write("plate.json", &plate("sub/{item:05}.png", 256));
    // Kill points vary from run to run; the seed is printed so a failure can be replayed.
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("KILL_SEED={seed}");
    let mut state = seed | 1;
    let mut next = || {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let started = Instant::now();
    let mut committed = 0;
    for round in 0..6 {
        let mut child = env
            .cmd()
            .args([
                "run",
                graph.to_str().unwrap(),
                "--count",
                "1000",
                "--seed",
                &(round * 1000).to_string(),
                "--out",
                env.out().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200 + next() % 2500));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !env.store().exists() {
            continue;
        }
        let paths = assert_records_match_files(&env.store());
        assert!(paths.len() >= committed, "committed outputs were lost");
        committed = paths.len();
        // Every image under its final name is whole (it was complete before it got the name).
        for p in files_under(&env.out().join("sub")) {
            image::open(&p).unwrap_or_else(|e| panic!("{}: {e} (seed {seed})", p.display()));
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(committed > 0, "no run committed anything before its kill");
    // The store still takes runs and reports the killed ones.
    let o = env.run(&["history", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
