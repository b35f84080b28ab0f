//! `generate` and `remove-bg`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::progress_bar;

/// The options of `generate` (DESIGN.md §3).
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Checkpoint: a .safetensors file, a diffusers folder, or a name in the model folders.
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub prompt: String,
    #[arg(long)]
    pub negative: Option<String>,
    /// Default: the init image's width, else the model's native size. A multiple of 8.
    #[arg(long)]
    pub width: Option<u32>,
    #[arg(long)]
    pub height: Option<u32>,
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 7.5)]
    pub cfg: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lms, pndm, unipc (default: the
    /// model's scheduler config).
    #[arg(long)]
    pub scheduler: Option<String>,
    #[arg(long = "init-image")]
    pub init_image: Option<PathBuf>,
    #[arg(long, default_value_t = 0.8)]
    pub strength: f64,
    /// Inpainting mask (white = repaint); must have the init image's size.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Blur (Gaussian sigma, px) of the mask used to paste the result over the input.
    #[arg(long = "mask-blur", default_value_t = 0.0)]
    pub mask_blur: f32,
    /// Inpaint a padded crop around the mask at --width×--height, then paste it back.
    #[arg(long = "only-masked")]
    pub only_masked: bool,
    #[arg(long, default_value_t = 32)]
    pub padding: u32,
    /// Apply a LoRA: PATH:WEIGHT[:TEXT_WEIGHT] (a path or a name in the model folders).
    /// Repeatable; stacked in order.
    #[arg(long = "lora", value_name = "PATH:WEIGHT[:TE_WEIGHT]")]
    pub lora: Vec<String>,
    /// A separate VAE file.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// 1 = the text encoder's last layer, 2 = penultimate (A1111 numbering).
    #[arg(long = "clip-skip", default_value_t = 1)]
    pub clip_skip: usize,
    /// A1111-style (word:1.3) weights and prompts longer than 75 tokens.
    #[arg(long = "prompt-weighting")]
    pub prompt_weighting: bool,
    /// diffusers' num_images_per_prompt; files are OUT-0.png, OUT-1.png, …
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, f16 or bf16 (default: f32 on the CPU, f16 on CUDA).
    #[arg(long)]
    pub dtype: Option<String>,
    /// A diffusers folder whose config.json files describe a single-file checkpoint.
    #[arg(long = "config-dir", hide = true)]
    pub config_dir: Option<PathBuf>,
    /// epsilon or v_prediction (default: the scheduler config's).
    #[arg(long)]
    pub prediction: Option<String>,
    #[arg(long)]
    pub out: PathBuf,
}

pub(crate) fn remove_bg_cmd(
    input: &Path,
    out: &Path,
    mask_out: Option<&Path>,
    model: &str,
    refine: &engine::models::background::Refine,
) -> Result<i32> {
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let (w, h, rgb, alpha_in) =
        engine::codec::decode_rgb8(&bytes, &input.display().to_string()).map_err(|e| anyhow!(e))?;
    drop(bytes);
    let net = engine::models::background::load_isnet(model)?;
    let mask = engine::models::background::alpha_mask(&net, &rgb, w, h, refine)?;
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut rgba = Vec::with_capacity(rgb.len() / 3 * 4);
    for (i, p) in rgb.chunks_exact(3).enumerate() {
        let a = to_u8(mask.data[i]);
        let a = match &alpha_in {
            Some(src) => ((u16::from(a) * u16::from(src[i]) + 127) / 255) as u8,
            None => a,
        };
        rgba.extend_from_slice(&[p[0], p[1], p[2], a]);
    }
    drop(rgb);
    let png = engine::codec::encode_rgba8_png(w, h, &rgba).map_err(|e| anyhow!(e))?;
    drop(rgba);
    std::fs::write(out, png).with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(m) = mask_out {
        let grey: Vec<u8> = mask.data.iter().map(|v| to_u8(*v)).collect();
        let png = engine::codec::encode_gray8_png(w, h, &grey).map_err(|e| anyhow!(e))?;
        std::fs::write(m, png).with_context(|| format!("cannot write {}", m.display()))?;
    }
    println!("wrote {} ({w}×{h})", out.display());
    Ok(0)
}

