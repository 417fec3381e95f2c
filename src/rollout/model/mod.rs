//! The model: the plan, the state and its phases, verdicts and decisions,
//! observations and the cohort's figures, a change's kind, its audit records
//! and notification events, and what an operation or a tick reports. Values
//! only; nothing here reads a clock or a file.

pub(crate) mod audit;
pub(crate) mod change;
pub(crate) mod cohort;
pub(crate) mod daily;
pub(crate) mod decision;
pub(crate) mod event;
pub(crate) mod gate;
pub(crate) mod identity;
pub(crate) mod outcome;
pub(crate) mod phase;
pub(crate) mod plan;
pub(crate) mod state;
pub(crate) mod verdict;
