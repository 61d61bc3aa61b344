//! Compiling a large fleet: the target of 20,000 intents over 5,000
//! workloads in 200 namespaces (`netpolc::fleet::FleetSpec::TARGET`), stage
//! by stage and as a whole. `cargo bench --bench compile` runs it in a few
//! minutes on two cores; see docs/performance.md for the figures.
//!
//! Groups:
//! * `fleet/parse`: every file to a syntax tree (throughput: input bytes);
//! * `fleet/stages`: `check`, `lower`, the model synthesised to verify the
//!   output (`model`), the verification against it (`verify`), and
//!   Kubernetes validation of every object (`validate`);
//! * `fleet/emit`: the YAML stream (`emit::yaml_stream`), the same through
//!   serde-saphyr (the reference the stream must equal), the documents
//!   `build` writes straight from the plan (`documents_from_plan`) against
//!   copying their bytes into as many fresh allocations (`copy_floor`: what
//!   memory speed allows), and the per-namespace folder files of `build -o`
//!   (throughput: YAML bytes);
//! * `fleet/total`: `compile()` (objects, full self-check) with and without
//!   the YAML stream, and `build`: the compilation `netpolc build` runs
//!   (documents, `expect` statements only) with its YAML written to memory
//!   (throughput: intents).
//!
//! Stage benchmarks return their output so that freeing it is not timed.
//!
//! The clock is the benchmark thread's CPU time (`/proc/thread-self/schedstat`),
//! not wall time: on a shared machine wall time mostly measures the other
//! processes. Stages that spread over every core (parse, lower, render,
//! parts of check and lint) do part of their work on other threads, which
//! this clock does not count: for them, and for `fleet/total`, use
//! `NETPOLC_BENCH_CLOCK=wall` (as does a system without that file) on a
//! quiet machine, or hyperfine on the command line (docs/performance.md).

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use netpolc::fleet::{FleetSpec, generate};
use netpolc::ir::PeerName;
use netpolc::{Config, Sources, check, emit, lower, model, parse, validate, verify};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The fleet and the result of each stage, computed once.
struct Fleet {
    sources: Sources,
    files: Vec<netpolc::ast::File>,
    program: netpolc::ir::Program,
    policies: Vec<k8s_openapi::api::networking::v1::NetworkPolicy>,
    input_bytes: u64,
    yaml_bytes: u64,
}

fn prepare(spec: &FleetSpec) -> Fleet {
    let config = Config::default();
    let generated = generate(spec);
    let mut sources = Sources::new();
    let mut input_bytes = 0;
    for (name, text) in &generated {
        input_bytes += text.len() as u64;
        sources.add(name.as_str(), text.as_str());
    }
    let files: Vec<_> = sources
        .files()
        .iter()
        .enumerate()
        .map(|(i, f)| parse::parse(i, &f.text).0)
        .collect();
    let (program, _) = check::check(&files, &sources, &config);
    let (policies, _) = lower::lower(&program, &sources, &config);

    // Once, outside the timings: what the fleet is and what it yields.
    let (cpu, wall) = (thread_cpu_ns().unwrap_or(0), Instant::now());
    let compilation = netpolc::compile(sources.clone(), Vec::new(), &config);
    let (compiled_cpu, compiled) = (thread_cpu_ns().unwrap_or(0) - cpu, wall.elapsed());
    let (cpu, wall) = (thread_cpu_ns().unwrap_or(0), Instant::now());
    let yaml = compilation.yaml();
    let (emitted_cpu, emitted) = (thread_cpu_ns().unwrap_or(0) - cpu, wall.elapsed());
    let errors = compilation.has_errors();
    let warnings = compilation.diagnostics.len();
    let intents = program.flows.iter().filter(|f| *f.target.name() != PeerName::Dns).count();
    let mb = |b: usize| b as f64 / 1e6;
    eprintln!(
        "fleet: {} namespaces, {} workloads, {intents} intents ({} flows) in {} files, {:.2} MB of .np",
        spec.namespaces,
        spec.workloads,
        program.flows.len(),
        generated.len(),
        mb(input_bytes as usize)
    );
    eprintln!(
        "output: {} policies, {:.2} MB of YAML ({} bytes); diagnostics: {} ({})",
        policies.len(),
        mb(yaml.len()),
        yaml.len(),
        warnings,
        if errors { "with errors" } else { "no errors" }
    );
    eprintln!(
        "one cold run, wall (CPU): compile {:.0} ms ({:.0} ms), YAML {:.0} ms ({:.0} ms)",
        compiled.as_secs_f64() * 1e3,
        compiled_cpu as f64 / 1e6,
        emitted.as_secs_f64() * 1e3,
        emitted_cpu as f64 / 1e6,
    );
    let reference: String = policies
        .iter()
        .map(|p| format!("---\n{}", serde_saphyr::to_string(p).unwrap_or_default()))
        .collect();
    eprintln!(
        "emit::yaml_stream is {} serde-saphyr's output",
        if reference == yaml {
            "byte-identical to"
        } else {
            "NOT the same as"
        }
    );
    let stages: Vec<String> = compilation
        .timings
        .stages
        .iter()
        .map(|(stage, d)| format!("{stage} {:.0}", d.as_secs_f64() * 1e3))
        .collect();
    eprintln!("its stages, wall ms: {}", stages.join(", "));
    assert!(!errors, "the generated fleet must compile:\n{}", compilation.render_diagnostics());
    Fleet {
        sources,
        files,
        program,
        policies,
        input_bytes,
        yaml_bytes: yaml.len() as u64,
    }
}

