//! Seeded synthetic clusters and policies that resemble real ones, for the
//! benchmarks and scale tests of [`crate::reach`].
//!
//! The shape follows what the field notes describe: Deployments (many pods
//! share their labels, plus a per-Deployment `pod-template-hash` no selector
//! mentions), namespaces labelled with a team and an environment, and per
//! namespace, in this order: a default-deny (for ingress, and for egress in
//! every third namespace), DNS egress to `kube-system` where egress is
//! denied and ingress from the same namespace elsewhere, then policies per
//! application, their kinds rotating across namespaces (ingress from the
//! application upstream in the same namespace on a named or numeric port,
//! ingress from the frontends of the team's namespaces, egress to the
//! application downstream, metrics scraping from `monitoring` on a named
//! port, HTTPS egress to the internet as an `ipBlock` with `except`, a
//! partner `ipBlock` on an `endPort` range, and `matchExpressions`
//! selectors). The same shape and seed always give the same output.

use crate::evaluate::{Cluster, NamedPort, Namespace, Pod, Protocol};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::{IpAddr, Ipv4Addr};

/// SplitMix64: a small, fast, seedable generator (not for cryptography).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The size of a synthetic cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Application namespaces (`kube-system` and `monitoring` come on top).
    pub namespaces: usize,
    /// Application pods, spread evenly over the application namespaces
    /// (two CoreDNS pods and one Prometheus pod come on top).
    pub pods: usize,
    /// Policies, spread evenly over the application namespaces.
    pub policies: usize,
    /// The seed.
    pub seed: u64,
}

/// A generated cluster, its policies and external addresses of interest.
#[derive(Clone, Debug)]
pub struct Synthetic {
    /// Namespaces and pods.
    pub cluster: Cluster,
    /// The policies.
    pub policies: Vec<NetworkPolicy>,
    /// A few external addresses (public, private, partner, IPv6).
    pub externals: Vec<IpAddr>,
}

/// An application role: name, tier, named ports (name, number).
type Role = (&'static str, &'static str, &'static [(&'static str, u16)]);

const ROLES: &[Role] = &[
    ("web", "frontend", &[("http", 8080), ("metrics", 9100)]),
    ("api", "backend", &[("http", 8080), ("grpc", 9090), ("metrics", 9100)]),
    ("worker", "backend", &[("metrics", 9100)]),
    ("db", "data", &[("pg", 5432), ("metrics", 9187)]),
    ("cache", "data", &[("redis", 6379)]),
    ("auth", "backend", &[("http", 8443), ("metrics", 9100)]),
    ("search", "data", &[("http", 9200), ("transport", 9300)]),
    ("queue", "data", &[("amqp", 5672), ("metrics", 15692)]),
];

const ENVS: &[&str] = &["prod", "staging", "dev"];

fn selector(labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
        match_expressions: None,
    }
}

fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn pods_peer(labels: &[(&str, &str)]) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(selector(labels)),
        ..Default::default()
    }
}

fn ns_peer(namespace: &[(&str, &str)], pods: Option<&[(&str, &str)]>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(selector(namespace)),
        pod_selector: pods.map(selector),
        ..Default::default()
    }
}

fn block_peer(cidr: &str, except: &[&str]) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.to_owned(),
            except: (!except.is_empty()).then(|| except.iter().map(|e| (*e).to_owned()).collect()),
        }),
        ..Default::default()
    }
}

fn port(protocol: &str, number: i32, end: Option<i32>) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: Some(IntOrString::Int(number)),
        end_port: end,
    }
}

fn named_port(name: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some("TCP".to_owned()),
        port: Some(IntOrString::String(name.to_owned())),
        end_port: None,
    }
}

fn policy(
    namespace: &str,
    name: String,
    pods: LabelSelector,
    types: &[&str],
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods),
            policy_types: Some(types.iter().map(|t| (*t).to_owned()).collect()),
            ingress: (!ingress.is_empty()).then_some(ingress),
            egress: (!egress.is_empty()).then_some(egress),
        }),
    }
}

