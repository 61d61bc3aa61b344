//! The intent graph: who may talk to whom, as Graphviz DOT or Mermaid.
//!
//! ```
//! let out = netpolc::compile_str("shop.np", "namespace frontend\nweb -> backend/api:8080\n");
//! let dot = netpolc::graph::dot(&out.program);
//! assert!(dot.contains("n1 -> n0 [label=\"8080/TCP\""));
//! let mermaid = netpolc::graph::mermaid(&out.program);
//! assert!(mermaid.contains("n1 -->|\"8080/TCP\"| n0"));
//! ```
//!
//! - Nodes are the peers of the flows: workloads, `*`, selectors, `dns`,
//!   pods in label-selected namespaces, `cluster`, and IP blocks (`world`,
//!   `internet`, externals, CIDRs).
//! - Pods of one namespace are grouped in a cluster (DOT) or subgraph
//!   (Mermaid) named after it; a namespace that is only referenced, never
//!   declared, has a dashed border, and one that does not isolate both
//!   directions says which it does. Peers that belong to no single namespace
//!   stand outside the groups: pods in label-selected namespaces (`cluster`,
//!   `{team=web}/*`) with a dashed border, IP blocks as hexagons.
//! - A workload's node shows its selector too, unless it is the default
//!   one (a single label whose value is the workload's name).
//! - One edge per pair of peers, labelled with the union of the ports of
//!   every intent between them (`8080/TCP`, `53/UDP`, `8000-8100/TCP`,
//!   named ports as `http/TCP`), or `any` when one of them allows every
//!   port. In DOT, the edge's tooltip lists the intents behind it
//!   (`shop.np:12: web -> backend/catalog:8080`).
//! - The output is deterministic: groups sorted by namespace, nodes by
//!   label, edges by their ends; node ids (`n0`, `n1`, ...) follow that order.
//! - Labels are quoted and escaped for each language, so any name is safe.
//!
//! [`svg`] renders DOT with the `dot` command of Graphviz, when installed.

use crate::ast::Isolation;
use crate::ir::{IpBlock, LabelSelector, Namespaces, Peer, PeerName, PortNumber, PortSet, PortSpec, Program};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// The intent graph as a Graphviz DOT `digraph`.
pub fn dot(program: &Program) -> String {
    let graph = Graph::new(program);
    let mut out = String::new();
    out.push_str("digraph netpolc {\n");
    out.push_str("  rankdir=LR;\n");
    out.push_str("  graph [fontname=\"Helvetica\"];\n");
    out.push_str("  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (i, group) in graph.groups.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{i} {{");
        let _ = writeln!(out, "    label={};", dot_string(&group.label()));
        if !group.declared {
            out.push_str("    style=dashed;\n");
        }
        for &node in &group.nodes {
            let _ = writeln!(out, "    {}", dot_node(&graph.nodes[node]));
        }
        out.push_str("  }\n");
    }
    for &node in &graph.loose {
        let _ = writeln!(out, "  {}", dot_node(&graph.nodes[node]));
    }
    for edge in &graph.edges {
        let tooltip: Vec<&str> = edge.origins.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "  n{} -> n{} [label={}, tooltip={}];",
            edge.from,
            edge.to,
            dot_string(&edge.label()),
            dot_lines(&tooltip)
        );
    }
    out.push_str("}\n");
    out
}

/// The intent graph as a Mermaid `flowchart`.
pub fn mermaid(program: &Program) -> String {
    let graph = Graph::new(program);
    let mut out = String::new();
    out.push_str("flowchart LR\n");
    let mut dashed_groups = Vec::new();
    for (i, group) in graph.groups.iter().enumerate() {
        let _ = writeln!(out, "  subgraph g{i} [\"{}\"]", mermaid_text(&group.label()));
        for &node in &group.nodes {
            let _ = writeln!(out, "    {}", mermaid_node(&graph.nodes[node]));
        }
        out.push_str("  end\n");
        if !group.declared {
            dashed_groups.push(format!("g{i}"));
        }
    }
    for &node in &graph.loose {
        let _ = writeln!(out, "  {}", mermaid_node(&graph.nodes[node]));
    }
    for edge in &graph.edges {
        let _ = writeln!(out, "  n{} -->|\"{}\"| n{}", edge.from, mermaid_text(&edge.label()), edge.to);
    }
    let selected: Vec<String> = graph
        .loose
        .iter()
        .filter(|&&n| graph.nodes[n].kind == Kind::SelectedPods)
        .map(|n| format!("n{n}"))
        .collect();
    if !selected.is_empty() {
        out.push_str("  classDef selected stroke-dasharray: 5 5\n");
        let _ = writeln!(out, "  class {} selected", selected.join(","));
    }
    for group in dashed_groups {
        let _ = writeln!(out, "  style {group} stroke-dasharray: 5 5");
    }
    out
}

