//! Every example compiles cleanly, its YAML is snapshotted, every emitted
//! object passes Kubernetes validation and round-trips through the real API
//! types, and its flow table holds when the emitted YAML is evaluated.
//! Every error example's rendered diagnostics are snapshotted.

use k8s_openapi::api::networking::v1::NetworkPolicy;
use netpolc::{Config, Severity, Sources, emit, flowtable, validate};
use std::path::{Path, PathBuf};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

fn compile_file(path: &Path) -> netpolc::Compilation {
    let (sources, early) = netpolc::source::load(&[path.to_path_buf()]).expect("example is readable");
    netpolc::compile(sources, early, &Config::default())
}

/// The day the governed examples are compiled on, so that `@expires` examples never rot.
const TODAY: &str = "2026-03-01";

/// Compiles a file or folder of `examples/governance/` with the project file found above it.
fn compile_governed(path: &Path) -> netpolc::Compilation {
    let (sources, early) = netpolc::source::load(&[path.to_path_buf()]).expect("example is readable");
    let file = netpolc::project::discover(&[path.to_path_buf()])
        .expect("one project")
        .expect("a netpolc.toml above it");
    let mut config = netpolc::project::load(&file).expect("readable netpolc.toml");
    config.today = netpolc::governance::Date::parse(TODAY);
    netpolc::compile(sources, early, &config)
}

/// Whether a file or folder name starts with a diagnostic code (`E0601-...`).
fn is_error_example(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let code = name.split('-').next().unwrap_or("");
    code.len() == 5 && code.starts_with(['E', 'W']) && code[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The governed examples: `.np` files, and folders with a project file of their own.
fn governed() -> Vec<PathBuf> {
    let dir = "examples/governance";
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples/governance")
        .map(|e| Path::new(dir).join(e.expect("entry").file_name()))
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "np"))
        .collect();
    entries.sort();
    entries
}

fn examples(dir: &str) -> Vec<PathBuf> {
    // Relative paths (cargo runs tests in the package root) keep snapshots machine-independent.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples folder")
        .map(|e| Path::new(dir).join(e.expect("entry").file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == "np"))
        .collect();
    files.sort();
    files
}

/// Parses a YAML stream back into the real API types.
fn parse_stream(yaml: &str) -> Vec<NetworkPolicy> {
    yaml.split("---\n")
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            serde_saphyr::from_str::<NetworkPolicy>(doc)
                .unwrap_or_else(|e| panic!("emitted YAML does not parse as a NetworkPolicy: {e}\n{doc}"))
        })
        .collect()
}

#[test]
fn examples_compile_validate_and_mean_what_they_say() {
    let files = examples("examples");
    assert!(files.len() >= 12, "expected the example set, found {}", files.len());
    for path in files {
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name").to_string();
        good_example(&path, &name, compile_file(&path));
    }
}

#[test]
fn governed_examples_compile_validate_and_mean_what_they_say() {
    let files: Vec<PathBuf> = governed().into_iter().filter(|p| !p.is_dir() && !is_error_example(p)).collect();
    assert!(!files.is_empty(), "expected a good example in examples/governance");
    for path in files {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let out = compile_governed(&path);
        assert!(
            out.diagnostics.is_empty(),
            "{stem}: a governed example follows every rule\n{}",
            out.render_diagnostics()
        );
        good_example(&path, &format!("governance-{stem}"), out);
    }
}

/// The checks of a good example: clean, snapshotted, valid, round-tripping, and its flow table holds.
fn good_example(path: &Path, name: &str, out: netpolc::Compilation) {
    let errors: Vec<_> = out.diagnostics.iter().filter(|d| d.severity() == Severity::Error).collect();
    assert!(errors.is_empty(), "{name}: {}", out.render_diagnostics());
    let yaml = out.yaml();
    settings().bind(|| insta::assert_snapshot!(format!("example-{name}"), yaml));

    // The fast writer must agree byte for byte with serde-saphyr, the reference.
    let reference: String = out
        .policies
        .iter()
        .map(|p| format!("---\n{}", serde_saphyr::to_string(p).expect("saphyr serialises")))
        .collect();
    assert_eq!(yaml, reference, "{name}: YAML writer differs from serde-saphyr");

    // Round trip through the real API types: what we parse back is what we built.
    let parsed = parse_stream(&yaml);
    assert_eq!(parsed, out.policies, "{name}: YAML does not round-trip");
    let json = emit::json_list(&out.policies);
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    let items: Vec<NetworkPolicy> = serde_json::from_value(value["items"].clone()).expect("List items are NetworkPolicies");
    assert_eq!(items, out.policies, "{name}: JSON does not round-trip");

    for policy in &parsed {
        let violations = validate::validate_network_policy(policy);
        assert!(violations.is_empty(), "{name}: {:?} violates {violations:?}", policy.metadata.name);
    }

    let table_path = path.with_extension("flows");
    let table_text = std::fs::read_to_string(&table_path)
        .unwrap_or_else(|_| panic!("{name}: every example needs a flow table {}", table_path.display()));
    let table = flowtable::parse(&table_text).unwrap_or_else(|e| panic!("{name}.flows: {e}"));
    assert!(
        table.expectations.iter().any(|e| e.allowed) && table.expectations.iter().any(|e| !e.allowed),
        "{name}.flows: needs allowed and denied flows"
    );
    let failures = flowtable::check(&table, &parsed);
    assert!(failures.is_empty(), "{name}.flows:\n{}", failures.join("\n"));
}

