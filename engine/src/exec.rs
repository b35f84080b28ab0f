//! The graph executor: runs the part of a graph that the requested outputs need, in topological
//! order, and caches node outputs by input signature.
//!
//! **Cache key** (after ComfyUI's `caching.py` input signatures): a sha256 over the node's
//! `kind@version`, its effective parameters (defaults filled in, seeds resolved), the content
//! hash of every input file it reads (an asset's key is its sha256), and for each input port the
//! upstream node's key and port. A non-deterministic kind adds its node id. Editing the editor
//! layout therefore recomputes nothing, and editing one parameter recomputes that node and what
//! depends on it. Sinks (SaveImage) have side effects and always run.
//!
//! Cached outputs live under a memory budget and are evicted least-recently-used.
//!
//! **Subgraphs.** A document with subgraph or reroute nodes is flattened first
//! ([`nodes::subgraph::flatten`], which also validates them): inner nodes run under their path
//! ids (`outer › scratch-block › crack`, in events, stats and outputs), and each inner node's key
//! also hashes the chain of definition hashes it came through ([`nodes::subgraph::Flat::scopes`]).
//! So editing a definition's layout recomputes nothing, editing one exposed parameter recomputes
//! the inner nodes it sets and what depends on them, and a second instance of a definition with
//! the same parameters and inputs is a cache hit (deterministic keys hold no node id). A
//! requested subgraph node runs what its exposed outputs read and gets them under its own id.
//!
//! **Parameters fed by links.** A link into a parameter's port (declared
//! [`nodes::ParamSpec::input`], or shown as one through `param_inputs`: [`nodes::param_port`])
//! sets that parameter before the key is computed: a Text fills the parameter's text as a
//! template ([`nodes::fill_template`]), a number replaces the value (checked against the
//! parameter's range), a Seed fixes a seed, a Choice (or Text) must be one of the options. The resolved value is what the node runs with and what its key hashes,
//! and the sink hears of it ([`OutputSink::resolved_param`]) for the A1111 `parameters` text.
//!
//! **Order.** Sinks run after every other node of the run, so a node that rejects the work
//! item ([`EngineError::Rejected`]: FilterByScore, MaskFidelity) stops it before anything is
//! saved.
//!
//! **Devices.** A node parameter named `device` whose value is `auto` (after any link set it)
//! means the executor's device ([`Executor::set_device`]; a batch sets the device it resolved
//! with [`crate::devices::run_device`]: its target, else the default device), substituted into
//! the effective parameters before the key is computed, so changing the default device
//! recomputes those nodes while other nodes stay cached (docs/ARCHITECTURE.md §17).
//!
//! **Notes.** A node may record values about the work item ([`NodeCtx::note`]: a score, a
//! flag); they are kept with its cached outputs, replayed on a cache hit, returned in
//! [`RunOutcome::notes`] and handed to the sink ([`OutputSink::note`]) before any sink runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use nodes::{Catalogue, GraphDoc, NodeSpec, ParamValue};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};
use crate::image::{Image, Mask};
pub use crate::registry::{NodeFn, Registry};

mod ctx;
mod inputs;
use crate::value::{Outputs, Value};
pub use ctx::NodeCtx;
use inputs::{param_from_input, read_input_files, InputFiles};

/// A cache key: sha256 of a node's input signature.
pub type CacheKey = [u8; 32];

/// Values a node recorded about the work item ([`NodeCtx::note`]), by field name.
pub type Notes = BTreeMap<String, serde_json::Value>;

/// Progress reported while a graph runs.
#[derive(Clone, Debug)]
pub enum Event {
    NodeStarted {
        node: String,
    },
    /// Step `step` of `total` inside a node, with an optional preview image.
    NodeProgress {
        node: String,
        step: u32,
        total: u32,
        preview: Option<Arc<Image>>,
    },
    NodeFinished {
        node: String,
        seconds: f64,
        cached: bool,
    },
    NodeError {
        node: String,
        message: String,
    },
    /// A node's status line for the user (e.g. what a LoRA matched).
    NodeStatus {
        node: String,
        message: String,
    },
    /// A sink wrote a file (and, through the runner, a store record).
    Saved {
        node: String,
        path: PathBuf,
        output_id: Option<u64>,
    },
}

