//! A cluster model synthesised from the intents: a representative pod for
//! every workload and selector, an outsider pod per namespace, namespaces
//! for label-chosen peers, addresses inside and outside every IP block, and
//! the ports worth probing. `verify`, `expect` and `explain` evaluate the
//! emitted policies on it.

use crate::config::{Config, DnsLocation};
use crate::evaluate::{Cluster, Endpoint, LabelSource, Pod};
use crate::ir::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The label every outsider pod carries, and nothing else: it matches only
/// selectors that match everything (or that exclude labels it lacks).
pub const OUTSIDER_LABEL: (&str, &str) = ("netpolc.io/model", "outsider");

/// A namespace that no intent names, standing for every such namespace.
pub const OUTSIDE_NAMESPACE: &str = "netpolc-elsewhere";

/// The synthesised model.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Namespaces and pods.
    pub cluster: Cluster,
    /// Addresses outside the cluster worth probing.
    pub addresses: Vec<IpAddr>,
    /// Ports worth probing: every port an intent names, the edges of ranges
    /// and just past them, named ports' numbers, and one port nobody names.
    pub ports: Vec<(u16, Protocol)>,
}

impl Model {
    /// Every endpoint: the pods, then the addresses.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        (0..self.cluster.pods.len())
            .map(Endpoint::Pod)
            .chain(self.addresses.iter().map(|ip| Endpoint::Ip(*ip)))
            .collect()
    }

    /// The endpoints a peer stands for.
    pub fn members(&self, peer: &Peer) -> Vec<Endpoint> {
        self.endpoints()
            .into_iter()
            .filter(|e| peer_contains(peer, &self.cluster, e))
            .collect()
    }
}

impl Model {
    /// Adds the ports and addresses that emitted policies mention, so that
    /// a policy allowing more than the intents is probed where it differs.
    pub fn probe_policies(&mut self, policies: &[k8s_openapi::api::networking::v1::NetworkPolicy]) {
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let mut ports: BTreeSet<(u16, Protocol)> = self.ports.iter().copied().collect();
        let mut blocks: Vec<IpBlock> = Vec::new();
        for policy in policies {
            let Some(spec) = &policy.spec else { continue };
            let rules = spec
                .ingress
                .iter()
                .flatten()
                .map(|r| (r.from.as_deref(), r.ports.as_deref()))
                .chain(spec.egress.iter().flatten().map(|r| (r.to.as_deref(), r.ports.as_deref())));
            for (peers, policy_ports) in rules {
                for port in policy_ports.unwrap_or_default() {
                    let protocol = port.protocol.as_deref().and_then(Protocol::from_api).unwrap_or(Protocol::Tcp);
                    if let Some(IntOrString::Int(start)) = port.port {
                        let end = port.end_port.unwrap_or(start);
                        for p in [start - 1, start, end, end + 1] {
                            if let Ok(p) = u16::try_from(p)
                                && p >= 1
                            {
                                ports.insert((p, protocol));
                            }
                        }
                    }
                }
                for peer in peers.unwrap_or_default() {
                    if let Some(b) = &peer.ip_block {
                        blocks.push(IpBlock {
                            cidr: b.cidr.clone(),
                            except: b.except.clone().unwrap_or_default(),
                        });
                    }
                }
            }
        }
        self.ports = ports.into_iter().collect();
        let mut addresses: BTreeSet<IpAddr> = self.addresses.iter().copied().collect();
        addresses.extend(self::addresses(&blocks.iter().collect::<Vec<_>>()));
        self.addresses = addresses.into_iter().collect();
    }
}

