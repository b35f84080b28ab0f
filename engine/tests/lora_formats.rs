//! LyCORIS and DoRA formats in the LoRA loader, against direct computations: small files are
//! written by hand (seeded values) into a temp dir, merged into the tiny SD1.5 fixture model,
//! and the change of each weight is compared with the formula computed here with plain loops
//! (LoHa plain and Tucker, LoKr full/factorised/Tucker with LyCORIS' scale rule, DoRA on the
//! output and the input axis, strength 0), plus the errors (bad Kronecker shape, truncated
//! file, incomplete modules listed as unused, NaN) and the architecture detection of LyCORIS
//! files. Parity with the reference packages on whole images is in `sd_lycoris.rs` and
//! `sd_dora.rs`.

mod lora_formats_common;
mod sd_common;

use std::path::Path;

use engine::sd::lora::{apply, read, LoraSpec};
use lora_formats_common::*;

#[test]
fn loha_plain_and_tucker_match_the_formula() {
    let dir = tempfile::tempdir().unwrap();
    let r = 4;
    // Linear [256, 32], alpha 2 → scale 0.5.
    let w1a = t(&format!("{FF_K}.hada_w1_a"), 1, &[256, r], 0.3);
    let w1b = t(&format!("{FF_K}.hada_w1_b"), 2, &[r, 32], 0.5);
    let w2a = t(&format!("{FF_K}.hada_w2_a"), 3, &[256, r], 0.3);
    let w2b = t(&format!("{FF_K}.hada_w2_b"), 4, &[r, 32], 0.5);
    let alpha = scalar(&format!("{FF_K}.alpha"), 2.0);
    // Tucker conv [64, 32, 3, 3], rank 3, no alpha → scale 1.
    let rt = 3;
    let t1 = t(&format!("{CONV_K}.hada_t1"), 5, &[rt, rt, 3, 3], 0.5);
    let c1a = t(&format!("{CONV_K}.hada_w1_a"), 6, &[rt, 64], 0.3);
    let c1b = t(&format!("{CONV_K}.hada_w1_b"), 7, &[rt, 32], 0.3);
    let t2 = t(&format!("{CONV_K}.hada_t2"), 8, &[rt, rt, 3, 3], 0.5);
    let c2a = t(&format!("{CONV_K}.hada_w2_a"), 9, &[rt, 64], 0.3);
    let c2b = t(&format!("{CONV_K}.hada_w2_b"), 10, &[rt, 32], 0.3);
    // Plain 3×3 conv [32, 64, 3, 3]: w_b is [r, in·9].
    let u1a = t(&format!("{UPCONV_K}.hada_w1_a"), 11, &[32, r], 0.3);
    let u1b = t(&format!("{UPCONV_K}.hada_w1_b"), 12, &[r, 64 * 9], 0.3);
    let u2a = t(&format!("{UPCONV_K}.hada_w2_a"), 13, &[32, r], 0.3);
    let u2b = t(&format!("{UPCONV_K}.hada_w2_b"), 14, &[r, 64 * 9], 0.3);
    let ualpha = scalar(&format!("{UPCONV_K}.alpha"), 8.0);
    let path = save(
        dir.path(),
        "loha.safetensors",
        &[
            &w1a, &w1b, &w2a, &w2b, &alpha, &t1, &c1a, &c1b, &t2, &c2a, &c2b, &u1a, &u1b, &u2a,
            &u2b, &ualpha,
        ],
    );
    let s = 0.8f32;
    let (merged, report) = apply_one(&path, s as f64, 1.0);
    assert!(report.unmatched.is_empty(), "{}", report.summary());
    assert_eq!(report.unet_modules, 3);
    assert!(
        report.summary().contains("(3 LoHa)"),
        "{}",
        report.summary()
    );

    let m1 = mm(&w1a.data, &w1b.data, 256, r, 32);
    let m2 = mm(&w2a.data, &w2b.data, 256, r, 32);
    let want: Vec<f32> = m1.iter().zip(&m2).map(|(a, b)| a * b * 0.5 * s).collect();
    assert_close(&change(&merged, FF), &want, "LoHa linear");

    let k1 = tucker(&t1.data, &c1a.data, &c1b.data, rt, 64, 32, 9);
    let k2 = tucker(&t2.data, &c2a.data, &c2b.data, rt, 64, 32, 9);
    let want: Vec<f32> = k1.iter().zip(&k2).map(|(a, b)| a * b * s).collect();
    assert_close(&change(&merged, CONV), &want, "LoHa Tucker conv");

    let m1 = mm(&u1a.data, &u1b.data, 32, r, 64 * 9);
    let m2 = mm(&u2a.data, &u2b.data, 32, r, 64 * 9);
    let want: Vec<f32> = m1.iter().zip(&m2).map(|(a, b)| a * b * 2.0 * s).collect();
    assert_close(&change(&merged, UPCONV), &want, "LoHa plain 3×3 conv");
}

