//! Translation validation and the user's `expect` statements: the emitted
//! policies, evaluated with Kubernetes semantics on the synthesised model,
//! against what the intents say.
//!
//! What the intents say is restated here from LANGUAGE.md §5, at the level
//! of sets of endpoints rather than policy objects: a pod is isolated for a
//! direction when its namespace is declared and isolates it, or when some
//! intent's half selects it; an isolated pod may connect (or be reached)
//! exactly where an intent whose half selects it says so. Each side is
//! compared on its own, for every pod, every peer endpoint and every
//! modelled port, with bitsets so that large fleets stay fast.

use crate::diagnostics::{Code, Diagnostic};
use crate::evaluate::{self, Connection, Direction, Endpoint, rules};
use crate::ir::*;
use crate::model::{self, Model};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use rustc_hash::FxHashMap;

/// One disagreement between the emitted policies and the intents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The side that disagrees.
    pub direction: Direction,
    /// The connection.
    pub connection: Connection,
    /// Whether the emitted policies allow it (the intents say the opposite).
    pub emitted_allows: bool,
    /// An intent behind the expected verdict, if one is known.
    pub origin: Option<usize>,
}

/// Compares the emitted policies with the intents on every modelled
/// connection. Empty means they agree.
pub fn verify(program: &Program, policies: &[NetworkPolicy], model: &Model) -> Vec<Mismatch> {
    let index = Index::new(program, policies, model);
    // A chunk of pods per thread, so that each worker reuses its scratch rows.
    let pods: Vec<usize> = (0..model.cluster.pods.len()).collect();
    crate::parallel::map_chunks(&pods, |_, chunk| {
        let mut rows = index.rows();
        let mut mismatches = Vec::new();
        for &pod in chunk {
            for direction in [Direction::Egress, Direction::Ingress] {
                index.compare(pod, direction, &mut rows, &mut mismatches);
            }
        }
        mismatches
    })
}

/// Diagnostics for [`verify`]'s mismatches: each is a compiler bug.
pub fn mismatch_diagnostics(mismatches: &[Mismatch], program: &Program, model: &Model) -> Vec<Diagnostic> {
    const SHOWN: usize = 5;
    let mut out = Vec::new();
    for m in mismatches.iter().take(SHOWN) {
        let what = model.cluster.describe_connection(&m.connection);
        let side = m.direction.as_str();
        let (span, message) = match (m.emitted_allows, m.origin.and_then(|o| program.origins.get(o))) {
            (false, Some(origin)) => (
                origin.span,
                format!(
                    "the emitted policies deny `{what}` on the {side} side, but `{}` allows it",
                    origin.text
                ),
            ),
            (false, None) => (
                Default::default(),
                format!("the emitted policies deny `{what}` on the {side} side, which an intent allows"),
            ),
            (true, origin) => (
                origin.map(|o| o.span).unwrap_or_default(),
                format!("the emitted policies allow `{what}` on the {side} side, which no intent declares"),
            ),
        };
        out.push(
            Diagnostic::new(Code::VerificationFailed, span, message)
                .with_note("this is a bug in netpolc: the policies do not mean what the intents say")
                .with_help("please report it with the input files; do not apply this output"),
        );
    }
    if mismatches.len() > SHOWN {
        let span = out.first().map(|d| d.span()).unwrap_or_default();
        out.push(Diagnostic::new(
            Code::VerificationFailed,
            span,
            format!("{} more connections disagree", mismatches.len() - SHOWN),
        ));
    }
    out
}

