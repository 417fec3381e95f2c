//! `health-check`: the gate judged once now, every check printed.

use std::path::Path;

use genesis_flags::rollout::{decide, CheckKind, Clock, Plan, SystemClock, Verdict, Verdicts};
use serde_json::json;

use crate::cli::Cli;
use crate::output::{self, Failure, Out};
use crate::{gates, load_state};

type Result<T> = std::result::Result<T, Failure>;

pub fn health_check(cli: &Cli, out: &Out, gate: Option<&Path>) -> Result<u8> {
    let now = SystemClock.now();
    // With a state, the policy judges: the tier of the stage, and the cohort
    // checks (in cohort, in against out, fleet, sample) with the stage's
    // ledger. A state that does not load is an error, never a silent default.
    let (verdicts, tier_name, rollout) = if cli.state.exists() {
        let state = load_state(&cli.state)?;
        let observation = gates::from_file(gate, Some(&state.rollout))?.observe(now);
        let decision = decide(&state, &observation, now);
        (decision.verdicts, decision.tier, Some(state.rollout))
    } else {
        // No state yet: the first stage's tier, the global checks only (the
        // cohort checks need a rollout's stage to judge against).
        let plan = Plan::six_day();
        let tier_name = plan
            .stages
            .first()
            .map_or_else(|| plan.validation.tier.clone(), |s| s.tier.clone());
        let tier = plan
            .tier(&tier_name)
            .ok_or_else(|| Failure::input(format!("the plan has no tier {tier_name:?}")))?;
        let observation = gates::from_file(gate, None)?.observe(now);
        let verdicts = Verdicts::judge(&observation, tier, &plan.go, plan.min_requests);
        (verdicts, tier_name, None)
    };
    let queries = gates::queries(gate, rollout.as_deref())?;
    let rows: Vec<output::CheckRow> = verdicts
        .checks()
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
