//! A fast reachability engine that agrees exactly with [`crate::evaluate`].
//!
//! [`evaluate::is_allowed`] scans every policy for every connection. That is
//! the reference, and it is what explanations are built on, but a cluster
//! with 100,000 pods and 75,000 policies has 10^10 pod pairs. This module
//! answers the same yes/no question for every pair at once, by computing
//! over *classes* of endpoints and *atoms* of ports instead of pods and port
//! numbers. [`Reachability::compute`] builds the model;
//! [`Reachability::allowed`] answers one connection in a few lookups;
//! [`Reachability::rows`], [`Reachability::flows`] and [`Reachability::diff`]
//! walk the full matrix with bitsets.
//!
//! # Endpoint classes
//!
//! Two endpoints are in the same class when no policy can tell them apart.
//! A pod's class is the tuple
//!
//! - its *namespace class*: the namespace's labels restricted to the keys
//!   that some `namespaceSelector` mentions, plus the namespace's name when
//!   some policy lives in that namespace (policies select their subjects and
//!   `podSelector`-only peers in their own namespace only);
//! - its labels restricted to the keys that some pod selector mentions, with
//!   every value that no selector mentions collapsed into one "other" value
//!   (`In`/`NotIn` only compare with listed values, `Exists` only looks at
//!   the key);
//! - its *IP region* (below), or the empty region when it has no IP;
//! - its named container ports whose name and protocol some policy port
//!   refers to.
//!
//! An IP address that is not a pod is in an *IP class*, one per region. The
//! address space of each family is cut into atoms at every boundary of every
//! `ipBlock` CIDR and `except`; each atom lies wholly inside or outside every
//! block, so the set of blocks that match it (its *signature*) is constant.
//! Atoms with the same signature form a region. Any address, listed in
//! `externals` or not, has a class.
//!
//! With Deployments, many pods share a class: the class count follows the
//! number of label combinations that selectors can see, not the pod count.
//!
//! # Port atoms
//!
//! For each protocol the port space `0..=65535` is cut at every bound of
//! every numeric policy port (`port`, `port..=endPort`) and around every
//! number that a referenced named container port resolves to. An atom is a
//! maximal interval that every policy port either contains whole or misses,
//! so one bit per atom describes a set of ports exactly. Named ports resolve
//! per destination class: an ingress rule is resolved on the class it
//! protects; an egress rule keeps its named references and checks them
//! against the destination class's named ports.
//!
//! # Selectors and peers
//!
//! Selectors are normalised (sorted, deduplicated; `matchLabels` become `In`)
//! and interned, so each distinct selector is evaluated once. Label sets
//! carry an index `(key, value) → label sets` and `key → label sets`; a
//! selector with a positive requirement (`In`, `Exists`, `matchLabels`)
//! starts from the smallest index entry instead of scanning. Namespace
//! selectors are evaluated once per namespace class. Peers are interned by
//! value; each peer's set of classes is stored sparse (sorted ids) when small
//! and as a bitset (`u64` words) when large.
//!
//! # The model
//!
//! For each direction and each pod class the model keeps whether the class
//! is isolated and, if so, a list of *grants*: (set of peer classes, set of
//! port atoms, named-port references). Grant lists are interned, so the
//! classes of a namespace that share the same policies share one list. Then
//!
//! ```text
//! allowed(src, dst, atom) = egress(src) permits (dst, atom) AND ingress(dst) permits (src, atom)
//! ```
//!
//! where a side that is an IP class or is not isolated permits everything.
//! A dense matrix (classes² × atoms bits) is never stored: at 50,000 classes
//! and 30 atoms it would take 9 GB. [`Rows`] materialises it one source row
//! at a time (one bitset over destination classes per atom), which is what
//! [`Reachability::flows`] and [`Reachability::diff`] walk.
//!
//! Two policy versions compared with [`Reachability::diff`] must share one
//! universe of classes and atoms: build them with
//! [`Reachability::compute_versions`], which cuts classes and atoms by the
//! union of all versions (a common refinement is exact for each of them).
//!
//! # What stays with `evaluate`
//!
//! This engine answers yes or no. [`Reachability::explain`] returns the same
//! [`Verdict`] as [`evaluate::evaluate`], but only looks at the policies that
//! select the two endpoints' classes.

use crate::cidr::Cidr;
use crate::evaluate::{self, Cluster, Connection, Direction, Endpoint, PolicyRef, Protocol, RuleRef, SideVerdict, Verdict};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub mod synth;

/// The identifier of an endpoint class: pod classes come first
/// (`0..pod_class_count()`), then IP classes.
pub type ClassId = u32;

/// The identifier of a port atom: TCP atoms first, then UDP, then SCTP.
pub type AtomId = u32;

/// A label value that no selector mentions.
const OTHER: u32 = u32::MAX;
/// "No such thing" in `u32` id tables.
const NONE: u32 = u32::MAX;
/// The class set holding every class.
const ALL_SET: u32 = 0;
/// The empty class set.
const EMPTY_SET: u32 = 1;
/// The port set holding every atom.
const ALL_PORTS: u32 = 0;
/// The empty list of named-port references.
const NO_REFS: u32 = 0;

const PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

fn proto_index(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
        Protocol::Sctp => 2,
    }
}

// ---------------------------------------------------------------------------
// Small building blocks
// ---------------------------------------------------------------------------

/// Values to small integers, and back.
struct Interner<K> {
    map: HashMap<K, u32>,
    items: Vec<K>,
}

impl<K: Clone + Eq + Hash> Interner<K> {
    fn new() -> Self {
        Interner {
            map: HashMap::new(),
            items: Vec::new(),
        }
    }

    fn intern(&mut self, key: K) -> u32 {
        if let Some(&id) = self.map.get(&key) {
            return id;
        }
        let id = self.items.len() as u32;
        self.items.push(key.clone());
        self.map.insert(key, id);
        id
    }
}

fn intern_str(map: &mut HashMap<String, u32>, text: &str) -> u32 {
    if let Some(&id) = map.get(text) {
        return id;
    }
    let id = map.len() as u32;
    map.insert(text.to_owned(), id);
    id
}

fn bit(words: &[u64], i: usize) -> bool {
    words.get(i / 64).is_some_and(|w| (w >> (i % 64)) & 1 == 1)
}

fn set_bit(words: &mut [u64], i: usize) {
    if let Some(w) = words.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

/// Sets the first `bits` bits of `words` and clears the rest.
fn fill_ones(words: &mut [u64], bits: usize) {
    for (i, w) in words.iter_mut().enumerate() {
        let lo = i * 64;
        *w = if lo + 64 <= bits {
            u64::MAX
        } else if lo >= bits {
            0
        } else {
            (1u64 << (bits - lo)) - 1
        };
    }
}

/// Calls `f` with the index of every set bit.
fn for_each_bit(words: &[u64], mut f: impl FnMut(usize)) {
    for (i, &w) in words.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            let b = w.trailing_zeros() as usize;
            f(i * 64 + b);
            w &= w - 1;
        }
    }
}

/// A compressed sparse row table: `offsets[i]..offsets[i + 1]` in `items`.
#[derive(Clone, Debug, Default)]
struct Csr<T> {
    offsets: Vec<u32>,
    items: Vec<T>,
}

impl<T: Copy> Csr<T> {
    /// Groups `(row, item)` pairs into `rows` rows, keeping their order.
    fn from_pairs(rows: usize, pairs: &[(u32, T)]) -> Csr<T> {
        let mut offsets = vec![0u32; rows + 1];
        for &(row, _) in pairs {
            offsets[row as usize + 1] += 1;
        }
        for i in 0..rows {
            offsets[i + 1] += offsets[i];
        }
        let mut next = offsets.clone();
        let mut items: Vec<Option<T>> = vec![None; pairs.len()];
        for &(row, item) in pairs {
            let slot = &mut next[row as usize];
            items[*slot as usize] = Some(item);
            *slot += 1;
        }
        Csr {
            offsets,
            items: items.into_iter().flatten().collect(),
        }
    }

    fn from_rows(rows: &[Vec<T>]) -> Csr<T> {
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        let mut items = Vec::with_capacity(rows.iter().map(Vec::len).sum());
        offsets.push(0);
        for row in rows {
            items.extend_from_slice(row);
            offsets.push(items.len() as u32);
        }
        Csr { offsets, items }
    }

