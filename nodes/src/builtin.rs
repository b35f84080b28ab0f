//! The node kinds that ship with Defect Studio, each declared once.
//!
//! [`ALL`] lists them; the engine has one executor per kind (a test checks this).

use crate::catalogue::{FileRole, NodeSpec, ParamSpec as P, PortSpec, PortType as T, Widget};

const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"];
const MAX_SIDE: i64 = 16384;

pub use crate::defects::{
    CHIP, CRACK, CUTPASTE, CUTPASTE_SCAR, DEFECTS, DENT, DRAEM, NSA, SCRATCH, STAIN,
};

pub const IO: &str = "Input & output";
pub const IMAGE: &str = "Image";
pub const MASK: &str = "Mask";
pub const GENERATE: &str = "Generate";

pub static LOAD_IMAGE: NodeSpec = NodeSpec {
    kind: "LoadImage",
    version: 1,
    category: IO,
    doc: "Loads an image file (PNG, JPEG, BMP, TIFF, WebP). Give a folder to run the recipe once \
          per image in it (sorted by name). Outputs the RGBA image and its alpha channel as a mask.",
    inputs: &[],
    outputs: &[
        PortSpec::new("image", T::Image, "The loaded image, RGBA."),
        PortSpec::new("mask", T::Mask, "The image's alpha channel (white = opaque)."),
    ],
    params: &[P::input_file(
        "source",
        IMAGE_EXTS,
        "Image file or folder, relative to the graph file; or asset:<sha256> for an embedded image.",
    )
    .names_file(FileRole::Image)],
    deterministic: true,
    sink: false,
};

pub static LOAD_MASK: NodeSpec = NodeSpec {
    kind: "LoadMask",
    version: 1,
    category: IO,
    doc: "Loads a mask from an image file or an embedded (painted) asset. White means selected: \
          the defect, or the region to repaint.",
    inputs: &[],
    outputs: &[PortSpec::new("mask", T::Mask, "The mask, 0..1.")],
    params: &[
        P::input_file(
            "source",
            IMAGE_EXTS,
            "Mask image file or folder, or asset:<sha256>.",
        )
        .names_file(FileRole::Mask),
        P::choice(
            "channel",
            &["luma", "alpha", "red", "green", "blue"],
            "luma",
            "Which channel of the file holds the mask; luma is PIL's `convert('L')` (ITU-R \
             601), as diffusers reads mask images.",
        ),
        P::bool("invert", false, "Invert the mask after loading."),
    ],
    deterministic: true,
    sink: false,
};

pub static PAINT_MASK: NodeSpec = NodeSpec {
    kind: "PaintMask",
    version: 1,
    category: MASK,
    doc:
        "A mask painted by hand over an image in the studio's mask painter (brush, eraser, fill). \
          The painting travels inside the graph file as an asset. Until something is painted the \
          mask is empty; a painting of another size is scaled to the image.",
    inputs: &[PortSpec::new(
        "image",
        T::Image,
        "The image to paint over (sets the mask's size).",
    )],
    outputs: &[
        PortSpec::new("mask", T::Mask, "The painted mask."),
        PortSpec::new("image", T::Image, "The input image, passed through."),
    ],
    params: &[P::input_file(
        "painting",
        &["png"],
        "The painted mask: asset:<sha256> (set by the painter).",
    )
    .names_file(FileRole::Mask)],
    deterministic: true,
    sink: false,
};

pub static SAVE_IMAGE: NodeSpec = NodeSpec {
    kind: "SaveImage",
    version: 1,
    category: IO,
    doc: "Saves the image as a PNG under the output folder and records it in the store. If a mask \
          is connected it is saved beside it as <name>_mask.png (pixel-exact, for datasets); if a \
          clean image is connected (the image before the defect nodes) it is saved beside it as \
          <name>_clean.png and kept with the output, for anomaly datasets (MVTec, anomalib). An \
          existing file is never overwritten: a numeric suffix is added.",
    inputs: &[
        PortSpec::new("image", T::Image, "The image to save."),
        PortSpec::optional("mask", T::Mask, "The defect mask to save with it."),
        PortSpec::optional(
            "clean",
            T::Image,
            "The defect-free image of this item (the image before the defect nodes); MVTec and \
             anomalib exports use it as a good image.",
        ),
    ],
    outputs: &[],
    params: &[
        P::output_template(
            "filename",
            "{graph}/{run:05}-{item:04}-{node}.png",
            "File name template inside the output folder. Variables: {graph} {node} {run} {item} \
             {seed} {date} {time}; numbers take {name:0N} for zero padding.",
        ),
        P::text(
            "label",
            "defect",
            "The defect class of this output (e.g. scratch); dataset exports use it as the category. \
             Use \"good\" for defect-free images.",
        ),
    ],
    deterministic: true,
    sink: true,
};

