//! [`NodeCtx`]: what a node's executor works with (its parameters, inputs, input files,
//! progress, cancellation and the output sink), as the [`super::Executor`] hands it over.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use nodes::{GraphDoc, NodeSpec, ParamValue};

use super::{CancelToken, Event, Notes, OutputSink, Saved};
use crate::error::{EngineError, Result};
use crate::image::{Image, Mask};
use crate::value::Value;

/// The context a node's executor works with: its parameters, inputs, input files, progress.
pub struct NodeCtx<'a> {
    pub node: String,
    pub spec: &'static NodeSpec,
    pub(super) params: BTreeMap<String, ParamValue>,
    pub(super) inputs: BTreeMap<String, Value>,
    pub(super) files: HashMap<String, Arc<Vec<u8>>>,
    pub run_seed: u64,
    /// The graph being run (as this work item runs it), for nodes that describe their
    /// upstream (Caption's recipe mode).
    pub(super) doc: &'a GraphDoc,
    /// What the node recorded about the work item ([`NodeCtx::note`]).
    pub(super) notes: Notes,
    pub(super) emit: &'a dyn Fn(Event),
    pub(super) cancel: &'a CancelToken,
    pub(super) sink: Option<&'a mut dyn OutputSink>,
    /// The outputs something in this run reads (every output for a requested target).
    pub(super) wanted: BTreeSet<String>,
}

impl<'a> NodeCtx<'a> {
    /// Whether anything in this run reads output `port`. A node may leave out an expensive
    /// output nobody reads; its cache entry then lacks that output, and a later run that reads
    /// it computes the node again.
    pub fn wants(&self, port: &str) -> bool {
        self.wanted.contains(port)
    }

    /// The graph being run, as this work item runs it (its overrides applied).
    pub fn graph(&self) -> &GraphDoc {
        self.doc
    }

    /// Records a value about the work item (a score, a flag): kept with the node's cached
    /// outputs, stored with the item's saved outputs, reported in the run's summary.
    pub fn note(&mut self, field: &str, value: impl Into<serde_json::Value>) {
        self.notes.insert(field.to_string(), value.into());
    }

    /// An error that rejects the work item: the batch runner retries it with the next retry
    /// seed, up to `max_attempts` tries in all (see [`EngineError::Rejected`]).
    pub fn reject(&self, message: impl Into<String>, max_attempts: u32) -> EngineError {
        EngineError::Rejected {
            node: self.node.clone(),
            message: message.into(),
            max_attempts,
        }
    }

    /// The node's effective parameters (defaults filled in, seeds resolved, colours as
    /// `[r, g, b]`) deserialised into `P`; see [`nodes::typed`]. Errors name the parameter.
    pub fn params<P: serde::de::DeserializeOwned>(&self) -> Result<P> {
        nodes::typed::from_params(self.spec, &self.params, self.run_seed)
            .map_err(EngineError::failed)
    }

    // The string getters below predate [`NodeCtx::params`]; every registered kind is typed
    // now, and only the fake kind of `engine/benches/engine.rs` still uses them. To be
    // removed with that use.

    fn param(&self, name: &str) -> Result<&ParamValue> {
        self.params
            .get(name)
            .ok_or_else(|| EngineError::failed(format!("parameter \"{name}\" is not declared")))
    }

    pub fn int(&self, name: &str) -> Result<i64> {
        match self.param(name)? {
            ParamValue::Int(i) => Ok(*i),
            ParamValue::Float(f) => Ok(f.round() as i64),
            other => Err(EngineError::failed(format!(
                "parameter \"{name}\": {} is not an integer",
                nodes::clip(&other.to_json())
            ))),
        }
    }

    pub fn float(&self, name: &str) -> Result<f64> {
        let p = self.param(name)?;
        p.as_f64().ok_or_else(|| {
            EngineError::failed(format!(
                "parameter \"{name}\": {} is not a number",
                nodes::clip(&p.to_json())
            ))
        })
    }

    pub fn text(&self, name: &str) -> Result<&str> {
        let p = self.param(name)?;
        p.as_str().ok_or_else(|| {
            EngineError::failed(format!(
                "parameter \"{name}\": {} is not text",
                nodes::clip(&p.to_json())
            ))
        })
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.param(name)? {
            ParamValue::Bool(b) => Ok(*b),
            other => Err(EngineError::failed(format!(
                "parameter \"{name}\": {} is not true/false",
                nodes::clip(&other.to_json())
            ))),
        }
    }