    fn row(&self, i: usize) -> &[T] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.items.capacity() * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
thread_local! {
    /// Tests set this to take the other road where two give the same
    /// answer: sparse class sets, and the label index for cross-namespace
    /// peers.
    static ALTERNATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the test-only [`ALTERNATE`] switch is on for this thread.
fn alternate() -> bool {
    #[cfg(test)]
    {
        ALTERNATE.with(std::cell::Cell::get)
    }
    #[cfg(not(test))]
    {
        false
    }
}

/// A set of classes: all of them, a sorted list when small, a bitset when
/// large.
#[derive(Clone, Debug)]
enum ClassSet {
    All,
    Sparse(Box<[u32]>),
    Dense(Box<[u64]>),
}

impl ClassSet {
    fn from_sorted(ids: &[u32], classes: usize) -> ClassSet {
        if ids.len() == classes {
            ClassSet::All
        } else if ids.len() * 32 > classes && !alternate() {
            let mut words = vec![0u64; classes.div_ceil(64)];
            for &id in ids {
                set_bit(&mut words, id as usize);
            }
            ClassSet::Dense(words.into_boxed_slice())
        } else {
            ClassSet::Sparse(ids.into())
        }
    }

    fn contains(&self, id: u32) -> bool {
        match self {
            ClassSet::All => true,
            ClassSet::Sparse(ids) => ids.binary_search(&id).is_ok(),
            ClassSet::Dense(words) => bit(words, id as usize),
        }
    }

    /// ORs the set into a bitset of `all.len()` words; `all` holds every class.
    fn or_into(&self, out: &mut [u64], all: &[u64]) {
        match self {
            ClassSet::All => out.copy_from_slice(all),
            ClassSet::Sparse(ids) => {
                for &id in ids.iter() {
                    set_bit(out, id as usize);
                }
            }
            ClassSet::Dense(words) => {
                for (o, w) in out.iter_mut().zip(words.iter()) {
                    *o |= w;
                }
            }
        }
    }

    fn for_each(&self, classes: usize, mut f: impl FnMut(u32)) {
        match self {
            ClassSet::All => (0..classes as u32).for_each(f),
            ClassSet::Sparse(ids) => ids.iter().for_each(|&id| f(id)),
            ClassSet::Dense(words) => for_each_bit(words, |i| f(i as u32)),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            ClassSet::All => 0,
            ClassSet::Sparse(ids) => ids.len() * 4,
            ClassSet::Dense(words) => words.len() * 8,
        }
    }
}

/// Sorted union of sorted lists.
fn union_sorted(lists: &[&[u32]]) -> Vec<u32> {
    let mut out: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------

/// One normalised selector requirement; keys and values are interned ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Req {
    In(u32, Vec<u32>),
    NotIn(u32, Vec<u32>),
    Exists(u32),
    DoesNotExist(u32),
}

/// A normalised label selector: `None` never matches (unknown operator).
type Sel = Option<Vec<Req>>;

/// A restricted label set: sorted `(key, value)` ids.
type LabelSet = Vec<(u32, u32)>;

fn label_value(labels: &[(u32, u32)], key: u32) -> Option<u32> {
    labels.binary_search_by_key(&key, |&(k, _)| k).ok().map(|i| labels[i].1)
}

fn sel_matches(sel: &Sel, labels: &[(u32, u32)]) -> bool {
    let Some(reqs) = sel else {
        return false;
    };
    reqs.iter().all(|req| match req {
        Req::In(key, values) => label_value(labels, *key).is_some_and(|v| values.binary_search(&v).is_ok()),
        Req::NotIn(key, values) => label_value(labels, *key).is_none_or(|v| values.binary_search(&v).is_err()),
        Req::Exists(key) => label_value(labels, *key).is_some(),
        Req::DoesNotExist(key) => label_value(labels, *key).is_none(),
    })
}

/// Records the keys and values a selector mentions.
fn scan_selector(selector: &LabelSelector, keys: &mut HashMap<String, u32>, flags: &mut Vec<bool>, values: &mut HashMap<String, u32>) {
    let mut mention = |key: &str| {
        let id = intern_str(keys, key) as usize;
        if flags.len() <= id {
            flags.resize(id + 1, false);
        }
        flags[id] = true;
    };
    for (key, value) in selector.match_labels.iter().flatten() {
        mention(key);
        intern_str(values, value);
    }
    for req in selector.match_expressions.iter().flatten() {
        mention(&req.key);
        for value in req.values.iter().flatten() {
            intern_str(values, value);
        }
    }
}

/// Normalises a selector against the universe's key and value ids. A key or
/// value the universe never saw cannot be held by any endpoint.
fn normalize_selector(selector: &LabelSelector, keys: &HashMap<String, u32>, values: &HashMap<String, u32>) -> Sel {
    let key_id = |k: &str| keys.get(k).copied().unwrap_or(NONE);
    // Unknown values get ids no label set holds (OTHER is never listed).
    let value_ids = |vs: &[String]| -> Vec<u32> {
        let mut ids: Vec<u32> = vs.iter().filter_map(|v| values.get(v.as_str()).copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let mut reqs = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        reqs.push(Req::In(key_id(key), value_ids(std::slice::from_ref(value))));
    }
    for req in selector.match_expressions.iter().flatten() {
        let key = key_id(&req.key);
        let listed = req.values.as_deref().unwrap_or_default();
        reqs.push(match req.operator.as_str() {
            "In" => Req::In(key, value_ids(listed)),
            "NotIn" => Req::NotIn(key, value_ids(listed)),
            "Exists" => Req::Exists(key),
            "DoesNotExist" => Req::DoesNotExist(key),
            _ => return None,
        });
    }
    reqs.sort();
    reqs.dedup();
    Some(reqs)
}

/// An index over label sets: `(key, value) → sets` and `key → sets`.
#[derive(Default)]
struct LabelIndex {
    by_pair: HashMap<(u32, u32), Vec<u32>>,
    by_key: HashMap<u32, Vec<u32>>,
}

impl LabelIndex {
    fn build(sets: &[LabelSet]) -> LabelIndex {
        let mut index = LabelIndex::default();
        for (id, set) in sets.iter().enumerate() {
            for &(k, v) in set {
                index.by_pair.entry((k, v)).or_default().push(id as u32);
                index.by_key.entry(k).or_default().push(id as u32);
            }
        }
        index
    }

    /// The sorted ids of the label sets the selector matches, starting from
    /// the smallest index entry of a positive requirement when there is one.
    fn matching(&self, sel: &Sel, sets: &[LabelSet]) -> Vec<u32> {
        let Some(reqs) = sel else {
            return Vec::new();
        };
        let mut best: Option<(usize, Vec<&[u32]>)> = None;
        for req in reqs {
            let lists: Vec<&[u32]> = match req {
                Req::In(k, values) => values
                    .iter()
                    .filter_map(|v| self.by_pair.get(&(*k, *v)).map(Vec::as_slice))
                    .collect(),
                Req::Exists(k) => self.by_key.get(k).map(Vec::as_slice).into_iter().collect(),
                _ => continue,
            };
            let cost = lists.iter().map(|l| l.len()).sum();
            if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                best = Some((cost, lists));
            }
        }
        let candidates: Vec<u32> = match best {
            Some((_, lists)) => union_sorted(&lists),
            None => (0..sets.len() as u32).collect(),
        };
        candidates
            .into_iter()
            .filter(|&id| sets.get(id as usize).is_some_and(|s| sel_matches(sel, s)))
            .collect()
    }

    fn heap_bytes(&self) -> usize {
        let pairs: usize = self.by_pair.values().map(|v| v.capacity() * 4 + 40).sum();
        let keys: usize = self.by_key.values().map(|v| v.capacity() * 4 + 36).sum();
        pairs + keys
    }
}

// ---------------------------------------------------------------------------
// IP blocks and regions
// ---------------------------------------------------------------------------

/// A valid `ipBlock`, canonical: CIDR and sorted excepts.
type Block = (Cidr, Vec<Cidr>);

fn parse_block(block: &k8s_openapi::api::networking::v1::IPBlock) -> Option<Block> {
    let cidr = Cidr::parse(&block.cidr).ok()?.canonical();
    let mut excepts = Vec::new();
    for text in block.except.iter().flatten() {
        excepts.push(Cidr::parse(text).ok()?.canonical());
    }
    excepts.sort();
    excepts.dedup();
    Some((cidr, excepts))
}

fn addr_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The first and last address of a network, as numbers of its family.
fn cidr_range(cidr: Cidr) -> (u128, u128) {
    let width: u32 = if cidr.is_ipv4() { 32 } else { 128 };
    let host = width - u32::from(cidr.prefix).min(width);
    let low_mask = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
    let lo = addr_bits(cidr.addr) & !low_mask;
    (lo, lo | low_mask)
}

fn family_index(addr: IpAddr) -> usize {
    usize::from(!addr.is_ipv4())
}

fn addr_of(family: usize, bits: u128) -> IpAddr {
    if family == 0 {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// Address atoms of one family: `cuts[i]` starts atom `i`, which belongs to
/// region `regions[i]`.
#[derive(Default)]
struct AddressAtoms {
    cuts: Vec<u128>,
    regions: Vec<u32>,
}

impl AddressAtoms {
    fn atom(&self, bits: u128) -> usize {
        self.cuts.partition_point(|&c| c <= bits).saturating_sub(1)
    }
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// A range of ports of one protocol, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// The protocol.
    pub protocol: Protocol,
    /// The first port.
    pub start: u16,
    /// The last port.
    pub end: u16,
}

impl fmt::Display for PortRange {
    /// `TCP 80` or `TCP 8000-8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{} {}", self.protocol, self.start)
        } else {
            write!(f, "{} {}-{}", self.protocol, self.start, self.end)
        }
    }
}

/// One policy port, parsed: a numeric range or a named reference.
enum PortItem {
    Range(usize, u32, u32),
    Named(String, usize),
}

/// `None`: every port of every protocol (absent or empty list).
fn parse_ports(ports: Option<&[NetworkPolicyPort]>) -> Option<Vec<PortItem>> {
    let ports = ports.filter(|p| !p.is_empty())?;
    let mut items = Vec::new();
    for port in ports {
        let protocol = match port.protocol.as_deref() {
            None => Protocol::Tcp,
            Some(text) => match Protocol::from_api(text) {
                Some(p) => p,
                None => continue,
            },
        };
        let p = proto_index(protocol);
        match &port.port {
            None => items.push(PortItem::Range(p, 0, 65535)),
            Some(IntOrString::Int(start)) => {
                let end = port.end_port.unwrap_or(*start);
                let lo = (*start).max(0);
                let hi = end.min(65535);
                if lo <= hi {
                    items.push(PortItem::Range(p, lo as u32, hi as u32));
                }
            }
            Some(IntOrString::String(name)) => items.push(PortItem::Named(name.clone(), p)),
        }
    }
    Some(items)
}

// ---------------------------------------------------------------------------
// The universe: classes and atoms
// ---------------------------------------------------------------------------

/// What makes a pod class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PodClass {
    ns: u32,
    labels: u32,
    region: u32,
    ports: u32,
}

/// Classes and atoms, shared by the versions computed together.
struct Universe {
    keys: HashMap<String, u32>,
    values: HashMap<String, u32>,
    names: HashMap<String, u32>,
    /// `(name, protocol)` of named policy ports → reference id.
    refs: HashMap<(u32, usize), u32>,
    // ports
    cuts: [Vec<u32>; 3],
    base: [u32; 4],
    atom_words: usize,
    // addresses
    blocks: HashMap<Block, u32>,
    addresses: [AddressAtoms; 2],
    block_regions: Vec<Vec<u32>>,
    region_repr: Vec<Option<IpAddr>>,
    region_ip_class: Vec<u32>,
    ip_class_region: Vec<u32>,
    ip_members: Csr<IpAddr>,
    // namespaces
    ns_labels: Vec<LabelSet>,
    ns_names: Vec<String>,
    ns_class_of_name: HashMap<String, u32>,
    /// Namespace name → index of its first declaration in the cluster.
    ns_decl: HashMap<String, u32>,
    ns_index: LabelIndex,
    // pods
    labelsets: Vec<LabelSet>,
    labelset_index: LabelIndex,
    /// Per port signature: sorted `(reference, atom)`.
    portsigs: Vec<Vec<(u32, u32)>>,
    pod_classes: Vec<PodClass>,
    pod_class: Vec<u32>,
    class_pods: Csr<u32>,
    classes_by_ns: Csr<u32>,
    classes_by_labelset: Csr<u32>,
    classes_by_region: Csr<u32>,
    namespaces: usize,
}

/// Everything the universe needs to know about the policies.
#[derive(Default)]
struct Mentions {
    keys: HashMap<String, u32>,
    pod_keys: Vec<bool>,
    ns_keys: Vec<bool>,
    values: HashMap<String, u32>,
    hosted: HashMap<String, u32>,
    names: HashMap<String, u32>,
    refs: HashMap<(u32, usize), u32>,
    cuts: [Vec<u32>; 3],
    blocks: Interner<Block>,
}

impl Default for Interner<Block> {
    fn default() -> Self {
        Interner::new()
    }
}

impl Mentions {
    fn scan(&mut self, policy: &NetworkPolicy) {
        intern_str(&mut self.hosted, evaluate::policy_namespace(policy));
        let Some(spec) = &policy.spec else {
            return;
        };
        if let Some(selector) = &spec.pod_selector {
            scan_selector(selector, &mut self.keys, &mut self.pod_keys, &mut self.values);
        }
        let ingress = spec.ingress.iter().flatten().map(|r| (r.from.as_deref(), r.ports.as_deref()));
        let egress = spec.egress.iter().flatten().map(|r| (r.to.as_deref(), r.ports.as_deref()));
        for (peers, ports) in ingress.chain(egress) {
            for peer in peers.unwrap_or_default() {
                self.scan_peer(peer);
            }
            for item in parse_ports(ports).unwrap_or_default() {
                match item {
                    PortItem::Range(p, lo, hi) => {
                        self.cuts[p].push(lo);
                        self.cuts[p].push(hi + 1);
                    }
                    PortItem::Named(name, p) => {
                        let name = intern_str(&mut self.names, &name);
                        let next = self.refs.len() as u32;
                        self.refs.entry((name, p)).or_insert(next);
                    }
                }
            }
        }
    }

    fn scan_peer(&mut self, peer: &NetworkPolicyPeer) {
        if let Some(selector) = &peer.pod_selector {
            scan_selector(selector, &mut self.keys, &mut self.pod_keys, &mut self.values);
        }
        if let Some(selector) = &peer.namespace_selector {
            scan_selector(selector, &mut self.keys, &mut self.ns_keys, &mut self.values);
        }
        if let Some(block) = &peer.ip_block
            && peer.pod_selector.is_none()
            && peer.namespace_selector.is_none()
            && let Some(block) = parse_block(block)
        {
            self.blocks.intern(block);
        }
    }
}

/// Restricts labels to the flagged keys; unmentioned values become `OTHER`.
fn restrict<'a>(
    labels: impl Iterator<Item = (&'a str, &'a str)>,
    keys: &HashMap<String, u32>,
    flags: &[bool],
    values: &HashMap<String, u32>,
) -> LabelSet {
    let mut out: LabelSet = labels
        .filter_map(|(k, v)| {
            let key = *keys.get(k)?;
            flags
                .get(key as usize)
                .copied()
                .unwrap_or(false)
                .then(|| (key, values.get(v).copied().unwrap_or(OTHER)))
        })
        .collect();
    out.sort_unstable();
    out
}

