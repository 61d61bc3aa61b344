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
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    namespace: &'p str,
    /// Shared with the namespace's index of names.
    name: Arc<str>,
    direction: Direction,
    local: &'p Arc<Peer>,
    peer: &'p Arc<Peer>,
    /// The ports of every merged flow (`None`: every port); sorted and
    /// deduplicated once pairing is done.
    ports: Option<Vec<&'p PortSpec>>,
    /// Indexes into `Program::origins`; sorted and deduplicated once pairing is done.
    origins: Vec<usize>,
}

/// The pairs of one namespace, and where each name is among them.
struct NamespacePairs<'p> {
    isolation: crate::ast::Isolation,
    index: FxHashMap<Arc<str>, usize>,
    pairs: Vec<Pair<'p>>,
}

impl NamespacePairs<'_> {
    fn new(isolation: crate::ast::Isolation) -> Self {
        NamespacePairs {
            isolation,
            index: FxHashMap::default(),
            pairs: Vec::new(),
        }
    }
}

/// One object to build.
enum Work<'p> {
    DefaultDeny(&'p str, &'p NamespaceInfo),
    Pair(Pair<'p>),
}

/// Every object lowering builds, in output order (by namespace, then
/// name), each still to be built: [`Plan::build`] makes one. The pairing
/// is cheap and serial; building is the costly part, and each object can be
/// built, used and dropped on its own.
pub struct Plan<'p> {
    program: &'p Program,
    sources: &'p Sources,
    work: Vec<Work<'p>>,
    shared: Shared,
}

impl<'p> Plan<'p> {
    /// How many objects there are.
    pub fn len(&self) -> usize {
        self.work.len()
    }

    /// Whether there is no object at all.
    pub fn is_empty(&self) -> bool {
        self.work.is_empty()
    }

    /// Builds object `i`.
    pub fn build(&self, i: usize) -> net::NetworkPolicy {
        match &self.work[i] {
            Work::DefaultDeny(ns, info) => default_deny(ns, info, self.sources, &self.shared),
            Work::Pair(pair) => build(pair, self.program, &self.shared),
        }
    }

    /// The namespace and name of object `i`.
    pub fn name(&self, i: usize) -> (&str, &str) {
        match &self.work[i] {
            Work::DefaultDeny(ns, _) => (ns, DEFAULT_DENY),
            Work::Pair(pair) => (pair.namespace, &pair.name),
        }
    }

    /// Whether object `i` would be built exactly from `inputs`, the inputs
    /// of an object of an earlier run (watch mode keeps what it built).
    pub fn is_built_from(&self, i: usize, inputs: &Inputs) -> bool {
        if inputs.annotation_prefix != self.shared.annotation_prefix {
            return false;
        }
        match (&self.work[i], &inputs.object) {
            (
                Work::DefaultDeny(ns, info),
                ObjectInputs::DefaultDeny {
                    namespace,
                    isolation,
                    locations,
                },
            ) => {
                *ns == namespace
                    && info.isolation == *isolation
                    && deny_locations(info, self.sources).eq(locations.iter().map(|(f, l)| (f.as_str(), *l)))
            }
            (
                Work::Pair(pair),
                ObjectInputs::Pair {
                    namespace,
                    name,
                    direction,
                    local,
                    peer,
                    ports,
                    origins,
                },
            ) => {
                pair.namespace == namespace
                    && *pair.name == **name
                    && pair.direction == *direction
                    && pair.local == local
                    && pair.peer == peer
                    && match (&pair.ports, ports) {
                        (None, None) => true,
                        (Some(mine), Some(theirs)) => mine.iter().copied().eq(theirs.iter()),
                        _ => false,
                    }
                    && pair.origins.len() == origins.len()
                    && pair
                        .origins
                        .iter()
                        .zip(origins)
                        .all(|(&o, theirs)| theirs.matches(&self.program.origins[o]))
            }
            _ => false,
        }
    }

