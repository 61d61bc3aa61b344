//! The analysis commands through the real binary: verify, explain, diff.

use std::process::Command;

fn netpolc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netpolc"))
        .args(args)
        .output()
        .expect("run netpolc");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_reports_what_it_proved() {
    let (code, out, err) = netpolc(&["verify", "examples/shop.np"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("verified: 25 policies allow exactly the 15 flows"), "{out}");
    assert!(out.contains("5 expectations hold"), "{out}");
    let (code, _, err) = netpolc(&["verify", "examples/errors/E0501-expectation-failed.np"]);
    assert_eq!(code, 1);
    assert!(err.contains("E0501"), "{err}");
}

#[test]
fn build_skips_the_self_check_but_not_the_expectations() {
    // Decision 0019: `build` checks the `expect` statements, not the whole model.
    let (code, out, err) = netpolc(&["build", "examples/errors/E0501-expectation-failed.np"]);
    assert_eq!(code, 1);
    assert!(err.contains("E0501"), "{err}");
    assert!(out.is_empty(), "{out}");
    let sources = |text: &str| {
        let mut sources = netpolc::Sources::new();
        sources.add("a.np", text);
        sources
    };
    let config = netpolc::Config::default();
    let text = "namespace a\nweb -> api:80\n";
    let full = netpolc::compile_with(sources(text), Vec::new(), &config, None, netpolc::Options::FULL);
    let options = netpolc::Options {
        verification: netpolc::Verification::Expectations,
        output: netpolc::Output::Documents(netpolc::emit::Format::Yaml),
    };
    let quick = netpolc::compile_with(sources(text), Vec::new(), &config, None, options);
    assert!(quick.policies.is_empty() && !quick.documents.is_empty());
    assert!(full.timings.stages.iter().any(|(stage, _)| *stage == "verify"));
    assert!(
        !quick
            .timings
            .stages
            .iter()
            .any(|(stage, _)| *stage == "verify" || *stage == "model")
    );
    assert_eq!(full.yaml(), quick.yaml());
}

#[test]
fn explain_allowed_and_denied() {
    let (code, out, err) = netpolc(&["explain", "frontend/web", "backend/catalog:8080", "examples/shop.np"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ALLOWED  frontend/web -> backend/catalog:8080/TCP"), "{out}");
    assert!(out.contains("from shop.np:12: web -> backend/catalog:8080"), "{out}");
    let (code, out, _) = netpolc(&["explain", "frontend/web", "payments/checkout:8443", "examples/shop.np"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("DENIED   frontend/web -> payments/checkout:8443/TCP  (by the egress and the ingress side)"),
        "{out}"
    );
    let (code, out, err) = netpolc(&[
        "explain",
        "frontend/storefront-7b9c6d5f4-abcde",
        "8.8.8.8:53/udp",
        "examples/shop.np",
        "--cluster",
        "tests/fixtures/cluster/shop.yaml",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("allows this port, but only to pods [k8s-app=kube-dns] of namespace kube-system"),
        "{out}"
    );
    let (code, _, err) = netpolc(&["explain", "frontend/[", "backend/api:80", "examples/shop.np"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("E0001"), "{err}");
}

#[test]
fn diff_shows_changes_in_every_format_and_nothing_for_a_rename() {
    let dir = std::env::temp_dir().join(format!("netpolc-analysis-{}", std::process::id()));
    let (old, new, renamed) = (dir.join("old"), dir.join("new"), dir.join("renamed"));
    for d in [&old, &new, &renamed] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let shop = std::fs::read_to_string("examples/shop.np").expect("shop");
    std::fs::write(old.join("shop.np"), &shop).expect("write");
    std::fs::write(
        new.join("shop.np"),
        shop.replace("backend/catalog:8080,", "backend/catalog:(8080, 8443),"),
    )
    .expect("write");
    std::fs::write(
        renamed.join("shop.np"),
        shop.replace("workload web =", "workload storefront =")
            .replace("web ->", "storefront ->")
            .replace("-> web:", "-> storefront:")
            .replace("frontend/web ->", "frontend/storefront ->"),
    )
    .expect("write");
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();

    let (code, out, err) = netpolc(&["diff", &s(&old), &s(&new)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("frontend/web\n  + -> backend/catalog  8443/TCP\n"), "{out}");
    assert!(out.ends_with("1 added, 0 removed\n"), "{out}");
    let (_, json, _) = netpolc(&["diff", &s(&old), &s(&new), "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["added"][0]["ports"][0], "8443/TCP");
    assert_eq!(value["removed"].as_array().map(Vec::len), Some(0));
    let (_, md, _) = netpolc(&["diff", &s(&old), &s(&new), "--format", "markdown"]);
    assert!(md.contains("| ➕ | `frontend/web` | `backend/catalog` | 8443/TCP |"), "{md}");

    let (code, out, err) = netpolc(&["diff", &s(&old), &s(&renamed)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "no connectivity change\n");
    std::fs::remove_dir_all(&dir).ok();
}
