//! The one table of schedulers: each name users pick (`scheduler` parameter, `--scheduler`)
//! with the diffusers class it reproduces, the sampler text AUTOMATIC1111 writes for it, and
//! the ComfyUI `sampler_name` + `scheduler` pairs that are the same sampler.
//!
//! Everything else derives from [`SCHEDULERS`]: the engine's `SchedulerKind` (names, parsing,
//! diffusers classes), the A1111 writer ([`a1111_name`]) and parser ([`from_a1111`]), and the
//! ComfyUI importer ([`from_comfy`]). The node spec's choice list
//! ([`crate::diffusion::SCHEDULERS`]) is `default` followed by these names; a test checks it.
//!
//! **A1111's two spellings.** Up to 1.8, A1111 wrote the schedule into the sampler name
//! (`Sampler: DPM++ 2M Karras`); from 1.9 on it writes `Sampler: DPM++ 2M, Schedule type: Karras`
//! and still reads the combined name (it splits a known schedule suffix off the sampler). We
//! write the combined name ([`a1111_name`]), which every version reads the same way, and read
//! both.

/// One scheduler and its names elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerInfo {
    /// Our name (the node parameter's choice and the CLI's `--scheduler`).
    pub name: &'static str,
    /// The diffusers class this scheduler reproduces.
    pub diffusers_class: &'static str,
    /// diffusers' `use_karras_sigmas` for this scheduler.
    pub karras: bool,
    /// A1111's sampler name, without the schedule (`DPM++ 2M`).
    pub a1111_sampler: &'static str,
    /// A1111's schedule type (≥ 1.9 `Schedule type:`, or the suffix of the older combined name);
    /// `None` = the sampler's own schedule (`Automatic`).
    pub a1111_schedule: Option<&'static str>,
    /// Other sampler names A1111 has written for the same sampler (read, never written).
    pub a1111_aliases: &'static [&'static str],
    /// ComfyUI `(sampler_name, scheduler)` pairs that are exactly this scheduler; the first is
    /// the canonical one. Empty: ComfyUI has no equivalent.
    pub comfy: &'static [(&'static str, &'static str)],
}

/// Every scheduler, in the order the node spec lists them.
pub const SCHEDULERS: &[SchedulerInfo] = &[
    SchedulerInfo {
        name: "ddim",
        diffusers_class: "DDIMScheduler",
        karras: false,
        a1111_sampler: "DDIM",
        a1111_schedule: None,
        a1111_aliases: &[],
        comfy: &[("ddim", "normal"), ("ddim", "ddim_uniform")],
    },
    SchedulerInfo {
        name: "euler",
        diffusers_class: "EulerDiscreteScheduler",
        karras: false,
        a1111_sampler: "Euler",
        a1111_schedule: None,
        a1111_aliases: &[],
        comfy: &[("euler", "normal")],
    },
    SchedulerInfo {
        name: "euler_a",
        diffusers_class: "EulerAncestralDiscreteScheduler",
        karras: false,
        a1111_sampler: "Euler a",
        a1111_schedule: None,
        a1111_aliases: &[],
        comfy: &[("euler_ancestral", "normal")],
    },
    SchedulerInfo {
        name: "dpmpp_2m",
        diffusers_class: "DPMSolverMultistepScheduler",
        karras: false,
        a1111_sampler: "DPM++ 2M",
        a1111_schedule: None,
        a1111_aliases: &[],
        comfy: &[("dpmpp_2m", "normal")],
    },
    SchedulerInfo {
        name: "dpmpp_2m_karras",
        diffusers_class: "DPMSolverMultistepScheduler",
        karras: true,
        a1111_sampler: "DPM++ 2M",
        a1111_schedule: Some("Karras"),
        a1111_aliases: &[],
        comfy: &[("dpmpp_2m", "karras")],
    },
    SchedulerInfo {
        name: "lms",
        diffusers_class: "LMSDiscreteScheduler",
        karras: false,
        a1111_sampler: "LMS",
        a1111_schedule: None,
        a1111_aliases: &[],
        comfy: &[("lms", "normal")],
    },
    SchedulerInfo {
        name: "pndm",
        diffusers_class: "PNDMScheduler",
        karras: false,
        a1111_sampler: "PLMS",
        a1111_schedule: None,
        a1111_aliases: &["PNDM"],
        comfy: &[],
    },
    SchedulerInfo {
        name: "unipc",
        diffusers_class: "UniPCMultistepScheduler",
        karras: false,
        a1111_sampler: "UniPC",
        a1111_schedule: None,
        a1111_aliases: &[],
        comfy: &[("uni_pc", "normal")],
    },
];

