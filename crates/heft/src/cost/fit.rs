//! Fitting a [`CostModel`] to measurements of a real Envoy.
//!
//! A calibration point is a config dump Envoy held and the heap (`/memory` `allocated`) it used
//! holding it, at a known concurrency. Each point becomes one row: the amounts of every feature
//! in the dump (baseline included). Non-negative least squares on relative errors gives the
//! coefficients: a feature costs zero or more bytes, never less.

use super::features::{Amounts, Feature};
use super::{amounts, nnls::nnls, CostModel, Settings};
use crate::usage::Usage;
use crate::Dump;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One measurement: what a dump's features amount to and what Envoy allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The point's name.
    pub id: String,
    /// Envoy's worker threads.
    pub concurrency: u32,
    /// `/memory` `allocated`, in bytes.
    pub allocated: u64,
    /// The Envoy version measured.
    pub envoy_version: String,
    /// Amounts per feature.
    pub amounts: Amounts,
    /// `/memory` `heap_size` and `total_physical_bytes`, when recorded: what the process holds
    /// beyond the heap in use.
    pub heap_size: Option<u64>,
    /// See `heap_size`.
    pub total_physical: Option<u64>,
}

/// A calibration that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError(pub String);

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FitError {}

impl Point {
    /// A point from a dump Envoy held at `concurrency` workers with `allocated` bytes, after
    /// the traffic `usage` shows (if any).
    pub fn new(
        id: &str,
        dump: &Dump,
        concurrency: u32,
        allocated: u64,
        envoy_version: &str,
        usage: Option<Usage>,
    ) -> Point {
        let settings = Settings {
            concurrency,
            usage: usage.map(std::sync::Arc::new),
            ..Settings::default()
        };
        Point {
            id: id.to_string(),
            concurrency,
            allocated,
            envoy_version: envoy_version.to_string(),
            amounts: amounts(dump, &settings),
            heap_size: None,
            total_physical: None,
        }
    }

    /// Reads a point directory as `heft calibrate` writes it: `point.json` (`id`,
    /// `concurrency`, `allocated`, `envoy_version`) and `config_dump.json.gz`.
    pub fn load(dir: &Path) -> Result<Point, FitError> {
        let at = |what: &str, e: &dyn std::fmt::Display| {
            FitError(format!("{}: {what}: {e}", dir.display()))
        };
        let meta = PointFile::load(dir)?;
        let dump_path = [
            "config_dump.json.zst",
            "config_dump.json.gz",
            "config_dump.json",
        ]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .ok_or_else(|| at("config_dump.json[.gz]", &"missing"))?;
        let dump = Dump::from_path(&dump_path).map_err(|e| at("config dump", &e))?;
        let usage = usage_of(dir, &meta)?;
        let mut point = Point::new(
            &meta.id,
            &dump,
            meta.concurrency,
            meta.allocated,
            &meta.envoy_version,
            usage,
        );
        point.heap_size = meta.heap_size;
        point.total_physical = meta.total_physical_bytes;
        Ok(point)
    }

    /// Loads every point directory under `dir` (each holding a `point.json`), in name order.
    pub fn load_all(dir: &Path) -> Result<Vec<Point>, FitError> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| FitError(format!("{}: {e}", dir.display())))?;
        let mut dirs: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("point.json").exists())
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(FitError(format!(
                "{}: no calibration points (directories with a point.json)",
                dir.display()
            )));
        }
        use rayon::prelude::*;
        dirs.par_iter().map(|d| Point::load(d)).collect()
    }
}

/// What a point directory's stats show used: `None` for a point that sent no traffic (idle stats
/// show none worth reading). The clusters a traffic point called (each called service's first
/// HTTP port) are added as per-cluster stats would show them: the harness's Envoy has no Istio
/// stats filter, and Istio's inclusion list keeps no cluster stat.
pub fn point_usage(dir: &Path) -> Result<Option<Usage>, FitError> {
    usage_of(dir, &PointFile::load(dir)?)
}