#[test]
fn lokr_full_factors_ignore_alpha() {
    let dir = tempfile::tempdir().unwrap();
    // [32, 32] = kron([4, 2], [8, 16]); alpha 7 must be ignored (LyCORIS: scale 1).
    let w1 = t(&format!("{TOQ_K}.lokr_w1"), 20, &[4, 2], 0.7);
    let w2 = t(&format!("{TOQ_K}.lokr_w2"), 21, &[8, 16], 0.2);
    let alpha = scalar(&format!("{TOQ_K}.alpha"), 7.0);
    // Conv [64, 32, 3, 3] = kron([4, 4, 1, 1], [16, 8, 3, 3]).
    let c1 = t(&format!("{CONV_K}.lokr_w1"), 22, &[4, 4], 0.7);
    let c2 = t(&format!("{CONV_K}.lokr_w2"), 23, &[16, 8, 3, 3], 0.2);
    let path = save(
        dir.path(),
        "lokr_full.safetensors",
        &[&w1, &w2, &alpha, &c1, &c2],
    );
    let (merged, report) = apply_one(&path, 1.0, 1.0);
    assert!(report.unmatched.is_empty(), "{}", report.summary());
    assert!(
        report.summary().contains("(2 LoKr)"),
        "{}",
        report.summary()
    );
    let want = kron(&w1.data, &w2.data, (4, 2), (8, 16, 1));
    assert_close(&change(&merged, TOQ), &want, "LoKr full linear");
    let want = kron(&c1.data, &c2.data, (4, 4), (16, 8, 9));
    assert_close(&change(&merged, CONV), &want, "LoKr full conv");
}

