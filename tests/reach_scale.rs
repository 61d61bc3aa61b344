//! Scale runs of the reachability engine, ignored by default (they take
//! seconds in release mode and minutes in debug). Run them with
//!
//! ```sh
//! /usr/bin/time -v cargo test --release --test reach_scale -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Each prints timings, the model's statistics and the process's resident
//! memory (from `/proc/self/status`) before and after building the model.
//! `docs/performance-analysis.md` records the figures.

use netpolc::evaluate::{self, Connection, Endpoint, Protocol};
use netpolc::reach::{Reachability, synth};
use std::time::Instant;

/// `VmRSS` and `VmHWM` in MiB, when `/proc/self/status` is readable.
fn memory() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return "memory unknown".into();
    };
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    format!("RSS {:.0} MiB, peak {:.0} MiB", field("VmRSS:"), field("VmHWM:"))
}

fn run(namespaces: usize, pods: usize, policies: usize, full_matrix: bool) {
    let t = Instant::now();
    let s = synth::generate(&synth::Shape {
        namespaces,
        pods,
        policies,
        seed: 1,
    });
    println!(
        "generated {pods} pods, {namespaces} namespaces, {policies} policies in {:?}; {}",
        t.elapsed(),
        memory()
    );
    let t = Instant::now();
    let r = Reachability::compute(&s.policies, &s.cluster, &s.externals);
    println!("compute: {:?}; {}", t.elapsed(), memory());
    println!("stats: {}", r.stats());
    if full_matrix {
        let t = Instant::now();
        let rows = r.rows();
        let mut row = rows.empty_row();
        let mut cells = 0u64;
        for src in 0..r.class_count() as u32 {
            rows.fill(src, &mut row);
            cells += row.count();
        }
        let total = (r.class_count() as u64).pow(2) * r.atom_count() as u64;
        println!(
            "full matrix: {:?} ({cells} of {total} class×class×atom cells allowed); {}",
            t.elapsed(),
            memory()
        );
    }
    // One flow: web in the first namespace to the api next to it.
    let src = Endpoint::Pod(3);
    let dst = Endpoint::Pod(s.cluster.pods.len() / 2);
    let conn = Connection::new(src, dst, 8080, Protocol::Tcp);
    let t = Instant::now();
    let fast = r.allowed(&src, &dst, 8080, Protocol::Tcp);
    let allowed_time = t.elapsed();
    let t = Instant::now();
    let explained = r.explain(&s.policies, &s.cluster, &conn);
    let explain_time = t.elapsed();
    let t = Instant::now();
    let reference = evaluate::evaluate(&s.policies, &s.cluster, &conn);
    let evaluate_time = t.elapsed();
    assert_eq!(explained, reference);
    assert_eq!(fast, reference.allowed);
    println!("one flow, first call ({reference}): allowed {allowed_time:?}, explain {explain_time:?}, evaluate {evaluate_time:?}");
    let n = 1000;
    let t = Instant::now();
    for i in 0..n {
        let src = Endpoint::Pod(i * 97 % s.cluster.pods.len());
        let dst = Endpoint::Pod(i * 7919 % s.cluster.pods.len());
        std::hint::black_box(r.explain(&s.policies, &s.cluster, &Connection::new(src, dst, 8080, Protocol::Tcp)));
    }
    println!("explain, mean of {n} flows: {:?}", t.elapsed() / n as u32);
}

#[test]
#[ignore = "scale run: release mode, seconds"]
fn scale_2k_pods_500_policies() {
    run(40, 2_000, 500, true);
}

#[test]
#[ignore = "scale run: release mode, seconds"]
fn scale_20k_pods_5k_policies() {
    run(400, 20_000, 5_000, true);
}

#[test]
#[ignore = "scale run: release mode, seconds"]
fn scale_100k_pods_75k_policies() {
    run(25_000, 100_000, 75_000, false);
}

#[test]
#[ignore = "scale run: release mode, seconds"]
fn scale_100k_full_matrix() {
    run(25_000, 100_000, 75_000, true);
}

#[test]
#[ignore = "scale run: release mode, seconds"]
fn scale_diff_20k_pods_5k_policies() {
    let s = synth::generate(&synth::Shape {
        namespaces: 400,
        pods: 20_000,
        policies: 5_000,
        seed: 1,
    });
    let changed = synth::mutate(&s.policies, 2, 10);
    let t = Instant::now();
    let versions = Reachability::compute_versions(&[&s.policies, &changed], &s.cluster, &s.externals);
    let computed = t.elapsed();
    let t = Instant::now();
    let changes = versions[0].diff(&versions[1]).expect("one universe");
    let diffed = t.elapsed();
    let pods: usize = changes
        .iter()
        .map(|c| versions[0].class_pods(c.src).len().max(1) * versions[0].class_pods(c.dst).len().max(1))
        .sum();
    println!(
        "diff: {} → {} policies; both computed in {computed:?}, compared in {diffed:?}: {} changed class pairs (~{pods} endpoint pairs); {}",
        s.policies.len(),
        changed.len(),
        changes.len(),
        memory()
    );
    println!("stats: {}", versions[0].stats());
}
