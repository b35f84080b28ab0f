//! The inspection kinds of the catalogue (category "Inspect", docs/ARCHITECTURE.md §15): a
//! trained detector as a port ([`LOAD_DETECTOR`]), scoring an image with it ([`CLASSIFY`]),
//! keeping only the work items whose score passes ([`FILTER_BY_SCORE`]), checking that a
//! diffusion step changed only the masked pixels ([`MASK_FIDELITY`]) and image → prompt
//! ([`CAPTION`]). Each is declared once here and re-exported from [`crate::builtin`].

use crate::catalogue::{FileRole, NodeSpec, ParamSpec as P, PortSpec, PortType as T, Widget};

pub const INSPECT: &str = "Inspect";

/// The kinds that judge a work item: a run executes them even when nothing reads their outputs
/// ([`crate::Catalogue::default_targets`]), since what they record about the item (and their
/// rejections) is their effect.
pub static CHECKS: &[&NodeSpec] = &[&CLASSIFY, &FILTER_BY_SCORE, &MASK_FIDELITY];

/// Whether `spec` is one of the [`CHECKS`].
pub fn is_check(spec: &NodeSpec) -> bool {
    CHECKS.iter().any(|c| std::ptr::eq(*c, spec))
}

/// The devices a detector or captioner may run on (as LoadCheckpoint's).
const DEVICES: &[&str] = &["auto", "cpu", "cuda", "cuda:1", "cuda:2", "cuda:3"];

/// What FilterByScore and MaskFidelity do with an item that fails: the run retries it with the
/// next seed, up to `max_attempts` times.
const MAX_ATTEMPTS: P = P::int(
    "max_attempts",
    1,
    1000,
    5,
    "How many times the work item is tried in all (1 = no retry). Each retry runs the whole \
     item again with the next retry seed (docs/ARCHITECTURE.md §15, *Retries*): only seeds \
     \"from run\" change. An item that never passes is recorded as rejected and saves nothing.",
);

