//! `--state rejected`: one row per update Envoy rejected (a NACK, `error_state` in the dump), for
//! any view's kind of resource. `istioctl` has no such view.
//!
//! A rejected update either left a resource behind (the version in use, whose entry also carries
//! the failure) or nothing at all (the entry holds only `error_state`; the model keeps it as a
//! [`Rejected`]). Both give a row: what was rejected, the version and time of the attempt, and
//! Envoy's reason.

use crate::model::{Meta, Rejected, Span, State};
use serde::Serialize;

/// One rejected update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRow {
    /// `cluster`, `listener`, `route_config`, `endpoint_config` or `secret`.
    pub kind: &'static str,
    /// The resource's name (empty when the entry gives none).
    pub name: String,
    /// The state of the resource the proxy kept, `None` when the rejection left none.
    pub state: Option<State>,
    /// The version that was rejected.
    pub version_info: Option<String>,
    /// When Envoy last tried to apply it.
    pub last_update_attempt: Option<String>,
    /// Envoy's reason.
    pub details: String,
    /// Where the dump entry sat in the input, to print it as it was.
    #[serde(skip)]
    pub span: Option<Span>,
}

/// The columns of the table.
pub const COLUMNS: [&str; 5] = ["NAME", "STATE", "VERSION", "LAST ATTEMPT", "REASON"];

fn row(kind: &'static str, name: &str, meta: &Meta, state: Option<State>) -> Option<RejectedRow> {
    let e = meta.error.as_ref()?;
    Some(RejectedRow {
        kind,
        name: name.to_string(),
        state,
        version_info: e.version_info.as_deref().map(str::to_string),
        last_update_attempt: e.last_update_attempt.as_deref().map(str::to_string),
        details: e.details.to_string(),
        span: meta.span,
    })
}

/// The row of a resource whose last update was rejected, `None` when none was.
///
/// ```
/// use heft::model::{Meta, State, UpdateFailure};
/// let mut meta = Meta::new(State::Active);
/// assert!(heft::views::rejected::kept_row("listener", "l", &meta).is_none());
/// meta.error = Some(Box::new(UpdateFailure { details: "duplicate address".into(), ..Default::default() }));
/// let row = heft::views::rejected::kept_row("listener", "l", &meta).unwrap();
/// assert_eq!((row.state, row.details.as_str()), (Some(State::Active), "duplicate address"));
/// ```
pub fn kept_row(kind: &'static str, name: &str, meta: &Meta) -> Option<RejectedRow> {
    row(kind, name, meta, Some(meta.state))
}

/// The row of a rejected update that left no resource behind.
pub fn lone_row(r: &Rejected) -> Option<RejectedRow> {
    row(r.kind, &r.name, &r.meta, None)
}

/// Rows in input order, less the copies Envoy prints of a rejected listener: its entry comes
/// twice, once with its name and once with only `error_state`; the nameless one with the same
/// reason as a named one says nothing more.
pub fn arrange(mut rows: Vec<RejectedRow>) -> Vec<RejectedRow> {
    rows.sort_by_key(|r| r.span.map(|s| s.offset));
    let named: Vec<(&'static str, String)> = rows
        .iter()
        .filter(|r| !r.name.is_empty())
        .map(|r| (r.kind, r.details.clone()))
        .collect();
    rows.retain(|r| !r.name.is_empty() || !named.contains(&(r.kind, r.details.clone())));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UpdateFailure;

    fn rejected(name: &str, details: &str, at: u64) -> Rejected {
        let mut meta = Meta::new(State::Active);
        meta.span = Some(Span { offset: at, len: 1 });
        meta.error = Some(Box::new(UpdateFailure {
            details: details.into(),
            ..Default::default()
        }));
        Rejected {
            kind: "listener",
            name: name.into(),
            meta,
        }
    }

    #[test]
    fn a_nameless_copy_of_a_named_rejection_is_dropped() {
        let rows = [
            rejected("", "duplicate address", 20),
            rejected("a", "duplicate address", 10),
            rejected("", "something else", 30),
        ]
        .iter()
        .filter_map(lone_row)
        .collect();
        let rows = arrange(rows);
        let names: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.details.as_str()))
            .collect();
        assert_eq!(names, [("a", "duplicate address"), ("", "something else")]);
        assert!(rows.iter().all(|r| r.state.is_none()));
    }
}
