//! [`Plan`]: the stages of a rollout, their tiers of thresholds, the go
//! criteria, the final validation window and the sign-offs. Plans are data:
//! JSON files, validated on load; [`Plan::six_day`] is the default.

use crate::FileError;
use crate::JsonError;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rollout::foundation::duration::{format_duration, serde_text};
use crate::Percentage;

/// A staged rollout plan.
///
/// ```
/// use genesis_flags::rollout::Plan;
/// let plan = Plan::six_day();
/// let targets: Vec<f64> = plan.stages.iter().map(|s| s.percentage.as_percent()).collect();
/// assert_eq!(targets, [5.0, 10.0, 25.0, 50.0, 75.0, 100.0]);
/// assert_eq!(plan.estimated_duration().as_secs(), 144 * 3600);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// A name for logs and reports.
    pub name: String,
    /// The stages, in order; percentages strictly increase and end at 100.
    pub stages: Vec<Stage>,
    /// The final validation window at 100%, counted from reaching 100%.
    #[serde(rename = "final")]
    pub validation: Validation,
    /// Roles that must sign off before the rollout completes.
    pub signoffs: Vec<String>,
    /// Rollback thresholds by tier name.
    pub tiers: BTreeMap<String, Tier>,
    /// What "healthy enough to advance" means.
    pub go: GoCriteria,
    /// Continuous NoData/Error after which the rollout pauses for a person.
    #[serde(with = "serde_text", default = "default_no_data_budget")]
    pub no_data_budget: Duration,
    /// Requests in the window below which the error rate and latency are NoData.
    #[serde(default = "default_min_requests")]
    pub min_requests: f64,
}

/// One stage: a percentage held for a soak window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The rollout percentage of this stage.
    pub percentage: Percentage,
    /// How long to hold it before advancing.
    #[serde(with = "serde_text")]
    pub soak: Duration,
    /// How often to report on it.
    #[serde(with = "serde_text")]
    pub report_every: Duration,
    /// The tier of rollback thresholds that applies.
    pub tier: String,
}

/// The final validation window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// How long 100% must hold, counted from reaching 100% (so it includes
    /// the last stage's soak). A breach of a go criterion restarts it.
    #[serde(with = "serde_text")]
    pub duration: Duration,
    /// How often to report during it.
    #[serde(with = "serde_text")]
    pub report_every: Duration,
    /// The tier that applies during it.
    pub tier: String,
}

/// Auto-rollback thresholds of a tier. A breach must be sustained (error
/// rate, latency) or repeated (health checks) to roll back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Roll back when the error rate stays above this percentage (0.5 = 0.5%).
    pub error_rate_percent: f64,
    /// Roll back when the P95 latency stays above this many milliseconds.
    pub p95_ms: f64,
    /// How long a breach must be sustained: consecutive Breach verdicts
    /// spanning at least this long.
    #[serde(with = "serde_text")]
    pub sustained: Duration,
    /// Roll back after this many consecutive ticks with a failed health check.
    pub consecutive_health_failures: u32,
}

/// The go criteria, checked at the end of each soak and through the final window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoCriteria {
    /// The error rate must be below this percentage (0.1 = 0.1%).
    pub error_rate_percent_below: f64,
    /// The P95 latency must be below this many milliseconds.
    pub p95_ms_below: f64,
    /// Whether a firing critical alert blocks advancing (it should).
    #[serde(default = "yes")]
    pub no_critical_alerts: bool,
}

fn default_no_data_budget() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_min_requests() -> f64 {
    10.0
}

fn yes() -> bool {
    true
}

/// Why a plan was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The file could not be read.
    #[error(transparent)]
    Io(FileError),
    /// Not JSON, or not the plan's shape (unknown field, wrong type, bad duration).
    #[error("plan is not valid: {0}")]
    Syntax(JsonError),
    /// The plan's shape is right but its content is not: every problem, with its field.
    #[error("invalid plan:{}", problems.iter().map(|(f, m)| format!("\n  {f}: {m}")).collect::<String>())]
    Invalid {
        /// `(field, problem)` pairs, e.g. `("stages[2].percentage", "...")`.
        problems: Vec<(String, String)>,
    },
}

const H: u64 = 3600;

/// The longest duration a plan may hold anywhere (a soak, a report interval,
/// the final window, a tier's `sustained`, the no-data budget): 365 days.
pub const MAX_PLAN_DURATION: Duration = Duration::from_secs(365 * 24 * H);

