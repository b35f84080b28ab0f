//! CLIP text transformer (transformers' `CLIPTextModel` / `CLIPTextModelWithProjection`) and
//! the Stable Diffusion prompt-encoding helpers built on it.
//!
//! Weights use the transformers names. A checkpoint may store the transformer with or without
//! the `text_model.` prefix (transformers ≥ 5.6 saves a plain `CLIPTextModel` without it,
//! older versions and `CLIPTextModelWithProjection` with it); both are detected.
//!
//! Training: in [`grad_mode`](crate::sd::layers) (the LoRA trainer's text-encoder training)
//! the attention softmax is built from differentiable ops; the rest of the model (two-pass
//! layer norm, quick-GELU through `sigmoid`, erf GELU, embeddings, linears) already records a
//! backward, and weights computed from trainable `Var`s (a LoRA-merged `W + s·up·down`) keep
//! their graph since the layers use the weights as given.
//!
//! Clip skip: [`encode_sd`] takes A1111 / ComfyUI style `clip_skip` where 1 means "last layer"
//! (normal). diffusers' `clip_skip=k` selects `hidden_states[-(k+1)]`, so our `clip_skip = N`
//! equals diffusers `clip_skip = N - 1` (our 1 = diffusers `None`, our 2 = diffusers 1).

use candle_core::{bail, DType, Device, IndexOp, Module, Result, Tensor, D};
use candle_nn::{embedding, linear, linear_no_bias, Embedding, Linear, VarBuilder};
use serde::Deserialize;

use crate::sd::clip::tokenizer::ClipTokenizer;
use crate::sd::clip::weighting::{tokenize_weighted, Chunk};

fn default_vocab() -> usize {
    49408
}
fn default_max_pos() -> usize {
    77
}
fn default_act() -> String {
    "quick_gelu".to_string()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_bos() -> u32 {
    49406
}
fn default_eos() -> u32 {
    49407
}

/// The fields of transformers' `text_encoder/config.json` that the model needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    /// Token vocabulary size (49408 for every SD CLIP).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Number of position embeddings (77).
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// `"quick_gelu"` (OpenAI CLIP) or `"gelu"` (exact erf GELU, OpenCLIP).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Output width of `text_projection` (only used with a projection).
    #[serde(default)]
    pub projection_dim: Option<usize>,
    /// Decides the pooling rule: 2 (legacy configs) = argmax of the ids, otherwise the first
    /// position holding this id.
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    /// Begin-of-text id (informational).
    #[serde(default = "default_bos")]
    pub bos_token_id: u32,
    /// Padding id (informational; padding comes from the tokenizer).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

impl ClipTextConfig {
    /// Reads a transformers `config.json`.
    pub fn from_json_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| candle_core::Error::Msg(format!("reading {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| candle_core::Error::Msg(format!("parsing {}: {e}", path.display())))
    }
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    QuickGelu,
    GeluErf,
}

impl Activation {
    fn from_name(name: &str) -> Result<Self> {
        match name {
            "quick_gelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::GeluErf),
            other => bail!(
                "CLIP text config: unsupported hidden_act {other:?} (expected quick_gelu or gelu)"
            ),
        }
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
            Self::GeluErf => x.gelu_erf(),
        }
    }
}

/// LayerNorm computed in two passes (centre, then the variance of the centred values).
///
/// candle-nn's fused CPU kernel derives the variance as E[x²] − E[x]², which cancels
/// catastrophically when a row has a large mean (CLIP's residual stream does); torch's
/// kernel does not, so we keep the numerically stable form.
struct ClipLayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl ClipLayerNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vb: VarBuilder, cfg: &ClipTextConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        if cfg.num_attention_heads == 0 || !h.is_multiple_of(cfg.num_attention_heads) {
            bail!(
                "CLIP text config: hidden_size {h} not divisible by num_attention_heads {}",
                cfg.num_attention_heads
            );
        }
        Ok(Self {
            q_proj: linear(h, h, vb.pp("q_proj"))?,
            k_proj: linear(h, h, vb.pp("k_proj"))?,
            v_proj: linear(h, h, vb.pp("v_proj"))?,
            out_proj: linear(h, h, vb.pp("out_proj"))?,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
        })
    }

    fn forward(&self, x: &Tensor, causal_mask: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let split = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.q_proj.forward(x)?)?;
        let k = split(self.k_proj.forward(x)?)?;
        let v = split(self.v_proj.forward(x)?)?;
        let scale = (self.head_dim as f64).powf(-0.5);
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(causal_mask)?;
        // Differentiable in grad mode (training).
        let probs = crate::sd::layers::softmax_last_dim(&scores)?;
        let out = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))?;
        self.out_proj.forward(&out)
    }
}