/// Shared flag that cancels a run: checked between nodes and at every progress step.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a sink saved.
#[derive(Clone, Debug)]
pub struct Saved {
    pub path: PathBuf,
    pub mask_path: Option<PathBuf>,
    pub output_id: Option<u64>,
}

/// Receives the images that sink nodes save (the runner writes files and store records).
pub trait OutputSink {
    /// Saves one output: `template` names the file, `label` is its defect class. `clean` is its
    /// defect-free image (SaveImage's `clean` input: the image before the defect nodes), kept
    /// with it for the anomaly dataset layouts; a sink with nowhere to keep it ignores it.
    fn save(
        &mut self,
        node: &str,
        image: &Image,
        mask: Option<&Mask>,
        clean: Option<&Image>,
        template: &str,
        label: &str,
    ) -> Result<Saved>;

    /// Stores the per-pixel instance ids (`width × height`, 0 = none) of a saved output's
    /// mask, when it came from a defect generator. Sinks without a store ignore them.
    fn save_instances(
        &mut self,
        saved: &Saved,
        width: u32,
        height: u32,
        ids: &[u32],
    ) -> Result<()> {
        let _ = (saved, width, height, ids);
        Ok(())
    }

    /// Adds a saved output to the dataset `folder` (written as `opts` say when the run ends).
    fn collect(
        &mut self,
        node: &str,
        saved: &Saved,
        opts: &crate::dataset::ExportOptions,
        folder: &str,
    ) -> Result<()> {
        let _ = (node, saved, opts, folder);
        Err(EngineError::failed("this run cannot export datasets"))
    }

    /// A value node `node` recorded about the work item ([`NodeCtx::note`]); called before any
    /// sink of the item runs. Sinks that keep records store it with the item's outputs.
    fn note(&mut self, node: &str, field: &str, value: &serde_json::Value) {
        let _ = (node, field, value);
    }

    /// Parameter `param` of node `node` was set by a link (see the module docs) to `value`.
    fn resolved_param(&mut self, node: &str, param: &str, value: &ParamValue) {
        let _ = (node, param, value);
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunRequest<'a> {
    pub doc: &'a GraphDoc,
    /// The nodes whose outputs are wanted; `None` means every sink and check
    /// ([`nodes::Catalogue::default_targets`]).
    pub targets: Option<Vec<String>>,
    /// The run seed; "from run" seed parameters resolve against it.
    pub run_seed: u64,
    /// Relative input paths resolve against this folder (the graph file's).
    pub base_dir: &'a Path,
}

/// Per-node statistics of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStat {
    pub node: String,
    pub kind: String,
    pub seconds: f64,
    pub cached: bool,
}

/// The result of a run: every executed node's outputs, and statistics in execution order.
#[derive(Clone, Debug, Default)]
pub struct RunOutcome {
    pub outputs: BTreeMap<String, Arc<Outputs>>,
    pub stats: Vec<NodeStat>,
    /// What nodes recorded about the item ([`NodeCtx::note`]), by node id.
    pub notes: BTreeMap<String, Notes>,
}

struct CacheEntry {
    outputs: Arc<Outputs>,
    notes: Arc<Notes>,
    bytes: usize,
    last_used: u64,
}

/// Node outputs by cache key, under a memory budget, evicted least-recently-used.
struct Cache {
    entries: HashMap<CacheKey, CacheEntry>,
    budget: usize,
    used: usize,
    tick: u64,
}

