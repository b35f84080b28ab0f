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
/// - VAEEncodeForInpaint: grow_mask_by
/// - LoadImage: image, upload
/// - LoadImageMask: image, channel, upload
/// - ImageScale: upscale_method, width, height, crop
/// - SaveImage: filename_prefix
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
        "VAEEncodeForInpaint" => &["grow_mask_by"],
        "LoadImage" => &["image", "upload"],
        "LoadImageMask" => &["image", "channel", "upload"],
        "ImageScale" => &["upscale_method", "width", "height", "crop"],
        "SaveImage" => &["filename_prefix"],
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
    "VAEDecode",
    "VAEEncode",
    "VAEEncodeForInpaint",
    "SetLatentNoiseMask",
    "LoadImage",
    "LoadImageMask",
    "ImageScale",
    "SaveImage",
    "PreviewImage",
];

/// Editor-only node types of the UI format, skipped without a word.
pub(super) const EDITOR_ONLY: &[&str] = &["Note", "MarkdownNote", "PrimitiveNode", "Reroute"];

/// Maps ComfyUI's `sampler_name` + `scheduler` to our scheduler name, or says why there is
/// none. Only exact equivalents are accepted: `normal` is the model's own timestep schedule. The
/// pairs come from the one scheduler table ([`nodes::schedulers::from_comfy`]).
pub fn map_sampler(
    sampler_name: &str,
    scheduler: &str,
) -> std::result::Result<&'static str, String> {
    nodes::schedulers::from_comfy(sampler_name, scheduler).map(|s| s.name)
}