impl Universe {
    fn build<'a>(policies: impl Iterator<Item = &'a NetworkPolicy> + Clone, cluster: &Cluster, externals: &[IpAddr]) -> Universe {
        let mut m = Mentions::default();
        for policy in policies {
            m.scan(policy);
        }
        let Mentions {
            keys,
            pod_keys,
            ns_keys,
            values,
            hosted,
            names,
            refs,
            mut cuts,
            blocks,
        } = m;

        // Port atoms: cut also around every referenced named container port.
        let pod_ref = |name: &str, protocol: Protocol| -> Option<u32> {
            let name = names.get(name)?;
            refs.get(&(*name, proto_index(protocol))).copied()
        };
        for pod in &cluster.pods {
            for port in &pod.ports {
                if pod_ref(&port.name, port.protocol).is_some() {
                    let p = proto_index(port.protocol);
                    cuts[p].push(u32::from(port.port));
                    cuts[p].push(u32::from(port.port) + 1);
                }
            }
        }
        let mut base = [0u32; 4];
        for (p, c) in cuts.iter_mut().enumerate() {
            c.push(0);
            c.retain(|&x| x <= 65535);
            c.sort_unstable();
            c.dedup();
            base[p + 1] = base[p] + c.len() as u32;
        }
        let atom_count = base[3] as usize;
        let atom_of = |p: usize, port: u32| -> u32 { base[p] + cuts[p].partition_point(|&c| c <= port).saturating_sub(1) as u32 };

        // Address atoms and regions.
        let block_list = blocks.items;
        let block_ids = blocks.map;
        let mut signatures: Interner<Vec<u32>> = Interner::new();
        signatures.intern(Vec::new());
        let mut region_repr: Vec<Option<IpAddr>> = vec![None];
        let mut addresses: [AddressAtoms; 2] = Default::default();
        for (family, atoms) in addresses.iter_mut().enumerate() {
            let max = if family == 0 { u128::from(u32::MAX) } else { u128::MAX };
            let mut c: Vec<u128> = vec![0];
            for (cidr, excepts) in &block_list {
                for net in std::iter::once(cidr).chain(excepts) {
                    if family_index(net.addr) == family {
                        let (lo, hi) = cidr_range(*net);
                        c.push(lo);
                        if hi < max {
                            c.push(hi + 1);
                        }
                    }
                }
            }
            c.sort_unstable();
            c.dedup();
            let atom = |x: u128| c.partition_point(|&y| y <= x).saturating_sub(1);
            let mut sig: Vec<Vec<u32>> = vec![Vec::new(); c.len()];
            for (id, (cidr, excepts)) in block_list.iter().enumerate() {
                if family_index(cidr.addr) != family {
                    continue;
                }
                let (lo, hi) = cidr_range(*cidr);
                let ranges: Vec<(u128, u128)> = excepts
                    .iter()
                    .filter(|e| family_index(e.addr) == family)
                    .map(|e| cidr_range(*e))
                    .collect();
                for (i, s) in sig.iter_mut().enumerate().take(atom(hi) + 1).skip(atom(lo)) {
                    let start = c[i];
                    if !ranges.iter().any(|&(a, b)| a <= start && start <= b) {
                        s.push(id as u32);
                    }
                }
            }
            atoms.regions = sig
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let region = signatures.intern(s);
                    if region_repr.len() <= region as usize {
                        region_repr.resize(region as usize + 1, None);
                    }
                    if region_repr[region as usize].is_none() {
                        region_repr[region as usize] = Some(addr_of(family, c[i]));
                    }
                    region
                })
                .collect();
            atoms.cuts = c;
        }
        let regions = signatures.items.len();
        let mut block_regions = vec![Vec::new(); block_list.len()];
        for (region, sig) in signatures.items.iter().enumerate() {
            for &b in sig {
                block_regions[b as usize].push(region as u32);
            }
        }
        let region_of = |ip: IpAddr| -> u32 {
            let atoms = &addresses[family_index(ip)];
            atoms.regions.get(atoms.atom(addr_bits(ip))).copied().unwrap_or(0)
        };

        // Namespace classes.
        let mut first_ns: HashMap<&str, usize> = HashMap::new();
        for (i, ns) in cluster.namespaces.iter().enumerate() {
            first_ns.entry(ns.name.as_str()).or_insert(i);
        }
        let mut ns_interner: Interner<(u32, LabelSet)> = Interner::new();
        let mut ns_names: Vec<String> = Vec::new();
        let mut ns_class_of_name: HashMap<String, u32> = HashMap::new();
        let mut ns_seen = 0usize;
        let mut ns_class = |name: &str| -> u32 {
            if let Some(&id) = ns_class_of_name.get(name) {
                return id;
            }
            ns_seen += 1;
            let declared = first_ns.get(name).and_then(|&i| cluster.namespaces.get(i)).map(|ns| &ns.labels);
            let mut labels = restrict(
                declared.into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())),
                &keys,
                &ns_keys,
                &values,
            );
            // The name label is always the namespace's name.
            if let Some(&key) = keys.get(evaluate::NAMESPACE_NAME_LABEL)
                && ns_keys.get(key as usize).copied().unwrap_or(false)
            {
                labels.retain(|&(k, _)| k != key);
                labels.push((key, values.get(name).copied().unwrap_or(OTHER)));
                labels.sort_unstable();
            }
            let host = hosted.get(name).copied().unwrap_or(NONE);
            let before = ns_interner.items.len();
            let id = ns_interner.intern((host, labels));
            if ns_interner.items.len() > before {
                ns_names.push(name.to_owned());
            }
            ns_class_of_name.insert(name.to_owned(), id);
            id
        };

        // Pod classes.
        let mut labelsets: Interner<LabelSet> = Interner::new();
        let mut portsigs: Interner<Vec<(u32, u32)>> = Interner::new();
        portsigs.intern(Vec::new());
        let mut classes: Interner<PodClass> = Interner::new();
        let mut pod_class = Vec::with_capacity(cluster.pods.len());
        for pod in &cluster.pods {
            let ns = ns_class(&pod.namespace);
            let labels = labelsets.intern(restrict(
                pod.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                &keys,
                &pod_keys,
                &values,
            ));
            let region = pod.ip.map_or(0, region_of);
            let mut sig: Vec<(u32, u32)> = pod
                .ports
                .iter()
                .filter_map(|port| {
                    let r = pod_ref(&port.name, port.protocol)?;
                    Some((r, atom_of(proto_index(port.protocol), u32::from(port.port))))
                })
                .collect();
            sig.sort_unstable();
            sig.dedup();
            let ports = if sig.is_empty() { 0 } else { portsigs.intern(sig) };
            pod_class.push(classes.intern(PodClass { ns, labels, region, ports }));
        }
        let pod_classes = classes.items;
        let n_pod = pod_classes.len();

        // IP classes: one per region that has addresses.
        let mut region_ip_class = vec![NONE; regions];
        let mut ip_class_region = Vec::new();
        for (region, repr) in region_repr.iter().enumerate() {
            if repr.is_some() {
                region_ip_class[region] = (n_pod + ip_class_region.len()) as u32;
                ip_class_region.push(region as u32);
            }
        }
        let ip_pairs: Vec<(u32, IpAddr)> = externals
            .iter()
            .map(|&ip| (region_ip_class[region_of(ip) as usize] - n_pod as u32, ip))
            .collect();
        let ip_members = Csr::from_pairs(ip_class_region.len(), &ip_pairs);

        let pairs: Vec<(u32, u32)> = pod_class.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
        let class_pods = Csr::from_pairs(n_pod, &pairs);
        let by = |f: &dyn Fn(&PodClass) -> u32, rows: usize| -> Csr<u32> {
            let pairs: Vec<(u32, u32)> = pod_classes.iter().enumerate().map(|(i, c)| (f(c), i as u32)).collect();
            Csr::from_pairs(rows, &pairs)
        };
        let ns_labels: Vec<LabelSet> = ns_interner.items.into_iter().map(|(_, l)| l).collect();
        let classes_by_ns = by(&|c| c.ns, ns_labels.len());
        let classes_by_labelset = by(&|c| c.labels, labelsets.items.len());
        let classes_by_region = by(&|c| c.region, regions);
        let ns_index = LabelIndex::build(&ns_labels);
        let labelset_index = LabelIndex::build(&labelsets.items);
        let ns_decl = first_ns.into_iter().map(|(name, i)| (name.to_owned(), i as u32)).collect();

        Universe {
            keys,
            values,
            names,
            refs,
            cuts,
            base,
            atom_words: atom_count.div_ceil(64),
            blocks: block_ids,
            addresses,
            block_regions,
            region_repr,
            region_ip_class,
            ip_class_region,
            ip_members,
            ns_labels,
            ns_names,
            ns_class_of_name,
            ns_decl,
            ns_index,
            labelsets: labelsets.items,
            labelset_index,
            portsigs: portsigs.items,
            pod_classes,
            pod_class,
            class_pods,
            classes_by_ns,
            classes_by_labelset,
            classes_by_region,
            namespaces: ns_seen,
        }
    }

    fn pod_class_count(&self) -> usize {
        self.pod_classes.len()
    }

    fn class_count(&self) -> usize {
        self.pod_classes.len() + self.ip_class_region.len()
    }

    fn atom_count(&self) -> usize {
        self.base[3] as usize
    }

    fn atom_of(&self, protocol: Protocol, port: u16) -> AtomId {
        let p = proto_index(protocol);
        self.base[p] + self.cuts[p].partition_point(|&c| c <= u32::from(port)).saturating_sub(1) as u32
    }

    fn atom_range(&self, atom: AtomId) -> Option<PortRange> {
        let p = (0..3).find(|&p| atom < self.base[p + 1])?;
        let i = (atom - self.base[p]) as usize;
        let start = *self.cuts[p].get(i)?;
        let end = self.cuts[p].get(i + 1).map_or(65535, |&next| next - 1);
        Some(PortRange {
            protocol: PROTOCOLS[p],
            start: start as u16,
            end: end as u16,
        })
    }

    fn region_of(&self, ip: IpAddr) -> u32 {
        let atoms = &self.addresses[family_index(ip)];
        atoms.regions.get(atoms.atom(addr_bits(ip))).copied().unwrap_or(0)
    }

    fn class_of(&self, endpoint: &Endpoint) -> Option<ClassId> {
        match endpoint {
            Endpoint::Pod(i) => self.pod_class.get(*i).copied(),
            Endpoint::Ip(ip) => {
                let c = self.region_ip_class.get(self.region_of(*ip) as usize).copied().unwrap_or(NONE);
                (c != NONE).then_some(c)
            }
        }
    }

    fn portsig(&self, class: ClassId) -> &[(u32, u32)] {
        self.pod_classes
            .get(class as usize)
            .and_then(|c| self.portsigs.get(c.ports as usize))
            .map_or(&[], Vec::as_slice)
    }

    fn heap_bytes(&self) -> usize {
        let strings = |m: &HashMap<String, u32>| m.keys().map(|k| k.capacity() + 40).sum::<usize>();
        let sets = |v: &[LabelSet]| v.iter().map(|s| s.capacity() * 8 + 24).sum::<usize>();
        strings(&self.keys)
            + strings(&self.values)
            + strings(&self.names)
            + strings(&self.ns_class_of_name)
            + strings(&self.ns_decl)
            + self.ns_names.iter().map(|n| n.capacity() + 24).sum::<usize>()
            + self.refs.len() * 32
            + self.cuts.iter().map(|c| c.capacity() * 4).sum::<usize>()
            + self.blocks.len() * 64
            + self
                .addresses
                .iter()
                .map(|a| a.cuts.capacity() * 16 + a.regions.capacity() * 4)
                .sum::<usize>()
            + self.block_regions.iter().map(|r| r.capacity() * 4 + 24).sum::<usize>()
            + self.region_repr.capacity() * 20
            + self.region_ip_class.capacity() * 4
            + self.ip_class_region.capacity() * 4
            + self.ip_members.heap_bytes()
            + sets(&self.ns_labels)
            + self.ns_index.heap_bytes()
            + sets(&self.labelsets)
            + self.labelset_index.heap_bytes()
            + self.portsigs.iter().map(|s| s.capacity() * 8 + 24).sum::<usize>()
            + self.pod_classes.capacity() * std::mem::size_of::<PodClass>()
            + self.pod_class.capacity() * 4
            + self.class_pods.heap_bytes()
            + self.classes_by_ns.heap_bytes()
            + self.classes_by_labelset.heap_bytes()
            + self.classes_by_region.heap_bytes()
    }
}

// ---------------------------------------------------------------------------
// One version of the policies over a universe
// ---------------------------------------------------------------------------

/// Peers up to equality of the classes they can match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PeerKey {
    Nothing,
    Block(u32),
    Local(u32, u32),
    Cross(u32, Option<u32>),
}

/// (peer classes, allowed atoms, named references): the rule of a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Grant {
    peers: u32,
    ports: u32,
    named: u32,
}

/// A rule of a policy, summarised: peers, numeric ports, named references.
#[derive(Clone, Copy, Debug)]
struct RuleSummary {
    peers: u32,
    ports: u32,
    named: u32,
}

/// The model of one policy version.
struct Model {
    sets: Vec<ClassSet>,
    /// Port sets, `atom_words` words each.
    portsets: Vec<u64>,
    refsets: Vec<Vec<u32>>,
    grants: Vec<Grant>,
    lists: Csr<u32>,
    /// Per pod class: grant list, or `NONE` when not isolated.
    ingress: Vec<u32>,
    egress: Vec<u32>,
    ingress_policies: Csr<u32>,
    egress_policies: Csr<u32>,
    policies: usize,
    selectors: usize,
}

struct ModelBuilder<'u> {
    u: &'u Universe,
    sels: Interner<Sel>,
    set_items: Interner<Vec<u32>>,
    portsets: Interner<Vec<u64>>,
    refsets: Interner<Vec<u32>>,
    grants: Interner<Grant>,
    lists: Interner<Vec<u32>>,
    peer_memo: HashMap<PeerKey, u32>,
    union_memo: HashMap<Vec<u32>, u32>,
    ns_sel_memo: HashMap<u32, (Vec<u32>, Vec<u64>)>,
    side_memo: HashMap<(bool, Vec<u32>, u32), u32>,
}

impl<'u> ModelBuilder<'u> {
    fn new(u: &'u Universe) -> Self {
        let mut b = ModelBuilder {
            u,
            sels: Interner::new(),
            set_items: Interner::new(),
            portsets: Interner::new(),
            refsets: Interner::new(),
            grants: Interner::new(),
            lists: Interner::new(),
            peer_memo: HashMap::new(),
            union_memo: HashMap::new(),
            ns_sel_memo: HashMap::new(),
            side_memo: HashMap::new(),
        };
        // ALL_SET is a placeholder: its items are never read.
        b.set_items.intern(vec![NONE]);
        b.set_items.intern(Vec::new());
        let mut all = vec![0u64; u.atom_words];
        fill_ones(&mut all, u.atom_count());
        b.portsets.intern(all);
        b.refsets.intern(Vec::new());
        b
    }

    fn sel(&mut self, selector: &LabelSelector) -> u32 {
        self.sels.intern(normalize_selector(selector, &self.u.keys, &self.u.values))
    }