#[test]
fn lokr_factorised_scales_by_alpha_over_the_factorised_rank() {
    let dir = tempfile::tempdir().unwrap();
    // Linear [256, 32]: w1 full [8, 4], w2 = [32, 2]·[2, 8], alpha 1 → scale 1/2.
    let w1 = t(&format!("{FF_K}.lokr_w1"), 30, &[8, 4], 0.7);
    let w2a = t(&format!("{FF_K}.lokr_w2_a"), 31, &[32, 2], 0.5);
    let w2b = t(&format!("{FF_K}.lokr_w2_b"), 32, &[2, 8], 0.5);
    let a1 = scalar(&format!("{FF_K}.alpha"), 1.0);
    // Linear [32, 32]: w1 = [4, 3]·[3, 4], w2 full [8, 8], alpha 6 → scale 6/3.
    let v1a = t(&format!("{TOQ_K}.lokr_w1_a"), 33, &[4, 3], 0.5);
    let v1b = t(&format!("{TOQ_K}.lokr_w1_b"), 34, &[3, 4], 0.5);
    let v2 = t(&format!("{TOQ_K}.lokr_w2"), 35, &[8, 8], 0.2);
    let a2 = scalar(&format!("{TOQ_K}.alpha"), 6.0);
    // Tucker conv [32, 64, 3, 3]: w1 [4, 8], w2 = Tucker(t2 [2, 2, 3, 3], a [2, 8], b [2, 8]).
    let u1 = t(&format!("{UPCONV_K}.lokr_w1"), 36, &[4, 8], 0.7);
    let ut = t(&format!("{UPCONV_K}.lokr_t2"), 37, &[2, 2, 3, 3], 0.5);
    let u2a = t(&format!("{UPCONV_K}.lokr_w2_a"), 38, &[2, 8], 0.5);
    let u2b = t(&format!("{UPCONV_K}.lokr_w2_b"), 39, &[2, 8], 0.5);
    let a3 = scalar(&format!("{UPCONV_K}.alpha"), 3.0);
    // Plain conv [64, 32, 3, 3]: w1 [8, 4], w2 = [8, 2]·[2, 8·9] (no alpha → scale 1).
    let c1 = t(&format!("{CONV_K}.lokr_w1"), 40, &[8, 4], 0.7);
    let c2a = t(&format!("{CONV_K}.lokr_w2_a"), 41, &[8, 2], 0.5);
    let c2b = t(&format!("{CONV_K}.lokr_w2_b"), 42, &[2, 8 * 9], 0.5);
    // Text encoder fc1 [37, 32]: w1 [1, 2], w2 = [37, 4]·[4, 16], alpha 2 → 1/2.
    let e1 = t(&format!("{FC1_K}.lokr_w1"), 43, &[1, 2], 0.7);
    let e2a = t(&format!("{FC1_K}.lokr_w2_a"), 44, &[37, 4], 0.5);
    let e2b = t(&format!("{FC1_K}.lokr_w2_b"), 45, &[4, 16], 0.5);
    let a5 = scalar(&format!("{FC1_K}.alpha"), 2.0);
    let path = save(
        dir.path(),
        "lokr_factor.safetensors",
        &[
            &w1, &w2a, &w2b, &a1, &v1a, &v1b, &v2, &a2, &u1, &ut, &u2a, &u2b, &a3, &c1, &c2a, &c2b,
            &e1, &e2a, &e2b, &a5,
        ],
    );
    let (s, st) = (0.7f32, 0.4f32);
    let (merged, report) = apply_one(&path, s as f64, st as f64);
    assert!(report.unmatched.is_empty(), "{}", report.summary());
    assert_eq!((report.unet_modules, report.text_modules), (4, 1));

    let w2 = mm(&w2a.data, &w2b.data, 32, 2, 8);
    let want = scaled(&kron(&w1.data, &w2, (8, 4), (32, 8, 1)), 0.5 * s);
    assert_close(&change(&merged, FF), &want, "LoKr w2 factorised");

    let v1 = mm(&v1a.data, &v1b.data, 4, 3, 4);
    let want = scaled(&kron(&v1, &v2.data, (4, 4), (8, 8, 1)), 2.0 * s);
    assert_close(&change(&merged, TOQ), &want, "LoKr w1 factorised");

    let u2 = tucker(&ut.data, &u2a.data, &u2b.data, 2, 8, 8, 9);
    let want = scaled(&kron(&u1.data, &u2, (4, 8), (8, 8, 9)), 1.5 * s);
    assert_close(&change(&merged, UPCONV), &want, "LoKr Tucker conv");

    // [8, 72] as [8, 8, 9]: the 2-D kron reshaped to the layer equals the 4-D one.
    let c2 = mm(&c2a.data, &c2b.data, 8, 2, 72);
    let want = scaled(&kron(&c1.data, &c2, (8, 4), (8, 8, 9)), s);
    assert_close(&change(&merged, CONV), &want, "LoKr plain conv");

    let e2 = mm(&e2a.data, &e2b.data, 37, 4, 16);
    let want = scaled(&kron(&e1.data, &e2, (1, 2), (37, 16, 1)), 0.5 * st);
    assert_close(
        &change(&merged, FC1),
        &want,
        "LoKr text encoder at its own strength",
    );
}

