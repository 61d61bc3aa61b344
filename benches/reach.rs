//! Benchmarks of the reachability engine on seeded synthetic clusters
//! (`netpolc::reach::synth`). Figures and how to read them:
//! `docs/performance-analysis.md`.
//!
//! ```sh
//! cargo bench --bench reach
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use netpolc::evaluate::{self, Connection, Endpoint, Protocol};
use netpolc::reach::{Reachability, synth};
use std::hint::black_box;
use std::time::Duration;

fn shape(namespaces: usize, pods: usize, policies: usize) -> synth::Synthetic {
    synth::generate(&synth::Shape {
        namespaces,
        pods,
        policies,
        seed: 1,
    })
}

/// Walks every row of the matrix and counts the allowed cells.
fn full_matrix(r: &Reachability) -> u64 {
    let rows = r.rows();
    let mut row = rows.empty_row();
    let mut cells = 0;
    for src in 0..r.class_count() as u32 {
        rows.fill(src, &mut row);
        cells += row.count();
    }
    cells
}

/// 2,000 pods in 40 namespaces, 500 policies.
fn small(c: &mut Criterion) {
    let s = shape(40, 2_000, 500);
    let mut g = c.benchmark_group("2k_pods_500_policies");
    g.sample_size(10);
    g.bench_function("compute", |b| {
        b.iter(|| Reachability::compute(black_box(&s.policies), black_box(&s.cluster), &s.externals))
    });
    g.bench_function("compute_and_full_matrix", |b| {
        b.iter(|| full_matrix(&Reachability::compute(black_box(&s.policies), black_box(&s.cluster), &s.externals)))
    });
    // The same 1,000 flows, answered by the engine and by the reference.
    let r = Reachability::compute(&s.policies, &s.cluster, &s.externals);
    let n = s.cluster.pods.len();
    let flows: Vec<Connection> = (0..1000)
        .map(|i| Connection::new(Endpoint::Pod(i * 97 % n), Endpoint::Pod(i * 7919 % n), 8080, Protocol::Tcp))
        .collect();
    g.bench_function("1000_flows_reach_allowed", |b| {
        b.iter(|| flows.iter().filter(|f| r.allows(black_box(f))).count())
    });
    g.bench_function("1000_flows_evaluate_is_allowed", |b| {
        b.iter(|| {
            flows
                .iter()
                .filter(|f| evaluate::is_allowed(&s.policies, &s.cluster, black_box(f)))
                .count()
        })
    });
    g.finish();
}

/// 100,000 pods in 25,000 namespaces, 75,000 policies.
fn large(c: &mut Criterion) {
    let s = shape(25_000, 100_000, 75_000);
    let mut g = c.benchmark_group("100k_pods_75k_policies");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("compute", |b| {
        b.iter(|| Reachability::compute(black_box(&s.policies), black_box(&s.cluster), &s.externals))
    });
    let r = Reachability::compute(&s.policies, &s.cluster, &s.externals);
    g.bench_function("full_matrix_rows", |b| b.iter(|| full_matrix(black_box(&r))));
    // One flow on the loaded model: a web pod of the first namespace to a
    // pod half-way through the cluster.
    let conn = Connection::new(Endpoint::Pod(3), Endpoint::Pod(s.cluster.pods.len() / 2), 8080, Protocol::Tcp);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("one_flow_allowed", |b| b.iter(|| r.allows(black_box(&conn))));
    g.bench_function("one_flow_explain", |b| {
        b.iter(|| r.explain(&s.policies, &s.cluster, black_box(&conn)))
    });
    g.bench_function("one_flow_evaluate_reference", |b| {
        b.iter(|| evaluate::evaluate(&s.policies, &s.cluster, black_box(&conn)))
    });
    g.finish();
}

/// Two versions of 20,000 pods in 400 namespaces with 5,000 policies (1%
/// of the policies changed, removed or joined by a new one).
fn diff(c: &mut Criterion) {
    let s = shape(400, 20_000, 5_000);
    let changed = synth::mutate(&s.policies, 2, 10);
    let mut g = c.benchmark_group("20k_pods_5k_policies");
    g.sample_size(10);
    g.bench_function("compute_both_and_diff", |b| {
        b.iter(|| {
            let versions = Reachability::compute_versions(&[black_box(&s.policies), black_box(&changed)], &s.cluster, &s.externals);
            versions[0].diff(&versions[1]).map(|changes| changes.len())
        })
    });
    let versions = Reachability::compute_versions(&[&s.policies, &changed], &s.cluster, &s.externals);
    g.bench_function("diff_only", |b| {
        b.iter(|| versions[0].diff(black_box(&versions[1])).map(|c| c.len()))
    });
    g.finish();
}

criterion_group!(benches, small, large, diff);
criterion_main!(benches);
