//! Generated fleets (`netpolc::fleet`): a medium one compiles cleanly, every
//! object it yields passes Kubernetes validation, and the output does not
//! depend on the order of the files. The ignored `write_fleet` writes the
//! benchmark-size fleet to a folder for the command line:
//!
//! ```sh
//! NETPOLC_FLEET_DIR=/tmp/fleet cargo test --release --test fleet -- --ignored
//! netpolc build /tmp/fleet > /dev/null
//! ```

use netpolc::fleet::{FleetSpec, generate};
use netpolc::ir::PeerName;
use netpolc::{Compilation, Config, Severity, Sources, validate};

fn compile(files: &[(String, String)]) -> Compilation {
    let mut sources = Sources::new();
    for (name, text) in files {
        sources.add(name.as_str(), text.as_str());
    }
    netpolc::compile(sources, Vec::new(), &Config::default())
}

#[test]
fn medium_fleet_compiles_validates_and_ignores_file_order() {
    let spec = FleetSpec::MEDIUM;
    let files = generate(&spec);
    let out = compile(&files);
    let errors = out.diagnostics.iter().filter(|d| d.severity() == Severity::Error).count();
    assert_eq!(errors, 0, "{}", out.render_diagnostics());
    let intents = out.program.flows.iter().filter(|f| *f.target.name() != PeerName::Dns).count();
    assert_eq!(intents, spec.intents);
    assert!(out.policies.len() > spec.intents / 2, "only {} policies", out.policies.len());

    for policy in &out.policies {
        let violations = validate::validate_network_policy(policy);
        assert!(
            violations.is_empty(),
            "{}/{}: {violations:?}",
            policy.metadata.namespace.as_deref().unwrap_or(""),
            policy.metadata.name.as_deref().unwrap_or("")
        );
    }

    let yaml = out.yaml();
    let mut reversed = files.clone();
    reversed.reverse();
    let again = compile(&reversed);
    assert_eq!(again.diagnostics.len(), out.diagnostics.len());
    assert!(again.yaml() == yaml, "the YAML depends on the order of the files");
}

/// Writes the benchmark-size fleet (20,000 intents) into `$NETPOLC_FLEET_DIR`,
/// replacing the `.np` files already there. `NETPOLC_FLEET_INTENTS=N` writes
/// a fleet of N intents instead, in the same proportions.
#[test]
#[ignore = "writes files; run with NETPOLC_FLEET_DIR=DIR ... -- --ignored"]
fn write_fleet() {
    let Some(dir) = std::env::var_os("NETPOLC_FLEET_DIR") else {
        panic!("set NETPOLC_FLEET_DIR to the folder to write the fleet into");
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create the fleet folder");
    for entry in std::fs::read_dir(&dir).expect("read the fleet folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "np") {
            std::fs::remove_file(&path).expect("remove an old .np file");
        }
    }
    let spec = match std::env::var("NETPOLC_FLEET_INTENTS").ok().and_then(|n| n.parse::<usize>().ok()) {
        Some(intents) => FleetSpec {
            namespaces: (intents / 100).max(3),
            workloads: (intents / 4).max(3),
            intents,
            ..FleetSpec::TARGET
        },
        None => FleetSpec::TARGET,
    };
    let files = generate(&spec);
    let mut bytes = 0;
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).expect("write a fleet file");
        bytes += text.len();
    }
    eprintln!("wrote {} files ({bytes} bytes) to {}", files.len(), dir.display());
}
