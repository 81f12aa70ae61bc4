//! Reading as a stream: folds over the resources as they are decoded give exactly what the
//! collected [`Dump`] gives, on the real captures, whatever the way of reading.

mod common;

use common::*;
use heft::cost::stream::{CostFold, CostTotals};
use heft::cost::{CostModel, Estimate, Feature, Settings, StatsSource};
use heft::model::StatsMatcher;
use heft::stream::{self, Fold, Resource};
use heft::summary_types::SummaryFold;
use heft::{Dump, ReadOptions, Summary};
use indexmap::IndexMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A model whose coefficients are all different and fractional, so that a feature counted
/// twice, missed or rounded differently changes the totals (the shipped model may still be a
/// placeholder of zeros).
fn test_model() -> CostModel {
    let coefficients: IndexMap<String, f64> = Feature::ALL
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().to_string(), 101.37 * (i + 1) as f64 + 0.41))
        .collect();
    CostModel::new("test", "tests/stream.rs", coefficients, None).unwrap()
}

fn settings() -> Vec<Settings> {
    vec![
        Settings::default(),
        Settings {
            concurrency: 4,
            stats: None,
            ..Settings::default()
        },
        Settings {
            concurrency: 2,
            stats: Some(heft::cost::istio_stats_matcher()),
            ..Settings::default()
        },
    ]
}

/// The fold's totals against the estimate over the collected dump.
fn assert_costs_agree(
    totals: &CostTotals,
    dump: &Dump,
    model: &CostModel,
    s: &Settings,
    what: &str,
) {
    assert_eq!(*totals, Estimate::of(dump, model, s).totals(), "{what}");
}

