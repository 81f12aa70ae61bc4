//! The cost model on real Envoy captures: attribution adds up, and the shipped model is the one
//! its committed calibration data gives.

mod common;

use heft::cost::{fit, CostModel, Estimate, Kind, Object, Point, RollupBy, Settings};
use heft::Dump;
use std::collections::HashMap;

fn real_dumps() -> Vec<(String, Dump)> {
    common::captures(&["config_dump.json"])
        .into_iter()
        .map(|p| {
            let d = Dump::from_path(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), d)
        })
        .collect()
}

fn child_sum(children: &[heft::cost::Child]) -> u64 {
    children.iter().map(|c| c.parts.total()).sum()
}

#[test]
fn parts_children_objects_and_rollups_add_up_on_real_dumps() {
    let model = CostModel::envoy_1_40();
    for (name, dump) in real_dumps() {
        for concurrency in [1, 2, 4] {
            let settings = Settings {
                concurrency,
                stats: None,
                ..Settings::default()
            };
            let e = Estimate::of(&dump, &model, &settings);
            let objects: u64 = e.objects.iter().map(|o| o.bytes()).sum();
            assert_eq!(e.total(), e.baseline.total() + objects, "{name}");
            assert!(objects > 0, "{name}: objects cost nothing");
            // Every modelled resource is priced once (clusters, listeners, routes, secrets),
            // endpoint configs either with their cluster or on their own.
            let count = |k: Kind| e.objects.iter().filter(|o| o.object.kind() == k).count();
            assert_eq!(count(Kind::Cluster), dump.clusters.len(), "{name}");
            assert_eq!(count(Kind::Listener), dump.listeners.len(), "{name}");
            // Listeners' inline route configurations are priced in their filter chains; their
            // copies in `static_route_configs` are not priced again.
            let inline: Vec<&heft::model::RouteConfig> = dump
                .listeners
                .iter()
                .flat_map(|l| l.all_filter_chains())
                .flat_map(|fc| &fc.filters)
                .filter_map(|f| match f {
                    heft::model::NetworkFilter::HttpConnectionManager { config, .. } => {
                        match &config.routes {
                            heft::model::RouteSource::Inline(rc) => Some(&**rc),
                            _ => None,
                        }
                    }
                    _ => None,
                })
                .collect();
            let copies = dump
                .route_configs
                .iter()
                .filter(|rc| {
                    rc.meta.state == heft::model::State::Static
                        && inline
                            .iter()
                            .any(|i| i.name == rc.name && i.virtual_hosts == rc.virtual_hosts)
                })
                .count();
            assert!(
                copies > 0,
                "{name}: the captures' listeners have inline routes"
            );
            assert_eq!(
                count(Kind::RouteConfig) + copies,
                dump.route_configs.len(),
                "{name}"
            );
            assert_eq!(count(Kind::Secret), dump.secrets.len(), "{name}");
            // A cluster takes the dump's endpoint configuration of its name when there is one.
            let listed = |la: &heft::model::LoadAssignment| {
                dump.endpoint_configs.iter().any(|x| std::ptr::eq(x, la))
            };
            let with_listed = e
                .objects
                .iter()
                .filter(|o| matches!(o.object, Object::Cluster(_, Some(la)) if listed(la)))
                .count();
            assert_eq!(
                with_listed + count(Kind::Endpoints),
                dump.endpoint_configs.len(),
                "{name}: every endpoint config is priced exactly once"
            );
            for o in &e.objects {
                let p = o.parts;
                assert_eq!(p.config + p.stats + p.per_worker + p.endpoints, o.bytes());
                let children = e.children(&o.object);
                match o.object {
                    // A cluster's endpoints part is its endpoints plus their localities.
                    Object::Cluster(..) | Object::Endpoints(_) => {
                        assert!(child_sum(&children) <= p.endpoints, "{name}");
                        let hosts = match o.object {
                            Object::Cluster(_, la) => la.map_or(0, |la| la.endpoints().count()),
                            Object::Endpoints(la) => la.endpoints().count(),
                            _ => unreachable!(),
                        };
                        assert_eq!(children.len(), hosts, "{name}: {}", o.object.name());
                    }
                    // A listener's own share (its stats, its workers' copies) may be 0, as under
                    // the gateway's Istio stats list.
                    Object::Listener(l) => {
                        assert_eq!(children.len(), l.all_filter_chains().count());
                        assert!(child_sum(&children) <= o.bytes(), "{name}");
                    }
                    // A route configuration's own share may be 0: one is always used by one
                    // connection manager in these dumps, and the fit gives their cost to it.
                    Object::RouteConfig(rc) => {
                        assert_eq!(children.len(), rc.virtual_hosts.len());
                        assert!(child_sum(&children) <= o.bytes(), "{name}");
                    }
                    Object::Secret(_) => assert!(children.is_empty()),
                }
                for c in &children {
                    if !c.children.is_empty() {
                        assert!(child_sum(&c.children) <= c.parts.total(), "{name}");
                    }
                }
            }
            for by in [
                RollupBy::Kind,
                RollupBy::Namespace,
                RollupBy::Service,
                RollupBy::ClusterType,
                RollupBy::Listener,
            ] {
                let rows = e.rollup(by);
                let sum: u64 = rows.iter().map(|r| r.bytes).sum();
                assert_eq!(sum, e.total(), "{name}: {by:?} rows sum to the total");
                assert!(rows.windows(2).all(|w| w[0].bytes >= w[1].bytes));
            }
        }
    }
}

