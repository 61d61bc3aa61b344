//! IR to Kubernetes objects: pairs each flow into an egress half on the
//! caller and an ingress half on the callee, adds each namespace's
//! `default-deny`, names everything. No I/O, no formatting.

use crate::ast::Span;
use crate::config::Config;
use crate::diagnostics::{Code, Diagnostic};
use crate::ir::*;
use crate::source::Sources;
use crate::{grouping, parallel};
use k8s_openapi::api::networking::v1 as net;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

mod text;
pub(crate) use text::{OriginHeads, Text, Texts};

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

/// Which policy a half of a flow goes into: a namespace's policy for its
/// local endpoint towards a peer, in one direction, and the policy's name.
struct Policy<'p> {
    namespace: &'p str,
    name: Box<str>,
    direction: Direction,
    local: &'p Arc<Peer>,
    peer: &'p Arc<Peer>,
}

/// One policy to build, and everything merged into it.
struct Pair<'p> {
    policy: Policy<'p>,
    /// Where the ports of every merged flow are in [`Plan::ports`], sorted
    /// and deduplicated (`None`: every port).
    ports: Option<Range<usize>>,
    /// Where its intents are in [`Plan::origins`] (indexes into
    /// `Program::origins`), sorted and deduplicated.
    origins: Range<usize>,
}

/// The half of a flow that one namespace enforces, and the policy it goes into.
struct Half<'p> {
    policy: Policy<'p>,
    flow: &'p Flow,
    /// The place of the policy's namespace in `Program::namespaces` (which
    /// is in name order), or [`UNLISTED`]: grouping by namespace then needs
    /// no hashing of names.
    namespace: usize,
}

/// The place of a namespace missing from `Program::namespaces`, which only
/// a program not made by check can lack.
const UNLISTED: usize = usize::MAX;

/// One object to build.
enum Work<'p> {
    DefaultDeny(&'p str, &'p NamespaceInfo),
    Pair(Pair<'p>),
}

