//! The Stable Diffusion node kinds: [`LOAD_CHECKPOINT`], [`LORA_LOADER`], [`TXT2IMG`],
//! [`IMG2IMG`], [`INPAINT`].
//!
//! Nodes are coarse, as users think of them: a sampler node takes a Model, the prompts and the
//! sampling parameters and outputs an Image. `defect-studio generate` builds a graph of these
//! nodes, so its flags and defaults are these parameters and defaults. Where a node mirrors a
//! diffusers pipeline, its defaults are that pipeline's defaults, and its result equals the
//! pipeline's for the same model, prompt, seed, steps, guidance and scheduler.

use crate::catalogue::{FileRole, NodeSpec, ParamSpec as P, PortSpec, PortType as T, Widget};

pub const DIFFUSION: &str = "Diffusion";

/// Scheduler names, as on the command line; `default` is the model's own scheduler config.
pub const SCHEDULERS: &[&str] = &[
    "default",
    "ddim",
    "euler",
    "euler_a",
    "dpmpp_2m",
    "dpmpp_2m_karras",
    "lms",
    "pndm",
    "unipc",
];

const SIZE_DOC_TXT: &str = "Width in pixels, a multiple of 8; 0 = the model's native size.";
const SIZE_DOC_IMG: &str = "Output size in pixels, a multiple of 8; 0 = the input image's size \
                            (rounded down to a multiple of 8).";

const MODEL_IN: PortSpec = PortSpec::new("model", T::Model, "A loaded checkpoint.");
const CONTROL_IN: PortSpec = PortSpec::optional(
    "control",
    T::Control,
    "ControlNets guiding the sampling (ControlNet nodes, chained); none = plain sampling.",
);

const PROMPT: P = P::text(
    "prompt",
    "",
    "What to generate. A linked Text (e.g. a Caption) fills it: {input} in the prompt marks      where it goes, else the prompt is appended after it (`deep scratch` → `<caption>, deep      scratch`).",
)
.with_widget(Widget::TextArea)
.as_input();
const NEGATIVE: P = P::text(
    "negative",
    "",
    "What to avoid (empty = no negative prompt, as diffusers does). May be fed by a linked      Text, as the prompt.",
)
.with_widget(Widget::TextArea)
.as_input();
const STEPS: P = P::int("steps", 1, 500, 20, "Sampling steps.");
const CFG: P = P::float(
    "cfg",
    0.0,
    30.0,
    7.5,
    "Classifier-free guidance scale; 1 or below turns guidance off.",
)
.with_widget(Widget::DragValue);
const SCHEDULER: P = P::choice(
    "scheduler",
    SCHEDULERS,
    "default",
    "Sampler, as in diffusers; `default` uses the model's scheduler config.",
);
const SEED: P = P::seed(
    "seed",
    "Seed of the initial noise (and every sampler draw): torch's CPU generator, so the same \
     seed gives the same image as diffusers.",
);
const BATCH: P = P::int(
    "batch",
    1,
    64,
    1,
    "Images per prompt (diffusers' num_images_per_prompt): one generator, the noise drawn as one \
     tensor. The output carries them all; SaveImage writes each (`-0`, `-1`, … after the stem) \
     and nodes that take one image use the first.",
);
/// VAE tiling modes; `off` is diffusers' default, `on` equals diffusers after `enable_tiling()`.
pub const VAE_TILING: &[&str] = &["off", "on", "auto"];
const TILING: P = P::choice(
    "vae_tiling",
    VAE_TILING,
    "off",
    "Encode and decode the image in overlapping tiles (diffusers' `enable_tiling()`): off = \
     diffusers' default (one pass); on = always tile when the image exceeds the VAE's tile size; \
     auto = tile only when one pass would need more than the VAE memory budget (4 GiB, or \
     DEFECT_STUDIO_VAE_BUDGET_MB), saying so in the node's status.",
);
const WEIGHTING: P = P::bool(
    "prompt_weighting",
    false,
    "A1111-style (word:1.3), (word), [word] and prompts longer than 75 tokens in chunks. Off = \
     diffusers' behaviour (plain text, cut at 77 tokens).",
);

