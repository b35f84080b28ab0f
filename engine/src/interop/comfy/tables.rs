//! The ComfyUI name tables: widget order per node type, the node types the importer knows or
//! skips, and the sampler mapping.

/// The names of a node type's widgets, in the order of the UI format's `widgets_values`.
/// `control_after_generate` follows a seed widget, and `upload` is LoadImage's button.
///
/// - CheckpointLoaderSimple: ckpt_name
/// - VAELoader: vae_name
/// - LoraLoader: lora_name, strength_model, strength_clip
/// - LoraLoaderModelOnly: lora_name, strength_model
/// - CLIPTextEncode: text
/// - CLIPSetLastLayer: stop_at_clip_layer
/// - EmptyLatentImage: width, height, batch_size
/// - KSampler: seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise
/// - KSamplerAdvanced: add_noise, noise_seed, control_after_generate, steps, cfg, sampler_name,
///   scheduler, start_at_step, end_at_step, return_with_leftover_noise
/// - VAEEncodeForInpaint: grow_mask_by
/// - LoadImage: image, upload
/// - LoadImageMask: image, channel, upload
/// - ImageScale: upscale_method, width, height, crop
/// - SaveImage: filename_prefix
/// - ControlNetLoader, DiffControlNetLoader, ControlNetLoaderAdvanced: control_net_name
/// - ControlNetApply: strength
/// - ControlNetApplyAdvanced, ACN_AdvancedControlNetApply(_v2): strength, start_percent,
///   end_percent
/// - Canny: low_threshold, high_threshold
/// - CannyEdgePreprocessor: low_threshold, high_threshold, resolution
/// - VAEDecode, VAEEncode, SetLatentNoiseMask, PreviewImage: none
pub fn widget_names(class_type: &str) -> Option<&'static [&'static str]> {
    Some(match class_type {
        "CheckpointLoaderSimple" => &["ckpt_name"],
        "VAELoader" => &["vae_name"],
        "LoraLoader" => &["lora_name", "strength_model", "strength_clip"],
        "LoraLoaderModelOnly" => &["lora_name", "strength_model"],
        "CLIPTextEncode" => &["text"],
        "CLIPSetLastLayer" => &["stop_at_clip_layer"],
        "EmptyLatentImage" => &["width", "height", "batch_size"],
        "KSampler" => &[
            "seed",
            "control_after_generate",
            "steps",
            "cfg",
            "sampler_name",
            "scheduler",
            "denoise",
        ],
        "KSamplerAdvanced" => &[
            "add_noise",
            "noise_seed",
            "control_after_generate",
            "steps",
            "cfg",
            "sampler_name",
            "scheduler",
            "start_at_step",
            "end_at_step",
            "return_with_leftover_noise",
        ],
        "VAEEncodeForInpaint" => &["grow_mask_by"],
        "LoadImage" => &["image", "upload"],
        "LoadImageMask" => &["image", "channel", "upload"],
        "ImageScale" => &["upscale_method", "width", "height", "crop"],
        "SaveImage" => &["filename_prefix"],
        "ControlNetLoader" | "DiffControlNetLoader" | "ControlNetLoaderAdvanced" => {
            &["control_net_name"]
        }
        "ControlNetApply" => &["strength"],
        "ControlNetApplyAdvanced"
        | "ACN_AdvancedControlNetApply"
        | "ACN_AdvancedControlNetApply_v2" => &["strength", "start_percent", "end_percent"],
        "Canny" => &["low_threshold", "high_threshold"],
        "CannyEdgePreprocessor" => &["low_threshold", "high_threshold", "resolution"],
        "VAEDecode" | "VAEEncode" | "SetLatentNoiseMask" | "PreviewImage" => &[],
        _ => return None,
    })
}

/// Node types the importer understands (everything else is reported as unsupported).
pub(super) const KNOWN: &[&str] = &[
    "CheckpointLoaderSimple",
    "VAELoader",
    "LoraLoader",
    "LoraLoaderModelOnly",
    "CLIPTextEncode",
    "CLIPSetLastLayer",
    "EmptyLatentImage",
    "KSampler",
    "KSamplerAdvanced",
    "VAEDecode",
    "VAEEncode",
    "VAEEncodeForInpaint",
    "SetLatentNoiseMask",
    "LoadImage",
    "LoadImageMask",
    "ImageScale",
    "SaveImage",
    "PreviewImage",
    "ControlNetLoader",
    "DiffControlNetLoader",
    "ControlNetLoaderAdvanced",
    "ControlNetApply",
    "ControlNetApplyAdvanced",
    "ACN_AdvancedControlNetApply",
    "ACN_AdvancedControlNetApply_v2",
    "Canny",
    "CannyEdgePreprocessor",
];

/// Editor-only node types of the UI format: notes, and the nodes whose effect is already in the
/// file (a PrimitiveNode's value sits in the widget it feeds; a Reroute is looked through).
pub(super) const EDITOR_ONLY: &[&str] = &["Note", "MarkdownNote", "PrimitiveNode", "Reroute"];

/// API-format value nodes (ComfyUI's `PrimitiveString` …): a link from one reads as its `value`.
pub(super) const PRIMITIVE_VALUES: &[&str] = &[
    "PrimitiveString",
    "PrimitiveStringMultiline",
    "PrimitiveInt",
    "PrimitiveFloat",
    "PrimitiveBoolean",
];

/// Model file extensions of pickle files, which are never loaded.
pub(super) const PICKLE_EXTENSIONS: &[&str] = &[".ckpt", ".pt", ".pth", ".bin"];

/// Custom save nodes imported as a plain SaveImage (with a note): any class that starts with
/// `SaveImage` (e.g. `SaveImageWebsocket`, `SaveImageWithMetaDataUniversal`) or `Image Save`.
pub(super) fn is_save_like(class: &str) -> bool {
    (class.starts_with("SaveImage") && class != "SaveImage") || class.starts_with("Image Save")
}

/// Maps ComfyUI's `sampler_name` + `scheduler` to our scheduler name, or says why there is
/// none. Only exact equivalents are accepted: `normal` is the model's own timestep schedule. The
/// pairs come from the one scheduler table ([`nodes::schedulers::from_comfy`]).
pub fn map_sampler(
    sampler_name: &str,
    scheduler: &str,
) -> std::result::Result<&'static str, String> {
    nodes::schedulers::from_comfy(sampler_name, scheduler).map(|s| s.name)
}
