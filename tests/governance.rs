//! The rules of netpolc.toml on good and bad inputs: what each one accepts,
//! what it refuses, and that settings change the output as documented.

use netpolc::governance::Date;
use netpolc::{Compilation, Sources};

/// Compiles `text` as `shop.np` under the project file `toml`, on 2026-03-01.
/// The lints (W01xx, tested in src/lint.rs) are silenced: these tests are about the rules.
fn compile(toml: &str, text: &str) -> Compilation {
    let mut config = netpolc::project::read("netpolc.toml", toml);
    config.today = Date::parse("2026-03-01");
    let lints = netpolc::diagnostics::Code::ALL.iter().filter(|c| c.as_str().starts_with("W01"));
    config.silenced.extend(lints);
    let mut sources = Sources::new();
    sources.add("shop.np", text);
    netpolc::compile(sources, Vec::new(), &config)
}

/// The codes of the diagnostics, in order.
fn codes(out: &Compilation) -> Vec<&'static str> {
    out.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

/// The source text under each diagnostic's primary label.
fn places(out: &Compilation) -> Vec<String> {
    out.diagnostics.iter().map(|d| out.sources.slice(d.span()).to_string()).collect()
}

const CONSENT: &str = "[consent]\ncross_namespace = true\n";

#[test]
fn consent_needs_an_expose_that_covers_pods_ports_and_caller() {
    let intent = "namespace frontend\nallow dns\nweb -> backend/api:8080\n\nnamespace backend\n";
    let covered = [
        "expose api:8080 to frontend/web",
        "expose api to frontend/web",
        "expose api:(80, 8000-9000) to frontend/web",
        "expose *:8080 to frontend/web",
        "expose api:8080 to frontend/*",
        "expose api:8080 to cluster",
        "expose api:8080 to monitoring/x, frontend/web",
    ];
    for expose in covered {
        let out = compile(CONSENT, &format!("{intent}{expose}\n"));
        assert!(out.diagnostics.is_empty(), "{expose}:\n{}", out.render_diagnostics());
    }
    let uncovered = [
        "expose api:8081 to frontend/web",
        "expose api:8080/udp to frontend/web",
        "expose db:8080 to frontend/web",
        "expose [tier=api]:8080 to frontend/web",
        "expose api:8080 to frontend/other",
        "expose api:8080 to payments/*",
        "expose api:8080 to {team=web}/*",
    ];
    for expose in uncovered {
        let out = compile(CONSENT, &format!("{intent}{expose}\n"));
        assert_eq!(codes(&out), ["E0611"], "{expose}:\n{}", out.render_diagnostics());
        assert_eq!(places(&out), ["backend/api:8080"]);
        assert!(out.policies.is_empty());
    }
    // An intent without ports needs an expose without ports.
    let out = compile(
        CONSENT,
        "namespace frontend\nallow dns\nweb -> backend/api\nnamespace backend\nexpose api:8080 to frontend/web\n",
    );
    assert_eq!(codes(&out), ["E0611"], "{}", out.render_diagnostics());
}

#[test]
fn consent_covers_cluster_targets_namespace_by_namespace_and_ip_callers_by_block() {
    let text = "namespace ops\nallow dns\nchecker -> cluster:8080\nnamespace a\nexpose *:8080 to ops/checker\nnamespace b\n";
    let out = compile(CONSENT, text);
    assert_eq!(codes(&out), ["E0611"], "{}", out.render_diagnostics());
    assert!(out.diagnostics[0].message.contains("namespace `b`"), "{}", out.render_diagnostics());

    let world = "namespace edge\nallow dns\nworld -> shop/web:443\nnamespace shop\n";
    let out = compile(CONSENT, &format!("{world}expose web:443 to world\n"));
    assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
    let out = compile(CONSENT, &format!("{world}expose web:443 to internet\n"));
    assert_eq!(
        codes(&out),
        ["E0611"],
        "internet leaves out private blocks:\n{}",
        out.render_diagnostics()
    );
    let cidr = "namespace edge\nallow dns\n10.1.2.0/24 -> shop/web:443\nnamespace shop\n";
    let out = compile(CONSENT, &format!("{cidr}expose web:443 to 10.0.0.0/8\n"));
    assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
    let out = compile(CONSENT, &format!("{cidr}expose web:443 to internet\n"));
    assert_eq!(codes(&out), ["E0611"], "{}", out.render_diagnostics());
}