    fn set(&mut self, mut ids: Vec<u32>) -> u32 {
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return EMPTY_SET;
        }
        self.set_items.intern(ids)
    }

    /// The classes of namespace class `ns` whose labels match `sel`.
    fn local(&self, ns: u32, sel: u32) -> Vec<u32> {
        let selector = &self.sels.items[sel as usize];
        self.u
            .classes_by_ns
            .row(ns as usize)
            .iter()
            .copied()
            .filter(|&c| {
                let labels = self.u.pod_classes[c as usize].labels as usize;
                self.u.labelsets.get(labels).is_some_and(|l| sel_matches(selector, l))
            })
            .collect()
    }

    fn cross(&mut self, ns_sel: u32, pod_sel: Option<u32>) -> Vec<u32> {
        let u = self.u;
        if !self.ns_sel_memo.contains_key(&ns_sel) {
            let list = u.ns_index.matching(&self.sels.items[ns_sel as usize], &u.ns_labels);
            let mut bits = vec![0u64; u.ns_labels.len().div_ceil(64)];
            for &n in &list {
                set_bit(&mut bits, n as usize);
            }
            self.ns_sel_memo.insert(ns_sel, (list, bits));
        }
        let Some((namespaces, ns_bits)) = self.ns_sel_memo.get(&ns_sel) else {
            return Vec::new();
        };
        let pod_selector = pod_sel.map(|s| &self.sels.items[s as usize]);
        let by_namespace: usize = namespaces.iter().map(|&n| u.classes_by_ns.row(n as usize).len()).sum();
        let positive = pod_selector.is_some_and(|s| {
            s.as_ref()
                .is_some_and(|reqs| reqs.iter().any(|r| matches!(r, Req::In(..) | Req::Exists(..))))
        });
        let mut out = Vec::new();
        if let (Some(selector), true) = (pod_selector, positive) {
            let labelsets = u.labelset_index.matching(selector, &u.labelsets);
            let by_labels: usize = labelsets.iter().map(|&l| u.classes_by_labelset.row(l as usize).len()).sum();
            if by_labels < by_namespace || alternate() {
                for l in labelsets {
                    for &c in u.classes_by_labelset.row(l as usize) {
                        if bit(ns_bits, u.pod_classes[c as usize].ns as usize) {
                            out.push(c);
                        }
                    }
                }
                return out;
            }
        }
        for &n in namespaces {
            for &c in u.classes_by_ns.row(n as usize) {
                let labels = &u.labelsets[u.pod_classes[c as usize].labels as usize];
                if pod_selector.is_none_or(|s| sel_matches(s, labels)) {
                    out.push(c);
                }
            }
        }
        out
    }

    fn peer(&mut self, peer: &NetworkPolicyPeer, policy_ns: Option<u32>) -> u32 {
        let key = match (&peer.ip_block, &peer.pod_selector, &peer.namespace_selector) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (None, None, None) => PeerKey::Nothing,
            (Some(block), None, None) => match parse_block(block).and_then(|b| self.u.blocks.get(&b).copied()) {
                Some(id) => PeerKey::Block(id),
                None => PeerKey::Nothing,
            },
            (None, Some(pods), None) => match policy_ns {
                Some(ns) => PeerKey::Local(ns, self.sel(pods)),
                None => PeerKey::Nothing,
            },
            (None, pods, Some(namespaces)) => {
                let ns = self.sel(namespaces);
                PeerKey::Cross(ns, pods.as_ref().map(|p| self.sel(p)))
            }
        };
        if let Some(&id) = self.peer_memo.get(&key) {
            return id;
        }
        let ids = match &key {
            PeerKey::Nothing => Vec::new(),
            PeerKey::Block(b) => {
                let mut ids = Vec::new();
                for &region in self.u.block_regions.get(*b as usize).into_iter().flatten() {
                    ids.extend_from_slice(self.u.classes_by_region.row(region as usize));
                    let ip = self.u.region_ip_class[region as usize];
                    if ip != NONE {
                        ids.push(ip);
                    }
                }
                ids
            }
            PeerKey::Local(ns, sel) => self.local(*ns, *sel),
            PeerKey::Cross(ns, pods) => self.cross(*ns, *pods),
        };
        let id = self.set(ids);
        self.peer_memo.insert(key, id);
        id
    }

    fn peers(&mut self, peers: Option<&[NetworkPolicyPeer]>, policy_ns: Option<u32>) -> u32 {
        let peers = match peers {
            None | Some([]) => return ALL_SET,
            Some(peers) => peers,
        };
        let mut ids: Vec<u32> = peers.iter().map(|p| self.peer(p, policy_ns)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|&i| i != EMPTY_SET);
        match ids.as_slice() {
            [] => EMPTY_SET,
            [one] => *one,
            _ => {
                if let Some(&id) = self.union_memo.get(&ids) {
                    return id;
                }
                let lists: Vec<&[u32]> = ids.iter().map(|&i| self.set_items.items[i as usize].as_slice()).collect();
                let union = union_sorted(&lists);
                let id = self.set(union);
                self.union_memo.insert(ids, id);
                id
            }
        }
    }

    fn ports(&mut self, ports: Option<&[NetworkPolicyPort]>) -> (u32, u32) {
        let Some(items) = parse_ports(ports) else {
            return (ALL_PORTS, NO_REFS);
        };
        let u = self.u;
        let mut words = vec![0u64; u.atom_words];
        let mut refs = Vec::new();
        for item in items {
            match item {
                PortItem::Range(p, lo, hi) => {
                    let first = u.atom_of(PROTOCOLS[p], lo as u16);
                    let last = u.atom_of(PROTOCOLS[p], hi as u16);
                    for a in first..=last {
                        set_bit(&mut words, a as usize);
                    }
                }
                PortItem::Named(name, p) => {
                    if let Some(r) = u.names.get(&name).and_then(|n| u.refs.get(&(*n, p))) {
                        refs.push(*r);
                    }
                }
            }
        }
        refs.sort_unstable();
        refs.dedup();
        (self.portsets.intern(words), self.refsets.intern(refs))
    }

    fn rules(&mut self, policy: &NetworkPolicy, direction: Direction, policy_ns: Option<u32>) -> Vec<RuleSummary> {
        evaluate::rules(policy, direction)
            .into_iter()
            .map(|(peers, ports)| {
                let (ports, named) = self.ports(ports);
                RuleSummary {
                    peers: self.peers(peers, policy_ns),
                    ports,
                    named,
                }
            })
            .collect()
    }

    /// The grant list of a class isolated by `policies` in `direction`.
    fn side_list(&mut self, ingress: bool, policies: &[u32], portsig: u32, rules: &[Vec<RuleSummary>]) -> u32 {
        let key = (ingress, policies.to_vec(), if ingress { portsig } else { 0 });
        if let Some(&id) = self.side_memo.get(&key) {
            return id;
        }
        let resolved: &[(u32, u32)] = if ingress {
            self.u.portsigs.get(portsig as usize).map_or(&[], Vec::as_slice)
        } else {
            &[]
        };
        let w = self.u.atom_words;
        // peers → (port words, references)
        let mut acc: Vec<(u32, Vec<u64>, Vec<u32>)> = Vec::new();
        for &p in policies {
            for rule in rules.get(p as usize).into_iter().flatten() {
                if rule.peers == EMPTY_SET {
                    continue;
                }
                let mut words = self.portsets.items[rule.ports as usize].clone();
                let refs = &self.refsets.items[rule.named as usize];
                let mut named = Vec::new();
                if ingress {
                    for &(r, atom) in resolved {
                        if refs.binary_search(&r).is_ok() {
                            set_bit(&mut words, atom as usize);
                        }
                    }
                } else {
                    named.clone_from(refs);
                }
                if named.is_empty() && words.iter().all(|&x| x == 0) {
                    continue;
                }
                match acc.iter_mut().find(|(peers, _, _)| *peers == rule.peers) {
                    Some((_, w0, n0)) => {
                        for i in 0..w {
                            w0[i] |= words[i];
                        }
                        n0.extend(named);
                    }
                    None => acc.push((rule.peers, words, named)),
                }
            }
        }
        let mut grants: Vec<u32> = acc
            .into_iter()
            .map(|(peers, words, mut named)| {
                named.sort_unstable();
                named.dedup();
                let grant = Grant {
                    peers,
                    ports: self.portsets.intern(words),
                    named: self.refsets.intern(named),
                };
                self.grants.intern(grant)
            })
            .collect();
        grants.sort_unstable();
        let id = self.lists.intern(grants);
        self.side_memo.insert(key, id);
        id
    }

    fn build(mut self, policies: &[NetworkPolicy]) -> Model {
        let u = self.u;
        let n_pod = u.pod_class_count();
        let mut ingress_of: Vec<Vec<u32>> = vec![Vec::new(); n_pod];
        let mut egress_of: Vec<Vec<u32>> = vec![Vec::new(); n_pod];
        let mut ingress_rules: Vec<Vec<RuleSummary>> = vec![Vec::new(); policies.len()];
        let mut egress_rules: Vec<Vec<RuleSummary>> = vec![Vec::new(); policies.len()];
        for (i, policy) in policies.iter().enumerate() {
            let types = evaluate::policy_types(policy);
            if !types.ingress && !types.egress {
                continue;
            }
            let Some(&ns) = u.ns_class_of_name.get(evaluate::policy_namespace(policy)) else {
                continue;
            };
            let selected = match policy.spec.as_ref().and_then(|s| s.pod_selector.as_ref()) {
                None => u.classes_by_ns.row(ns as usize).to_vec(),
                Some(selector) => {
                    let sel = self.sel(selector);
                    self.local(ns, sel)
                }
            };
            if selected.is_empty() {
                continue;
            }
            for &c in &selected {
                if types.ingress {
                    ingress_of[c as usize].push(i as u32);
                }
                if types.egress {
                    egress_of[c as usize].push(i as u32);
                }
            }
            if types.ingress {
                ingress_rules[i] = self.rules(policy, Direction::Ingress, Some(ns));
            }
            if types.egress {
                egress_rules[i] = self.rules(policy, Direction::Egress, Some(ns));
            }
        }
        let mut ingress = vec![NONE; n_pod];
        let mut egress = vec![NONE; n_pod];
        for c in 0..n_pod {
            let portsig = u.pod_classes[c].ports;
            if !ingress_of[c].is_empty() {
                ingress[c] = self.side_list(true, &ingress_of[c], portsig, &ingress_rules);
            }
            if !egress_of[c].is_empty() {
                egress[c] = self.side_list(false, &egress_of[c], portsig, &egress_rules);
            }
        }
        let classes = u.class_count();
        let sets = self
            .set_items
            .items
            .iter()
            .enumerate()
            .map(|(i, ids)| {
                if i as u32 == ALL_SET {
                    ClassSet::All
                } else {
                    ClassSet::from_sorted(ids, classes)
                }
            })
            .collect();
        Model {
            sets,
            portsets: self.portsets.items.concat(),
            refsets: self.refsets.items,
            grants: self.grants.items,
            lists: Csr::from_rows(&self.lists.items),
            ingress,
            egress,
            ingress_policies: Csr::from_rows(&ingress_of),
            egress_policies: Csr::from_rows(&egress_of),
            policies: policies.len(),
            selectors: self.sels.items.len(),
        }
    }
}

impl Model {
    fn portset(&self, id: u32, words: usize) -> &[u64] {
        let start = id as usize * words;
        self.portsets.get(start..start + words).unwrap_or(&[])
    }

    fn heap_bytes(&self) -> usize {
        self.sets.iter().map(|s| s.heap_bytes() + 24).sum::<usize>()
            + self.portsets.capacity() * 8
            + self.refsets.iter().map(|r| r.capacity() * 4 + 24).sum::<usize>()
            + self.grants.capacity() * std::mem::size_of::<Grant>()
            + self.lists.heap_bytes()
            + self.ingress.capacity() * 4
            + self.egress.capacity() * 4
            + self.ingress_policies.heap_bytes()
            + self.egress_policies.heap_bytes()
    }
}

// ---------------------------------------------------------------------------
// The public engine
// ---------------------------------------------------------------------------

/// Reachability between every pair of endpoints of a cluster under a set of
/// policies, computed over endpoint classes and port atoms (see the module
/// documentation). Its answers agree with [`evaluate::is_allowed`] on every
/// connection.
pub struct Reachability {
    universe: Arc<Universe>,
    model: Model,
}

/// Sizes of a [`Reachability`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReachStats {
    /// Pods in the cluster.
    pub pods: usize,
    /// Namespaces that hold pods.
    pub namespaces: usize,
    /// Policies.
    pub policies: usize,
    /// Pod classes.
    pub pod_classes: usize,
    /// IP classes (regions of the address space).
    pub ip_classes: usize,
    /// Port atoms, all protocols together.
    pub port_atoms: usize,
    /// Distinct selectors (pod and namespace) after normalisation.
    pub selectors: usize,
    /// Distinct sets of peer classes.
    pub peer_sets: usize,
    /// Distinct grants (peer set, port set, named ports).
    pub grants: usize,
    /// Distinct grant lists.
    pub grant_lists: usize,
    /// An estimate of the heap bytes the model holds (universe included),
    /// from the capacities of its tables.
    pub memory_bytes: usize,
}