/// Every object lowering builds, in output order (by namespace, then
/// name), each still to be built: [`Plan::build`] makes one. The pairing
/// is cheap (naming the halves and merging each namespace's run on every
/// core); building is the costly part, and each object can be built, used
/// and dropped on its own.
pub struct Plan<'p> {
    program: &'p Program,
    sources: &'p Sources,
    work: Vec<Work<'p>>,
    /// The ports of every pair, each pair's a run (one vector, not one per pair).
    ports: Vec<&'p PortSpec>,
    /// The intents of every pair, each pair's a run.
    origins: Vec<usize>,
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
            Work::Pair(pair) => build(pair, self.ports(pair), self.origins(pair), self.program, &self.shared),
        }
    }

    /// The namespace and name of object `i`.
    pub fn name(&self, i: usize) -> (&str, &str) {
        match &self.work[i] {
            Work::DefaultDeny(ns, _) => (ns, DEFAULT_DENY),
            Work::Pair(pair) => (pair.policy.namespace, &pair.policy.name),
        }
    }

    fn ports(&self, pair: &Pair) -> Option<&[&'p PortSpec]> {
        pair.ports.clone().map(|run| &self.ports[run])
    }

    fn origins(&self, pair: &Pair) -> &[usize] {
        &self.origins[pair.origins.clone()]
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
                pair.policy.namespace == namespace
                    && *pair.policy.name == **name
                    && pair.policy.direction == *direction
                    && pair.policy.local == local
                    && pair.policy.peer == peer
                    && match (self.ports(pair), ports) {
                        (None, None) => true,
                        (Some(mine), Some(theirs)) => mine.iter().copied().eq(theirs.iter()),
                        _ => false,
                    }
                    && self.origins(pair).len() == origins.len()
                    && self
                        .origins(pair)
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
                namespace: pair.policy.namespace.to_string(),
                name: pair.policy.name.to_string(),
                direction: pair.policy.direction,
                local: Arc::clone(pair.policy.local),
                peer: Arc::clone(pair.policy.peer),
                ports: self.ports(pair).map(|ports| ports.iter().map(|&p| p.clone()).collect()),
                origins: self
                    .origins(pair)
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
    let mut halves = enforced_halves(program);
    let (grouped, namespaces) = by_namespace(&halves, program);
    // Each namespace's policies are sorted and merged on their own: on
    // every core, in chunks of about equal numbers of halves.
    let parts = parallel::map_weighted_chunks(
        &namespaces,
        |namespace| namespace.halves.len() + 1,
        Scratch::default,
        |scratch, _, chunk| {
            let size = chunk.iter().map(|namespace| namespace.halves.len()).sum();
            let mut part = Part {
                work: Vec::with_capacity(size + chunk.len()),
                firsts: Vec::with_capacity(size),
                ports: Vec::with_capacity(size),
                origins: Vec::with_capacity(size),
                collisions: Vec::new(),
            };
            for namespace in chunk {
                merge_namespace(namespace, &grouped[namespace.halves.clone()], &halves, program, scratch, &mut part);
            }
            vec![part]
        },
    );
    // Put together in order: each pair takes its name from its first half,
    // and its ranges move by the ports and intents of the parts before.
    let mut work: Vec<Work> = Vec::with_capacity(halves.len() + program.namespaces.len());
    let (mut ports, mut origins) = (Vec::with_capacity(halves.len()), Vec::with_capacity(halves.len()));
    let mut collisions: Vec<(usize, Diagnostic)> = Vec::new();
    for mut part in parts {
        let (port_base, origin_base, start) = (ports.len(), origins.len(), work.len());
        ports.append(&mut part.ports);
        origins.append(&mut part.origins);
        collisions.append(&mut part.collisions);
        work.append(&mut part.work);
        let pairs = work[start..].iter_mut().filter_map(|item| match item {
            Work::Pair(pair) => Some(pair),
            Work::DefaultDeny(..) => None,
        });
        for (pair, &first) in pairs.zip(&part.firsts) {
            pair.policy.name = std::mem::take(&mut halves[first].policy.name);
            if let Some(run) = &mut pair.ports {
                *run = run.start + port_base..run.end + port_base;
            }
            pair.origins = pair.origins.start + origin_base..pair.origins.end + origin_base;
        }
    }
    // Every intent that some half comes from: the others generate nothing.
    let mut used = vec![false; program.origins.len()];
    for &origin in &origins {
        used[origin] = true;
    }
    collisions.sort_unstable_by_key(|(seq, _)| *seq);
    let mut diagnostics = Vec::with_capacity(collisions.len());
    for (seq, collision) in collisions {
        used[halves[seq].flow.origin] = true;
        diagnostics.push(collision);
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
    let plan = Plan {
        program,
        sources,
        work,
        ports,
        origins,
        shared: Shared::new(config),
    };
    (plan, diagnostics)
}

/// The halves of one namespace's policies, and its `default-deny` if it gets one.
struct NamespaceHalves<'p> {
    /// Where its halves are in the grouped indexes, in flow order.
    halves: Range<usize>,
    default_deny: Option<(&'p str, &'p NamespaceInfo)>,
}

/// The objects of some namespaces, in output order, with the ports and
/// intents of their pairs: ranges are into this part's own vectors, and
/// names are still in the halves.
struct Part<'p> {
    work: Vec<Work<'p>>,
    /// The half each pair starts with, which has its name.
    firsts: Vec<usize>,
    ports: Vec<&'p PortSpec>,
    origins: Vec<usize>,
    /// Each name collision, by the index of the half that collides.
    collisions: Vec<(usize, Diagnostic)>,
}

/// What merging a namespace needs for a while, kept by each thread.
#[derive(Default)]
struct Scratch<'p> {
    order: Vec<(u128, usize)>,
    ports: Vec<&'p PortSpec>,
    origins: Vec<usize>,
}