pub static LOAD_DETECTOR: NodeSpec = NodeSpec {
    kind: "LoadDetector",
    version: 1,
    category: INSPECT,
    doc: "Loads a trained defect detector: a classifier (train-classifier) or a segmenter \
          (train-segmenter) .safetensors file, by path or by name in the model folders. Loaded \
          once and kept while its file does not change.",
    inputs: &[],
    outputs: &[PortSpec::new(
        "detector",
        T::Detector,
        "The detector, for Classify.",
    )],
    params: &[
        P::text(
            "model",
            "",
            "The detector file (.safetensors written by train-classifier or train-segmenter).",
        )
        .names_file(FileRole::Detector),
        P::choice(
            "device",
            DEVICES,
            "auto",
            "Where to run: auto = the run's device (the default device from Settings or \
             `devices --set-default`, or the queued run's target).",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static CLASSIFY: NodeSpec = NodeSpec {
    kind: "Classify",
    version: 1,
    category: INSPECT,
    doc: "Scores an image with a trained detector: the defect score (probability of not good for \
          a classifier, the image score of the anomaly map for a segmenter) and the predicted \
          label. The score, label and decision are recorded with the work item's outputs, and a \
          `run --sweep` over a severity parameter reports them as a probability-of-detection \
          curve.",
    inputs: &[
        PortSpec::new("detector", T::Detector, "A loaded detector (LoadDetector)."),
        PortSpec::new("image", T::Image, "The image to score."),
    ],
    outputs: &[
        PortSpec::new(
            "score",
            T::Float,
            "Defect score in 0..1; higher = more defective.",
        ),
        PortSpec::new("label", T::Text, "The predicted label."),
        PortSpec::new(
            "defect",
            T::Int,
            "1 when the score is at least the threshold (detected), else 0.",
        ),
    ],
    params: &[P::float(
        "threshold",
        0.0,
        1.0,
        0.5,
        "A score at or above this counts as detected (the `defect` output, the PoD report).",
    )
    .with_widget(Widget::DragValue)],
    deterministic: true,
    sink: false,
};

pub static FILTER_BY_SCORE: NodeSpec = NodeSpec {
    kind: "FilterByScore",
    version: 1,
    category: INSPECT,
    doc: "Keeps a work item only when its score passes the threshold; otherwise the run retries \
          the item with the next retry seed, up to max_attempts times, and records the attempts \
          (CLI summary, run report, each saved output's record). Put it between the image and \
          SaveImage: it passes its image and mask through, and sinks run after every filter.",
    inputs: &[
        PortSpec::new("score", T::Float, "The score to test (e.g. Classify's)."),
        PortSpec::optional("image", T::Image, "Passed through when the item is kept."),
        PortSpec::optional("mask", T::Mask, "Passed through when the item is kept."),
    ],
    outputs: &[
        PortSpec::new("image", T::Image, "The image, when kept."),
        PortSpec::new("mask", T::Mask, "The mask, when kept."),
        PortSpec::new("score", T::Float, "The score, passed through."),
    ],
    params: &[
        P::float(
            "threshold",
            0.0,
            1.0,
            0.5,
            "The score a kept item reaches (keep = above: score ≥ threshold; below: score < \
             threshold).",
        )
        .with_widget(Widget::DragValue),
        P::choice(
            "keep",
            &["above", "below"],
            "above",
            "above keeps items the detector sees as defective (score ≥ threshold); below keeps \
             items it does not (score < threshold), e.g. to mine hard cases.",
        ),
        MAX_ATTEMPTS,
    ],
    deterministic: true,
    sink: false,
};

pub static MASK_FIDELITY: NodeSpec = NodeSpec {
    kind: "MaskFidelity",
    version: 1,
    category: INSPECT,
    doc: "Compares the pixels a diffusion step actually changed (|changed − clean| above a \
          threshold, on any channel) with the defect mask: the IoU of the two, and the fraction \
          of the changed pixels that lie outside the mask. An item whose outside fraction \
          exceeds max_outside is flagged (recorded with its outputs) or rejected (retried with \
          the next seed, as FilterByScore does).",
    inputs: &[
        PortSpec::new("clean", T::Image, "The image before the step."),
        PortSpec::new("changed", T::Image, "The image after the step (same size)."),
        PortSpec::new(
            "mask",
            T::Mask,
            "The defect mask the step was meant to stay in.",
        ),
    ],
    outputs: &[
        PortSpec::new(
            "iou",
            T::Float,
            "IoU of the changed pixels and the mask (0..1).",
        ),
        PortSpec::new(
            "outside",
            T::Float,
            "Fraction of the changed pixels outside the mask (0 when nothing changed).",
        ),
        PortSpec::new("flagged", T::Int, "1 when outside > max_outside, else 0."),
        PortSpec::new("image", T::Image, "The changed image, passed through."),
    ],
    params: &[
        P::float(
            "change_threshold",
            0.0,
            1.0,
            0.04,
            "A pixel has changed when some channel differs by more than this (0..1).",
        )
        .with_widget(Widget::DragValue),
        P::float(
            "mask_threshold",
            0.0,
            1.0,
            0.5,
            "A mask value at or above this is inside the mask.",
        )
        .with_widget(Widget::DragValue),
        P::float(
            "max_outside",
            0.0,
            1.0,
            0.1,
            "The largest fraction of changed pixels allowed outside the mask.",
        )
        .with_widget(Widget::DragValue),
        P::choice(
            "action",
            &["flag", "reject"],
            "flag",
            "flag: record `flagged` with the item's outputs; reject: retry the item like \
             FilterByScore (max_attempts), recording it as rejected if it never stays inside.",
        ),
        MAX_ATTEMPTS,
    ],
    deterministic: true,
    sink: false,
};

pub static CAPTION: NodeSpec = NodeSpec {
    kind: "Caption",
    version: 1,
    category: INSPECT,
    doc: "Image → prompt. recipe: the exact caption of the recipe upstream of the image (its \
          prompt, else its material, then the defects with their counts, e.g. `brushed metal, 2 \
          scratches, 1 dent`; grammar in docs/ARCHITECTURE.md §15). blip: BLIP image captioning \
          of the pixels, with a model folder the user provides. Link `text` into a prompt to \
          caption-condition a generation.",
    inputs: &[PortSpec::new("image", T::Image, "The image to caption.")],
    outputs: &[PortSpec::new("text", T::Text, "The caption.")],
    params: &[
        P::choice(
            "mode",
            &["recipe", "blip"],
            "recipe",
            "recipe: from the graph (exact); blip: from the pixels.",
        ),
        P::text(
            "model",
            "",
            "The BLIP model folder (blip-image-captioning-base as safetensors) for mode blip.",
        )
        .names_file(FileRole::CaptionModel),
        P::choice(
            "device",
            DEVICES,
            "auto",
            "Where BLIP runs: auto = the run's device (the default device from Settings or \
             `devices --set-default`, or the queued run's target).",
        ),
    ],
    deterministic: true,
    sink: false,
};