#[test]
fn workers_and_stats_settings_move_the_parts_they_should() {
    let model = CostModel::envoy_1_40();
    let (name, dump) = real_dumps().into_iter().next().unwrap();
    let at = |concurrency, stats| {
        Estimate::of(
            &dump,
            &model,
            &Settings {
                concurrency,
                stats,
                ..Settings::default()
            },
        )
    };
    let (two, four) = (at(2, None), at(4, None));
    assert_eq!(two.parts().config, four.parts().config, "{name}");
    assert_eq!(two.parts().stats, four.parts().stats, "{name}");
    assert!(four.parts().per_worker > two.parts().per_worker, "{name}");
    assert!(four.total() > two.total());
    let none = at(2, Some(heft::model::StatsMatcher::RejectAll));
    assert_eq!(none.parts().stats, 0, "{name}: reject_all leaves no stats");
    assert_eq!(none.parts().config, two.parts().config);
    // The gateway capture's bootstrap already has Istio's inclusion list: compare with every stat.
    let all = at(2, Some(heft::model::StatsMatcher::All));
    let istio = at(2, Some(heft::cost::istio_stats_matcher()));
    assert!(istio.parts().stats < all.parts().stats, "{name}");
    assert_eq!(istio.parts().config, all.parts().config, "{name}");
}

#[test]
fn the_top_level_names_rollup_by_service_follows_istio_names() {
    let model = CostModel::envoy_1_40();
    let dump = Dump::from_path(common::capture("sidecar", "config_dump.json")).unwrap();
    let e = Estimate::of(&dump, &model, &Settings::default());
    let rows: HashMap<String, u64> = e
        .rollup(RollupBy::Service)
        .into_iter()
        .map(|r| (r.key, r.bytes))
        .collect();
    // Every outbound cluster of reviews (its subsets included) lands on its host.
    let reviews: u64 = e
        .objects
        .iter()
        .filter(|o| {
            matches!(o.object, Object::Cluster(c, _) if c.name.ends_with("|reviews.default.svc.cluster.local"))
        })
        .map(|o| o.bytes())
        .sum();
    assert!(reviews > 0);
    assert!(rows["reviews.default.svc.cluster.local"] >= reviews);
    assert!(rows.contains_key("(baseline)") && rows.contains_key("(shared)"));
}