#[test]
fn dora_renormalises_on_each_axis_as_peft_and_lycoris_do() {
    let dir = tempfile::tempdir().unwrap();
    let base = sd15();
    let r = 2;
    let s = 0.6f32;
    // Output axis on a plain LoRA linear [32, 32], alpha 1 → scale 1/2.
    let d1 = t(&format!("{TOQ_K}.lora_down.weight"), 50, &[r, 32], 0.5);
    let u1 = t(&format!("{TOQ_K}.lora_up.weight"), 51, &[32, r], 0.5);
    let a1 = scalar(&format!("{TOQ_K}.alpha"), 1.0);
    let w_q = weight(&base, TOQ);
    let m1 = magnitude(
        &format!("{TOQ_K}.dora_scale"),
        &w_q,
        32,
        32,
        1,
        true,
        &[32, 1],
    );
    // Input axis on a LoHa linear [256, 32]: dora_scale [1, 32].
    let h = [
        t(&format!("{FF_K}.hada_w1_a"), 52, &[256, r], 0.3),
        t(&format!("{FF_K}.hada_w1_b"), 53, &[r, 32], 0.5),
        t(&format!("{FF_K}.hada_w2_a"), 54, &[256, r], 0.3),
        t(&format!("{FF_K}.hada_w2_b"), 55, &[r, 32], 0.5),
    ];
    let w_ff = weight(&base, FF);
    let m2 = magnitude(
        &format!("{FF_K}.dora_scale"),
        &w_ff,
        256,
        32,
        1,
        false,
        &[1, 32],
    );
    // Output axis on a LoKr conv [64, 32, 3, 3]: dora_scale [64, 1, 1, 1].
    let c1 = t(&format!("{CONV_K}.lokr_w1"), 56, &[4, 4], 0.5);
    let c2 = t(&format!("{CONV_K}.lokr_w2"), 57, &[16, 8, 3, 3], 0.1);
    let w_c = weight(&base, CONV);
    let m3 = magnitude(
        &format!("{CONV_K}.dora_scale"),
        &w_c,
        64,
        32,
        9,
        true,
        &[64, 1, 1, 1],
    );
    let path = save(
        dir.path(),
        "dora.safetensors",
        &[
            &d1, &u1, &a1, &m1, &h[0], &h[1], &h[2], &h[3], &m2, &c1, &c2, &m3,
        ],
    );
    let (merged, report) = apply_one(&path, s as f64, 1.0);
    assert!(report.unmatched.is_empty(), "{}", report.summary());
    assert_eq!(report.dora_modules, 3);
    let sum = report.summary();
    assert!(
        sum.contains("1 LoRA + 1 LoHa + 1 LoKr, 3 with DoRA"),
        "{sum}"
    );

    let d = scaled(&mm(&u1.data, &d1.data, 32, r, 32), 0.5 * s);
    let want = dora_ref(&w_q, &d, &m1.data, 32, 32, 1, true);
    assert_close(&change(&merged, TOQ), &want, "DoRA output axis (LoRA)");

    let p1 = mm(&h[0].data, &h[1].data, 256, r, 32);
    let p2 = mm(&h[2].data, &h[3].data, 256, r, 32);
    let d: Vec<f32> = p1.iter().zip(&p2).map(|(a, b)| a * b * s).collect();
    let want = dora_ref(&w_ff, &d, &m2.data, 256, 32, 1, false);
    assert_close(&change(&merged, FF), &want, "DoRA input axis (LoHa)");

    let d = scaled(&kron(&c1.data, &c2.data, (4, 4), (16, 8, 9)), s);
    let want = dora_ref(&w_c, &d, &m3.data, 64, 32, 9, true);
    assert_close(
        &change(&merged, CONV),
        &want,
        "DoRA output axis (LoKr conv)",
    );

    // Strength 0 switches every module off, DoRA's rescale included.
    let (merged, _) = apply_one(&path, 0.0, 0.0);
    for key in [TOQ, FF, CONV] {
        assert!(change(&merged, key).iter().all(|v| *v == 0.0), "{key}");
    }
}

