//! The proxy-config views: typed rows with the columns `istioctl proxy-config` shows, and its
//! filters and orders.
//!
//! Each view has a row type, a filter, a function that makes the rows of ONE resource (a
//! cluster, a listener, a route configuration, a load assignment, a secret, an extension config)
//! and a function that puts rows in the order `istioctl` prints them. Row functions never see a
//! whole [`Dump`](crate::Dump): a reader that hands resources one at a time can build views of a
//! dump it never holds whole. The COST column comes from a [`Pricing`] the caller supplies.
//!
//! Every row type has `istioctl_cells`: its `istioctl` columns exactly as `istioctl` prints them
//! (same values, same placeholders), for tables that must match `istioctl` byte for byte. The
//! typed fields are Heft's own reading and may say more (a warming cluster's state, a custom
//! cluster type's name).
//!
//! This module computes; it never prints.
//!
//! ```
//! use heft::views::{cluster, NoPricing};
//! let dump = heft::Dump::from_slice(br#"[
//!   {"name": "outbound|9080|v1|reviews.default.svc.cluster.local", "type": "EDS"},
//!   {"name": "outbound|9080||ratings.default.svc.cluster.local", "type": "EDS"}]"#)?;
//! let filter = cluster::ClusterFilter { fqdn: Some("reviews".into()), ..Default::default() };
//! let rows: Vec<_> = dump.clusters.iter()
//!     .filter_map(|c| cluster::cluster_row(c, &filter, &NoPricing))
//!     .collect();
//! assert_eq!(rows.len(), 1);
//! assert_eq!(rows[0].istioctl_cells(), ["reviews.default.svc.cluster.local", "9080", "v1", "outbound", "EDS", ""]);
//! # Ok::<(), heft::Error>(())
//! ```

pub mod bootstrap;
pub mod cluster;
pub mod ecds;
pub mod endpoint;
mod gosort;
pub mod listener;
mod pricing;
pub mod rejected;
pub mod route;
pub mod secret;

pub use gosort::go_sort;
pub use pricing::{EstimatePricing, NoPricing, Pricing};

use crate::model::State;

/// What `istioctl` reads from a cluster name (`model.ParseSubsetKey` behind its
/// `safelyParseSubsetKey`): only names of four or more `|`-separated parts are parsed; any other
/// name is its own host, with no direction, subset or port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubsetKey<'a> {
    pub direction: &'a str,
    pub subset: &'a str,
    pub host: &'a str,
    pub port: i64,
    /// Whether the name had the `direction|port|subset|host` form at all.
    pub parsed: bool,
}

impl<'a> SubsetKey<'a> {
    pub(crate) fn of(name: &'a str) -> SubsetKey<'a> {
        if name.split('|').count() <= 3 {
            return SubsetKey {
                direction: "",
                subset: "",
                host: name,
                port: 0,
                parsed: false,
            };
        }
        // Four or more parts: direction, port, subset, and a host that must hold no more `|`.
        let mut parts = name.splitn(4, '|');
        let direction = parts.next().unwrap_or("");
        let port = go_atoi(parts.next().unwrap_or(""));
        let subset = parts.next().unwrap_or("");
        let rest = parts.next().unwrap_or("");
        let host = if rest.contains('|') { "" } else { rest };
        SubsetKey {
            direction,
            subset,
            host,
            port,
            parsed: true,
        }
    }

    /// `istioctl`'s order of clusters and load assignments: host, subset, port, direction.
    pub(crate) fn less(&self, other: &SubsetKey) -> bool {
        if self.host != other.host {
            return self.host < other.host;
        }
        if self.subset != other.subset {
            return self.subset < other.subset;
        }
        if self.port != other.port {
            return self.port < other.port;
        }
        self.direction < other.direction
    }
}

/// Go's `strconv.Atoi` when it succeeds: an optional sign and decimal digits that fit.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// Go's `strconv.Atoi` as `istioctl` uses it: the error is ignored, so a bad number is 0 and an
/// out-of-range one is clamped.
pub(crate) fn go_atoi(s: &str) -> i64 {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    match digits.parse::<i64>() {
        Ok(v) if neg => -v,
        Ok(v) => v,
        Err(_) if neg => i64::MIN,
        Err(_) => i64::MAX,
    }
}

/// The Istio config that made a resource (`filter_metadata.istio.config`) as `istioctl` names
/// it: `name.namespace` for an `/apis/networking.istio.io/<version>/namespaces/<ns>/<kind>/<name>`
/// path, `<unknown>` for other paths, nothing when there is none.
pub(crate) fn istio_config_name(path: Option<&str>) -> String {
    let Some(path) = path else {
        return String::new();
    };
    let Some(rest) = path.strip_prefix("/apis/networking.istio.io/") else {
        return "<unknown>".into();
    };
    let pieces: Vec<&str> = path.split('/').collect();
    match (rest.split('/').nth(1), pieces.len()) {
        (Some("namespaces"), 8) => format!("{}.{}", pieces[7], pieces[5]),
        (Some("namespaces"), _) => String::new(),
        _ => "<unknown>".into(),
    }
}

/// Go's `strings.EqualFold` for the ASCII text these filters compare.
pub(crate) fn equal_fold(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// Where `istioctl` lists a resource of `state` before sorting: dynamic (active) resources first,
/// then static ones; `None` for states `istioctl` leaves out (warming, draining).
pub(crate) fn istioctl_rank(state: State) -> Option<u8> {
    match state {
        State::Active => Some(0),
        State::Static => Some(1),
        State::Warming | State::Draining => None,
    }
}

/// Heft's own tables keep every state, ranked after the ones `istioctl` shows.
pub(crate) fn heft_rank(state: State) -> u8 {
    istioctl_rank(state).unwrap_or(match state {
        State::Warming => 2,
        _ => 3,
    })
}

/// Which rows an order keeps and where states go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// `istioctl`'s rows and order: only what `istioctl` shows (no warming or draining
    /// resources), dynamic before static, then its sort.
    Istioctl,
    /// Every row, sorted as `istioctl` sorts; the states `istioctl` leaves out enter the sort
    /// after the others, so they follow rows that compare equal.
    #[default]
    Heft,
}

impl Order {
    /// The rank of `state` in this order, `None` when the order leaves it out.
    pub(crate) fn rank(self, state: State) -> Option<u8> {
        match self {
            Order::Istioctl => istioctl_rank(state),
            Order::Heft => Some(heft_rank(state)),
        }
    }

