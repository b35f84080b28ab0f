//! The defect kinds of the catalogue (category "Defects"): procedural generators that draw a
//! defect on an image and output it with its exact mask, each declared once as a `static
//! NodeSpec` (re-exported from [`crate::builtin`], whose `ALL` lists them in menu order).

use crate::catalogue::{NodeSpec, ParamSpec as P, PortSpec, PortType as T};

pub const DEFECTS: &str = "Defects";

const SEED: P = P::seed(
    "seed",
    "Seed of every random choice (placement, shape, shading).",
);
const LIGHT: P = P::float(
    "light",
    0.0,
    360.0,
    225.0,
    "Direction towards the light, degrees (225 = top-left).",
);
const DEFECT_IN: &[PortSpec] = &[
    PortSpec::new("image", T::Image, "The surface to put the defect on."),
    PortSpec::optional(
        "placement",
        T::Mask,
        "Where the defect may go (white); e.g. the product's mask.",
    ),
];
const DEFECT_SRC_IN: &[PortSpec] = &[
    PortSpec::new("image", T::Image, "The surface to put the defect on."),
    PortSpec::optional("placement", T::Mask, "Where the defect may go (white)."),
    PortSpec::optional(
        "source",
        T::Image,
        "Texture to blend in (default: a procedural one).",
    ),
];
const DEFECT_OUT: &[PortSpec] = &[
    PortSpec::new("image", T::Image, "The image with the defect."),
    PortSpec::new(
        "mask",
        T::Mask,
        "The defect's exact mask, from its own geometry.",
    ),
];

pub static SCRATCH: NodeSpec = NodeSpec {
    kind: "Scratch",
    version: 1,
    category: DEFECTS,
    doc: "Thin curved scratches: a dark groove with a highlight and a shadow consistent with the light direction.",
    inputs: DEFECT_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::int("count", 1, 50, 3, "Number of scratches."),
        P::float("length", 1.0, 4096.0, 180.0, "Mean length in pixels."),
        P::float("width", 0.5, 64.0, 3.0, "Width in pixels."),
        P::float("angle", -180.0, 180.0, 30.0, "Mean direction in degrees."),
        P::float("angle_jitter", 0.0, 180.0, 25.0, "Random spread of the direction, degrees."),
        P::float("curvature", 0.0, 1.0, 0.15, "How much the strokes bend."),
        P::float("depth", 0.0, 1.0, 0.6, "Contrast of the groove."),
        LIGHT,
    ],
    deterministic: true,
    sink: false,
};

pub static CRACK: NodeSpec = NodeSpec {
    kind: "Crack",
    version: 1,
    category: DEFECTS,
    doc: "A branching, tapering crack with a dark interior and a lighter lip.",
    inputs: DEFECT_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::float(
            "length",
            4.0,
            8192.0,
            260.0,
            "Length of the main path in pixels.",
        ),
        P::float("width", 0.8, 64.0, 4.0, "Width at the start in pixels."),
        P::int("branches", 0, 32, 4, "Number of branches."),
        P::float("roughness", 0.0, 1.0, 0.5, "How jagged the path is."),
        P::float("depth", 0.0, 1.0, 0.8, "Darkness of the interior."),
        P::float("angle", -180.0, 180.0, 0.0, "Mean direction in degrees."),
        P::float(
            "angle_jitter",
            0.0,
            180.0,
            180.0,
            "Random spread of the direction, degrees.",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static DENT: NodeSpec = NodeSpec {
    kind: "Dent",
    version: 1,
    category: DEFECTS,
    doc: "Dents and dings: a smooth height bump shaded from its normals under the light.",
    inputs: DEFECT_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::int("count", 1, 50, 1, "Number of dents."),
        P::float("radius", 1.0, 2048.0, 45.0, "Mean radius in pixels."),
        P::float(
            "radius_jitter",
            0.0,
            1.0,
            0.3,
            "Random spread of the radius (fraction).",
        ),
        P::float(
            "depth",
            0.0,
            50.0,
            7.0,
            "Depth of the bump (strength of the shading).",
        ),
        P::float(
            "ellipticity",
            0.0,
            0.95,
            0.25,
            "0 = round, towards 1 = elongated.",
        ),
        P::float(
            "angle",
            -180.0,
            180.0,
            0.0,
            "Orientation of elongated dents, degrees.",
        ),
        P::float(
            "angle_jitter",
            0.0,
            180.0,
            180.0,
            "Random spread of the orientation, degrees.",
        ),
        LIGHT,
    ],
    deterministic: true,
    sink: false,
};

pub static STAIN: NodeSpec = NodeSpec {
    kind: "Stain",
    version: 1,
    category: DEFECTS,
    doc: "Stains, spots and contamination: soft noise-distorted blobs shifting the colour, with an optional darker rim (coffee ring).",
    inputs: DEFECT_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::int("count", 1, 50, 2, "Number of blobs."),
        P::float("size", 1.0, 4096.0, 50.0, "Mean radius in pixels."),
        P::color("color", "#6b4d29", "Colour of the contaminant."),
        P::float("opacity", 0.0, 1.0, 0.6, "Strength of the colour shift."),
        P::float("softness", 0.0, 1.0, 0.4, "Softness of the edge."),
        P::float("distortion", 0.0, 1.0, 0.45, "Irregularity of the outline."),
        P::float("ring", 0.0, 1.0, 0.6, "Darker rim (coffee-ring effect)."),
    ],
    deterministic: true,
    sink: false,
};

