//! The Models window's background work: scanning the model folders (hashing new files through
//! the manager's hash cache), fetching a model, hashing a located file, checking an opened
//! graph's references. Each job is a thread that sends [`JobMsg`]s and asks for a repaint; the
//! UI thread reads them with [`Jobs::try_recv`] and never touches the files itself.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};

use engine::models::manager::ModelManager;
use nodes::ModelRef;

use super::missing::MissingRow;
use super::Entry;

/// What a background job reports.
pub enum JobMsg {
    /// A status line (which file is being hashed, a fetch's steps), with the fraction done
    /// when it is known (hashing).
    Progress(String, Option<f32>),
    Scanned(Result<Vec<Entry>, String>),
    Fetched(String, Result<PathBuf, String>),
    /// The references of the opened graph (request `seq`) that are not found.
    Missing(Vec<MissingRow>),
    /// How much of the file located for missing row `row` is hashed (0..=1).
    HashProgress {
        row: usize,
        fraction: f32,
    },
    /// The sha256 of the file located for missing row `row`.
    Hashed {
        row: usize,
        path: PathBuf,
        result: Result<String, String>,
    },
}

/// The channel the jobs send on, and which jobs are running.
pub struct Jobs {
    tx: Sender<(u64, JobMsg)>,
    rx: Receiver<(u64, JobMsg)>,
    pub scanning: bool,
    pub fetching: Option<String>,
    hashing: usize,
    checking: bool,
    /// The reference check whose answer is wanted (an older one's is dropped).
    refs_seq: u64,
}

impl Default for Jobs {
    fn default() -> Jobs {
        let (tx, rx) = channel();
        Jobs {
            tx,
            rx,
            scanning: false,
            fetching: None,
            hashing: 0,
            checking: false,
            refs_seq: 0,
        }
    }
}

/// Runs `job` on a thread with a sender that repaints `ctx` after each message.
fn spawn(
    ctx: &egui::Context,
    tx: &Sender<(u64, JobMsg)>,
    seq: u64,
    job: impl FnOnce(&dyn Fn(JobMsg)) + Send + 'static,
) {
    let (ctx, tx) = (ctx.clone(), tx.clone());
    std::thread::spawn(move || {
        let send = |m: JobMsg| {
            let _ = tx.send((seq, m));
            ctx.request_repaint();
        };
        job(&send);
    });
}

/// Scans the model folders; `send` gets a progress line per file being hashed (at most one per
/// percent).
fn scan(send: &dyn Fn(JobMsg)) -> Result<Vec<Entry>, String> {
    let manager = ModelManager::default_dirs();
    let mut last = (PathBuf::new(), u64::MAX);
    let list = manager
        .scan(&mut |path: &Path, done, total| {
            let pct = done * 100 / total.max(1);
            if path != last.0 || pct != last.1 {
                last = (path.to_path_buf(), pct);
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                send(JobMsg::Progress(
                    format!("hashing {name}: {pct}%"),
                    Some(pct as f32 / 100.0),
                ));
            }
        })
        .map_err(|e| e.to_string())?;
    let mut entries: Vec<Entry> = list
        .into_iter()
        .map(|info| {
            let name = manager.relative_name(&info.path);
            Entry::new(info, name)
        })
        .collect();
    // Thumbnails: the newest outputs of runs that used each model (by hash). A store that
    // cannot be read leaves them out.
    let store_path = engine::paths::store_path();
    if let Ok(store) = engine::Store::open_read_only(&store_path) {
        if let Ok(using) = engine::models::browse::outputs_using(&store, THUMBS) {
            for e in &mut entries {
                let ids = using.get(&e.info.sha256.to_lowercase());
                e.thumbs = ids
                    .into_iter()
                    .flatten()
                    .filter_map(|id| store.output_png(*id).ok().flatten())
                    .filter_map(|png| thumbnail(&png))
                    .collect();
            }
        }
    }
    Ok(entries)
}

/// Thumbnails per model.
const THUMBS: usize = 4;
/// Their longer side, in pixels.
const THUMB_PX: f32 = 96.0;

/// A PNG decoded and scaled down for a thumbnail.
fn thumbnail(png: &[u8]) -> Option<egui::ColorImage> {
    let img = engine::codec::decode_image(png, "output").ok()?;
    let s = (THUMB_PX / img.width.max(img.height) as f32).min(1.0);
    let small = engine::ops::resize_image(
        &img,
        ((img.width as f32 * s) as u32).max(1),
        ((img.height as f32 * s) as u32).max(1),
        engine::ops::Filter::Bilinear,
    );
    Some(crate::app::painter::image_to_color(&small))
}

/// Hashes the file located for missing row `row` (through `manager`'s hash cache), sending
/// its progress at most once per percent, then the result.
fn hash_located(manager: &ModelManager, row: usize, path: PathBuf, send: &dyn Fn(JobMsg)) {
    let result = if path.is_file() {
        let mut last = None;
        manager
            .sha256_with_progress(&path, &mut |done, total| {
                let pct = done * 100 / total.max(1);
                if last != Some(pct) {
                    last = Some(pct);
                    let fraction = pct as f32 / 100.0;
                    send(JobMsg::HashProgress { row, fraction });
                }
            })
            .map_err(|e| e.to_string())
    } else {
        Err(format!("{} is not a file", path.display()))
    };
    send(JobMsg::Hashed { row, path, result });
}