/// A1111's schedule labels that can end a combined sampler name (`DPM++ 2M Karras`), as its
/// `sd_schedulers` lists them.
const A1111_SCHEDULE_SUFFIXES: &[&str] = &[
    "Karras",
    "Exponential",
    "Polyexponential",
    "SGM Uniform",
    "KL Optimal",
    "Align Your Steps",
    "Uniform",
    "Simple",
    "Normal",
    "Beta",
];

/// The scheduler called `name` (exact, as the node parameter holds it).
pub fn get(name: &str) -> Option<&'static SchedulerInfo> {
    SCHEDULERS.iter().find(|s| s.name == name)
}

/// Our scheduler names, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    SCHEDULERS.iter().map(|s| s.name)
}

/// The valid names joined with `, ` (for error messages).
pub fn names_list() -> String {
    names().collect::<Vec<_>>().join(", ")
}

/// The scheduler of a diffusers class and its `use_karras_sigmas`, e.g. what a model's
/// `scheduler_config.json` names. `use_karras_sigmas` is ignored by classes we have no Karras
/// variant of.
pub fn from_diffusers(class: &str, karras: bool) -> Option<&'static SchedulerInfo> {
    let mut of_class = SCHEDULERS.iter().filter(|s| s.diffusers_class == class);
    let first = of_class.next()?;
    Some(
        std::iter::once(first)
            .chain(of_class)
            .find(|s| s.karras == karras)
            .unwrap_or(first),
    )
}

/// The `Sampler:` text of A1111's infotext for our scheduler `name`: the combined name
/// (`DPM++ 2M Karras`), which A1111 reads the same way in every version. `None` for a name not in
/// the table (such as `default`).
pub fn a1111_name(name: &str) -> Option<String> {
    let s = get(name)?;
    Some(match s.a1111_schedule {
        Some(k) => format!("{} {k}", s.a1111_sampler),
        None => s.a1111_sampler.to_string(),
    })
}

/// Our scheduler for A1111's sampler name and its separate `Schedule type` (A1111 ≥ 1.9), or why
/// there is none. `Automatic` (or no schedule type) means the sampler's own schedule; combined
/// names such as `DPM++ 2M Karras` are accepted, and a schedule suffix that contradicts the
/// schedule type is an error.
pub fn from_a1111(
    sampler: &str,
    schedule_type: Option<&str>,
) -> Result<&'static SchedulerInfo, String> {
    let s = sampler.trim();
    let (base, suffix) = A1111_SCHEDULE_SUFFIXES
        .iter()
        .find_map(|k| {
            s.strip_suffix(k)
                .and_then(|b| b.strip_suffix(' '))
                .map(|b| (b, Some(*k)))
        })
        .unwrap_or((s, None));
    let schedule = match (suffix, schedule_type.map(str::trim)) {
        (Some(a), Some(b)) if b != "Automatic" && !a.eq_ignore_ascii_case(b) => {
            return Err(format!(
                "sampler \"{sampler}\" conflicts with schedule type \"{b}\""
            ))
        }
        (Some(a), _) => Some(a),
        (None, Some("Automatic")) | (None, Some("")) | (None, None) => None,
        (None, Some(b)) => Some(b),
    };
    SCHEDULERS
        .iter()
        .find(|e| {
            (e.a1111_sampler == base || e.a1111_aliases.contains(&base))
                && match (e.a1111_schedule, schedule) {
                    (None, None) => true,
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    _ => false,
                }
        })
        .ok_or_else(|| {
            let with = schedule
                .map(|k| format!(" with schedule \"{k}\""))
                .unwrap_or_default();
            format!(
                "sampler \"{base}\"{with} has no equivalent (we have: {})",
                names_list()
            )
        })
}

