//! The A1111 side of the one import report: the prompt, the negative prompt and every key of the
//! parameters line listed once, like ComfyUI's nodes. Keys the recipe builder could not carry
//! over are already in the report (as entries, or as "not carried over" notes); every other key
//! is recorded here as imported into the node that holds it.

use super::a1111::A1111Params;
use super::ImportReport;

/// Where a typed A1111 key went: the checkpoint node, the sampler node, or the LoRA nodes.
fn target_of(key: &str, sampler: &str) -> String {
    match key {
        "Model" | "Model hash" | "Clip skip" | "VAE" => "checkpoint (LoadCheckpoint)".into(),
        "Lora hashes" => "the LoraLoader nodes".into(),
        "Steps" | "Sampler" | "Schedule type" | "CFG scale" | "Seed" | "Size"
        | "Denoising strength" | "Mask blur" => sampler.to_string(),
        _ => "read by the importer".into(),
    }
}

/// The value of `key` as the text had it (typed keys written back from their fields).
fn value_of(p: &A1111Params, key: &str) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    match key {
        "Steps" => opt(p.steps.map(|v| v.to_string())),
        "Sampler" => opt(p.sampler.clone()),
        "Schedule type" => opt(p.schedule_type.clone()),
        "CFG scale" => opt(p.cfg_scale.map(|v| v.to_string())),
        "Seed" => opt(p.seed.map(|v| v.to_string())),
        "Size" => opt(p.size.map(|(w, h)| format!("{w}x{h}"))),
        "Model hash" => opt(p.model_hash.clone()),
        "Model" => opt(p.model.clone()),
        "Denoising strength" => opt(p.denoising_strength.map(|v| v.to_string())),
        "Clip skip" => opt(p.clip_skip.map(|v| v.to_string())),
        "Mask blur" => opt(p.mask_blur.map(|v| v.to_string())),
        "VAE" => opt(p.vae.clone()),
        "Lora hashes" => p
            .lora_hashes
            .iter()
            .map(|(n, h)| format!("{n}: {h}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => p
            .extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
    }
}

/// Records every setting of `p` not in the report yet as imported (`sampler`: our sampler node,
/// as `id (Kind)`). The prompt's LoRA tags become LoraLoader nodes.
pub(crate) fn record_a1111(report: &mut ImportReport, p: &A1111Params, sampler: &str) {
    let tags = if p.loras.is_empty() {
        String::new()
    } else {
        format!(" and {} LoraLoader node(s)", p.loras.len())
    };
    report.imported("prompt", "text", format!("prompt of {sampler}{tags}"));
    if p.negative.is_some() {
        report.imported(
            "Negative prompt",
            "text",
            format!("negative prompt of {sampler}"),
        );
    }
    // Keys the builder did not carry over are in its notes ("not carried over: KEY: …").
    let noted: Vec<String> = p
        .key_order
        .iter()
        .filter(|key| {
            let prefix = format!("not carried over: {key}: ");
            report.notes.iter().any(|n| n.starts_with(&prefix))
        })
        .cloned()
        .collect();
    for key in &p.key_order {
        if !report.has(key) && !noted.contains(key) {
            report.imported(key, &value_of(p, key), target_of(key, sampler));
        }
    }
}