impl Jobs {
    /// The next message of a current job, if one has arrived.
    pub fn try_recv(&mut self) -> Option<JobMsg> {
        loop {
            let (seq, msg) = self.rx.try_recv().ok()?;
            match &msg {
                JobMsg::Scanned(_) => self.scanning = false,
                JobMsg::Fetched(..) => self.fetching = None,
                JobMsg::Hashed { .. } => self.hashing = self.hashing.saturating_sub(1),
                JobMsg::Missing(_) => {
                    if seq != self.refs_seq {
                        continue;
                    }
                    self.checking = false;
                }
                JobMsg::Progress(..) | JobMsg::HashProgress { .. } => {}
            }
            return Some(msg);
        }
    }

    pub fn busy(&self) -> bool {
        self.scanning || self.fetching.is_some() || self.hashing > 0 || self.checking
    }

    pub fn scan(&mut self, ctx: &egui::Context) {
        if self.scanning {
            return;
        }
        self.scanning = true;
        spawn(ctx, &self.tx, 0, |send| send(JobMsg::Scanned(scan(send))));
    }

    pub fn fetch(&mut self, ctx: &egui::Context, name: &str) {
        if self.fetching.is_some() {
            return;
        }
        self.fetching = Some(name.to_string());
        let name = name.to_string();
        spawn(ctx, &self.tx, 0, move |send| {
            let models = engine::paths::models_dir();
            let cache = engine::models::browse::cache_dir();
            let result = engine::models::browse::fetch(&name, &models, &cache, &mut |line| {
                send(JobMsg::Progress(format!("{name}: {line}"), None))
            });
            send(JobMsg::Fetched(name, result.map_err(|e| e.to_string())));
        });
    }

    pub fn hash(&mut self, ctx: &egui::Context, row: usize, path: PathBuf) {
        self.hashing += 1;
        spawn(ctx, &self.tx, 0, move |send| {
            hash_located(&ModelManager::default_dirs(), row, path, send)
        });
    }

    /// Looks for `refs` in the model folders (by hash, then name); sends the missing ones.
    pub fn check_refs(&mut self, ctx: &egui::Context, refs: Vec<ModelRef>) {
        self.refs_seq += 1;
        if refs.is_empty() {
            self.checking = false;
            return;
        }
        self.checking = true;
        spawn(ctx, &self.tx, self.refs_seq, move |send| {
            let manager = ModelManager::default_dirs();
            let rows = match manager.scan(&mut |_, _, _| {}) {
                Ok(models) => manager
                    .missing(&models, &refs)
                    .into_iter()
                    .map(|(r, same)| MissingRow::new(r, same.map(|m| m.path.clone())))
                    .collect(),
                // The folders cannot be read: every reference is missing, and the dialog says
                // why on each row.
                Err(e) => refs
                    .into_iter()
                    .map(|r| {
                        let mut row = MissingRow::new(r, None);
                        row.state = super::RowState::Error(e.to_string());
                        row
                    })
                    .collect(),
            };
            send(JobMsg::Missing(rows));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A 10 MiB file is hashed in three reads: the row gets rising fractions ending at 1, then
    /// the sha256 (`sha256sum` of 10 MiB of zeros); the second time the hash cache answers,
    /// with no progress.
    #[test]
    fn a_located_file_reports_its_hashing_progress() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.safetensors");
        std::fs::write(&path, vec![0u8; 10 << 20]).unwrap();
        let manager = ModelManager::new(vec![dir.path().into()], dir.path().join("hashes.json"));
        let run = || {
            let msgs = RefCell::new(Vec::new());
            hash_located(&manager, 3, path.clone(), &|m| msgs.borrow_mut().push(m));
            msgs.into_inner()
        };
        let msgs = run();
        let fractions: Vec<f32> = msgs
            .iter()
            .filter_map(|m| match m {
                JobMsg::HashProgress { row: 3, fraction } => Some(*fraction),
                _ => None,
            })
            .collect();
        assert_eq!(fractions.len(), 3, "{fractions:?}");
        assert!(fractions.windows(2).all(|w| w[0] < w[1]), "{fractions:?}");
        assert_eq!(fractions.last(), Some(&1.0));
        const ZEROS_10MIB: &str =
            "e5b844cc57f57094ea4585e235f36c78c1cd222262bb89d53c94dcb4d6b3e55d";
        let answer = |msgs: &[JobMsg]| match msgs.last() {
            Some(JobMsg::Hashed { row: 3, result, .. }) => result.clone(),
            _ => Err("no answer last".into()),
        };
        assert_eq!(answer(&msgs), Ok(ZEROS_10MIB.to_string()));
        let again = run();
        assert_eq!(again.len(), 1, "the cache answers without hashing");
        assert_eq!(answer(&again), Ok(ZEROS_10MIB.to_string()));

        let gone = RefCell::new(Vec::new());
        hash_located(&manager, 0, dir.path().join("gone"), &|m| {
            gone.borrow_mut().push(m)
        });
        assert!(
            matches!(&gone.borrow()[..], [JobMsg::Hashed { result: Err(e), .. }] if e.contains("is not a file"))
        );
    }
}
