//! Every parameter that names a file says which kind of file (`ParamSpec::file`), so checks
//! before a run can find and name it.

use nodes::{Catalogue, FileRole, ParamKind};

#[test]
fn every_input_file_and_model_name_has_a_file_role() {
    let cat = Catalogue::builtin();
    let mut roles = Vec::new();
    for spec in cat.specs() {
        for p in spec.params {
            if matches!(p.kind, ParamKind::InputFile { .. }) {
                assert!(
                    p.file.is_some(),
                    "{}.{} names a file but has no role",
                    spec.kind,
                    p.name
                );
            }
            if let Some(role) = p.file {
                assert!(
                    matches!(p.kind, ParamKind::InputFile { .. } | ParamKind::Text { .. }),
                    "{}.{}: a file role on a non-text parameter",
                    spec.kind,
                    p.name
                );
                roles.push((spec.kind, p.name, role));
            }
        }
    }
    for want in [
        ("LoadCheckpoint", "checkpoint", FileRole::Checkpoint),
        ("LoadCheckpoint", "vae", FileRole::Vae),
        ("LoraLoader", "lora", FileRole::Lora),
        ("LoadImage", "source", FileRole::Image),
        ("RemoveBackground", "model", FileRole::BackgroundModel),
    ] {
        assert!(roles.contains(&want), "{want:?} not in {roles:?}");
    }
    assert_eq!(FileRole::Lora.noun(), "LoRA");
    assert!(FileRole::Vae.optional() && !FileRole::Lora.optional());
}
