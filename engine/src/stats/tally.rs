//! The additive tallies the store keeps per (day, graph) and per (day, graph, label), and the
//! per-run state they are made of (docs/ARCHITECTURE.md §17).
//!
//! A bucket is the sum of the contributions of its runs. Every change to a run (it starts,
//! commits or deletes an output, flushes compute time, ends, has its record rewritten) is
//! applied as: take the run's contributions out, change its [`RunState`], put its new
//! contributions in ([`RunState::contributions`]). So the buckets always equal a recount of the
//! per-run states, whatever order things happen in. Compute time is kept in integer
//! microseconds, so sums are exact and independent of order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Day;
use crate::store::{NodeTiming, RunModel, RunRecord, RunStatus};

/// Microseconds of one timing: `seconds · 10⁶`, rounded; 0 for a negative or non-finite one.
pub fn micros(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1e6).round() as u64
    } else {
        0
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One node kind in a tally.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTally {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runs: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub executed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub us: u64,
}

/// One model file in a tally.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelTally {
    pub role: String,
    pub name: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runs: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub images: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub us: u64,
}

impl ModelTally {
    fn key(&self) -> (&str, &str, &str) {
        (&self.role, &self.name, &self.sha256)
    }
}

/// One device in a tally.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTally {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runs: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub us: u64,
}

/// An additive tally of runs: what one bucket holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runs: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub succeeded: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cancelled: u64,
    /// Work items finished (and kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub items: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub images: u64,
    /// Compute microseconds (nodes that computed; cache hits cost nothing).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub us: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<String, KindTally>,
    /// Sorted by (role, name, sha256).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelTally>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub devices: BTreeMap<String, DeviceTally>,
    /// Images per output label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, u64>,
}

/// `a += b` (`sign` 1) or `a -= b` (`sign` -1, saturating at 0: a bucket never goes negative;
/// `store check` reports any difference from a recount).
fn step(a: &mut u64, b: u64, add: bool) {
    *a = if add {
        a.saturating_add(b)
    } else {
        a.saturating_sub(b)
    };
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        self == &Tally::default()
    }

    /// Adds `other` to this tally.
    pub fn add(&mut self, other: &Tally) {
        self.combine(other, true);
    }

    /// Takes `other` out of this tally (entries that reach zero are dropped).
    pub fn sub(&mut self, other: &Tally) {
        self.combine(other, false);
    }

    fn combine(&mut self, o: &Tally, add: bool) {
        step(&mut self.runs, o.runs, add);
        step(&mut self.succeeded, o.succeeded, add);
        step(&mut self.failed, o.failed, add);
        step(&mut self.cancelled, o.cancelled, add);
        step(&mut self.items, o.items, add);
        step(&mut self.images, o.images, add);
        step(&mut self.us, o.us, add);
        for (k, v) in &o.kinds {
            let t = self.kinds.entry(k.clone()).or_default();
            step(&mut t.runs, v.runs, add);
            step(&mut t.executed, v.executed, add);
            step(&mut t.cached, v.cached, add);
            step(&mut t.failed, v.failed, add);
            step(&mut t.us, v.us, add);
            if t == &KindTally::default() {
                self.kinds.remove(k);
            }
        }
        for m in &o.models {
            let at = match self.models.binary_search_by(|x| x.key().cmp(&m.key())) {
                Ok(i) => i,
                Err(i) => {
                    self.models.insert(
                        i,
                        ModelTally {
                            role: m.role.clone(),
                            name: m.name.clone(),
                            sha256: m.sha256.clone(),
                            ..ModelTally::default()
                        },
                    );
                    i
                }
            };
            let t = &mut self.models[at];
            step(&mut t.runs, m.runs, add);
            step(&mut t.images, m.images, add);
            step(&mut t.us, m.us, add);
            if t.runs == 0 && t.images == 0 && t.us == 0 {
                self.models.remove(at);
            }
        }
        for (k, v) in &o.devices {
            let t = self.devices.entry(k.clone()).or_default();
            step(&mut t.runs, v.runs, add);
            step(&mut t.us, v.us, add);
            if t == &DeviceTally::default() {
                self.devices.remove(k);
            }
        }
        for (k, v) in &o.labels {
            let t = self.labels.entry(k.clone()).or_default();
            step(t, *v, add);
            if *t == 0 {
                self.labels.remove(k);
            }
        }
    }
}

/// What one node of a run has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUse {
    pub kind: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub executed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub us: u64,
}

