//! The report lifecycle (上报 → 立案 → 派遣 → 处置 → 核查 → 结案 → 评价) and its exceptions
//! (延期 extension, 回退 send-back, 返工 rework, 上报上级 escalation), as a table of legal moves.
//!
//! Every move is appended to the report's history by the store; nothing is overwritten. An
//! illegal move is refused with the moves that are legal from where the report is.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{Rating, Status};
use crate::grid::code::GridCode;

/// A requested transition, with what it needs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// 立案: accept the report as a case.
    Accept,
    /// 不予立案: refuse it (the reason is required).
    Reject,
    /// 派遣: dispatch to the assigned grid, or to `grid` (re-dispatch to another grid).
    Dispatch {
        /// Grid code to dispatch to; default: the grid the report is assigned to.
        #[serde(default)]
        #[schema(value_type = Option<String>, example = "410103001001001")]
        grid: Option<GridCode>,
    },
    /// 处置: the responsible unit reports it handled.
    Handle,
    /// 核查: the check; `pass` closes the case, a failed check sends it back for rework (返工).
    Check {
        /// Whether the handling passed the check.
        pass: bool,
    },
    /// 延期: extend the deadline by some working hours.
    Extend {
        /// Working hours to add (1 to 720).
        hours: u32,
    },
    /// 回退: send back for re-dispatch (e.g. wrong grid).
    SendBack,
    /// 上报上级: escalate to the next level up the grid hierarchy.
    Escalate,
    /// 评价: the reporter's satisfaction, once, after closing.
    Rate {
        /// How satisfied the reporter is: satisfied, basically_satisfied or unsatisfied.
        #[schema(value_type = String, example = "satisfied")]
        rating: Rating,
    },
}

/// The name of an action, without its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// See [`Action::Accept`].
    Accept,
    /// See [`Action::Reject`].
    Reject,
    /// See [`Action::Dispatch`].
    Dispatch,
    /// See [`Action::Handle`].
    Handle,
    /// See [`Action::Check`].
    Check,
    /// See [`Action::Extend`].
    Extend,
    /// See [`Action::SendBack`].
    SendBack,
    /// See [`Action::Escalate`].
    Escalate,
    /// See [`Action::Rate`].
    Rate,
    /// The creation of a report (first history entry); never requested.
    Report,
}

impl ActionKind {
    /// Every requestable action, in lifecycle order.
    pub const REQUESTABLE: [ActionKind; 9] = [
        ActionKind::Accept,
        ActionKind::Reject,
        ActionKind::Dispatch,
        ActionKind::Handle,
        ActionKind::Check,
        ActionKind::Extend,
        ActionKind::SendBack,
        ActionKind::Escalate,
        ActionKind::Rate,
    ];

    /// The snake_case name used in the API and the history.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Accept => "accept",
            ActionKind::Reject => "reject",
            ActionKind::Dispatch => "dispatch",
            ActionKind::Handle => "handle",
            ActionKind::Check => "check",
            ActionKind::Extend => "extend",
            ActionKind::SendBack => "send_back",
            ActionKind::Escalate => "escalate",
            ActionKind::Rate => "rate",
            ActionKind::Report => "report",
        }
    }
}

impl Action {
    /// The action's name.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Accept => ActionKind::Accept,
            Action::Reject => ActionKind::Reject,
            Action::Dispatch { .. } => ActionKind::Dispatch,
            Action::Handle => ActionKind::Handle,
            Action::Check { .. } => ActionKind::Check,
            Action::Extend { .. } => ActionKind::Extend,
            Action::SendBack => ActionKind::SendBack,
            Action::Escalate => ActionKind::Escalate,
            Action::Rate { .. } => ActionKind::Rate,
        }
    }
}

/// Where a report stands, as far as the lifecycle rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Its status.
    pub status: Status,
    /// Whether it has been rated already.
    pub rated: bool,
}

/// A move the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a report that is {from}{}", if .allowed.is_empty() { String::new() } else { format!("; allowed: {}", .allowed.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")) })]
pub struct IllegalTransition {
    /// The status the report is in.
    pub from: Status,
    /// What was asked.
    pub action: &'static str,
    /// What would have been legal.
    pub allowed: Vec<ActionKind>,
}

/// Whether `kind` is legal from `state`, and if so the status it leads to (for `Check`, the
/// status after a pass; a failed check returns to `Dispatched`).
fn target(state: State, kind: ActionKind) -> Option<Status> {
    use ActionKind as A;
    use Status as S;
    match (state.status, kind) {
        (S::Reported, A::Accept) => Some(S::Accepted),
        (S::Reported, A::Reject) => Some(S::Rejected),
        (S::Accepted | S::Dispatched, A::Dispatch) => Some(S::Dispatched),
        (S::Dispatched, A::Handle) => Some(S::Handled),
        (S::Handled, A::Check) => Some(S::Closed),
        (S::Accepted | S::Dispatched | S::Handled, A::Extend) => Some(state.status),
        (S::Dispatched | S::Handled, A::SendBack) => Some(S::Accepted),
        (S::Accepted | S::Dispatched, A::Escalate) => Some(S::Dispatched),
        (S::Closed, A::Rate) if !state.rated => Some(S::Closed),
        _ => None,
    }
}

/// The actions legal from `state`.
pub fn allowed(state: State) -> Vec<ActionKind> {
    ActionKind::REQUESTABLE
        .into_iter()
        .filter(|&k| target(state, k).is_some())
        .collect()
}

/// The status `action` leads to from `state`, or why it is refused.
pub fn next_status(state: State, action: &Action) -> Result<Status, IllegalTransition> {
    match (target(state, action.kind()), action) {
        (Some(_), Action::Check { pass: false }) => Ok(Status::Dispatched),
        (Some(to), _) => Ok(to),
        (None, _) => Err(IllegalTransition {
            from: state.status,
            action: action.kind().name(),
            allowed: allowed(state),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(status: Status) -> State {
        State {
            status,
            rated: false,
        }
    }

    #[test]
    fn the_standard_loop_closes_a_case() {
        let mut s = at(Status::Reported);
        for a in [
            Action::Accept,
            Action::Dispatch { grid: None },
            Action::Handle,
            Action::Check { pass: false },
            Action::Handle,
            Action::Check { pass: true },
        ] {
            s.status = next_status(s, &a).unwrap();
        }
        assert_eq!(s.status, Status::Closed);
        assert!(
            next_status(
                s,
                &Action::Rate {
                    rating: Rating::Satisfied
                }
            )
            .is_ok()
        );
        s.rated = true;
        let e = next_status(
            s,
            &Action::Rate {
                rating: Rating::Satisfied,
            },
        )
        .unwrap_err();
        assert!(e.allowed.is_empty());
    }

    #[test]
    fn illegal_moves_list_the_legal_ones() {
        let e = next_status(at(Status::Reported), &Action::Handle).unwrap_err();
        assert_eq!(e.allowed, vec![ActionKind::Accept, ActionKind::Reject]);
        assert_eq!(
            e.to_string(),
            "cannot handle a report that is reported; allowed: accept, reject"
        );
        assert!(allowed(at(Status::Rejected)).is_empty());
    }

    #[test]
    fn actions_parse_from_tagged_json() {
        let a: Action = serde_json::from_str(r#"{"action":"check","pass":true}"#).unwrap();
        assert_eq!(a, Action::Check { pass: true });
        assert!(serde_json::from_str::<Action>(r#"{"action":"fly"}"#).is_err());
        assert!(serde_json::from_str::<Action>(r#"{"action":"extend"}"#).is_err());
    }
}