#[test]
fn consent_refuses_intents_that_open_another_namespaces_egress() {
    let out = compile(
        CONSENT,
        "namespace backend\nexpose api:9090 to monitoring/prometheus\nmonitoring/prometheus -> api:9090\nnamespace monitoring\nallow dns\n",
    );
    assert_eq!(codes(&out), ["E0612"], "{}", out.render_diagnostics());
    assert_eq!(places(&out), ["monitoring/prometheus"]);
    // Written by the caller's own namespace, with the callee's consent, it compiles.
    let out = compile(
        CONSENT,
        "namespace backend\nexpose api:9090 to monitoring/prometheus\nnamespace monitoring\nallow dns\nprometheus -> backend/api:9090\n",
    );
    assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
    // `cluster` as a source writes egress into every declared namespace.
    let out = compile(CONSENT, "namespace a\nallow dns\nnamespace b\ncluster -> api:80\n");
    assert_eq!(codes(&out), ["E0612"], "{}", out.render_diagnostics());
}

#[test]
fn without_consent_expose_is_checked_but_changes_nothing() {
    let text = "namespace frontend\nallow dns\nweb -> backend/api:8080\nnamespace backend\n";
    let plain = compile("", text);
    let exposed = compile(
        "",
        &format!("{text}expose api:8080 to frontend/web\nexpose *:9 to cluster, 10.0.0.0/8\n"),
    );
    assert!(
        plain.diagnostics.is_empty() && exposed.diagnostics.is_empty(),
        "{}",
        exposed.render_diagnostics()
    );
    assert_eq!(plain.yaml(), exposed.yaml());
    let bad = compile("", &format!("{text}expose frontend/web:80 to backend/api\nexpose api to dns\n"));
    assert_eq!(codes(&bad), ["E0613", "E0303"], "{}", bad.render_diagnostics());
}

#[test]
fn expose_is_a_keyword_and_to_is_not() {
    let out = compile("", "namespace shop\nallow dns\nexpose -> api:80\n");
    assert_eq!(codes(&out), ["E0102"], "{}", out.render_diagnostics());
    let out = compile(
        "",
        "namespace shop\nallow dns\nto -> api:80\nexpose api:80 to to\nexpose to:80 to api\n",
    );
    assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
    let out = compile("", "namespace shop\nexpose api:80 frontend/web\n");
    assert_eq!(codes(&out), ["E0001"], "{}", out.render_diagnostics());
    assert!(out.diagnostics[0].message.contains("`to`"), "{}", out.render_diagnostics());
}

#[test]
fn required_metadata_applies_to_intents_and_allow_dns() {
    let toml = "[metadata]\nrequired = [\"owner\", \"k8s.example.com/projectId\"]\n";
    let out = compile(toml, "namespace shop\nallow dns\n@owner a\nweb -> api:80, db:5432\n");
    assert_eq!(codes(&out), ["E0604", "E0604"], "{}", out.render_diagnostics());
    assert_eq!(places(&out), ["allow dns", "web -> api:80"]);
    assert!(out.diagnostics[0].message.contains("`@owner`, `@k8s.example.com/projectId`"));
    assert!(out.diagnostics[1].message.contains("has no `@k8s.example.com/projectId`"));
    let out = compile(
        toml,
        "meta owner = a\nmeta k8s.example.com/projectId = p\nnamespace shop\nallow dns\nweb -> api:80\n",
    );
    assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
}

#[test]
fn patterns_match_whole_values_and_are_reported_once_per_line() {
    let toml = "[metadata.patterns]\nticket = \"SEC-[0-9]+\"\n";
    let out = compile(
        toml,
        "meta ticket = SEC-1x\nnamespace shop\nallow dns\nweb -> api:80\n@ticket SEC-22\nweb -> db:80\n",
    );
    assert_eq!(codes(&out), ["E0605"], "{}", out.render_diagnostics());
    assert_eq!(places(&out), ["SEC-1x"]);
}

#[test]
fn expiry_counts_the_date_itself_as_valid() {
    let text = |date: &str| format!("namespace shop\nallow dns\n@expires {date}\nweb -> api:80\n");
    let warn = "[expiry]\nwarn_days = 3\n";
    for (date, expected) in [
        ("2026-02-28", vec!["E0607"]),
        ("2026-03-01", vec!["W0601"]),
        ("2026-03-04", vec!["W0601"]),
        ("2026-03-05", vec![]),
        ("2026-02-30", vec!["E0606"]),
    ] {
        let out = compile(warn, &text(date));
        assert_eq!(codes(&out), expected, "{date}:\n{}", out.render_diagnostics());
    }
    assert!(compile(warn, &text("2026-03-01")).diagnostics[0].message.contains("expires today"));
    // Without a date for today (the library default), dates are checked for their form only.
    let out = netpolc::compile_str("shop.np", &text("2000-01-01"));
    assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
    let out = netpolc::compile_str("shop.np", &text("2000-1-1"));
    assert_eq!(codes(&out), ["E0606"]);
}

