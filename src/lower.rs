//! IR to Kubernetes objects: pairs each flow into an egress half on the
//! caller and an ingress half on the callee, adds each namespace's
//! `default-deny`, names everything. No I/O, no formatting.

use crate::ast::Span;
use crate::config::Config;
use crate::diagnostics::{Code, Diagnostic};
use crate::ir::*;
use crate::source::Sources;
use k8s_openapi::api::networking::v1 as net;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, BTreeSet, btree_map::Entry};

/// The label every generated object carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "netpolc");

/// The name of each namespace's isolating policy.
pub const DEFAULT_DENY: &str = "default-deny";

/// Longest valid object name.
const MAX_NAME: usize = 253;

/// Traffic direction, from the point of view of the selected pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Connections the pods accept.
    Ingress,
    /// Connections the pods open.
    Egress,
}

/// One policy to build: a local endpoint, a peer, and everything merged into them.
struct Pair<'p> {
    direction: Direction,
    local: &'p Peer,
    peer: &'p Peer,
    ports: Option<BTreeSet<PortSpec>>,
    origins: BTreeSet<usize>,
}

/// Builds every NetworkPolicy, sorted by namespace then name. Diagnostics are
/// name collisions between different pairs.
pub fn lower(program: &Program, sources: &Sources, config: &Config) -> (Vec<net::NetworkPolicy>, Vec<Diagnostic>) {
    let declared: Vec<&String> = program.namespaces.iter().filter(|(_, i)| i.declared).map(|(n, _)| n).collect();
    let mut pairs: BTreeMap<(String, String), Pair> = BTreeMap::new();
    let mut diagnostics = Vec::new();
    let mut collided: Vec<usize> = Vec::new();

    for flow in &program.flows {
        let halves = [
            (Direction::Egress, &*flow.source, &*flow.target),
            (Direction::Ingress, &*flow.target, &*flow.source),
        ];
        for (direction, local, peer) in halves {
            if direction == Direction::Ingress && skips_ingress_half(local, program) {
                continue;
            }
            for ns in local_namespaces(local, &declared) {
                let isolation = program.namespaces.get(ns).map(|i| i.isolation).unwrap_or_default();
                let enforced = match direction {
                    Direction::Ingress => isolation.ingress(),
                    Direction::Egress => isolation.egress(),
                };
                if !enforced {
                    continue;
                }
                let name = policy_name(direction, local, peer, ns);
                match pairs.entry((ns.clone(), name)) {
                    Entry::Vacant(v) => {
                        v.insert(Pair {
                            direction,
                            local,
                            peer,
                            ports: port_set(&flow.ports),
                            origins: BTreeSet::from([flow.origin]),
                        });
                    }
                    Entry::Occupied(mut o) => {
                        let pair = o.get_mut();
                        if pair.direction == direction && pair.local == local && pair.peer == peer {
                            pair.ports = match (pair.ports.take(), port_set(&flow.ports)) {
                                (Some(mut a), Some(b)) => {
                                    a.extend(b);
                                    Some(a)
                                }
                                _ => None,
                            };
                            pair.origins.insert(flow.origin);
                        } else {
                            let (first, second) = (
                                &program.origins[*pair.origins.iter().next().unwrap_or(&0)],
                                &program.origins[flow.origin],
                            );
                            collided.push(flow.origin);
                            let (ns, name) = o.key();
                            diagnostics.push(
                                Diagnostic::new(
                                    Code::PolicyNameCollision,
                                    second.span,
                                    format!("two different pairs would both become policy `{name}` in namespace `{ns}`"),
                                )
                                .with_label(format!("`{}`", second.text))
                                .with_secondary(first.span, format!("`{}`", first.text))
                                .with_help("rename one of the workloads or externals so that the policy names differ"),
                            );
                        }
                    }
                }
            }
        }
    }

    let mut used = vec![false; program.origins.len()];
    for &o in &collided {
        used[o] = true;
    }
    for pair in pairs.values() {
        for &o in &pair.origins {
            used[o] = true;
        }
    }
    for flow in &program.flows {
        if !used[flow.origin] {
            used[flow.origin] = true;
            let origin = &program.origins[flow.origin];
            diagnostics.push(
                Diagnostic::new(Code::NoEffect, origin.span, format!("`{}` generates no policy", origin.text))
                    .with_label("no rule on either side")
                    .with_note(no_effect_reason(flow, program))
                    .with_help("remove the intent, or declare the namespace that should enforce it"),
            );
        }
    }

    let mut policies: Vec<net::NetworkPolicy> = Vec::with_capacity(pairs.len() + declared.len());
    for (ns, info) in &program.namespaces {
        if info.declared
            && let Some(p) = default_deny(ns, info, sources, config)
        {
            policies.push(p);
        }
    }
    let pairs: Vec<((String, String), Pair)> = pairs.into_iter().collect();
    policies.extend(crate::parallel::map(&pairs, |_, ((ns, name), pair)| {
        build(ns.clone(), name.clone(), pair, program, config)
    }));
    policies.sort_by(|a, b| (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name)));
    (policies, diagnostics)
}

