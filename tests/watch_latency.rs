//! How long `netpolc watch` takes from a save to the rewritten output on the
//! 20,000-intent fleet. Ignored by default (it takes about a minute):
//!
//! ```sh
//! cargo test --release --test watch_latency -- --ignored --nocapture
//! ```
//!
//! `NETPOLC_BIN=PATH` measures another build of netpolc instead (to compare
//! two binaries in one sitting: the machine's load varies from hour to hour).
//! Each save writes the file in place (truncate, then write), as most
//! editors do; `NETPOLC_SAVE=rename` writes a temporary file and renames it
//! over the original instead, as Vim, Emacs and JetBrains IDEs do.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The binary measured: this build's, unless `NETPOLC_BIN` names another.
fn binary() -> String {
    std::env::var("NETPOLC_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_netpolc").to_string())
}
const RUNS: usize = 30;

fn probe(port: u32) -> String {
    format!("namespace zz-latency-probe\nallow dns\nweb -> api:{port}\n")
}

#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn save_to_output_latency_on_the_target_fleet() {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir: PathBuf = std::env::temp_dir().join(format!("netpolc-watch-latency-{}-{nanos}", std::process::id()));
    let pol = dir.join("pol");
    std::fs::create_dir_all(&pol).expect("create pol");
    for (name, text) in netpolc::fleet::generate(&netpolc::fleet::FleetSpec::TARGET) {
        let path = pol.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(path, text).expect("write fleet file");
    }
    let probe_file = pol.join("zz-latency-probe.np");
    std::fs::write(&probe_file, probe(10_000)).expect("write probe");

    let mut child = Command::new(binary())
        .args(["--color", "never", "watch", "pol", "-o", "out"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watch");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lines").push(line);
        }
    });
    let oks = || lines.lock().expect("lines").iter().filter(|l| l.starts_with("ok: ")).count();
    let wait_oks = |n: usize| {
        let started = Instant::now();
        while oks() < n {
            assert!(started.elapsed() < Duration::from_secs(120), "{:?}", lines.lock().expect("lines"));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_oks(1);
    let output = dir.join("out").join("zz-latency-probe.yaml");

    let by_rename = std::env::var("NETPOLC_SAVE").is_ok_and(|v| v == "rename");
    let mut latencies = Vec::new();
    for i in 1..=RUNS {
        std::thread::sleep(Duration::from_millis(300));
        let port = 10_000 + i as u32;
        let wanted = format!("port: {port}\n");
        let saved = Instant::now();
        if by_rename {
            let scratch = pol.join(".zz-latency-probe.np.tmp");
            std::fs::write(&scratch, probe(port)).expect("save the temporary file");
            std::fs::rename(&scratch, &probe_file).expect("rename it over the probe");
        } else {
            std::fs::write(&probe_file, probe(port)).expect("save");
        }
        loop {
            if std::fs::read_to_string(&output).is_ok_and(|t| t.contains(&wanted)) {
                break;
            }
            assert!(saved.elapsed() < Duration::from_secs(60), "no output for port {port}");
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(saved.elapsed());
        wait_oks(i + 1);
    }
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().expect("wait");
    let log = lines.lock().expect("lines").clone();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(0));

    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
    let runs: Vec<&String> = log.iter().filter(|l| l.starts_with("ok: ")).skip(1).collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "save-to-output latency over {RUNS} saves ({}): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms, min {:.0} ms",
        if by_rename { "temporary file renamed" } else { "written in place" },
        ms(at(0.50)),
        ms(at(0.95)),
        ms(latencies[latencies.len() - 1]),
        ms(latencies[0])
    );
    println!("load average before exit: {}", load.trim());
    if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
        println!("status lines, first and last: {first} | {last}");
    }
}

/// What one watch run costs, stage by stage, once the cache is warm: the
/// fleet compiled in memory as watch compiles it, then one file edited
/// and compiled again, `RUNS` times. Ignored by default:
///
/// ```sh
/// cargo test --release --test watch_latency -- --ignored --nocapture incremental
/// ```
#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn incremental_run_stages_on_the_target_fleet() {
    let files = netpolc::fleet::generate(&netpolc::fleet::FleetSpec::TARGET);
    let config = netpolc::Config::default();
    let options = netpolc::Options {
        verification: netpolc::Verification::Expectations,
        output: netpolc::Output::Documents(netpolc::emit::Format::Yaml),
    };
    let mut cache = netpolc::Cache::default();
    let mut kept = netpolc::diagnostics::Kept::default();
    let mut stages: Vec<(&'static str, Vec<f64>)> = Vec::new();
    let mut policies = 0;
    // NETPOLC_RUNS=N for fewer runs (under callgrind).
    let runs = std::env::var("NETPOLC_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(RUNS);
    for run in 0..=runs {
        let mut sources = netpolc::Sources::new();
        for (name, text) in &files {
            sources.add(name.as_str(), text.as_str());
        }
        sources.add("zz-latency-probe.np", probe(10_000 + run as u32));
        let started = Instant::now();
        let c = netpolc::compile_with(sources, Vec::new(), &config, Some(&mut cache), options);
        let compiled = Instant::now();
        let mut text = Vec::new();
        netpolc::diagnostics::write_keeping(&c.diagnostics, &c.sources, false, &mut kept, &mut text).expect("write to a vector");
        let reported = compiled.elapsed();
        assert!(!c.has_errors());
        policies = c.documents.len();
        if run == 0 {
            continue; // the cold run
        }
        let mut times: Vec<(&'static str, Duration)> = c.timings.stages.clone();
        times.push(("report", reported));
        times.push(("total", started.elapsed()));
        for (stage, d) in times {
            let ms = d.as_secs_f64() * 1000.0;
            match stages.iter_mut().find(|(s, _)| *s == stage) {
                Some((_, all)) => all.push(ms),
                None => stages.push((stage, vec![ms])),
            }
        }
    }
    println!("{policies} policies; median of {runs} warm runs, ms:");
    for (stage, mut all) in stages {
        all.sort_by(f64::total_cmp);
        println!("{stage:>9}: {:7.2}", all[all.len() / 2]);
    }
}
