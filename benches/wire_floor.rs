//! A floor for the binary read: the least any reader of a binary `ConfigDump` must do to count
//! and price what `heft summary` counts and prices, and nothing more.
//!
//! It maps the file, walks `configs` and each section's entries on one thread, then, on every
//! thread, walks each cluster's and each load assignment's fields (and every locality's and
//! endpoint's), each listener's, and each route configuration's virtual hosts and routes,
//! hashing every cluster name and endpoint metadata. It builds nothing, checks no UTF-8, reads
//! no field's meaning and prices nothing: a reader that still folded a summary and a cost from
//! these bytes could only be slower. `heft summary` on the same file, beside it in the same run,
//! says how far Heft's read is from it.
//!
//! Usage: wire-floor FILE. Prints what it counted; exits 1 on input it cannot walk.

use foldhash::quality::FixedState;
use rayon::prelude::*;
use std::hash::{BuildHasher, Hasher};

/// Input it cannot walk: the floor is for well-formed dumps and gives up on anything else.
#[derive(Debug)]
struct Bad;

fn varint(b: &[u8], p: &mut usize) -> Result<u64, Bad> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let x = *b.get(*p).ok_or(Bad)?;
        *p += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x < 0x80 {
            return Ok(v);
        }
    }
    Err(Bad)
}

/// Calls `f(number, bytes)` for each length-delimited field of `b`, `f(number, &[])` for the
/// others, in wire order.
#[inline(always)]
fn fields<'a>(b: &'a [u8], mut f: impl FnMut(u64, &'a [u8]) -> Result<(), Bad>) -> Result<(), Bad> {
    let mut p = 0;
    while p < b.len() {
        let key = varint(b, &mut p)?;
        match key & 7 {
            0 => {
                varint(b, &mut p)?;
                f(key >> 3, &[])?;
            }
            1 => p += 8,
            2 => {
                let len = usize::try_from(varint(b, &mut p)?).map_err(|_| Bad)?;
                let value = b.get(p..p.checked_add(len).ok_or(Bad)?).ok_or(Bad)?;
                p += len;
                f(key >> 3, value)?;
            }
            5 => p += 4,
            _ => return Err(Bad),
        }
    }
    if p == b.len() {
        Ok(())
    } else {
        Err(Bad)
    }
}

/// The payload of an `Any`.
fn any_value(b: &[u8]) -> Result<&[u8], Bad> {
    let mut value: &[u8] = &[];
    fields(b, |n, v| {
        if n == 2 {
            value = v;
        }
        Ok(())
    })?;
    Ok(value)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Cluster,
    LoadAssignment,
    Listener,
    RouteConfig,
}

#[derive(Default)]
struct Counts {
    clusters: u64,
    load_assignments: u64,
    endpoints: u64,
    listeners: u64,
    virtual_hosts: u64,
    routes: u64,
    fields: u64,
    hash: u64,
}

impl Counts {
    fn add(mut self, o: Counts) -> Counts {
        self.clusters += o.clusters;
        self.load_assignments += o.load_assignments;
        self.endpoints += o.endpoints;
        self.listeners += o.listeners;
        self.virtual_hosts += o.virtual_hosts;
        self.routes += o.routes;
        self.fields += o.fields;
        self.hash ^= o.hash;
        self
    }
}