/// The most consecutive failed health checks a tier may wait for.
pub const MAX_HEALTH_FAILURES: u32 = 10_000;

/// The largest `min_requests` a plan may ask for.
pub const MAX_MIN_REQUESTS: f64 = 1e12;

/// Checks a duration of the plan: positive and at most [`MAX_PLAN_DURATION`].
fn check_duration(problem: &mut impl FnMut(String, String), field: String, d: Duration) {
    if d.is_zero() {
        problem(field, "must be positive".into());
    } else if d > MAX_PLAN_DURATION {
        problem(
            field,
            format!(
                "{} exceeds the limit of 365 days ({})",
                format_duration(d),
                format_duration(MAX_PLAN_DURATION)
            ),
        );
    }
}

impl Plan {
    /// The six-day plan of the deployment decisions of 2025-10-20: 5, 10, 25,
    /// 50, 75, 100% with soaks of 12, 12, 24, 24, 24, 24 h, then 48 h at 100%
    /// (counted from reaching 100%), and three sign-offs.
    #[must_use]
    pub fn six_day() -> Plan {
        let stage = |pct: u32, soak_h: u64, report_min: u64, tier: &str| Stage {
            percentage: Percentage::from_ppm(pct * 10_000).unwrap_or(Percentage::HUNDRED),
            soak: Duration::from_secs(soak_h * H),
            report_every: Duration::from_secs(report_min * 60),
            tier: tier.to_owned(),
        };
        let tier = |error: f64, p95: f64, health: u32| Tier {
            error_rate_percent: error,
            p95_ms: p95,
            sustained: Duration::from_secs(5 * 60),
            consecutive_health_failures: health,
        };
        Plan {
            name: "six-day".to_owned(),
            stages: vec![
                stage(5, 12, 15, "canary"),
                stage(10, 12, 15, "canary"),
                stage(25, 24, 60, "mid"),
                stage(50, 24, 120, "mid"),
                stage(75, 24, 240, "late"),
                stage(100, 24, 360, "late"),
            ],
            validation: Validation {
                duration: Duration::from_secs(48 * H),
                report_every: Duration::from_secs(12 * H),
                tier: "late".to_owned(),
            },
            signoffs: vec![
                "deployment_lead".to_owned(),
                "on_call_engineer".to_owned(),
                "security_lead".to_owned(),
            ],
            tiers: BTreeMap::from([
                ("canary".to_owned(), tier(0.5, 300.0, 3)),
                ("mid".to_owned(), tier(0.8, 400.0, 4)),
                ("late".to_owned(), tier(1.0, 500.0, 5)),
            ]),
            go: GoCriteria {
                error_rate_percent_below: 0.1,
                p95_ms_below: 200.0,
                no_critical_alerts: true,
            },
            no_data_budget: default_no_data_budget(),
            min_requests: default_min_requests(),
        }
    }