/// Whether `endpoint` is one of the pods or addresses `peer` stands for.
pub fn peer_contains(peer: &Peer, cluster: &Cluster, endpoint: &Endpoint) -> bool {
    match (peer, endpoint) {
        (Peer::Pods { namespaces, pods, .. }, Endpoint::Pod(i)) => {
            let Some(pod) = cluster.pod(*i) else { return false };
            let in_namespace = match namespaces {
                Namespaces::Named(ns) => pod.namespace == *ns,
                Namespaces::Selected(sel) => selector_holds(sel, &cluster.namespace_labels(&pod.namespace)),
            };
            in_namespace && selector_holds(pods, &pod.labels)
        }
        (Peer::Ips { blocks, .. }, Endpoint::Ip(ip)) => blocks.iter().any(|b| block_contains(b, *ip)),
        _ => false,
    }
}

/// Whether an IR block holds an address (inside `cidr`, outside every `except`).
pub fn block_contains(block: &IpBlock, ip: IpAddr) -> bool {
    let parse = |t: &str| crate::cidr::Cidr::parse(t).ok();
    parse(&block.cidr).is_some_and(|c| c.contains_addr(ip)) && !block.except.iter().any(|e| parse(e).is_some_and(|c| c.contains_addr(ip)))
}

/// Whether an IR selector holds for a set of labels.
pub fn selector_holds(sel: &LabelSelector, labels: &impl LabelSource) -> bool {
    sel.labels.iter().all(|(k, v)| labels.label(k) == Some(v.as_str()))
        && sel.expressions.iter().all(|e| {
            let value = labels.label(&e.key);
            match e.operator {
                Operator::In => value.is_some_and(|v| e.values.iter().any(|x| x == v)),
                Operator::NotIn => value.is_none_or(|v| !e.values.iter().any(|x| x == v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
}

/// Whether a port set allows `port`/`protocol` towards `destination`.
pub fn ports_contain(ports: &PortSet, destination: Option<&Pod>, port: u16, protocol: Protocol) -> bool {
    ports.is_all()
        || ports.0.iter().any(|spec| {
            spec.protocol == protocol
                && match &spec.port {
                    PortNumber::Single(p) => *p == port,
                    PortNumber::Range(a, b) => (*a..=*b).contains(&port),
                    PortNumber::Named(name) => destination.is_some_and(|pod| pod.has_named_port(name, protocol, port)),
                }
        })
}

/// Labels that satisfy a selector, if any do.
pub fn satisfying_labels(sel: &LabelSelector) -> Option<BTreeMap<String, String>> {
    let mut labels = sel.labels.clone();
    for e in &sel.expressions {
        match e.operator {
            Operator::In => {
                if !labels.contains_key(&e.key) {
                    labels.insert(e.key.clone(), e.values.first()?.clone());
                }
            }
            Operator::Exists => {
                labels.entry(e.key.clone()).or_insert_with(|| "x".to_string());
            }
            Operator::NotIn | Operator::DoesNotExist => {}
        }
    }
    selector_holds(sel, &labels).then_some(labels)
}

/// Builds the model for a program: every peer of its flows and expectations.
pub fn synthesize(program: &Program, config: &Config) -> Model {
    let mut builder = Builder::default();
    let mut namespaces: BTreeSet<String> = program.namespaces.keys().cloned().collect();
    if let DnsLocation::Pods { namespace, .. } = &config.dns {
        namespaces.insert(namespace.clone());
    }
    namespaces.insert(OUTSIDE_NAMESPACE.to_string());
    for ns in &namespaces {
        builder.cluster.add_namespace(ns, Vec::<(String, String)>::new());
        builder.pod(
            ns,
            "outsider",
            BTreeMap::from([(OUTSIDER_LABEL.0.to_string(), OUTSIDER_LABEL.1.to_string())]),
        );
    }

    let peers: Vec<&Peer> = program
        .flows
        .iter()
        .flat_map(|f| [&*f.source, &*f.target])
        .chain(program.expectations.iter().flat_map(|e| [&e.source, &e.target]))
        .collect();
    let mut named_ports: BTreeSet<(String, Protocol)> = BTreeSet::new();
    let mut port_set: BTreeSet<(u16, Protocol)> = BTreeSet::new();
    let all_ports = program
        .flows
        .iter()
        .map(|f| &f.ports)
        .chain(program.expectations.iter().map(|e| &e.ports));
    for ports in all_ports.chain(std::iter::once(&PortSet(config.dns_ports.clone()))) {
        for spec in &ports.0 {
            match &spec.port {
                PortNumber::Single(p) => {
                    port_set.insert((*p, spec.protocol));
                }
                PortNumber::Range(a, b) => {
                    for p in [a.saturating_sub(1), *a, *b, b.saturating_add(1)] {
                        if p >= 1 {
                            port_set.insert((p, spec.protocol));
                        }
                    }
                }
                PortNumber::Named(name) => {
                    named_ports.insert((name.clone(), spec.protocol));
                }
            }
        }
    }
    // Named ports get numbers of their own, distinct from every other port.
    let mut next_number: u16 = 30000;
    for (name, protocol) in &named_ports {
        while port_set.iter().any(|(p, _)| *p == next_number) {
            next_number += 1;
        }
        builder.named_ports.push((name.clone(), next_number, *protocol));
        port_set.insert((next_number, *protocol));
        next_number += 1;
    }
    // A port nobody names, per protocol.
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        let unnamed = (1..).find(|p| !port_set.contains(&(*p, protocol))).unwrap_or(1);
        port_set.insert((unnamed, protocol));
    }

    let mut blocks: Vec<&IpBlock> = Vec::new();
    for peer in &peers {
        match peer {
            Peer::Pods {
                namespaces: Namespaces::Named(ns),
                pods,
                name,
            } => {
                builder.peer_pod(ns, &name.to_string(), pods);
            }
            Peer::Pods {
                namespaces: Namespaces::Selected(ns_sel),
                pods,
                name,
            } => {
                if ns_sel.is_empty() {
                    for ns in &namespaces {
                        builder.peer_pod(ns, &name.to_string(), pods);
                    }
                } else if let Some(labels) = satisfying_labels(ns_sel) {
                    let ns = format!("ns-{}", crate::check::short_hash(&ns_sel.to_string()));
                    builder.cluster.add_namespace(&ns, labels);
                    builder.pod(
                        &ns,
                        "outsider",
                        BTreeMap::from([(OUTSIDER_LABEL.0.to_string(), OUTSIDER_LABEL.1.to_string())]),
                    );
                    builder.peer_pod(&ns, &name.to_string(), pods);
                }
            }
            Peer::Ips { blocks: b, .. } => blocks.extend(b.iter()),
        }
    }
    let addresses = addresses(&blocks);
    for pod in &mut builder.cluster.pods {
        for (name, number, protocol) in &builder.named_ports {
            pod.ports.push(crate::evaluate::NamedPort {
                name: name.clone(),
                port: *number,
                protocol: *protocol,
            });
        }
    }
    Model {
        cluster: builder.cluster,
        addresses,
        ports: port_set.into_iter().collect(),
    }
}

#[derive(Default)]
struct Builder {
    cluster: Cluster,
    seen: BTreeSet<(String, BTreeMap<String, String>)>,
    named_ports: Vec<(String, u16, Protocol)>,
}

impl Builder {
    fn peer_pod(&mut self, ns: &str, name: &str, selector: &LabelSelector) {
        if let Some(labels) = satisfying_labels(selector) {
            let name = if selector.is_empty() { "any" } else { name };
            self.pod(ns, name, labels);
        }
    }

    fn pod(&mut self, ns: &str, name: &str, labels: BTreeMap<String, String>) {
        if !self.seen.insert((ns.to_string(), labels.clone())) {
            return;
        }
        let mut unique = name.to_string();
        let mut n = 2;
        while self.cluster.pod_index(ns, &unique).is_some() {
            unique = format!("{name}-{n}");
            n += 1;
        }
        let mut pod = Pod::new(ns, unique);
        pod.labels = labels;
        self.cluster.add_pod(pod);
    }
}

/// Addresses inside each block (outside its holes), inside each hole, and
/// a few outside all blocks: public, private and the cloud metadata address.
fn addresses(blocks: &[&IpBlock]) -> Vec<IpAddr> {
    use crate::cidr::Cidr;
    let mut out: BTreeSet<IpAddr> = BTreeSet::new();
    let probes = |c: Cidr| -> Vec<IpAddr> {
        let base = c.canonical().addr;
        let offsets: [u128; 4] = [1, 7, 0, 255];
        offsets
            .iter()
            .filter_map(|o| match base {
                IpAddr::V4(a) => u32::from(a).checked_add(*o as u32).map(|v| IpAddr::V4(v.into())),
                IpAddr::V6(a) => u128::from(a).checked_add(*o).map(|v| IpAddr::V6(v.into())),
            })
            .filter(|ip| c.contains_addr(*ip))
            .collect()
    };
    for block in blocks {
        let Ok(cidr) = Cidr::parse(&block.cidr) else { continue };
        if let Some(ip) = probes(cidr).into_iter().find(|ip| block_contains(block, *ip)) {
            out.insert(ip);
        }
        for hole in &block.except {
            if let Ok(h) = Cidr::parse(hole)
                && let Some(ip) = probes(h).into_iter().next()
            {
                out.insert(ip);
            }
        }
    }
    for fixed in ["198.51.100.7", "10.255.255.254", "169.254.169.254", "2001:db8:ffff::7", "fd12::7"] {
        if let Ok(ip) = fixed.parse() {
            out.insert(ip);
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfying_labels_meet_every_operator() {
        let sel = LabelSelector {
            labels: BTreeMap::from([("app".into(), "web".into())]),
            expressions: vec![
                Expression {
                    key: "tier".into(),
                    operator: Operator::In,
                    values: vec!["a".into(), "b".into()],
                },
                Expression {
                    key: "env".into(),
                    operator: Operator::NotIn,
                    values: vec!["dev".into()],
                },
                Expression {
                    key: "team".into(),
                    operator: Operator::Exists,
                    values: vec![],
                },
                Expression {
                    key: "legacy".into(),
                    operator: Operator::DoesNotExist,
                    values: vec![],
                },
            ],
        };
        let labels = satisfying_labels(&sel).expect("satisfiable");
        assert!(selector_holds(&sel, &labels));
        assert_eq!(labels.get("tier").map(String::as_str), Some("a"));
        assert!(!labels.contains_key("legacy"));
        let impossible = LabelSelector {
            labels: BTreeMap::from([("app".into(), "web".into())]),
            expressions: vec![Expression {
                key: "app".into(),
                operator: Operator::In,
                values: vec!["db".into()],
            }],
        };
        assert_eq!(satisfying_labels(&impossible), None);
    }

    #[test]
    fn model_has_a_pod_per_workload_and_addresses_around_blocks() {
        let out = crate::compile_str(
            "m.np",
            "namespace a\nexternal db = 10.20.0.0/16 except 10.20.5.0/24\nweb -> api:(80, 8000-8100, http), db:5432, allow dns\n",
        );
        assert!(!out.has_errors(), "{}", out.render_diagnostics());
        let model = synthesize(&out.program, &Config::default());
        let names: Vec<String> = model.cluster.pods.iter().map(|p| p.qualified_name()).collect();
        for expected in ["a/web", "a/api", "a/outsider", "kube-system/dns", "netpolc-elsewhere/outsider"] {
            assert!(names.contains(&expected.to_string()), "{expected} in {names:?}");
        }
        let inside: IpAddr = "10.20.0.1".parse().unwrap();
        let hole: IpAddr = "10.20.5.1".parse().unwrap();
        assert!(
            model.addresses.contains(&inside) && model.addresses.contains(&hole),
            "{:?}",
            model.addresses
        );
        for port in [80, 7999, 8000, 8100, 8101, 53] {
            assert!(model.ports.contains(&(port, Protocol::Tcp)), "{port}");
        }
        assert!(model.ports.contains(&(53, Protocol::Udp)));
        assert!(model.cluster.pods.iter().all(|p| p.ports.iter().any(|n| n.name == "http")));
    }
}