pub(crate) fn generate_cmd(a: &GenerateArgs) -> Result<i32> {
    use engine::sd::{model, nodes as sdn, pipeline, scheduler::SchedulerKind};
    let path = sdn::resolve_checkpoint(&a.model)?;
    let device = sdn::parse_device(&a.device)?;
    let dtype = sdn::parse_dtype(a.dtype.as_deref().unwrap_or("auto"), &device)?;
    let scheduler = match &a.scheduler {
        Some(s) => Some(SchedulerKind::parse(s).map_err(|e| anyhow!("--scheduler: {e}"))?),
        None => None,
    };
    let read_image = |p: &Path| -> Result<engine::image::Image> {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        engine::codec::decode_image(&bytes, &p.display().to_string()).map_err(|e| anyhow!(e))
    };
    let init_image = a.init_image.as_deref().map(read_image).transpose()?;
    let mask = match &a.mask {
        Some(p) => {
            let img = read_image(p)?;
            Some(engine::image::Mask {
                width: img.width,
                height: img.height,
                data: img
                    .data
                    .chunks_exact(4)
                    .map(|px| 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2])
                    .collect(),
            })
        }
        None => None,
    };
    if mask.is_some() && init_image.is_none() {
        bail!("--mask needs --init-image (the image to inpaint)");
    }
    let opts = model::LoadOptions {
        vae: a.vae.clone(),
        config_dir: a.config_dir.clone(),
        prediction: a.prediction.clone(),
        dtype,
        device,
    };
    let base = model::load_cached(&path, &opts)?;
    let stack = a
        .lora
        .iter()
        .map(|s| parse_lora_arg(s))
        .collect::<Result<Vec<_>>>()?;
    let (loaded, reports) = engine::sd::lora::apply_cached(&base, &stack)?;
    for r in &reports {
        println!("{}", r.summary());
    }
    let params = pipeline::GenerateParams {
        prompt: a.prompt.clone(),
        negative: a.negative.clone(),
        width: a.width.unwrap_or(0),
        height: a.height.unwrap_or(0),
        steps: a.steps,
        cfg: a.cfg,
        seed: a.seed,
        scheduler,
        strength: if init_image.is_some() {
            a.strength
        } else {
            1.0
        },
        init_image,
        mask,
        mask_blur: a.mask_blur,
        only_masked: a.only_masked,
        padding: a.padding,
        paste_back: a.only_masked || a.mask_blur > 0.0,
        batch: a.batch,
        clip_skip: a.clip_skip.max(1),
        weighting: a.prompt_weighting,
    };
    let bar = progress_bar(a.steps as u64);
    let mut on_step = |step: usize, total: usize, _: &candle_core::Tensor| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(step as u64);
        }
        Ok(())
    };
    let g = pipeline::generate(&loaded, &params, &mut on_step)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let text = pipeline::parameters_text(&params, &g, &loaded);
    let paths = batch_paths(&a.out, g.images.len());
    for (img, p) in g.images.iter().zip(&paths) {
        let png = engine::codec::encode_image_png(img, &[("parameters", &text)])
            .map_err(|e| anyhow!(e))?;
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(p, png).with_context(|| format!("cannot write {}", p.display()))?;
        println!("wrote {} ({}×{})", p.display(), img.width, img.height);
    }
    Ok(0)
}

/// OUT for one image; OUT's stem + `-0`, `-1`, … for a batch.
fn batch_paths(out: &Path, n: usize) -> Vec<PathBuf> {
    if n == 1 {
        return vec![out.to_path_buf()];
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let ext = out
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "png".into());
    (0..n)
        .map(|i| out.with_file_name(format!("{stem}-{i}.{ext}")))
        .collect()
}

/// `PATH:WEIGHT[:TE_WEIGHT]` → a LoRA of the stack (the text weight defaults to the weight).
fn parse_lora_arg(s: &str) -> Result<engine::sd::lora::LoraSpec> {
    let parts: Vec<&str> = s.rsplitn(3, ':').collect();
    let num = |t: &str| t.parse::<f64>().ok();
    // rsplitn gives the pieces from the right: [te?, weight?, path].
    let (path, unet, text) = match parts.as_slice() {
        [te, w, p] if num(te).is_some() && num(w).is_some() => {
            (p.to_string(), num(w).unwrap_or(1.0), num(te).unwrap_or(1.0))
        }
        [w, rest @ ..] if num(w).is_some() => {
            let p: Vec<&str> = rest.iter().rev().copied().collect();
            let w = num(w).unwrap_or(1.0);
            (p.join(":"), w, w)
        }
        _ => (s.to_string(), 1.0, 1.0),
    };
    if path.is_empty() {
        bail!("--lora {s}: expected PATH:WEIGHT[:TE_WEIGHT]");
    }
    let resolved = engine::sd::nodes::resolve_checkpoint(&path)?;
    Ok(engine::sd::lora::LoraSpec {
        path: resolved,
        unet,
        text,
    })
}