/// Why [`svg`] could not render.
#[derive(Debug)]
pub enum GraphError {
    /// The `dot` command is not installed (or not on `PATH`).
    DotNotFound,
    /// `dot` could not be run or talked to.
    Io(std::io::Error),
    /// `dot` ran and failed.
    DotFailed {
        /// Its exit code, if it exited (rather than being killed).
        code: Option<i32>,
        /// What it printed on standard error.
        stderr: String,
    },
    /// `dot` printed something that is not UTF-8.
    NotUtf8,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::DotNotFound => f.write_str(
                "the `dot` command of Graphviz is not installed (or not on PATH): install Graphviz (`apt-get install graphviz`, `brew install graphviz`) or use `--format dot` or `--format mermaid`",
            ),
            GraphError::Io(e) => write!(f, "cannot run `dot`: {e}"),
            GraphError::DotFailed { code, stderr } => {
                match code {
                    Some(code) => write!(f, "`dot -Tsvg` failed with exit code {code}")?,
                    None => f.write_str("`dot -Tsvg` was stopped by a signal")?,
                }
                let stderr = stderr.trim();
                if stderr.is_empty() { Ok(()) } else { write!(f, ": {stderr}") }
            }
            GraphError::NotUtf8 => f.write_str("`dot -Tsvg` printed something that is not UTF-8"),
        }
    }
}

impl std::error::Error for GraphError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GraphError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Renders DOT text as SVG with Graphviz (`dot -Tsvg`).
pub fn svg(dot: &str) -> Result<String, GraphError> {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(GraphError::DotNotFound),
        Err(e) => return Err(GraphError::Io(e)),
    };
    // Write from another thread, so that a full stdout pipe cannot block us both.
    let writer = child.stdin.take().map(|mut stdin| {
        let input = dot.as_bytes().to_vec();
        std::thread::spawn(move || stdin.write_all(&input))
    });
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let read = child
        .stdout
        .take()
        .map_or(Ok(0), |mut out| out.read_to_end(&mut stdout))
        .and_then(|_| child.stderr.take().map_or(Ok(0), |mut err| err.read_to_end(&mut stderr)));
    let status = child.wait().map_err(GraphError::Io)?;
    let written = writer.map_or(Ok(()), |w| w.join().unwrap_or(Ok(())));
    if !status.success() {
        return Err(GraphError::DotFailed {
            code: status.code(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        });
    }
    read.map_err(GraphError::Io)?;
    written.map_err(GraphError::Io)?;
    String::from_utf8(stdout).map_err(|_| GraphError::NotUtf8)
}

// ---------------------------------------------------------------------------
// The graph, independent of the output language
// ---------------------------------------------------------------------------

/// What a node stands for, which decides its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Pods of one namespace.
    Pods,
    /// Pods in every namespace whose labels match.
    SelectedPods,
    /// IP blocks.
    Ips,
}

struct Node {
    /// Label lines.
    lines: Vec<String>,
    kind: Kind,
    id: usize,
}

struct Group {
    namespace: String,
    declared: bool,
    isolation: Isolation,
    /// Indices into [`Graph::nodes`].
    nodes: Vec<usize>,
}

impl Group {
    /// `frontend`, `frontend (isolate ingress)`, `kube-system (not declared)`.
    fn label(&self) -> String {
        if !self.declared {
            format!("{} (not declared)", self.namespace)
        } else if self.isolation == Isolation::Both {
            self.namespace.clone()
        } else {
            format!("{} (isolate {})", self.namespace, self.isolation.as_str())
        }
    }
}

struct Edge {
    from: usize,
    to: usize,
    /// `None`: every port.
    ports: Option<BTreeSet<PortKey>>,
    /// `file:line: intent`, in source order.
    origins: Vec<String>,
}

impl Edge {
    fn label(&self) -> String {
        match &self.ports {
            None => "any".to_owned(),
            Some(ports) => ports.iter().map(PortKey::to_string).collect::<Vec<_>>().join(", "),
        }
    }
}