/// Sorts the halves of one namespace (`indexes` into `halves`, in flow
/// order) by name and merges those of one policy into a pair, into `part`;
/// the namespace's `default-deny` comes among its pairs, by name. Of two
/// different pairs with one name, the first keeps it and the other is a
/// collision.
fn merge_namespace<'p>(
    namespace: &NamespaceHalves<'p>,
    indexes: &[usize],
    halves: &[Half<'p>],
    program: &'p Program,
    scratch: &mut Scratch<'p>,
    part: &mut Part<'p>,
) {
    // The first bytes of a name, as a number, order most names without a
    // call to compare strings; the whole name decides the rest, then the
    // index, which is in flow order, between halves of one policy.
    let order = &mut scratch.order;
    order.clear();
    order.extend(indexes.iter().map(|&i| (name_prefix(&halves[i].policy.name), i)));
    order.sort_unstable_by(|&(pa, a), &(pb, b)| {
        pa.cmp(&pb)
            .then_with(|| (&halves[a].policy.name, a).cmp(&(&halves[b].policy.name, b)))
    });
    let mut default_deny = namespace.default_deny;
    let mut order = order.iter().map(|&(_, i)| i).peekable();
    while let Some(seq) = order.next() {
        let first = &halves[seq];
        let name = &first.policy.name;
        // The ports and intents of the pair; every port once any flow allows every port.
        let (run_ports, run_origins) = (&mut scratch.ports, &mut scratch.origins);
        let mut every_port = false;
        let merge = |every_port: &mut bool, ports: &mut Vec<&'p PortSpec>, origins: &mut Vec<usize>, flow: &'p Flow| {
            *every_port |= flow.ports.is_all();
            if !*every_port {
                ports.extend(&flow.ports.0);
            }
            origins.push(flow.origin);
        };
        merge(&mut every_port, run_ports, run_origins, first.flow);
        while let Some(other_seq) = order.next_if(|&h| halves[h].policy.name == *name) {
            let other = &halves[other_seq];
            let (mine, theirs) = (&first.policy, &other.policy);
            if theirs.direction == mine.direction && theirs.local == mine.local && theirs.peer == mine.peer {
                merge(&mut every_port, run_ports, run_origins, other.flow);
                continue;
            }
            // The pair keeps the name: the halves merged into it so far come first.
            let (earliest, second) = (
                &program.origins[run_origins.iter().copied().min().unwrap_or(0)],
                &program.origins[other.flow.origin],
            );
            part.collisions.push((
                other_seq,
                Diagnostic::new(
                    Code::PolicyNameCollision,
                    second.span,
                    format!(
                        "two different pairs would both become policy `{name}` in namespace `{}`",
                        mine.namespace
                    ),
                )
                .with_label(format!("`{}`", second.text))
                .with_secondary(earliest.span, format!("`{}`", earliest.text))
                .with_help("rename one of the workloads or externals so that the policy names differ"),
            ));
        }
        let pair_ports = (!every_port).then(|| {
            run_ports.sort_unstable();
            run_ports.dedup();
            let start = part.ports.len();
            part.ports.append(run_ports);
            start..part.ports.len()
        });
        run_ports.clear();
        run_origins.sort_unstable();
        run_origins.dedup();
        let start = part.origins.len();
        part.origins.append(run_origins);
        if let Some((ns, info)) = default_deny.take_if(|_| DEFAULT_DENY <= &**name) {
            part.work.push(Work::DefaultDeny(ns, info));
        }
        part.work.push(Work::Pair(Pair {
            policy: Policy {
                name: Box::default(),
                ..first.policy
            },
            ports: pair_ports,
            origins: start..part.origins.len(),
        }));
        part.firsts.push(seq);
    }
    if let Some((ns, info)) = default_deny {
        part.work.push(Work::DefaultDeny(ns, info));
    }
}

/// Every half of every flow that its namespace enforces, named, in flow
/// order. Naming is most of pairing's work, and each flow's is its own: on
/// every core.
fn enforced_halves(program: &Program) -> Vec<Half<'_>> {
    let declared = declared_namespaces(program);
    let listed: FxHashMap<&str, (usize, crate::ast::Isolation)> = program
        .namespaces
        .iter()
        .enumerate()
        .map(|(place, (ns, info))| (ns.as_str(), (place, info.isolation)))
        .collect();
    parallel::map_chunks(&program.flows, |start, chunk| {
        let mut out = Vec::with_capacity(chunk.len() * 2);
        let mut name = String::new();
        // Borrowed from the program, not from the chunk, to outlive the call.
        for flow in &program.flows[start..start + chunk.len()] {
            let halves = [
                (Direction::Egress, &flow.source, &flow.target),
                (Direction::Ingress, &flow.target, &flow.source),
            ];
            for (direction, local, peer) in halves {
                if direction == Direction::Ingress && skips_ingress_half(local, program) {
                    continue;
                }
                for ns in local_namespaces(local, &declared) {
                    let (namespace, isolation) = listed.get(ns.as_str()).copied().unwrap_or((UNLISTED, Default::default()));
                    let enforced = match direction {
                        Direction::Ingress => isolation.ingress(),
                        Direction::Egress => isolation.egress(),
                    };
                    if !enforced {
                        continue;
                    }
                    name.clear();
                    write_policy_name(&mut name, direction, local, peer, ns);
                    let policy = Policy {
                        namespace: ns,
                        name: Box::from(name.as_str()),
                        direction,
                        local,
                        peer,
                    };
                    out.push(Half { policy, flow, namespace });
                }
            }
        }
        out
    })
}