fn ingress(from: Vec<NetworkPolicyPeer>, ports: Vec<NetworkPolicyPort>) -> NetworkPolicyIngressRule {
    NetworkPolicyIngressRule {
        from: Some(from),
        ports: Some(ports),
    }
}

fn egress(to: Vec<NetworkPolicyPeer>, ports: Vec<NetworkPolicyPort>) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(to),
        ports: Some(ports),
    }
}

fn share(total: usize, parts: usize, i: usize) -> usize {
    if parts == 0 {
        return 0;
    }
    total / parts + usize::from(i < total % parts)
}

fn pod_ip(n: usize) -> IpAddr {
    let n = (n + 1) as u32;
    IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

/// Generates a cluster and policies of this shape.
pub fn generate(shape: &Shape) -> Synthetic {
    let mut rng = Rng::new(shape.seed);
    let namespaces = shape.namespaces.max(1);
    let teams = (namespaces / 20).max(1);
    let mut cluster = Cluster::new();
    cluster.namespaces.reserve(namespaces + 2);
    cluster.pods.reserve(shape.pods + 3);

    cluster
        .namespaces
        .push(Namespace::new("kube-system").with_label("team", "platform"));
    cluster.namespaces.push(Namespace::new("monitoring").with_label("team", "platform"));
    for i in 0..2 {
        let mut pod = Pod::new("kube-system", format!("coredns-5d78c9869d-{i}"))
            .with_label("k8s-app", "kube-dns")
            .with_label("pod-template-hash", "5d78c9869d")
            .with_ip(IpAddr::V4(Ipv4Addr::new(10, 255, 0, 10 + i)));
        pod.ports = vec![
            NamedPort {
                name: "dns".into(),
                port: 53,
                protocol: Protocol::Udp,
            },
            NamedPort {
                name: "dns-tcp".into(),
                port: 53,
                protocol: Protocol::Tcp,
            },
        ];
        cluster.pods.push(pod);
    }
    cluster.pods.push(
        Pod::new("monitoring", "prometheus-0")
            .with_label("app", "prometheus")
            .with_ip(IpAddr::V4(Ipv4Addr::new(10, 255, 0, 20))),
    );

    // Namespaces, Deployments, pods.
    let mut apps_of: Vec<usize> = Vec::with_capacity(namespaces);
    let mut pod_number = 0usize;
    for i in 0..namespaces {
        let name = format!("ns-{i:05}");
        let team = format!("team-{:03}", i % teams);
        cluster.namespaces.push(
            Namespace::new(name.clone())
                .with_label("team", team)
                .with_label("env", ENVS[i % ENVS.len()]),
        );
        let pods = share(shape.pods, namespaces, i);
        let apps = ((pods as f64).sqrt().round() as usize).clamp(usize::from(pods > 0), ROLES.len());
        apps_of.push(apps.max(1));
        for a in 0..apps {
            let (role, tier, ports) = ROLES[(i + a) % ROLES.len()];
            let hash = format!("{:010x}", rng.next_u64() & 0xff_ffff_ffff);
            let version = if rng.percent(20) { "v2" } else { "v1" };
            for r in 0..share(pods, apps, a) {
                let mut pod = Pod::new(name.clone(), format!("{role}-{hash}-{r}"))
                    .with_label("app", role)
                    .with_label("tier", tier)
                    .with_label("version", version)
                    .with_label("pod-template-hash", hash.clone());
                // A few pods are pending: no IP yet.
                if !rng.percent(1) {
                    pod.ip = Some(pod_ip(pod_number));
                }
                pod.ports = ports
                    .iter()
                    .map(|(n, p)| NamedPort {
                        name: (*n).to_owned(),
                        port: *p,
                        protocol: Protocol::Tcp,
                    })
                    .collect();
                cluster.pods.push(pod);
                pod_number += 1;
            }
        }
    }

    // Policies.
    let mut policies = Vec::with_capacity(shape.policies);
    for (i, &apps) in apps_of.iter().enumerate() {
        let ns = format!("ns-{i:05}");
        let team = format!("team-{:03}", i % teams);
        // Every third namespace denies egress by default too.
        let egress_isolated = i % 3 == 0;
        for k in 0..share(shape.policies, namespaces, i) {
            let p = match k {
                0 if egress_isolated => policy(&ns, "default-deny".into(), selector(&[]), &["Ingress", "Egress"], vec![], vec![]),
                0 => policy(&ns, "default-deny".into(), selector(&[]), &["Ingress"], vec![], vec![]),
                1 if egress_isolated => policy(
                    &ns,
                    "allow-dns".into(),
                    selector(&[]),
                    &["Egress"],
                    vec![],
                    vec![egress(
                        vec![ns_peer(
                            &[("kubernetes.io/metadata.name", "kube-system")],
                            Some(&[("k8s-app", "kube-dns")]),
                        )],
                        vec![port("UDP", 53, None), port("TCP", 53, None)],
                    )],
                ),
                1 => policy(
                    &ns,
                    "allow-same-namespace".into(),
                    selector(&[]),
                    &["Ingress"],
                    vec![NetworkPolicyIngressRule {
                        from: Some(vec![pods_peer(&[])]),
                        ports: None,
                    }],
                    vec![],
                ),
                _ => {
                    // Rotate the kinds across namespaces, so that every
                    // kind appears even with few policies per namespace.
                    let k = k - 2 + i;
                    let a = (k / 7) % apps;
                    let (role, _, ports) = ROLES[(i + a) % ROLES.len()];
                    let (up, _, _) = ROLES[(i + a + apps - 1) % ROLES.len()];
                    let (down, _, down_ports) = ROLES[(i + a + 1) % ROLES.len()];
                    let first_port = ports.first().map_or("http", |p| p.0);
                    let app = [("app", role)];
                    match k % 7 {
                        0 => policy(
                            &ns,
                            format!("{role}-from-{up}-{k}"),
                            selector(&app),
                            &["Ingress"],
                            vec![ingress(
                                vec![pods_peer(&[("app", up)])],
                                vec![if rng.percent(50) {
                                    named_port(first_port)
                                } else {
                                    port("TCP", i32::from(ports.first().map_or(8080, |p| p.1)), None)
                                }],
                            )],
                            vec![],
                        ),
                        1 => policy(
                            &ns,
                            format!("{role}-from-team-{k}"),
                            selector(&app),
                            &["Ingress"],
                            vec![ingress(
                                vec![ns_peer(&[("team", &team)], Some(&[("tier", "frontend")]))],
                                vec![port("TCP", 8080, None), port("TCP", 443, None)],
                            )],
                            vec![],
                        ),
                        2 => policy(
                            &ns,
                            format!("{role}-to-{down}-{k}"),
                            selector(&app),
                            &["Egress"],
                            vec![],
                            vec![egress(
                                vec![pods_peer(&[("app", down)])],
                                vec![named_port(down_ports.first().map_or("http", |p| p.0))],
                            )],
                        ),
                        3 => policy(
                            &ns,
                            format!("{role}-metrics-{k}"),
                            selector(&app),
                            &["Ingress"],
                            vec![ingress(
                                vec![ns_peer(
                                    &[("kubernetes.io/metadata.name", "monitoring")],
                                    Some(&[("app", "prometheus")]),
                                )],
                                vec![named_port("metrics")],
                            )],
                            vec![],
                        ),
                        4 => policy(
                            &ns,
                            format!("{role}-to-internet-{k}"),
                            selector(&app),
                            &["Egress"],
                            vec![],
                            vec![egress(
                                vec![block_peer("0.0.0.0/0", &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])],
                                vec![port("TCP", 443, None)],
                            )],
                        ),
                        5 => {
                            let partner = format!("203.0.113.{}/32", rng.below(8) * 16);
                            policy(
                                &ns,
                                format!("{role}-to-partner-{k}"),
                                selector(&app),
                                &["Egress"],
                                vec![],
                                vec![egress(
                                    vec![block_peer(&partner, &[]), block_peer("198.51.100.0/24", &["198.51.100.128/25"])],
                                    vec![port("TCP", 8443, Some(8453))],
                                )],
                            )
                        }
                        _ => {
                            let pods = LabelSelector {
                                match_expressions: Some(vec![
                                    expression("tier", "In", &["backend", "data"]),
                                    expression("version", "NotIn", &["v0"]),
                                ]),
                                match_labels: None,
                            };
                            let namespaces = LabelSelector {
                                match_expressions: Some(vec![expression("env", "NotIn", &["dev"]), expression("team", "Exists", &[])]),
                                match_labels: None,
                            };
                            let from = NetworkPolicyPeer {
                                namespace_selector: Some(namespaces),
                                pod_selector: Some(selector(&[("tier", "backend")])),
                                ip_block: None,
                            };
                            policy(
                                &ns,
                                format!("data-from-backends-{k}"),
                                pods,
                                &["Ingress"],
                                vec![ingress(vec![from], vec![port("TCP", 5432, None), port("TCP", 6379, None)])],
                                vec![],
                            )
                        }
                    }
                }
            };
            policies.push(p);
        }
    }

    let externals = [
        "8.8.8.8",
        "1.1.1.1",
        "203.0.113.16",
        "203.0.113.200",
        "198.51.100.20",
        "198.51.100.200",
        "10.255.255.1",
        "192.168.1.1",
        "2001:db8::1",
    ]
    .iter()
    .filter_map(|a| a.parse().ok())
    .collect();
    Synthetic {
        cluster,
        policies,
        externals,
    }
}

