//! The models shipped in the crate, one per Envoy minor version, and how one is chosen for a
//! dump: by the Envoy version its bootstrap node reports, else the newest.

use super::CostModel;
use serde::Serialize;
use std::sync::LazyLock;

/// Each shipped model file, by the Envoy `major.minor` it was calibrated on, oldest first.
const SHIPPED: &[(&str, &str)] = &[
    ("1.36", include_str!("envoy-1.36.json")),
    ("1.37", include_str!("envoy-1.37.json")),
    ("1.38", include_str!("envoy-1.38.json")),
    ("1.39", include_str!("envoy-1.39.json")),
    ("1.40", include_str!("envoy-1.40.json")),
];

static BUILTIN: LazyLock<Vec<CostModel>> = LazyLock::new(|| {
    SHIPPED
        .iter()
        .map(|(_, text)| CostModel::from_json(text).expect("a shipped cost model is valid"))
        .collect()
});

/// How the model that priced an estimate matches the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Calibrated on the proxy's Envoy minor version.
    Exact,
    /// No model for the proxy's version: the nearest one.
    Nearest,
    /// The input does not say which Envoy it came from.
    Unknown,
}

/// The model an estimate used: its Envoy version, the proxy's, and how they match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelUsed {
    /// The Envoy version the model was calibrated on (`/server_info` `version`'s number).
    pub envoy_version: String,
    /// The proxy's Envoy version, when the input says.
    pub proxy_version: Option<String>,
    /// How they match.
    #[serde(rename = "match")]
    pub matched: Match,
    /// Over the model's calibration, the least and most `/memory` `heap_size` was as a
    /// multiple of `allocated` (the heap in use, which the model predicts).
    pub heap_size_ratio: Option<(f64, f64)>,
    /// The same for `total_physical_bytes`.
    pub total_physical_ratio: Option<(f64, f64)>,
}

impl ModelUsed {
    fn new(model: &CostModel, version: Option<&str>, matched: Match) -> ModelUsed {
        let fit = model.fit.as_ref();
        ModelUsed {
            envoy_version: model.envoy_version.clone(),
            proxy_version: version.map(str::to_string),
            matched,
            heap_size_ratio: fit.and_then(|f| f.heap_size_ratio),
            total_physical_ratio: fit.and_then(|f| f.total_physical_ratio),
        }
    }

    /// What else a process holds, for a reader comparing with a container's memory.
    pub fn beyond_the_heap(&self) -> String {
        let range = |r: Option<(f64, f64)>| {
            r.map_or_else(|| "?".to_string(), |(lo, hi)| format!("{lo:.2}–{hi:.2}×"))
        };
        format!(
            "this is the heap in use: on the model's calibration Envoy's heap_size was {} of it and its total_physical_bytes {}; a container also holds the binary and pilot-agent",
            range(self.heap_size_ratio),
            range(self.total_physical_ratio)
        )
    }

    /// A one-line description: `Envoy 1.38.3 (exact)`, `Envoy 1.40.0 (nearest to 1.41.0)`.
    pub fn describe(&self) -> String {
        let model = &self.envoy_version;
        match (self.matched, &self.proxy_version) {
            (Match::Exact, _) => format!("Envoy {model}"),
            (Match::Nearest, Some(v)) => {
                format!("Envoy {model}, the nearest to the proxy's {v}: not an exact match")
            }
            _ => format!("Envoy {model}; the input does not say its Envoy version"),
        }
    }
}

/// The models shipped in the crate, oldest first.
pub fn builtin() -> &'static [CostModel] {
    &BUILTIN
}

/// `major.minor` of a version such as `1.38.3` or `a1b2c3/1.38.3/Clean/RELEASE/BoringSSL`.
fn minor(version: &str) -> Option<(u32, u32)> {
    let number = version
        .split('/')
        .find(|p| p.starts_with(|c: char| c.is_ascii_digit()) && p.contains('.'))?;
    let mut parts = number.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// How a model matches a proxy of this Envoy version (`None`: not known).
pub fn compare(model: &CostModel, version: Option<&str>) -> ModelUsed {
    let matched = match (version.and_then(minor), minor(&model.envoy_version)) {
        (Some(a), Some(b)) if a == b => Match::Exact,
        (Some(_), _) => Match::Nearest,
        (None, _) => Match::Unknown,
    };
    ModelUsed::new(model, version, matched)
}

/// The shipped model for an Envoy version (`None`: not known), and how it matches: the model of
/// that minor version, else the nearest one (the newer of two as near), else the newest.
pub fn for_version(version: Option<&str>) -> (&'static CostModel, ModelUsed) {
    let models = builtin();
    let newest = models.last().expect("at least one model is shipped");
    let used = |m: &CostModel, matched| ModelUsed::new(m, version, matched);
    let Some(wanted) = version.and_then(minor) else {
        return (newest, used(newest, Match::Unknown));
    };
    let distance = |m: &CostModel| {
        let (major, minor) = minor(&m.envoy_version).unwrap_or((0, 0));
        let a = i64::from(major) * 1000 + i64::from(minor);
        let b = i64::from(wanted.0) * 1000 + i64::from(wanted.1);
        (a - b).abs()
    };
    // Oldest first, so that `min_by_key` over the reversed list keeps the newer of a tie.
    let best = models
        .iter()
        .rev()
        .min_by_key(|m| distance(m))
        .unwrap_or(newest);
    let matched = if distance(best) == 0 {
        Match::Exact
    } else {
        Match::Nearest
    };
    (best, used(best, matched))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_either_form() {
        assert_eq!(minor("1.38.3"), Some((1, 38)));
        assert_eq!(
            minor("e4c3b1a/1.36.4/Clean/RELEASE/BoringSSL"),
            Some((1, 36))
        );
        assert_eq!(minor("dev"), None);
    }

    #[test]
    fn every_shipped_model_is_chosen_for_its_own_version() {
        for m in builtin() {
            let (chosen, used) = for_version(Some(&m.envoy_version));
            assert_eq!(chosen.envoy_version, m.envoy_version);
            assert_eq!(used.matched, Match::Exact);
        }
        let (_, used) = for_version(Some("9.99.0"));
        assert_eq!(used.matched, Match::Nearest);
        assert!(used.describe().contains("not an exact match"));
        let (chosen, used) = for_version(None);
        assert_eq!(used.matched, Match::Unknown);
        assert_eq!(chosen, builtin().last().unwrap());
    }
}
