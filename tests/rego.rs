//! `--rego`: the example rules of `examples/rego` (Gatekeeper style, Rego v0)
//! and `examples/rego-v1` (the same rules in Rego v1, one of them conftest
//! style) on good and bad intents; the input shapes, parameters, the mapping
//! to intents, and broken rule folders.

use netpolc::diagnostics::Code;
use netpolc::{Compilation, Config, rego};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::TempDir;

const FOLDERS: [&str; 2] = ["examples/rego", "examples/rego-v1"];

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

fn checked_file(path: &str, rules: &Path) -> Compilation {
    let (sources, early) = netpolc::source::load(&[PathBuf::from(path)]).expect("readable");
    let mut out = netpolc::compile(sources, early, &Config::default());
    rego::apply(rules, &mut out).expect("the rules load");
    out
}

fn checked(text: &str, rules: &Path) -> Compilation {
    let mut out = netpolc::compile_str("t.np", text);
    assert!(!out.has_errors(), "{}", out.render_diagnostics());
    rego::apply(rules, &mut out).expect("the rules load");
    out
}

/// A fresh folder holding `files`, removed when dropped.
fn rule_folder(name: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new(&format!("rego-{name}"));
    for (file, text) in files {
        dir.write(file, text);
    }
    dir
}

/// The packages whose rules fired, from the notes of the E0701 diagnostics.
fn fired(out: &Compilation) -> BTreeSet<String> {
    out.diagnostics
        .iter()
        .filter(|d| d.code == Code::RegoViolation)
        .flat_map(|d| d.notes.iter())
        .filter_map(|n| n.split("of package `").nth(1)?.split('`').next().map(str::to_string))
        .collect()
}

#[test]
fn good_intents_pass_every_example_rule() {
    for folder in FOLDERS {
        let out = checked_file("examples/rego/good.np", Path::new(folder));
        assert!(out.diagnostics.is_empty(), "{folder}:\n{}", out.render_diagnostics());
        assert!(!out.policies.is_empty());
    }
}

#[test]
fn bad_intents_break_each_rule_in_both_syntaxes_alike() {
    let v0 = checked_file("examples/rego/bad.np", Path::new("examples/rego"));
    assert!(v0.policies.is_empty(), "a violation suppresses output");
    let rendered = v0.render_diagnostics();
    settings().bind(|| insta::assert_snapshot!("rego-bad", rendered));
    assert_eq!(
        fired(&v0),
        ["netpolc.cidrwidth", "netpolc.nossh", "netpolc.owner"].map(String::from).into()
    );
    // The v1 folder holds the same rules (owner.rego as a conftest `deny`):
    // the same violations, at the same places, with the same messages.
    let v1 = checked_file("examples/rego/bad.np", Path::new("examples/rego-v1"));
    let key = |out: &Compilation| -> Vec<_> { out.diagnostics.iter().map(|d| (d.code, d.span(), d.message.clone())).collect() };
    assert_eq!(key(&v0), key(&v1));
    assert!(v1.diagnostics.iter().any(|d| d.notes.iter().any(|n| n.contains("rule `deny`"))));
}

#[test]
fn each_rule_fires_on_what_it_forbids_and_only_that() {
    let owned = "meta owner = team-a\nnamespace a\n";
    let cases: &[(&str, &[&str])] = &[
        ("web -> api:8080", &[]),
        ("web -> 10.1.0.0/16:443", &[]),
        ("web -> 10.0.0.0/15:443", &["netpolc.cidrwidth"]),
        ("web -> world:443", &["netpolc.cidrwidth"]),
        ("10.0.0.0/8 -> api:443", &["netpolc.cidrwidth"]),
        ("web -> api:22", &["netpolc.nossh"]),
        ("web -> api:22/udp", &["netpolc.nossh"]),
        ("web -> api:(80, 22)", &["netpolc.nossh"]),
        ("web -> api:20-25", &["netpolc.nossh"]),
        ("web -> api:23-30", &[]),
        ("web -> api:2222", &[]),
        ("web -> 10.0.0.0/8:22", &["netpolc.cidrwidth", "netpolc.nossh"]),
    ];
    for folder in FOLDERS {
        for (intent, expected) in cases {
            let out = checked(&format!("{owned}{intent}\n"), Path::new(folder));
            let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
            assert_eq!(fired(&out), expected, "{folder}: `{intent}`\n{}", out.render_diagnostics());
        }
        let unowned = checked("namespace a\nweb -> api:8080\n@owner team-a\nweb -> db:5432\n", Path::new(folder));
        let owner: Vec<_> = unowned.diagnostics.iter().filter(|d| d.code == Code::RegoViolation).collect();
        // Both halves of the first intent; not the owned one, not `default-deny`.
        assert_eq!(owner.len(), 2, "{folder}:\n{}", unowned.render_diagnostics());
        assert!(owner.iter().all(|d| d.span().start == "namespace a\nweb -> ".len()));
    }
}