#[test]
fn peft_dora_magnitude_vector_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let base = sd15();
    let m = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
    let down = t(&format!("{m}.lora_A.weight"), 60, &[2, 32], 0.5);
    let up = t(&format!("{m}.lora_B.weight"), 61, &[32, 2], 0.5);
    let w = weight(&base, TOQ);
    let mag = magnitude(
        &format!("{m}.lora_magnitude_vector"),
        &w,
        32,
        32,
        1,
        true,
        &[32],
    );
    let path = save(dir.path(), "peft_dora.safetensors", &[&down, &up, &mag]);
    let (merged, report) = apply_one(&path, 1.0, 1.0);
    assert!(report.unmatched.is_empty(), "{}", report.summary());
    assert_eq!(report.dora_modules, 1);
    let d = mm(&up.data, &down.data, 32, 2, 32);
    let want = dora_ref(&w, &d, &mag.data, 32, 32, 1, true);
    assert_close(&change(&merged, TOQ), &want, "PEFT DoRA");
}

#[test]
fn a_lokr_of_the_wrong_shape_names_the_key_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    // kron([4, 4], [8, 4]) = [32, 16], but to_q is [32, 32].
    let w1 = t(&format!("{TOQ_K}.lokr_w1"), 70, &[4, 4], 0.5);
    let w2 = t(&format!("{TOQ_K}.lokr_w2"), 71, &[8, 4], 0.5);
    let path = save(dir.path(), "bad_lokr.safetensors", &[&w1, &w2]);
    let err = apply_err(&path);
    for part in [
        "bad_lokr.safetensors",
        TOQ_K,
        "LoKr Kronecker product is [32, 16]",
        "w1 [4, 4] ⊗ w2 [8, 4]",
        TOQ,
        "[32, 32]",
    ] {
        assert!(err.contains(part), "{part:?} not in: {err}");
    }
}

#[test]
fn incomplete_modules_are_listed_as_unused() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = t(&format!("{TOQ_K}.lokr_w1"), 80, &[4, 2], 0.5);
    let w2 = t(&format!("{TOQ_K}.lokr_w2"), 81, &[8, 16], 0.5);
    // LyCORIS' never-used lokr_t1, a lone hada_w1_a, a lone dora_scale, a Tucker core alone.
    let t1 = t(&format!("{TOQ_K}.lokr_t1"), 82, &[2, 2, 1, 1], 0.5);
    let lone = t(&format!("{FF_K}.hada_w1_a"), 83, &[256, 2], 0.5);
    let dora = t(&format!("{CONV_K}.dora_scale"), 84, &[64, 1, 1, 1], 0.5);
    let h: Vec<T> = [
        "hada_w1_a",
        "hada_w1_b",
        "hada_w2_a",
        "hada_w2_b",
        "hada_t1",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| {
        let dims: &[usize] = match *p {
            "hada_t1" => &[2, 2, 3, 3],
            "hada_w1_b" | "hada_w2_b" => &[2, 64 * 9],
            _ => &[32, 2],
        };
        t(&format!("{UPCONV_K}.{p}"), 85 + i as u64, dims, 0.3)
    })
    .collect();
    let mut all: Vec<&T> = vec![&w1, &w2, &t1, &lone, &dora];
    all.extend(h.iter());
    let path = save(dir.path(), "partial.safetensors", &all);
    let (_, report) = apply_one(&path, 1.0, 1.0);
    assert_eq!(report.unet_modules, 1, "{}", report.summary());
    let mut want = vec![
        format!("{TOQ_K}.lokr_t1"),
        format!("{FF_K}.hada_w1_a"),
        format!("{CONV_K}.dora_scale"),
    ];
    want.extend(h.iter().map(|t| t.key.clone()));
    for k in &want {
        assert!(
            report.unmatched.contains(k),
            "{k} not listed: {}",
            report.summary()
        );
    }
    assert_eq!(report.unmatched.len(), want.len(), "{:?}", report.unmatched);

    // A file with nothing complete names the formats it expected.
    let path = save(dir.path(), "only_partial.safetensors", &[&lone]);
    let err = read(&path).map(|_| ()).unwrap_err().to_string();
    for part in [
        "only_partial.safetensors",
        "LoHa",
        "LoKr",
        "DoRA",
        &lone.key,
    ] {
        assert!(err.contains(part), "{part:?} not in: {err}");
    }
}