    /// Everything object `i` is built from, to compare with a later run's.
    pub fn inputs(&self, i: usize) -> Inputs {
        let object = match &self.work[i] {
            Work::DefaultDeny(ns, info) => ObjectInputs::DefaultDeny {
                namespace: ns.to_string(),
                isolation: info.isolation,
                locations: deny_locations(info, self.sources).map(|(f, l)| (f.to_string(), l)).collect(),
            },
            Work::Pair(pair) => ObjectInputs::Pair {
                namespace: pair.namespace.to_string(),
                name: pair.name.to_string(),
                direction: pair.direction,
                local: Arc::clone(pair.local),
                peer: Arc::clone(pair.peer),
                ports: pair.ports.as_ref().map(|ports| ports.iter().map(|&p| p.clone()).collect()),
                origins: pair
                    .origins
                    .iter()
                    .map(|&o| OriginInputs(Arc::clone(&self.program.origins[o])))
                    .collect(),
            },
        };
        Inputs {
            annotation_prefix: self.shared.annotation_prefix.clone(),
            object,
        }
    }
}

/// Everything one object is built from: the same inputs build the same object.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    annotation_prefix: String,
    object: ObjectInputs,
}

#[derive(Debug, Clone, PartialEq)]
enum ObjectInputs {
    DefaultDeny {
        namespace: String,
        isolation: crate::ast::Isolation,
        locations: Vec<(String, usize)>,
    },
    Pair {
        namespace: String,
        name: String,
        direction: Direction,
        local: Arc<Peer>,
        peer: Arc<Peer>,
        ports: Option<Vec<PortSpec>>,
        origins: Vec<OriginInputs>,
    },
}

/// An intent behind an object, of which the object takes the location,
/// text and metadata.
#[derive(Debug, Clone)]
struct OriginInputs(Arc<Origin>);

impl OriginInputs {
    /// Whether `origin` gives an object what this one gave. An intent that
    /// check kept from the last run is the very same (decision 0021).
    fn matches(&self, origin: &Arc<Origin>) -> bool {
        let mine = &self.0;
        Arc::ptr_eq(mine, origin) || (mine.location == origin.location && mine.text == origin.text && mine.metadata == origin.metadata)
    }
}