impl Cache {
    fn get(&mut self, key: &CacheKey) -> Option<(Arc<Outputs>, Arc<Notes>)> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|e| {
            e.last_used = tick;
            (e.outputs.clone(), e.notes.clone())
        })
    }

    fn insert(&mut self, key: CacheKey, outputs: Arc<Outputs>, notes: Arc<Notes>) {
        let bytes: usize = outputs.values().map(Value::size_bytes).sum::<usize>() + 64;
        if bytes > self.budget {
            return;
        }
        if let Some(old) = self.entries.remove(&key) {
            self.used -= old.bytes;
        }
        while self.used + bytes > self.budget {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.used -= e.bytes;
            }
        }
        self.tick += 1;
        self.used += bytes;
        self.entries.insert(
            key,
            CacheEntry {
                outputs,
                notes,
                bytes,
                last_used: self.tick,
            },
        );
    }
}

/// Runs graphs; keeps the output cache between runs.
pub struct Executor {
    catalogue: Catalogue,
    registry: Registry,
    cache: Cache,
    /// The device a node parameter `device: auto` means in the runs that follow
    /// ([`Executor::set_device`]).
    device: String,
}

/// The parameter name of a node's device, and the value that means the run's device.
const DEVICE_PARAM: &str = "device";
const AUTO_DEVICE: &str = "auto";

/// The default memory budget of the output cache.
pub const DEFAULT_CACHE_BUDGET: usize = 2 << 30;