    /// Parses and validates a JSON plan.
    ///
    /// # Errors
    ///
    /// `PlanError::Syntax` (with its line and column) for text that is not a
    /// plan; `Invalid` listing every rule the plan breaks.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let plan: Plan =
            serde_json::from_str(text).map_err(|e| PlanError::Syntax(JsonError::from_serde(&e)))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Reads and validates a JSON plan file.
    ///
    /// # Errors
    ///
    /// `PlanError::Io` when the file cannot be read; otherwise as
    /// [`from_json`](Self::from_json).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Plan, PlanError> {
        let path = path.as_ref();
        let text = crate::rollout::foundation::read::read_text(path).map_err(|source| {
            PlanError::Io(FileError::new(
                "cannot read plan",
                path.to_path_buf(),
                source,
            ))
        })?;
        Plan::from_json(&text)
    }

    /// Checks every rule, reporting all problems at once.
    ///
    /// # Errors
    ///
    /// `PlanError::Invalid` listing every problem.
    pub fn validate(&self) -> Result<(), PlanError> {
        let mut problems = Vec::new();
        let mut problem = |field: String, message: String| problems.push((field, message));
        if self.stages.is_empty() {
            problem("stages".into(), "a plan needs at least one stage".into());
        }
        let mut previous: Option<Percentage> = None;
        for (i, s) in self.stages.iter().enumerate() {
            if let Some(p) = previous {
                if s.percentage <= p {
                    problem(
                        format!("stages[{i}].percentage"),
                        format!("{} does not exceed the previous stage's {p}", s.percentage),
                    );
                }
            }
            previous = Some(s.percentage);
            check_duration(&mut problem, format!("stages[{i}].soak"), s.soak);
            check_duration(
                &mut problem,
                format!("stages[{i}].report_every"),
                s.report_every,
            );
            if !self.tiers.contains_key(&s.tier) {
                problem(format!("stages[{i}].tier"), self.unknown_tier(&s.tier));
            }
        }
        if let Some(last) = self.stages.last() {
            if last.percentage != Percentage::HUNDRED {
                problem(
                    format!("stages[{}].percentage", self.stages.len() - 1),
                    format!("the last stage must be 100%, not {}", last.percentage),
                );
            }
        }
        check_duration(
            &mut problem,
            "final.duration".into(),
            self.validation.duration,
        );
        check_duration(
            &mut problem,
            "final.report_every".into(),
            self.validation.report_every,
        );
        if !self.tiers.contains_key(&self.validation.tier) {
            problem(
                "final.tier".into(),
                self.unknown_tier(&self.validation.tier),
            );
        }
        for (name, t) in &self.tiers {
            // Go must be stricter than rollback: a stage that would pass go
            // while breaching would advance a rollout that should roll back.
            if self.go.error_rate_percent_below > t.error_rate_percent {
                problem(
                    "go.error_rate_percent_below".into(),
                    format!(
                        "{}% is above the {name} tier's rollback threshold of {}%; go must be stricter than rollback",
                        self.go.error_rate_percent_below, t.error_rate_percent
                    ),
                );
            }
            if self.go.p95_ms_below > t.p95_ms {
                problem(
                    "go.p95_ms_below".into(),
                    format!(
                        "{} ms is above the {name} tier's rollback threshold of {} ms; go must be stricter than rollback",
                        self.go.p95_ms_below, t.p95_ms
                    ),
                );
            }
            let positive = |v: f64| v.is_finite() && v > 0.0;
            if !positive(t.error_rate_percent) || t.error_rate_percent > 100.0 {
                problem(
                    format!("tiers.{name}.error_rate_percent"),
                    format!("{} is not a percentage in (0, 100]", t.error_rate_percent),
                );
            }
            if !positive(t.p95_ms) {
                problem(
                    format!("tiers.{name}.p95_ms"),
                    format!("{} is not a positive number", t.p95_ms),
                );
            }
            check_duration(&mut problem, format!("tiers.{name}.sustained"), t.sustained);
            // A breach must be able to run for `sustained` inside every
            // window the tier governs, or auto-rollback could never fire.
            for (i, s) in self.stages.iter().enumerate() {
                if s.tier == *name && !t.sustained.is_zero() && t.sustained > s.soak {
                    problem(
                        format!("tiers.{name}.sustained"),
                        format!(
                            "{} exceeds the soak of stages[{i}] ({}, {}), which uses this tier: \
                             a breach could never be sustained long enough to roll back",
                            format_duration(t.sustained),
                            format_duration(s.soak),
                            s.percentage
                        ),
                    );
                }
            }
            if self.validation.tier == *name
                && !t.sustained.is_zero()
                && t.sustained > self.validation.duration
            {
                problem(
                    format!("tiers.{name}.sustained"),
                    format!(
                        "{} exceeds final.duration ({}), whose tier this is: \
                         a breach could never be sustained long enough to roll back",
                        format_duration(t.sustained),
                        format_duration(self.validation.duration)
                    ),
                );
            }
            if t.consecutive_health_failures == 0 {
                problem(
                    format!("tiers.{name}.consecutive_health_failures"),
                    "must be at least 1".into(),
                );
            } else if t.consecutive_health_failures > MAX_HEALTH_FAILURES {
                problem(
                    format!("tiers.{name}.consecutive_health_failures"),
                    format!(
                        "{} exceeds the limit of {MAX_HEALTH_FAILURES}",
                        t.consecutive_health_failures
                    ),
                );
            }
        }
        let go = &self.go;
        if !(go.error_rate_percent_below.is_finite() && go.error_rate_percent_below > 0.0) {
            problem(
                "go.error_rate_percent_below".into(),
                "must be a positive number".into(),
            );
        }
        if !(go.p95_ms_below.is_finite() && go.p95_ms_below > 0.0) {
            problem("go.p95_ms_below".into(), "must be a positive number".into());
        }
        check_duration(&mut problem, "no_data_budget".into(), self.no_data_budget);
        if !(self.min_requests.is_finite() && self.min_requests >= 0.0) {
            problem("min_requests".into(), "must be a number >= 0".into());
        } else if self.min_requests > MAX_MIN_REQUESTS {
            problem(
                "min_requests".into(),
                format!("{} exceeds the limit of 1e12", self.min_requests),
            );
        }
        for (i, role) in self.signoffs.iter().enumerate() {
            if role.trim().is_empty() {
                problem(format!("signoffs[{i}]"), "a role name is empty".into());
            } else if self.signoffs[..i].contains(role) {
                problem(
                    format!("signoffs[{i}]"),
                    format!("role {role:?} is listed twice"),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PlanError::Invalid { problems })
        }
    }

    fn unknown_tier(&self, tier: &str) -> String {
        let known: Vec<&str> = self.tiers.keys().map(String::as_str).collect();
        format!(
            "unknown tier {tier:?} (the plan defines: {})",
            known.join(", ")
        )
    }

    /// The stage (1-based) or `None` for stage 0 / past the end.
    #[must_use]
    pub fn stage(&self, stage: usize) -> Option<&Stage> {
        stage.checked_sub(1).and_then(|i| self.stages.get(i))
    }

    /// The tier's thresholds by name.
    #[must_use]
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.get(name)
    }

    /// Healthy-run length: the time to reach 100% plus the final window.
    #[must_use]
    pub fn estimated_duration(&self) -> Duration {
        let to_full: Duration = self
            .stages
            .iter()
            .take(self.stages.len().saturating_sub(1))
            .map(|s| s.soak)
            .sum();
        let last_soak = self.stages.last().map_or(Duration::ZERO, |s| s.soak);
        to_full + self.validation.duration.max(last_soak)
    }
}

