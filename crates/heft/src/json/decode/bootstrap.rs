//! Decodes `envoy.config.bootstrap.v3.Bootstrap`.

use super::common::{address, string_matcher};
use crate::error::Result;
use crate::json::parser::Parser;
use crate::model::{Bootstrap, BuildVersion, Meta, Node, StatsConfig, StatsMatcher, StringMatch};

pub(crate) fn bootstrap(p: &mut Parser, meta: Meta) -> Result<Bootstrap> {
    let mut b = Bootstrap {
        meta,
        node: Node::default(),
        admin_address: None,
        stats: StatsConfig::default(),
        ads: false,
        static_clusters: 0,
        static_listeners: 0,
        static_secrets: 0,
        deferred_stats: false,
        deferred_cluster_creation: false,
    };
    p.fields(|p, k| {
        match k {
            "node" => b.node = node(p)?,
            "admin" => p.fields(|p, k| {
                if k == "address" {
                    b.admin_address = address(p)?;
                } else {
                    p.skip()?;
                }
                Ok(())
            })?,
            "static_resources" => p.fields(|p, k| {
                let count = match k {
                    "clusters" => &mut b.static_clusters,
                    "listeners" => &mut b.static_listeners,
                    "secrets" => &mut b.static_secrets,
                    _ => return p.skip(),
                };
                p.array(|p| {
                    *count += 1;
                    p.skip()
                })
            })?,
            "dynamic_resources" => p.fields(|p, k| {
                if k == "ads_config" {
                    b.ads = true;
                }
                p.skip()
            })?,
            "stats_config" => b.stats = stats_config(p)?,
            "deferred_stat_options" => p.fields(|p, k| {
                if k == "enable_deferred_creation_stats" {
                    b.deferred_stats = p.bool()?;
                } else {
                    p.skip()?;
                }
                Ok(())
            })?,
            "cluster_manager" => p.fields(|p, k| {
                if k == "enable_deferred_cluster_creation" {
                    b.deferred_cluster_creation = p.bool()?;
                } else {
                    p.skip()?;
                }
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(b)
}

fn node(p: &mut Parser) -> Result<Node> {
    let mut n = Node::default();
    p.fields(|p, k| {
        match k {
            "id" => n.id = p.string()?,
            "cluster" => n.cluster = p.string()?,
            "metadata" => {
                if let serde_json::Value::Object(map) = p.value()? {
                    n.metadata = map;
                }
            }
            "user_agent_name" => n.user_agent_name = super::common::nonempty(p)?,
            "user_agent_build_version" => n.build_version = Some(build_version(p)?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(n)
}

fn build_version(p: &mut Parser) -> Result<BuildVersion> {
    let mut b = BuildVersion::default();
    p.fields(|p, k| {
        match k {
            "version" => {
                let (mut major, mut minor, mut patch) = (0, 0, 0);
                p.fields(|p, k| {
                    match k {
                        "major_number" => major = p.u32()?,
                        "minor_number" => minor = p.u32()?,
                        "patch" => patch = p.u32()?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
                b.version = format!("{major}.{minor}.{patch}").into();
            }
            "metadata" => p.entries(|p, key| {
                if let Some(v) = super::common::opt_string(p)? {
                    b.metadata.push((key.into(), v));
                }
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(b)
}

fn stats_config(p: &mut Parser) -> Result<StatsConfig> {
    let mut s = StatsConfig::default();
    p.fields(|p, k| {
        match k {
            "stats_tags" => s.stats_tags = p.list(|p| p.skip())?.len(),
            "use_all_default_tags" => s.use_all_default_tags = Some(p.wrapped_bool()?),
            "stats_matcher" => p.fields(|p, k| {
                match k {
                    "reject_all" => {
                        if p.bool()? {
                            s.matcher = StatsMatcher::RejectAll;
                        }
                    }
                    "inclusion_list" => s.matcher = StatsMatcher::Inclusion(patterns(p)?),
                    "exclusion_list" => s.matcher = StatsMatcher::Exclusion(patterns(p)?),
                    _ => p.skip()?,
                }
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(s)
}

/// `ListStringMatcher.patterns`, each as `kind:value`.
fn patterns(p: &mut Parser) -> Result<Vec<Box<str>>> {
    let mut out = Vec::new();
    p.fields(|p, k| {
        if k == "patterns" {
            p.array(|p| {
                let text = match string_matcher(p)? {
                    StringMatch::Exact(v) => format!("exact:{v}"),
                    StringMatch::Prefix(v) => format!("prefix:{v}"),
                    StringMatch::Suffix(v) => format!("suffix:{v}"),
                    StringMatch::Contains(v) => format!("contains:{v}"),
                    StringMatch::Regex(v) => format!("regex:{v}"),
                    _ => "other".to_string(),
                };
                out.push(text.into());
                Ok(())
            })?;
        } else {
            p.skip()?;
        }
        Ok(())
    })?;
    Ok(out)
}