struct EncoderLayer {
    layer_norm1: ClipLayerNorm,
    self_attn: Attention,
    layer_norm2: ClipLayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl EncoderLayer {
    fn new(vb: VarBuilder, cfg: &ClipTextConfig, act: Activation) -> Result<Self> {
        let h = cfg.hidden_size;
        let mlp = vb.pp("mlp");
        Ok(Self {
            layer_norm1: ClipLayerNorm::new(h, cfg.layer_norm_eps, vb.pp("layer_norm1"))?,
            self_attn: Attention::new(vb.pp("self_attn"), cfg)?,
            layer_norm2: ClipLayerNorm::new(h, cfg.layer_norm_eps, vb.pp("layer_norm2"))?,
            fc1: linear(h, cfg.intermediate_size, mlp.pp("fc1"))?,
            fc2: linear(cfg.intermediate_size, h, mlp.pp("fc2"))?,
            act,
        })
    }

    fn forward(&self, x: &Tensor, causal_mask: &Tensor) -> Result<Tensor> {
        let h = (x + self
            .self_attn
            .forward(&self.layer_norm1.forward(x)?, causal_mask)?)?;
        let m = self.fc2.forward(
            &self
                .act
                .apply(&self.fc1.forward(&self.layer_norm2.forward(&h)?)?)?,
        )?;
        h + m
    }
}

/// Outputs of [`ClipTextModel::forward`].
#[derive(Debug, Clone)]
pub struct ClipOutput {
    /// `num_hidden_layers + 1` tensors `[B, T, hidden]`: the embeddings output, then each
    /// layer's output (the last one before `final_layer_norm`), like `output_hidden_states=True`.
    pub hidden_states: Vec<Tensor>,
    /// Last layer output after `final_layer_norm`, `[B, T, hidden]`.
    pub last_hidden_state: Tensor,
    /// `last_hidden_state` at the EOS position of each row, `[B, hidden]`.
    pub pooled: Tensor,
    /// `text_projection(pooled)`, `[B, projection_dim]`, when built with a projection.
    pub text_embeds: Option<Tensor>,
}

/// CLIP text transformer, optionally with the bias-free `text_projection`.
pub struct ClipTextModel {
    token_embedding: Embedding,
    position_embedding: Embedding,
    layers: Vec<EncoderLayer>,
    final_layer_norm: ClipLayerNorm,
    text_projection: Option<Linear>,
    eos_token_id: u32,
    max_positions: usize,
    device: Device,
}

impl ClipTextModel {
    /// Builds the model from `vb` (the root of a text encoder checkpoint). The transformer is
    /// looked up under `text_model.` if `text_model.embeddings.token_embedding.weight` exists,
    /// else at the root; `text_projection.weight` is always at the root.
    pub fn new(vb: VarBuilder, cfg: &ClipTextConfig, with_projection: bool) -> Result<Self> {
        let act = Activation::from_name(&cfg.hidden_act)?;
        let tm = if vb.contains_tensor("text_model.embeddings.token_embedding.weight") {
            vb.pp("text_model")
        } else {
            vb.clone()
        };
        let emb = tm.pp("embeddings");
        let token_embedding =
            embedding(cfg.vocab_size, cfg.hidden_size, emb.pp("token_embedding"))?;
        let position_embedding = embedding(
            cfg.max_position_embeddings,
            cfg.hidden_size,
            emb.pp("position_embedding"),
        )?;
        let layers_vb = tm.pp("encoder").pp("layers");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::new(layers_vb.pp(i), cfg, act))
            .collect::<Result<Vec<_>>>()?;
        let final_layer_norm = ClipLayerNorm::new(
            cfg.hidden_size,
            cfg.layer_norm_eps,
            tm.pp("final_layer_norm"),
        )?;
        let text_projection = if with_projection {
            let Some(proj) = cfg.projection_dim else {
                bail!("CLIP text config: projection requested but projection_dim is missing")
            };
            Some(linear_no_bias(
                cfg.hidden_size,
                proj,
                vb.pp("text_projection"),
            )?)
        } else {
            None
        };
        Ok(Self {
            token_embedding,
            position_embedding,
            layers,
            final_layer_norm,
            text_projection,
            eos_token_id: cfg.eos_token_id,
            max_positions: cfg.max_position_embeddings,
            device: vb.device().clone(),
        })
    }