pub static EXPORT_DATASET: NodeSpec = NodeSpec {
    kind: "ExportDataset",
    version: 1,
    category: IO,
    doc: "Saves the image and its mask like SaveImage, and at the end of the run writes every item as a \
          training dataset (folder, COCO instance segmentation with RLE masks, YOLO segmentation, \
          MVTec-AD layout or anomalib folder layout) with a provenance manifest, in a new folder under the output folder.",
    inputs: &[
        PortSpec::new("image", T::Image, "The defect image."),
        PortSpec::optional("mask", T::Mask, "Its exact defect mask (white = defect)."),
        PortSpec::optional(
            "clean",
            T::Image,
            "The defect-free image of this item (the image before the defect nodes); MVTec and \
             anomalib-folder datasets use it as a good image.",
        ),
    ],
    outputs: &[],
    params: &[
        P::choice(
            "format",
            &["folder", "coco", "yolo", "mvtec", "anomalib-folder"],
            "coco",
            "Dataset format.",
        ),
        P::output_template("folder", "{graph}-dataset", "Dataset folder inside the output folder; a new one (-1, -2, …) if it exists."),
        P::text("label", "defect", "The defect class (category); \"good\" for defect-free images."),
        P::choice("instances", &["components", "per-defect"], "components", "Which pixels form one instance: each connected region of the mask, or the generator's own defects (masks without instance ids use regions)."),
        P::float("val_fraction", 0.0, 0.95, 0.2, "Fraction of each label held out for validation (YOLO images/val); 0 = none."),
        P::int("mask_threshold", 1, 255, 128, "A mask pixel is defect when its 8-bit value is at least this."),
        P::bool("keep_soft_masks", false, "Write the masks' own 8-bit values where the format stores mask images (folder, MVTec ground truth)."),
    ],
    deterministic: true,
    sink: true,
};

