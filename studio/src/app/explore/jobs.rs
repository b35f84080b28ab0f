//! The Explore window's engine work, off the UI thread: each job opens the user's store, builds
//! the [`engine::explore::Exploration`] of the current query (features are cached in the store,
//! so only new images are embedded) and sends back what the window shows. One job at a time; the
//! app polls [`ExploreJobs::poll`] every frame.

use std::collections::BTreeMap;
use std::sync::mpsc;

use engine::explore::lite0::Lite0Embedder;
use engine::explore::{Catalog, Exploration, MapMethod, MapSpec};
use engine::Store;

use super::{Column, CoverageReadout, ExploreView};

/// What a finished job gives the window.
pub enum JobResult {
    /// A new view (a query or a map), with its status note.
    View(ExploreView),
    /// Items to select, in this order, with a note (similar items, near-duplicates).
    Select {
        ids: Vec<u64>,
        note: String,
    },
    /// A score per item to colour by (uniqueness), with a note.
    Score {
        name: String,
        values: Vec<(u64, f32)>,
        note: String,
    },
    Coverage(CoverageReadout),
    /// A message for the user (an export's summary).
    Done(String),
}

/// The job in flight, if any, and what the window is exploring.
#[derive(Default)]
pub struct ExploreJobs {
    rx: Option<mpsc::Receiver<Result<JobResult, String>>>,
    /// What the running job does (shown in the window).
    pub busy: Option<String>,
    /// The query the view shows ("" = every item).
    pub query: String,
    /// The map the view shows.
    pub spec: MapSpec,
}

impl ExploreJobs {
    /// Starts `job` on a thread unless one is running (then says so).
    pub fn start(
        &mut self,
        what: &str,
        ctx: &egui::Context,
        job: impl FnOnce() -> Result<JobResult, String> + Send + 'static,
    ) -> Result<(), String> {
        if let Some(b) = &self.busy {
            return Err(format!("Explore is busy: {b}"));
        }
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(job());
            ctx.request_repaint();
        });
        self.rx = Some(rx);
        self.busy = Some(what.to_string());
        Ok(())
    }

    /// The finished job's result, once.
    pub fn poll(&mut self) -> Option<Result<JobResult, String>> {
        let r = self.rx.as_ref()?.try_recv();
        match r {
            Ok(r) => {
                self.rx = None;
                self.busy = None;
                Some(r)
            }
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.rx = None;
                self.busy = None;
                Some(Err("the Explore job stopped without an answer".into()))
            }
        }
    }
}

/// Opens the user's store and the feature network, then runs `f` on the exploration of
/// `query`.
pub fn with_exploration<T>(
    query: &str,
    f: impl FnOnce(&Catalog, &mut Exploration) -> engine::Result<T>,
) -> Result<T, String> {
    let store = Store::open(&engine::paths::store_path()).map_err(|e| e.to_string())?;
    let net = Lite0Embedder::installed(&candle_core::Device::Cpu).map_err(|e| e.to_string())?;
    let cat = Catalog::new(&store);
    let mut ex =
        engine::explore::explore(&cat, query, &net, &mut |_, _| {}).map_err(|e| e.to_string())?;
    f(&cat, &mut ex).map_err(|e| e.to_string())
}

/// The window's view of an exploration mapped by `spec`.
pub fn view_of(ex: &mut Exploration, spec: MapSpec, query: &str) -> engine::Result<ExploreView> {
    let n = ex.ids.len();
    let (xy, xyz) = if n >= 4 {
        let coords = ex.compute_map(spec)?.to_vec();
        let d = spec.dims;
        let xy: Vec<[f32; 2]> = coords.chunks(d).map(|c| [c[0], c[1]]).collect();
        let xyz = (d == 3).then(|| coords.chunks(3).map(|c| [c[0], c[1], c[2]]).collect());
        (xy, xyz)
    } else {
        // Too few items for a map: a row.
        ((0..n).map(|i| [i as f32, 0.0]).collect(), None)
    };
    let tag_value = |i: usize, key: &str| -> Option<String> {
        let prefix = format!("{key}:");
        ex.items[i]
            .all_tags()
            .find_map(|t| t.strip_prefix(prefix.as_str()).map(str::to_string))
    };
    let mut columns = Vec::new();
    for key in [
        "label", "source", "dataset", "graph", "model", "lora", "imagenet",
    ] {
        let values: Vec<Option<String>> = (0..n).map(|i| tag_value(i, key)).collect();
        if values.iter().any(Option::is_some) {
            columns.push((key.to_string(), Column::category(&values)));
        }
    }
    let mut numbers: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for (i, item) in ex.items.iter().enumerate() {
        for (k, v) in &item.fields {
            numbers
                .entry(k.clone())
                .or_insert_with(|| vec![f32::NAN; n])[i] = *v as f32;
        }
        for (k, v) in ex.features[i].stats.columns() {
            numbers
                .entry(k.to_string())
                .or_insert_with(|| vec![f32::NAN; n])[i] = v as f32;
        }
    }
    columns.extend(numbers.into_iter().map(|(k, v)| (k, Column::Number(v))));
    let left = if ex.left_out.is_empty() {
        String::new()
    } else {
        format!(", {} left out (unreadable)", ex.left_out.len())
    };
    let what = if query.trim().is_empty() {
        "every item".to_string()
    } else {
        format!("\"{query}\"")
    };
    Ok(ExploreView {
        ids: ex.ids.clone(),
        names: ex
            .items
            .iter()
            .map(|it| {
                it.name
                    .rsplit(['/', '\\'])
                    .next()
                    .unwrap_or(&it.name)
                    .to_string()
            })
            .collect(),
        xy,
        xyz,
        method: spec.method,
        columns,
        tags: ex
            .items
            .iter()
            .map(|it| it.all_tags().map(String::from).collect())
            .collect(),
        coverage: None,
        note: format!("{what}: {n} item(s), {} map{left}", spec.method.label()),
        demo: false,
    })
}

/// A map spec from the window's choice.
pub fn spec(method: MapMethod, dims: u8) -> MapSpec {
    MapSpec {
        method,
        dims: usize::from(dims.clamp(2, 3)),
        seed: 0,
    }
}