    /// Number of encoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the model has a `text_projection` (SDXL `text_encoder_2`).
    pub fn has_projection(&self) -> bool {
        self.text_projection.is_some()
    }

    /// Applies `final_layer_norm` (used for clip skip).
    pub fn final_layer_norm(&self, x: &Tensor) -> Result<Tensor> {
        self.final_layer_norm.forward(x)
    }

    /// Runs the transformer on `input_ids` (`[B, T]`, u32, T ≤ max_position_embeddings) with
    /// the causal mask and no padding mask (as Stable Diffusion pipelines call it).
    pub fn forward(&self, input_ids: &Tensor) -> Result<ClipOutput> {
        let (_batch, t) = input_ids.dims2()?;
        if t > self.max_positions {
            bail!(
                "CLIP text model: input_ids has {t} positions, max_position_embeddings is {}",
                self.max_positions
            );
        }
        let ids = input_ids.to_dtype(DType::U32)?;
        let positions = Tensor::arange(0u32, t as u32, &self.device)?;
        let mut x = self
            .token_embedding
            .forward(&ids)?
            .broadcast_add(&self.position_embedding.forward(&positions)?)?;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), &self.device)?.to_dtype(x.dtype())?;
        let mut hidden_states = Vec::with_capacity(self.layers.len() + 1);
        hidden_states.push(x.clone());
        for layer in &self.layers {
            x = layer.forward(&x, &mask)?;
            hidden_states.push(x.clone());
        }
        let last_hidden_state = self.final_layer_norm.forward(&x)?;

        let rows = ids.to_vec2::<u32>()?;
        let pooled = rows
            .iter()
            .enumerate()
            .map(|(i, row)| last_hidden_state.i((i, self.pool_index(row))))
            .collect::<Result<Vec<_>>>()?;
        let pooled = Tensor::stack(&pooled, 0)?;
        let text_embeds = match &self.text_projection {
            Some(p) => Some(p.forward(&pooled)?),
            None => None,
        };
        Ok(ClipOutput {
            hidden_states,
            last_hidden_state,
            pooled,
            text_embeds,
        })
    }

    /// Pooling position of one row: transformers uses `argmax(ids)` (first maximum) when the
    /// config's `eos_token_id` is the legacy 2, otherwise the first position equal to
    /// `eos_token_id` (0 if there is none, like `argmax` of an all-false mask).
    fn pool_index(&self, row: &[u32]) -> usize {
        if self.eos_token_id == 2 {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        } else {
            row.iter()
                .position(|&v| v == self.eos_token_id)
                .unwrap_or(0)
        }
    }
}

fn ids_tensor(rows: &[&[u32]], device: &Device) -> Result<Tensor> {
    let t = rows.first().map_or(0, |r| r.len());
    if rows.iter().any(|r| r.len() != t) {
        bail!("CLIP input ids: rows of different lengths");
    }
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(flat, (rows.len(), t), device)
}