impl PartialEq for OriginInputs {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

/// Builds every NetworkPolicy, sorted by namespace then name. Diagnostics are
/// name collisions between different pairs and intents that generate nothing.
pub fn lower(program: &Program, sources: &Sources, config: &Config) -> (Vec<net::NetworkPolicy>, Vec<Diagnostic>) {
    let (plan, diagnostics) = plan(program, sources, config);
    let indexes: Vec<usize> = (0..plan.len()).collect();
    let policies = crate::parallel::map(&indexes, |_, &i| plan.build(i));
    (policies, diagnostics)
}

/// Pairs every flow into the objects to build, in output order; the
/// diagnostics are those of [`lower`].
pub fn plan<'p>(program: &'p Program, sources: &'p Sources, config: &Config) -> (Plan<'p>, Vec<Diagnostic>) {
    let declared = declared_namespaces(program);
    let mut by_namespace: FxHashMap<&str, NamespacePairs> = FxHashMap::default();
    let mut name = String::new();
    let mut diagnostics = Vec::new();
    let mut collided: Vec<usize> = Vec::new();

    for flow in &program.flows {
        let halves = [
            (Direction::Egress, &flow.source, &flow.target),
            (Direction::Ingress, &flow.target, &flow.source),
        ];
        for (direction, local, peer) in halves {
            if direction == Direction::Ingress && skips_ingress_half(local, program) {
                continue;
            }
            for ns in local_namespaces(local, &declared) {
                let group = by_namespace
                    .entry(ns.as_str())
                    .or_insert_with(|| NamespacePairs::new(program.namespaces.get(ns).map(|i| i.isolation).unwrap_or_default()));
                let enforced = match direction {
                    Direction::Ingress => group.isolation.ingress(),
                    Direction::Egress => group.isolation.egress(),
                };
                if !enforced {
                    continue;
                }
                name.clear();
                write_policy_name(&mut name, direction, local, peer, ns);
                let Some(&i) = group.index.get(name.as_str()) else {
                    let shared: Arc<str> = Arc::from(name.as_str());
                    group.index.insert(Arc::clone(&shared), group.pairs.len());
                    group.pairs.push(Pair {
                        namespace: ns,
                        name: shared,
                        direction,
                        local,
                        peer,
                        ports: (!flow.ports.is_all()).then(|| flow.ports.0.iter().collect()),
                        origins: vec![flow.origin],
                    });
                    continue;
                };
                let pair = &mut group.pairs[i];
                if pair.direction == direction && pair.local == local && pair.peer == peer {
                    match (&mut pair.ports, flow.ports.is_all()) {
                        (Some(ports), false) => ports.extend(&flow.ports.0),
                        _ => pair.ports = None,
                    }
                    pair.origins.push(flow.origin);
                } else {
                    let (first, second) = (
                        &program.origins[pair.origins.iter().copied().min().unwrap_or(0)],
                        &program.origins[flow.origin],
                    );
                    collided.push(flow.origin);
                    diagnostics.push(
                        Diagnostic::new(
                            Code::PolicyNameCollision,
                            second.span,
                            format!("two different pairs would both become policy `{}` in namespace `{ns}`", pair.name),
                        )
                        .with_label(format!("`{}`", second.text))
                        .with_secondary(first.span, format!("`{}`", first.text))
                        .with_help("rename one of the workloads or externals so that the policy names differ"),
                    );
                }
            }
        }
    }
    let mut used = vec![false; program.origins.len()];
    for &o in &collided {
        used[o] = true;
    }
    for pair in by_namespace.values().flat_map(|group| &group.pairs) {
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

    // Ordered here, as light work items, so that the objects come out of the
    // parallel build in their final order: by namespace, then name.
    let isolating = |info: &NamespaceInfo| info.declared && (info.isolation.ingress() || info.isolation.egress());
    for (ns, info) in &program.namespaces {
        if isolating(info) {
            by_namespace
                .entry(ns.as_str())
                .or_insert_with(|| NamespacePairs::new(info.isolation));
        }
    }
    let mut groups: Vec<(&str, Vec<Pair>)> = by_namespace.into_iter().map(|(ns, group)| (ns, group.pairs)).collect();
    groups.sort_unstable_by_key(|(ns, _)| *ns);
    let mut work: Vec<Work> = Vec::with_capacity(groups.iter().map(|(_, pairs)| pairs.len() + 1).sum());
    for (ns, mut pairs) in groups {
        // Names are unique within a namespace.
        pairs.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for pair in &mut pairs {
            if let Some(ports) = &mut pair.ports {
                ports.sort_unstable();
                ports.dedup();
            }
            pair.origins.sort_unstable();
            pair.origins.dedup();
        }
        let deny = program.namespaces.get_key_value(ns).filter(|(_, info)| isolating(info));
        let before = if deny.is_some() {
            pairs.partition_point(|p| &*p.name < DEFAULT_DENY)
        } else {
            pairs.len()
        };
        let mut pairs = pairs.into_iter();
        work.extend(pairs.by_ref().take(before).map(Work::Pair));
        if let Some((ns, info)) = deny {
            work.push(Work::DefaultDeny(ns, info));
        }
        work.extend(pairs.map(Work::Pair));
    }
    let plan = Plan {
        program,
        sources,
        work,
        shared: Shared::new(config),
    };
    (plan, diagnostics)
}

/// What every object carries, built once and cloned into each.
struct Shared {
    labels: BTreeMap<String, String>,
    annotation_prefix: String,
    source_key: String,
    intent_key: String,
}

impl Shared {
    fn new(config: &Config) -> Self {
        Shared {
            labels: BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())]),
            annotation_prefix: config.annotation_prefix.clone(),
            source_key: format!("{}/source", config.annotation_prefix),
            intent_key: format!("{}/intent", config.annotation_prefix),
        }
    }
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
        .flat_map(|(direction, local, peer)| local_namespaces(local, declared).map(move |ns| (ns, policy_name(direction, local, peer, ns))))
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
pub(crate) fn local_namespaces<'a: 'd, 'd>(peer: &'a Peer, declared: &'d [&'a String]) -> impl Iterator<Item = &'a String> + 'd {
    let (one, every): (Option<&'a String>, &'d [&'a String]) = match peer {
        Peer::Pods {
            namespaces: Namespaces::Named(ns),
            ..
        } => (Some(ns), &[]),
        Peer::Pods {
            namespaces: Namespaces::Selected(sel),
            ..
        } if sel.is_empty() => (None, declared),
        _ => (None, &[]),
    };
    one.into_iter().chain(every.iter().copied())
}

/// `<local>-to-<peer>` or `<local>-from-<peer>`, the peer prefixed with its
/// namespace when it lives elsewhere; cut with a hash past 253 characters.
pub fn policy_name(direction: Direction, local: &Peer, peer: &Peer, namespace: &str) -> String {
    let mut name = String::new();
    write_policy_name(&mut name, direction, local, peer, namespace);
    name
}

/// [`policy_name`], appended to `out` (empty), which lowering reuses for every half.
fn write_policy_name(out: &mut String, direction: Direction, local: &Peer, peer: &Peer, namespace: &str) {
    push_peer_name(out, local.name());
    out.push_str(match direction {
        Direction::Egress => "-to-",
        Direction::Ingress => "-from-",
    });
    match peer {
        Peer::Pods {
            namespaces: Namespaces::Named(ns),
            name,
            ..
        } if ns != namespace && *name != PeerName::Dns => {
            out.push_str(ns);
            out.push('.');
            push_peer_name(out, name);
        }
        other => push_peer_name(out, other.name()),
    }
    if out.len() > MAX_NAME {
        let hash = crate::check::short_hash(out);
        let cut = out[..MAX_NAME - hash.len() - 1].trim_end_matches(['-', '.']).len();
        out.truncate(cut);
        out.push('-');
        out.push_str(&hash);
    }
}

fn push_peer_name(out: &mut String, name: &PeerName) {
    match name {
        // Most names, without the formatting machinery.
        PeerName::Workload(n) | PeerName::External(n) => out.push_str(n),
        other => {
            use std::fmt::Write;
            // Writing into a String cannot fail.
            let _ = write!(out, "{other}");
        }
    }
}

fn object_meta(namespace: &str, name: String, annotations: BTreeMap<String, String>, shared: &Shared) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        labels: Some(shared.labels.clone()),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    }
}