/// Why neither half of a flow produced a rule.
fn no_effect_reason(flow: &Flow, program: &Program) -> String {
    let side = |peer: &Peer, direction: &str| match peer {
        Peer::Ips { .. } => "an IP block gets no policy".to_string(),
        Peer::Pods { name: PeerName::Dns, .. } if direction == "ingress" => {
            "the `dns` target gets its ingress half only when its namespace is declared".to_string()
        }
        Peer::Pods {
            namespaces: Namespaces::Named(ns),
            ..
        } => match program.namespaces.get(ns) {
            // Only `[output] namespaces = "declared"` leaves an undeclared namespace unisolated.
            Some(info) if !info.declared && info.isolation == crate::ast::Isolation::None => {
                format!("namespace `{ns}` is not declared, and netpolc.toml limits output to declared namespaces")
            }
            info => format!(
                "namespace `{ns}` is `isolate {}`, so it gets no {direction} rules",
                info.map(|i| i.isolation).unwrap_or_default().as_str()
            ),
        },
        Peer::Pods {
            namespaces: Namespaces::Selected(_),
            ..
        } => {
            format!("namespaces chosen by labels write their {direction} half themselves")
        }
    };
    format!("{}; {}", side(&flow.source, "egress"), side(&flow.target, "ingress"))
}

/// Whether `flow` contributes a rule to policy `name` in namespace `ns`.
pub fn contributes(flow: &Flow, program: &Program, ns: &str, name: &str) -> bool {
    let declared = declared_namespaces(program);
    policies_of(flow, &declared).iter().any(|(n, p)| *n == ns && p == name)
}

fn declared_namespaces(program: &Program) -> Vec<&String> {
    program.namespaces.iter().filter(|(_, i)| i.declared).map(|(n, _)| n).collect()
}

/// The policies, as (namespace, name), that the halves of `flow` go into.
fn policies_of<'p>(flow: &'p Flow, declared: &[&'p String]) -> Vec<(&'p String, String)> {
    let halves = [
        (Direction::Egress, &flow.source, &flow.target),
        (Direction::Ingress, &flow.target, &flow.source),
    ];
    halves
        .into_iter()
        .flat_map(|(direction, local, peer)| {
            local_namespaces(local, declared)
                .into_iter()
                .map(move |ns| (ns, policy_name(direction, local, peer, ns)))
        })
        .collect()
}

/// Where each emitted policy comes from, for diagnostics about the objects
/// (Kubernetes' validation, Rego rules): built once, asked per object.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    intents: BTreeMap<(String, String), Vec<Span>>,
    declarations: BTreeMap<String, Span>,
}

impl Provenance {
    /// The provenance of every policy of `program`.
    pub fn new(program: &Program) -> Self {
        let declared = declared_namespaces(program);
        let mut intents: BTreeMap<(String, String), Vec<Span>> = BTreeMap::new();
        for flow in &program.flows {
            let Some(origin) = program.origins.get(flow.origin) else { continue };
            for (ns, name) in policies_of(flow, &declared) {
                let spans = intents.entry((ns.clone(), name)).or_default();
                if spans.last() != Some(&origin.span) {
                    spans.push(origin.span);
                }
            }
        }
        let declarations = program
            .namespaces
            .iter()
            .filter_map(|(ns, info)| Some((ns.clone(), *info.declarations.first()?)))
            .collect();
        Provenance { intents, declarations }
    }