/// Selects the SD1 conditioning from a forward pass: `last_hidden_state` for clip_skip ≤ 1,
/// else `final_layer_norm(hidden_states[-clip_skip])`.
fn sd_layer(model: &ClipTextModel, out: &ClipOutput, clip_skip: usize) -> Result<Tensor> {
    if clip_skip <= 1 {
        return Ok(out.last_hidden_state.clone());
    }
    let n = out.hidden_states.len();
    if clip_skip > n {
        bail!(
            "encode_sd: clip_skip {clip_skip} exceeds the {} layers of the text encoder",
            n - 1
        );
    }
    model.final_layer_norm(&out.hidden_states[n - clip_skip])
}

/// Multiplies `z` (`[1, T, C]`) by per-token weights and rescales it to keep the original mean
/// (A1111's "Original" emphasis).
///
/// The products are float32 like A1111; the two means and their ratio are accumulated in
/// float64. A1111's float32 means carry a relative error of about 1e-7 × mean|z| / |mean z|,
/// which matters when the mean is close to zero (random test models): the float64 means give
/// the exactly rounded result of the same formula.
pub fn apply_emphasis(z: &Tensor, weights: &[f32]) -> Result<Tensor> {
    let t = z.dim(1)?;
    if weights.len() != t {
        bail!("apply_emphasis: {} weights for {t} tokens", weights.len());
    }
    let mean64 =
        |x: &Tensor| -> Result<f64> { x.to_dtype(DType::F64)?.mean_all()?.to_scalar::<f64>() };
    let original_mean = mean64(z)?;
    let w = Tensor::from_slice(weights, (1, t, 1), z.device())?.to_dtype(z.dtype())?;
    let weighted = z.broadcast_mul(&w)?;
    let new_mean = mean64(&weighted)?;
    if new_mean == 0.0 {
        bail!("apply_emphasis: weighted conditioning has zero mean, cannot restore the mean");
    }
    weighted.affine(original_mean / new_mean, 0.0)
}

/// Encodes A1111 chunks with an SD1-style encoder: per chunk the clip-skipped layer, weighted
/// and mean-restored, concatenated along the sequence → `[1, 77 * chunks, hidden]`.
pub fn encode_sd_chunks(
    model: &ClipTextModel,
    chunks: &[Chunk],
    clip_skip: usize,
) -> Result<Tensor> {
    if chunks.is_empty() {
        bail!("encode_sd_chunks: no chunks");
    }
    let rows: Vec<&[u32]> = chunks.iter().map(|c| c.ids.as_slice()).collect();
    let out = model.forward(&ids_tensor(&rows, model.device())?)?;
    let z = sd_layer(model, &out, clip_skip)?;
    let parts = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| apply_emphasis(&z.narrow(0, i, 1)?, &c.weights))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&parts, 1)
}

/// SD1.x prompt encoding, `[1, T, hidden]`.
///
/// `weighting == false`: diffusers' `StableDiffusionPipeline.encode_prompt` for the positive
/// prompt (truncated to 77 tokens, T = 77). `clip_skip` is A1111 style (1 or 0 = last layer);
/// diffusers `clip_skip = clip_skip - 1`. Note diffusers ignores clip_skip for the *negative*
/// prompt (always the last layer): pass 1 for it to reproduce diffusers.
///
/// `weighting == true`: A1111's method — parse attention syntax, split into 77-token chunks,
/// encode each, multiply by the weights, restore the mean, concatenate (T = 77 × chunks).
pub fn encode_sd(
    model: &ClipTextModel,
    tokenizer: &ClipTokenizer,
    prompt: &str,
    clip_skip: usize,
    weighting: bool,
) -> Result<Tensor> {
    if weighting {
        return encode_sd_chunks(model, &tokenize_weighted(tokenizer, prompt), clip_skip);
    }
    let ids = tokenizer.encode_plain(prompt);
    let out = model.forward(&ids_tensor(&[&ids], model.device())?)?;
    sd_layer(model, &out, clip_skip)
}

