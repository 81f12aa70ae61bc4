//! The cost model on real Envoy captures: attribution adds up, and the shipped model is the one
//! its committed calibration data gives.

mod common;

use heft::cost::{fit, CostModel, Estimate, Kind, Object, Point, RollupBy, Settings};
use heft::Dump;
use std::collections::HashMap;
use std::path::PathBuf;

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

/// Each version's committed calibration points, refitted, give exactly its shipped model; and
/// the shipped model fits them.
#[test]
fn every_shipped_model_is_the_fit_of_its_committed_points() {
    let shipped = heft::cost::models::builtin();
    assert_eq!(shipped.len(), 5, "one model per Envoy 1.36 … 1.40");
    for model in shipped {
        check_shipped(model);
    }
}

fn check_shipped(shipped: &CostModel) {
    let dir = common::repo()
        .join("testdata/calibration")
        .join(format!("envoy-{}", shipped.envoy_version))
        .join("fit");
    let points = Point::load_all(&dir).unwrap();
    assert!(points.len() >= 30, "{} points", points.len());
    let refit = fit(&points, &shipped.made_by).unwrap();
    assert_eq!(
        refit.coefficients,
        shipped.coefficients,
        "{}",
        dir.display()
    );
    assert_eq!(refit.fit, shipped.fit, "{}", dir.display());
    let report = shipped.fit.clone().unwrap();
    assert!(
        report.max_relative_error <= 0.10,
        "the model misses its own points by up to {:.1}%",
        report.max_relative_error * 100.0
    );
    // Every point, re-estimated through the attribution path, gives the fit's prediction
    // (within rounding of each addition to whole bytes).
    for p in &points {
        let point = dir.join(&p.id);
        let dump = ["config_dump.json.zst", "config_dump.json.gz"]
            .iter()
            .map(|f| point.join(f))
            .find(|f| f.exists())
            .map(|f| Dump::from_path(f).unwrap())
            .unwrap();
        let e = Estimate::of(
            &dump,
            shipped,
            &Settings {
                concurrency: p.concurrency,
                usage: heft::cost::point_usage(&point).unwrap().map(Into::into),
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

/// A committed calibration point of Envoy 1.40: its dump, how it was measured, its directory
/// and its dump file.
fn calibration_point(id: &str) -> (Dump, serde_json::Value, PathBuf, PathBuf) {
    let dir = common::repo()
        .join("testdata/calibration/envoy-1.40.0/fit")
        .join(id);
    let file = ["config_dump.json.zst", "config_dump.json.gz"]
        .iter()
        .map(|f| dir.join(f))
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("no dump in {}", dir.display()));
    let dump = Dump::from_path(&file).unwrap();
    let meta = serde_json::from_str(&std::fs::read_to_string(dir.join("point.json")).unwrap());
    (dump, meta.unwrap(), dir, file)
}

/// What a model with every coefficient 1 counts of each feature.
fn count(dump: &Dump, settings: &Settings, feature: heft::cost::Feature) -> f64 {
    heft::cost::amounts(dump, settings).0[feature as usize]
}

/// Envoy builds no upstream TLS context while the root secret it validates with is warming (a
/// real Envoy whose ROOTCA never came): Heft prices none, in the collected dump and the stream.
#[test]
fn tls_contexts_waiting_for_a_warming_secret_are_not_priced() {
    use heft::cost::Feature;
    let (warming, meta, _, warming_file) = calibration_point("root-warming");
    assert_eq!(meta["warming"]["secret_names"][0], "ROOTCA");
    let (served, _, _, served_file) = calibration_point("base");
    let s = Settings::default();
    assert_eq!(count(&warming, &s, Feature::ClusterTlsContext), 0.0);
    assert!(count(&served, &s, Feature::ClusterTlsContext) >= 400.0);
    // The stream reads the secrets after the clusters, and takes the contexts back at the end.
    let model = CostModel::envoy_1_40();
    for (dump, file) in [(&warming, &warming_file), (&served, &served_file)] {
        let fold = heft::cost::stream::CostFold::new(&model, &s);
        let (_, acc) = heft::stream::fold_path(file, &Default::default(), &fold).unwrap();
        assert_eq!(fold.finish(&acc), Estimate::of(dump, &model, &s).totals());
    }
}

/// istio-agent's bootstrap turns both deferrals on: read from the dump, and overridable.
#[test]
fn deferrals_are_read_from_the_bootstrap_and_can_be_overridden() {
    use heft::cost::Feature;
    let (dump, meta, _, _) = calibration_point("istio-agent");
    assert_eq!(meta["mesh"]["deferred_clusters"], true);
    let s = Settings::default();
    let e = Estimate::of(&dump, &CostModel::envoy_1_40(), &s);
    assert!(
        e.proxy.deferred_stats && e.proxy.deferred_clusters,
        "{:?}",
        e.proxy
    );
    assert_eq!(
        e.proxy.deferred_clusters_source,
        heft::cost::StatsSource::Bootstrap
    );
    let clusters = dump.clusters.len() as f64;
    // Idle: no cluster is built on a worker; its stats wait.
    assert_eq!(count(&dump, &s, Feature::ClusterPerWorker), 0.0);
    assert_eq!(
        count(&dump, &s, Feature::ClusterPerWorkerDeferred),
        2.0 * clusters
    );
    assert!(count(&dump, &s, Feature::ClusterStatsDeferredRejected) > 0.9 * clusters - 10.0);
    // What if creation were not deferred: every worker builds every cluster.
    let eager = Settings {
        deferred_clusters: Some(false),
        ..Settings::default()
    };
    assert_eq!(
        count(&dump, &eager, Feature::ClusterPerWorker),
        2.0 * clusters
    );
    let model = CostModel::envoy_1_40();
    assert!(Estimate::of(&dump, &model, &eager).total() > Estimate::of(&dump, &model, &s).total());
}

/// After real requests to a known set of services, those clusters hold connection pools, their
/// stats and (deferred creation) their worker copies; the others do not.
#[test]
fn clusters_that_carried_traffic_are_priced_as_built() {
    use heft::cost::Feature;
    let (dump, meta, dir, _) = calibration_point("traffic-100-istio-agent");
    let called = meta["traffic_hosts"].as_array().unwrap().len();
    assert_eq!(called, 100);
    let usage = heft::cost::point_usage(&dir).unwrap().unwrap();
    let s = Settings {
        usage: Some(usage.into()),
        ..Settings::default()
    };
    // And xds-grpc, whose stats (kept by Istio's list) show the xDS stream.
    let used = called as f64 + 1.0;
    assert_eq!(count(&dump, &s, Feature::ClusterTraffic), used);
    assert_eq!(count(&dump, &s, Feature::ClusterPerWorker), 2.0 * used);
    assert_eq!(
        count(&dump, &Settings::default(), Feature::ClusterTraffic),
        0.0
    );
}