/// Our scheduler for ComfyUI's `sampler_name` + `scheduler`, or why there is none. Only exact
/// equivalents are accepted: ComfyUI's `normal` is the model's own timestep schedule.
pub fn from_comfy(sampler_name: &str, scheduler: &str) -> Result<&'static SchedulerInfo, String> {
    SCHEDULERS
        .iter()
        .find(|e| e.comfy.contains(&(sampler_name, scheduler)))
        .ok_or_else(|| {
            format!(
                "sampler \"{sampler_name}\" with scheduler \"{scheduler}\" has no exact \
                 equivalent (we have: {})",
                names_list()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_node_specs_choice_list() {
        let spec: Vec<&str> = crate::diffusion::SCHEDULERS.to_vec();
        let mut ours = vec!["default"];
        ours.extend(names());
        assert_eq!(
            spec, ours,
            "nodes::diffusion::SCHEDULERS and the scheduler table differ"
        );
        let mut unique = ours.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ours.len(), "duplicate scheduler names");
    }

    #[test]
    fn every_name_round_trips_through_every_mapping() {
        for s in SCHEDULERS {
            assert_eq!(get(s.name), Some(s));
            assert_eq!(from_diffusers(s.diffusers_class, s.karras), Some(s));
            // The written combined name reads back, alone and with A1111 ≥ 1.9's fields.
            let text = a1111_name(s.name).expect(s.name);
            assert_eq!(from_a1111(&text, None), Ok(s), "{text}");
            assert_eq!(from_a1111(&text, Some("Automatic")), Ok(s), "{text}");
            assert_eq!(from_a1111(s.a1111_sampler, s.a1111_schedule), Ok(s));
            for alias in s.a1111_aliases {
                assert_eq!(from_a1111(alias, s.a1111_schedule), Ok(s), "{alias}");
            }
            for (sampler, schedule) in s.comfy {
                assert_eq!(from_comfy(sampler, schedule), Ok(s), "{sampler}+{schedule}");
            }
        }
        assert_eq!(a1111_name("default"), None);
    }

    #[test]
    fn a1111_spellings() {
        assert_eq!(
            a1111_name("dpmpp_2m_karras").as_deref(),
            Some("DPM++ 2M Karras")
        );
        assert_eq!(a1111_name("euler_a").as_deref(), Some("Euler a"));
        assert_eq!(a1111_name("pndm").as_deref(), Some("PLMS"));
        let k = |s, t| from_a1111(s, t).map(|e| e.name);
        assert_eq!(k("DPM++ 2M", Some("Karras")), Ok("dpmpp_2m_karras"));
        assert_eq!(k("DPM++ 2M", Some("karras")), Ok("dpmpp_2m_karras"));
        assert_eq!(k("DPM++ 2M", None), Ok("dpmpp_2m"));
        assert_eq!(k("PNDM", None), Ok("pndm"));
        assert!(k("DPM++ 2M Karras", Some("Exponential"))
            .unwrap_err()
            .contains("conflicts"));
        let e = k("DPM++ 2M", Some("Exponential")).unwrap_err();
        assert!(
            e.contains("Exponential") && e.contains("dpmpp_2m_karras"),
            "{e}"
        );
        assert!(k("DPM++ SDE", None).is_err());
        assert!(k("Euler", Some("Karras")).is_err());
    }

    #[test]
    fn comfy_pairs() {
        let k = |a, b| from_comfy(a, b).map(|e| e.name);
        assert_eq!(k("ddim", "ddim_uniform"), Ok("ddim"));
        assert_eq!(k("dpmpp_2m", "karras"), Ok("dpmpp_2m_karras"));
        let e = k("euler", "karras").unwrap_err();
        assert!(e.contains("\"euler\"") && e.contains("unipc"), "{e}");
        // diffusers' DPMSolverMultistepScheduler without Karras sigmas is dpmpp_2m.
        assert_eq!(
            from_diffusers("DPMSolverMultistepScheduler", false).map(|e| e.name),
            Some("dpmpp_2m")
        );
        // A Karras flag on a class without a Karras variant keeps the class.
        assert_eq!(
            from_diffusers("EulerDiscreteScheduler", true).map(|e| e.name),
            Some("euler")
        );
        assert_eq!(from_diffusers("HeunDiscreteScheduler", false), None);
    }
}