/// CPU time of the calling thread, in nanoseconds; `None` where the kernel does not say.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A criterion clock that counts only the time the benchmark thread ran.
struct ThreadCpu {
    wall: WallTime,
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns().unwrap_or(0)
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().unwrap_or(0).saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn main() {
    let wall = std::env::var("NETPOLC_BENCH_CLOCK").is_ok_and(|v| v == "wall") || thread_cpu_ns().is_none();
    if wall {
        eprintln!("clock: wall time");
        let mut c = Criterion::default().configure_from_args();
        fleet(&mut c);
        c.final_summary();
    } else {
        eprintln!("clock: CPU time of the benchmark thread (NETPOLC_BENCH_CLOCK=wall for wall time)");
        let mut c = Criterion::default()
            .with_measurement(ThreadCpu { wall: WallTime })
            .configure_from_args();
        fleet(&mut c);
        c.final_summary();
    }
}

fn group<'a, M: Measurement>(c: &'a mut Criterion<M>, name: &str, seconds: u64) -> BenchmarkGroup<'a, M> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds));
    g
}

fn fleet<M: Measurement>(c: &mut Criterion<M>) {
    let spec = FleetSpec::TARGET;
    let f = prepare(&spec);
    let config = Config::default();

    let mut g = group(c, "fleet/parse", 3);
    g.throughput(Throughput::Bytes(f.input_bytes));
    g.bench_function("parse", |b| {
        b.iter_batched(
            || (),
            |()| {
                f.sources
                    .files()
                    .iter()
                    .enumerate()
                    .map(|(i, file)| parse::parse(i, black_box(&file.text)))
                    .collect::<Vec<_>>()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = group(c, "fleet/stages", 3);
    g.bench_function("check", |b| {
        b.iter_batched(
            || (),
            |()| check::check(black_box(&f.files), &f.sources, &config),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("lower", |b| {
        b.iter_batched(
            || (),
            |()| lower::lower(black_box(&f.program), &f.sources, &config),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("model", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut model = model::synthesize(black_box(&f.program), &config);
                model.probe_policies(&f.policies);
                model
            },
            BatchSize::PerIteration,
        )
    });
    let mut model = model::synthesize(&f.program, &config);
    model.probe_policies(&f.policies);
    g.bench_function("verify", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mismatches = verify::verify(black_box(&f.program), &f.policies, &model);
                let mut diagnostics = verify::mismatch_diagnostics(&mismatches, &f.program, &model);
                diagnostics.extend(verify::check_expectations(&f.program, &f.policies, &model));
                (mismatches, diagnostics)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("validate", |b| {
        b.iter(|| {
            f.policies
                .iter()
                .map(|p| validate::validate_network_policy(black_box(p)).len())
                .sum::<usize>()
        })
    });
    g.finish();

    let mut g = group(c, "fleet/emit", 5);
    g.throughput(Throughput::Bytes(f.yaml_bytes));
    g.bench_function("yaml_stream", |b| {
        b.iter_batched(|| (), |()| emit::yaml_stream(black_box(&f.policies)), BatchSize::PerIteration)
    });
    // The reference the purpose-built writer must match byte for byte:
    // serde-saphyr, one document per policy, as `emit` did before.
    g.bench_function("saphyr_reference", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut out = String::with_capacity(f.yaml_bytes as usize);
                for policy in black_box(&f.policies) {
                    out.push_str("---\n");
                    out.push_str(&serde_saphyr::to_string(policy).unwrap_or_default());
                }
                out
            },
            BatchSize::PerIteration,
        )
    });
    // What `build` runs: each document's text straight from the plan.
    let plan = || lower::plan(&f.program, &f.sources, &config).0;
    g.bench_function("documents_from_plan", |b| {
        b.iter_batched(
            plan,
            |plan| netpolc::documents::render(black_box(&plan), None, emit::Format::Yaml),
            BatchSize::PerIteration,
        )
    });
    // The floor for `documents_from_plan`: the same bytes, each document
    // copied into an allocation of its own, spread over the cores the same way.
    let texts: Vec<Vec<u8>> = (netpolc::documents::render(&plan(), None, emit::Format::Yaml).iter())
        .map(|d| d.text().into_owned().into_bytes())
        .collect();
    g.bench_function("copy_floor", |b| {
        b.iter_batched(
            || (),
            |()| netpolc::parallel::map(black_box(&texts), |_, text| text.to_vec()),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("folder_files", |b| {
        b.iter_batched(
            || (),
            |()| emit::folder_files(black_box(&f.policies), emit::Format::Yaml),
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = group(c, "fleet/total", 5);
    g.throughput(Throughput::Elements(spec.intents as u64));
    g.bench_function("compile", |b| {
        b.iter_batched(
            || f.sources.clone(),
            |sources| netpolc::compile(sources, Vec::new(), &config),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("compile+yaml", |b| {
        b.iter_batched(
            || f.sources.clone(),
            |sources| {
                let compilation = netpolc::compile(sources, Vec::new(), &config);
                let yaml = compilation.yaml();
                (compilation, yaml)
            },
            BatchSize::PerIteration,
        )
    });
    let build = netpolc::Options {
        verification: netpolc::Verification::Expectations,
        output: netpolc::Output::Documents(emit::Format::Yaml),
    };
    g.bench_function("build", |b| {
        b.iter_batched(
            || f.sources.clone(),
            |sources| {
                let compilation = netpolc::compile_with(sources, Vec::new(), &config, None, build);
                let mut yaml = Vec::with_capacity(f.yaml_bytes as usize);
                // Writing into a Vec cannot fail.
                let _ = netpolc::documents::write(&compilation.documents, emit::Format::Yaml, &mut yaml);
                (compilation, yaml)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}