pub static LOAD_CHECKPOINT: NodeSpec = NodeSpec {
    kind: "LoadCheckpoint",
    version: 1,
    category: DIFFUSION,
    doc: "Loads a Stable Diffusion checkpoint (SD 1.x, 2.x, SDXL, their Turbo and inpainting \
          variants): a single-file .safetensors (A1111/ComfyUI) or a diffusers folder. Looked up \
          in the model folders by name, or by path. Loaded once and kept in memory.",
    inputs: &[],
    outputs: &[PortSpec::new(
        "model",
        T::Model,
        "UNet, VAE and text encoders.",
    )],
    params: &[
        P::text(
            "checkpoint",
            "",
            "File name in the model folders, or a path (file or diffusers folder).",
        )
        .names_file(FileRole::Checkpoint),
        P::text(
            "vae",
            "",
            "Optional separate VAE file (.safetensors) replacing the checkpoint's.",
        )
        .names_file(FileRole::Vae),
        P::int(
            "clip_skip",
            1,
            12,
            1,
            "Use the text encoder's N-th layer from the end (1 = last, 2 = penultimate, as in \
             A1111).",
        ),
        P::choice(
            "prediction",
            &["auto", "epsilon", "v_prediction"],
            "auto",
            "What the UNet predicts; auto reads the scheduler config (SD 2.x 768 models are \
             v_prediction).",
        ),
        P::choice(
            "dtype",
            &["auto", "f32", "f16", "bf16"],
            "auto",
            "Weights' precision: auto = f32 on the CPU, f16 on CUDA.",
        ),
        P::choice(
            "device",
            &["auto", "cpu", "cuda", "cuda:1", "cuda:2", "cuda:3"],
            "auto",
            "Where to run: auto = the run's device (the default device from Settings or \
             `devices --set-default`, or the queued run's target; outside a run, CUDA when \
             built with it and present, else the CPU); cuda is the first GPU (cuda:0).",
        ),
        P::text(
            "config",
            "",
            "Optional diffusers folder whose `*/config.json` and scheduler config describe a \
             single-file checkpoint (diffusers' `from_single_file(config=…)`), for checkpoints \
             whose configuration cannot be inferred from the weights.",
        )
        .names_file(FileRole::DiffusersConfig),
    ],
    deterministic: true,
    sink: false,
};

pub static LORA_LOADER: NodeSpec = NodeSpec {
    kind: "LoraLoader",
    version: 1,
    category: DIFFUSION,
    doc: "Applies a LoRA .safetensors to a model: kohya, diffusers/PEFT, LyCORIS LoCon, LoHa \
          and LoKr, each optionally with DoRA (kohya dora_scale or PEFT magnitude vectors), for \
          SD1.x and SDXL. Chain several to stack them (their changes add up). The base weights \
          stay cached: changing a strength does not reload the checkpoint. The node's status \
          lists how many modules it changed per format and every key that matched nothing.",
    inputs: &[MODEL_IN],
    outputs: &[PortSpec::new(
        "model",
        T::Model,
        "The model with the LoRA applied.",
    )],
    params: &[
        P::text(
            "lora",
            "",
            "LoRA file name in the model folders, or a path.",
        )
        .names_file(FileRole::Lora),
        P::float(
            "strength",
            -4.0,
            4.0,
            1.0,
            "Weight of the LoRA on the UNet (scaled by alpha/rank, as kohya and diffusers do).",
        )
        .with_widget(Widget::DragValue),
        P::float(
            "text_strength",
            -4.0,
            4.0,
            1.0,
            "Weight of the LoRA on the text encoder(s).",
        )
        .with_widget(Widget::DragValue),
    ],
    deterministic: true,
    sink: false,
};

pub static TXT2IMG: NodeSpec = NodeSpec {
    kind: "Txt2Img",
    version: 1,
    category: DIFFUSION,
    doc: "Generates an image from a prompt (diffusers' StableDiffusion(XL)Pipeline). Shows a \
          preview at every step.",
    inputs: &[MODEL_IN, CONTROL_IN],
    outputs: &[PortSpec::new("image", T::Image, "The generated image.")],
    params: &[
        PROMPT,
        NEGATIVE,
        P::int("width", 0, 4096, 0, SIZE_DOC_TXT),
        P::int(
            "height",
            0,
            4096,
            0,
            "Height in pixels, a multiple of 8; 0 = native.",
        ),
        STEPS,
        CFG,
        SCHEDULER,
        SEED,
        WEIGHTING,
        BATCH,
        TILING,
    ],
    deterministic: true,
    sink: false,
};