impl Executor {
    pub fn new(catalogue: Catalogue, registry: Registry, cache_budget: usize) -> Executor {
        Executor {
            catalogue,
            registry,
            cache: Cache {
                entries: HashMap::new(),
                budget: cache_budget,
                used: 0,
                tick: 0,
            },
            device: "auto".into(),
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Bytes held by the cache, and its entry count.
    pub fn cache_usage(&self) -> (usize, usize) {
        (self.cache.used, self.cache.entries.len())
    }

    /// Sets the device that `device: auto` parameters mean from now on (`cpu`, `cuda:N`; see
    /// the module docs, "Devices").
    pub fn set_device(&mut self, device: &str) {
        self.device = device.to_string();
    }

    /// Gives a `device` parameter whose value is `auto` the executor's device (unless that is
    /// `auto` too: the node then chooses, [`crate::sd::nodes::parse_device`]).
    fn substitute_device(&self, params: &mut BTreeMap<String, ParamValue>) {
        if let Some(ParamValue::Text(d)) = params.get_mut(DEVICE_PARAM) {
            if d == AUTO_DEVICE && self.device != AUTO_DEVICE {
                d.clone_from(&self.device);
            }
        }
    }

    /// The device that `device: auto` parameters mean.
    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn clear_cache(&mut self) {
        self.cache.entries.clear();
        self.cache.used = 0;
    }

    /// Validates the graph and runs what the targets need. Events go to `emit` as they happen.
    pub fn run(
        &mut self,
        req: &RunRequest,
        mut sink: Option<&mut dyn OutputSink>,
        emit: &dyn Fn(Event),
        cancel: &CancelToken,
    ) -> Result<RunOutcome> {
        let flat = if nodes::subgraph::needs_flatten(req.doc) {
            let flat =
                nodes::subgraph::flatten(req.doc, &self.catalogue).map_err(EngineError::Invalid)?;
            nodes::validate_flat(&flat.doc, &self.catalogue).map_err(EngineError::Invalid)?;
            Some(flat)
        } else {
            nodes::validate(req.doc, &self.catalogue).map_err(EngineError::Invalid)?;
            None
        };
        let doc = flat.as_ref().map_or(req.doc, |f| &f.doc);
        // Requested subgraph (or reroute) nodes: run what their outputs read (they get those
        // outputs under their own id at the end).
        let targets: Vec<String> = match &req.targets {
            Some(t) => {
                let out = flat.as_ref().map_or_else(|| t.clone(), |f| f.targets(t));
                if let Some(id) = out.iter().find(|id| !doc.nodes.contains_key(*id)) {
                    return Err(EngineError::Plan(format!(
                        "requested node \"{id}\" is not in the graph"
                    )));
                }
                out
            }
            None => self
                .catalogue
                .default_targets(doc)
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        if targets.is_empty() {
            return Err(EngineError::Plan(
                "the graph has no output node (e.g. SaveImage), so there is nothing to run".into(),
            ));
        }
        let target_refs: Vec<&str> = targets.iter().map(String::as_str).collect();
        let order = doc
            .upstream_order(&target_refs)
            .map_err(|path| EngineError::Plan(format!("cycle: {}", path.join(" -> "))))?;
        let order = sinks_last(order, doc, &self.catalogue);

        let incoming = doc.links_by_target();
        let no_links = Vec::new();
        // Which outputs of each node this run reads: linked into a node that runs, or all of
        // a requested target's.
        let running: BTreeSet<&str> = order.iter().map(String::as_str).collect();
        let mut wanted: HashMap<&str, BTreeSet<String>> = HashMap::new();
        for l in &doc.links {
            if running.contains(l.to.node()) {
                wanted
                    .entry(l.from.node())
                    .or_default()
                    .insert(l.from.port().to_string());
            }
        }
        for t in &targets {
            if let Some(spec) = doc.nodes.get(t).and_then(|n| self.catalogue.get(&n.kind)) {
                let w = wanted.entry(t.as_str()).or_default();
                // A check run by default is run for its notes: only its linked outputs are read.
                if req.targets.is_some() || !nodes::inspect::is_check(spec) {
                    w.extend(spec.outputs.iter().map(|p| p.name.to_string()));
                }
            }
        }
        let mut keys: HashMap<String, CacheKey> = HashMap::new();
        let mut outcome = RunOutcome::default();
        for id in &order {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let node = &doc.nodes[id];
            let spec = self
                .catalogue
                .get(&node.kind)
                .ok_or_else(|| EngineError::Plan(format!("unknown kind {}", node.kind)))?;
            let fail = |message: String| EngineError::Node {
                node: id.clone(),
                kind: spec.kind.to_string(),
                message,
            };
            let links_in = incoming.get(id.as_str()).unwrap_or(&no_links);
            let mut params = nodes::typed::effective_params(spec, &node.params, req.run_seed);
            for link in links_in {
                let Some(p) = nodes::param_port(spec, node, link.to.port()) else {
                    continue;
                };
                let value = outcome
                    .outputs
                    .get(link.from.node())
                    .and_then(|o| o.get(link.from.port()))
                    .ok_or_else(|| {
                        fail(format!(
                            "parameter \"{}\": {} produced no value",
                            p.name, link.from
                        ))
                    })?;
                let template = params
                    .get(p.name)
                    .cloned()
                    .unwrap_or_else(|| p.default_value());
                let resolved = param_from_input(p, &template, value).map_err(&fail)?;
                if let Some(s) = sink.as_deref_mut() {
                    s.resolved_param(id, p.name, &resolved);
                }
                params.insert(p.name.to_string(), resolved);
            }
            self.substitute_device(&mut params);
            let files = read_input_files(spec, &params, doc, req.base_dir).map_err(|m| {
                emit(Event::NodeError {
                    node: id.clone(),
                    message: m.clone(),
                });
                fail(m)
            })?;

            let scope = flat.as_ref().and_then(|f| f.scopes.get(id));
            let key = signature(id, spec, &params, &files, links_in, &keys, scope);
            keys.insert(id.clone(), key);

            let wanted_here = wanted.remove(id.as_str()).unwrap_or_default();
            if !spec.sink {
                if let Some((hit, notes)) = self
                    .cache
                    .get(&key)
                    .filter(|(hit, _)| wanted_here.iter().all(|p| hit.contains_key(p.as_str())))
                {
                    if let Some(s) = sink.as_deref_mut() {
                        for (field, value) in notes.iter() {
                            s.note(id, field, value);
                        }
                    }
                    if !notes.is_empty() {
                        outcome.notes.insert(id.clone(), (*notes).clone());
                    }
                    emit(Event::NodeFinished {
                        node: id.clone(),
                        seconds: 0.0,
                        cached: true,
                    });
                    outcome.stats.push(NodeStat {
                        node: id.clone(),
                        kind: spec.kind.into(),
                        seconds: 0.0,
                        cached: true,
                    });
                    outcome.outputs.insert(id.clone(), hit);
                    continue;
                }
            }

            let mut inputs = BTreeMap::new();
            for link in links_in {
                let value = outcome
                    .outputs
                    .get(link.from.node())
                    .and_then(|o| o.get(link.from.port()))
                    .cloned()
                    .ok_or_else(|| {
                        fail(format!(
                            "input \"{}\": {} produced no value",
                            link.to.port(),
                            link.from
                        ))
                    })?;
                inputs.insert(link.to.port().to_string(), value);
            }
            let f = self
                .registry
                .get(spec.kind)
                .ok_or_else(|| fail("no executor is registered for this kind".into()))?
                .clone();
            emit(Event::NodeStarted { node: id.clone() });
            let started = Instant::now();
            let mut ctx = NodeCtx {
                node: id.clone(),
                spec,
                params,
                inputs,
                files: files
                    .into_iter()
                    .map(|(k, (_, bytes))| (k, bytes))
                    .collect(),
                run_seed: req.run_seed,
                doc,
                notes: Notes::new(),
                emit,
                cancel,
                sink: match sink {
                    Some(ref mut s) => Some(&mut **s as &mut dyn OutputSink),
                    None => None,
                },
                wanted: wanted_here,
            };
            let result = f(&mut ctx).and_then(|out| check_outputs(spec, out, &ctx.wanted));
            let notes = std::mem::take(&mut ctx.notes);
            drop(ctx);
            let seconds = started.elapsed().as_secs_f64();
            if let Some(s) = sink.as_deref_mut() {
                for (field, value) in &notes {
                    s.note(id, field, value);
                }
            }
            match result {
                Ok(out) => {
                    let out = Arc::new(out);
                    let notes = Arc::new(notes);
                    if !spec.sink {
                        self.cache.insert(key, out.clone(), notes.clone());
                    }
                    if !notes.is_empty() {
                        outcome.notes.insert(id.clone(), (*notes).clone());
                    }
                    emit(Event::NodeFinished {
                        node: id.clone(),
                        seconds,
                        cached: false,
                    });
                    outcome.stats.push(NodeStat {
                        node: id.clone(),
                        kind: spec.kind.into(),
                        seconds,
                        cached: false,
                    });
                    outcome.outputs.insert(id.clone(), out);
                }
                Err(EngineError::Cancelled) => return Err(EngineError::Cancelled),
                Err(EngineError::Rejected {
                    message,
                    max_attempts,
                    ..
                }) => {
                    emit(Event::NodeStatus {
                        node: id.clone(),
                        message: format!("rejected: {message}"),
                    });
                    return Err(EngineError::Rejected {
                        node: id.clone(),
                        message,
                        max_attempts,
                    });
                }
                Err(e) => {
                    let e = match e {
                        EngineError::Node { .. } => e,
                        EngineError::Failed(m) => fail(m),
                        other => fail(other.to_string()),
                    };
                    if let EngineError::Node { message, .. } = &e {
                        emit(Event::NodeError {
                            node: id.clone(),
                            message: message.clone(),
                        });
                    }
                    return Err(e);
                }
            }
        }
        // The top-level subgraph and reroute nodes' outputs, under their own ids (for the
        // studio's previews and for requested subgraph nodes).
        let aliases = flat.iter().flat_map(|f| &f.outputs);
        for (alias, src) in aliases {
            let value = outcome
                .outputs
                .get(src.node())
                .and_then(|o| o.get(src.port()))
                .cloned();
            if let Some(v) = value {
                let mut o = outcome
                    .outputs
                    .get(alias.node())
                    .map(|o| (**o).clone())
                    .unwrap_or_default();
                o.insert(port_name(alias.port()), v);
                outcome
                    .outputs
                    .insert(alias.node().to_string(), Arc::new(o));
            }
        }
        Ok(outcome)
    }
}

/// A port name as the `&'static str` [`Outputs`] keys are: the catalogue's names are static
/// already; a subgraph's exposed output names are interned once per distinct name.
fn port_name(name: &str) -> &'static str {
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut set = match NAMES.get_or_init(Default::default).lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(n) = set.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// The run order with every sink that feeds nothing moved after the other nodes (keeping the
/// topological order of each part), so gates that reject an item run before anything saves.
fn sinks_last(order: Vec<String>, doc: &GraphDoc, catalogue: &Catalogue) -> Vec<String> {
    let feeds: BTreeSet<&str> = doc.links.iter().map(|l| l.from.node()).collect();
    let is_last_sink = |id: &String| {
        !feeds.contains(id.as_str())
            && doc
                .nodes
                .get(id)
                .and_then(|n| catalogue.get(&n.kind))
                .is_some_and(|s| s.sink)
    };
    let (sinks, mut rest): (Vec<String>, Vec<String>) = order.into_iter().partition(is_last_sink);
    rest.extend(sinks);
    rest
}

/// Resolves a path parameter against the graph's folder.
pub fn resolve_path(base_dir: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// The input signature of one node (see the module docs).
fn signature(
    id: &str,
    spec: &NodeSpec,
    params: &BTreeMap<String, ParamValue>,
    files: &InputFiles,
    links_in: &[&nodes::Link],
    keys: &HashMap<String, CacheKey>,
    scope: Option<&Vec<String>>,
) -> CacheKey {
    let mut h = Sha256::new();
    let mut field = |tag: &str, value: &[u8]| {
        h.update((tag.len() as u64).to_le_bytes());
        h.update(tag.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field("kind", spec.id().as_bytes());
    field(
        "params",
        serde_json::to_string(params).unwrap_or_default().as_bytes(),
    );
    for (name, (hash, _)) in files {
        field(name, hash.as_bytes());
    }
    let mut links: Vec<&nodes::Link> = links_in.to_vec();
    links.sort_by(|a, b| a.to.port().cmp(b.to.port()));
    for l in links {
        field("in", l.to.port().as_bytes());
        field("from_port", l.from.port().as_bytes());
        field(
            "from_key",
            keys.get(l.from.node()).map(|k| &k[..]).unwrap_or(&[]),
        );
    }
    if let Some(chain) = scope {
        // The definitions the node came through (their hashes), outermost first.
        field("scope", chain.join("/").as_bytes());
    }
    if !spec.deterministic {
        field("node", id.as_bytes());
    }
    h.finalize().into()
}

/// Checks that an executor produced every declared output with its declared type.
/// Every output the run reads is there, and every output there has its declared type.
fn check_outputs(spec: &NodeSpec, out: Outputs, wanted: &BTreeSet<String>) -> Result<Outputs> {
    for port in spec.outputs {
        match out.get(port.name) {
            None if !wanted.contains(port.name) => {}
            None => {
                return Err(EngineError::failed(format!(
                    "produced no value for output \"{}\"",
                    port.name
                )))
            }
            Some(v) if v.port_type() != port.ty => {
                return Err(EngineError::failed(format!(
                    "output \"{}\" is {}, declared {}",
                    port.name,
                    v.port_type(),
                    port.ty
                )))
            }
            Some(_) => {}
        }
    }
    Ok(out)
}

/// Keeps a copy of every embedded asset larger than `min_bytes` in the data folder's
/// `assets/<sha256>`, so a graph that refers to it by hash (an output PNG's recipe) still runs
/// on this machine.
pub fn keep_assets(doc: &GraphDoc, min_bytes: usize) {
    let dir = crate::paths::home().join("assets");
    for (sha, asset) in &doc.assets {
        if asset.external || asset.data_base64.len() / 4 * 3 <= min_bytes {
            continue;
        }
        let path = dir.join(sha);
        if path.exists() {
            continue;
        }
        if let Ok(bytes) = crate::hashing::decode_base64(&asset.data_base64) {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(&path, bytes);
        }
    }
}
