//! The COST column: what the memory model says each row's object costs.
//!
//! Rows are computed one resource at a time, so the price comes from a [`Pricing`] the caller
//! supplies rather than from a whole-dump estimate the row functions would have to hold.
//! [`EstimatePricing`] answers from a [`cost::Estimate`](crate::cost::Estimate) of the dump the
//! resources belong to; a streaming caller can implement [`Pricing`] by pricing each object as
//! it comes.

use crate::cost::{Child, Estimate, Object};
use crate::model::{Cluster, Listener, LoadAssignment, RouteConfig, Secret};
use std::cell::RefCell;
use std::collections::HashMap;

/// Prices the objects rows stand for. Every method may answer `None` (no price known).
pub trait Pricing {
    /// A cluster, its endpoints included.
    fn cluster(&self, cluster: &Cluster) -> Option<u64>;
    /// A whole listener.
    fn listener(&self, listener: &Listener) -> Option<u64>;
    /// Filter chain `chain` of a listener, counted as [`Listener::all_filter_chains`] lists
    /// them (the default chain last).
    fn filter_chain(&self, listener: &Listener, chain: usize) -> Option<u64>;
    /// A whole route configuration.
    fn route_config(&self, config: &RouteConfig) -> Option<u64>;
    /// Virtual host `vhost` of a route configuration, its routes included.
    fn virtual_host(&self, config: &RouteConfig, vhost: usize) -> Option<u64>;
    /// Route `route` of virtual host `vhost`.
    fn route(&self, config: &RouteConfig, vhost: usize, route: usize) -> Option<u64>;
    /// Endpoint `index` of a load assignment, counted as [`LoadAssignment::endpoints`] lists them.
    fn endpoint(&self, assignment: &LoadAssignment, index: usize) -> Option<u64>;
    /// A secret.
    fn secret(&self, secret: &Secret) -> Option<u64>;
}

/// No prices: every row's COST is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPricing;

impl Pricing for NoPricing {
    fn cluster(&self, _: &Cluster) -> Option<u64> {
        None
    }
    fn listener(&self, _: &Listener) -> Option<u64> {
        None
    }
    fn filter_chain(&self, _: &Listener, _: usize) -> Option<u64> {
        None
    }
    fn route_config(&self, _: &RouteConfig) -> Option<u64> {
        None
    }
    fn virtual_host(&self, _: &RouteConfig, _: usize) -> Option<u64> {
        None
    }
    fn route(&self, _: &RouteConfig, _: usize, _: usize) -> Option<u64> {
        None
    }
    fn endpoint(&self, _: &LoadAssignment, _: usize) -> Option<u64> {
        None
    }
    fn secret(&self, _: &Secret) -> Option<u64> {
        None
    }
}

/// Prices from an [`Estimate`] of the dump the rows are read from: a resource is found by
/// identity (the same value in the same dump), so two resources with the same name in different
/// states keep their own prices.
///
/// ```
/// use heft::cost::{CostModel, Estimate, Settings};
/// use heft::views::{cluster, EstimatePricing};
/// let dump = heft::Dump::from_slice(br#"[{"name": "outbound|80||a.ns.svc.cluster.local", "type": "EDS"}]"#)?;
/// let estimate = Estimate::of(&dump, &CostModel::envoy_1_40(), &Settings::default());
/// let pricing = EstimatePricing::new(&estimate);
/// let row = cluster::cluster_row(&dump.clusters[0], &cluster::ClusterFilter::default(), &pricing).unwrap();
/// assert_eq!(row.cost, Some(estimate.objects[0].bytes()));
/// # Ok::<(), heft::Error>(())
/// ```
pub struct EstimatePricing<'e, 'd> {
    estimate: &'e Estimate<'d>,
    /// Object index by the address of the resource it prices.
    index: HashMap<usize, usize>,
    /// Object index by the address of a load assignment (inline or over EDS).
    assignments: HashMap<usize, usize>,
    /// Priced children, computed on first use.
    children: RefCell<HashMap<usize, Vec<Child>>>,
}

fn addr<T>(r: &T) -> usize {
    r as *const T as usize
}

impl<'e, 'd> EstimatePricing<'e, 'd> {
    /// Indexes the estimate's objects.
    pub fn new(estimate: &'e Estimate<'d>) -> Self {
        let mut index = HashMap::with_capacity(estimate.objects.len());
        let mut assignments = HashMap::new();
        for (i, o) in estimate.objects.iter().enumerate() {
            let key = match o.object {
                Object::Cluster(c, la) => {
                    if let Some(la) = la {
                        assignments.insert(addr(la), i);
                    }
                    addr(c)
                }
                Object::Endpoints(la) => {
                    assignments.insert(addr(la), i);
                    continue;
                }
                Object::Listener(l) => addr(l),
                Object::RouteConfig(rc) => addr(rc),
                Object::Secret(s) => addr(s),
            };
            index.insert(key, i);
        }
        EstimatePricing {
            estimate,
            index,
            assignments,
            children: RefCell::new(HashMap::new()),
        }
    }

    fn whole(&self, key: usize) -> Option<u64> {
        self.index
            .get(&key)
            .map(|&i| self.estimate.objects[i].bytes())
    }

    fn child(&self, object: usize, path: &[usize]) -> Option<u64> {
        let mut cache = self.children.borrow_mut();
        let children = cache.entry(object).or_insert_with(|| {
            self.estimate
                .children(&self.estimate.objects[object].object)
        });
        let (first, rest) = path.split_first()?;
        let mut node = children.get(*first)?;
        for &i in rest {
            node = node.children.get(i)?;
        }
        Some(node.parts.total())
    }
}

impl Pricing for EstimatePricing<'_, '_> {
    fn cluster(&self, cluster: &Cluster) -> Option<u64> {
        self.whole(addr(cluster))
    }
    fn listener(&self, listener: &Listener) -> Option<u64> {
        self.whole(addr(listener))
    }
    fn filter_chain(&self, listener: &Listener, chain: usize) -> Option<u64> {
        let object = *self.index.get(&addr(listener))?;
        self.child(object, &[chain])
    }
    fn route_config(&self, config: &RouteConfig) -> Option<u64> {
        self.whole(addr(config))
    }
    fn virtual_host(&self, config: &RouteConfig, vhost: usize) -> Option<u64> {
        let object = *self.index.get(&addr(config))?;
        self.child(object, &[vhost])
    }
    fn route(&self, config: &RouteConfig, vhost: usize, route: usize) -> Option<u64> {
        let object = *self.index.get(&addr(config))?;
        self.child(object, &[vhost, route])
    }
    fn endpoint(&self, assignment: &LoadAssignment, index: usize) -> Option<u64> {
        let object = *self.assignments.get(&addr(assignment))?;
        self.child(object, &[index])
    }
    fn secret(&self, secret: &Secret) -> Option<u64> {
        self.whole(addr(secret))
    }
}
