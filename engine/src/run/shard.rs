//! `--shard auto[/N]`: the shard index and count from a cluster scheduler's environment
//! (docs/cluster.md).
//!
//! - **Slurm job array:** index = `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` (arrays often
//!   start at 1), count = `SLURM_ARRAY_TASK_COUNT`; an `N` given must equal that count. Arrays
//!   with a step or gaps (`--array=1-8:2`, `--array=1,5`) give an index past the count and are
//!   refused.
//! - **Kubernetes Indexed Job:** index = `JOB_COMPLETION_INDEX`, count = the `N` of `auto/N`
//!   (required: the pod does not see the Job's `completions`).
//!
//! Both present (a Slurm job inside a pod, or the reverse) is fine when they agree. Missing,
//! non-numeric or inconsistent variables are one error naming them.

use crate::error::{EngineError, Result};

const SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";

/// The shard `(I, N)` of `--shard auto` or `--shard auto/N` (`spec`), read from the variables
/// `lookup` returns (the CLI passes the process environment).
pub fn shard_from_env(spec: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<(u32, u32)> {
    let err = |m: String| EngineError::Plan(format!("--shard {spec}: {m}"));
    let given = match spec.trim().strip_prefix("auto") {
        Some("") => None,
        Some(rest) => {
            let n = rest
                .strip_prefix('/')
                .ok_or_else(|| err("expected auto or auto/N".into()))?;
            match n.trim().parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(err(format!(
                        "N must be a whole number of at least 1, not {n:?}"
                    )))
                }
            }
        }
        None => return Err(err("expected auto or auto/N".into())),
    };
    let number = |name: &str, v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| err(format!("{name}={v:?} is not a whole number")))
    };
    let slurm_vars = [SLURM_ID, SLURM_MIN, SLURM_COUNT].map(|k| (k, lookup(k)));
    let slurm = if slurm_vars.iter().any(|(_, v)| v.is_some()) {
        let missing: Vec<&str> = slurm_vars
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        if !missing.is_empty() {
            return Err(err(format!(
                "a Slurm array sets {SLURM_ID}, {SLURM_MIN} and {SLURM_COUNT}, but {} {} not set",
                missing.join(" and "),
                if missing.len() == 1 { "is" } else { "are" }
            )));
        }
        let [id, min, count] = slurm_vars.map(|(k, v)| number(k, v.as_deref().unwrap_or("")));
        let (id, min, count) = (id?, min?, count?);
        if count == 0 {
            return Err(err(format!(
                "{SLURM_COUNT}=0: an array has at least one task"
            )));
        }
        if id < min {
            return Err(err(format!("{SLURM_ID}={id} is below {SLURM_MIN}={min}")));
        }
        let index = id - min;
        if index >= count {
            return Err(err(format!(
                "{SLURM_ID}={id} − {SLURM_MIN}={min} gives shard {index}, not below \
                 {SLURM_COUNT}={count}: use an array of consecutive task ids (--array=1-{count}, \
                 no step)"
            )));
        }
        if let Some(n) = given.filter(|n| *n != count) {
            return Err(err(format!(
                "N={n} but the Slurm array has {SLURM_COUNT}={count} tasks"
            )));
        }
        Some((index, count))
    } else {
        None
    };
    let k8s = match lookup(K8S_INDEX) {
        None => None,
        Some(v) => {
            let index = number(K8S_INDEX, &v)?;
            let Some(n) = given else {
                return Err(err(format!(
                    "{K8S_INDEX} is set (a Kubernetes Indexed Job) but the shard count is not: \
                     use --shard auto/N with N = the Job's completions"
                )));
            };
            if index >= n {
                return Err(err(format!(
                    "{K8S_INDEX}={index} is not below N={n} (the Job's completions must equal N)"
                )));
            }
            Some((index, n))
        }
    };
    match (slurm, k8s) {
        (Some(s), Some(k)) if s != k => Err(err(format!(
            "the Slurm array says shard {}/{} ({SLURM_ID} − {SLURM_MIN}, {SLURM_COUNT}) but \
             {K8S_INDEX} says shard {}/{}",
            s.0, s.1, k.0, k.1
        ))),
        (Some(s), _) => Ok(s),
        (None, Some(k)) => Ok(k),
        (None, None) => Err(err(format!(
            "no scheduler variables: a Slurm array sets {SLURM_ID}, {SLURM_MIN} and \
             {SLURM_COUNT}; a Kubernetes Indexed Job sets {K8S_INDEX}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(spec: &str, vars: &[(&str, &str)]) -> Result<(u32, u32)> {
        shard_from_env(spec, |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn slurm(id: &str, min: &str, count: &str) -> Vec<(&'static str, String)> {
        vec![
            (SLURM_ID, id.to_string()),
            (SLURM_MIN, min.to_string()),
            (SLURM_COUNT, count.to_string()),
        ]
    }

    fn with<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// The error message, which must name every variable in `names`.
    fn fails(r: Result<(u32, u32)>, names: &[&str]) -> String {
        let m = r.expect_err("must fail").to_string();
        for n in names {
            assert!(m.contains(n), "{m:?} does not name {n}");
        }
        assert!(!m.contains('\n'), "one line: {m:?}");
        m
    }

    #[test]
    fn slurm_arrays_starting_at_one_or_zero() {
        for (id, want) in [("1", 0), ("2", 1), ("4", 3)] {
            let v = slurm(id, "1", "4");
            assert_eq!(shard("auto", &with(&v)).unwrap(), (want, 4));
            assert_eq!(shard("auto/4", &with(&v)).unwrap(), (want, 4));
        }
        let v = slurm("0", "0", "3");
        assert_eq!(shard("auto", &with(&v)).unwrap(), (0, 3));
        // Spaces around numbers are tolerated.
        let v = slurm(" 3", "1 ", "4");
        assert!(shard("auto / 4", &with(&v)).is_err());
        assert_eq!(shard("auto/ 4", &with(&v)).unwrap(), (2, 4));
    }

    #[test]
    fn kubernetes_indexed_jobs_need_n() {
        let v = [(K8S_INDEX, "0")];
        assert_eq!(shard("auto/4", &v).unwrap(), (0, 4));
        assert_eq!(shard("auto/4", &[(K8S_INDEX, "3")]).unwrap(), (3, 4));
        fails(shard("auto", &v), &[K8S_INDEX, "auto/N"]);
        fails(shard("auto/4", &[(K8S_INDEX, "4")]), &[K8S_INDEX, "N=4"]);
        fails(shard("auto/4", &[(K8S_INDEX, "-1")]), &[K8S_INDEX, "-1"]);
        fails(shard("auto/4", &[(K8S_INDEX, "")]), &[K8S_INDEX]);
    }

    #[test]
    fn bad_specs() {
        let v = [(K8S_INDEX, "0")];
        for spec in [
            "auto/0",
            "auto/x",
            "auto/",
            "auto4",
            "automatic",
            "1/4",
            "auto/-2",
        ] {
            fails(shard(spec, &v), &["--shard"]);
        }
    }

    #[test]
    fn no_variables() {
        fails(
            shard("auto/4", &[]),
            &[SLURM_ID, SLURM_MIN, SLURM_COUNT, K8S_INDEX],
        );
    }

    #[test]
    fn missing_non_numeric_and_inconsistent_slurm_variables() {
        fails(shard("auto", &[(SLURM_ID, "2")]), &[SLURM_MIN, SLURM_COUNT]);
        fails(
            shard("auto", &[(SLURM_ID, "2"), (SLURM_MIN, "1")]),
            &[SLURM_COUNT],
        );
        fails(
            shard("auto", &[(SLURM_MIN, "1"), (SLURM_COUNT, "4")]),
            &[SLURM_ID],
        );
        fails(
            shard("auto", &with(&slurm("two", "1", "4"))),
            &[SLURM_ID, "two"],
        );
        fails(shard("auto", &with(&slurm("2", "1", "4x"))), &[SLURM_COUNT]);
        fails(shard("auto", &with(&slurm("2", "1", "0"))), &[SLURM_COUNT]);
        fails(
            shard("auto", &with(&slurm("0", "1", "4"))),
            &[SLURM_ID, SLURM_MIN],
        );
        // A stepped array (--array=1-7:2): ids 1, 3, 5, 7, count 4.
        fails(
            shard("auto", &with(&slurm("7", "1", "4"))),
            &[SLURM_ID, SLURM_COUNT],
        );
        // N disagrees with the array.
        fails(
            shard("auto/8", &with(&slurm("2", "1", "4"))),
            &[SLURM_COUNT, "N=8"],
        );
    }

    #[test]
    fn both_schedulers_must_agree() {
        let mut v = slurm("2", "1", "4");
        v.push((K8S_INDEX, "1".into()));
        assert_eq!(shard("auto/4", &with(&v)).unwrap(), (1, 4));
        v.pop();
        v.push((K8S_INDEX, "2".into()));
        fails(shard("auto/4", &with(&v)), &[SLURM_ID, K8S_INDEX]);
        // Without N the Kubernetes index has no count.
        v.pop();
        v.push((K8S_INDEX, "1".into()));
        fails(shard("auto", &with(&v)), &[K8S_INDEX]);
    }
}