fn usage_of(dir: &Path, meta: &PointFile) -> Result<Option<Usage>, FitError> {
    if meta.mesh.traffic_services == 0 {
        return Ok(None);
    }
    let at =
        |what: &str, e: &dyn std::fmt::Display| FitError(format!("{}: {what}: {e}", dir.display()));
    let path = ["stats.json.zst", "stats.json.gz"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .ok_or_else(|| at("stats.json[.zst|.gz]", &"missing"))?;
    let bytes = std::fs::read(&path).map_err(|e| at("stats", &e))?;
    let mut usage = Usage::from_stats(&bytes).map_err(|e| at("stats", &e))?;
    let port = meta
        .mesh
        .ports
        .iter()
        .find(|(_, protocol)| protocol != "tcp")
        .map(|(port, _)| *port)
        .ok_or_else(|| at("point.json", &"traffic but no HTTP port"))?;
    // Under Istio's inclusion list no cluster stat shows the calls: the point says what it called.
    for host in &meta.traffic_hosts {
        usage.clusters.insert(
            format!("outbound|{port}||{host}"),
            crate::usage::Counter {
                name: "traffic_hosts (point.json)".to_string(),
                value: 1,
            },
        );
    }
    Ok(Some(usage))
}

impl PointFile {
    fn load(dir: &Path) -> Result<PointFile, FitError> {
        let at =
            |e: &dyn std::fmt::Display| FitError(format!("{}: point.json: {e}", dir.display()));
        let text = std::fs::read_to_string(dir.join("point.json")).map_err(|e| at(&e))?;
        serde_json::from_str(&text).map_err(|e| at(&e))
    }
}

#[derive(Deserialize)]
struct PointFile {
    id: String,
    concurrency: u32,
    allocated: u64,
    envoy_version: String,
    #[serde(default)]
    mesh: PointMesh,
    /// The services a traffic point called, by host.
    #[serde(default)]
    traffic_hosts: Vec<String>,
    heap_size: Option<u64>,
    total_physical_bytes: Option<u64>,
}

/// The knobs of a point's generated mesh that pricing needs.
#[derive(Deserialize, Default)]
struct PointMesh {
    /// How many services got requests before `allocated` was read.
    #[serde(default)]
    traffic_services: u64,
    /// The services' ports and protocols.
    #[serde(default)]
    ports: Vec<(u32, String)>,
}

/// How a model fits the points it was fitted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Number of points.
    pub points: usize,
    /// Root mean square of the relative errors.
    pub rms_relative_error: f64,
    /// The largest relative error, in absolute value.
    pub max_relative_error: f64,
    /// Features no point exercised (their coefficient is 0).
    pub unobserved: Vec<String>,
    /// Every point's measured and predicted heap.
    pub residuals: Vec<Residual>,
    /// The least and most `/memory` `heap_size` was, as a multiple of `allocated`, over the
    /// points (the allocator's reserve beside the heap in use).
    #[serde(default)]
    pub heap_size_ratio: Option<(f64, f64)>,
    /// The same for `total_physical_bytes` (what the process holds resident in all).
    #[serde(default)]
    pub total_physical_ratio: Option<(f64, f64)>,
}

/// One point's fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Residual {
    /// The point.
    pub id: String,
    /// Envoy's `allocated`.
    pub measured: u64,
    /// The model's prediction.
    pub predicted: u64,
    /// `(predicted − measured) / measured`.
    pub error: f64,
}

/// Fits coefficients to `points` (minimizing relative errors), and reports the residuals.
pub fn fit(points: &[Point], made_by: &str) -> Result<CostModel, FitError> {
    let Some(first) = points.first() else {
        return Err(FitError("no calibration points".to_string()));
    };
    if let Some(p) = points
        .iter()
        .find(|p| p.envoy_version != first.envoy_version)
    {
        return Err(FitError(format!(
            "points measure different Envoys: {} ({}) and {} ({})",
            first.id, first.envoy_version, p.id, p.envoy_version
        )));
    }
    if let Some(p) = points.iter().find(|p| p.allocated == 0) {
        return Err(FitError(format!("{}: allocated is 0", p.id)));
    }
    // Rows weighted by 1/measured: the fit minimizes relative errors, so small configurations
    // count as much as big ones.
    let rows: Vec<Vec<f64>> = points
        .iter()
        .map(|p| {
            let w = 1.0 / p.allocated as f64;
            p.amounts.0.iter().map(|a| a * w).collect()
        })
        .collect();
    let ones = vec![1.0; points.len()];
    let x = nnls(&rows, &ones);
    let mut coefficients = IndexMap::new();
    let mut unobserved = Vec::new();
    for (f, v) in Feature::ALL.iter().zip(&x) {
        coefficients.insert(f.name().to_string(), (v * 10.0).round() / 10.0);
        if points.iter().all(|p| p.amounts.0[*f as usize] == 0.0) {
            unobserved.push(f.name().to_string());
        }
    }
    let residuals: Vec<Residual> = points
        .iter()
        .map(|p| {
            let predicted: f64 = p
                .amounts
                .0
                .iter()
                .zip(Feature::ALL)
                .map(|(a, f)| a * coefficients[f.name()])
                .sum();
            Residual {
                id: p.id.clone(),
                measured: p.allocated,
                predicted: predicted.round() as u64,
                error: (predicted - p.allocated as f64) / p.allocated as f64,
            }
        })
        .collect();
    let n = residuals.len() as f64;
    let ratio = |of: fn(&Point) -> Option<u64>| {
        let r: Vec<f64> = points
            .iter()
            .filter_map(|p| of(p).map(|b| b as f64 / p.allocated as f64))
            .collect();
        let round = |v: f64| (v * 100.0).round() / 100.0;
        (r.len() == points.len()).then(|| {
            let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = r.iter().copied().fold(0.0, f64::max);
            (round(lo), round(hi))
        })
    };
    let report = FitReport {
        heap_size_ratio: ratio(|p| p.heap_size),
        total_physical_ratio: ratio(|p| p.total_physical),
        points: points.len(),
        rms_relative_error: (residuals.iter().map(|r| r.error * r.error).sum::<f64>() / n).sqrt(),
        max_relative_error: residuals.iter().map(|r| r.error.abs()).fold(0.0, f64::max),
        unobserved,
        residuals,
    };
    CostModel::new(&first.envoy_version, made_by, coefficients, Some(report))
        .map_err(|e| FitError(e.to_string()))
}