pub static IMG2IMG: NodeSpec = NodeSpec {
    kind: "Img2Img",
    version: 2,
    category: DIFFUSION,
    doc: "Re-draws an image guided by a prompt (diffusers' StableDiffusion(XL)Img2ImgPipeline, \
          with its defaults: strength 0.8): strength 0 keeps it, 1 replaces it.",
    inputs: &[
        MODEL_IN,
        PortSpec::new("image", T::Image, "The starting image."),
        CONTROL_IN,
    ],
    outputs: &[PortSpec::new("image", T::Image, "The re-drawn image.")],
    params: &[
        PROMPT,
        NEGATIVE,
        P::float(
            "strength",
            0.0,
            1.0,
            0.8,
            "How much to change: the fraction of the steps that run (diffusers' default 0.8).",
        ),
        P::int("width", 0, 4096, 0, SIZE_DOC_IMG),
        P::int("height", 0, 4096, 0, SIZE_DOC_IMG),
        STEPS,
        CFG,
        SCHEDULER,
        SEED,
        WEIGHTING,
        BATCH,
        TILING,
    ],
    deterministic: true,
    sink: false,
};

pub static INPAINT: NodeSpec = NodeSpec {
    kind: "Inpaint",
    version: 2,
    category: DIFFUSION,
    doc: "Repaints the masked part of an image (white = repaint; the mask is read as PIL's \
          `convert('L')` and binarised at 0.5, as diffusers does), with an inpainting model \
          (9-channel UNet) or any normal model (latent blending). With its defaults (strength \
          1, no blur, no paste-back) it equals diffusers' StableDiffusion(XL)InpaintPipeline. \
          Options as in A1111: mask blur and paste-back (pixels outside the blurred mask kept \
          exactly), only-masked (work on a padded crop at full resolution, then paste it back).",
    inputs: &[
        MODEL_IN,
        PortSpec::new("image", T::Image, "The image to repaint."),
        PortSpec::new(
            "mask",
            T::Mask,
            "Where to repaint (white). Must have the image's size.",
        ),
        CONTROL_IN,
    ],
    outputs: &[
        PortSpec::new("image", T::Image, "The repainted image."),
        PortSpec::new(
            "mask",
            T::Mask,
            "The region that changed: the blend mask used to paste back (the binarised input \
             mask when there is no blur).",
        ),
    ],
    params: &[
        PROMPT,
        NEGATIVE,
        P::float(
            "strength",
            0.0,
            1.0,
            1.0,
            "How much to change inside the mask (1 = start from pure noise; diffusers' default).",
        ),
        P::int("width", 0, 4096, 0, SIZE_DOC_IMG),
        P::int("height", 0, 4096, 0, SIZE_DOC_IMG),
        STEPS,
        CFG,
        SCHEDULER,
        SEED,
        WEIGHTING,
        BATCH,
        TILING,
        P::float(
            "mask_blur",
            0.0,
            64.0,
            0.0,
            "Gaussian blur (sigma, px) of the mask used to paste the result back (with \
             `paste_back` or `only_masked`); 0 = a hard edge, diffusers' default.",
        )
        .with_widget(Widget::DragValue),
        P::bool(
            "only_masked",
            false,
            "Inpaint only a padded crop around the mask, at the node's width/height (0 = the \
             model's native size), then paste it back.",
        ),
        P::int(
            "padding",
            0,
            1024,
            32,
            "Only-masked: context around the mask's bounding box, px.",
        ),
        P::bool(
            "paste_back",
            false,
            "Keep every pixel outside the (blurred) mask exactly as in the input. Off = \
             diffusers' output (the whole image goes through the VAE). Only-masked always \
             pastes back.",
        ),
    ],
    deterministic: true,
    sink: false,
};