/// Everything the statistics know about one run: its record's facts (day, graph, status,
/// models, devices) and its cumulative usage (items, per-node compute, images per label). The
/// store keeps one per run (`stats_runs`), so a run's contributions can be taken back out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub day: Day,
    pub graph: String,
    /// The status as recorded (`running` until the run's end is recorded).
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub failed_kind: Option<String>,
    /// The run's default device (normalised), if recorded.
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub models: Vec<RunModel>,
    #[serde(default)]
    pub node_devices: BTreeMap<String, String>,
    #[serde(default)]
    pub items: u64,
    /// By flat node id.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeUse>,
    #[serde(default)]
    pub images: u64,
    /// Images per (non-empty) output label.
    #[serde(default)]
    pub labels: BTreeMap<String, u64>,
}

impl RunState {
    /// Takes the record's facts (leaves the usage as it is).
    pub fn set_record(&mut self, rec: &RunRecord) {
        self.day = super::day_of_ms(rec.started_ms);
        self.graph = rec.graph_name.clone();
        self.status = Some(rec.status);
        self.failed_kind = rec.stats.failed_kind.clone();
        self.device = rec.device.as_deref().map(super::recipe::normalise_device);
        self.models = rec.stats.models.clone();
        self.node_devices = rec.stats.node_devices.clone();
    }

    /// Adds node timings (one item's, or a flush's worth) to the usage.
    pub fn add_timings<'a>(&mut self, timings: impl IntoIterator<Item = &'a NodeTiming>) {
        for t in timings {
            let u = self.nodes.entry(t.node.clone()).or_default();
            if u.kind.is_empty() {
                u.kind = t.kind.clone();
            }
            if t.cached {
                u.cached += 1;
            } else {
                u.executed += 1;
                u.us += micros(t.seconds);
            }
        }
    }

    /// Counts one output (`add`) or takes one back out.
    pub fn count_output(&mut self, label: &str, add: bool) {
        step(&mut self.images, 1, add);
        if !label.is_empty() {
            let n = self.labels.entry(label.to_string()).or_default();
            step(n, 1, add);
            if *n == 0 {
                self.labels.remove(label);
            }
        }
    }

    /// The buckets this run contributes to: its graph's (`""`) and one per label it saved an
    /// output with.
    pub fn bucket_labels(&self) -> Vec<String> {
        std::iter::once(String::new())
            .chain(self.labels.keys().cloned())
            .collect()
    }

    /// The run's contribution to its graph's bucket (`label` empty) or to a label's bucket: in
    /// a label's, only the images with that label count.
    pub fn contribution(&self, label: &str) -> Tally {
        let images = if label.is_empty() {
            self.images
        } else {
            self.labels.get(label).copied().unwrap_or(0)
        };
        let mut t = Tally {
            runs: 1,
            items: self.items,
            images,
            ..Tally::default()
        };
        match self.status {
            Some(RunStatus::Succeeded) => t.succeeded = 1,
            Some(RunStatus::Failed) => t.failed = 1,
            Some(RunStatus::Cancelled) => t.cancelled = 1,
            _ => {}
        }
        if label.is_empty() {
            t.labels = self.labels.clone();
        } else if images > 0 {
            t.labels.insert(label.to_string(), images);
        }
        for u in self.nodes.values() {
            t.us += u.us;
            let k = t.kinds.entry(u.kind.clone()).or_default();
            k.executed += u.executed;
            k.cached += u.cached;
            k.us += u.us;
            if u.executed + u.cached > 0 {
                k.runs = 1;
            }
        }
        for (node, u) in &self.nodes {
            if u.us > 0 {
                let device = self
                    .node_devices
                    .get(node)
                    .map_or("cpu", String::as_str)
                    .to_string();
                t.devices.entry(device).or_default().us += u.us;
            }
        }
        if let Some(kind) = &self.failed_kind {
            let k = t.kinds.entry(kind.clone()).or_default();
            k.failed += 1;
            k.runs = 1;
        }
        if let Some(d) = &self.device {
            t.devices.entry(d.clone()).or_default().runs += 1;
        }
        let mut models: Vec<ModelTally> = Vec::new();
        for m in &self.models {
            let us = m
                .nodes
                .iter()
                .filter_map(|n| self.nodes.get(n))
                .map(|u| u.us)
                .sum();
            models.push(ModelTally {
                role: m.role.clone(),
                name: m.name.clone(),
                sha256: m.sha256.clone(),
                runs: 1,
                images,
                us,
            });
        }
        // Sorted as `Tally::combine` keeps them (`recipe::analyse` lists each model once).
        models.sort_by(|a, b| a.key().cmp(&b.key()));
        t.models = models;
        t
    }
}