    /// Drops what this order leaves out, puts states in order (keeping input order within a
    /// state), then sorts the way `istioctl` does.
    pub(crate) fn arrange<T>(
        self,
        rows: Vec<T>,
        state: impl Fn(&T) -> State,
        less: impl FnMut(&T, &T) -> bool,
    ) -> Vec<T> {
        let mut ranked: Vec<(u8, T)> = rows
            .into_iter()
            .filter_map(|r| self.rank(state(&r)).map(|k| (k, r)))
            .collect();
        ranked.sort_by_key(|(k, _)| *k);
        let mut rows: Vec<T> = ranked.into_iter().map(|(_, r)| r).collect();
        go_sort(&mut rows, less);
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_keys_parse_only_four_part_names() {
        let k = SubsetKey::of("outbound|9080|v1|reviews.default.svc.cluster.local");
        assert_eq!(
            (k.direction, k.port, k.subset, k.host, k.parsed),
            (
                "outbound",
                9080,
                "v1",
                "reviews.default.svc.cluster.local",
                true
            )
        );
        let k = SubsetKey::of("outbound_.9080_._.reviews.default.svc.cluster.local");
        assert!(!k.parsed);
        assert_eq!(
            k.host,
            "outbound_.9080_._.reviews.default.svc.cluster.local"
        );
        let k = SubsetKey::of("inbound|x||");
        assert_eq!((k.port, k.host, k.parsed), (0, "", true));
        assert_eq!(SubsetKey::of("a|1|b|c|d").host, "");
    }

    #[test]
    fn istio_config_paths_render_as_name_dot_namespace() {
        let p = "/apis/networking.istio.io/v1/namespaces/default/virtual-service/httpbin";
        assert_eq!(istio_config_name(Some(p)), "httpbin.default");
        let p = "/apis/networking.istio.io/v1alpha3/namespaces/shop/destination-rule/db";
        assert_eq!(istio_config_name(Some(p)), "db.shop");
        assert_eq!(istio_config_name(Some("/apis/other/v1/x")), "<unknown>");
        assert_eq!(
            istio_config_name(Some("/apis/networking.istio.io/v1/namespaces/a")),
            ""
        );
        assert_eq!(istio_config_name(None), "");
    }

    #[test]
    fn atoi_ignores_errors_like_istioctl() {
        assert_eq!(go_atoi("9080"), 9080);
        assert_eq!(go_atoi("+80"), 80);
        assert_eq!(go_atoi("x"), 0);
        assert_eq!(go_atoi(""), 0);
        assert_eq!(go_atoi("99999999999999999999"), i64::MAX);
    }
}
