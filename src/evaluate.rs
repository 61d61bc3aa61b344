//! Kubernetes NetworkPolicy semantics (`networking.k8s.io/v1`).
//!
//! This module decides whether a connection between two endpoints of a small
//! cluster model is allowed by a set of [`NetworkPolicy`] objects, following
//! the rules the Kubernetes API documents:
//!
//! - A policy applies to the pods of its own namespace that its
//!   `spec.podSelector` selects (an empty or absent selector selects them all).
//! - A pod is *isolated* for a direction (ingress or egress) when at least one
//!   policy that selects it lists that direction in its (defaulted)
//!   `policyTypes`. A pod that is not isolated for a direction accepts all
//!   traffic in that direction.
//! - Policies are additive: traffic towards or from an isolated pod is allowed
//!   when at least one rule of at least one applicable policy matches it.
//! - A connection is allowed when both its egress side (the source pod) and
//!   its ingress side (the destination pod) allow it. An endpoint that is an
//!   IP address outside the cluster is not subject to policies.
//!
//! The matching logic is split into small public functions
//! ([`selector_matches`], [`peer_matches`], [`port_matches`],
//! [`ingress_rule_matches`], [`egress_rule_matches`], ...) so that tools such
//! as an `explain` command can reuse them. [`evaluate`] returns a detailed
//! [`Verdict`]; [`is_allowed`] answers the same question without allocating.
//!
//! Objects the API server would reject are never a reason to panic: invalid
//! parts (an unknown protocol, a malformed CIDR, an unknown selector operator,
//! a peer with no selector...) simply match nothing. [`crate::validate`] reports
//! them.

use crate::cidr::Cidr;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The label the API server puts on every namespace, holding its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The namespace a policy without `metadata.namespace` is evaluated in (what
/// `kubectl apply` would use with a default context).
pub const DEFAULT_NAMESPACE: &str = "default";

/// A set of labels, as stored on pods and namespaces.
pub type Labels = BTreeMap<String, String>;

// ---------------------------------------------------------------------------
// Cluster model
// ---------------------------------------------------------------------------

pub use crate::ir::{ParseProtocolError, Protocol};

/// A named container port of a pod, the target of a named policy port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPort {
    /// The port's name (`http`, `metrics`...).
    pub name: String,
    /// The port number.
    pub port: u16,
    /// The port's protocol.
    pub protocol: Protocol,
}

/// A namespace and its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// The namespace's name.
    pub name: String,
    /// Its labels; [`Cluster::add_namespace`] always includes
    /// [`NAMESPACE_NAME_LABEL`].
    pub labels: Labels,
}

impl Namespace {
    /// A namespace carrying only the `kubernetes.io/metadata.name` label.
    pub fn new(name: impl Into<String>) -> Namespace {
        let name = name.into();
        let mut labels = Labels::new();
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.clone());
        Namespace { name, labels }
    }

    /// Adds (or replaces) a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Namespace {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// A pod: where it lives, its labels, its IP and its named ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's labels.
    pub labels: Labels,
    /// The pod's IP, which `ipBlock` peers can match; `None` when unknown.
    pub ip: Option<IpAddr>,
    /// The pod's named container ports.
    pub ports: Vec<NamedPort>,
}

impl Pod {
    /// A pod with no labels, no IP and no named ports.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Pod {
        Pod {
            namespace: namespace.into(),
            name: name.into(),
            labels: Labels::new(),
            ip: None,
            ports: Vec::new(),
        }
    }

    /// Adds (or replaces) a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Pod {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the pod IP.
    pub fn with_ip(mut self, ip: IpAddr) -> Pod {
        self.ip = Some(ip);
        self
    }

    /// Adds a named container port.
    pub fn with_port(mut self, name: impl Into<String>, port: u16, protocol: Protocol) -> Pod {
        self.ports.push(NamedPort {
            name: name.into(),
            port,
            protocol,
        });
        self
    }

    /// `namespace/name`.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether the pod has a container port with this name, protocol and
    /// number: the test a named policy port makes.
    pub fn has_named_port(&self, name: &str, protocol: Protocol, port: u16) -> bool {
        self.ports
            .iter()
            .any(|p| p.name == name && p.protocol == protocol && p.port == port)
    }
}

/// The namespaces and pods connections are evaluated in.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    /// The namespaces.
    pub namespaces: Vec<Namespace>,
    /// The pods; an [`Endpoint::Pod`] is an index into this list.
    pub pods: Vec<Pod>,
    /// Namespace name to index, kept by [`Cluster::add_namespace`].
    namespace_index: FxHashMap<String, usize>,
    /// `(namespace, pod)` to index, kept by [`Cluster::add_pod`].
    pod_index: FxHashMap<(String, String), usize>,
}

impl PartialEq for Cluster {
    fn eq(&self, other: &Self) -> bool {
        self.namespaces == other.namespaces && self.pods == other.pods
    }
}

impl Eq for Cluster {}

impl Cluster {
    /// An empty cluster.
    pub fn new() -> Cluster {
        Cluster::default()
    }

    /// The namespace with this name, if declared.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespace_position(name).and_then(|i| self.namespaces.get(i))
    }

    /// The index of a namespace. The fields are public, so the index is only
    /// trusted while it covers every namespace; otherwise this scans.
    fn namespace_position(&self, name: &str) -> Option<usize> {
        if self.namespace_index.len() == self.namespaces.len() {
            self.namespace_index.get(name).copied()
        } else {
            self.namespaces.iter().position(|ns| ns.name == name)
        }
    }

    /// Declares a namespace, or adds labels to an existing one, and returns
    /// its index in [`Cluster::namespaces`]. The namespace always carries
    /// `kubernetes.io/metadata.name=<name>`, whatever `labels` says.
    pub fn add_namespace<I, K, V>(&mut self, name: &str, labels: I) -> usize
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let index = match self.namespace_position(name) {
            Some(index) => index,
            None => {
                self.namespaces.push(Namespace::new(name));
                let index = self.namespaces.len() - 1;
                if self.namespace_index.len() + 1 == self.namespaces.len() {
                    self.namespace_index.insert(name.to_owned(), index);
                }
                index
            }
        };
        if let Some(namespace) = self.namespaces.get_mut(index) {
            for (key, value) in labels {
                namespace.labels.insert(key.into(), value.into());
            }
            namespace.labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
        }
        index
    }

    /// Adds a pod, declaring its namespace if needed, and returns its index
    /// (the value of its [`Endpoint::Pod`]). A pod with the same namespace and
    /// name is replaced and keeps its index.
    pub fn add_pod(&mut self, pod: Pod) -> usize {
        let namespace = pod.namespace.clone();
        self.add_namespace(&namespace, std::iter::empty::<(String, String)>());
        match self.pod_index(&pod.namespace, &pod.name) {
            Some(index) => {
                self.pods[index] = pod;
                index
            }
            None => {
                let key = (pod.namespace.clone(), pod.name.clone());
                self.pods.push(pod);
                let index = self.pods.len() - 1;
                if self.pod_index.len() + 1 == self.pods.len() {
                    self.pod_index.insert(key, index);
                }
                index
            }
        }
    }

    /// Sorts namespaces by name and pods by namespace and name, keeping the
    /// look-up indexes right (sorting the public lists directly would not).
    pub fn sort(&mut self) {
        self.namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        self.pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.namespace_index = self.namespaces.iter().enumerate().map(|(i, ns)| (ns.name.clone(), i)).collect();
        self.pod_index = self
            .pods
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.namespace.clone(), p.name.clone()), i))
            .collect();
    }

    /// The index of the pod `namespace/name`.
    pub fn pod_index(&self, namespace: &str, name: &str) -> Option<usize> {
        if self.pod_index.len() == self.pods.len() {
            self.pod_index.get(&(namespace.to_owned(), name.to_owned())).copied()
        } else {
            self.pods.iter().position(|p| p.namespace == namespace && p.name == name)
        }
    }

    /// The pod at this index.
    pub fn pod(&self, index: usize) -> Option<&Pod> {
        self.pods.get(index)
    }

    /// The labels of the namespace `name` as a namespace selector sees them.
    /// An undeclared namespace has only its `kubernetes.io/metadata.name`
    /// label, which is always present whatever the declared labels say.
    pub fn namespace_labels<'a>(&'a self, name: &'a str) -> NamespaceLabels<'a> {
        NamespaceLabels {
            name,
            labels: self.namespace(name).map(|ns| &ns.labels),
        }
    }

    /// The pod an endpoint is, if it is a pod of this cluster.
    pub fn endpoint_pod(&self, endpoint: &Endpoint) -> Option<&Pod> {
        match endpoint {
            Endpoint::Pod(index) => self.pods.get(*index),
            Endpoint::Ip(_) => None,
        }
    }

    /// The IP of an endpoint: its address, or the pod's IP if it has one.
    pub fn endpoint_ip(&self, endpoint: &Endpoint) -> Option<IpAddr> {
        match endpoint {
            Endpoint::Pod(index) => self.pods.get(*index).and_then(|p| p.ip),
            Endpoint::Ip(ip) => Some(*ip),
        }
    }

    /// A human-readable name: `namespace/name` for a pod, the address for an
    /// IP, `pod #N (unknown)` for an index that is not in the cluster.
    pub fn endpoint_name(&self, endpoint: &Endpoint) -> String {
        match endpoint {
            Endpoint::Pod(index) => match self.pods.get(*index) {
                Some(pod) => pod.qualified_name(),
                None => format!("pod #{index} (unknown)"),
            },
            Endpoint::Ip(ip) => ip.to_string(),
        }
    }

    /// `SRC -> DST:PORT/PROTO`, IPv6 destinations in brackets.
    pub fn describe_connection(&self, conn: &Connection) -> String {
        let destination = match conn.destination {
            Endpoint::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            ref other => self.endpoint_name(other),
        };
        format!(
            "{} -> {}:{}/{}",
            self.endpoint_name(&conn.source),
            destination,
            conn.port,
            conn.protocol
        )
    }
}