#[test]
fn a_truncated_lycoris_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = t(&format!("{TOQ_K}.lokr_w1"), 90, &[4, 2], 0.5);
    let w2 = t(&format!("{TOQ_K}.lokr_w2"), 91, &[8, 16], 0.5);
    let path = save(dir.path(), "cut.safetensors", &[&w1, &w2]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = apply_err(&path);
    assert!(err.contains("cut.safetensors"), "{err}");
}

#[test]
fn a_nan_factor_is_refused_rather_than_merged() {
    let dir = tempfile::tempdir().unwrap();
    let mut w1 = t(&format!("{TOQ_K}.lokr_w1"), 92, &[4, 2], 0.5);
    w1.data[3] = f32::NAN;
    let w2 = t(&format!("{TOQ_K}.lokr_w2"), 93, &[8, 16], 0.5);
    let path = save(dir.path(), "nan.safetensors", &[&w1, &w2]);
    let err = apply_err(&path);
    assert!(
        err.contains("nan.safetensors") && err.contains(TOQ_K) && err.contains("NaN"),
        "{err}"
    );
}

#[test]
fn lycoris_files_are_detected_as_loras_of_their_family() {
    let dir = tempfile::tempdir().unwrap();
    let sd1 = save(
        dir.path(),
        "loha1.safetensors",
        &[&t(&format!("{TOQ_K}.hada_w1_a"), 1, &[32, 2], 0.1)],
    );
    let xl = save(
        dir.path(),
        "lokrxl.safetensors",
        &[
            &t(
                "lora_unet_input_blocks_4_1_proj_in.lokr_w1",
                1,
                &[4, 4],
                0.1,
            ),
            &t(
                "lora_te2_text_model_encoder_layers_0_mlp_fc1.lokr_w1",
                1,
                &[4, 4],
                0.1,
            ),
        ],
    );
    let lyco = save(
        dir.path(),
        "lyco.safetensors",
        &[&t(
            "lycoris_down_blocks_0_attentions_0_proj_in.hada_w1_a",
            1,
            &[4, 4],
            0.1,
        )],
    );
    let arch = |p: &Path| {
        engine::models::manager::detect_arch(&engine::models::manager::read_header(p).unwrap())
    };
    assert_eq!(arch(&sd1), "lora-sd1");
    assert_eq!(arch(&xl), "lora-sdxl");
    assert_eq!(arch(&lyco), "lora-sd1");
}