/// One entry: `static` entries hold their resource in field 1, dynamic ones in field 2 (a
/// dynamic listener in its `active_state`'s field 2).
fn entry(
    kind: Kind,
    is_static: bool,
    e: &[u8],
    c: &mut Counts,
    seed: &FixedState,
) -> Result<(), Bad> {
    let hash = |b: &[u8]| {
        let mut h = seed.build_hasher();
        h.write(b);
        h.finish()
    };
    let mut resource: &[u8] = &[];
    let wanted = if is_static { 1 } else { 2 };
    fields(e, |n, v| {
        if n == wanted {
            resource = v;
        }
        Ok(())
    })?;
    if kind == Kind::Listener && !is_static {
        let state = std::mem::take(&mut resource);
        fields(state, |n, v| {
            if n == 2 {
                resource = v;
            }
            Ok(())
        })?;
    }
    if resource.is_empty() {
        return Ok(());
    }
    let r = any_value(resource)?;
    let mut n_fields = 0u64;
    let mut h = 0u64;
    match kind {
        Kind::Cluster => {
            c.clusters += 1;
            fields(r, |n, v| {
                n_fields += 1;
                if n == 1 {
                    h ^= hash(v);
                }
                Ok(())
            })?;
        }
        Kind::LoadAssignment => {
            c.load_assignments += 1;
            fields(r, |n, v| {
                n_fields += 1;
                match n {
                    1 => h ^= hash(v),
                    2 => fields(v, |n, v| {
                        n_fields += 1;
                        if n == 2 {
                            c.endpoints += 1;
                            fields(v, |n, v| {
                                n_fields += 1;
                                if n == 3 {
                                    h ^= hash(v);
                                }
                                Ok(())
                            })?;
                        }
                        Ok(())
                    })?,
                    _ => {}
                }
                Ok(())
            })?;
        }
        Kind::Listener => {
            c.listeners += 1;
            fields(r, |_, _| {
                n_fields += 1;
                Ok(())
            })?;
        }
        Kind::RouteConfig => {
            fields(r, |n, v| {
                n_fields += 1;
                if n == 2 {
                    c.virtual_hosts += 1;
                    fields(v, |n, _| {
                        n_fields += 1;
                        if n == 3 {
                            c.routes += 1;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        }
    }
    c.fields += n_fields;
    c.hash ^= h;
    Ok(())
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: wire-floor FILE");
    let file = std::fs::File::open(&path).expect("open");
    // SAFETY: read-only private mapping of a file nothing else writes during the benchmark.
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    let mut jobs: Vec<(Kind, bool, &[u8])> = Vec::new();
    let walked = fields(&map, |n, config| {
        if n != 1 {
            return Ok(());
        }
        let mut type_url: &[u8] = &[];
        let mut value: &[u8] = &[];
        let _ = fields(config, |n, v| {
            match n {
                1 => type_url = v,
                2 => value = v,
                _ => {}
            }
            Ok(())
        });
        let kind = match type_url.rsplit(|&b| b == b'.').next() {
            Some(b"ClustersConfigDump") => Kind::Cluster,
            Some(b"EndpointsConfigDump") => Kind::LoadAssignment,
            Some(b"ListenersConfigDump") => Kind::Listener,
            Some(b"RoutesConfigDump") => Kind::RouteConfig,
            _ => return Ok(()),
        };
        fields(value, |n, e| {
            if n >= 2 && !e.is_empty() {
                jobs.push((kind, n == 2, e));
            }
            Ok(())
        })
    });
    if walked.is_err() {
        eprintln!("wire-floor: {path}: not a binary ConfigDump this floor can walk");
        std::process::exit(1);
    }
    let counted = jobs
        .par_chunks(1024)
        .map(|chunk| {
            let mut c = Counts::default();
            let seed = FixedState::with_seed(1);
            for &(kind, is_static, e) in chunk {
                entry(kind, is_static, e, &mut c, &seed)?;
            }
            Ok::<_, Bad>(c)
        })
        .try_reduce(Counts::default, |a, b| Ok(a.add(b)));
    let Ok(c) = counted else {
        eprintln!("wire-floor: {path}: an entry this floor cannot walk");
        std::process::exit(1);
    };
    println!(
        "{} clusters, {} load assignments, {} endpoints, {} listeners, {} virtual hosts, {} routes; \
         {} fields, hash {:016x}",
        c.clusters,
        c.load_assignments,
        c.endpoints,
        c.listeners,
        c.virtual_hosts,
        c.routes,
        c.fields,
        c.hash
    );
}
