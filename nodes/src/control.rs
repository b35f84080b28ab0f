//! The ControlNet node kinds: [`LOAD_CONTROLNET`] and [`CONTROLNET`] (a Control value on the
//! sampler's `control` input, chainable), and the preprocessors that make control images
//! without downloaded weights: [`CANNY`], [`SOFT_EDGE`], [`MASK_TO_CONTROL`].
//!
//! A ControlNet mirrors diffusers' `ControlNetModel` and its pipelines
//! (`StableDiffusion(XL)ControlNet{,Img2Img,Inpaint}Pipeline`): strength is
//! `controlnet_conditioning_scale`, start and end are `control_guidance_start/end`.

use crate::catalogue::{FileRole, NodeSpec, ParamSpec as P, PortSpec, PortType as T, Widget};

pub const CONTROL: &str = "ControlNet";

pub static LOAD_CONTROLNET: NodeSpec = NodeSpec {
    kind: "LoadControlNet",
    version: 1,
    category: CONTROL,
    doc: "Loads a ControlNet for SD 1.x or SDXL: a diffusers folder (config.json and \
          diffusion_pytorch_model.safetensors) or a single .safetensors file (the original \
          `control_v11*` names, with or without `control_model.`, or diffusers names), in f32, \
          f16 or bf16. Looked up by path, or by name in the model folders (a file, or a folder \
          holding config.json). Loaded once and kept in memory. A ControlNet made for another \
          architecture than the checkpoint's (an SDXL ControlNet on SD 1.5) is refused by the \
          sampler it guides, with a message naming both.",
    inputs: &[],
    outputs: &[PortSpec::new(
        "controlnet",
        T::ControlNet,
        "The loaded ControlNet.",
    )],
    params: &[
        P::text(
            "controlnet",
            "",
            "File or folder name in the model folders, or a path.",
        )
        .names_file(FileRole::ControlNet),
        P::choice(
            "dtype",
            &["auto", "f32", "f16", "bf16"],
            "auto",
            "Weights' precision: auto = f32 on the CPU, f16 on CUDA (as LoadCheckpoint).",
        ),
        P::choice(
            "device",
            &["auto", "cpu", "cuda", "cuda:1", "cuda:2", "cuda:3"],
            "auto",
            "Where to run; it must be the checkpoint's device. auto = the run's device (the \
             default device, or the queued run's target), as LoadCheckpoint's auto; cuda is the \
             first GPU (cuda:0).",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static CONTROLNET: NodeSpec = NodeSpec {
    kind: "ControlNet",
    version: 1,
    category: CONTROL,
    doc: "Guides a sampler with a ControlNet and a control image (edges, a scribble, a soft \
          edge, a depth map made elsewhere…), as diffusers' ControlNet pipelines do. Chain several \
          through `control`: their residuals add up (diffusers' MultiControlNetModel). A control \
          image of another size than the output is resized to it (Lanczos, as diffusers' image \
          processor). With a mask it is an inpainting control (control_v11p_sd15_inpaint): the \
          masked pixels of the control image are marked as to be filled (−1), as diffusers' \
          `make_inpaint_condition` does.",
    inputs: &[
        PortSpec::new("controlnet", T::ControlNet, "A loaded ControlNet."),
        PortSpec::new(
            "image",
            T::Image,
            "The control image, RGB (e.g. Canny or MaskToControl output).",
        ),
        PortSpec::optional(
            "mask",
            T::Mask,
            "For inpainting ControlNets: where the sampler repaints (white).",
        ),
        PortSpec::optional(
            "control",
            T::Control,
            "ControlNets applied before this one (chain them).",
        ),
    ],
    outputs: &[PortSpec::new(
        "control",
        T::Control,
        "The chained controls, for a sampler's `control` input.",
    )],
    params: &[
        P::float(
            "strength",
            0.0,
            10.0,
            1.0,
            "How strongly the control steers (diffusers' controlnet_conditioning_scale).",
        )
        .with_widget(Widget::DragValue),
        P::float(
            "start",
            0.0,
            1.0,
            0.0,
            "Fraction of the steps at which the control starts acting \
             (control_guidance_start).",
        )
        .with_widget(Widget::DragValue),
        P::float(
            "end",
            0.0,
            1.0,
            1.0,
            "Fraction of the steps at which it stops (control_guidance_end); it must be more \
             than start.",
        )
        .at_least("start")
        .with_widget(Widget::DragValue),
        P::bool(
            "guess_mode",
            false,
            "diffusers' guess_mode (A1111's \"ControlNet is more important\"): the control acts \
             on the conditional half of guidance only, its residuals scaled from 0.1 to 1 \
             along the blocks.",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static CANNY: NodeSpec = NodeSpec {
    kind: "Canny",
    version: 1,
    category: CONTROL,
    doc: "Canny edges exactly as OpenCV's cv2.Canny(image, low, high) computes them on the \
          8-bit RGB image (3×3 Sobel with replicated borders, L1 gradient |dx|+|dy| of the \
          strongest colour channel per pixel, non-maximum suppression, hysteresis: pixels above \
          `high` start edges, which extend through 8-connected pixels above `low`), the control \
          image of canny ControlNets: white edges on black. Alpha is ignored. The gradient of a \
          full black-to-white step is 1020, so thresholds above that find nothing; `low` must \
          not exceed `high`.",
    inputs: &[PortSpec::new("image", T::Image, "The image.")],
    outputs: &[PortSpec::new("image", T::Image, "White edges on black.")],
    params: &[
        P::int(
            "low",
            0,
            1000,
            100,
            "Lower hysteresis threshold on the gradient (A1111's Threshold A); at most `high`.",
        ),
        P::int(
            "high",
            0,
            1000,
            200,
            "Upper hysteresis threshold (A1111's Threshold B).",
        )
        .at_least("low"),
    ],
    deterministic: true,
    sink: false,
};

pub static SOFT_EDGE: NodeSpec = NodeSpec {
    kind: "SoftEdge",
    version: 1,
    category: CONTROL,
    doc: "Soft edges from the image's gradients (no network), the kind of control image \
          softedge ControlNets (HED, PiDiNet) take: soft lines a few pixels thick, flat areas \
          black. It computes the luminance 0.299 R + 0.587 G + 0.114 B, blurs it (Gaussian, \
          sigma `blur` px), takes the 3×3 Sobel gradient length (per pixel), divides it by the \
          99th percentile of the gradients of the image's edge pixels (at least 0.05, so faint \
          texture stays dark), clips to 1 and raises it to 1/`gain`. No learned edge detector \
          runs here; a HED/PiDiNet map made elsewhere can be loaded with LoadImage.",
    inputs: &[PortSpec::new("image", T::Image, "The image.")],
    outputs: &[PortSpec::new(
        "image",
        T::Image,
        "Grey soft edges on black.",
    )],
    params: &[
        P::float(
            "blur",
            0.0,
            16.0,
            1.0,
            "Gaussian sigma (px) applied before the gradients.",
        )
        .with_widget(Widget::DragValue),
        P::float(
            "gain",
            0.1,
            16.0,
            1.0,
            "Contrast: the normalised magnitude is raised to 1/gain.",
        )
        .with_widget(Widget::DragValue),
    ],
    deterministic: true,
    sink: false,
};

/// MaskToControl's modes.
pub const MASK_CONTROL_MODES: &[&str] = &["edges", "scribble", "fill"];

pub static MASK_TO_CONTROL: NodeSpec = NodeSpec {
    kind: "MaskToControl",
    version: 1,
    category: CONTROL,
    doc: "Turns a mask (a defect's exact mask, or painted strokes; binarised at 0.5) into a \
          control image, white on black: edges = its outline as a line `width` px wide centred \
          on the shape's edge (canny/lineart ControlNets); scribble = the outline, slightly \
          smoothed, drawn with a round brush of radius `width` (strokes 2·width+1 px wide, as \
          scribble ControlNets expect); fill = the mask itself (the painter's strokes as a \
          scribble). The image border is not an outline.",
    inputs: &[PortSpec::new(
        "mask",
        T::Mask,
        "The mask (white = the shape).",
    )],
    outputs: &[PortSpec::new(
        "image",
        T::Image,
        "White lines or shapes on black.",
    )],
    params: &[
        P::choice(
            "mode",
            MASK_CONTROL_MODES,
            "edges",
            "edges, scribble or fill (see the node's description).",
        ),
        P::int(
            "width",
            1,
            64,
            3,
            "edges: the line's width in pixels; scribble: the brush radius in pixels (unused by \
             fill).",
        ),
    ],
    deterministic: true,
    sink: false,
};
