//! `envoy.config.bootstrap.v3.Bootstrap` (prost) to the model, as `json::decode::bootstrap` reads
//! it.

use super::common::{address, some, string_matcher, struct_json, struct_strings};
use super::envoy::config::bootstrap::v3 as pb;
use super::envoy::config::core::v3 as core;
use super::envoy::config::metrics::v3 as metrics;
use crate::model::{Bootstrap, BuildVersion, Meta, Node, StatsConfig, StatsMatcher, StringMatch};

pub(crate) fn bootstrap(b: pb::Bootstrap, meta: Meta) -> Bootstrap {
    let statics = b.static_resources.unwrap_or_default();
    Bootstrap {
        meta,
        node: b.node.map(node).unwrap_or_default(),
        admin_address: b.admin.and_then(|a| a.address).and_then(address),
        stats: b.stats_config.map(stats_config).unwrap_or_default(),
        ads: b.dynamic_resources.is_some_and(|d| d.ads_config.is_some()),
        static_clusters: statics.clusters.len(),
        static_listeners: statics.listeners.len(),
        static_secrets: statics.secrets.len(),
        deferred_stats: b
            .deferred_stat_options
            .is_some_and(|d| d.enable_deferred_creation_stats),
        deferred_cluster_creation: b
            .cluster_manager
            .is_some_and(|c| c.enable_deferred_cluster_creation),
    }
}

fn node(n: core::Node) -> Node {
    Node {
        id: n.id.into(),
        cluster: n.cluster.into(),
        metadata: n.metadata.map(struct_json).unwrap_or_default(),
        user_agent_name: some(n.user_agent_name),
        build_version: match n.user_agent_version_type {
            Some(core::node::UserAgentVersionType::UserAgentBuildVersion(b)) => {
                Some(BuildVersion {
                    version: b
                        .version
                        .map(|v| {
                            format!("{}.{}.{}", v.major_number, v.minor_number, v.patch).into()
                        })
                        .unwrap_or_default(),
                    metadata: struct_strings(b.metadata),
                })
            }
            _ => None,
        },
    }
}

fn stats_config(s: metrics::StatsConfig) -> StatsConfig {
    use metrics::stats_matcher::StatsMatcher as M;
    let patterns = |l: super::envoy::r#type::matcher::v3::ListStringMatcher| {
        l.patterns
            .into_iter()
            .map(|p| {
                match string_matcher(p) {
                    StringMatch::Exact(v) => format!("exact:{v}"),
                    StringMatch::Prefix(v) => format!("prefix:{v}"),
                    StringMatch::Suffix(v) => format!("suffix:{v}"),
                    StringMatch::Contains(v) => format!("contains:{v}"),
                    StringMatch::Regex(v) => format!("regex:{v}"),
                    _ => "other".to_string(),
                }
                .into()
            })
            .collect()
    };
    StatsConfig {
        matcher: match s.stats_matcher.and_then(|m| m.stats_matcher) {
            Some(M::RejectAll(true)) => StatsMatcher::RejectAll,
            Some(M::InclusionList(l)) => StatsMatcher::Inclusion(patterns(l)),
            Some(M::ExclusionList(l)) => StatsMatcher::Exclusion(patterns(l)),
            _ => StatsMatcher::All,
        },
        stats_tags: s.stats_tags.len(),
        use_all_default_tags: s.use_all_default_tags,
    }
}