impl fmt::Display for ReachStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pods in {} namespaces, {} policies: {} pod classes, {} IP classes, {} port atoms, {} selectors, \
             {} peer sets, {} grants, {} grant lists, ~{:.1} MiB",
            self.pods,
            self.namespaces,
            self.policies,
            self.pod_classes,
            self.ip_classes,
            self.port_atoms,
            self.selectors,
            self.peer_sets,
            self.grants,
            self.grant_lists,
            self.memory_bytes as f64 / (1024.0 * 1024.0)
        )
    }
}

/// Why two [`Reachability`] values cannot be compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffError;

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the two models do not share a universe of classes; build them with Reachability::compute_versions")
    }
}

impl std::error::Error for DiffError {}

/// Allowed ports from one class to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The source class.
    pub src: ClassId,
    /// The destination class.
    pub dst: ClassId,
    /// The allowed ports, merged into ranges, by protocol then port.
    pub ports: Vec<PortRange>,
}

/// How the allowed ports from one class to another changed between two
/// versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowChange {
    /// The source class.
    pub src: ClassId,
    /// The destination class.
    pub dst: ClassId,
    /// Ports allowed by the new version only.
    pub added: Vec<PortRange>,
    /// Ports allowed by the old version only.
    pub removed: Vec<PortRange>,
}

impl Reachability {
    /// Builds the model of `policies` over `cluster`. `externals` are the
    /// addresses outside the cluster a caller cares about: every address has
    /// a class whether listed or not, and listed ones are reported as members
    /// of their class.
    pub fn compute(policies: &[NetworkPolicy], cluster: &Cluster, externals: &[IpAddr]) -> Reachability {
        let universe = Arc::new(Universe::build(policies.iter(), cluster, externals));
        let model = ModelBuilder::new(&universe).build(policies);
        Reachability { universe, model }
    }

    /// Builds one model per version over one shared universe, cut by the
    /// union of all versions, so that [`Reachability::diff`] can compare
    /// them row by row.
    pub fn compute_versions(versions: &[&[NetworkPolicy]], cluster: &Cluster, externals: &[IpAddr]) -> Vec<Reachability> {
        let universe = Arc::new(Universe::build(versions.iter().flat_map(|v| v.iter()), cluster, externals));
        versions
            .iter()
            .map(|policies| Reachability {
                model: ModelBuilder::new(&universe).build(policies),
                universe: Arc::clone(&universe),
            })
            .collect()
    }

    /// Whether the connection is allowed: the same answer as
    /// [`evaluate::is_allowed`] for the policies and cluster the model was
    /// built from. A pod index outside the cluster is never allowed.
    pub fn allowed(&self, src: &Endpoint, dst: &Endpoint, port: u16, protocol: Protocol) -> bool {
        match (self.class_of(src), self.class_of(dst)) {
            (Some(s), Some(d)) => self.allowed_classes(s, d, self.atom_of(port, protocol)),
            _ => false,
        }
    }

    /// [`Reachability::allowed`] for a [`Connection`].
    pub fn allows(&self, conn: &Connection) -> bool {
        self.allowed(&conn.source, &conn.destination, conn.port, conn.protocol)
    }

    /// Whether class `src` may reach class `dst` on the ports of `atom`.
    pub fn allowed_classes(&self, src: ClassId, dst: ClassId, atom: AtomId) -> bool {
        self.egress_permits(src, dst, atom) && self.ingress_permits(src, dst, atom)
    }

    fn grants_of(&self, list: u32) -> impl Iterator<Item = &Grant> {
        self.model
            .lists
            .row(list as usize)
            .iter()
            .filter_map(|&g| self.model.grants.get(g as usize))
    }

    fn peer_set(&self, id: u32) -> Option<&ClassSet> {
        self.model.sets.get(id as usize)
    }

    fn egress_permits(&self, src: ClassId, dst: ClassId, atom: AtomId) -> bool {
        let Some(&list) = self.model.egress.get(src as usize) else {
            return true; // an IP class
        };
        if list == NONE {
            return true;
        }
        let w = self.universe.atom_words;
        self.grants_of(list).any(|g| {
            self.peer_set(g.peers).is_some_and(|s| s.contains(dst))
                && (bit(self.model.portset(g.ports, w), atom as usize) || self.named_allows(g.named, dst, atom))
        })
    }

    fn named_allows(&self, refs: u32, dst: ClassId, atom: AtomId) -> bool {
        if refs == NO_REFS {
            return false;
        }
        let refs = self.model.refsets.get(refs as usize).map_or(&[][..], Vec::as_slice);
        self.universe
            .portsig(dst)
            .iter()
            .any(|&(r, a)| a == atom && refs.binary_search(&r).is_ok())
    }

    fn ingress_permits(&self, src: ClassId, dst: ClassId, atom: AtomId) -> bool {
        let Some(&list) = self.model.ingress.get(dst as usize) else {
            return true; // an IP class
        };
        if list == NONE {
            return true;
        }
        let w = self.universe.atom_words;
        self.grants_of(list)
            .any(|g| self.peer_set(g.peers).is_some_and(|s| s.contains(src)) && bit(self.model.portset(g.ports, w), atom as usize))
    }

    /// The class of an endpoint; `None` for a pod index outside the cluster.
    pub fn class_of(&self, endpoint: &Endpoint) -> Option<ClassId> {
        self.universe.class_of(endpoint)
    }

    /// The number of classes, pod and IP.
    pub fn class_count(&self) -> usize {
        self.universe.class_count()
    }

    /// The number of pod classes; pod classes are `0..pod_class_count()`.
    pub fn pod_class_count(&self) -> usize {
        self.universe.pod_class_count()
    }

    /// Whether the class holds pods (otherwise it is a region of addresses).
    pub fn is_pod_class(&self, class: ClassId) -> bool {
        (class as usize) < self.universe.pod_class_count()
    }

    /// The pods of a class, as indexes into [`Cluster::pods`]; empty for an
    /// IP class.
    pub fn class_pods(&self, class: ClassId) -> &[u32] {
        self.universe.class_pods.row(class as usize)
    }

    /// The listed external addresses that fall in an IP class; empty for a
    /// pod class.
    pub fn class_ips(&self, class: ClassId) -> &[IpAddr] {
        match (class as usize).checked_sub(self.universe.pod_class_count()) {
            Some(i) => self.universe.ip_members.row(i),
            None => &[],
        }
    }

    /// Every member of a class: its pods, or its listed external addresses.
    pub fn members(&self, class: ClassId) -> impl Iterator<Item = Endpoint> + '_ {
        let pods = self.class_pods(class).iter().map(|&i| Endpoint::Pod(i as usize));
        pods.chain(self.class_ips(class).iter().map(|&ip| Endpoint::Ip(ip)))
    }

    /// One endpoint of the class: its first pod, its first listed address,
    /// or else the first address of its region. `None` for an unknown id.
    pub fn representative(&self, class: ClassId) -> Option<Endpoint> {
        if let Some(&pod) = self.class_pods(class).first() {
            return Some(Endpoint::Pod(pod as usize));
        }
        if let Some(&ip) = self.class_ips(class).first() {
            return Some(Endpoint::Ip(ip));
        }
        let i = (class as usize).checked_sub(self.universe.pod_class_count())?;
        let region = *self.universe.ip_class_region.get(i)?;
        self.universe.region_repr.get(region as usize).copied().flatten().map(Endpoint::Ip)
    }

    /// The namespace of a pod class's pods (namespaces that host no policy
    /// may share a class: this is one of them).
    pub fn class_namespace(&self, class: ClassId) -> Option<&str> {
        let c = self.universe.pod_classes.get(class as usize)?;
        self.universe.ns_names.get(c.ns as usize).map(String::as_str)
    }

    /// The number of port atoms, all protocols together.
    pub fn atom_count(&self) -> usize {
        self.universe.atom_count()
    }

    /// The atom holding a port.
    pub fn atom_of(&self, port: u16, protocol: Protocol) -> AtomId {
        self.universe.atom_of(protocol, port)
    }

    /// The ports of an atom.
    pub fn atom_range(&self, atom: AtomId) -> Option<PortRange> {
        self.universe.atom_range(atom)
    }

    /// Every atom's ports, in atom order.
    pub fn port_atoms(&self) -> impl Iterator<Item = PortRange> + '_ {
        (0..self.atom_count() as u32).filter_map(|a| self.atom_range(a))
    }

    /// Sizes and a memory estimate.
    pub fn stats(&self) -> ReachStats {
        let u = &self.universe;
        ReachStats {
            pods: u.pod_class.len(),
            namespaces: u.namespaces,
            policies: self.model.policies,
            pod_classes: u.pod_class_count(),
            ip_classes: u.ip_class_region.len(),
            port_atoms: u.atom_count(),
            selectors: self.model.selectors,
            peer_sets: self.model.sets.len(),
            grants: self.model.grants.len(),
            grant_lists: self.model.lists.offsets.len().saturating_sub(1),
            memory_bytes: u.heap_bytes() + self.model.heap_bytes(),
        }
    }

    /// The row-by-row view of the full matrix.
    pub fn rows(&self) -> Rows<'_> {
        Rows::new(self)
    }

    /// Every allowed (source class, destination class, ports), row by row.
    pub fn flows(&self) -> impl Iterator<Item = Flow> + '_ {
        let rows = self.rows();
        let mut row = rows.empty_row();
        let mut pending: Vec<Flow> = Vec::new();
        let mut next_src: u32 = 0;
        let classes = self.class_count() as u32;
        std::iter::from_fn(move || {
            loop {
                if let Some(flow) = pending.pop() {
                    return Some(flow);
                }
                if next_src >= classes {
                    return None;
                }
                rows.fill(next_src, &mut row);
                next_src += 1;
                let mut flows: Vec<Flow> = row
                    .destinations()
                    .into_iter()
                    .map(|dst| Flow {
                        src: row.src,
                        dst,
                        ports: row.ports_to(dst, self),
                    })
                    .collect();
                flows.reverse();
                pending = flows;
            }
        })
    }

    /// What changed from `self` (old) to `other` (new): for each pair of
    /// classes whose allowed ports differ, the ports added and removed.
    /// Both must come from one [`Reachability::compute_versions`] call.
    pub fn diff(&self, other: &Reachability) -> Result<Vec<FlowChange>, DiffError> {
        if !Arc::ptr_eq(&self.universe, &other.universe) {
            return Err(DiffError);
        }
        let (old_rows, new_rows) = (self.rows(), other.rows());
        let (mut old, mut new) = (old_rows.empty_row(), new_rows.empty_row());
        let w = old.words;
        let atoms = self.atom_count();
        let mut changes = Vec::new();
        let mut changed = vec![0u64; w];
        for src in 0..self.class_count() as u32 {
            old_rows.fill(src, &mut old);
            new_rows.fill(src, &mut new);
            changed.iter_mut().for_each(|x| *x = 0);
            let mut any = false;
            for (i, (a, b)) in old.bits.iter().zip(new.bits.iter()).enumerate() {
                if a != b {
                    changed[i % w] |= a ^ b;
                    any = true;
                }
            }
            if !any {
                continue;
            }
            for_each_bit(&changed, |dst| {
                let mut added = Vec::new();
                let mut removed = Vec::new();
                for atom in 0..atoms {
                    let (a, b) = (bit(&old.bits, atom * w * 64 + dst), bit(&new.bits, atom * w * 64 + dst));
                    if a != b
                        && let Some(range) = self.atom_range(atom as u32)
                    {
                        if b { &mut added } else { &mut removed }.push(range);
                    }
                }
                changes.push(FlowChange {
                    src,
                    dst: dst as u32,
                    added: merge_ranges(added),
                    removed: merge_ranges(removed),
                });
            });
        }
        Ok(changes)
    }

    /// The same [`Verdict`] as [`evaluate::evaluate`], looking only at the
    /// policies that select the endpoints' classes. `policies` and `cluster`
    /// must be the ones the model was built from; when the cluster's pod
    /// count or the policy count differs, this falls back to
    /// [`evaluate::evaluate`].
    ///
    /// The candidate rules are matched with [`evaluate::rule_matches`]
    /// against a copy of the cluster that holds only the connection's pods
    /// and their namespaces: rule matching looks at nothing else, and
    /// [`Cluster::namespace`] scans every namespace.
    pub fn explain(&self, policies: &[NetworkPolicy], cluster: &Cluster, conn: &Connection) -> Verdict {
        if policies.len() != self.model.policies || cluster.pods.len() != self.universe.pod_class.len() {
            return evaluate::evaluate(policies, cluster, conn);
        }
        let mut small = Cluster::new();
        let mut copy = |endpoint: Endpoint| -> Endpoint {
            let Endpoint::Pod(index) = endpoint else {
                return endpoint;
            };
            let Some(pod) = cluster.pods.get(index) else {
                return Endpoint::Pod(usize::MAX);
            };
            if small.namespace(&pod.namespace).is_none()
                && let Some(ns) = self
                    .universe
                    .ns_decl
                    .get(&pod.namespace)
                    .and_then(|&i| cluster.namespaces.get(i as usize))
            {
                small.namespaces.push(ns.clone());
            }
            small.pods.push(pod.clone());
            Endpoint::Pod(small.pods.len() - 1)
        };
        let small_conn = Connection::new(copy(conn.source), copy(conn.destination), conn.port, conn.protocol);
        let egress = self.explain_side(policies, &small, &small_conn, conn.source, Direction::Egress);
        let ingress = self.explain_side(policies, &small, &small_conn, conn.destination, Direction::Ingress);
        Verdict {
            allowed: egress.permits() && ingress.permits(),
            egress,
            ingress,
        }
    }

    fn explain_side(
        &self,
        policies: &[NetworkPolicy],
        small: &Cluster,
        small_conn: &Connection,
        subject: Endpoint,
        direction: Direction,
    ) -> SideVerdict {
        let index = match subject {
            Endpoint::Ip(_) => return SideVerdict::NotAPod,
            Endpoint::Pod(index) => index,
        };
        let Some(&class) = self.universe.pod_class.get(index) else {
            return SideVerdict::UnknownPod(index);
        };
        let candidates = match direction {
            Direction::Egress => self.model.egress_policies.row(class as usize),
            Direction::Ingress => self.model.ingress_policies.row(class as usize),
        };
        let mut isolated_by = Vec::new();
        let mut allowed_by = Vec::new();
        for &p in candidates {
            let Some(policy) = policies.get(p as usize) else {
                continue;
            };
            let namespace = evaluate::policy_namespace(policy).to_owned();
            let name = evaluate::policy_name(policy).to_owned();
            for rule in 0..evaluate::rule_count(policy, direction) {
                if evaluate::rule_matches(policy, direction, rule, small, small_conn) {
                    allowed_by.push(RuleRef {
                        policy: p as usize,
                        namespace: namespace.clone(),
                        name: name.clone(),
                        direction,
                        rule,
                    });
                }
            }
            isolated_by.push(PolicyRef {
                policy: p as usize,
                namespace,
                name,
            });
        }
        SideVerdict::from_parts(isolated_by, allowed_by)
    }
}