    /// Where policy `name` in namespace `ns` comes from: the intents that
    /// contribute a rule to it, in source order, or, for a `default-deny`,
    /// the namespace's declaration.
    pub fn of(&self, ns: &str, name: &str) -> Vec<Span> {
        match self.intents.get(&(ns.to_string(), name.to_string())) {
            Some(spans) => spans.clone(),
            None => self.declarations.get(ns).copied().into_iter().collect(),
        }
    }
}

/// The `dns` target gets no ingress half unless its namespace is declared,
/// so that a user's intent never isolates the cluster's DNS pods.
fn skips_ingress_half(local: &Peer, program: &Program) -> bool {
    match local {
        Peer::Pods {
            name: PeerName::Dns,
            namespaces: Namespaces::Named(ns),
            ..
        } => !program.namespaces.get(ns).is_some_and(|i| i.declared),
        _ => false,
    }
}

/// The namespaces whose pods a peer stands for, where a policy can hold them.
pub(crate) fn local_namespaces<'a>(peer: &'a Peer, declared: &[&'a String]) -> Vec<&'a String> {
    match peer {
        Peer::Pods {
            namespaces: Namespaces::Named(ns),
            ..
        } => vec![ns],
        Peer::Pods {
            namespaces: Namespaces::Selected(sel),
            ..
        } if sel.is_empty() => declared.to_vec(),
        _ => Vec::new(),
    }
}

fn port_set(ports: &PortSet) -> Option<BTreeSet<PortSpec>> {
    (!ports.is_all()).then(|| ports.0.iter().cloned().collect())
}

/// `<local>-to-<peer>` or `<local>-from-<peer>`, the peer prefixed with its
/// namespace when it lives elsewhere; cut with a hash past 253 characters.
pub fn policy_name(direction: Direction, local: &Peer, peer: &Peer, namespace: &str) -> String {
    let verb = match direction {
        Direction::Egress => "to",
        Direction::Ingress => "from",
    };
    let peer_name = match peer {
        Peer::Pods {
            namespaces: Namespaces::Named(ns),
            name,
            ..
        } if ns != namespace && *name != PeerName::Dns => format!("{ns}.{name}"),
        other => other.name().to_string(),
    };
    fit_name(format!("{}-{verb}-{peer_name}", local.name()))
}

fn fit_name(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = crate::check::short_hash(&name);
    let mut cut = name[..MAX_NAME - hash.len() - 1].trim_end_matches(['-', '.']).to_string();
    cut.push('-');
    cut.push_str(&hash);
    cut
}

fn object_meta(namespace: &str, name: String, annotations: BTreeMap<String, String>) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        labels: Some(BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())])),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    }
}

fn default_deny(ns: &str, info: &NamespaceInfo, sources: &Sources, config: &Config) -> Option<net::NetworkPolicy> {
    let mut types = Vec::new();
    if info.isolation.ingress() {
        types.push("Ingress".to_string());
    }
    if info.isolation.egress() {
        types.push("Egress".to_string());
    }
    if types.is_empty() {
        return None;
    }
    let mut locations: Vec<(String, usize)> = info
        .declarations
        .iter()
        .map(|s| (sources.name(s.file).to_string(), sources.line_of(*s)))
        .collect();
    locations.sort();
    locations.dedup();
    let source = locations.iter().map(|(f, l)| format!("{f}:{l}")).collect::<Vec<_>>().join(", ");
    let annotations = BTreeMap::from([(format!("{}/source", config.annotation_prefix), source)]);
    Some(net::NetworkPolicy {
        metadata: object_meta(ns, DEFAULT_DENY.to_string(), annotations),
        spec: Some(net::NetworkPolicySpec {
            pod_selector: Some(meta::LabelSelector::default()),
            policy_types: Some(types),
            ..Default::default()
        }),
    })
}

