//! Measures the heap the typed model of a dump occupies, per resource kind.
//!
//! Usage: model-size FILE. A counting allocator records live bytes; each kind's share is what
//! dropping it frees.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: model-size FILE");
    let size = std::fs::metadata(&path).expect("stat").len() as f64;
    let before = live();
    let mut dump = heft::Dump::from_path(&path).expect("read");
    let total = live() - before;
    println!(
        "model: {:.1} MB for {:.1} MB of input ({:.0}%)",
        total as f64 / 1e6,
        size / 1e6,
        100.0 * total as f64 / size
    );
    let report = |name: &str, count: usize, freed: isize| {
        println!(
            "  {name:<16} {count:>8} objects {:>8.1} MB {:>6.0} B each",
            freed as f64 / 1e6,
            freed as f64 / count.max(1) as f64
        );
    };
    let n = dump.clusters.len();
    let at = live();
    dump.clusters = Vec::new();
    report("clusters", n, at - live());
    let n = dump.endpoint_configs.len();
    let at = live();
    dump.endpoint_configs = Vec::new();
    report("endpoint configs", n, at - live());
    let n = dump.route_configs.len();
    let at = live();
    dump.route_configs = Vec::new();
    report("route configs", n, at - live());
    let n = dump.listeners.len();
    let at = live();
    dump.listeners = Vec::new();
    report("listeners", n, at - live());
    println!(
        "  rest             {:>8.1} MB",
        (live() - before) as f64 / 1e6
    );
    println!(
        "sizes: Cluster {} B, Listener {} B, RouteConfig {} B, Route {} B, Endpoint {} B",
        std::mem::size_of::<heft::model::Cluster>(),
        std::mem::size_of::<heft::model::Listener>(),
        std::mem::size_of::<heft::model::RouteConfig>(),
        std::mem::size_of::<heft::model::Route>(),
        std::mem::size_of::<heft::model::Endpoint>()
    );
    use heft::model::*;
    println!(
        "parts: Meta {} B, Metadata {} B, TransportSocket {} B, IstioName {} B, LoadAssignment {} B, OutlierDetection {} B, UpdateFailure {} B",
        std::mem::size_of::<Meta>(),
        std::mem::size_of::<Metadata>(),
        std::mem::size_of::<TransportSocket>(),
        std::mem::size_of::<istio::IstioName>(),
        std::mem::size_of::<LoadAssignment>(),
        std::mem::size_of::<OutlierDetection>(),
        std::mem::size_of::<UpdateFailure>()
    );
}