pub static CHIP: NodeSpec = NodeSpec {
    kind: "Chip",
    version: 1,
    category: DEFECTS,
    doc: "Chipped or missing material: an irregular hole revealing a textured under-layer, with a bevelled rim. With a placement mask, chips prefer its edges.",
    inputs: DEFECT_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::int("count", 1, 50, 1, "Number of chips."),
        P::float("size", 2.0, 2048.0, 30.0, "Mean radius in pixels."),
        P::float("roughness", 0.0, 1.0, 0.5, "Irregularity of the outline."),
        P::color("under_color", "#9e998f", "Colour of the exposed under-layer."),
        P::choice(
            "under_texture",
            &["brushed_metal", "painted_surface", "concrete", "fabric", "wood_grain"],
            "concrete",
            "Texture of the under-layer.",
        ),
        P::float("bevel", 0.0, 32.0, 2.5, "Width of the broken edge in pixels."),
        LIGHT,
        P::float("edge_affinity", 0.0, 20.0, 2.0, "Preference for the placement mask's edge."),
    ],
    deterministic: true,
    sink: false,
};

pub static DRAEM: NodeSpec = NodeSpec {
    kind: "DraemAnomaly",
    version: 1,
    category: DEFECTS,
    doc: "DRAEM-style anomaly (Zavrtanik et al. 2021): a thresholded Perlin-noise mask filled with a blend of a texture source.",
    inputs: DEFECT_SRC_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::float("beta", 0.0, 1.0, 0.0, "Opacity of the source in the blend; 0 = random in 0.1..1 by seed."),
        P::float("threshold", 0.0, 1.0, 0.7, "Perlin threshold (higher = smaller blotches)."),
        P::float("min_scale", 1.0, 2048.0, 16.0, "Smallest noise scale in pixels."),
        P::float("max_scale", 1.0, 4096.0, 128.0, "Largest noise scale in pixels.").at_least("min_scale"),
        P::float("min_coverage", 0.0, 1.0, 0.005, "Minimum fraction of the image covered."),
    ],
    deterministic: true,
    sink: false,
};

pub static CUTPASTE: NodeSpec = NodeSpec {
    kind: "CutPaste",
    version: 1,
    category: DEFECTS,
    doc: "CutPaste (Li et al. 2021): a rectangular patch of the same image moved elsewhere, with colour jitter.",
    inputs: DEFECT_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::float("area_min", 0.001, 1.0, 0.02, "Smallest patch area, fraction of the image."),
        P::float("area_max", 0.001, 1.0, 0.15, "Largest patch area, fraction of the image.")
            .at_least("area_min"),
        P::float("aspect_min", 0.05, 20.0, 0.3, "Smallest aspect ratio."),
        P::float("aspect_max", 0.05, 20.0, 3.3, "Largest aspect ratio.").at_least("aspect_min"),
        P::float("color_jitter", 0.0, 1.0, 0.1, "Random colour change of the patch."),
    ],
    deterministic: true,
    sink: false,
};

pub static CUTPASTE_SCAR: NodeSpec = NodeSpec {
    kind: "CutPasteScar",
    version: 1,
    category: DEFECTS,
    doc: "CutPaste-scar: a thin long patch of the same image, rotated and pasted elsewhere.",
    inputs: DEFECT_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::float(
            "width_min",
            1.0,
            256.0,
            2.0,
            "Smallest width in pixels (at 256 px; scales with the image).",
        ),
        P::float("width_max", 1.0, 256.0, 16.0, "Largest width in pixels.").at_least("width_min"),
        P::float(
            "length_min",
            1.0,
            1024.0,
            10.0,
            "Smallest length in pixels.",
        ),
        P::float("length_max", 1.0, 1024.0, 25.0, "Largest length in pixels.")
            .at_least("length_min"),
        P::float(
            "angle_min",
            -180.0,
            180.0,
            -45.0,
            "Smallest rotation, degrees.",
        ),
        P::float(
            "angle_max",
            -180.0,
            180.0,
            45.0,
            "Largest rotation, degrees.",
        )
        .at_least("angle_min"),
        P::float(
            "color_jitter",
            0.0,
            1.0,
            0.1,
            "Random colour change of the patch.",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static NSA: NodeSpec = NodeSpec {
    kind: "NsaPatch",
    version: 1,
    category: DEFECTS,
    doc: "NSA-style (Schlüter et al. 2022): a patch Poisson-blended (seamless cloning, solving the Poisson equation) into another place.",
    inputs: DEFECT_SRC_IN,
    outputs: DEFECT_OUT,
    params: &[
        SEED,
        P::float("size_min", 0.01, 0.9, 0.08, "Smallest patch side, fraction of the image's shorter side."),
        P::float("size_max", 0.01, 0.9, 0.2, "Largest patch side, fraction of the image's shorter side.")
            .at_least("size_min"),
        P::float("intensity", 0.0, 1.0, 0.12, "Contrast and brightness change of the patch."),
        P::float("min_changed", 0.0, 1.0, 0.95, "Fraction of the patch that must visibly change."),
        P::int("max_tries", 1, 100, 6, "Placement attempts."),
    ],
    deterministic: true,
    sink: false,
};