/// Checks every `expect` statement; one diagnostic per statement that does not hold.
pub fn check_expectations(program: &Program, policies: &[NetworkPolicy], model: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for expectation in &program.expectations {
        if let Some(counter) = counterexample(expectation, policies, model) {
            let verdict = evaluate::evaluate(policies, &model.cluster, &counter);
            let what = model.cluster.describe_connection(&counter);
            let (word, reason) = if expectation.allowed {
                let side = if verdict.egress.permits() {
                    ("ingress", &verdict.ingress)
                } else {
                    ("egress", &verdict.egress)
                };
                ("denied", format!("{} side: {}", side.0, side.1))
            } else {
                let rules = [(&verdict.egress, "egress"), (&verdict.ingress, "ingress")]
                    .iter()
                    .map(|(v, side)| format!("{side} side: {v}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                ("allowed", rules)
            };
            out.push(
                Diagnostic::new(
                    Code::ExpectationFailed,
                    expectation.span,
                    format!("expectation does not hold: `{what}` is {word}"),
                )
                .with_label(format!("expected {}", if expectation.allowed { "allowed" } else { "denied" }))
                .with_note(reason)
                .with_help("change the intents, or the expectation if it is the one that is wrong"),
            );
        }
    }
    out
}

/// A connection between the expectation's endpoints that contradicts it.
fn counterexample(expectation: &Expectation, policies: &[NetworkPolicy], model: &Model) -> Option<Connection> {
    let sources = model.members(&expectation.source);
    let destinations = model.members(&expectation.target);
    for source in &sources {
        for destination in &destinations {
            if source == destination || matches!((source, destination), (Endpoint::Ip(_), Endpoint::Ip(_))) {
                continue;
            }
            let pod = model.cluster.endpoint_pod(destination);
            for &(port, protocol) in &model.ports {
                if !expectation.ports.is_all() && !model::ports_contain(&expectation.ports, pod, port, protocol) {
                    continue;
                }
                let connection = Connection::new(*source, *destination, port, protocol);
                if evaluate::is_allowed(policies, &model.cluster, &connection) != expectation.allowed {
                    return Some(connection);
                }
            }
        }
    }
    None
}

/// Address endpoints inside each IP block, by the block's cidr and holes.
type BlockCache = std::sync::Mutex<FxHashMap<(String, Vec<String>), std::sync::Arc<Vec<usize>>>>;

/// Port slots as bits, `model.ports.len()` of them.
type Bits = Vec<u64>;

/// What one side of one pod allows, as port bits per peer endpoint.
///
/// Rows are dense (`words` per endpoint) and reused from pod to pod: only the
/// entries written since the last [`Row::reset`] are cleared, so building a
/// row costs what it touches, with no allocation or hashing per entry.
struct Row {
    /// `false` when the pod is not isolated in this direction: everything is allowed.
    isolated: bool,
    words: usize,
    bits: Vec<u64>,
    /// Endpoints with a non-zero entry, each once.
    touched: Vec<usize>,
    /// Per endpoint: the first flow origin behind its entry (expected rows only).
    origin: Vec<Option<usize>>,
}

impl Row {
    fn new(endpoints: usize, words: usize) -> Row {
        Row {
            isolated: false,
            words,
            bits: vec![0; endpoints * words],
            touched: Vec::new(),
            origin: vec![None; endpoints],
        }
    }

    fn reset(&mut self, isolated: bool) {
        for &e in &self.touched {
            self.bits[e * self.words..(e + 1) * self.words].fill(0);
            self.origin[e] = None;
        }
        self.touched.clear();
        self.isolated = isolated;
    }

    fn entry(&self, endpoint: usize) -> &[u64] {
        &self.bits[endpoint * self.words..(endpoint + 1) * self.words]
    }

    fn or_into(&mut self, endpoint: usize, bits: &Bits, origin: Option<usize>) {
        if bits.iter().all(|w| *w == 0) {
            return;
        }
        let slot = &mut self.bits[endpoint * self.words..(endpoint + 1) * self.words];
        if slot.iter().all(|w| *w == 0) {
            self.touched.push(endpoint);
        }
        for (a, b) in slot.iter_mut().zip(bits) {
            *a |= b;
        }
        if self.origin[endpoint].is_none() {
            self.origin[endpoint] = origin;
        }
    }

    /// Whether the row allows port slot `k` towards `endpoint`.
    fn allows(&self, endpoint: usize, k: usize) -> bool {
        !self.isolated || self.entry(endpoint)[k / 64] & (1 << (k % 64)) != 0
    }

    /// Whether two rows allow the same, ignoring `own` (the pod itself).
    fn same_as(&self, other: &Row, own: usize) -> bool {
        if self.isolated != other.isolated {
            return false;
        }
        let differs = |a: &Row, b: &Row| a.touched.iter().any(|&e| e != own && a.entry(e) != b.entry(e));
        !self.isolated || !(differs(self, other) || differs(other, self))
    }
}

/// Pods by namespace and by label, so that a selector's candidates are the
/// pods carrying one of its `matchLabels` rather than a whole namespace.
#[derive(Default)]
struct PodIndex<'a> {
    pods: usize,
    by_namespace: FxHashMap<&'a str, Vec<usize>>,
    by_label: FxHashMap<(&'a str, &'a str, &'a str), Vec<usize>>,
    by_label_anywhere: FxHashMap<(&'a str, &'a str), Vec<usize>>,
}

impl<'a> PodIndex<'a> {
    fn new(cluster: &'a crate::evaluate::Cluster) -> PodIndex<'a> {
        let mut index = PodIndex {
            pods: cluster.pods.len(),
            ..Default::default()
        };
        for (i, pod) in cluster.pods.iter().enumerate() {
            index.by_namespace.entry(pod.namespace.as_str()).or_default().push(i);
            for (k, v) in &pod.labels {
                index
                    .by_label
                    .entry((pod.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
                index.by_label_anywhere.entry((k.as_str(), v.as_str())).or_default().push(i);
            }
        }
        index
    }

    /// A superset of the pods in `namespace` (any namespace for `None`) that
    /// carry every label of `labels`.
    fn candidates<'l>(&self, namespace: Option<&str>, labels: impl Iterator<Item = (&'l str, &'l str)>) -> Vec<usize> {
        let mut best: Option<&Vec<usize>> = None;
        for (k, v) in labels {
            let list = match namespace {
                Some(ns) => self.by_label.get(&(ns, k, v)),
                None => self.by_label_anywhere.get(&(k, v)),
            };
            let Some(list) = list else { return Vec::new() };
            if best.is_none_or(|b| list.len() < b.len()) {
                best = Some(list);
            }
        }
        match (best, namespace) {
            (Some(list), _) => list.clone(),
            (None, Some(ns)) => self.by_namespace.get(ns).cloned().unwrap_or_default(),
            (None, None) => (0..self.pods).collect(),
        }
    }
}

fn k8s_labels(selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>) -> impl Iterator<Item = (&str, &str)> {
    selector
        .and_then(|s| s.match_labels.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

struct Index<'a> {
    program: &'a Program,
    policies: &'a [NetworkPolicy],
    model: &'a Model,
    endpoints: Vec<Endpoint>,
    pods: PodIndex<'a>,
    /// Per pod and direction: policies that isolate it.
    policies_of: [Vec<Vec<usize>>; 2],
    /// Per pod and direction: flows whose half selects it.
    flows_of: [Vec<Vec<usize>>; 2],
    /// Per policy, direction and rule: the port bits towards a pod and towards an address.
    rule_bits: FxHashMap<(usize, usize, usize), (Bits, Bits)>,
    /// Per flow: the port bits towards a pod and towards an address.
    flow_bits: Vec<(Bits, Bits)>,
    /// Address endpoints inside each distinct IP block (cidr and holes), so
    /// that CIDRs are parsed once per block rather than once per check.
    inside_block: BlockCache,
}

fn slot(direction: Direction) -> usize {
    match direction {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    }
}

impl<'a> Index<'a> {
    fn new(program: &'a Program, policies: &'a [NetworkPolicy], model: &'a Model) -> Index<'a> {
        let cluster = &model.cluster;
        let pods = cluster.pods.len();
        let pod_index = PodIndex::new(cluster);
        // Every model pod carries the same named ports, so one stands for all destinations.
        let sample = cluster.pods.first();
        let words = model.ports.len().div_ceil(64);
        let bits_of = |matches: &dyn Fn(Option<&crate::evaluate::Pod>, u16, Protocol) -> bool| -> (Bits, Bits) {
            let (mut to_pod, mut to_ip) = (vec![0u64; words], vec![0u64; words]);
            for (k, &(port, protocol)) in model.ports.iter().enumerate() {
                if matches(sample, port, protocol) {
                    to_pod[k / 64] |= 1 << (k % 64);
                }
                if matches(None, port, protocol) {
                    to_ip[k / 64] |= 1 << (k % 64);
                }
            }
            (to_pod, to_ip)
        };

        let mut policies_of = [vec![Vec::new(); pods], vec![Vec::new(); pods]];
        let mut rule_bits = FxHashMap::default();
        let mut by_port_list: FxHashMap<String, (Bits, Bits)> = FxHashMap::default();
        for (p, policy) in policies.iter().enumerate() {
            let selector = policy.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
            for i in pod_index.candidates(Some(evaluate::policy_namespace(policy)), k8s_labels(selector)) {
                for direction in [Direction::Egress, Direction::Ingress] {
                    if evaluate::policy_isolates(policy, &cluster.pods[i], direction) {
                        policies_of[slot(direction)][i].push(p);
                    }
                }
            }
            for direction in [Direction::Egress, Direction::Ingress] {
                for (r, (_, ports)) in rules(policy, direction).into_iter().enumerate() {
                    // Most rules share a handful of port lists: compute each list's bits once.
                    let key = port_list_key(ports);
                    let bits = by_port_list
                        .entry(key)
                        .or_insert_with(|| bits_of(&|pod, port, protocol| evaluate::ports_match(ports, pod, port, protocol)))
                        .clone();
                    rule_bits.insert((p, slot(direction), r), bits);
                }
            }
        }
        let mut by_port_set: FxHashMap<&PortSet, (Bits, Bits)> = FxHashMap::default();
        let flow_bits = program
            .flows
            .iter()
            .map(|f| {
                by_port_set
                    .entry(&f.ports)
                    .or_insert_with(|| bits_of(&|pod, port, protocol| model::ports_contain(&f.ports, pod, port, protocol)))
                    .clone()
            })
            .collect();

        let mut flows_of = [vec![Vec::new(); pods], vec![Vec::new(); pods]];
        for (f, flow) in program.flows.iter().enumerate() {
            for (direction, local) in [(Direction::Egress, &*flow.source), (Direction::Ingress, &*flow.target)] {
                if direction == Direction::Ingress && dns_without_ingress_half(local, program) {
                    continue;
                }
                for i in ir_candidates(&pod_index, local) {
                    let pod = &cluster.pods[i];
                    let info = program.namespaces.get(&pod.namespace);
                    let declared = info.is_some_and(|n| n.declared);
                    let isolation = info.map(|n| n.isolation).unwrap_or_default();
                    let enforced = if direction == Direction::Egress {
                        isolation.egress()
                    } else {
                        isolation.ingress()
                    };
                    let localises = match local {
                        Peer::Pods {
                            namespaces: Namespaces::Named(_),
                            ..
                        } => true,
                        Peer::Pods {
                            namespaces: Namespaces::Selected(sel),
                            ..
                        } => sel.is_empty() && declared,
                        Peer::Ips { .. } => false,
                    };
                    if localises && enforced && model::peer_contains(local, cluster, &Endpoint::Pod(i)) {
                        flows_of[slot(direction)][i].push(f);
                    }
                }
            }
        }
        Index {
            program,
            policies,
            model,
            endpoints: model.endpoints(),
            pods: pod_index,
            policies_of,
            flows_of,
            rule_bits,
            flow_bits,
            inside_block: Default::default(),
        }
    }

    /// Endpoint indexes a policy peer may match (a superset; callers filter).
    fn policy_peer_candidates(&self, peer: &NetworkPolicyPeer, namespace: &str) -> Vec<usize> {
        if peer.ip_block.is_some() {
            return (self.pods.pods..self.endpoints.len()).collect();
        }
        let named = peer
            .namespace_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .and_then(|m| m.get(evaluate::NAMESPACE_NAME_LABEL))
            .map(String::as_str);
        let namespace = match (&peer.namespace_selector, named) {
            (None, _) => Some(namespace),
            (Some(_), Some(ns)) => Some(ns),
            (Some(_), None) => None,
        };
        self.pods.candidates(namespace, k8s_labels(peer.pod_selector.as_ref()))
    }

    fn ir_peer_candidates(&self, peer: &Peer) -> Vec<usize> {
        match peer {
            Peer::Ips { .. } => (self.pods.pods..self.endpoints.len()).collect(),
            other => ir_candidates(&self.pods, other),
        }
    }

    /// The connection between `pod` and peer endpoint `other` on port slot `k`, seen from `direction`.
    fn connection(&self, pod: usize, other: usize, k: usize, direction: Direction) -> Connection {
        let (port, protocol) = self.model.ports[k];
        let (me, them) = (Endpoint::Pod(pod), self.endpoints[other]);
        match direction {
            Direction::Egress => Connection::new(me, them, port, protocol),
            Direction::Ingress => Connection::new(them, me, port, protocol),
        }
    }

    /// The address endpoints inside a block.
    fn addresses_inside(&self, cidr: &str, except: &[String]) -> std::sync::Arc<Vec<usize>> {
        let key = (cidr.to_string(), except.to_vec());
        let cached = self
            .inside_block
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
            .cloned();
        if let Some(found) = cached {
            return found;
        }
        let block = IpBlock {
            cidr: key.0.clone(),
            except: key.1.clone(),
        };
        let pods = self.model.cluster.pods.len();
        let inside: Vec<usize> = (pods..self.endpoints.len())
            .filter(|&i| matches!(self.endpoints[i], Endpoint::Ip(ip) if model::block_contains(&block, ip)))
            .collect();
        let inside = std::sync::Arc::new(inside);
        self.inside_block
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, inside.clone());
        inside
    }

    /// Which bits of a (to pod, to address) pair apply to peer endpoint `other`.
    fn pick<'b>(&self, bits: &'b (Bits, Bits), other: usize, direction: Direction) -> &'b Bits {
        let destination_is_pod = direction == Direction::Ingress || other < self.model.cluster.pods.len();
        if destination_is_pod { &bits.0 } else { &bits.1 }
    }

    fn emitted_row(&self, pod: usize, direction: Direction, row: &mut Row) {
        let policies = &self.policies_of[slot(direction)][pod];
        row.reset(!policies.is_empty());
        let cluster = &self.model.cluster;
        for &p in policies {
            let policy = &self.policies[p];
            let namespace = evaluate::policy_namespace(policy);
            for (r, (peers, _)) in rules(policy, direction).into_iter().enumerate() {
                let Some(bits) = self.rule_bits.get(&(p, slot(direction), r)) else {
                    continue;
                };
                let ip_only =
                    peers.is_some_and(|l| !l.is_empty() && l.iter().all(|p| p.pod_selector.is_none() && p.namespace_selector.is_none()));
                if ip_only {
                    // Address endpoints against ipBlock peers: one lookup per block, not per address.
                    for block in peers.into_iter().flatten().filter_map(|p| p.ip_block.as_ref()) {
                        for &other in self
                            .addresses_inside(&block.cidr, block.except.as_deref().unwrap_or_default())
                            .iter()
                        {
                            row.or_into(other, self.pick(bits, other, direction), None);
                        }
                    }
                    continue;
                }
                let candidates: Vec<usize> = match peers.filter(|p| !p.is_empty()) {
                    None => (0..self.endpoints.len()).collect(),
                    Some(list) => {
                        let mut all: Vec<usize> = list.iter().flat_map(|peer| self.policy_peer_candidates(peer, namespace)).collect();
                        all.sort_unstable();
                        all.dedup();
                        all
                    }
                };
                for other in candidates {
                    if evaluate::peers_match(peers, namespace, cluster, &self.endpoints[other]) {
                        row.or_into(other, self.pick(bits, other, direction), None);
                    }
                }
            }
        }
    }

    fn expected_row(&self, pod: usize, direction: Direction, row: &mut Row) {
        let flows = &self.flows_of[slot(direction)][pod];
        let cluster = &self.model.cluster;
        let info = self.program.namespaces.get(&cluster.pods[pod].namespace);
        let isolation = info.map(|n| n.isolation).unwrap_or_default();
        let enforced = if direction == Direction::Egress {
            isolation.egress()
        } else {
            isolation.ingress()
        };
        row.reset((info.is_some_and(|n| n.declared) && enforced) || !flows.is_empty());
        for &f in flows {
            let flow = &self.program.flows[f];
            let peer = if direction == Direction::Egress {
                &*flow.target
            } else {
                &*flow.source
            };
            if let Peer::Ips { blocks, .. } = peer {
                for block in blocks {
                    for &other in self.addresses_inside(&block.cidr, &block.except).iter() {
                        row.or_into(other, self.pick(&self.flow_bits[f], other, direction), Some(flow.origin));
                    }
                }
                continue;
            }
            for other in self.ir_peer_candidates(peer) {
                if model::peer_contains(peer, cluster, &self.endpoints[other]) {
                    row.or_into(other, self.pick(&self.flow_bits[f], other, direction), Some(flow.origin));
                }
            }
        }
    }

    /// Compares one side of one pod; `emitted` and `expected` are scratch rows.
    fn compare(&self, pod: usize, direction: Direction, [emitted, expected]: &mut [Row; 2], out: &mut Vec<Mismatch>) {
        self.emitted_row(pod, direction, emitted);
        self.expected_row(pod, direction, expected);
        if emitted.same_as(expected, pod) {
            return;
        }
        let first_flow = self.flows_of[slot(direction)][pod].first().map(|&f| self.program.flows[f].origin);
        for other in (0..self.endpoints.len()).filter(|&o| o != pod) {
            for k in 0..self.model.ports.len() {
                let (e, x) = (emitted.allows(other, k), expected.allows(other, k));
                if e != x {
                    out.push(Mismatch {
                        direction,
                        connection: self.connection(pod, other, k, direction),
                        emitted_allows: e,
                        origin: if x { expected.origin[other] } else { first_flow },
                    });
                }
            }
        }
    }

    /// Two empty scratch rows for [`Index::compare`].
    fn rows(&self) -> [Row; 2] {
        let words = self.model.ports.len().div_ceil(64);
        [Row::new(self.endpoints.len(), words), Row::new(self.endpoints.len(), words)]
    }
}

/// A key that identifies a policy rule's port list by value.
fn port_list_key(ports: Option<&[NetworkPolicyPort]>) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let mut key = String::new();
    for p in ports.unwrap_or_default() {
        let port = match &p.port {
            Some(IntOrString::Int(n)) => n.to_string(),
            Some(IntOrString::String(name)) => format!("'{name}"),
            None => "*".into(),
        };
        key.push_str(&format!("{}:{port}-{:?};", p.protocol.as_deref().unwrap_or(""), p.end_port));
    }
    if ports.is_none() {
        key.push('!');
    }
    key
}

/// A superset of the pods an IR peer stands for.
fn ir_candidates(index: &PodIndex, peer: &Peer) -> Vec<usize> {
    match peer {
        Peer::Pods { namespaces, pods, .. } => {
            let namespace = match namespaces {
                Namespaces::Named(ns) => Some(ns.as_str()),
                Namespaces::Selected(_) => None,
            };
            index.candidates(namespace, pods.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
        Peer::Ips { .. } => Vec::new(),
    }
}

fn dns_without_ingress_half(local: &Peer, program: &Program) -> bool {
    matches!(local, Peer::Pods { name: PeerName::Dns, namespaces: Namespaces::Named(ns), .. }
        if !program.namespaces.get(ns).is_some_and(|i| i.declared))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn shop() -> (crate::Compilation, Model) {
        let text = std::fs::read_to_string("examples/shop.np").expect("shop example");
        let out = crate::compile_str("shop.np", &text);
        assert!(!out.has_errors(), "{}", out.render_diagnostics());
        let model = model::synthesize(&out.program, &crate::Config::default());
        (out, model)
    }

    /// The model probed with the (altered) policies, as `compile` does.
    fn probed(model: &Model, policies: &[NetworkPolicy]) -> Model {
        let mut model = model.clone();
        model.probe_policies(policies);
        model
    }

    fn find(policies: &mut [NetworkPolicy], ns: &str, name: &str) -> usize {
        policies
            .iter()
            .position(|p| p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{ns}/{name}"))
    }

    #[test]
    fn correct_output_verifies() {
        let (out, model) = shop();
        assert_eq!(verify(&out.program, &out.policies, &model), Vec::new());
        assert!(model.cluster.pods.len() > 10 && model.ports.len() > 5);
    }

    #[test]
    fn a_missing_half_is_caught() {
        let (out, model) = shop();
        let mut policies = out.policies.clone();
        let i = find(&mut policies, "backend", "catalog-from-frontend.web");
        policies.remove(i);
        let found = verify(&out.program, &policies, &model);
        assert!(!found.is_empty());
        assert!(found.iter().all(|m| !m.emitted_allows && m.direction == Direction::Ingress));
        let text = mismatch_diagnostics(&found, &out.program, &model)[0].message.clone();
        assert!(
            text.contains("frontend/web -> backend/catalog:8080/TCP") && text.contains("allows it"),
            "{text}"
        );
    }

    #[test]
    fn a_wrong_port_is_caught_both_ways() {
        let (out, model) = shop();
        let mut policies = out.policies.clone();
        let i = find(&mut policies, "frontend", "web-to-backend.catalog");
        let spec = policies[i].spec.as_mut().expect("spec");
        spec.egress.as_mut().expect("egress")[0].ports.as_mut().expect("ports")[0].port = Some(IntOrString::Int(8081));
        let found = verify(&out.program, &policies, &probed(&model, &policies));
        assert!(found.iter().any(|m| m.emitted_allows), "{found:?}");
        assert!(found.iter().any(|m| !m.emitted_allows), "{found:?}");
    }

    #[test]
    fn or_instead_of_and_is_caught() {
        let (out, model) = shop();
        let mut policies = out.policies.clone();
        let i = find(&mut policies, "backend", "catalog-from-frontend.web");
        let rule = &mut policies[i].spec.as_mut().expect("spec").ingress.as_mut().expect("ingress")[0];
        let peer = rule.from.as_mut().expect("from").remove(0);
        let namespace_only = NetworkPolicyPeer {
            namespace_selector: peer.namespace_selector.clone(),
            ..Default::default()
        };
        let pods_only = NetworkPolicyPeer {
            pod_selector: peer.pod_selector.clone(),
            ..Default::default()
        };
        rule.from = Some(vec![namespace_only, pods_only]);
        let found = verify(&out.program, &policies, &model);
        assert!(!found.is_empty() && found.iter().all(|m| m.emitted_allows), "{found:?}");
    }

    #[test]
    fn a_missing_default_deny_is_caught() {
        let (out, model) = shop();
        let mut policies = out.policies.clone();
        let i = find(&mut policies, "payments", "default-deny");
        policies.remove(i);
        let found = verify(&out.program, &policies, &model);
        assert!(found.iter().any(|m| m.emitted_allows), "{found:?}");
    }

    #[test]
    fn expectations_are_checked() {
        let text = "namespace a\nallow dns\nweb -> api:8080\nexpect web -> api:8080 allowed\nexpect web -> api:9090 denied\nexpect api -> web denied\nexpect web -> world:443 denied\n";
        let out = crate::compile_str("e.np", text);
        assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
        let wrong = "namespace a\nallow dns\nweb -> api:8080\nexpect web -> api:9090 allowed\nexpect web -> api denied\n";
        let out = crate::compile_str("e.np", wrong);
        let failed: Vec<_> = out.diagnostics.iter().filter(|d| d.code == Code::ExpectationFailed).collect();
        assert_eq!(failed.len(), 2, "{}", out.render_diagnostics());
        assert!(out.policies.is_empty());
    }
}