impl fmt::Debug for Reachability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reachability").field("stats", &self.stats()).finish()
    }
}

/// Merges sorted atom ranges that touch into maximal ranges.
fn merge_ranges(ranges: Vec<PortRange>) -> Vec<PortRange> {
    let mut out: Vec<PortRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.protocol == r.protocol && u32::from(last.end) + 1 == u32::from(r.start) => last.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Rows of the full matrix
// ---------------------------------------------------------------------------

/// One source class's row of the matrix: for each atom, a bitset over
/// destination classes.
#[derive(Clone, Debug)]
pub struct Row {
    src: ClassId,
    classes: usize,
    words: usize,
    atoms: usize,
    /// `atoms` blocks of `words` words.
    bits: Vec<u64>,
}

impl Row {
    /// The source class.
    pub fn src(&self) -> ClassId {
        self.src
    }

    /// Whether the row allows `dst` on `atom`.
    pub fn allows(&self, dst: ClassId, atom: AtomId) -> bool {
        (dst as usize) < self.classes && bit(&self.bits, atom as usize * self.words * 64 + dst as usize)
    }

    /// The bitset over destination classes for one atom.
    pub fn atom_bits(&self, atom: AtomId) -> &[u64] {
        let start = atom as usize * self.words;
        self.bits.get(start..start + self.words).unwrap_or(&[])
    }

    /// The destinations allowed on at least one atom, in order.
    pub fn destinations(&self) -> Vec<ClassId> {
        let mut any = vec![0u64; self.words];
        for block in self.bits.chunks(self.words.max(1)) {
            for (a, b) in any.iter_mut().zip(block) {
                *a |= b;
            }
        }
        let mut out = Vec::new();
        for_each_bit(&any, |i| out.push(i as u32));
        out
    }

    /// The ports allowed towards `dst`, merged into ranges.
    pub fn ports_to(&self, dst: ClassId, reach: &Reachability) -> Vec<PortRange> {
        let ranges = (0..self.atoms as u32)
            .filter(|&a| self.allows(dst, a))
            .filter_map(|a| reach.atom_range(a))
            .collect();
        merge_ranges(ranges)
    }

    /// The number of allowed (destination class, atom) cells.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// Computes rows of the matrix of a [`Reachability`]. Building it indexes
/// the ingress grants by source class (the transpose the rows need); each
/// row then costs a few bitset operations per atom.
pub struct Rows<'a> {
    reach: &'a Reachability,
    words: usize,
    all: Vec<u64>,
    /// Destinations whose ingress is not isolated (IP classes included).
    open_ingress: Vec<u64>,
    /// Ingress grants whose peers are every class.
    always: Vec<u32>,
    /// Per source class: ingress grants whose peers contain it.
    by_source: Csr<u32>,
    /// Per ingress grant: the destination classes whose lists hold it.
    holders: Vec<ClassSet>,
    /// Per slot: the ingress grant.
    slot_grant: Vec<u32>,
    /// Per named reference: (destination class, atom).
    named: Vec<Vec<(u32, u32)>>,
}

impl<'a> Rows<'a> {
    fn new(reach: &'a Reachability) -> Rows<'a> {
        let u = &reach.universe;
        let m = &reach.model;
        let classes = u.class_count();
        let words = classes.div_ceil(64);
        let mut all = vec![0u64; words];
        fill_ones(&mut all, classes);
        let mut open_ingress = all.clone();
        let mut grant_slot: HashMap<u32, u32> = HashMap::new();
        let mut holder_lists: Vec<Vec<u32>> = Vec::new();
        for (d, &list) in m.ingress.iter().enumerate() {
            if list == NONE {
                continue;
            }
            if let Some(w) = open_ingress.get_mut(d / 64) {
                *w &= !(1u64 << (d % 64));
            }
            for &g in m.lists.row(list as usize) {
                let next = holder_lists.len() as u32;
                let slot = *grant_slot.entry(g).or_insert(next);
                if slot == next {
                    holder_lists.push(Vec::new());
                }
                holder_lists[slot as usize].push(d as u32);
            }
        }
        let holders = holder_lists.iter().map(|l| ClassSet::from_sorted(l, classes)).collect();
        let mut always = Vec::new();
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut slot_grant = vec![NONE; holder_lists.len()];
        for (&g, &slot) in &grant_slot {
            slot_grant[slot as usize] = g;
        }
        for (slot, &g) in slot_grant.iter().enumerate() {
            let slot = slot as u32;
            let Some(grant) = m.grants.get(g as usize) else {
                continue;
            };
            match m.sets.get(grant.peers as usize) {
                Some(ClassSet::All) => always.push(slot),
                Some(set) => set.for_each(classes, |s| pairs.push((s, slot))),
                None => {}
            }
        }
        let by_source = Csr::from_pairs(classes, &pairs);
        let mut named = vec![Vec::new(); u.refs.len()];
        for c in 0..u.pod_class_count() {
            for &(r, atom) in u.portsig(c as u32) {
                if let Some(list) = named.get_mut(r as usize) {
                    list.push((c as u32, atom));
                }
            }
        }
        Rows {
            reach,
            words,
            all,
            open_ingress,
            always,
            by_source,
            holders,
            slot_grant,
            named,
        }
    }

    /// A row to fill with [`Rows::fill`].
    pub fn empty_row(&self) -> Row {
        let atoms = self.reach.atom_count();
        Row {
            src: 0,
            classes: self.reach.class_count(),
            words: self.words,
            atoms,
            bits: vec![0; atoms * self.words],
        }
    }

    /// The row of `src`, in a new allocation.
    pub fn row(&self, src: ClassId) -> Row {
        let mut row = self.empty_row();
        self.fill(src, &mut row);
        row
    }

    /// Computes the row of `src` into `row` (made by [`Rows::empty_row`]).
    pub fn fill(&self, src: ClassId, row: &mut Row) {
        let m = &self.reach.model;
        let w = self.words;
        let aw = self.reach.universe.atom_words;
        let atoms = row.atoms;
        row.src = src;
        if row.bits.len() != atoms * w {
            row.bits = vec![0; atoms * w];
        }
        // Ingress: which destinations admit `src`, per atom.
        for block in row.bits.chunks_mut(w.max(1)) {
            block.copy_from_slice(&self.open_ingress);
        }
        if src as usize >= row.classes {
            row.bits.iter_mut().for_each(|x| *x = 0);
            return;
        }
        for &slot in self.always.iter().chain(self.by_source.row(src as usize)) {
            let Some(holders) = self.holders.get(slot as usize) else {
                continue;
            };
            let Some(grant) = self.grant_of_slot(slot) else {
                continue;
            };
            let ports = m.portset(grant.ports, aw);
            for_each_bit(ports, |a| {
                if a < atoms {
                    holders.or_into(&mut row.bits[a * w..(a + 1) * w], &self.all);
                }
            });
        }
        // Egress: AND with what `src` may send to.
        let list = m.egress.get(src as usize).copied().unwrap_or(NONE);
        if list == NONE {
            return;
        }
        let mut egress = vec![0u64; atoms * w];
        for &g in m.lists.row(list as usize) {
            let Some(grant) = m.grants.get(g as usize) else {
                continue;
            };
            let Some(peers) = m.sets.get(grant.peers as usize) else {
                continue;
            };
            for_each_bit(m.portset(grant.ports, aw), |a| {
                if a < atoms {
                    peers.or_into(&mut egress[a * w..(a + 1) * w], &self.all);
                }
            });
            for &r in m.refsets.get(grant.named as usize).into_iter().flatten() {
                for &(d, a) in self.named.get(r as usize).into_iter().flatten() {
                    if peers.contains(d) {
                        set_bit(&mut egress, a as usize * w * 64 + d as usize);
                    }
                }
            }
        }
        for (x, e) in row.bits.iter_mut().zip(egress) {
            *x &= e;
        }
    }

    fn grant_of_slot(&self, slot: u32) -> Option<&Grant> {
        let g = *self.slot_grant.get(slot as usize)?;
        self.reach.model.grants.get(g as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::synth::Rng;
    use super::*;
    use crate::evaluate::{Labels, NAMESPACE_NAME_LABEL, NamedPort, Namespace, Pod, is_allowed};
    use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicySpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};

    // -- random clusters and policies ---------------------------------------

    const POD_KEYS: &[&str] = &["app", "tier", "env"];
    const NS_KEYS: &[&str] = &["team", "env", NAMESPACE_NAME_LABEL];
    const VALUES: &[&str] = &["a", "b", "", "n0"];
    const NS_NAMES: &[&str] = &["n0", "n1", "n2", "n3", "default"];
    const PORT_NAMES: &[&str] = &["http", "dns", "metrics"];
    const CIDRS: &[&str] = &[
        "10.0.0.0/16",
        "10.0.1.0/24",
        "10.0.1.4/30",
        "10.0.1.1/24",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "10.0.2.5/32",
        "192.168.0.0/16",
        "fd00::/8",
        "fd00::/120",
        "::/0",
        "2001:db8::/32",
        "10.0.0.0/33",
        "nonsense",
        "::ffff:10.0.0.0/104",
    ];
    const IPS: &[&str] = &[
        "10.0.0.1",
        "10.0.1.1",
        "10.0.1.5",
        "10.0.1.200",
        "10.0.2.5",
        "10.0.3.3",
        "10.1.0.1",
        "192.168.1.1",
        "8.8.8.8",
        "0.0.0.0",
        "255.255.255.255",
        "fd00::5",
        "fd00::1:5",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "::",
    ];

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("bad test IP {text}"))
    }

    fn random_labels(rng: &mut Rng, keys: &[&str]) -> Labels {
        let mut labels = Labels::new();
        for key in keys {
            if rng.percent(60) {
                labels.insert((*key).to_owned(), (*rng.pick(VALUES)).to_owned());
            }
        }
        labels
    }

    fn random_selector(rng: &mut Rng, keys: &[&str]) -> LabelSelector {
        let mut sel = LabelSelector::default();
        if rng.percent(60) {
            let n = rng.below(3) + usize::from(rng.percent(70));
            sel.match_labels = Some(
                (0..n)
                    .map(|_| ((*rng.pick(keys)).to_owned(), (*rng.pick(VALUES)).to_owned()))
                    .collect(),
            );
        }
        if rng.percent(50) {
            let n = rng.below(2) + usize::from(rng.percent(70));
            let exprs = (0..n)
                .map(|_| {
                    let operator = if rng.percent(3) {
                        "Equals"
                    } else {
                        *rng.pick(&["In", "NotIn", "Exists", "DoesNotExist"])
                    };
                    let values = match rng.below(4) {
                        0 => None,
                        1 => Some(Vec::new()),
                        _ => Some((0..1 + rng.below(2)).map(|_| (*rng.pick(VALUES)).to_owned()).collect()),
                    };
                    LabelSelectorRequirement {
                        key: (*rng.pick(keys)).to_owned(),
                        operator: operator.to_owned(),
                        values,
                    }
                })
                .collect();
            sel.match_expressions = Some(exprs);
        }
        sel
    }

    fn random_block(rng: &mut Rng) -> IPBlock {
        let except = match rng.below(3) {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some((0..1 + rng.below(2)).map(|_| (*rng.pick(CIDRS)).to_owned()).collect()),
        };
        IPBlock {
            cidr: (*rng.pick(CIDRS)).to_owned(),
            except,
        }
    }

    fn random_peer(rng: &mut Rng) -> NetworkPolicyPeer {
        let mut peer = NetworkPolicyPeer::default();
        match rng.below(20) {
            0 => {}
            1..=6 => peer.pod_selector = Some(random_selector(rng, POD_KEYS)),
            7..=10 => peer.namespace_selector = Some(random_selector(rng, NS_KEYS)),
            11..=14 => {
                peer.namespace_selector = Some(random_selector(rng, NS_KEYS));
                peer.pod_selector = Some(random_selector(rng, POD_KEYS));
            }
            _ => {
                peer.ip_block = Some(random_block(rng));
                if rng.percent(10) {
                    peer.pod_selector = Some(LabelSelector::default());
                }
            }
        }
        peer
    }

    fn random_port(rng: &mut Rng) -> NetworkPolicyPort {
        let protocol = match rng.below(6) {
            0 => None,
            1 => Some("TCP".to_owned()),
            2 => Some("UDP".to_owned()),
            3 => Some("SCTP".to_owned()),
            4 => Some("TCP".to_owned()),
            _ => {
                if rng.percent(30) {
                    Some("tcp".to_owned())
                } else {
                    Some("UDP".to_owned())
                }
            }
        };
        let numbers = [53, 80, 443, 8080, 0, 65535, 70_000, -1, 81, 8443];
        let port = match rng.below(5) {
            0 => None,
            1 | 2 => Some(IntOrString::Int(*rng.pick(&numbers))),
            _ => Some(IntOrString::String((*rng.pick(PORT_NAMES)).to_owned())),
        };
        let end_port = if rng.percent(30) {
            let base = match &port {
                Some(IntOrString::Int(n)) => *n,
                _ => 80,
            };
            Some(base + rng.below(200) as i32 - 20)
        } else {
            None
        };
        NetworkPolicyPort { port, end_port, protocol }
    }

    fn random_list<T>(rng: &mut Rng, max: usize, mut f: impl FnMut(&mut Rng) -> T) -> Option<Vec<T>> {
        match rng.below(10) {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some((0..1 + rng.below(max)).map(|_| f(rng)).collect()),
        }
    }

    fn random_policy(rng: &mut Rng, i: usize) -> NetworkPolicy {
        let namespace = if rng.percent(5) {
            None
        } else {
            Some((*rng.pick(NS_NAMES)).to_owned())
        };
        let spec = if rng.percent(5) {
            None
        } else {
            let policy_types = match rng.below(7) {
                0 | 1 => None,
                2 => Some(Vec::new()),
                3 => Some(vec!["Ingress".to_owned()]),
                4 => Some(vec!["Egress".to_owned()]),
                5 => Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
                _ => Some(vec!["Bogus".to_owned()]),
            };
            let pod_selector = match rng.below(4) {
                0 => None,
                1 => Some(LabelSelector::default()),
                _ => Some(random_selector(rng, POD_KEYS)),
            };
            let ingress = random_list(rng, 3, |rng| NetworkPolicyIngressRule {
                from: random_list(rng, 3, random_peer),
                ports: random_list(rng, 3, random_port),
            });
            let egress = random_list(rng, 3, |rng| NetworkPolicyEgressRule {
                to: random_list(rng, 3, random_peer),
                ports: random_list(rng, 3, random_port),
            });
            Some(NetworkPolicySpec {
                pod_selector,
                policy_types,
                ingress,
                egress,
            })
        };
        NetworkPolicy {
            metadata: ObjectMeta {
                name: Some(format!("p{i}")),
                namespace,
                ..Default::default()
            },
            spec,
        }
    }

    fn random_cluster(rng: &mut Rng) -> Cluster {
        let mut cluster = Cluster::new();
        for name in NS_NAMES.iter().take(1 + rng.below(NS_NAMES.len())) {
            let mut ns = Namespace::new(*name);
            for (k, v) in random_labels(rng, NS_KEYS) {
                ns.labels.insert(k, v);
            }
            cluster.namespaces.push(ns);
        }
        // A duplicate declaration: the first one wins, as in `Cluster::namespace`.
        if rng.percent(40) {
            let name: &&str = rng.pick(NS_NAMES);
            let mut ns = Namespace::new(*name).with_label("team", "dup");
            for (k, v) in random_labels(rng, NS_KEYS) {
                ns.labels.insert(k, v);
            }
            cluster.namespaces.push(ns);
        }
        for i in 0..rng.below(14) {
            let namespace = if rng.percent(10) { "undeclared" } else { *rng.pick(NS_NAMES) };
            let mut pod = Pod::new(namespace, format!("pod{i}"));
            pod.labels = random_labels(rng, POD_KEYS);
            if rng.percent(70) {
                let address: &&str = rng.pick(IPS);
                pod.ip = Some(ip(address));
            }
            for _ in 0..rng.below(3) {
                let protocol = *rng.pick(&PROTOCOLS);
                let port = *rng.pick(&[53u16, 80, 443, 8080, 9090, 0, 65535, 81]);
                pod.ports.push(NamedPort {
                    name: (*rng.pick(PORT_NAMES)).to_owned(),
                    port,
                    protocol,
                });
            }
            cluster.pods.push(pod);
        }
        cluster
    }

    /// Ports worth asking about: both ends of every atom and their
    /// neighbours, named port numbers, and a few fixed ones.
    fn probe_ports(r: &Reachability, cluster: &Cluster) -> Vec<u16> {
        let mut ports = vec![0u16, 1, 53, 80, 443, 8080, 65534, 65535];
        for range in r.port_atoms() {
            ports.extend([range.start, range.end, range.start.saturating_sub(1), range.end.saturating_add(1)]);
        }
        for pod in &cluster.pods {
            ports.extend(pod.ports.iter().map(|p| p.port));
        }
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    fn endpoints(cluster: &Cluster) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = (0..cluster.pods.len()).map(Endpoint::Pod).collect();
        out.push(Endpoint::Pod(cluster.pods.len()));
        out.extend(IPS.iter().map(|a| Endpoint::Ip(ip(a))));
        out.extend(
            ["10.0.1.7", "172.16.0.1", "fd00::ff", "2001:db9::1"]
                .iter()
                .map(|a| Endpoint::Ip(ip(a))),
        );
        out
    }

    /// Checks every (endpoint, endpoint, port, protocol) against `is_allowed`;
    /// returns (allowed, denied) counts.
    fn assert_agrees(r: &Reachability, policies: &[NetworkPolicy], cluster: &Cluster, what: &str) -> (usize, usize) {
        let ports = probe_ports(r, cluster);
        let eps = endpoints(cluster);
        let (mut yes, mut no) = (0, 0);
        for src in &eps {
            for dst in &eps {
                for &port in &ports {
                    for protocol in PROTOCOLS {
                        let conn = Connection::new(*src, *dst, port, protocol);
                        let expected = is_allowed(policies, cluster, &conn);
                        let got = r.allowed(src, dst, port, protocol);
                        if expected != got {
                            panic!(
                                "{what}: reach says {got}, evaluate says {expected} for {}\n{}\npolicies: {policies:#?}\ncluster: {cluster:#?}",
                                cluster.describe_connection(&conn),
                                evaluate::evaluate(policies, cluster, &conn)
                            );
                        }
                        if expected { yes += 1 } else { no += 1 }
                    }
                }
            }
        }
        (yes, no)
    }

    /// Rows, flows and explanations agree with `allowed_classes` and
    /// `evaluate`.
    fn assert_views_agree(r: &Reachability, policies: &[NetworkPolicy], cluster: &Cluster) {
        let rows = r.rows();
        let classes = r.class_count() as u32;
        let mut flows = r.flows();
        for s in 0..classes {
            let row = rows.row(s);
            for d in 0..classes {
                for a in 0..r.atom_count() as u32 {
                    assert_eq!(row.allows(d, a), r.allowed_classes(s, d, a), "row {s} -> {d} atom {a}");
                }
                if !row.ports_to(d, r).is_empty() {
                    let flow = flows.next().expect("a flow per allowed pair");
                    assert_eq!((flow.src, flow.dst), (s, d));
                    assert_eq!(flow.ports, row.ports_to(d, r));
                }
            }
        }
        assert!(flows.next().is_none());
        let eps = endpoints(cluster);
        for src in &eps {
            for dst in &eps {
                for (port, protocol) in [(53, Protocol::Udp), (80, Protocol::Tcp), (8080, Protocol::Tcp)] {
                    let conn = Connection::new(*src, *dst, port, protocol);
                    assert_eq!(r.explain(policies, cluster, &conn), evaluate::evaluate(policies, cluster, &conn));
                }
            }
        }
    }

    #[test]
    fn agrees_with_evaluate_on_random_clusters() {
        let (mut yes, mut no) = (0, 0);
        for seed in 0..160u64 {
            ALTERNATE.with(|a| a.set(seed % 2 == 1));
            let mut rng = Rng::new(seed);
            let cluster = random_cluster(&mut rng);
            let policies: Vec<NetworkPolicy> = (0..rng.below(9)).map(|i| random_policy(&mut rng, i)).collect();
            let externals: Vec<IpAddr> = IPS.iter().take(rng.below(IPS.len())).map(|a| ip(a)).collect();
            let r = Reachability::compute(&policies, &cluster, &externals);
            let (y, n) = assert_agrees(&r, &policies, &cluster, &format!("seed {seed}"));
            yes += y;
            no += n;
            assert_views_agree(&r, &policies, &cluster);
        }
        // The generator exercises both answers.
        assert!(yes > 100_000 && no > 100_000, "{yes} allowed, {no} denied");
    }

    #[test]
    fn versions_share_a_universe_and_diff_matches_brute_force() {
        for seed in 1000..1040u64 {
            ALTERNATE.with(|a| a.set(seed % 2 == 1));
            let mut rng = Rng::new(seed);
            let cluster = random_cluster(&mut rng);
            let old: Vec<NetworkPolicy> = (0..rng.below(7)).map(|i| random_policy(&mut rng, i)).collect();
            let mut new: Vec<NetworkPolicy> = old.iter().filter(|_| rng.percent(70)).cloned().collect();
            new.extend((0..rng.below(4)).map(|i| random_policy(&mut rng, 100 + i)));
            let versions = Reachability::compute_versions(&[&old, &new], &cluster, &[]);
            let [a, b] = versions.as_slice() else {
                panic!("two versions");
            };
            assert_agrees(a, &old, &cluster, &format!("old, seed {seed}"));
            assert_agrees(b, &new, &cluster, &format!("new, seed {seed}"));
            let changes = a.diff(b).expect("same universe");
            let classes = a.class_count() as u32;
            let mut expected = Vec::new();
            for s in 0..classes {
                for d in 0..classes {
                    let mut added = Vec::new();
                    let mut removed = Vec::new();
                    for atom in 0..a.atom_count() as u32 {
                        let (x, y) = (a.allowed_classes(s, d, atom), b.allowed_classes(s, d, atom));
                        if x != y {
                            let range = a.atom_range(atom).expect("atom");
                            if y { added.push(range) } else { removed.push(range) }
                        }
                    }
                    if !added.is_empty() || !removed.is_empty() {
                        expected.push(FlowChange {
                            src: s,
                            dst: d,
                            added: merge_ranges(added),
                            removed: merge_ranges(removed),
                        });
                    }
                }
            }
            assert_eq!(changes, expected, "seed {seed}");
        }
    }

    #[test]
    fn synthetic_clusters_agree_with_evaluate() {
        let s = synth::generate(&synth::Shape {
            namespaces: 6,
            pods: 60,
            policies: 40,
            seed: 7,
        });
        ALTERNATE.with(|a| a.set(true));
        let r = Reachability::compute(&s.policies, &s.cluster, &s.externals);
        assert_agrees(&r, &s.policies, &s.cluster, "synthetic, alternate roads");
        ALTERNATE.with(|a| a.set(false));
        let r = Reachability::compute(&s.policies, &s.cluster, &s.externals);
        let (yes, no) = assert_agrees(&r, &s.policies, &s.cluster, "synthetic");
        assert!(yes > 1000 && no > 1000, "{yes} allowed, {no} denied");
        let stats = r.stats();
        assert_eq!(stats.pods, 63);
        assert!(stats.pod_classes < 40, "{stats}");
        // Two versions of the same synthetic cluster.
        let changed = synth::mutate(&s.policies, 3, 200);
        let versions = Reachability::compute_versions(&[&s.policies, &changed], &s.cluster, &s.externals);
        assert_agrees(&versions[0], &s.policies, &s.cluster, "synthetic old");
        assert_agrees(&versions[1], &changed, &s.cluster, "synthetic new");
        assert!(!versions[0].diff(&versions[1]).expect("same universe").is_empty());
    }

    // -- unit tests -----------------------------------------------------------

    fn np(yaml: &str) -> NetworkPolicy {
        let text = format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{yaml}");
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("bad test YAML: {e}\n{text}"))
    }

    #[test]
    fn port_atoms_cut_at_every_bound_and_named_port() {
        let mut cluster = Cluster::new();
        cluster.pods.push(Pod::new("a", "web").with_port("http", 8081, Protocol::Tcp));
        let policies = [np(
            "metadata: {name: p, namespace: a}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: 80}, {port: 8000, endPort: 8100}, {port: 53, protocol: UDP}, {port: http}, {protocol: SCTP}]",
        )];
        let r = Reachability::compute(&policies, &cluster, &[]);
        let atoms: Vec<String> = r.port_atoms().map(|a| a.to_string()).collect();
        assert_eq!(
            atoms,
            [
                "TCP 0-79",
                "TCP 80",
                "TCP 81-7999",
                "TCP 8000-8080",
                "TCP 8081",
                "TCP 8082-8100",
                "TCP 8101-65535",
                "UDP 0-52",
                "UDP 53",
                "UDP 54-65535",
                "SCTP 0-65535"
            ]
        );
        assert_eq!(r.atom_of(8081, Protocol::Tcp), 4);
        assert_eq!(r.atom_of(65535, Protocol::Tcp), 6);
        assert_eq!(r.atom_of(0, Protocol::Udp), 7);
        assert_eq!(r.atom_of(9, Protocol::Sctp), 10);
        assert_eq!(r.atom_range(11), None);
        // No policy ports: one atom per protocol.
        let r = Reachability::compute(&[], &cluster, &[]);
        assert_eq!(r.atom_count(), 3);
    }

    #[test]
    fn classes_follow_the_labels_selectors_see() {
        let mut cluster = Cluster::new();
        cluster.namespaces.push(Namespace::new("shop").with_label("team", "web"));
        cluster.namespaces.push(Namespace::new("blog").with_label("team", "web"));
        cluster.namespaces.push(Namespace::new("wiki").with_label("team", "docs"));
        for ns in ["shop", "blog", "wiki"] {
            for (app, n) in [("web", 5), ("api", 3), ("batch", 2), ("cron", 2)] {
                for i in 0..n {
                    cluster.pods.push(
                        Pod::new(ns, format!("{app}-{i}"))
                            .with_label("app", app)
                            .with_label("pod-template-hash", format!("h{i}")),
                    );
                }
            }
        }
        let policies = [np(
            "metadata: {name: p, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: web}}, podSelector: {matchExpressions: [{key: app, operator: In, values: [api]}]}}]",
        )];
        let r = Reachability::compute(&policies, &cluster, &[]);
        // shop (hosts the policy) keeps its name; blog and wiki differ by
        // team. app=batch and app=cron are "other" values: one class. The
        // pod-template-hash is never mentioned.
        assert_eq!(r.pod_class_count(), 3 * 3);
        let web0 = r.class_of(&Endpoint::Pod(0)).expect("class");
        assert_eq!(r.class_pods(web0), &[0, 1, 2, 3, 4]);
        assert_eq!(r.class_namespace(web0), Some("shop"));
        let batch = r.class_of(&Endpoint::Pod(8)).expect("class");
        let cron = r.class_of(&Endpoint::Pod(10)).expect("class");
        assert_eq!(batch, cron);
        assert_eq!(r.class_pods(batch).len(), 4);
        assert_eq!(r.representative(batch), Some(Endpoint::Pod(8)));
        assert!(r.is_pod_class(batch));
        // No ipBlocks: one IP class for every address.
        let ip_class = r.class_of(&Endpoint::Ip(ip("8.8.8.8"))).expect("class");
        assert_eq!(r.class_of(&Endpoint::Ip(ip("::1"))), Some(ip_class));
        assert!(!r.is_pod_class(ip_class));
        assert_eq!(r.class_count(), r.pod_class_count() + 1);
        assert_eq!(r.class_of(&Endpoint::Pod(999)), None);
        assert!(!r.allowed(&Endpoint::Pod(999), &Endpoint::Pod(0), 80, Protocol::Tcp));
        let stats = r.stats();
        assert_eq!((stats.pods, stats.namespaces, stats.policies), (36, 3, 1));
        assert!(stats.memory_bytes > 0);
        assert!(stats.to_string().contains("36 pods in 3 namespaces"));
    }

    #[test]
    fn ip_regions_are_cut_by_blocks_and_excepts() {
        let mut cluster = Cluster::new();
        cluster.pods.push(Pod::new("a", "in").with_ip(ip("10.1.2.3")));
        cluster.pods.push(Pod::new("a", "out").with_ip(ip("8.8.8.8")));
        cluster.pods.push(Pod::new("a", "none"));
        let policies = [np("metadata: {name: p, namespace: a}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]")];
        let externals = [ip("1.1.1.1"), ip("10.9.9.9"), ip("2001:db8::1"), ip("11.0.0.0")];
        let r = Reachability::compute(&policies, &cluster, &externals);
        // Regions: {0/0 minus 10/8} and the rest (10/8 and all of IPv6).
        assert_eq!(r.class_count() - r.pod_class_count(), 2);
        let public = r.class_of(&Endpoint::Ip(ip("1.1.1.1"))).expect("class");
        let private = r.class_of(&Endpoint::Ip(ip("10.0.0.0"))).expect("class");
        assert_ne!(public, private);
        assert_eq!(r.class_of(&Endpoint::Ip(ip("9.255.255.255"))), Some(public));
        assert_eq!(r.class_of(&Endpoint::Ip(ip("11.0.0.0"))), Some(public));
        assert_eq!(r.class_of(&Endpoint::Ip(ip("10.255.255.255"))), Some(private));
        assert_eq!(r.class_of(&Endpoint::Ip(ip("::"))), Some(private));
        assert_eq!(r.class_ips(public), &[ip("1.1.1.1"), ip("11.0.0.0")]);
        assert_eq!(r.class_ips(private), &[ip("10.9.9.9"), ip("2001:db8::1")]);
        let members: Vec<Endpoint> = r.members(private).collect();
        assert_eq!(members, [Endpoint::Ip(ip("10.9.9.9")), Endpoint::Ip(ip("2001:db8::1"))]);
        // Pods: one in the public region, two (inside 10/8, no IP) alike.
        assert_eq!(r.pod_class_count(), 2);
        assert_eq!(r.class_of(&Endpoint::Pod(0)), r.class_of(&Endpoint::Pod(2)));
        let (p_in, p_out) = (Endpoint::Pod(0), Endpoint::Pod(1));
        assert!(r.allowed(&p_in, &p_out, 443, Protocol::Tcp));
        assert!(!r.allowed(&p_out, &p_in, 443, Protocol::Tcp));
        assert!(r.allowed(&p_in, &Endpoint::Ip(ip("1.1.1.1")), 1, Protocol::Udp));
        assert!(!r.allowed(&p_in, &Endpoint::Ip(ip("10.0.0.1")), 1, Protocol::Udp));
        // Without listed externals, the representative is a region address.
        let r = Reachability::compute(&policies, &cluster, &[]);
        let public = r.class_of(&Endpoint::Ip(ip("1.1.1.1"))).expect("class");
        assert_eq!(r.representative(public), Some(Endpoint::Ip(ip("0.0.0.0"))));
    }

    #[test]
    fn duplicate_and_undeclared_namespaces_read_like_cluster_namespace() {
        let mut cluster = Cluster::new();
        cluster.namespaces.push(Namespace::new("n0").with_label("team", "a"));
        cluster.namespaces.push(Namespace::new("n0").with_label("team", "dup"));
        cluster.namespaces.push(Namespace::new("n1").with_label("team", "a"));
        cluster.pods.push(Pod::new("n0", "x"));
        cluster.pods.push(Pod::new("n1", "y"));
        cluster.pods.push(Pod::new("ghost", "z"));
        let policies = [np("metadata: {name: p, namespace: n1}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}}]
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ghost}}}]
    ports: [{port: 22}]")];
        let r = Reachability::compute(&policies, &cluster, &[]);
        let (x, y, z) = (Endpoint::Pod(0), Endpoint::Pod(1), Endpoint::Pod(2));
        for (src, port, expected) in [(x, 80, true), (y, 80, true), (z, 80, false), (z, 22, true), (x, 22, true)] {
            let conn = Connection::tcp(src, y, port);
            assert_eq!(is_allowed(&policies, &cluster, &conn), expected);
            assert_eq!(r.allows(&conn), expected, "{}", cluster.describe_connection(&conn));
            assert_eq!(
                r.explain(&policies, &cluster, &conn),
                evaluate::evaluate(&policies, &cluster, &conn)
            );
        }
    }

    #[test]
    fn named_ports_resolve_per_destination_class() {
        let mut cluster = Cluster::new();
        cluster.pods.push(Pod::new("a", "client").with_label("app", "client"));
        cluster
            .pods
            .push(Pod::new("a", "web").with_label("app", "srv").with_port("http", 80, Protocol::Tcp));
        cluster
            .pods
            .push(Pod::new("a", "api").with_label("app", "srv").with_port("http", 8080, Protocol::Tcp));
        let policies = [np("metadata: {name: p, namespace: a}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress: [{ports: [{port: http}]}]")];
        let r = Reachability::compute(&policies, &cluster, &[]);
        let (client, web, api) = (Endpoint::Pod(0), Endpoint::Pod(1), Endpoint::Pod(2));
        assert_ne!(r.class_of(&web), r.class_of(&api));
        assert!(r.allowed(&client, &web, 80, Protocol::Tcp));
        assert!(!r.allowed(&client, &web, 8080, Protocol::Tcp));
        assert!(r.allowed(&client, &api, 8080, Protocol::Tcp));
        assert!(!r.allowed(&client, &api, 80, Protocol::Tcp));
        assert!(!r.allowed(&client, &Endpoint::Ip(ip("1.2.3.4")), 80, Protocol::Tcp));
        let s = r.class_of(&client).expect("class");
        let d = r.class_of(&api).expect("class");
        let row = r.rows().row(s);
        assert_eq!(row.src(), s);
        assert_eq!(
            row.ports_to(d, &r),
            [PortRange {
                protocol: Protocol::Tcp,
                start: 8080,
                end: 8080
            }]
        );
        assert_eq!(row.count(), 2);
        assert_eq!(row.destinations().len(), 2);
        assert_eq!(row.atom_bits(r.atom_of(8080, Protocol::Tcp)).len(), 1);
    }

    #[test]
    fn diff_needs_a_shared_universe() {
        let cluster = Cluster::new();
        let a = Reachability::compute(&[], &cluster, &[]);
        let b = Reachability::compute(&[], &cluster, &[]);
        assert_eq!(a.diff(&b), Err(DiffError));
        assert!(DiffError.to_string().contains("compute_versions"));
        let v = Reachability::compute_versions(&[&[], &[]], &cluster, &[]);
        assert_eq!(v[0].diff(&v[1]), Ok(Vec::new()));
        assert!(format!("{:?}", v[0]).contains("Reachability"));
    }

    #[test]
    fn class_sets_and_ranges() {
        let dense = ClassSet::from_sorted(&[1, 2, 3], 10);
        assert!(matches!(dense, ClassSet::Dense(_)));
        let sparse = ClassSet::from_sorted(&[5, 700], 1000);
        assert!(matches!(sparse, ClassSet::Sparse(_)));
        assert!(matches!(ClassSet::from_sorted(&[0, 1], 2), ClassSet::All));
        for (set, n) in [(&dense, 10), (&sparse, 1000)] {
            let mut members = Vec::new();
            set.for_each(n, |c| members.push(c));
            for c in 0..n as u32 {
                assert_eq!(set.contains(c), members.contains(&c));
            }
            let mut all = vec![0u64; n.div_ceil(64)];
            fill_ones(&mut all, n);
            let mut out = vec![0u64; all.len()];
            set.or_into(&mut out, &all);
            for c in 0..n {
                assert_eq!(bit(&out, c), set.contains(c as u32));
            }
        }
        let mut words = vec![0u64; 3];
        fill_ones(&mut words, 130);
        assert_eq!(words, [u64::MAX, u64::MAX, 3]);
        let r = |start, end| PortRange {
            protocol: Protocol::Tcp,
            start,
            end,
        };
        let u = |start, end| PortRange {
            protocol: Protocol::Udp,
            start,
            end,
        };
        assert_eq!(
            merge_ranges(vec![r(0, 9), r(10, 20), r(22, 30), u(31, 40)]),
            [r(0, 20), r(22, 30), u(31, 40)]
        );
        assert_eq!(r(80, 80).to_string(), "TCP 80");
        assert_eq!(u(1, 2).to_string(), "UDP 1-2");
        let csr = Csr::from_pairs(3, &[(2, 'a'), (0, 'b'), (2, 'c')]);
        assert_eq!(
            (csr.row(0), csr.row(1), csr.row(2), csr.row(3)),
            (&['b'][..], &[][..], &['a', 'c'][..], &[][..])
        );
    }

    #[test]
    fn normalised_selectors_match_like_the_reference() {
        let mut rng = Rng::new(99);
        for _ in 0..2000 {
            let selector = random_selector(&mut rng, POD_KEYS);
            let labels = random_labels(&mut rng, POD_KEYS);
            let mut keys = HashMap::new();
            let mut flags = Vec::new();
            let mut values = HashMap::new();
            scan_selector(&selector, &mut keys, &mut flags, &mut values);
            let sel = normalize_selector(&selector, &keys, &values);
            let restricted = restrict(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())), &keys, &flags, &values);
            assert_eq!(
                sel_matches(&sel, &restricted),
                evaluate::selector_matches(&selector, &labels),
                "{selector:?} on {labels:?}"
            );
        }
    }
}