pub static RESIZE: NodeSpec = NodeSpec {
    kind: "Resize",
    version: 1,
    category: IMAGE,
    doc:
        "Resizes an image, and its mask with the same geometry. A width or height of 0 keeps the \
          aspect ratio. 'fit' letterboxes with transparent borders, 'fill' covers and centre-crops.",
    inputs: &[
        PortSpec::new("image", T::Image, "The image to resize."),
        PortSpec::optional("mask", T::Mask, "A mask of the same size, resized along."),
    ],
    outputs: &[
        PortSpec::new("image", T::Image, "The resized image."),
        PortSpec::new(
            "mask",
            T::Mask,
            "The resized mask (the image's alpha if no mask came in).",
        ),
    ],
    params: &[
        P::int(
            "width",
            0,
            MAX_SIDE,
            512,
            "Target width in pixels (0: from height and aspect).",
        ),
        P::int(
            "height",
            0,
            MAX_SIDE,
            512,
            "Target height in pixels (0: from width and aspect).",
        ),
        P::choice(
            "mode",
            &["stretch", "fit", "fill"],
            "stretch",
            "How the aspect ratio is handled.",
        ),
        P::choice(
            "filter",
            &["nearest", "bilinear", "bicubic", "lanczos"],
            "lanczos",
            "Resampling filter for the image (masks use bilinear, or nearest when chosen).",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static CROP: NodeSpec = NodeSpec {
    kind: "Crop",
    version: 1,
    category: IMAGE,
    doc:
        "Cuts a rectangle out of an image and its mask. A width or height of 0 extends to the edge.",
    inputs: &[
        PortSpec::new("image", T::Image, "The image to crop."),
        PortSpec::optional("mask", T::Mask, "A mask of the same size, cropped along."),
    ],
    outputs: &[
        PortSpec::new("image", T::Image, "The cropped image."),
        PortSpec::new(
            "mask",
            T::Mask,
            "The cropped mask (the image's alpha if no mask came in).",
        ),
    ],
    params: &[
        P::int("x", 0, 65535, 0, "Left edge in pixels."),
        P::int("y", 0, 65535, 0, "Top edge in pixels."),
        P::int(
            "width",
            0,
            65535,
            0,
            "Width in pixels (0: to the right edge).",
        ),
        P::int(
            "height",
            0,
            65535,
            0,
            "Height in pixels (0: to the bottom edge).",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static MASK_OPS: NodeSpec = NodeSpec {
    kind: "MaskOps",
    version: 1,
    category: MASK,
    doc: "One mask operation: threshold (binarise at 'threshold'), invert, grow or shrink by \
          'radius' pixels (exact Euclidean distance, binarised at 0.5), feather (a linear soft edge \
          'radius' pixels wide centred on the outline), or blur (Gaussian, sigma = 'radius').",
    inputs: &[PortSpec::new("mask", T::Mask, "The mask to change.")],
    outputs: &[PortSpec::new("mask", T::Mask, "The changed mask.")],
    params: &[
        P::choice(
            "op",
            &["threshold", "invert", "grow", "shrink", "feather", "blur"],
            "threshold",
            "The operation.",
        ),
        P::float("radius", 0.0, 512.0, 4.0, "Pixels, for grow, shrink, feather and blur."),
        P::float("threshold", 0.0, 1.0, 0.5, "Level for threshold: values above become 1."),
    ],
    deterministic: true,
    sink: false,
};

pub static COMPOSITE: NodeSpec = NodeSpec {
    kind: "Composite",
    version: 1,
    category: IMAGE,
    doc: "Pastes 'top' over 'bottom' at (x, y) through a mask (or top's alpha), with a blend \
          mode and opacity. Also outputs where top landed, as a mask in bottom's coordinates: \
          the exact defect mask of a pasted mark.",
    inputs: &[
        PortSpec::new("top", T::Image, "The image pasted on top."),
        PortSpec::new("bottom", T::Image, "The background."),
        PortSpec::optional(
            "mask",
            T::Mask,
            "Where top shows, same size as top (default: its alpha).",
        ),
    ],
    outputs: &[
        PortSpec::new("image", T::Image, "The composite, the size of bottom."),
        PortSpec::new(
            "mask",
            T::Mask,
            "The pasted region in bottom's coordinates.",
        ),
    ],
    params: &[
        P::int(
            "x",
            -65535,
            65535,
            0,
            "Left edge of top within bottom, in pixels.",
        ),
        P::int(
            "y",
            -65535,
            65535,
            0,
            "Top edge of top within bottom, in pixels.",
        ),
        P::float("opacity", 0.0, 1.0, 1.0, "Opacity of top."),
        P::choice(
            "blend",
            &[
                "normal", "multiply", "screen", "overlay", "darken", "lighten",
            ],
            "normal",
            "How top's colour combines with bottom's.",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static REMOVE_BACKGROUND: NodeSpec = NodeSpec {
    kind: "RemoveBackground",
    version: 1,
    category: IMAGE,
    doc: "Cuts the product out of a photo with the ISNet network (real weights: fetch them with \
          `defect-studio models fetch isnet`). Outputs the RGBA cut-out, its alpha mask, and a \
          composite onto a colour or another image. Works at any size (the network runs at 1024²).",
    inputs: &[
        PortSpec::new("image", T::Image, "The photo."),
        PortSpec::optional(
            "background",
            T::Image,
            "A new background for the composite (scaled to the photo).",
        ),
    ],
    outputs: &[
        PortSpec::new(
            "image",
            T::Image,
            "The cut-out, transparent where the background was.",
        ),
        PortSpec::new("mask", T::Mask, "The alpha mask (white = product)."),
        PortSpec::new(
            "composite",
            T::Image,
            "The cut-out over the background image or colour.",
        ),
    ],
    params: &[
        P::text(
            "model",
            "isnet-medium",
            "The ISNet model file in the model folders.",
        )
        .names_file(FileRole::BackgroundModel),
        P::choice(
            "alpha",
            &["soft", "hard"],
            "soft",
            "Keep the network's soft alpha, or binarise it.",
        ),
        P::float("threshold", 0.0, 1.0, 0.5, "Level for a hard alpha."),
        P::float(
            "grow",
            -64.0,
            64.0,
            0.0,
            "Grow (> 0) or shrink (< 0) the mask, pixels.",
        ),
        P::float("feather", 0.0, 64.0, 0.0, "Soften the mask's edge, pixels."),
        P::color(
            "background_color",
            "#ffffff",
            "Composite background when no image is connected.",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static SOLID_COLOR: NodeSpec = NodeSpec {
    kind: "SolidColor",
    version: 1,
    category: GENERATE,
    doc: "An image of one colour. Connect 'like' to take the size from an image.",
    inputs: &[PortSpec::optional(
        "like",
        T::Image,
        "Takes the size from this image (width/height are then ignored).",
    )],
    outputs: &[PortSpec::new("image", T::Image, "The filled image.")],
    params: &[
        P::int("width", 1, MAX_SIDE, 512, "Width in pixels."),
        P::int("height", 1, MAX_SIDE, 512, "Height in pixels."),
        P::color("color", "#808080", "The colour."),
        P::float("alpha", 0.0, 1.0, 1.0, "Opacity."),
    ],
    deterministic: true,
    sink: false,
};

pub static NOISE: NodeSpec = NodeSpec {
    kind: "Noise",
    version: 1,
    category: GENERATE,
    doc: "A seeded noise field (Perlin fBm, value, cellular or white), as a grey image and as a \
          mask; threshold the mask for DRAEM-style blotches.",
    inputs: &[PortSpec::optional(
        "like",
        T::Image,
        "Takes the size from this image (width/height are then ignored).",
    )],
    outputs: &[
        PortSpec::new("image", T::Image, "The field as a grey image."),
        PortSpec::new("mask", T::Mask, "The field as a mask, 0..1."),
    ],
    params: &[
        P::int("width", 1, MAX_SIDE, 512, "Width in pixels."),
        P::int("height", 1, MAX_SIDE, 512, "Height in pixels."),
        P::seed("seed", "Seed of the field."),
        P::choice(
            "noise",
            &["perlin", "value", "cellular", "white"],
            "perlin",
            "Kind of noise.",
        ),
        P::float(
            "scale",
            1.0,
            4096.0,
            64.0,
            "Feature size of the first octave, in pixels.",
        ),
        P::int("octaves", 1, 8, 4, "Octaves of detail."),
    ],
    deterministic: true,
    sink: false,
};

pub static TEXTURE: NodeSpec = NodeSpec {
    kind: "Texture",
    version: 1,
    category: GENERATE,
    doc: "A procedural industrial surface to put defects on when no product photo is at hand: \
          brushed metal, painted surface, concrete, fabric or wood grain.",
    inputs: &[PortSpec::optional(
        "like",
        T::Image,
        "Takes the size from this image (width/height are then ignored).",
    )],
    outputs: &[PortSpec::new("image", T::Image, "The texture, opaque.")],
    params: &[
        P::choice(
            "material",
            &[
                "brushed_metal",
                "painted_surface",
                "concrete",
                "fabric",
                "wood_grain",
            ],
            "brushed_metal",
            "The surface.",
        ),
        P::int("width", 1, MAX_SIDE, 512, "Width in pixels."),
        P::int("height", 1, MAX_SIDE, 512, "Height in pixels."),
        P::seed("seed", "Seed of the surface."),
        P::float(
            "scale",
            0.1,
            10.0,
            1.0,
            "Feature size (1 = natural at 512 px).",
        ),
        P::color("color", "#a8acb0", "Base colour."),
        P::float(
            "contrast",
            0.0,
            2.0,
            1.0,
            "Strength of the texture (1 = natural).",
        ),
        P::float(
            "angle",
            -180.0,
            180.0,
            0.0,
            "Direction of brushing, grain or weave, in degrees.",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static SHAPE_MASK: NodeSpec = NodeSpec {
    kind: "ShapeMask",
    version: 1,
    category: MASK,
    doc: "A mask holding one ellipse, rectangle or line, with rotation and a feathered edge. \
          Connect 'like' to take the canvas size from an image.",
    inputs: &[PortSpec::optional(
        "like",
        T::Image,
        "Takes the canvas size from this image.",
    )],
    outputs: &[PortSpec::new("mask", T::Mask, "The shape mask.")],
    params: &[
        P::int(
            "width",
            1,
            MAX_SIDE,
            512,
            "Canvas width (ignored when 'like' is connected).",
        ),
        P::int(
            "height",
            1,
            MAX_SIDE,
            512,
            "Canvas height (ignored when 'like' is connected).",
        ),
        P::choice(
            "shape",
            &["ellipse", "rectangle", "line"],
            "ellipse",
            "The shape.",
        ),
        P::float(
            "x",
            0.0,
            1.0,
            0.5,
            "Centre, as a fraction of the canvas width.",
        ),
        P::float(
            "y",
            0.0,
            1.0,
            0.5,
            "Centre, as a fraction of the canvas height.",
        ),
        P::float(
            "size_x",
            0.0,
            65535.0,
            64.0,
            "Width in pixels (for a line: its length).",
        ),
        P::float(
            "size_y",
            0.0,
            65535.0,
            64.0,
            "Height in pixels (for a line: its thickness).",
        ),
        P::float(
            "rotation",
            -360.0,
            360.0,
            0.0,
            "Rotation in degrees, clockwise.",
        ),
        P::float(
            "feather",
            0.0,
            512.0,
            1.0,
            "Width of the soft edge in pixels.",
        )
        .with_widget(Widget::DragValue),
    ],
    deterministic: true,
    sink: false,
};

/// Every shipped kind, in menu order.
pub static ALL: &[&NodeSpec] = &[
    &LOAD_IMAGE,
    &LOAD_IMAGE_FOLDER,
    &LOAD_MASK,
    &SAVE_IMAGE,
    &EXPORT_DATASET,
    &RESIZE,
    &CROP,
    &COMPOSITE,
    &MASK_OPS,
    &SHAPE_MASK,
    &PAINT_MASK,
    &SOLID_COLOR,
    &NOISE,
    &TEXTURE,
    &SCRATCH,
    &CRACK,
    &DENT,
    &STAIN,
    &CHIP,
    &DRAEM,
    &CUTPASTE,
    &CUTPASTE_SCAR,
    &NSA,
    &CLEANUP,
    &REMOVE_BACKGROUND,
    &crate::diffusion::LOAD_CHECKPOINT,
    &crate::diffusion::LORA_LOADER,
    &crate::diffusion::TXT2IMG,
    &crate::diffusion::IMG2IMG,
    &crate::diffusion::INPAINT,
    &crate::control::LOAD_CONTROLNET,
    &crate::control::CONTROLNET,
    &crate::control::CANNY,
    &crate::control::SOFT_EDGE,
    &crate::control::MASK_TO_CONTROL,
    &crate::inspect::LOAD_DETECTOR,
    &crate::inspect::CLASSIFY,
    &crate::inspect::FILTER_BY_SCORE,
    &crate::inspect::MASK_FIDELITY,
    &crate::inspect::CAPTION,
    &crate::values::INT,
    &crate::values::FLOAT,
    &crate::values::TEXT,
    &crate::values::SEED,
    &crate::values::CHOICE,
    &crate::values::REROUTE,
    &crate::values::SUBGRAPH,
];

pub static CLEANUP: NodeSpec = NodeSpec {
    kind: "Cleanup",
    version: 1,
    category: IMAGE,
    doc: "Object removal: fills the masked region from the rest of the image with multi-scale PatchMatch completion (nearest-neighbour field search with propagation and random search, patch voting).",
    inputs: &[
        PortSpec::new("image", T::Image, "The image."),
        PortSpec::new("mask", T::Mask, "What to remove (white)."),
    ],
    outputs: &[PortSpec::new("image", T::Image, "The image with the region filled.")],
    params: &[
        P::int("patch_size", 3, 31, 7, "Patch side in pixels (odd)."),
        P::int("iterations", 1, 50, 8, "EM iterations per pyramid level."),
        P::int("search_passes", 1, 20, 4, "PatchMatch passes per iteration."),
        P::float("grow", 0.0, 64.0, 2.0, "Grow the mask by this many pixels first (soft edges, shadows)."),
        P::seed("seed", "Seed of the random search."),
    ],
    deterministic: true,
    sink: false,
};

pub static LOAD_IMAGE_FOLDER: NodeSpec = NodeSpec {
    kind: "LoadImageFolder",
    version: 1,
    category: IO,
    doc: "Runs the recipe once per image in a folder (sorted by name): each image becomes one work item of the run. Outputs the image and its alpha channel as a mask.",
    inputs: &[],
    outputs: &[
        PortSpec::new("image", T::Image, "The current image, RGBA."),
        PortSpec::new("mask", T::Mask, "Its alpha channel (white = opaque)."),
    ],
    params: &[
        P::input_file("folder", IMAGE_EXTS, "Folder of images, relative to the graph file.")
            .names_file(FileRole::ImageFolder),
    ],
    deterministic: true,
    sink: false,
};