/// Something that can answer "what is the value of label `key`?".
pub trait LabelSource {
    /// The value of label `key`, or `None` when the label is absent.
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSource for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// The labels of a namespace, `kubernetes.io/metadata.name` included.
#[derive(Clone, Copy, Debug)]
pub struct NamespaceLabels<'a> {
    /// The namespace's name.
    pub name: &'a str,
    /// Its declared labels, if the namespace is declared.
    pub labels: Option<&'a Labels>,
}

impl LabelSource for NamespaceLabels<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        if key == NAMESPACE_NAME_LABEL {
            return Some(self.name);
        }
        self.labels.and_then(|labels| labels.label(key))
    }
}

/// One end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A pod of the cluster: an index into [`Cluster::pods`].
    Pod(usize),
    /// An IP address outside the cluster.
    Ip(IpAddr),
}

/// A connection attempt from `source` to `destination` on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Connection {
    /// Who opens the connection.
    pub source: Endpoint,
    /// Who receives it.
    pub destination: Endpoint,
    /// The destination port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl Connection {
    /// A connection.
    pub fn new(source: Endpoint, destination: Endpoint, port: u16, protocol: Protocol) -> Self {
        Connection {
            source,
            destination,
            port,
            protocol,
        }
    }

    /// A TCP connection.
    pub fn tcp(source: Endpoint, destination: Endpoint, port: u16) -> Self {
        Connection::new(source, destination, port, Protocol::Tcp)
    }
}

// ---------------------------------------------------------------------------
// Verdicts
// ---------------------------------------------------------------------------

/// A traffic direction, relative to the pod a policy selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Traffic into the selected pod (`spec.ingress`, matched on the source).
    Ingress,
    /// Traffic out of the selected pod (`spec.egress`, matched on the
    /// destination).
    Egress,
}

impl Direction {
    /// `"Ingress"` or `"Egress"`, as in `policyTypes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }

    /// The spec field holding this direction's rules: `ingress` or `egress`.
    pub fn field(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy, by position and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyRef {
    /// Index of the policy in the slice given to [`evaluate`].
    pub policy: usize,
    /// The policy's namespace (see [`policy_namespace`]).
    pub namespace: String,
    /// The policy's name (empty when unset).
    pub name: String,
}

impl PolicyRef {
    fn of(index: usize, policy: &NetworkPolicy) -> PolicyRef {
        PolicyRef {
            policy: index,
            namespace: policy_namespace(policy).to_owned(),
            name: policy_name(policy).to_owned(),
        }
    }
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One rule of one policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RuleRef {
    /// Index of the policy in the slice given to [`evaluate`].
    pub policy: usize,
    /// The policy's namespace.
    pub namespace: String,
    /// The policy's name.
    pub name: String,
    /// Whether the rule is in `spec.ingress` or `spec.egress`.
    pub direction: Direction,
    /// The rule's index in that list.
    pub rule: usize,
}

impl fmt::Display for RuleRef {
    /// `namespace/name spec.ingress[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} spec.{}[{}]", self.namespace, self.name, self.direction.field(), self.rule)
    }
}

/// How one side (egress for the source, ingress for the destination) judged
/// a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SideVerdict {
    /// The endpoint is an IP address, not a pod: policies do not apply.
    NotAPod,
    /// The endpoint is [`Endpoint::Pod`] with an index that is not in the
    /// cluster: the connection is not allowed.
    UnknownPod(usize),
    /// No policy isolates the pod in this direction: allowed.
    NotIsolated,
    /// The pod is isolated and these rules (all of those that match, in
    /// policy then rule order) allow the connection.
    Allowed(Vec<RuleRef>),
    /// The pod is isolated by these policies and none of their rules match.
    Denied {
        /// Every policy that selects the pod for this direction.
        isolated_by: Vec<PolicyRef>,
    },
}

impl SideVerdict {
    /// Whether this side lets the connection through.
    pub fn permits(&self) -> bool {
        matches!(self, SideVerdict::NotAPod | SideVerdict::NotIsolated | SideVerdict::Allowed(_))
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl SideVerdict {
    /// The verdict of a side from the policies that isolate the pod and the
    /// rules that allow the connection.
    pub fn from_parts(isolated_by: Vec<PolicyRef>, allowed_by: Vec<RuleRef>) -> SideVerdict {
        if isolated_by.is_empty() {
            SideVerdict::NotIsolated
        } else if allowed_by.is_empty() {
            SideVerdict::Denied { isolated_by }
        } else {
            SideVerdict::Allowed(allowed_by)
        }
    }
}

impl fmt::Display for SideVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideVerdict::NotAPod => f.write_str("not a pod, not evaluated"),
            SideVerdict::UnknownPod(index) => write!(f, "pod #{index} is not in the cluster"),
            SideVerdict::NotIsolated => f.write_str("not isolated, allowed"),
            SideVerdict::Allowed(rules) => {
                f.write_str("allowed by ")?;
                write_list(f, rules)
            }
            SideVerdict::Denied { isolated_by } => {
                f.write_str("denied: isolated by ")?;
                write_list(f, isolated_by)?;
                f.write_str(" and no rule matches")
            }
        }
    }
}

/// The outcome of [`evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the connection is allowed: both sides permit it.
    pub allowed: bool,
    /// The source pod's egress side.
    pub egress: SideVerdict,
    /// The destination pod's ingress side.
    pub ingress: SideVerdict,
}

impl fmt::Display for Verdict {
    /// `allowed (egress: ...; ingress: ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (egress: {}; ingress: {})",
            if self.allowed { "allowed" } else { "denied" },
            self.egress,
            self.ingress
        )
    }
}

// ---------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------

/// Whether a label selector matches a set of labels: every `matchLabels`
/// entry is equal and every `matchExpressions` requirement holds. An empty
/// selector matches everything.
pub fn selector_matches(selector: &LabelSelector, labels: &impl LabelSource) -> bool {
    let labels_ok = selector
        .match_labels
        .as_ref()
        .is_none_or(|wanted| wanted.iter().all(|(key, value)| labels.label(key) == Some(value.as_str())));
    labels_ok
        && selector
            .match_expressions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .all(|requirement| requirement_matches(requirement, labels))
}