#[test]
fn error_examples_render_their_diagnostics() {
    let plain = examples("examples/errors").into_iter().map(|p| (compile_file(&p), p));
    // Rules of netpolc.toml: compiled with the project file above them (folders bring their own).
    let governed = governed()
        .into_iter()
        .filter(|p| is_error_example(p))
        .map(|p| (compile_governed(&p), p));
    let mut codes_seen = std::collections::BTreeSet::new();
    for (out, path) in plain.chain(governed) {
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name").to_string();
        let code = name.split('-').next().unwrap_or_default().to_string();
        let mut out = out;
        if code.starts_with("E07") {
            // Rego codes need `--rego`: the folder named like the example, else the example rules.
            let own = path.with_extension("");
            let rules = if own.is_dir() { own } else { PathBuf::from("examples/rego") };
            netpolc::rego::apply(&rules, &mut out).expect("the Rego folder loads");
        }
        assert!(!out.diagnostics.is_empty(), "{name}: expected diagnostics");
        assert!(
            out.diagnostics.iter().any(|d| d.code.as_str() == code),
            "{name}: expected a {code} diagnostic, got:\n{}",
            out.render_diagnostics()
        );
        if out.diagnostics.iter().any(|d| d.severity() == Severity::Error) {
            assert!(out.policies.is_empty(), "{name}: errors must suppress output");
        }
        codes_seen.insert(code);
        let rendered = out.render_diagnostics();
        settings().bind(|| insta::assert_snapshot!(format!("error-{name}"), rendered));
    }
    // E0006 needs a file over 16 MiB: `file_too_large_is_refused` generates one instead.
    codes_seen.insert("E0006".to_string());
    // E0403 is a compiler bug: valid input must never produce it; src/verify.rs tests it on altered output.
    codes_seen.insert("E0403".to_string());
    let missing: Vec<&str> = netpolc::diagnostics::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !codes_seen.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes without an example in examples/errors: {missing:?}");
}

#[test]
fn output_is_independent_of_file_order() {
    let a = "namespace frontend\nweb -> backend/api:8080, allow dns\n";
    let b = "namespace backend\napi -> db:5432\n@owner data\ndb -> 10.0.0.0/24:443\n";
    let mut s1 = Sources::new();
    s1.add("a.np", a);
    s1.add("b.np", b);
    let mut s2 = Sources::new();
    s2.add("b.np", b);
    s2.add("a.np", a);
    let one = netpolc::compile(s1, Vec::new(), &Config::default());
    let two = netpolc::compile(s2, Vec::new(), &Config::default());
    assert!(!one.policies.is_empty());
    assert_eq!(one.yaml(), two.yaml());
}

#[test]
fn file_too_large_is_refused() {
    let dir = std::env::temp_dir().join(format!("netpolc-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("E0006-file-too-large.np");
    let line = "web -> api:80\n";
    let text = format!(
        "namespace frontend\n{}",
        line.repeat(netpolc::source::MAX_FILE_BYTES / line.len() + 1)
    );
    std::fs::write(&path, text).expect("write");
    let out = compile_file(&path);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.diagnostics.len(), 1, "{}", out.render_diagnostics());
    assert_eq!(out.diagnostics[0].code.as_str(), "E0006");
    assert!(out.policies.is_empty());
    let rendered = out.render_diagnostics().replace(&dir.display().to_string(), "$TMP");
    settings().bind(|| insta::assert_snapshot!("error-E0006-file-too-large", rendered));
}