/// Every JSON input the tests have: the real captures and istioctl's fixtures.
fn json_inputs() -> Vec<PathBuf> {
    let mut files = captures(&["config_dump.json", "clusters.json"]);
    let mut stack = vec![fixtures()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn summary_and_cost_folds_equal_the_collected_dump_on_every_input_and_way_of_reading() {
    let model = test_model();
    for path in json_inputs() {
        let name = path.display().to_string();
        let Ok(dump) = Dump::from_path(&path) else {
            // Fixtures Heft refuses (not dumps) are refused by every path alike.
            assert!(stream::fold_path(&path, &ReadOptions::default(), &SummaryFold).is_err());
            continue;
        };
        let text = bytes(&path);
        let want = Summary::of(&dump);
        for s in settings() {
            let fold = (SummaryFold, CostFold::new(&model, &s));
            let opts = ReadOptions::default();
            let ways: Vec<(&str, _)> = vec![
                ("file", stream::fold_path(&path, &opts, &fold)),
                ("slice", stream::fold_slice(&text, &opts, &fold)),
                (
                    "pipe",
                    stream::fold_reader(Dribble(&text, 4093), &opts, &fold),
                ),
            ];
            for (way, result) in ways {
                let (outline, (counts, costs)) = result.unwrap();
                let what = format!("{name} ({way}, {s:?})");
                let mut got = SummaryFold.finish(&outline, counts);
                got.input.compression = want.input.compression;
                assert_eq!(got, want, "{what}: summary");
                assert_costs_agree(&fold.1.finish(&costs), &dump, &model, &s, &what);
            }
        }
    }
}

#[test]
fn objects_read_before_the_bootstrap_are_priced_with_its_stats_matcher() {
    // The gateway's bootstrap keeps only Istio's stats; as the last element of a resource list
    // it arrives after every cluster and listener, which must then be priced at the end.
    let dump = Dump::from_path(capture("gateway", "config_dump.json")).unwrap();
    let raw: serde_json::Value =
        serde_json::from_slice(&bytes(&capture("gateway", "config_dump.json"))).unwrap();
    let mut list = Vec::new();
    let mut bootstrap = None;
    for section in raw["configs"].as_array().unwrap() {
        if let Some(b) = section.get("bootstrap") {
            bootstrap = Some(b.clone());
        }
        for key in ["dynamic_active_clusters", "static_clusters"] {
            for e in section[key].as_array().into_iter().flatten() {
                list.push(e["cluster"].clone());
            }
        }
        for e in section["dynamic_listeners"]
            .as_array()
            .into_iter()
            .flatten()
        {
            list.push(e["active_state"]["listener"].clone());
        }
    }
    let model = test_model();
    let s = Settings::default();
    // Without a bootstrap, every stat is kept (the default), and priced at the end all the same.
    let text = serde_json::to_vec_pretty(&list).unwrap();
    let none = Dump::from_slice(&text).unwrap();
    let fold = CostFold::new(&model, &s);
    let (_, acc) = stream::fold_slice(&text, &ReadOptions::default(), &fold).unwrap();
    let totals = fold.finish(&acc);
    assert_eq!(totals.stats_source, StatsSource::Default);
    assert_costs_agree(&totals, &none, &model, &s, "no bootstrap");

    list.push(bootstrap.expect("the gateway capture has a bootstrap"));
    let text = serde_json::to_vec_pretty(&list).unwrap();
    let late = Dump::from_slice(&text).unwrap();
    assert!(matches!(
        late.bootstrap.as_ref().unwrap().stats.matcher,
        StatsMatcher::Inclusion(_)
    ));
    assert!(late.clusters.len() >= 10 && !late.listeners.is_empty());

    let fold = CostFold::new(&model, &s);
    let (_, acc) = stream::fold_slice(&text, &ReadOptions::default(), &fold).unwrap();
    let totals = fold.finish(&acc);
    assert_eq!(totals.stats_source, StatsSource::Bootstrap);
    assert_costs_agree(&totals, &late, &model, &s, "bootstrap last");
    // The matcher mattered: pricing every stat gives another total.
    let all = Settings {
        stats: Some(StatsMatcher::All),
        ..Settings::default()
    };
    assert_ne!(
        Estimate::of(&late, &model, &all).total(),
        totals.total(),
        "the inclusion list should price fewer stats"
    );
    // And the same objects in a dump with the bootstrap first cost the same.
    let first = Estimate::of(&dump, &model, &s);
    assert_eq!(first.stats, Estimate::of(&late, &model, &s).stats);
}

/// Checks that each resource's raw bytes are its dump entry in the input.
struct RawCheck<'t> {
    text: &'t [u8],
    seen: AtomicU64,
}

impl Fold for RawCheck<'_> {
    type Acc = u64;
    fn start(&self) -> u64 {
        0
    }
    fn add(&self, n: &mut u64, resource: &Resource, raw: &[u8]) {
        let span = resource
            .meta()
            .span
            .expect("every JSON resource has a span");
        let at = span.offset as usize;
        assert_eq!(raw.len() as u64, span.len);
        assert!(raw == &self.text[at..at + raw.len()], "raw bytes at {at}");
        *n += 1;
        self.seen.fetch_add(1, Ordering::Relaxed);
    }
    fn merge(&self, n: &mut u64, later: u64) {
        *n += later;
    }
}

#[test]
fn a_fold_is_handed_each_resources_entry_bytes_from_a_map_and_from_a_pipe() {
    for path in captures(&["config_dump.json", "clusters.json"]) {
        let text = bytes(&path);
        let dump = Dump::from_slice(&text).unwrap();
        let resources = dump.clusters.len()
            + dump.listeners.len()
            + dump.route_configs.len()
            + dump.endpoint_configs.len()
            + dump.secrets.len()
            + dump.cluster_statuses.len()
            + dump.rejected.len()
            + usize::from(dump.bootstrap.is_some());
        for step in [None, Some(1000)] {
            let fold = RawCheck {
                text: &text,
                seen: AtomicU64::new(0),
            };
            let opts = ReadOptions::default();
            let (_, n) = match step {
                None => stream::fold_slice(&text, &opts, &fold).unwrap(),
                Some(step) => stream::fold_reader(Dribble(&text, step), &opts, &fold).unwrap(),
            };
            assert_eq!(n as usize, resources, "{}", path.display());
            assert_eq!(fold.seen.load(Ordering::Relaxed), n);
        }
    }
}