/// Encodes A1111 chunks with the two SDXL encoders (`chunks1` from `tokenizer`, `chunks2`
/// from `tokenizer_2`, same count): per encoder the penultimate layer of every chunk, weighted
/// and mean-restored, concatenated along the sequence; the two encoders concatenated along
/// features. Pooled = `text_embeds` of te2 for the first chunk (unweighted), as A1111.
pub fn encode_sdxl_chunks(
    te1: &ClipTextModel,
    chunks1: &[Chunk],
    te2: &ClipTextModel,
    chunks2: &[Chunk],
) -> Result<(Tensor, Tensor)> {
    if chunks1.is_empty() || chunks1.len() != chunks2.len() {
        bail!(
            "encode_sdxl_chunks: chunk counts {} and {} must be equal and non-zero",
            chunks1.len(),
            chunks2.len()
        );
    }
    let encode = |model: &ClipTextModel, chunks: &[Chunk]| -> Result<(Tensor, ClipOutput)> {
        let rows: Vec<&[u32]> = chunks.iter().map(|c| c.ids.as_slice()).collect();
        let out = model.forward(&ids_tensor(&rows, model.device())?)?;
        let z = penultimate(&out)?;
        let parts = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| apply_emphasis(&z.narrow(0, i, 1)?, &c.weights))
            .collect::<Result<Vec<_>>>()?;
        Ok((Tensor::cat(&parts, 1)?, out))
    };
    let (z1, _) = encode(te1, chunks1)?;
    let (z2, out2) = encode(te2, chunks2)?;
    let pooled = sdxl_pooled(&out2)?.narrow(0, 0, 1)?;
    Ok((Tensor::cat(&[z1, z2], D::Minus1)?, pooled))
}

fn penultimate(out: &ClipOutput) -> Result<Tensor> {
    let n = out.hidden_states.len();
    if n < 2 {
        bail!("SDXL encoding needs at least one encoder layer");
    }
    Ok(out.hidden_states[n - 2].clone())
}

fn sdxl_pooled(out: &ClipOutput) -> Result<Tensor> {
    match &out.text_embeds {
        Some(t) => Ok(t.clone()),
        None => bail!("encode_sdxl: text_encoder_2 must be built with_projection = true"),
    }
}

/// SDXL prompt encoding: `(prompt_embeds [1, T, h1 + h2], pooled text_embeds of te2 [1, proj])`.
///
/// `weighting == false`: diffusers' `StableDiffusionXLPipeline.encode_prompt` with
/// `prompt_2 = prompt` (penultimate `hidden_states[-2]` of both encoders, no final norm,
/// T = 77). `weighting == true`: A1111's chunked weighting (see [`encode_sdxl_chunks`]).
pub fn encode_sdxl(
    te1: &ClipTextModel,
    tok1: &ClipTokenizer,
    te2: &ClipTextModel,
    tok2: &ClipTokenizer,
    prompt: &str,
    weighting: bool,
) -> Result<(Tensor, Tensor)> {
    if weighting {
        return encode_sdxl_chunks(
            te1,
            &tokenize_weighted(tok1, prompt),
            te2,
            &tokenize_weighted(tok2, prompt),
        );
    }
    let ids1 = tok1.encode_plain(prompt);
    let ids2 = tok2.encode_plain(prompt);
    let out1 = te1.forward(&ids_tensor(&[&ids1], te1.device())?)?;
    let out2 = te2.forward(&ids_tensor(&[&ids2], te2.device())?)?;
    let embeds = Tensor::cat(&[penultimate(&out1)?, penultimate(&out2)?], D::Minus1)?;
    Ok((embeds, sdxl_pooled(&out2)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_parse() {
        let cfg: ClipTextConfig = serde_json::from_str(
            r#"{"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                "num_attention_heads": 12, "eos_token_id": 2, "pad_token_id": 1}"#,
        )
        .unwrap();
        assert_eq!(cfg.hidden_act, "quick_gelu");
        assert_eq!(cfg.eos_token_id, 2);
        assert_eq!(cfg.max_position_embeddings, 77);
    }
}
