//! `health-check`: the gate judged once now, every check printed.

use std::path::Path;

use genesis_flags::rollout::{CheckKind, Clock, Plan, SystemClock, Verdict, Verdicts};
use serde_json::json;

use crate::cli::Cli;
use crate::output::{self, Failure, Out};
use crate::{gates, load_state};

type Result<T> = std::result::Result<T, Failure>;

pub fn health_check(cli: &Cli, out: &Out, gate: Option<&Path>) -> Result<u8> {
    // No state yet: judge against the first stage's tier. A state that
    // does not load is an error, never a silent default.
    let (plan, tier_name) = if cli.state.exists() {
        let s = load_state(&cli.state)?;
        let tier = s.tier_name().to_owned();
        (s.plan, tier)
    } else {
        let plan = Plan::six_day();
        let tier = plan
            .stages
            .first()
            .map_or_else(|| plan.validation.tier.clone(), |s| s.tier.clone());
        (plan, tier)
    };
    let tier = plan
        .tier(&tier_name)
        .ok_or_else(|| Failure::input(format!("the plan has no tier {tier_name:?}")))?;
    let queries = gates::queries(gate)?;
    let now = SystemClock.now();
    let observation = gates::from_file(gate)?.observe(now);
    let verdicts = Verdicts::judge(&observation, tier, &plan.go, plan.min_requests);
    let rows: Vec<output::CheckRow> = verdicts
        .all()
        .into_iter()
        .map(|c| output::CheckRow {
            pass: c.verdict == Verdict::Pass && (c.check != CheckKind::CriticalAlerts || c.go),
            check: c.check,
            verdict: c.verdict,
            value: c.value,
            threshold: c.threshold,
            detail: c.detail.clone(),
            query: queries.for_check(c.check),
        })
        .collect();
    let all_pass = rows.iter().all(|r| r.pass);
    let text: Vec<String> = rows.iter().map(ToString::to_string).collect();
    out.emit(
        &format!(
            "health check at {now} ({tier_name} tier)\n{}",
            text.join("\n")
        ),
        &json!({ "at": now, "tier": tier_name, "pass": all_pass, "checks": rows }),
    );
    Ok(u8::from(!all_pass))
}