/// A port in label order: numbers before names, then by protocol.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    start: u32,
    end: u32,
    name: String,
    protocol: crate::ir::Protocol,
}

impl PortKey {
    fn of(spec: &PortSpec) -> PortKey {
        let (start, end, name) = match &spec.port {
            PortNumber::Single(p) => (u32::from(*p), u32::from(*p), String::new()),
            PortNumber::Range(a, b) => (u32::from(*a), u32::from(*b), String::new()),
            PortNumber::Named(n) => (u32::MAX, u32::MAX, n.clone()),
        };
        PortKey {
            start,
            end,
            name,
            protocol: spec.protocol,
        }
    }
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.name.is_empty() {
            write!(f, "{}/{}", self.name, self.protocol)
        } else if self.start == self.end {
            write!(f, "{}/{}", self.start, self.protocol)
        } else {
            write!(f, "{}-{}/{}", self.start, self.end, self.protocol)
        }
    }
}

struct Graph {
    /// Every node, indexed by its id.
    nodes: Vec<Node>,
    /// Namespaces with at least one node, sorted by name.
    groups: Vec<Group>,
    /// Nodes outside any namespace.
    loose: Vec<usize>,
    /// Sorted by (from, to).
    edges: Vec<Edge>,
}

impl Graph {
    fn new(program: &Program) -> Graph {
        // Every distinct peer, with where it goes and how it reads.
        let mut peers: BTreeMap<&Peer, Described<'_>> = BTreeMap::new();
        for flow in &program.flows {
            for peer in [&flow.source, &flow.target] {
                peers.entry(peer).or_insert_with(|| describe(peer));
            }
        }
        // Order: groups by namespace, then loose nodes by kind; by label within.
        let mut order: Vec<(&Peer, Described<'_>)> = peers.into_iter().collect();
        order.sort_by(|(pa, a), (pb, b)| {
            (a.namespace.is_none(), a.namespace, a.kind, &a.lines, pa).cmp(&(b.namespace.is_none(), b.namespace, b.kind, &b.lines, pb))
        });
        let mut ids: BTreeMap<&Peer, usize> = BTreeMap::new();
        let mut nodes = Vec::with_capacity(order.len());
        let mut groups: Vec<Group> = Vec::new();
        let mut loose = Vec::new();
        for (id, (peer, described)) in order.into_iter().enumerate() {
            ids.insert(peer, id);
            let Described { namespace, kind, lines } = described;
            nodes.push(Node { lines, kind, id });
            match namespace {
                Some(ns) => {
                    if groups.last().is_none_or(|g| g.namespace != ns) {
                        let info = program.namespaces.get(ns);
                        groups.push(Group {
                            namespace: ns.to_owned(),
                            declared: info.is_some_and(|i| i.declared),
                            isolation: info.map(|i| i.isolation).unwrap_or_default(),
                            nodes: Vec::new(),
                        });
                    }
                    if let Some(group) = groups.last_mut() {
                        group.nodes.push(id);
                    }
                }
                None => loose.push(id),
            }
        }
        // One edge per pair; `None` ports once any intent allows every port.
        let mut edges: BTreeMap<(usize, usize), Edge> = BTreeMap::new();
        for flow in &program.flows {
            let (Some(&from), Some(&to)) = (ids.get(&*flow.source), ids.get(&*flow.target)) else {
                continue;
            };
            let edge = edges.entry((from, to)).or_insert_with(|| Edge {
                from,
                to,
                ports: Some(BTreeSet::new()),
                origins: Vec::new(),
            });
            merge_ports(&mut edge.ports, &flow.ports);
            if let Some(origin) = program.origins.get(flow.origin) {
                edge.origins.push(format!("{}: {}", origin.location, origin.text));
            }
        }
        let mut edges: Vec<Edge> = edges.into_values().collect();
        for edge in &mut edges {
            // Source order (files sorted by name), each intent once.
            let mut seen = BTreeSet::new();
            edge.origins.retain(|o| seen.insert(o.clone()));
        }
        Graph {
            nodes,
            groups,
            loose,
            edges,
        }
    }
}

fn merge_ports(into: &mut Option<BTreeSet<PortKey>>, ports: &PortSet) {
    if ports.is_all() {
        *into = None;
    } else if let Some(set) = into {
        set.extend(ports.0.iter().map(PortKey::of));
    }
}

/// Where a peer goes and how it reads.
struct Described<'a> {
    /// Its namespace; `None` outside any.
    namespace: Option<&'a str>,
    kind: Kind,
    /// Label lines.
    lines: Vec<String>,
}