/// The committed calibration points, refitted, give exactly the shipped model; and the shipped
/// model fits them.
#[test]
fn the_shipped_model_is_the_fit_of_the_committed_points() {
    let dir = common::repo().join("testdata/calibration/fit");
    let points = Point::load_all(&dir).unwrap();
    assert!(points.len() >= 30, "{} points", points.len());
    let shipped = CostModel::envoy_1_40();
    let refit = fit(&points, &shipped.made_by).unwrap();
    assert_eq!(refit.coefficients, shipped.coefficients);
    assert_eq!(refit.fit, shipped.fit);
    assert!(
        shipped.envoy_version.starts_with("1.40."),
        "{}",
        shipped.envoy_version
    );
    let report = shipped.fit.clone().unwrap();
    assert!(
        report.max_relative_error <= 0.10,
        "the model misses its own points by up to {:.1}%",
        report.max_relative_error * 100.0
    );
    // Every point, re-estimated through the attribution path, gives the fit's prediction
    // (within rounding of each addition to whole bytes).
    for p in &points {
        let dump = Dump::from_path(dir.join(&p.id).join("config_dump.json.gz")).unwrap();
        let e = Estimate::of(
            &dump,
            &shipped,
            &Settings {
                concurrency: p.concurrency,
                stats: None,
                ..Settings::default()
            },
        );
        let r = report.residuals.iter().find(|r| r.id == p.id).unwrap();
        // Attribution rounds each feature it adds to whole bytes (so parents are exactly the sum
        // of their children): at most half a byte per addition. Additions, by what adds them:
        // an endpoint at most 5, a virtual host 2 and a route 5, a filter chain 4 and a network
        // filter 4, a cluster, listener, secret or the baseline at most one of each feature.
        let endpoints: usize = dump
            .endpoint_configs
            .iter()
            .map(|la| la.endpoints().count())
            .sum();
        let inline_endpoints: usize = dump
            .clusters
            .iter()
            .filter_map(|c| c.load_assignment.as_ref())
            .map(|la| la.endpoints().count())
            .sum();
        let routes = |rc: &heft::model::RouteConfig| {
            rc.virtual_hosts
                .iter()
                .map(|v| 2 + 5 * v.routes.len())
                .sum::<usize>()
        };
        let listeners: usize = dump
            .listeners
            .iter()
            .flat_map(|l| l.all_filter_chains())
            .map(|fc| {
                4 + fc
                    .filters
                    .iter()
                    .map(|f| match f {
                        heft::model::NetworkFilter::HttpConnectionManager { config, .. } => {
                            4 + match &config.routes {
                                heft::model::RouteSource::Inline(rc) => routes(rc),
                                _ => 0,
                            }
                        }
                        _ => 4,
                    })
                    .sum::<usize>()
            })
            .sum();
        let additions = 5 * (endpoints + inline_endpoints)
            + dump.route_configs.iter().map(routes).sum::<usize>()
            + listeners
            + heft::cost::Feature::ALL.len() * (e.objects.len() + 1);
        assert!(
            (e.total().abs_diff(r.predicted) as f64) <= 0.5 * additions as f64,
            "{}: attribution {} vs fit {}",
            p.id,
            e.total(),
            r.predicted
        );
    }
}

#[test]
fn bad_model_files_are_refused_with_the_reason() {
    let good = CostModel::envoy_1_40().to_json();
    assert_eq!(
        CostModel::from_json(&good).unwrap(),
        CostModel::envoy_1_40()
    );
    let missing = good.replace("\"cluster.eds\"", "\"cluster.nope\"");
    let err = CostModel::from_json(&missing).unwrap_err().to_string();
    assert!(err.contains("cluster.nope"), "{err}");
    let negative = good.replacen("\"baseline\": ", "\"baseline\": -", 1);
    let err = CostModel::from_json(&negative).unwrap_err().to_string();
    assert!(err.contains("baseline"), "{err}");
    assert!(CostModel::from_json("{").is_err());
}