#[test]
fn parameters_come_from_the_folder() {
    let rule = std::fs::read_to_string("examples/rego/cidr-width.rego").expect("rule");
    let intent = "meta owner = a\nnamespace a\nweb -> 10.0.0.0/12:443\n";
    let default = rule_folder("param-default", &[("cidr.rego", &rule)]);
    assert_eq!(fired(&checked(intent, &default)).len(), 1);
    let wide = rule_folder(
        "param-wide",
        &[
            ("cidr.rego", &rule),
            ("parameters.yaml", "netpolc.cidrwidth: {minPrefixLength: 8}\n"),
        ],
    );
    assert!(fired(&checked(intent, &wide)).is_empty());
    let typo = rule_folder(
        "param-typo",
        &[("cidr.rego", &rule), ("parameters.yaml", "netpolc.cidr: {minPrefixLength: 8}\n")],
    );
    let mut out = netpolc::compile_str("t.np", intent);
    let error = rego::apply(&typo, &mut out).expect_err("an unknown package is refused");
    assert!(error.0.contains("`netpolc.cidr`"), "{error}");
}

#[test]
fn gatekeeper_rules_get_the_review_and_conftest_rules_the_object() {
    let rules = rule_folder(
        "input",
        &[
            (
                "gatekeeper.rego",
                r#"package gk
violation[{"msg": msg}] {
	r := input.review
	msg := sprintf("%v %v/%v %v %v %v", [r.operation, r.kind.group, r.kind.version, r.kind.kind, r.namespace, r.name])
	r.object.metadata.name == r.name
	input.parameters.team == "a"
}
"#,
            ),
            (
                "conftest.rego",
                "package ct\nimport rego.v1\ndeny contains sprintf(\"%v %v %v\", [input.apiVersion, input.kind, input.metadata.name]) if not input.review\n",
            ),
            ("parameters.yaml", "gk:\n  team: a\n"),
        ],
    );
    let out = checked("namespace a\n", &rules);
    let messages: Vec<&str> = out.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "CREATE networking.k8s.io/v1 NetworkPolicy a default-deny",
            "networking.k8s.io/v1 NetworkPolicy default-deny"
        ]
    );
}

#[test]
fn default_deny_is_reported_at_the_namespace_declaration() {
    let rules = rule_folder(
        "deny-all",
        &[(
            "r.rego",
            "package r\nviolation contains {\"msg\": \"no default-deny here\"} if input.review.name == \"default-deny\"\n",
        )],
    );
    let text = "# team a\nnamespace a\nweb -> api:80, allow dns\n";
    let out = checked(text, &rules);
    assert_eq!(out.diagnostics.len(), 1, "{}", out.render_diagnostics());
    let span = out.diagnostics[0].span();
    assert_eq!(&text[span.start..span.end], "namespace a");
}

#[test]
fn a_policy_made_of_several_intents_names_them_all() {
    let rules = rule_folder(
        "merged",
        &[(
            "r.rego",
            "package r\nviolation contains {\"msg\": \"no\"} if input.review.name == \"web-to-api\"\n",
        )],
    );
    let text = "namespace a\nallow dns\nweb -> api:80\nweb -> api:443\n";
    let out = checked(text, &rules);
    assert_eq!(out.diagnostics.len(), 1, "{}", out.render_diagnostics());
    let labels: Vec<&str> = out.diagnostics[0].labels.iter().map(|l| &text[l.span.start..l.span.end]).collect();
    assert_eq!(labels, ["api:80", "api:443"]);
}

#[test]
fn broken_rules_are_diagnostics_and_broken_folders_usage_errors() {
    let rules = rule_folder(
        "broken",
        &[
            (
                "v0.rego",
                "package a\n\nviolation[{\"msg\": msg}] {\n\tname := input.review.name\n\tmsg := sprintf(\"%v\", [name]\n}\n",
            ),
            ("v1.rego", "package b\n\ndeny contains msg if {\n\tmsg := \"x\" +\n}\n"),
        ],
    );
    let out = checked("namespace a\n", &rules);
    assert!(out.policies.is_empty());
    let places: Vec<(Code, String, usize, &str)> = out
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.code,
                out.sources.name(d.span().file).to_string(),
                out.sources.line_of(d.span()),
                d.message.as_str(),
            )
        })
        .collect();
    // Each at the line where the syntax the file is written in fails.
    assert_eq!(
        places,
        [
            (
                Code::RegoInvalid,
                "v0.rego".into(),
                6,
                "Rego policy is not valid: expecting `)` while parsing call expr"
            ),
            (
                Code::RegoInvalid,
                "v1.rego".into(),
                4,
                "Rego policy is not valid: expecting `}` while parsing set"
            )
        ]
    );

    let missing = Path::new("examples/rego/no-such-folder");
    let helpers = rule_folder("helpers", &[("h.rego", "package h\nx := 1\n")]);
    let empty = rule_folder("empty", &[]);
    for dir in [missing, helpers.path(), empty.path()] {
        let mut out = netpolc::compile_str("t.np", "namespace a\n");
        assert!(rego::apply(dir, &mut out).is_err(), "{}", dir.display());
    }
}

#[test]
fn the_command_line_checks_and_refuses_to_build() {
    let bin = env!("CARGO_BIN_EXE_netpolc");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run")
    };
    let ok = run(&["check", "examples/rego/good.np", "--rego", "examples/rego"]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let bad = run(&["check", "examples/rego/bad.np", "--rego", "examples/rego-v1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error[E0701]"));
    let build = run(&["build", "examples/rego/bad.np", "--rego", "examples/rego"]);
    assert_eq!(build.status.code(), Some(1));
    assert!(build.stdout.is_empty(), "nothing is written when a rule fails");
    let usage = run(&["check", "examples/rego/good.np", "--rego", "examples/rego/good.np"]);
    assert_eq!(usage.status.code(), Some(2));
}
