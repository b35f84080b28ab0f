//! Saving the LoRA (kohya's layout) and saving or restoring a training checkpoint: the
//! adapters, the AdamW moments, the step, the generator state and the config fingerprint.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use super::{ce, io, LoraTrainer};
use crate::error::{EngineError, Result};
use crate::sd::torch_rng::{GeneratorState, TorchGenerator};

impl LoraTrainer<'_> {
    /// The LoRA tensors in kohya's layout (`lora_down`, `lora_up`, `alpha`), in f32.
    pub fn lora_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        let alpha = Tensor::new(self.cfg.alpha as f32, &Device::Cpu).map_err(ce)?;
        for a in &self.adapters {
            let cpu = |v: &Var| {
                v.as_tensor()
                    .detach()
                    .to_device(&Device::Cpu)
                    .and_then(|t| t.to_dtype(DType::F32))
            };
            let (ds, us) = a.kohya_shapes();
            out.insert(
                format!("{}.lora_down.weight", a.name),
                cpu(&a.down)
                    .and_then(|t| t.reshape(ds.as_slice()))
                    .map_err(ce)?,
            );
            out.insert(
                format!("{}.lora_up.weight", a.name),
                cpu(&a.up)
                    .and_then(|t| t.reshape(us.as_slice()))
                    .map_err(ce)?,
            );
            out.insert(format!("{}.alpha", a.name), alpha.clone());
        }
        Ok(out)
    }

    /// Writes the LoRA (kohya format, `save_dtype`, `ss_*` metadata) atomically.
    pub fn save_lora(&self, path: &Path) -> Result<()> {
        let tensors = self
            .lora_tensors()?
            .into_iter()
            .map(|(k, t)| {
                let t = if k.ends_with(".alpha") {
                    t
                } else {
                    t.to_dtype(self.cfg.save_dtype).map_err(ce)?
                };
                Ok((k, t))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        io::write_safetensors(path, &tensors, &self.metadata())
    }

    /// Writes a checkpoint: the LoRA tensors (f32), the AdamW moments (`optimizer.m.<key>`,
    /// `optimizer.v.<key>`), the generator words (`trainer.rng_mt`) and, in the metadata, the
    /// step, the AdamW step, the generator position and cached normal, and the config
    /// fingerprint a resume must match.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let mut tensors = self.lora_tensors()?;
        for (i, a) in self.adapters.iter().enumerate() {
            for (j, part) in ["lora_down", "lora_up"].iter().enumerate() {
                let k = 2 * i + j;
                let cpu = |t: &Tensor| t.to_device(&Device::Cpu).map_err(ce);
                tensors.insert(
                    format!("optimizer.m.{}.{part}.weight", a.name),
                    cpu(&self.opt.m[k])?,
                );
                tensors.insert(
                    format!("optimizer.v.{}.{part}.weight", a.name),
                    cpu(&self.opt.v[k])?,
                );
            }
        }
        let st = self.gen.state();
        tensors.insert(
            "trainer.rng_mt".into(),
            Tensor::from_vec(st.mt.clone(), st.mt.len(), &Device::Cpu).map_err(ce)?,
        );
        let mut meta = self.metadata();
        meta.insert("trainer.step".into(), self.step.to_string());
        meta.insert("trainer.adam_t".into(), self.opt.t.to_string());
        meta.insert("trainer.rng_index".into(), st.index.to_string());
        meta.insert(
            "trainer.rng_cached".into(),
            st.cached_normal
                .map(|v| format!("{:016x}", v.to_bits()))
                .unwrap_or_else(|| "none".into()),
        );
        meta.insert(
            "trainer.rng_kernel".into(),
            format!("{:?}", self.gen.kernel()),
        );
        meta.insert("trainer.fingerprint".into(), self.cfg.fingerprint());
        io::write_safetensors(path, &tensors, &meta)
    }

    /// Restores a checkpoint written by [`save_checkpoint`](Self::save_checkpoint) for the
    /// same model, data and configuration (the step count may differ).
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let bad = |m: String| EngineError::failed(format!("{}: {m}", path.display()));
        let header = crate::models::manager::read_header(path)?;
        let meta = &header.metadata;
        let get = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| bad(format!("not a training checkpoint (no {k})")))
        };
        let fp = get("trainer.fingerprint")?;
        if !self.cfg.fingerprint_matches(&fp) {
            return Err(bad(format!(
                "was made with other training settings ({fp}); now: {}",
                self.cfg.fingerprint()
            )));
        }
        let num = |k: &str| -> Result<usize> {
            get(k)?
                .parse::<usize>()
                .map_err(|e| bad(format!("{k}: {e}")))
        };
        let step = num("trainer.step")?;
        let adam_t = num("trainer.adam_t")?;
        let index = num("trainer.rng_index")?;
        let cached = match get("trainer.rng_cached")?.as_str() {
            "none" => None,
            hex => Some(f64::from_bits(
                u64::from_str_radix(hex, 16)
                    .map_err(|e| bad(format!("trainer.rng_cached: {e}")))?,
            )),
        };
        let tensors = candle_core::safetensors::load(path, &self.model.device)
            .map_err(|e| bad(e.to_string()))?;
        let take = |k: &str| {
            tensors
                .get(k)
                .cloned()
                .ok_or_else(|| bad(format!("tensor {k} is missing")))
        };
        let mt = take("trainer.rng_mt")?
            .to_vec1::<u32>()
            .map_err(|e| bad(format!("trainer.rng_mt: {e}")))?;
        let gen = TorchGenerator::from_state(&GeneratorState {
            mt,
            index,
            cached_normal: cached,
            kernel: self.gen.kernel(),
        })
        .ok_or_else(|| bad("trainer.rng_mt: malformed generator state".into()))?;
        let mut restored = Vec::new();
        for a in &self.adapters {
            for (part, var) in [("lora_down", &a.down), ("lora_up", &a.up)] {
                let key = format!("{}.{part}.weight", a.name);
                let want = var.as_tensor().dims().to_vec();
                let mut fetched = Vec::with_capacity(3);
                for k in [
                    key.clone(),
                    format!("optimizer.m.{key}"),
                    format!("optimizer.v.{key}"),
                ] {
                    let t = take(&k)?;
                    // The LoRA tensors are stored in kohya's (4-D for convs) layout.
                    if t.elem_count() != want.iter().product::<usize>() {
                        return Err(bad(format!(
                            "{k}: shape {:?}, expected {:?}",
                            t.dims(),
                            want
                        )));
                    }
                    fetched.push(t.reshape(want.as_slice()).map_err(|e| bad(e.to_string()))?);
                }
                let (Some(v), Some(m), Some(w)) = (fetched.pop(), fetched.pop(), fetched.pop())
                else {
                    return Err(bad(format!("{key}: incomplete")));
                };
                restored.push((var.clone(), w, m, v));
            }
        }
        for (i, (var, w, m, v)) in restored.into_iter().enumerate() {
            var.set(&w.to_dtype(DType::F32).map_err(ce)?).map_err(ce)?;
            self.opt.m[i] = m.to_dtype(DType::F32).map_err(ce)?;
            self.opt.v[i] = v.to_dtype(DType::F32).map_err(ce)?;
        }
        self.opt.t = adam_t;
        self.step = step;
        self.gen = gen;
        Ok(())
    }
}