fn default_deny(ns: &str, info: &NamespaceInfo, sources: &Sources, shared: &Shared) -> net::NetworkPolicy {
    let mut types = Vec::new();
    if info.isolation.ingress() {
        types.push("Ingress".to_string());
    }
    if info.isolation.egress() {
        types.push("Egress".to_string());
    }
    let source = deny_locations(info, sources)
        .map(|(f, l)| format!("{f}:{l}"))
        .collect::<Vec<_>>()
        .join(", ");
    let annotations = BTreeMap::from([(shared.source_key.clone(), source)]);
    net::NetworkPolicy {
        metadata: object_meta(ns, DEFAULT_DENY.to_string(), annotations, shared),
        spec: Some(net::NetworkPolicySpec {
            pod_selector: Some(meta::LabelSelector::default()),
            policy_types: Some(types),
            ..Default::default()
        }),
    }
}

/// Where a namespace is declared, as distinct `(file, line)`, in order.
fn deny_locations<'a>(info: &NamespaceInfo, sources: &'a Sources) -> impl Iterator<Item = (&'a str, usize)> {
    let mut locations: Vec<(&str, usize)> = info
        .declarations
        .iter()
        .map(|s| (sources.name(s.file), sources.line_of(*s)))
        .collect();
    locations.sort();
    locations.dedup();
    locations.into_iter()
}

fn build(pair: &Pair, program: &Program, shared: &Shared) -> net::NetworkPolicy {
    let origins: Vec<&Origin> = pair.origins.iter().map(|&i| &*program.origins[i]).collect();
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    annotations.insert(shared.source_key.clone(), joined(origins.iter().map(|o| o.location.as_str()), ", "));
    annotations.insert(shared.intent_key.clone(), joined(origins.iter().map(|o| o.text.as_str()), "\n"));
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

    let ns = pair.namespace;
    let peers = render_peers(pair.peer, ns);
    let ports = pair.ports.as_ref().map(|ports| ports.iter().copied().map(render_port).collect());
    let pod_selector = match &**pair.local {
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
        metadata: object_meta(ns, pair.name.to_string(), annotations, shared),
        spec: Some(spec),
    }
}

/// The distinct `items`, in order, joined by `separator` (into a string of
/// the exact length: it stays in the object).
fn joined<'a>(items: impl Iterator<Item = &'a str>, separator: &str) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for item in items {
        if !distinct.contains(&item) {
            distinct.push(item);
        }
    }
    distinct.join(separator)
}

/// The peer as seen from a policy in `namespace`: one list item per peer,
/// namespace and pod selectors ANDed in the same item.
fn render_peers(peer: &Peer, namespace: &str) -> Vec<net::NetworkPolicyPeer> {
    match peer {
        Peer::Pods { namespaces, pods, .. } => {
            let namespace_selector = match namespaces {
                Namespaces::Named(ns) if ns == namespace => None,
                Namespaces::Named(ns) => Some(meta::LabelSelector {
                    match_labels: Some(BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.clone())])),
                    match_expressions: None,
                }),
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