/// Whether one `matchExpressions` requirement holds: `In` (the key is present
/// with one of the values), `NotIn` (the key is absent or its value is not
/// one of them), `Exists`, `DoesNotExist`. An unknown operator never holds.
pub fn requirement_matches(requirement: &LabelSelectorRequirement, labels: &impl LabelSource) -> bool {
    let value = labels.label(&requirement.key);
    let values = requirement.values.as_deref().unwrap_or_default();
    let listed = |v: &str| values.iter().any(|candidate| candidate == v);
    match requirement.operator.as_str() {
        "In" => value.is_some_and(listed),
        "NotIn" => value.is_none_or(|v| !listed(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// The namespace a policy lives in: `metadata.namespace`, or
/// [`DEFAULT_NAMESPACE`] when unset.
pub fn policy_namespace(policy: &NetworkPolicy) -> &str {
    policy.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

/// The policy's `metadata.name`, or `""` when unset.
pub fn policy_name(policy: &NetworkPolicy) -> &str {
    policy.metadata.name.as_deref().unwrap_or("")
}

/// Whether the policy applies to the pod: the pod is in the policy's
/// namespace and `spec.podSelector` (all pods when empty or absent) matches
/// it. A policy without `spec` behaves like `spec: {}`.
pub fn policy_selects(policy: &NetworkPolicy, pod: &Pod) -> bool {
    pod.namespace == policy_namespace(policy)
        && policy
            .spec
            .as_ref()
            .and_then(|spec| spec.pod_selector.as_ref())
            .is_none_or(|selector| selector_matches(selector, &pod.labels))
}

/// The directions a policy isolates its pods for, after defaulting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PolicyTypes {
    /// `Ingress` is in effect.
    pub ingress: bool,
    /// `Egress` is in effect.
    pub egress: bool,
}

impl PolicyTypes {
    /// Whether this direction is in effect.
    pub fn contains(self, direction: Direction) -> bool {
        match direction {
            Direction::Ingress => self.ingress,
            Direction::Egress => self.egress,
        }
    }
}

/// The policy's effective `policyTypes`. When the field is absent or empty,
/// the API server defaults it to `Ingress`, plus `Egress` when `spec.egress`
/// holds at least one rule (Kubernetes tests `len(egress) != 0`, so
/// `egress: []` alone does *not* imply `Egress`). Unknown entries are
/// ignored.
pub fn policy_types(policy: &NetworkPolicy) -> PolicyTypes {
    let Some(spec) = policy.spec.as_ref() else {
        return PolicyTypes {
            ingress: true,
            egress: false,
        };
    };
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => PolicyTypes {
            ingress: types.iter().any(|t| t == "Ingress"),
            egress: types.iter().any(|t| t == "Egress"),
        },
        _ => PolicyTypes {
            ingress: true,
            egress: spec.egress.as_ref().is_some_and(|rules| !rules.is_empty()),
        },
    }
}

/// Whether an address is inside `ipBlock.cidr` and outside every
/// `ipBlock.except`. A malformed CIDR anywhere in the block makes it match
/// nothing.
pub fn ip_block_matches(block: &IPBlock, ip: IpAddr) -> bool {
    let Ok(cidr) = Cidr::parse(&block.cidr) else {
        return false;
    };
    if !cidr.contains_addr(ip) {
        return false;
    }
    block
        .except
        .as_deref()
        .unwrap_or_default()
        .iter()
        .all(|except| Cidr::parse(except).is_ok_and(|except| !except.contains_addr(ip)))
}

/// Whether a peer (`from` / `to` entry) of a policy living in
/// `policy_namespace` matches an endpoint.
///
/// - `ipBlock` matches IP endpoints and pods whose IP is known.
/// - `podSelector` alone: pods of the policy's namespace.
/// - `namespaceSelector` alone: all pods of the matching namespaces.
/// - both: pods matching `podSelector` in namespaces matching
///   `namespaceSelector`.
///
/// Selectors never match IP endpoints. Peers the API server rejects (no
/// field set, or `ipBlock` together with a selector) match nothing.
pub fn peer_matches(peer: &NetworkPolicyPeer, policy_namespace: &str, cluster: &Cluster, endpoint: &Endpoint) -> bool {
    if let Some(block) = &peer.ip_block {
        if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
            return false;
        }
        return cluster.endpoint_ip(endpoint).is_some_and(|ip| ip_block_matches(block, ip));
    }
    let Some(pod) = cluster.endpoint_pod(endpoint) else {
        return false;
    };
    match (&peer.pod_selector, &peer.namespace_selector) {
        (None, None) => false,
        (Some(pods), None) => pod.namespace == policy_namespace && selector_matches(pods, &pod.labels),
        (pods, Some(namespaces)) => {
            selector_matches(namespaces, &cluster.namespace_labels(&pod.namespace))
                && pods.as_ref().is_none_or(|pods| selector_matches(pods, &pod.labels))
        }
    }
}

/// Whether a list of peers (`from` / `to`) matches an endpoint: an absent or
/// empty list matches every endpoint, otherwise at least one peer must match.
pub fn peers_match(peers: Option<&[NetworkPolicyPeer]>, policy_namespace: &str, cluster: &Cluster, endpoint: &Endpoint) -> bool {
    match peers {
        None | Some([]) => true,
        Some(peers) => peers.iter().any(|peer| peer_matches(peer, policy_namespace, cluster, endpoint)),
    }
}

/// Whether a policy port matches a connection to `destination` (the pod
/// receiving it, `None` for an IP address) on `port`/`protocol`.
///
/// The protocol defaults to TCP; an unknown protocol matches nothing. With
/// no `port`, every port of the protocol matches. A numeric `port` matches
/// that number, or the inclusive range up to `endPort`. A named `port`
/// matches when the destination pod has a container port of that name and
/// protocol whose number is `port`; it never matches an IP destination.
/// `endPort` is ignored unless `port` is a number.
pub fn port_matches(policy_port: &NetworkPolicyPort, destination: Option<&Pod>, port: u16, protocol: Protocol) -> bool {
    let wanted = match policy_port.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(text) => match Protocol::from_api(text) {
            Some(p) => p,
            None => return false,
        },
    };
    if wanted != protocol {
        return false;
    }
    match &policy_port.port {
        None => true,
        Some(IntOrString::Int(start)) => {
            let port = i32::from(port);
            match policy_port.end_port {
                Some(end) => *start <= port && port <= end,
                None => *start == port,
            }
        }
        Some(IntOrString::String(name)) => destination.is_some_and(|pod| pod.has_named_port(name, protocol, port)),
    }
}

/// Whether a list of policy ports matches: an absent or empty list matches
/// every port and protocol, otherwise at least one entry must match.
pub fn ports_match(ports: Option<&[NetworkPolicyPort]>, destination: Option<&Pod>, port: u16, protocol: Protocol) -> bool {
    match ports {
        None | Some([]) => true,
        Some(ports) => ports.iter().any(|p| port_matches(p, destination, port, protocol)),
    }
}

/// Whether an ingress rule of a policy in `policy_namespace` matches the
/// connection: `from` matches the source and `ports` the destination port.
pub fn ingress_rule_matches(rule: &NetworkPolicyIngressRule, policy_namespace: &str, cluster: &Cluster, conn: &Connection) -> bool {
    ports_match(
        rule.ports.as_deref(),
        cluster.endpoint_pod(&conn.destination),
        conn.port,
        conn.protocol,
    ) && peers_match(rule.from.as_deref(), policy_namespace, cluster, &conn.source)
}

/// Whether an egress rule of a policy in `policy_namespace` matches the
/// connection: `to` matches the destination and `ports` the destination
/// port.
pub fn egress_rule_matches(rule: &NetworkPolicyEgressRule, policy_namespace: &str, cluster: &Cluster, conn: &Connection) -> bool {
    ports_match(
        rule.ports.as_deref(),
        cluster.endpoint_pod(&conn.destination),
        conn.port,
        conn.protocol,
    ) && peers_match(rule.to.as_deref(), policy_namespace, cluster, &conn.destination)
}

/// The number of rules a policy has in a direction (whether or not that
/// direction is in its `policyTypes`).
pub fn rule_count(policy: &NetworkPolicy, direction: Direction) -> usize {
    let Some(spec) = policy.spec.as_ref() else {
        return 0;
    };
    match direction {
        Direction::Ingress => spec.ingress.as_ref().map_or(0, Vec::len),
        Direction::Egress => spec.egress.as_ref().map_or(0, Vec::len),
    }
}

/// Whether rule number `rule` of the policy in `direction` matches the
/// connection; `false` when there is no such rule.
pub fn rule_matches(policy: &NetworkPolicy, direction: Direction, rule: usize, cluster: &Cluster, conn: &Connection) -> bool {
    let Some(spec) = policy.spec.as_ref() else {
        return false;
    };
    let namespace = policy_namespace(policy);
    match direction {
        Direction::Ingress => spec
            .ingress
            .as_ref()
            .and_then(|rules| rules.get(rule))
            .is_some_and(|r| ingress_rule_matches(r, namespace, cluster, conn)),
        Direction::Egress => spec
            .egress
            .as_ref()
            .and_then(|rules| rules.get(rule))
            .is_some_and(|r| egress_rule_matches(r, namespace, cluster, conn)),
    }
}

/// Whether the policy isolates the pod in this direction: it selects the pod
/// and the direction is in its effective `policyTypes`.
pub fn policy_isolates(policy: &NetworkPolicy, pod: &Pod, direction: Direction) -> bool {
    policy_types(policy).contains(direction) && policy_selects(policy, pod)
}

/// The endpoint whose policies decide this side: the source for egress, the
/// destination for ingress.
fn subject(conn: &Connection, direction: Direction) -> &Endpoint {
    match direction {
        Direction::Egress => &conn.source,
        Direction::Ingress => &conn.destination,
    }
}

/// Judges one side of a connection in detail: the source pod's egress or
/// the destination pod's ingress.
pub fn evaluate_side(policies: &[NetworkPolicy], cluster: &Cluster, conn: &Connection, direction: Direction) -> SideVerdict {
    let pod = match subject(conn, direction) {
        Endpoint::Ip(_) => return SideVerdict::NotAPod,
        Endpoint::Pod(index) => match cluster.pods.get(*index) {
            Some(pod) => pod,
            None => return SideVerdict::UnknownPod(*index),
        },
    };
    let mut isolated_by = Vec::new();
    let mut allowed_by = Vec::new();
    for (index, policy) in policies.iter().enumerate() {
        if !policy_isolates(policy, pod, direction) {
            continue;
        }
        let reference = PolicyRef::of(index, policy);
        for rule in 0..rule_count(policy, direction) {
            if rule_matches(policy, direction, rule, cluster, conn) {
                allowed_by.push(RuleRef {
                    policy: index,
                    namespace: reference.namespace.clone(),
                    name: reference.name.clone(),
                    direction,
                    rule,
                });
            }
        }
        isolated_by.push(reference);
    }
    SideVerdict::from_parts(isolated_by, allowed_by)
}

/// One rule of a policy: its peers (`from` or `to`) and its ports.
pub type RuleParts<'a> = (Option<&'a [NetworkPolicyPeer]>, Option<&'a [NetworkPolicyPort]>);

/// The rules of one direction of a policy, as peers and ports.
pub fn rules(policy: &NetworkPolicy, direction: Direction) -> Vec<RuleParts<'_>> {
    let Some(spec) = &policy.spec else { return Vec::new() };
    match direction {
        Direction::Egress => spec
            .egress
            .iter()
            .flatten()
            .map(|r| (r.to.as_deref(), r.ports.as_deref()))
            .collect(),
        Direction::Ingress => spec
            .ingress
            .iter()
            .flatten()
            .map(|r| (r.from.as_deref(), r.ports.as_deref()))
            .collect(),
    }
}