fn described(namespace: Option<&str>, kind: Kind, lines: Vec<String>) -> Described<'_> {
    Described { namespace, kind, lines }
}

/// A peer's namespace, kind and label lines.
fn describe(peer: &Peer) -> Described<'_> {
    match peer {
        Peer::Pods {
            namespaces: Namespaces::Named(ns),
            pods,
            name,
        } => {
            let lines = match name {
                PeerName::Workload(n) if is_default_selector(pods, n) => vec![n.clone()],
                PeerName::Workload(n) => vec![n.clone(), pods.to_string()],
                other => vec![pods_label(other, pods)],
            };
            described(Some(ns.as_str()), Kind::Pods, lines)
        }
        Peer::Pods {
            namespaces: Namespaces::Selected(ns_sel),
            pods,
            name,
        } => {
            let line = match name {
                PeerName::Cluster => "cluster".to_owned(),
                PeerName::InNamespaces(_, inner) => format!("{{{ns_sel}}}/{}", pods_label(inner, pods)),
                other => format!("{{{ns_sel}}}/{}", pods_label(other, pods)),
            };
            described(None, Kind::SelectedPods, vec![line])
        }
        Peer::Ips { blocks, name } => {
            let lines = match name {
                PeerName::World | PeerName::Internet => vec![name.to_string()],
                PeerName::Cidr(_) if blocks.len() == 1 => vec![block_text(&blocks[0])],
                PeerName::External(n) => std::iter::once(n.clone()).chain(blocks.iter().map(block_text)).collect(),
                other => std::iter::once(other.to_string()).chain(blocks.iter().map(block_text)).collect(),
            };
            described(None, Kind::Ips, lines)
        }
    }
}

/// Whether a workload's selector is the one its name implies: a single
/// `KEY=NAME` label.
fn is_default_selector(pods: &LabelSelector, name: &str) -> bool {
    pods.expressions.is_empty() && pods.labels.len() == 1 && pods.labels.values().all(|v| v == name)
}

/// The pods part of a label: `web`, `*`, `dns`, `[tier=db]`.
fn pods_label(name: &PeerName, pods: &LabelSelector) -> String {
    match name {
        PeerName::Workload(n) => n.clone(),
        PeerName::All => "*".to_owned(),
        PeerName::Selector(_) => format!("[{pods}]"),
        other => other.to_string(),
    }
}

/// `10.20.0.0/16`, `10.20.0.0/16 except 10.20.5.0/24`.
fn block_text(block: &IpBlock) -> String {
    if block.except.is_empty() {
        block.cidr.clone()
    } else {
        format!("{} except {}", block.cidr, block.except.join(", "))
    }
}

// ---------------------------------------------------------------------------
// DOT
// ---------------------------------------------------------------------------

fn dot_node(node: &Node) -> String {
    let lines: Vec<&str> = node.lines.iter().map(String::as_str).collect();
    let style = match node.kind {
        Kind::Pods => "",
        Kind::SelectedPods => ", style=\"rounded,dashed\"",
        Kind::Ips => ", shape=hexagon, style=solid",
    };
    format!("n{} [label={}{style}];", node.id, dot_lines(&lines))
}

/// A DOT quoted string of one line: `"`, `\` and `&` escaped, so that
/// Graphviz shows the text as it is (no `\n`, `\N`... escapes, no `&lt;`
/// entities); control characters become spaces.
fn dot_string(text: &str) -> String {
    dot_lines(&[text])
}

/// A DOT quoted string of several lines, joined by `\n` (centred lines).
fn dot_lines(lines: &[&str]) -> String {
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 2).sum::<usize>() + 2);
    out.push('"');
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\\n");
        }
        for c in line.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                // Graphviz reads `&...;` as an entity: keep it as text.
                '&' => out.push_str("&amp;"),
                c if c.is_control() => out.push(' '),
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// Mermaid
// ---------------------------------------------------------------------------

fn mermaid_node(node: &Node) -> String {
    let text = node.lines.iter().map(|l| mermaid_text(l)).collect::<Vec<_>>().join("<br>");
    match node.kind {
        Kind::Pods | Kind::SelectedPods => format!("n{}(\"{text}\")", node.id),
        Kind::Ips => format!("n{}{{{{\"{text}\"}}}}", node.id),
    }
}