/// The indexes of `halves` grouped by namespace, each namespace's in flow
/// order, and the namespaces in output order (by name), each with where
/// its halves are and its `default-deny`, if it is isolated. Every listed
/// namespace has one, halves or not.
fn by_namespace<'p>(halves: &[Half<'p>], program: &'p Program) -> (Vec<usize>, Vec<NamespaceHalves<'p>>) {
    // Listed namespaces are numbered by their place, in name order; others
    // (never, in a program made by check) after them, by hashing.
    let mut names: Vec<&str> = program.namespaces.keys().map(String::as_str).collect();
    let mut unlisted: FxHashMap<&str, usize> = FxHashMap::default();
    let namespace_of: Vec<usize> = halves
        .iter()
        .map(|half| match half.namespace {
            UNLISTED => *unlisted.entry(half.policy.namespace).or_insert_with(|| {
                names.push(half.policy.namespace);
                names.len() - 1
            }),
            listed => listed,
        })
        .collect();
    let mut by_rank: Vec<usize> = (0..names.len()).collect();
    if !unlisted.is_empty() {
        by_rank.sort_unstable_by_key(|&id| names[id]);
    }
    let mut rank = vec![0; names.len()];
    for (r, &id) in by_rank.iter().enumerate() {
        rank[id] = r;
    }
    // Grouped by namespace rank, in flow order within each.
    let (grouped, starts) = grouping::by_key(0..halves.len(), |i| rank[namespace_of[i]], names.len());
    let isolating = |info: &NamespaceInfo| info.declared && (info.isolation.ingress() || info.isolation.egress());
    let infos: Vec<&NamespaceInfo> = program.namespaces.values().collect();
    let namespaces = by_rank
        .iter()
        .enumerate()
        .map(|(r, &id)| NamespaceHalves {
            halves: starts[r]..starts[r + 1],
            default_deny: infos.get(id).filter(|info| isolating(info)).map(|&info| (names[id], info)),
        })
        .collect();
    (grouped, namespaces)
}