/// Whether one side lets the connection through, without allocating.
pub fn side_permits(policies: &[NetworkPolicy], cluster: &Cluster, conn: &Connection, direction: Direction) -> bool {
    let pod = match subject(conn, direction) {
        Endpoint::Ip(_) => return true,
        Endpoint::Pod(index) => match cluster.pods.get(*index) {
            Some(pod) => pod,
            None => return false,
        },
    };
    let mut isolated = false;
    for policy in policies {
        if !policy_isolates(policy, pod, direction) {
            continue;
        }
        isolated = true;
        if (0..rule_count(policy, direction)).any(|rule| rule_matches(policy, direction, rule, cluster, conn)) {
            return true;
        }
    }
    !isolated
}

/// Evaluates a connection against a set of policies and explains the result.
pub fn evaluate(policies: &[NetworkPolicy], cluster: &Cluster, conn: &Connection) -> Verdict {
    let egress = evaluate_side(policies, cluster, conn, Direction::Egress);
    let ingress = evaluate_side(policies, cluster, conn, Direction::Ingress);
    Verdict {
        allowed: egress.permits() && ingress.permits(),
        egress,
        ingress,
    }
}

/// Whether the policies allow the connection: the same answer as
/// [`evaluate`]'s `allowed`, without allocating.
pub fn is_allowed(policies: &[NetworkPolicy], cluster: &Cluster, conn: &Connection) -> bool {
    side_permits(policies, cluster, conn, Direction::Egress) && side_permits(policies, cluster, conn, Direction::Ingress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    // -- helpers ------------------------------------------------------------

    /// Parses a NetworkPolicy from YAML (apiVersion/kind are added).
    fn np(yaml: &str) -> NetworkPolicy {
        let text = format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{}", dedent(yaml));
        match serde_saphyr::from_str::<NetworkPolicy>(&text) {
            Ok(policy) => policy,
            Err(e) => panic!("bad test YAML: {e}\n{text}"),
        }
    }

    fn dedent(text: &str) -> String {
        let indent = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        text.lines().map(|l| l.get(indent..).unwrap_or("")).collect::<Vec<_>>().join("\n")
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// The test cluster.
    fn cluster() -> Cluster {
        let mut c = Cluster::new();
        c.add_namespace("frontend", [("team", "web")]);
        c.add_namespace("backend", [("team", "core"), ("env", "prod")]);
        c.add_namespace("monitoring", [("team", "ops")]);
        c.add_pod(
            Pod::new("frontend", "web")
                .with_label("app", "web")
                .with_label("tier", "front")
                .with_ip(v4(10, 0, 1, 10))
                .with_port("http", 80, Protocol::Tcp),
        );
        c.add_pod(Pod::new("frontend", "admin").with_label("app", "admin").with_ip(v4(10, 0, 1, 11)));
        c.add_pod(Pod::new("frontend", "worker").with_label("app", "worker"));
        c.add_pod(
            Pod::new("backend", "api")
                .with_label("app", "api")
                .with_label("tier", "back")
                .with_ip(v4(10, 0, 2, 20))
                .with_port("http", 8080, Protocol::Tcp)
                .with_port("grpc", 9090, Protocol::Tcp)
                .with_port("stats", 8125, Protocol::Udp),
        );
        c.add_pod(
            Pod::new("backend", "db")
                .with_label("app", "db")
                .with_label("tier", "")
                .with_ip(v4(10, 0, 2, 21))
                .with_port("pg", 5432, Protocol::Tcp),
        );
        c.add_pod(Pod::new("backend", "worker").with_label("app", "worker"));
        c.add_pod(
            Pod::new("monitoring", "prom")
                .with_label("app", "prometheus")
                .with_ip(ip("fd00::5")),
        );
        c.add_pod(Pod::new("monitoring", "admin").with_label("app", "admin"));
        c.add_pod(
            Pod::new("kube-system", "coredns")
                .with_label("k8s-app", "kube-dns")
                .with_ip(v4(10, 0, 3, 2))
                .with_port("dns", 53, Protocol::Udp)
                .with_port("dns-tcp", 53, Protocol::Tcp),
        );
        c
    }

    fn pod(c: &Cluster, qualified: &str) -> Endpoint {
        let (ns, name) = qualified.split_once('/').unwrap();
        Endpoint::Pod(c.pod_index(ns, name).unwrap_or_else(|| panic!("no pod {qualified}")))
    }

    /// `"ns/name"` is a pod, anything else an IP.
    fn ep(c: &Cluster, text: &str) -> Endpoint {
        if text.contains('/') { pod(c, text) } else { Endpoint::Ip(ip(text)) }
    }

    fn conn(c: &Cluster, src: &str, dst: &str, port: u16, protocol: Protocol) -> Connection {
        Connection::new(ep(c, src), ep(c, dst), port, protocol)
    }

    /// Evaluates, checking that `is_allowed` agrees with `evaluate`.
    fn verdict(ps: &[NetworkPolicy], c: &Cluster, cn: &Connection) -> Verdict {
        let v = evaluate(ps, c, cn);
        assert_eq!(
            v.allowed,
            is_allowed(ps, c, cn),
            "is_allowed disagrees with evaluate for {}",
            c.describe_connection(cn)
        );
        v
    }

    fn tcp(ps: &[NetworkPolicy], c: &Cluster, src: &str, dst: &str, port: u16) -> bool {
        verdict(ps, c, &conn(c, src, dst, port, Protocol::Tcp)).allowed
    }

    fn udp(ps: &[NetworkPolicy], c: &Cluster, src: &str, dst: &str, port: u16) -> bool {
        verdict(ps, c, &conn(c, src, dst, port, Protocol::Udp)).allowed
    }

    fn with_proto(ps: &[NetworkPolicy], c: &Cluster, src: &str, dst: &str, port: u16, protocol: Protocol) -> bool {
        verdict(ps, c, &conn(c, src, dst, port, protocol)).allowed
    }

    fn deny_all_ingress(ns: &str) -> NetworkPolicy {
        np(&format!(
            "metadata: {{name: deny-ingress, namespace: {ns}}}\nspec: {{podSelector: {{}}}}"
        ))
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn rule_ids(side: &SideVerdict) -> Vec<(String, Direction, usize)> {
        match side {
            SideVerdict::Allowed(rules) => rules.iter().map(|r| (r.name.clone(), r.direction, r.rule)).collect(),
            other => panic!("expected Allowed, got {other:?}"),
        }
    }

    // -- the model ------------------------------------------------------------

    #[test]
    fn protocol_parsing_and_spelling() {
        assert_eq!("tcp".parse::<Protocol>(), Ok(Protocol::Tcp));
        assert_eq!("UDP".parse::<Protocol>(), Ok(Protocol::Udp));
        assert_eq!("sctp".parse::<Protocol>(), Ok(Protocol::Sctp));
        assert!("Tcp".parse::<Protocol>().is_err());
        assert!("icmp".parse::<Protocol>().is_err());
        assert_eq!(Protocol::Sctp.as_str(), "SCTP");
        assert_eq!(Protocol::Udp.to_string(), "UDP");
        assert_eq!(Protocol::from_api("TCP"), Some(Protocol::Tcp));
        assert_eq!(Protocol::from_api("tcp"), None);
    }

    #[test]
    fn cluster_builders_add_namespaces_with_name_label() {
        let mut c = Cluster::new();
        let p = c.add_pod(Pod::new("shop", "cart").with_label("app", "cart"));
        assert_eq!(p, 0);
        let ns = c.namespace("shop").unwrap();
        assert_eq!(ns.labels, labels(&[(NAMESPACE_NAME_LABEL, "shop")]));

        // Declaring it later adds labels; the name label cannot be overridden.
        let i = c.add_namespace("shop", [("team", "x"), (NAMESPACE_NAME_LABEL, "other")]);
        assert_eq!(i, 0);
        assert_eq!(c.namespaces.len(), 1);
        assert_eq!(c.namespaces[0].labels, labels(&[(NAMESPACE_NAME_LABEL, "shop"), ("team", "x")]));

        let q = c.add_pod(Pod::new("shop", "pay"));
        assert_eq!(q, 1);
        assert_eq!(c.pod_index("shop", "pay"), Some(1));
        assert_eq!(c.pod_index("shop", "nope"), None);
        assert_eq!(c.pod_index("other", "pay"), None);

        // Re-adding a pod replaces it in place.
        let r = c.add_pod(Pod::new("shop", "cart").with_label("app", "cart2"));
        assert_eq!(r, 0);
        assert_eq!(c.pods.len(), 2);
        assert_eq!(c.pods[0].labels, labels(&[("app", "cart2")]));
    }

    #[test]
    fn endpoint_names_and_connection_description() {
        let c = cluster();
        let cn = conn(&c, "frontend/web", "2001:db8::1", 443, Protocol::Tcp);
        assert_eq!(c.describe_connection(&cn), "frontend/web -> [2001:db8::1]:443/TCP");
        let cn = conn(&c, "8.8.8.8", "backend/api", 8125, Protocol::Udp);
        assert_eq!(c.describe_connection(&cn), "8.8.8.8 -> backend/api:8125/UDP");
        assert_eq!(c.endpoint_name(&Endpoint::Pod(999)), "pod #999 (unknown)");
    }

    // -- selectors ------------------------------------------------------------

    #[test]
    fn match_expression_operators() {
        let l = labels(&[("app", "api"), ("tier", "")]);
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.to_owned(),
            operator: op.to_owned(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        };
        assert!(requirement_matches(&req("app", "In", &["web", "api"]), &l));
        assert!(!requirement_matches(&req("app", "In", &["web"]), &l));
        assert!(!requirement_matches(&req("env", "In", &["prod"]), &l));
        assert!(requirement_matches(&req("tier", "In", &[""]), &l));

        assert!(requirement_matches(&req("app", "NotIn", &["web"]), &l));
        assert!(!requirement_matches(&req("app", "NotIn", &["web", "api"]), &l));
        assert!(requirement_matches(&req("env", "NotIn", &["prod"]), &l));

        assert!(requirement_matches(&req("tier", "Exists", &[]), &l));
        assert!(!requirement_matches(&req("env", "Exists", &[]), &l));
        assert!(requirement_matches(&req("env", "DoesNotExist", &[]), &l));
        assert!(!requirement_matches(&req("app", "DoesNotExist", &[]), &l));

        // Operators are case-sensitive; unknown ones never hold.
        assert!(!requirement_matches(&req("app", "in", &["api"]), &l));
        assert!(!requirement_matches(&req("app", "Equals", &["api"]), &l));
    }

    #[test]
    fn selector_ands_labels_and_expressions() {
        let l = labels(&[("app", "api"), ("tier", "back")]);
        let empty = LabelSelector::default();
        assert!(selector_matches(&empty, &l));
        assert!(selector_matches(&empty, &Labels::new()));
        let empty_maps = LabelSelector {
            match_labels: Some(BTreeMap::new()),
            match_expressions: Some(vec![]),
        };
        assert!(selector_matches(&empty_maps, &Labels::new()));

        let sel = |yaml: &str| -> LabelSelector { serde_saphyr::from_str(&dedent(yaml)).unwrap() };
        let both = sel("matchLabels: {app: api}\nmatchExpressions: [{key: tier, operator: In, values: [back]}]");
        assert!(selector_matches(&both, &l));
        assert!(!selector_matches(&both, &labels(&[("app", "api"), ("tier", "front")])));
        assert!(!selector_matches(&both, &labels(&[("app", "web"), ("tier", "back")])));
        let two_labels = sel("matchLabels: {app: api, tier: front}");
        assert!(!selector_matches(&two_labels, &l));
        // A label with an empty value is present, and equal to "".
        assert!(selector_matches(&sel("matchLabels: {tier: ''}"), &labels(&[("tier", "")])));
        assert!(!selector_matches(&sel("matchLabels: {tier: ''}"), &Labels::new()));
    }

    #[test]
    fn namespace_labels_always_have_the_name_label() {
        let mut c = Cluster::new();
        // Built by hand: a pod whose namespace was never declared.
        c.pods.push(Pod::new("ghost", "p"));
        let sel = LabelSelector {
            match_labels: Some([(NAMESPACE_NAME_LABEL.to_owned(), "ghost".to_owned())].into()),
            match_expressions: None,
        };
        assert!(selector_matches(&sel, &c.namespace_labels("ghost")));
        assert!(!selector_matches(&sel, &c.namespace_labels("other")));
        assert_eq!(c.namespace_labels("ghost").label("team"), None);
    }

    #[test]
    fn match_expressions_in_pod_selector_of_a_policy() {
        let c = cluster();
        // Selects backend pods whose app is not `api` and that have no `tier`
        // label... db has tier="" so it is excluded; worker qualifies.
        let p = np("
            metadata: {name: sel, namespace: backend}
            spec:
              podSelector:
                matchExpressions:
                - {key: app, operator: NotIn, values: [api]}
                - {key: tier, operator: DoesNotExist}
        ");
        let selected: Vec<String> = c.pods.iter().filter(|p2| policy_selects(&p, p2)).map(Pod::qualified_name).collect();
        assert_eq!(selected, vec!["backend/worker".to_owned()]);

        let p = np("
            metadata: {name: sel, namespace: backend}
            spec:
              podSelector:
                matchExpressions:
                - {key: tier, operator: Exists}
                - {key: app, operator: In, values: [db, cache]}
        ");
        let selected: Vec<String> = c.pods.iter().filter(|p2| policy_selects(&p, p2)).map(Pod::qualified_name).collect();
        assert_eq!(selected, vec!["backend/db".to_owned()]);
    }

    // -- isolation and policyTypes -------------------------------------------

    #[test]
    fn no_policy_allows_everything() {
        let c = cluster();
        let v = verdict(&[], &c, &conn(&c, "frontend/web", "backend/api", 1, Protocol::Sctp));
        assert!(v.allowed);
        assert_eq!(v.egress, SideVerdict::NotIsolated);
        assert_eq!(v.ingress, SideVerdict::NotIsolated);
        let v = verdict(&[], &c, &conn(&c, "1.2.3.4", "5.6.7.8", 80, Protocol::Tcp));
        assert!(v.allowed);
        assert_eq!(v.egress, SideVerdict::NotAPod);
        assert_eq!(v.ingress, SideVerdict::NotAPod);
    }

    #[test]
    fn ingress_isolation_is_per_namespace_and_direction() {
        let c = cluster();
        let ps = [deny_all_ingress("backend")];
        let v = verdict(&ps, &c, &conn(&c, "frontend/web", "backend/api", 8080, Protocol::Tcp));
        assert!(!v.allowed);
        assert_eq!(v.egress, SideVerdict::NotIsolated);
        assert_eq!(
            v.ingress,
            SideVerdict::Denied {
                isolated_by: vec![PolicyRef {
                    policy: 0,
                    namespace: "backend".into(),
                    name: "deny-ingress".into()
                }]
            }
        );
        // Same namespace too.
        assert!(!tcp(&ps, &c, "backend/db", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "8.8.8.8", "backend/api", 8080));
        // Egress from backend is not restricted.
        assert!(tcp(&ps, &c, "backend/api", "frontend/web", 80));
        assert!(tcp(&ps, &c, "backend/api", "8.8.8.8", 443));
        // Other namespaces are not isolated.
        assert!(tcp(&ps, &c, "frontend/admin", "frontend/web", 80));
    }

    #[test]
    fn egress_isolation_ignores_ingress_rules_when_not_in_policy_types() {
        let c = cluster();
        let ps = [np("
            metadata: {name: egress-only, namespace: backend}
            spec:
              podSelector: {matchLabels: {app: api}}
              policyTypes: [Egress]
              ingress:
              - from: [{podSelector: {matchLabels: {app: nobody}}}]
        ")];
        let v = verdict(&ps, &c, &conn(&c, "backend/api", "frontend/web", 80, Protocol::Tcp));
        assert!(!v.allowed);
        assert!(matches!(v.egress, SideVerdict::Denied { .. }));
        assert!(!tcp(&ps, &c, "backend/api", "9.9.9.9", 443));
        // Ingress to api is not isolated: the ingress rules are ignored.
        let v = verdict(&ps, &c, &conn(&c, "frontend/web", "backend/api", 8080, Protocol::Tcp));
        assert!(v.allowed);
        assert_eq!(v.ingress, SideVerdict::NotIsolated);
        // Other backend pods are not selected.
        assert!(tcp(&ps, &c, "backend/db", "frontend/web", 80));
    }

    #[test]
    fn policy_types_defaulting() {
        let types = |yaml: &str| policy_types(&np(yaml));
        let both = PolicyTypes {
            ingress: true,
            egress: true,
        };
        let ingress_only = PolicyTypes {
            ingress: true,
            egress: false,
        };
        let egress_only = PolicyTypes {
            ingress: false,
            egress: true,
        };
        assert_eq!(types("metadata: {name: a}\nspec: {}"), ingress_only);
        assert_eq!(types("metadata: {name: a}"), ingress_only);
        assert_eq!(types("metadata: {name: a}\nspec: {egress: [{}]}"), both);
        // Kubernetes defaults on len(egress) != 0: an empty list is not enough.
        assert_eq!(types("metadata: {name: a}\nspec: {egress: []}"), ingress_only);
        // An empty policyTypes list is defaulted like an absent one.
        assert_eq!(types("metadata: {name: a}\nspec: {policyTypes: [], egress: [{}]}"), both);
        assert_eq!(types("metadata: {name: a}\nspec: {policyTypes: [Egress]}"), egress_only);
        assert_eq!(
            types("metadata: {name: a}\nspec: {policyTypes: [Ingress], egress: [{}]}"),
            ingress_only
        );
        assert_eq!(types("metadata: {name: a}\nspec: {policyTypes: [Ingress, Egress]}"), both);
        // Unknown entries are ignored (and do not trigger defaulting).
        assert_eq!(types("metadata: {name: a}\nspec: {policyTypes: [ingress]}"), PolicyTypes::default());
    }

    #[test]
    fn policy_types_defaulting_changes_verdicts() {
        let c = cluster();
        // Egress rules present, no policyTypes: egress is isolated too.
        let with_egress = [np("
            metadata: {name: p, namespace: frontend}
            spec:
              podSelector: {matchLabels: {app: web}}
              egress:
              - to: [{namespaceSelector: {matchLabels: {team: core}}}]
        ")];
        assert!(tcp(&with_egress, &c, "frontend/web", "backend/api", 8080));
        assert!(!tcp(&with_egress, &c, "frontend/web", "monitoring/admin", 80));
        assert!(!tcp(&with_egress, &c, "frontend/admin", "frontend/web", 80));

        // `egress: []` without policyTypes only isolates ingress.
        let empty_egress = [np("
            metadata: {name: p, namespace: frontend}
            spec: {podSelector: {matchLabels: {app: web}}, egress: []}
        ")];
        assert!(tcp(&empty_egress, &c, "frontend/web", "monitoring/admin", 80));
        assert!(!tcp(&empty_egress, &c, "frontend/admin", "frontend/web", 80));

        // With explicit policyTypes it is a default-deny for egress.
        let deny_egress = [np("
            metadata: {name: p, namespace: frontend}
            spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Egress], egress: []}
        ")];
        assert!(!tcp(&deny_egress, &c, "frontend/web", "monitoring/admin", 80));
        assert!(!udp(&deny_egress, &c, "frontend/web", "kube-system/coredns", 53));
        assert!(tcp(&deny_egress, &c, "frontend/admin", "frontend/web", 80));
    }

    #[test]
    fn policy_without_namespace_lives_in_default() {
        let mut c = Cluster::new();
        c.add_pod(Pod::new("default", "a"));
        c.add_pod(Pod::new("other", "b"));
        let ps = [np("metadata: {name: deny}\nspec: {podSelector: {}}")];
        assert_eq!(policy_namespace(&ps[0]), "default");
        assert!(!tcp(&ps, &c, "other/b", "default/a", 80));
        assert!(tcp(&ps, &c, "default/a", "other/b", 80));
    }

    #[test]
    fn pod_selector_is_scoped_to_the_policy_namespace() {
        let c = cluster();
        // Selects app=web, but lives in backend: frontend/web is not selected.
        let ps = [np("
            metadata: {name: p, namespace: backend}
            spec: {podSelector: {matchLabels: {app: web}}}
        ")];
        assert!(tcp(&ps, &c, "backend/api", "frontend/web", 80));
        // Absent podSelector selects the whole namespace.
        let ps = [np("metadata: {name: p, namespace: backend}\nspec: {policyTypes: [Ingress]}")];
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "frontend/web", "backend/worker", 8080));
        assert!(tcp(&ps, &c, "backend/api", "frontend/web", 80));
    }

    // -- additivity ----------------------------------------------------------

    #[test]
    fn policies_are_additive_and_every_matching_rule_is_reported() {
        let c = cluster();
        let ps = [
            deny_all_ingress("backend"),
            np("
                metadata: {name: from-web, namespace: backend}
                spec:
                  podSelector: {matchLabels: {app: api}}
                  ingress:
                  - from: [{namespaceSelector: {matchLabels: {team: web}}, podSelector: {matchLabels: {app: web}}}]
                    ports: [{port: 8080}]
            "),
            np("
                metadata: {name: from-monitoring, namespace: backend}
                spec:
                  podSelector: {}
                  ingress:
                  - from: [{namespaceSelector: {matchLabels: {team: ops}}}]
                  - from: [{namespaceSelector: {}}]
                    ports: [{port: 8080}]
            "),
        ];
        // web -> api:8080 matches from-web[0] and from-monitoring[1].
        let v = verdict(&ps, &c, &conn(&c, "frontend/web", "backend/api", 8080, Protocol::Tcp));
        assert!(v.allowed);
        assert_eq!(
            rule_ids(&v.ingress),
            vec![
                ("from-web".to_owned(), Direction::Ingress, 0),
                ("from-monitoring".to_owned(), Direction::Ingress, 1)
            ]
        );
        if let SideVerdict::Allowed(rules) = &v.ingress {
            assert_eq!(rules[0].policy, 1);
            assert_eq!(rules[1].policy, 2);
            assert_eq!(rules[0].to_string(), "backend/from-web spec.ingress[0]");
        }
        // prom -> api:9090 only through from-monitoring[0].
        let v = verdict(&ps, &c, &conn(&c, "monitoring/prom", "backend/api", 9090, Protocol::Tcp));
        assert_eq!(rule_ids(&v.ingress), vec![("from-monitoring".to_owned(), Direction::Ingress, 0)]);
        // admin -> db:8080 through the catch-all namespaceSelector rule.
        assert!(tcp(&ps, &c, "frontend/admin", "backend/db", 8080));
        // ... but not on another port.
        let v = verdict(&ps, &c, &conn(&c, "frontend/admin", "backend/db", 5432, Protocol::Tcp));
        assert!(!v.allowed);
        assert_eq!(
            v.ingress,
            SideVerdict::Denied {
                isolated_by: vec![
                    PolicyRef {
                        policy: 0,
                        namespace: "backend".into(),
                        name: "deny-ingress".into()
                    },
                    PolicyRef {
                        policy: 2,
                        namespace: "backend".into(),
                        name: "from-monitoring".into()
                    },
                ]
            }
        );
        // IPs are never matched by selectors.
        assert!(!tcp(&ps, &c, "10.0.1.10", "backend/api", 8080));
    }

    #[test]
    fn both_sides_must_allow() {
        let c = cluster();
        let ps = [
            np("
                metadata: {name: web-egress, namespace: frontend}
                spec:
                  podSelector: {matchLabels: {app: web}}
                  policyTypes: [Egress]
                  egress:
                  - to: [{namespaceSelector: {matchLabels: {team: core}}}]
            "),
            deny_all_ingress("backend"),
        ];
        let v = verdict(&ps, &c, &conn(&c, "frontend/web", "backend/api", 8080, Protocol::Tcp));
        assert!(!v.allowed);
        assert_eq!(rule_ids(&v.egress), vec![("web-egress".to_owned(), Direction::Egress, 0)]);
        assert!(matches!(v.ingress, SideVerdict::Denied { .. }));
        assert_eq!(
            v.to_string(),
            "denied (egress: allowed by frontend/web-egress spec.egress[0]; ingress: denied: \
             isolated by backend/deny-ingress and no rule matches)"
        );
    }

    // -- peers ---------------------------------------------------------------

    #[test]
    fn one_peer_with_both_selectors_is_an_and() {
        let c = cluster();
        let ps = [np("
            metadata: {name: and, namespace: backend}
            spec:
              podSelector: {matchLabels: {app: api}}
              ingress:
              - from:
                - namespaceSelector: {matchLabels: {team: web}}
                  podSelector: {matchLabels: {app: admin}}
        ")];
        assert!(tcp(&ps, &c, "frontend/admin", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "monitoring/admin", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "backend/db", "backend/api", 8080));
    }

    #[test]
    fn two_peers_are_an_or_and_pod_selector_alone_stays_in_namespace() {
        let c = cluster();
        let ps = [np("
            metadata: {name: or, namespace: backend}
            spec:
              podSelector: {matchLabels: {app: api}}
              ingress:
              - from:
                - namespaceSelector: {matchLabels: {team: web}}
                - podSelector: {matchLabels: {app: worker}}
        ")];
        assert!(tcp(&ps, &c, "frontend/admin", "backend/api", 8080));
        assert!(tcp(&ps, &c, "frontend/web", "backend/api", 8080));
        // frontend/worker matches through the namespace peer...
        assert!(tcp(&ps, &c, "frontend/worker", "backend/api", 8080));
        // ... backend/worker through the pod peer (same namespace as the policy).
        assert!(tcp(&ps, &c, "backend/worker", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "backend/db", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "monitoring/admin", "backend/api", 8080));

        // The pod peer alone does not reach other namespaces.
        let ps = [np("
            metadata: {name: pods, namespace: backend}
            spec:
              podSelector: {}
              ingress: [{from: [{podSelector: {matchLabels: {app: worker}}}]}]
        ")];
        assert!(tcp(&ps, &c, "backend/worker", "backend/db", 5432));
        assert!(!tcp(&ps, &c, "frontend/worker", "backend/db", 5432));
    }

    #[test]
    fn empty_selectors_in_peers() {
        let c = cluster();
        // podSelector: {} = every pod of the policy's namespace.
        let ps = [np("
            metadata: {name: same-ns, namespace: backend}
            spec:
              podSelector: {}
              ingress: [{from: [{podSelector: {}}]}]
        ")];
        assert!(tcp(&ps, &c, "backend/worker", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "10.0.2.21", "backend/api", 8080));

        // namespaceSelector: {} = every pod of every namespace, no IPs.
        let ps = [np("
            metadata: {name: all-pods, namespace: backend}
            spec:
              podSelector: {}
              ingress: [{from: [{namespaceSelector: {}}]}]
        ")];
        assert!(tcp(&ps, &c, "kube-system/coredns", "backend/api", 8080));
        assert!(tcp(&ps, &c, "frontend/worker", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "10.0.1.10", "backend/api", 8080));
    }

    #[test]
    fn namespace_selector_by_name_label() {
        let c = cluster();
        let ps = [np("
            metadata: {name: dns, namespace: frontend}
            spec:
              podSelector: {}
              policyTypes: [Egress]
              egress:
              - to:
                - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
                  podSelector: {matchLabels: {k8s-app: kube-dns}}
                ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
        ")];
        assert!(udp(&ps, &c, "frontend/web", "kube-system/coredns", 53));
        assert!(tcp(&ps, &c, "frontend/web", "kube-system/coredns", 53));
        assert!(!udp(&ps, &c, "frontend/web", "kube-system/coredns", 54));
        assert!(!udp(&ps, &c, "frontend/web", "10.0.3.2", 53));
        assert!(!udp(&ps, &c, "frontend/web", "backend/api", 53));
    }

    #[test]
    fn empty_from_and_empty_rule_match_everything() {
        let c = cluster();
        for (yaml, why) in [
            ("ingress: [{from: []}]", "from: []"),
            ("ingress: [{}]", "ingress: [{}]"),
            ("ingress: [{from: [], ports: []}]", "ports: []"),
        ] {
            let ps = [np(&format!(
                "metadata: {{name: all, namespace: backend}}\nspec:\n  podSelector: {{}}\n  {yaml}"
            ))];
            assert!(tcp(&ps, &c, "frontend/web", "backend/api", 1), "{why}");
            assert!(udp(&ps, &c, "8.8.8.8", "backend/api", 65535), "{why}");
            assert!(with_proto(&ps, &c, "2001:db8::1", "backend/db", 9, Protocol::Sctp), "{why}");
        }
        // A rule with only ports accepts any source on those ports.
        let ps = [np("
            metadata: {name: ports-only, namespace: backend}
            spec:
              podSelector: {}
              ingress: [{ports: [{port: 8080}]}]
        ")];
        assert!(tcp(&ps, &c, "8.8.8.8", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "8.8.8.8", "backend/api", 8081));
        // `ingress: []` allows nothing.
        let ps = [np("
            metadata: {name: none, namespace: backend}
            spec: {podSelector: {}, ingress: []}
        ")];
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 8080));
    }

    // -- ipBlock -------------------------------------------------------------

    #[test]
    fn ip_block_with_except_ipv4_including_pod_ips() {
        let c = cluster();
        let ps = [np("
            metadata: {name: internal, namespace: frontend}
            spec:
              podSelector: {matchLabels: {app: admin}}
              policyTypes: [Egress]
              egress:
              - to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.2.0/24, 10.0.3.2/32]}}]
        ")];
        assert!(tcp(&ps, &c, "frontend/admin", "10.0.9.9", 443));
        assert!(tcp(&ps, &c, "frontend/admin", "10.0.255.255", 443));
        assert!(!tcp(&ps, &c, "frontend/admin", "10.1.0.0", 443));
        assert!(!tcp(&ps, &c, "frontend/admin", "10.0.2.1", 443));
        assert!(!tcp(&ps, &c, "frontend/admin", "192.168.1.1", 443));
        assert!(!tcp(&ps, &c, "frontend/admin", "::ffff:10.0.9.9", 443));
        // Pod IPs: web (10.0.1.10) is inside, api (10.0.2.20) and coredns
        // (10.0.3.2) are excepted, the worker has no IP.
        assert!(tcp(&ps, &c, "frontend/admin", "frontend/web", 80));
        assert!(!tcp(&ps, &c, "frontend/admin", "backend/api", 8080));
        assert!(!udp(&ps, &c, "frontend/admin", "kube-system/coredns", 53));
        assert!(tcp(&ps, &c, "frontend/admin", "10.0.3.3", 53));
        assert!(!tcp(&ps, &c, "frontend/admin", "frontend/worker", 80));
    }

    #[test]
    fn ip_block_ingress_matches_the_source_and_ignores_pods_without_ip() {
        let c = cluster();
        let ps = [np("
            metadata: {name: anywhere, namespace: backend}
            spec:
              podSelector: {matchLabels: {app: api}}
              ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}]
        ")];
        assert!(tcp(&ps, &c, "8.8.8.8", "backend/api", 8080));
        assert!(tcp(&ps, &c, "frontend/web", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "backend/worker", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "2001:db8::1", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "monitoring/prom", "backend/api", 8080));
    }

    #[test]
    fn ip_block_with_except_ipv6() {
        let c = cluster();
        let ps = [np("
            metadata: {name: v6, namespace: backend}
            spec:
              podSelector: {matchLabels: {app: api}}
              ingress:
              - from:
                - ipBlock: {cidr: '2001:db8::/32', except: ['2001:db8:ff::/48']}
                - ipBlock: {cidr: 'fd00::/8'}
        ")];
        assert!(tcp(&ps, &c, "2001:db8::1", "backend/api", 8080));
        assert!(tcp(&ps, &c, "2001:db8:fe:ffff::1", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "2001:db8:ff::1", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "2001:db8:ff:1::", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "2001:db9::1", "backend/api", 8080));
        // An IPv6 pod IP inside fd00::/8.
        assert!(tcp(&ps, &c, "monitoring/prom", "backend/api", 8080));
        // IPv4 never matches an IPv6 block.
        assert!(!tcp(&ps, &c, "10.0.1.10", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 8080));
    }

    // -- ports ---------------------------------------------------------------

    #[test]
    fn port_protocol_defaults_to_tcp() {
        let c = cluster();
        let ps = [np("
            metadata: {name: dns, namespace: kube-system}
            spec:
              podSelector: {}
              ingress: [{ports: [{port: 53}]}]
        ")];
        assert!(tcp(&ps, &c, "frontend/web", "kube-system/coredns", 53));
        assert!(!udp(&ps, &c, "frontend/web", "kube-system/coredns", 53));
        assert!(!tcp(&ps, &c, "frontend/web", "kube-system/coredns", 54));
        // A port entry without port and protocol is every TCP port.
        let ps = [np("
            metadata: {name: dns, namespace: kube-system}
            spec:
              podSelector: {}
              ingress: [{ports: [{}]}]
        ")];
        assert!(tcp(&ps, &c, "frontend/web", "kube-system/coredns", 1));
        assert!(!udp(&ps, &c, "frontend/web", "kube-system/coredns", 53));
    }

    #[test]
    fn port_with_protocol() {
        let c = cluster();
        let ps = [np("
            metadata: {name: dns, namespace: kube-system}
            spec:
              podSelector: {}
              ingress:
              - ports: [{port: 53, protocol: UDP}]
              - ports: [{protocol: SCTP}]
        ")];
        assert!(udp(&ps, &c, "frontend/web", "kube-system/coredns", 53));
        assert!(!tcp(&ps, &c, "frontend/web", "kube-system/coredns", 53));
        assert!(!udp(&ps, &c, "frontend/web", "kube-system/coredns", 5353));
        // Protocol without port: every port of that protocol.
        for port in [1, 53, 9999, 65535] {
            assert!(with_proto(&ps, &c, "8.8.8.8", "kube-system/coredns", port, Protocol::Sctp));
        }
        assert!(!tcp(&ps, &c, "8.8.8.8", "kube-system/coredns", 9999));
    }

    #[test]
    fn end_port_range_is_inclusive() {
        let c = cluster();
        let ps = [np("
            metadata: {name: range, namespace: frontend}
            spec:
              podSelector: {matchLabels: {app: web}}
              policyTypes: [Egress]
              egress:
              - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
                ports: [{port: 32000, endPort: 32768, protocol: UDP}]
        ")];
        assert!(!udp(&ps, &c, "frontend/web", "1.1.1.1", 31999));
        assert!(udp(&ps, &c, "frontend/web", "1.1.1.1", 32000));
        assert!(udp(&ps, &c, "frontend/web", "1.1.1.1", 32500));
        assert!(udp(&ps, &c, "frontend/web", "1.1.1.1", 32768));
        assert!(!udp(&ps, &c, "frontend/web", "1.1.1.1", 32769));
        assert!(!tcp(&ps, &c, "frontend/web", "1.1.1.1", 32000));
        // endPort < port is an empty range.
        let p = NetworkPolicyPort {
            port: Some(IntOrString::Int(100)),
            end_port: Some(99),
            protocol: None,
        };
        assert!(!port_matches(&p, None, 99, Protocol::Tcp));
        assert!(!port_matches(&p, None, 100, Protocol::Tcp));
        // Port numbers out of range never match.
        let p = NetworkPolicyPort {
            port: Some(IntOrString::Int(65536 + 80)),
            end_port: None,
            protocol: None,
        };
        assert!(!port_matches(&p, None, 80, Protocol::Tcp));
    }

    #[test]
    fn named_ports_resolve_on_the_destination_pod_by_name_and_protocol() {
        let c = cluster();
        let ps = [np("
            metadata: {name: named, namespace: backend}
            spec:
              podSelector: {}
              ingress:
              - ports: [{port: http}, {port: stats, protocol: UDP}]
        ")];
        assert!(tcp(&ps, &c, "frontend/web", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 80));
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 9090));
        assert!(!udp(&ps, &c, "frontend/web", "backend/api", 8080));
        assert!(udp(&ps, &c, "frontend/web", "backend/api", 8125));
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 8125));
        // db has no port named http.
        assert!(!tcp(&ps, &c, "frontend/web", "backend/db", 8080));

        // `stats` with the default protocol (TCP) does not match the UDP port.
        let ps = [np("
            metadata: {name: named, namespace: backend}
            spec:
              podSelector: {}
              ingress: [{ports: [{port: stats}]}]
        ")];
        assert!(!udp(&ps, &c, "frontend/web", "backend/api", 8125));
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 8125));
    }

    #[test]
    fn named_ports_in_egress_resolve_per_destination_and_never_on_ips() {
        let c = cluster();
        let ps = [np("
            metadata: {name: egress-named, namespace: frontend}
            spec:
              podSelector: {matchLabels: {app: admin}}
              policyTypes: [Egress]
              egress:
              - ports: [{port: http}, {port: dns, protocol: UDP}]
        ")];
        // http is 80 on web, 8080 on api.
        assert!(tcp(&ps, &c, "frontend/admin", "frontend/web", 80));
        assert!(!tcp(&ps, &c, "frontend/admin", "frontend/web", 8080));
        assert!(tcp(&ps, &c, "frontend/admin", "backend/api", 8080));
        assert!(!tcp(&ps, &c, "frontend/admin", "backend/api", 80));
        assert!(udp(&ps, &c, "frontend/admin", "kube-system/coredns", 53));
        assert!(!tcp(&ps, &c, "frontend/admin", "kube-system/coredns", 53));
        // Towards IPs a named port never matches, even the pod's own IP.
        assert!(!udp(&ps, &c, "frontend/admin", "8.8.8.8", 53));
        assert!(!tcp(&ps, &c, "frontend/admin", "10.0.2.20", 8080));
        assert!(!port_matches(
            &NetworkPolicyPort {
                port: Some(IntOrString::String("http".into())),
                end_port: None,
                protocol: None
            },
            None,
            8080,
            Protocol::Tcp
        ));
    }

    // -- robustness ----------------------------------------------------------

    #[test]
    fn invalid_parts_match_nothing() {
        let c = cluster();
        let ps = [np("
            metadata: {name: bad, namespace: backend}
            spec:
              podSelector: {}
              ingress:
              - ports: [{port: 8080, protocol: tcp}]
              - from: [{}]
              - from: [{ipBlock: {cidr: 0.0.0.0/0}, podSelector: {}}]
              - from: [{ipBlock: {cidr: 10.0.0.0/33}}]
              - from: [{ipBlock: {cidr: 0.0.0.0/0, except: [nonsense]}}]
              - from: [{podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}}]
        ")];
        for src in ["frontend/web", "backend/db", "8.8.8.8", "10.0.0.1"] {
            let v = verdict(&ps, &c, &conn(&c, src, "backend/api", 8080, Protocol::Tcp));
            assert!(!v.allowed, "{src}");
            assert!(matches!(v.ingress, SideVerdict::Denied { .. }), "{src}");
        }
    }

    #[test]
    fn unknown_pod_index_is_denied_without_panicking() {
        let c = cluster();
        let ps = [deny_all_ingress("backend")];
        let web = pod(&c, "frontend/web");
        let v = verdict(&ps, &c, &Connection::tcp(web, Endpoint::Pod(999), 80));
        assert!(!v.allowed);
        assert_eq!(v.ingress, SideVerdict::UnknownPod(999));
        assert_eq!(v.egress, SideVerdict::NotIsolated);
        let v = verdict(&[], &c, &Connection::tcp(Endpoint::Pod(usize::MAX), web, 80));
        assert!(!v.allowed);
        assert_eq!(v.egress, SideVerdict::UnknownPod(usize::MAX));
    }

    #[test]
    fn policy_without_spec_isolates_its_namespace_for_ingress() {
        let c = cluster();
        let ps = [np("metadata: {name: bare, namespace: backend}")];
        assert!(ps[0].spec.is_none());
        assert!(!tcp(&ps, &c, "frontend/web", "backend/api", 8080));
        assert!(tcp(&ps, &c, "backend/api", "frontend/web", 80));
    }

    #[test]
    fn side_verdict_descriptions() {
        assert_eq!(SideVerdict::NotAPod.to_string(), "not a pod, not evaluated");
        assert_eq!(SideVerdict::NotIsolated.to_string(), "not isolated, allowed");
        assert!(!SideVerdict::UnknownPod(3).permits());
        assert!(!SideVerdict::Denied { isolated_by: vec![] }.permits());
        let rule = |name: &str, rule| RuleRef {
            policy: 0,
            namespace: "ns".into(),
            name: name.into(),
            direction: Direction::Egress,
            rule,
        };
        assert_eq!(
            SideVerdict::Allowed(vec![rule("a", 0), rule("b", 2)]).to_string(),
            "allowed by ns/a spec.egress[0], ns/b spec.egress[2]"
        );
    }

    /// `is_allowed` and `evaluate` agree, and `evaluate`'s side verdicts are
    /// consistent with the rule-level functions, on every pair of endpoints
    /// for a mix of policies.
    #[test]
    fn fast_path_agrees_with_detailed_verdicts_exhaustively() {
        let c = cluster();
        let ps = [
            deny_all_ingress("backend"),
            np("
                metadata: {name: a, namespace: backend}
                spec:
                  podSelector: {matchLabels: {app: api}}
                  ingress:
                  - from: [{namespaceSelector: {matchLabels: {team: web}}}, {ipBlock: {cidr: 8.0.0.0/8}}]
                    ports: [{port: http}, {port: 9000, endPort: 9100}]
                  egress:
                  - to: [{podSelector: {matchLabels: {app: db}}}]
                    ports: [{port: pg}]
            "),
            np("
                metadata: {name: b, namespace: frontend}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress:
                  - to: [{namespaceSelector: {}}]
                  - to: [{ipBlock: {cidr: '::/0'}}]
                    ports: [{protocol: UDP}]
            "),
        ];
        let mut endpoints: Vec<Endpoint> = (0..c.pods.len()).map(Endpoint::Pod).collect();
        for a in ["8.8.8.8", "10.0.1.10", "2001:db8::1", "fd00::5"] {
            endpoints.push(Endpoint::Ip(ip(a)));
        }
        let mut allowed = 0;
        let mut denied = 0;
        for &src in &endpoints {
            for &dst in &endpoints {
                for port in [53, 80, 5432, 8080, 8125, 9000, 9100, 9101] {
                    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
                        let cn = Connection::new(src, dst, port, protocol);
                        let v = verdict(&ps, &c, &cn);
                        for (side, direction) in [(&v.egress, Direction::Egress), (&v.ingress, Direction::Ingress)] {
                            assert_eq!(side.permits(), side_permits(&ps, &c, &cn, direction));
                            if let SideVerdict::Allowed(rules) = side {
                                for r in rules {
                                    assert!(rule_matches(&ps[r.policy], direction, r.rule, &c, &cn));
                                }
                            }
                        }
                        if v.allowed {
                            allowed += 1;
                        } else {
                            denied += 1;
                        }
                    }
                }
            }
        }
        assert!(allowed > 100 && denied > 100, "{allowed} allowed, {denied} denied");
        // Spot checks of the mix.
        assert!(tcp(&ps, &c, "frontend/web", "backend/api", 8080));
        assert!(tcp(&ps, &c, "8.8.8.8", "backend/api", 9100));
        assert!(!tcp(&ps, &c, "8.8.8.8", "backend/api", 9101));
        assert!(!tcp(&ps, &c, "frontend/web", "8.8.8.8", 443));
        assert!(udp(&ps, &c, "frontend/web", "2001:db8::1", 443));
        // api -> db: egress allowed on pg, but db's ingress is isolated.
        let v = verdict(&ps, &c, &conn(&c, "backend/api", "backend/db", 5432, Protocol::Tcp));
        assert!(v.egress.permits());
        assert!(!v.allowed);
    }
}