/// Text for inside a Mermaid `"..."` string. Characters that the flowchart
/// syntax, its `#...;` entity codes, its `%%` directives or its HTML labels
/// would read as anything but text become decimal entity codes (`#34;`);
/// control characters become spaces.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '#' | '&' | '<' | '>' | '|' | '%' | '`' => {
                let _ = write!(out, "#{};", u32::from(c));
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Flow, NamespaceInfo, Origin, Protocol};

    fn program(text: &str) -> Program {
        let out = crate::compile_str("t.np", text);
        assert!(!out.has_errors(), "{}", out.render_diagnostics());
        out.program
    }

    #[test]
    fn smallest_program_in_dot() {
        let p = program("namespace frontend\nweb -> backend/api:8080\n");
        assert_eq!(
            dot(&p),
            r#"digraph netpolc {
  rankdir=LR;
  graph [fontname="Helvetica"];
  node [shape=box, style=rounded, fontname="Helvetica"];
  edge [fontname="Helvetica", fontsize=10];
  subgraph cluster_0 {
    label="backend (not declared)";
    style=dashed;
    n0 [label="api"];
  }
  subgraph cluster_1 {
    label="frontend";
    n1 [label="web"];
  }
  n1 -> n0 [label="8080/TCP", tooltip="t.np:2: web -> backend/api:8080"];
}
"#
        );
    }

    #[test]
    fn smallest_program_in_mermaid() {
        let p = program("namespace frontend\nweb -> backend/api:8080\n");
        assert_eq!(
            mermaid(&p),
            r#"flowchart LR
  subgraph g0 ["backend (not declared)"]
    n0("api")
  end
  subgraph g1 ["frontend"]
    n1("web")
  end
  n1 -->|"8080/TCP"| n0
  style g0 stroke-dasharray: 5 5
"#
        );
    }

    #[test]
    fn every_kind_of_peer() {
        let p = program(
            "\
external corp-db = 10.20.0.0/16 except 10.20.5.0/24
namespace shop
isolate ingress
workload web = app.kubernetes.io/name=storefront
world -> web:443
web -> corp-db:5432, 10.1.0.0/24:(8000-8100, 53/udp), internet:443
[tier=db] -> *:9090
cluster -> web:http
{team=ops}/* -> web:22
{}/prometheus -> web:9090
{team=ops}/[role=admin] -> web:22
",
        );
        assert_eq!(
            dot(&p),
            r#"digraph netpolc {
  rankdir=LR;
  graph [fontname="Helvetica"];
  node [shape=box, style=rounded, fontname="Helvetica"];
  edge [fontname="Helvetica", fontsize=10];
  subgraph cluster_0 {
    label="shop (isolate ingress)";
    n0 [label="*"];
    n1 [label="[tier=db]"];
    n2 [label="web\napp.kubernetes.io/name=storefront"];
  }
  n3 [label="cluster", style="rounded,dashed"];
  n4 [label="{team=ops}/*", style="rounded,dashed"];
  n5 [label="{team=ops}/[role=admin]", style="rounded,dashed"];
  n6 [label="{}/prometheus", style="rounded,dashed"];
  n7 [label="10.1.0.0/24", shape=hexagon, style=solid];
  n8 [label="corp-db\n10.20.0.0/16 except 10.20.5.0/24", shape=hexagon, style=solid];
  n9 [label="internet", shape=hexagon, style=solid];
  n10 [label="world", shape=hexagon, style=solid];
  n1 -> n0 [label="9090/TCP", tooltip="t.np:7: [tier=db] -> *:9090"];
  n2 -> n7 [label="53/UDP, 8000-8100/TCP", tooltip="t.np:6: web -> 10.1.0.0/24:(8000-8100, 53/udp)"];
  n2 -> n8 [label="5432/TCP", tooltip="t.np:6: web -> corp-db:5432"];
  n2 -> n9 [label="443/TCP", tooltip="t.np:6: web -> internet:443"];
  n3 -> n2 [label="http/TCP", tooltip="t.np:8: cluster -> web:http"];
  n4 -> n2 [label="22/TCP", tooltip="t.np:9: {team=ops}/* -> web:22"];
  n5 -> n2 [label="22/TCP", tooltip="t.np:11: {team=ops}/[role=admin] -> web:22"];
  n6 -> n2 [label="9090/TCP", tooltip="t.np:10: {}/prometheus -> web:9090"];
  n10 -> n2 [label="443/TCP", tooltip="t.np:5: world -> web:443"];
}
"#
        );
        assert_eq!(
            mermaid(&p),
            r#"flowchart LR
  subgraph g0 ["shop (isolate ingress)"]
    n0("*")
    n1("[tier=db]")
    n2("web<br>app.kubernetes.io/name=storefront")
  end
  n3("cluster")
  n4("{team=ops}/*")
  n5("{team=ops}/[role=admin]")
  n6("{}/prometheus")
  n7{{"10.1.0.0/24"}}
  n8{{"corp-db<br>10.20.0.0/16 except 10.20.5.0/24"}}
  n9{{"internet"}}
  n10{{"world"}}
  n1 -->|"9090/TCP"| n0
  n2 -->|"53/UDP, 8000-8100/TCP"| n7
  n2 -->|"5432/TCP"| n8
  n2 -->|"443/TCP"| n9
  n3 -->|"http/TCP"| n2
  n4 -->|"22/TCP"| n2
  n5 -->|"22/TCP"| n2
  n6 -->|"9090/TCP"| n2
  n10 -->|"443/TCP"| n2
  classDef selected stroke-dasharray: 5 5
  class n3,n4,n5,n6 selected
"#
        );
    }

    #[test]
    fn intents_between_the_same_peers_merge_into_one_edge() {
        let p = program("namespace a\nweb -> api:443\nweb -> api:(80, 53/udp, 53/tcp, http)\n@owner x\nweb -> api:80\n");
        let out = dot(&p);
        assert!(
            out.contains(
                "n1 -> n0 [label=\"53/TCP, 53/UDP, 80/TCP, 443/TCP, http/TCP\", tooltip=\"t.np:2: web -> api:443\\nt.np:3: web -> api:(80, 53/udp, 53/tcp, http)\\nt.np:5: web -> api:80\"];"
            ),
            "{out}"
        );
        assert_eq!(out.matches(" -> n").count(), 1, "{out}");
        // Every port wins over a list.
        let p = program("namespace a\nweb -> api:443\nweb -> api\n");
        assert!(dot(&p).contains("n1 -> n0 [label=\"any\""));
        assert!(mermaid(&p).contains("n1 -->|\"any\"| n0"));
    }

    #[test]
    fn dns_self_loops_and_namespaces_in_name_order() {
        let p = program("namespace z\n* -> *:8080\nallow dns\nnamespace a\nisolate none\nweb -> z/*:8080\n");
        let out = mermaid(&p);
        assert_eq!(
            out,
            r#"flowchart LR
  subgraph g0 ["a (isolate none)"]
    n0("web")
  end
  subgraph g1 ["kube-system (not declared)"]
    n1("dns")
  end
  subgraph g2 ["z"]
    n2("*")
  end
  n0 -->|"8080/TCP"| n2
  n2 -->|"53/TCP, 53/UDP"| n1
  n2 -->|"8080/TCP"| n2
  style g1 stroke-dasharray: 5 5
"#
        );
    }

    #[test]
    fn output_does_not_depend_on_file_order() {
        let a = "namespace a\nweb -> b/api:80\nweb -> 10.0.0.0/8:443\n";
        let b = "namespace b\napi -> a/web:8080, allow dns\nworker -> api\n";
        let compile = |files: &[(&str, &str)]| {
            let mut sources = crate::Sources::new();
            for (name, text) in files {
                sources.add(*name, *text);
            }
            crate::compile(sources, Vec::new(), &crate::Config::default()).program
        };
        let one = compile(&[("a.np", a), ("b.np", b)]);
        let two = compile(&[("b.np", b), ("a.np", a)]);
        assert_eq!(dot(&one), dot(&two));
        assert_eq!(mermaid(&one), mermaid(&two));
        assert_eq!(dot(&one), dot(&one));
    }

    #[test]
    fn empty_program() {
        let p = Program::default();
        assert_eq!(mermaid(&p), "flowchart LR\n");
        assert!(dot(&p).ends_with("  edge [fontname=\"Helvetica\", fontsize=10];\n}\n"));
    }

    #[test]
    fn escaping_dot() {
        assert_eq!(dot_string("plain"), "\"plain\"");
        assert_eq!(dot_string(r#"a"b\c"#), r#""a\"b\\c""#);
        // A backslash before a letter is not a Graphviz escape (`\n`, `\N`).
        assert_eq!(dot_string(r"x\n\N\G"), r#""x\\n\\N\\G""#);
        assert_eq!(dot_string("tab\there\nnew\rline"), "\"tab here new line\"");
        assert_eq!(dot_string("end\\"), r#""end\\""#);
        assert_eq!(dot_string("<html> &lt; ü {x} [y] ; -> --"), "\"<html> &amp;lt; ü {x} [y] ; -> --\"");
        assert_eq!(dot_lines(&["a", "b\"", ""]), r#""a\nb\"\n""#);
    }

    #[test]
    fn escaping_mermaid() {
        assert_eq!(mermaid_text("plain-text.1"), "plain-text.1");
        assert_eq!(mermaid_text(r#"say "hi""#), "say #34;hi#34;");
        assert_eq!(mermaid_text("#35; is not an entity"), "#35;35; is not an entity");
        assert_eq!(mermaid_text("<b>&amp;</b>"), "#60;b#62;#38;amp;#60;/b#62;");
        assert_eq!(mermaid_text("a|b %%{init}%% `md`"), "a#124;b #37;#37;{init}#37;#37; #96;md#96;");
        assert_eq!(mermaid_text("line\nbreak\u{7f}"), "line break ");
        assert_eq!(mermaid_text("[x] (y) {z} end ü"), "[x] (y) {z} end ü");
    }

    /// Names that no checked program has, built by hand, come out quoted:
    /// every line has an even number of unescaped quotes.
    #[test]
    fn nasty_names_stay_inside_their_quotes() {
        let nasty = "we\"ird\\ <b>#1|%%\n{end}`";
        let mut program = Program::default();
        program.namespaces.insert(
            nasty.to_owned(),
            NamespaceInfo {
                declared: true,
                ..NamespaceInfo::default()
            },
        );
        let pods = |name: &str| Peer::Pods {
            namespaces: Namespaces::Named(nasty.to_owned()),
            pods: LabelSelector::label("app", "x"),
            name: PeerName::Workload(name.to_owned()),
        };
        program.flows.push(Flow {
            source: pods(nasty).into(),
            target: Peer::Ips {
                blocks: vec![IpBlock {
                    cidr: "10.0.0.0/8".into(),
                    except: vec![],
                }],
                name: PeerName::External(nasty.to_owned()),
            }
            .into(),
            ports: PortSet(vec![PortSpec {
                protocol: Protocol::Tcp,
                port: PortNumber::Named(nasty.to_owned()),
            }]),
            origin: 0,
        });
        program.origins.push(std::sync::Arc::new(Origin {
            span: Default::default(),
            source_span: Default::default(),
            text: nasty.to_owned(),
            location: format!("{nasty}.np:1"),
            ..Default::default()
        }));
        let d = dot(&program);
        assert_eq!(d.lines().count(), 12, "{d}");
        for line in d.lines() {
            let unescaped = line.replace("\\\\", "").replace("\\\"", "");
            assert_eq!(unescaped.matches('"').count() % 2, 0, "{line}");
        }
        assert!(d.contains(r#"label="we\"ird\\ <b>#1|%% {end}`\napp=x""#), "{d}");
        let m = mermaid(&program);
        assert_eq!(m.lines().count(), 6, "{m}");
        for line in m.lines() {
            assert_eq!(line.matches('"').count() % 2, 0, "{line}");
            let text = line.replace("<br>", "").replace("-->|\"", "").replace("\"|", "");
            assert!(!text.contains(['|', '%', '`', '<', '>', '&']), "{line}");
        }
        assert!(
            m.contains(r#"subgraph g0 ["we#34;ird\ #60;b#62;#35;1#124;#37;#37; {end}#96;"]"#),
            "{m}"
        );
    }

    #[test]
    fn svg_errors_read_well() {
        assert!(GraphError::DotNotFound.to_string().contains("install Graphviz"));
        let failed = GraphError::DotFailed {
            code: Some(1),
            stderr: "Error: <stdin>: syntax error in line 1\n".into(),
        };
        assert_eq!(
            failed.to_string(),
            "`dot -Tsvg` failed with exit code 1: Error: <stdin>: syntax error in line 1"
        );
    }
}