impl Default for Plan {
    fn default() -> Self {
        Plan::six_day()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::parse_duration;

    #[test]
    fn the_default_plan_is_valid_and_matches_the_design() {
        let plan = Plan::six_day();
        plan.validate().unwrap();
        let soaks: Vec<u64> = plan.stages.iter().map(|s| s.soak.as_secs() / H).collect();
        assert_eq!(soaks, [12, 12, 24, 24, 24, 24]);
        let tiers: Vec<&str> = plan.stages.iter().map(|s| s.tier.as_str()).collect();
        assert_eq!(tiers, ["canary", "canary", "mid", "mid", "late", "late"]);
        let canary = plan.tier("canary").unwrap();
        assert_eq!(
            (
                canary.error_rate_percent,
                canary.p95_ms,
                canary.consecutive_health_failures
            ),
            (0.5, 300.0, 3)
        );
        let mid = plan.tier("mid").unwrap();
        assert_eq!(
            (
                mid.error_rate_percent,
                mid.p95_ms,
                mid.consecutive_health_failures
            ),
            (0.8, 400.0, 4)
        );
        let late = plan.tier("late").unwrap();
        assert_eq!(
            (
                late.error_rate_percent,
                late.p95_ms,
                late.consecutive_health_failures
            ),
            (1.0, 500.0, 5)
        );
        assert_eq!(plan.estimated_duration(), Duration::from_secs(144 * H));
    }

    #[test]
    fn json_round_trip() {
        let plan = Plan::six_day();
        let text = serde_json::to_string_pretty(&plan).unwrap();
        assert!(text.contains("\"soak\": \"12h\""), "{text}");
        assert_eq!(Plan::from_json(&text).unwrap(), plan);
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut plan = Plan::six_day();
        plan.stages[2].percentage = Percentage::from_ppm(50_000).unwrap();
        plan.stages[3].tier = "nope".into();
        plan.stages[5].percentage = Percentage::from_ppm(900_000).unwrap();
        plan.stages[0].soak = Duration::ZERO;
        plan.signoffs.push("security_lead".into());
        let err = plan.validate().unwrap_err().to_string();
        for needle in [
            "stages[2].percentage: 5% does not exceed the previous stage's 10%",
            "stages[3].tier: unknown tier \"nope\"",
            "stages[5].percentage: the last stage must be 100%, not 90%",
            "stages[0].soak: must be positive",
            "signoffs[3]: role \"security_lead\" is listed twice",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn shape_errors_have_a_position() {
        let err = Plan::from_json(r#"{"name":"x","stages":[{"percentage":5,"soak":"12","report_every":"1h","tier":"a"}]}"#)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("invalid duration \"12\""), "{text}");
        assert!(
            matches!(&err, PlanError::Syntax(e) if e.line == 1),
            "{err:?}"
        );
    }

    #[test]
    fn durations_and_counts_are_bounded() {
        let mut plan = Plan::six_day();
        plan.stages[0].soak = parse_duration("213503982334d").unwrap();
        plan.stages[1].report_every = MAX_PLAN_DURATION + Duration::from_millis(1);
        plan.validation.duration = Duration::from_secs(366 * 24 * H);
        plan.validation.report_every = Duration::from_secs(400 * 24 * H);
        plan.no_data_budget = Duration::from_secs(1000 * 24 * H);
        plan.tiers
            .get_mut("mid")
            .unwrap()
            .consecutive_health_failures = 10_001;
        plan.min_requests = 2e12;
        let err = plan.validate().unwrap_err().to_string();
        for needle in [
            "stages[0].soak: 5124095576016h exceeds the limit of 365 days (8760h)",
            "stages[1].report_every: 8760h1ms exceeds the limit of 365 days",
            "final.duration: 8784h exceeds the limit of 365 days",
            "final.report_every: 9600h exceeds the limit of 365 days",
            "no_data_budget: 24000h exceeds the limit of 365 days",
            "tiers.mid.consecutive_health_failures: 10001 exceeds the limit of 10000",
            "min_requests: 2000000000000 exceeds the limit of 1e12",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
    }

    #[test]
    fn the_limits_themselves_are_accepted() {
        let mut plan = Plan::six_day();
        for s in &mut plan.stages {
            s.soak = MAX_PLAN_DURATION;
            s.report_every = MAX_PLAN_DURATION;
        }
        plan.validation.duration = MAX_PLAN_DURATION;
        plan.validation.report_every = MAX_PLAN_DURATION;
        plan.no_data_budget = MAX_PLAN_DURATION;
        for t in plan.tiers.values_mut() {
            t.sustained = MAX_PLAN_DURATION;
            t.consecutive_health_failures = MAX_HEALTH_FAILURES;
        }
        plan.min_requests = MAX_MIN_REQUESTS;
        plan.validate().unwrap();
    }

    #[test]
    fn sustained_must_fit_in_every_window_of_its_tier() {
        let mut plan = Plan::six_day();
        plan.tiers.get_mut("canary").unwrap().sustained = Duration::from_secs(30 * 24 * H);
        plan.tiers.get_mut("late").unwrap().sustained = Duration::from_secs(36 * H);
        let err = plan.validate().unwrap_err().to_string();
        for needle in [
            "tiers.canary.sustained: 720h exceeds the soak of stages[0] (12h, 5%)",
            "tiers.canary.sustained: 720h exceeds the soak of stages[1] (12h, 10%)",
            "tiers.late.sustained: 36h exceeds the soak of stages[4] (24h, 75%)",
            "tiers.late.sustained: 36h exceeds the soak of stages[5] (24h, 100%)",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
        assert!(!err.contains("tiers.mid"), "{err}");
        assert!(!err.contains("final.duration"), "{err}");

        // Equal to the soak is enough; the final window counts too.
        let mut plan = Plan::six_day();
        plan.tiers.get_mut("canary").unwrap().sustained = Duration::from_secs(12 * H);
        plan.validate().unwrap();
        plan.stages[5].tier = "canary".into();
        plan.validation.tier = "mid".into();
        plan.validation.duration = Duration::from_secs(24 * H);
        plan.tiers.get_mut("mid").unwrap().sustained = Duration::from_secs(25 * H);
        let err = plan.validate().unwrap_err().to_string();
        assert!(
            err.contains("tiers.mid.sustained: 25h exceeds final.duration (24h)"),
            "{err}"
        );
    }

    #[test]
    fn shipped_plans_are_valid() {
        for name in ["six-day.json", "seven-day.json"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/plans")
                .join(name);
            Plan::from_file(&path).unwrap();
        }
    }
}