#[test]
fn ip_blocks_stay_inside_the_allowed_ones_and_world_where_listed() {
    let toml = "[ip_blocks]\nallowed = [\"10.0.0.0/8\"]\nworld = [\"edge\"]\ninternet = [\"shop\"]\n";
    let ok = "namespace edge\nallow dns\nworld -> lb:443\nnamespace shop\nallow dns\nexternal db = 10.1.0.0/16 except 10.1.2.0/24\nweb -> db:5432, 10.9.9.0/24:80, internet:443\n";
    let out = compile(toml, ok);
    assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
    let bad = "namespace shop\nallow dns\nexternal partner = 192.0.2.0/24\nweb -> partner:443, world:443, 8.0.0.0/7:53/udp\nedge/lb -> internet:443\nnamespace edge\nallow dns\n";
    let out = compile(toml, bad);
    assert_eq!(codes(&out), ["E0608", "E0608", "E0608", "E0608"], "{}", out.render_diagnostics());
    assert_eq!(places(&out), ["partner:443", "world:443", "8.0.0.0/7:53/udp", "internet:443"]);
    // DNS as an IP block is the project's own setting, never refused.
    let dns = "[dns]\ncidr = \"169.254.20.10/32\"\n[ip_blocks]\nallowed = []\n";
    let out = compile(dns, "namespace shop\nallow dns\n");
    assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
}

#[test]
fn forbidden_ports_and_range_caps_include_targets_without_ports() {
    let toml = "[ports]\nforbidden = [22, \"53/udp\"]\nmax_range = 10\n";
    let out = compile(
        toml,
        "namespace shop\nallow dns:5353/udp\nweb -> api:(20-30, 53, 80-89)\nweb -> db\nweb -> cache:http\n",
    );
    assert_eq!(codes(&out), ["E0609", "E0610", "E0609", "E0610"], "{}", out.render_diagnostics());
    assert_eq!(places(&out), ["20-30", "20-30", "db", "db"]);
    // The default DNS ports include 53/udp.
    let out = compile(toml, "namespace shop\nallow dns\n");
    assert_eq!(codes(&out), ["E0609"], "{}", out.render_diagnostics());
}

#[test]
fn settings_change_the_output() {
    let text = "namespace frontend\nweb -> backend/api:8080, allow dns\n";
    let out = compile(
        "workload_label = \"app.kubernetes.io/name\"\nannotation_prefix = \"policy.example.com\"\n[dns]\nnamespace = \"dns\"\npods = { app = \"coredns\" }\nports = [\"5353/udp\"]\n",
        text,
    );
    assert!(
        out.diagnostics.iter().all(|d| d.code.as_str() == "W0005"),
        "{}",
        out.render_diagnostics()
    );
    let yaml = out.yaml();
    assert!(yaml.contains("app.kubernetes.io/name: web"), "{yaml}");
    assert!(yaml.contains("policy.example.com/source: shop.np:2"), "{yaml}");
    assert!(
        yaml.contains("kubernetes.io/metadata.name: dns") && yaml.contains("app: coredns") && yaml.contains("port: 5353"),
        "{yaml}"
    );
    assert!(!yaml.contains("netpolc.io/"), "{yaml}");

    // Only declared namespaces: `backend` gets nothing and nobody warns about it.
    let all = compile("", text);
    let declared = compile("[output]\nnamespaces = \"declared\"\n", text);
    assert_eq!(codes(&all), ["W0005"]);
    assert!(declared.diagnostics.is_empty(), "{}", declared.render_diagnostics());
    let namespaces = |out: &Compilation| {
        let mut n: Vec<String> = out.policies.iter().filter_map(|p| p.metadata.namespace.clone()).collect();
        n.dedup();
        n
    };
    assert_eq!(namespaces(&all), ["backend", "frontend"]);
    assert_eq!(namespaces(&declared), ["frontend"]);
    assert!(declared.yaml().contains("name: web-to-backend.api"));
}

#[test]
fn a_broken_project_file_stops_before_the_intents() {
    let out = compile("[ports]\nmax_range = \"many\"\n", "namespace shop\nweb -> api:80\n");
    assert_eq!(
        codes(&out),
        ["E0603"],
        "only the project file's problem:\n{}",
        out.render_diagnostics()
    );
    let rendered = out.render_diagnostics();
    assert!(rendered.contains("netpolc.toml:2:13"), "{rendered}");
    assert!(out.policies.is_empty());
}

#[test]
fn sources_with_the_project_file_compile_again() {
    // `explain` compiles the sources of a compilation again, project file included.
    let toml = "[metadata]\nrequired = [\"owner\"]\n";
    let first = compile(toml, "namespace shop\n@owner a\nallow dns\n");
    assert!(first.diagnostics.is_empty(), "{}", first.render_diagnostics());
    assert_eq!(first.sources.files().len(), 2);
    let mut config = netpolc::project::read("netpolc.toml", toml);
    config.today = Date::parse("2026-03-01");
    let again = netpolc::compile(first.sources.clone(), Vec::new(), &config);
    assert!(again.diagnostics.is_empty(), "{}", again.render_diagnostics());
    assert_eq!(again.sources.files().len(), 2, "the project file is added once");
    assert_eq!(again.yaml(), first.yaml());
}