/// A DoRA module after a plain LoRA on the same layer rescales that LoRA's change too (its
/// norm is taken on the base weight plus its own ΔW), as PEFT stacks adapters; before it, not.
#[test]
fn dora_stacks_with_a_plain_lora_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let base = sd15();
    let w = weight(&base, TOQ);
    let pd = t(&format!("{TOQ_K}.lora_down.weight"), 100, &[2, 32], 0.5);
    let pu = t(&format!("{TOQ_K}.lora_up.weight"), 101, &[32, 2], 0.5);
    let plain = save(dir.path(), "plain.safetensors", &[&pd, &pu]);
    let dd = t(&format!("{TOQ_K}.lora_down.weight"), 102, &[2, 32], 0.5);
    let du = t(&format!("{TOQ_K}.lora_up.weight"), 103, &[32, 2], 0.5);
    let mag = magnitude(
        &format!("{TOQ_K}.dora_scale"),
        &w,
        32,
        32,
        1,
        true,
        &[32, 1],
    );
    let dora = save(dir.path(), "dora.safetensors", &[&dd, &du, &mag]);
    let (sp, sd) = (0.5f32, 0.8f32);
    let spec = |p: &Path, s: f32| LoraSpec {
        path: p.to_path_buf(),
        unet: s as f64,
        text: s as f64,
    };
    let p = scaled(&mm(&pu.data, &pd.data, 32, 2, 32), sp);
    let d = scaled(&mm(&du.data, &dd.data, 32, 2, 32), sd);
    // Plain first: W' = f ⊙ (W + P + D) with f = m / ‖W + D‖.
    let (merged, _) = apply(&base, &[spec(&plain, sp), spec(&dora, sd)]).unwrap();
    let dora_alone = dora_ref(&w, &d, &mag.data, 32, 32, 1, true);
    let f: Vec<f32> = (0..32)
        .map(|o| {
            let n = (0..32)
                .map(|i| (w[o * 32 + i] + d[o * 32 + i]).powi(2))
                .sum::<f32>()
                .sqrt();
            mag.data[o] / n
        })
        .collect();
    let want: Vec<f32> = (0..32 * 32)
        .map(|j| f[j / 32] * (w[j] + p[j] + d[j]) - w[j])
        .collect();
    assert_close(&change(&merged, TOQ), &want, "plain then DoRA");
    // DoRA first: W' = f ⊙ (W + D) + P.
    let (merged, _) = apply(&base, &[spec(&dora, sd), spec(&plain, sp)]).unwrap();
    let want: Vec<f32> = dora_alone.iter().zip(&p).map(|(a, b)| a + b).collect();
    assert_close(&change(&merged, TOQ), &want, "DoRA then plain");
}

/// PEFT files keep alpha in `lora_adapter_metadata` (diffusers' loader uses it): lora_alpha 2
/// with rank 4 scales by 1/2, and an alpha_pattern entry overrides it for its module.
#[test]
fn peft_alpha_comes_from_the_adapter_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let q = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
    let f = "unet.down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj";
    let qd = t(&format!("{q}.lora_A.weight"), 110, &[4, 32], 0.5);
    let qu = t(&format!("{q}.lora_B.weight"), 111, &[32, 4], 0.5);
    let fd = t(&format!("{f}.lora_A.weight"), 112, &[4, 32], 0.5);
    let fu = t(&format!("{f}.lora_B.weight"), 113, &[256, 4], 0.5);
    let meta = serde_json::json!({
        "unet.lora_alpha": 2.0,
        "unet.r": 4,
        "unet.alpha_pattern": {"transformer_blocks.0.ff.net.0.proj": 12.0},
    })
    .to_string();
    let path = save_with_meta(
        dir.path(),
        "peft_alpha.safetensors",
        &[&qd, &qu, &fd, &fu],
        &[("lora_adapter_metadata", meta)],
    );
    let (merged, report) = apply_one(&path, 1.0, 1.0);
    assert!(report.unmatched.is_empty(), "{}", report.summary());
    let want = scaled(&mm(&qu.data, &qd.data, 32, 4, 32), 0.5);
    assert_close(&change(&merged, TOQ), &want, "PEFT lora_alpha");
    let want = scaled(&mm(&fu.data, &fd.data, 256, 4, 32), 3.0);
    assert_close(&change(&merged, FF), &want, "PEFT alpha_pattern");
}