/// The first 16 bytes of `name`, zero-padded, big-endian: of two names whose
/// prefixes differ, the smaller prefix is the smaller name.
fn name_prefix(name: &str) -> u128 {
    let mut bytes = [0; 16];
    let n = name.len().min(bytes.len());
    bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
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
    let mut source = String::new();
    push_deny_source(&mut source, info, sources);
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

/// The `source` annotation of a namespace's `default-deny`: where it is declared.
fn push_deny_source(out: &mut String, info: &NamespaceInfo, sources: &Sources) {
    use std::fmt::Write;
    for (i, (file, line)) in deny_locations(info, sources).enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        // Writing into a String cannot fail.
        let _ = write!(out, "{separator}{file}:{line}");
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

fn build(pair: &Pair, ports: Option<&[&PortSpec]>, origins: &[usize], program: &Program, shared: &Shared) -> net::NetworkPolicy {
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    let origins = || origins.iter().map(|&i| &*program.origins[i]);
    each_annotation(origins, &mut Vec::new(), |annotation, items, separator| {
        let key = match annotation {
            Annotation::Source => shared.source_key.clone(),
            Annotation::Intent => shared.intent_key.clone(),
            Annotation::Metadata(key) => key.to_string(),
        };
        annotations.insert(key, joined(items, separator));
    });

    let ns = pair.policy.namespace;
    let peers = render_peers(pair.policy.peer, ns);
    let ports = ports.map(|ports| ports.iter().copied().map(render_port).collect());
    let mut spec = net::NetworkPolicySpec {
        pod_selector: Some(pod_selector(pair.policy.local)),
        ..Default::default()
    };
    match pair.policy.direction {
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
        metadata: object_meta(ns, pair.policy.name.to_string(), annotations, shared),
        spec: Some(spec),
    }
}

/// An annotation of a pair: where an intent is written, the intent, or a
/// metadata key.
enum Annotation<'p> {
    Source,
    Intent,
    Metadata(&'p str),
}

/// The annotations of a pair made of `origins`, in the order `build`
/// inserts them (a later one with the key of an earlier replaces it): each
/// annotation, the items its value joins and their separator. Each
/// metadata key's values stay in the order of the origins (grouped by a
/// stable sort, in `metadata`).
fn each_annotation<'p, I: Iterator<Item = &'p Origin>>(
    origins: impl Fn() -> I,
    metadata: &mut Vec<(&'p str, &'p str)>,
    mut each: impl FnMut(Annotation<'p>, &mut dyn Iterator<Item = &'p str>, &'static str),
) {
    each(Annotation::Source, &mut origins().map(|o| o.location.as_str()), ", ");
    each(Annotation::Intent, &mut origins().map(|o| o.text.as_str()), "\n");
    metadata.clear();
    metadata.extend(origins().flat_map(|o| o.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    metadata.sort_by_key(|&(k, _)| k);
    for values in metadata.chunk_by(|a, b| a.0 == b.0) {
        each(Annotation::Metadata(values[0].0), &mut values.iter().map(|&(_, v)| v), ", ");
    }
}

/// The `podSelector` of a policy for the pods of `local`.
fn pod_selector(local: &Peer) -> meta::LabelSelector {
    match local {
        Peer::Pods { pods, .. } => selector(pods),
        Peer::Ips { .. } => meta::LabelSelector::default(),
    }
}

/// The distinct `items`, in order, joined by `separator` (into a string of
/// the exact length: it stays in the object).
fn joined<'a>(items: impl Iterator<Item = &'a str>, separator: &str) -> String {
    let mut out = String::new();
    push_joined(&mut out, items, separator);
    out
}

/// [`joined`], appended to `out`; a string empty on entry ends at its exact length.
fn push_joined<'a>(out: &mut String, mut items: impl Iterator<Item = &'a str>, separator: &str) {
    let first = items.next().unwrap_or_default();
    let Some(second) = items.next() else {
        // Most objects come from one intent: no list to deduplicate.
        out.push_str(first);
        return;
    };
    let mut distinct: Vec<&str> = vec![first];
    for item in std::iter::once(second).chain(items) {
        if !distinct.contains(&item) {
            distinct.push(item);
        }
    }
    let length = distinct.iter().map(|item| item.len()).sum::<usize>() + separator.len() * (distinct.len() - 1);
    out.reserve_exact(length);
    for (i, item) in distinct.into_iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(item);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Namespaces `b` and `d` each get a policy `api-from-a.web`.
    const TOWNS: &str = "namespace a\nweb -> b/api:80\nweb -> d/api:81\n\
                         namespace b\napi -> c/db:5432\n\
                         namespace c\ndb -> d/api:9000\n\
                         namespace d\napi -> db:5432\n";

    /// The last policy of `x` and the first of `y` have one name.
    const TWINS: &str = "namespace x\nweb -> z/api:80\nnamespace y\nweb -> z/api:81\nnamespace z\n";

    #[test]
    fn namespaces_missing_from_the_program_are_lowered_as_listed_ones_in_name_order() {
        for (text, missing) in [(TOWNS, ["b", "d"]), (TWINS, ["y", "z"])] {
            let c = crate::compile_str("t.np", text);
            assert!(!c.has_errors(), "{}", c.render_diagnostics());
            let (mut program, config) = (c.program, Config::default());
            let (listed, diagnostics) = lower(&program, &c.sources, &config);
            assert!(diagnostics.is_empty(), "{diagnostics:?}");
            // A program not made by check may lack namespaces (then enforcing
            // both directions, with no `default-deny`): one between listed
            // ones, and one last.
            for ns in missing {
                program.namespaces.remove(ns);
            }
            let (unlisted, diagnostics) = lower(&program, &c.sources, &config);
            assert!(diagnostics.is_empty(), "{diagnostics:?}");
            let expected: Vec<_> = listed
                .into_iter()
                .filter(|p| {
                    !(missing.contains(&p.metadata.namespace.as_deref().unwrap_or_default())
                        && p.metadata.name.as_deref() == Some(DEFAULT_DENY))
                })
                .collect();
            let names = |policies: &[net::NetworkPolicy]| -> Vec<String> {
                policies
                    .iter()
                    .map(|p| format!("{:?}/{:?}", p.metadata.namespace, p.metadata.name))
                    .collect()
            };
            assert_eq!(names(&unlisted), names(&expected));
            assert!(unlisted == expected);
        }
    }
}