/// A new version of `policies`: about `per_mille`/1000 of them are changed
/// (a port moved, a peer widened to the whole team, or the policy removed),
/// and as many new allow policies are added.
pub fn mutate(policies: &[NetworkPolicy], seed: u64, per_mille: usize) -> Vec<NetworkPolicy> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(policies.len());
    let mut added = 0usize;
    for p in policies {
        if rng.below(1000) >= per_mille {
            out.push(p.clone());
            continue;
        }
        let mut p = p.clone();
        match rng.below(3) {
            0 => continue,
            1 => {
                if let Some(spec) = p.spec.as_mut() {
                    for rule in spec.ingress.iter_mut().flatten() {
                        for port in rule.ports.iter_mut().flatten() {
                            if let Some(IntOrString::Int(n)) = &mut port.port {
                                *n += 1;
                            }
                        }
                    }
                    for rule in spec.egress.iter_mut().flatten() {
                        for port in rule.ports.iter_mut().flatten() {
                            if let Some(IntOrString::Int(n)) = &mut port.port {
                                *n += 1;
                            }
                        }
                    }
                }
            }
            _ => {
                if let Some(spec) = p.spec.as_mut() {
                    for rule in spec.ingress.iter_mut().flatten() {
                        for peer in rule.from.iter_mut().flatten() {
                            peer.pod_selector = None;
                            if peer.namespace_selector.is_none() && peer.ip_block.is_none() {
                                peer.namespace_selector = Some(selector(&[("env", "prod")]));
                            }
                        }
                    }
                }
            }
        }
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        out.push(p);
        added += 1;
        out.push(policy(
            &ns,
            format!("added-{added}"),
            selector(&[("tier", "backend")]),
            &["Ingress"],
            vec![ingress(
                vec![ns_peer(&[("env", "staging")], None)],
                vec![port("TCP", 8000, Some(8099))],
            )],
            vec![],
        ));
    }
    out
}