    /// A seed parameter, already resolved against the run seed.
    pub fn seed(&self, name: &str) -> Result<u64> {
        let p = self.param(name)?;
        p.as_seed()
            .map(|s| s.resolve(self.run_seed))
            .ok_or_else(|| {
                EngineError::failed(format!(
                    "parameter \"{name}\": {} is not a seed",
                    nodes::clip(&p.to_json())
                ))
            })
    }

    /// A colour parameter as sRGB 0..1.
    pub fn color(&self, name: &str) -> Result<[f32; 3]> {
        let t = self.text(name)?;
        nodes::parse_hex_color(t).ok_or_else(|| {
            EngineError::failed(format!(
                "parameter \"{name}\": {} is not #rrggbb",
                nodes::quote(t)
            ))
        })
    }

    /// The value on an input port, if connected.
    pub fn input(&self, port: &str) -> Option<&Value> {
        self.inputs.get(port)
    }

    pub fn image(&self, port: &str) -> Result<Arc<Image>> {
        self.opt_image(port)?
            .ok_or_else(|| EngineError::failed(format!("input \"{port}\" is not connected")))
    }

    pub fn opt_image(&self, port: &str) -> Result<Option<Arc<Image>>> {
        match self.inputs.get(port) {
            None => Ok(None),
            Some(v) => v
                .as_image()
                .cloned()
                .map(Some)
                .ok_or_else(|| EngineError::failed(format!("input \"{port}\" is not an image"))),
        }
    }

    pub fn mask(&self, port: &str) -> Result<Arc<Mask>> {
        self.opt_mask(port)?
            .ok_or_else(|| EngineError::failed(format!("input \"{port}\" is not connected")))
    }

    pub fn opt_mask(&self, port: &str) -> Result<Option<Arc<Mask>>> {
        match self.inputs.get(port) {
            None => Ok(None),
            Some(v) => v
                .as_mask()
                .cloned()
                .map(Some)
                .ok_or_else(|| EngineError::failed(format!("input \"{port}\" is not a mask"))),
        }
    }

    /// The bytes of the file named by an input-file parameter (read once, when the cache key
    /// was computed).
    pub fn file(&self, param: &str) -> Result<Arc<Vec<u8>>> {
        self.files.get(param).cloned().ok_or_else(|| {
            EngineError::failed(format!("parameter \"{param}\": no file was chosen"))
        })
    }

    /// A status line for the user, shown on the node (studio) and printed by the CLI.
    pub fn status(&self, message: impl Into<String>) {
        (self.emit)(Event::NodeStatus {
            node: self.node.clone(),
            message: message.into(),
        });
    }

    /// Reports step `step` of `total`; returns `Err(Cancelled)` once the run is cancelled, so a
    /// long node stops within one step.
    pub fn progress(&self, step: u32, total: u32, preview: Option<Arc<Image>>) -> Result<()> {
        (self.emit)(Event::NodeProgress {
            node: self.node.clone(),
            step,
            total,
            preview,
        });
        if self.cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Hands an image (and its mask and clean image) to the run's sink. Only sink kinds call
    /// this.
    pub fn save(
        &mut self,
        image: &Image,
        mask: Option<&Mask>,
        clean: Option<&Image>,
        template: &str,
        label: &str,
    ) -> Result<Saved> {
        let node = self.node.clone();
        let sink = self
            .sink
            .as_deref_mut()
            .ok_or_else(|| EngineError::failed("this run has no output folder to save into"))?;
        let saved = sink.save(&node, image, mask, clean, template, label)?;
        (self.emit)(Event::Saved {
            node,
            path: saved.path.clone(),
            output_id: saved.output_id,
        });
        Ok(saved)
    }

    /// Hands the instance ids of the mask on input `port` (if it carries them) to the sink,
    /// for the output `saved`.
    pub fn save_instances(&mut self, saved: &Saved, port: &str) -> Result<()> {
        let Some(v) = self.inputs.get(port) else {
            return Ok(());
        };
        let (Some(mask), Some(ids)) = (v.as_mask().cloned(), v.instance_ids().cloned()) else {
            return Ok(());
        };
        match self.sink.as_deref_mut() {
            Some(sink) => sink.save_instances(saved, mask.width, mask.height, &ids),
            None => Ok(()),
        }
    }

    /// Adds an output saved by this node to a dataset written at the end of the run.
    pub fn collect(
        &mut self,
        saved: &Saved,
        opts: &crate::dataset::ExportOptions,
        folder: &str,
    ) -> Result<()> {
        let node = self.node.clone();
        let sink = self
            .sink
            .as_deref_mut()
            .ok_or_else(|| EngineError::failed("this run has no output folder"))?;
        sink.collect(&node, saved, opts, folder)
    }
}
