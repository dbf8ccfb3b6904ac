//! The checks on a policy's answers, for the fuzz targets in `tests/fuzz`:
//! not part of the crate's API. The registry runs them on every answer
//! before it reaches the wire; a target feeds them any answer and checks
//! that what passes builds the messages the gateway then sends.

use super::error::DecisionError;
use super::{Decision, Outcome};

/// The check on a `route` answer.
pub fn check_decision(decision: &Decision) -> Result<(), DecisionError> {
    super::validate::decision(decision)
}

/// The check on a `conclude` answer.
pub fn check_outcome(outcome: &Outcome) -> Result<(), DecisionError> {
    super::validate::outcome(outcome)
}
