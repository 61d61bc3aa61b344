//! The intent graph through the public API and the real binary: DOT and
//! Mermaid of the shop, SVG when Graphviz is installed, exit codes, and the
//! rendered example in `docs/graph.md`.

use netpolc::graph::{self, GraphError};
use std::path::PathBuf;
use std::process::{Command, Output};

fn shop() -> netpolc::Compilation {
    let (sources, early) = netpolc::source::load(&["examples/shop.np".into()]).expect("shop");
    let out = netpolc::compile(sources, early, &netpolc::Config::default());
    assert!(!out.has_errors(), "{}", out.render_diagnostics());
    out
}

fn netpolc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netpolc"))
        .args(args)
        .output()
        .expect("runs netpolc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// A scratch folder of this test binary, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

#[test]
fn shop_graph_has_every_namespace_and_intent() {
    let program = shop().program;
    let dot = graph::dot(&program);
    for ns in ["frontend", "backend", "payments", "monitoring", "kube-system (not declared)"] {
        assert!(dot.contains(&format!("label=\"{ns}\";")), "{ns}:\n{dot}");
    }
    assert!(dot.contains("[label=\"web\\napp.kubernetes.io/name=storefront\"]"), "{dot}");
    assert!(dot.contains("[label=\"corp-db\\n10.20.0.0/16 except 10.20.5.0/24\", shape=hexagon, style=solid]"));
    assert!(dot.contains("[label=\"53/TCP, 53/UDP\""));
    assert!(dot.contains("tooltip=\"shop.np:18: cart -> corp-db:5432\""), "{dot}");
    // Edges: one per pair of peers.
    let mermaid = graph::mermaid(&program);
    assert_eq!(dot.matches(" -> n").count(), mermaid.matches(" -->|").count());
    assert_eq!(mermaid.matches(" -->|").count(), 15, "{mermaid}");
}

#[test]
fn cli_writes_dot_and_mermaid() {
    let program = shop().program;
    let out = netpolc(&["graph", "examples/shop.np"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), graph::dot(&program));

    let out = netpolc(&["graph", "examples/shop.np", "--format", "mermaid"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), graph::mermaid(&program));

    // With -o, the extension chooses the format unless --format says otherwise.
    let dir = scratch("cli_writes_dot_and_mermaid");
    let mmd = dir.join("shop.mmd");
    let out = netpolc(&["graph", "examples/shop.np", "-o", mmd.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&mmd).expect("written"), graph::mermaid(&program));
    let out = netpolc(&["graph", "examples/shop.np", "--format", "dot", "-o", mmd.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&mmd).expect("written"), graph::dot(&program));
}

#[test]
fn cli_errors_and_help() {
    let dir = scratch("cli_errors_and_help");
    let bad = dir.join("bad.np");
    std::fs::write(&bad, "namespace a\nweb -> api:99999\n").expect("write");
    let target = dir.join("graph.dot");
    let out = netpolc(&["graph", bad.to_str().expect("path"), "-o", target.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("E0103"), "{}", text(&out.stderr));
    assert!(!target.exists(), "nothing is written when the input has errors");

    let out = netpolc(&["graph", dir.join("missing.np").to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));

    let out = netpolc(&["graph", "examples/shop.np", "--format", "png"]);
    assert_eq!(out.status.code(), Some(2));

    let out = netpolc(&["graph", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("--format mermaid") && help.contains("Exit codes:"),
        "{help}"
    );
}

#[test]
fn cli_svg_without_dot_exits_2() {
    let empty = scratch("cli_svg_without_dot_exits_2");
    let out = Command::new(env!("CARGO_BIN_EXE_netpolc"))
        .args(["graph", "examples/shop.np", "--format", "svg"])
        .env("PATH", &empty)
        .output()
        .expect("runs netpolc");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`dot`") && stderr.contains("install Graphviz"), "{stderr}");
}

/// Runs Graphviz when it is installed; says why it does not otherwise.
#[test]
fn svg_with_graphviz() {
    let dot = graph::dot(&shop().program);
    let svg = match graph::svg(&dot) {
        Ok(svg) => svg,
        Err(GraphError::DotNotFound) => {
            eprintln!("skipped: Graphviz's `dot` is not installed (apt-get install graphviz to run this test)");
            return;
        }
        Err(e) => panic!("dot failed on our output: {e}"),
    };
    assert!(svg.contains("<svg"), "{svg}");
    assert!(svg.contains("<title>cluster_0</title>"));
    assert!(svg.contains("53/TCP, 53/UDP"));
    assert!(svg.contains("10.20.0.0/16 except 10.20.5.0/24"));

    // Nasty text survives the round trip through Graphviz as text.
    let nasty = r#"digraph { a [label="we\"ird \\N <b>"]; }"#;
    let svg = graph::svg(nasty).expect("dot accepts it");
    assert!(svg.contains(r"we&quot;ird \N &lt;b&gt;"), "{svg}");

    match graph::svg("digraph { a -> }") {
        Err(GraphError::DotFailed { code: Some(_), stderr }) => assert!(stderr.contains("syntax error"), "{stderr}"),
        other => panic!("expected a syntax error, got {other:?}"),
    }

    let out = netpolc(&["graph", "examples/shop.np", "--format", "svg"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("<svg"));
}

/// `docs/graph.md` shows the real Mermaid output for the shop, and the SVG
/// drawn from it.
#[test]
fn docs_show_the_real_shop_graph() {
    let doc = std::fs::read_to_string("docs/graph.md").expect("docs/graph.md");
    let start = doc.find("```mermaid\n").expect("a mermaid block") + "```mermaid\n".len();
    let end = start + doc[start..].find("```").expect("closed block");
    assert_eq!(
        &doc[start..end],
        graph::mermaid(&shop().program),
        "docs/graph.md is out of date: paste `netpolc graph examples/shop.np --format mermaid`"
    );
    assert!(doc.contains("shop-graph.svg"));
    let svg = std::fs::read_to_string("docs/shop-graph.svg").expect("docs/shop-graph.svg");
    assert!(
        svg.contains("<svg") && svg.contains("corp&#45;db"),
        "docs/shop-graph.svg is not the shop graph"
    );
}