fn build(ns: String, name: String, pair: &Pair, program: &Program, config: &Config) -> net::NetworkPolicy {
    let prefix = &config.annotation_prefix;
    let origins: Vec<&Origin> = pair.origins.iter().map(|&i| &program.origins[i]).collect();
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    annotations.insert(
        format!("{prefix}/source"),
        distinct(origins.iter().map(|o| o.location.as_str())).join(", "),
    );
    annotations.insert(
        format!("{prefix}/intent"),
        distinct(origins.iter().map(|o| o.text.as_str())).join("\n"),
    );
    let mut metadata: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for origin in &origins {
        for (k, v) in &origin.metadata {
            let values = metadata.entry(k.as_str()).or_default();
            if !values.contains(&v.as_str()) {
                values.push(v);
            }
        }
    }
    for (k, v) in metadata {
        annotations.insert(k.to_string(), v.join(", "));
    }

    let peers = render_peers(pair.peer, &ns);
    let ports = pair.ports.as_ref().map(|ports| ports.iter().map(render_port).collect());
    let pod_selector = match pair.local {
        Peer::Pods { pods, .. } => selector(pods),
        Peer::Ips { .. } => meta::LabelSelector::default(),
    };
    let mut spec = net::NetworkPolicySpec {
        pod_selector: Some(pod_selector),
        ..Default::default()
    };
    match pair.direction {
        Direction::Egress => {
            spec.policy_types = Some(vec!["Egress".into()]);
            spec.egress = Some(vec![net::NetworkPolicyEgressRule { to: Some(peers), ports }]);
        }
        Direction::Ingress => {
            spec.policy_types = Some(vec!["Ingress".into()]);
            spec.ingress = Some(vec![net::NetworkPolicyIngressRule { from: Some(peers), ports }]);
        }
    }
    net::NetworkPolicy {
        metadata: object_meta(&ns, name, annotations),
        spec: Some(spec),
    }
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The peer as seen from a policy in `namespace`: one list item per peer,
/// namespace and pod selectors ANDed in the same item.
fn render_peers(peer: &Peer, namespace: &str) -> Vec<net::NetworkPolicyPeer> {
    match peer {
        Peer::Pods { namespaces, pods, .. } => {
            let namespace_selector = match namespaces {
                Namespaces::Named(ns) if ns == namespace => None,
                Namespaces::Named(ns) => Some(selector(&LabelSelector::label("kubernetes.io/metadata.name", ns))),
                Namespaces::Selected(sel) => Some(selector(sel)),
            };
            let pod_selector = if namespace_selector.is_some() && pods.is_empty() {
                None
            } else {
                Some(selector(pods))
            };
            vec![net::NetworkPolicyPeer {
                namespace_selector,
                pod_selector,
                ip_block: None,
            }]
        }
        Peer::Ips { blocks, .. } => blocks
            .iter()
            .map(|b| net::NetworkPolicyPeer {
                ip_block: Some(net::IPBlock {
                    cidr: b.cidr.clone(),
                    except: (!b.except.is_empty()).then(|| b.except.clone()),
                }),
                ..Default::default()
            })
            .collect(),
    }
}

fn render_port(port: &PortSpec) -> net::NetworkPolicyPort {
    let (number, end_port) = match &port.port {
        PortNumber::Single(p) => (IntOrString::Int(i32::from(*p)), None),
        PortNumber::Range(a, b) => (IntOrString::Int(i32::from(*a)), Some(i32::from(*b))),
        PortNumber::Named(n) => (IntOrString::String(n.clone()), None),
    };
    net::NetworkPolicyPort {
        protocol: Some(port.protocol.as_str().to_string()),
        port: Some(number),
        end_port,
    }
}

fn selector(sel: &LabelSelector) -> meta::LabelSelector {
    meta::LabelSelector {
        match_labels: (!sel.labels.is_empty()).then(|| sel.labels.clone()),
        match_expressions: (!sel.expressions.is_empty()).then(|| {
            sel.expressions
                .iter()
                .map(|e| meta::LabelSelectorRequirement {
                    key: e.key.clone(),
                    operator: e.operator.as_str().to_string(),
                    values: (!e.values.is_empty()).then(|| e.values.clone()),
                })
                .collect()
        }),
    }
}