#[test]
fn progress_reports_grow_to_the_stored_size_of_the_input() {
    let path = capture("sidecar", "config_dump.json");
    let stored = std::fs::metadata(&path).unwrap().len();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let opts = ReadOptions {
        progress: Some(stream::Progress::new(move |done, total| {
            sink.lock().unwrap().push((done, total))
        })),
        ..Default::default()
    };
    Dump::from_path_with(&path, &opts).unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    assert_eq!(*seen.last().unwrap(), (stored, Some(stored)));
}

#[test]
fn a_dump_keeping_some_kinds_holds_exactly_those_of_the_whole_dump() {
    let clusters_and_secrets =
        |r: &Resource| matches!(r, Resource::Cluster(_) | Resource::Secret(_));
    let mut checked = 0;
    for path in captures(&["config_dump.json", "clusters.json"]) {
        let whole = Dump::from_path(&path).unwrap();
        let opts = ReadOptions::default();
        let text = bytes(&path);
        for kept in [
            Dump::from_path_keeping(&path, &opts, clusters_and_secrets).unwrap(),
            Dump::from_slice_keeping(&text, &opts, clusters_and_secrets).unwrap(),
        ] {
            let what = path.display();
            assert_eq!(kept.clusters, whole.clusters, "{what}");
            assert_eq!(kept.secrets, whole.secrets, "{what}");
            assert_eq!(kept.sections, whole.sections, "{what}");
            // (The slice is the decompressed text: only its compression differs.)
            assert_eq!(kept.source.bytes, whole.source.bytes, "{what}");
            assert!(kept.bootstrap.is_none(), "{what}");
            assert!(
                kept.listeners.is_empty() && kept.route_configs.is_empty(),
                "{what}"
            );
            assert!(
                kept.endpoint_configs.is_empty() && kept.cluster_statuses.is_empty(),
                "{what}"
            );
            checked += usize::from(!whole.clusters.is_empty() && whole.bootstrap.is_some());
        }
    }
    assert!(
        checked >= 4,
        "the captures hold clusters and a bootstrap to drop"
    );
}

#[test]
fn shape_detail_leaves_out_only_what_it_promises() {
    let mut with_details = 0;
    let mut detailed_routes = 0;
    for path in json_inputs() {
        let Ok((_, full)) = stream::fold_path(
            &path,
            &ReadOptions::default(),
            &CollectAt(stream::Detail::Full),
        ) else {
            continue;
        };
        let text = bytes(&path);
        let shape_fold = CollectAt(stream::Detail::Shape);
        let opts = ReadOptions::default();
        let want: Vec<Resource> = full.iter().cloned().map(shape_of).collect();
        for (way, got) in [
            ("file", stream::fold_path(&path, &opts, &shape_fold)),
            (
                "pipe",
                stream::fold_reader(Dribble(&text, 4093), &opts, &shape_fold),
            ),
        ] {
            let (_, got) = got.unwrap();
            assert_eq!(got, want, "{} ({way})", path.display());
        }
        // The captures have TLS contexts and routes with details, so the test can tell the two
        // apart.
        for r in &full {
            if let Resource::RouteConfig(rc) = r {
                if rc.meta.state != heft::model::State::Static {
                    detailed_routes += rc
                        .virtual_hosts
                        .iter()
                        .flat_map(|v| &v.routes)
                        .filter(|r| matches!(&r.action, heft::model::Action::Route(a) if a.retry_policy.is_some() && a.timeout.is_some()))
                        .count();
                }
            }
            with_details += blank_tls(&mut r.clone());
        }
    }
    assert!(
        with_details >= 20 && detailed_routes >= 20,
        "{with_details} {detailed_routes}"
    );
}
