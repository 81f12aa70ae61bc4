//! `ecds`: one row per extension config delivered over ECDS (`istioctl proxy-config ecds`).

use super::{go_sort, Order};
use crate::model::{OpaqueResource, Span, State};
use serde::Serialize;

/// The type URL of an ECDS entry's payload.
pub const ECDS_TYPE_URL: &str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// One extension config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcdsRow {
    /// The extension config's name (`default.httpbin-rate-limiting`).
    pub name: String,
    /// The type URL of the configuration it carries; empty when the control plane has not sent
    /// it yet.
    pub type_url: String,
    /// The xDS version that delivered it.
    pub version_info: Option<String>,
    /// When Envoy accepted it.
    pub last_updated: Option<String>,
    /// Its state.
    pub state: State,
    /// Where the resource's dump entry sat in the input, to print it as it was.
    #[serde(skip)]
    pub span: Option<Span>,
}

/// The columns `istioctl` prints.
pub const ISTIOCTL_COLUMNS: [&str; 2] = ["ECDS NAME", "TYPE"];

/// The row of an ECDS entry; `None` for opaque resources of other kinds.
pub fn ecds_row(o: &OpaqueResource) -> Option<EcdsRow> {
    if &*o.payload.type_url != ECDS_TYPE_URL {
        return None;
    }
    Some(EcdsRow {
        name: o.name.as_deref().unwrap_or("").to_string(),
        type_url: o.config_type_url.as_deref().unwrap_or("").to_string(),
        version_info: o.meta.version_info.as_deref().map(str::to_string),
        last_updated: o.meta.last_updated.as_deref().map(str::to_string),
        state: o.meta.state,
        span: o.meta.span,
    })
}

impl EcdsRow {
    /// The type without `type.googleapis.com/`, as the TYPE column shows it.
    pub fn config_type(&self) -> &str {
        self.type_url
            .strip_prefix(TYPE_URL_PREFIX)
            .unwrap_or(&self.type_url)
    }

    /// The line `istioctl` prints for this extension config.
    pub fn istioctl_cells(&self) -> [String; 2] {
        [self.name.clone(), self.config_type().to_string()]
    }
}

/// Puts rows in `istioctl`'s order: by type URL, then name (rows without a type first).
pub fn arrange(mut rows: Vec<EcdsRow>, _order: Order) -> Vec<EcdsRow> {
    go_sort(&mut rows, |a, b| {
        if a.type_url == b.type_url {
            a.name < b.name
        } else {
            a.type_url < b.type_url
        }
    });
    rows
}
