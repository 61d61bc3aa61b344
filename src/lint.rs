//! Lints: warnings about intents that compile but are probably not what was
//! meant (W0101-W0108). They read the checked program and, for what the
//! program no longer shows (declarations, selectors as written), the syntax
//! trees. Every lint is a warning; `silence` drops the ones a project or a
//! line allows.

use crate::ast::{self, Endpoint, Pods, Span, Statement, Term};
use crate::cidr::Cidr;
use crate::diagnostics::{Code, Diagnostic, Severity};
use crate::ir::{
    Expression, Flow, IpBlock, LabelSelector, Namespaces, Operator, Peer, PeerName, PortNumber, PortSet, PortSpec, Program, Protocol,
};
use crate::{grouping, parallel};
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

/// Where clouds serve instance metadata, credentials included: the link-local
/// address of AWS, GCP, Azure and most others, and AWS's IPv6 one.
const METADATA_ADDRESSES: [&str; 2] = ["169.254.169.254", "fd00:ec2::254"];
/// The port the metadata services listen on.
const METADATA_PORT: u16 = 80;

/// Every lint of a program and of the trees it was checked from, before
/// [`settle`] drops those that other diagnostics make moot.
pub fn lint(files: &[ast::File], program: &Program) -> Vec<Diagnostic> {
    // The lints of the trees and those of single flows are light: they run
    // on a second thread, and come first, while this one numbers the peers
    // and pairs of W0104, which must be serial; its costly part then spreads
    // over every core on its own.
    let mut out = Vec::new();
    let light = || {
        out = written_lints(files);
        for flow in &program.flows {
            flow_lints(flow, program, &mut out);
        }
    };
    let mut covered = parallel::beside(light, || covered_intents(program));
    out.append(&mut covered);
    out
}

/// `lints` without those reported where an error of `found` points, or at
/// an intent that generates no policy (W0007): what is wrong or useless
/// needs fixing first, not more advice.
pub fn settle(mut lints: Vec<Diagnostic>, found: &[Diagnostic]) -> Vec<Diagnostic> {
    let mut settled: Vec<(usize, usize, usize)> = found
        .iter()
        .filter(|d| d.severity() == Severity::Error || d.code == Code::NoEffect)
        .flat_map(|d| d.labels.iter().map(|l| (l.span.file, l.span.start, l.span.end)))
        .collect();
    if !settled.is_empty() {
        settled.sort_unstable();
        // The furthest end among the spans of a file up to each one: a span
        // overlaps one of those that start before it ends when that reaches it.
        let mut reach = Vec::with_capacity(settled.len());
        for (i, &(file, _, end)) in settled.iter().enumerate() {
            let before = if i > 0 && settled[i - 1].0 == file { reach[i - 1] } else { 0 };
            reach.push(end.max(before));
        }
        lints.retain(|lint| {
            let span = lint.span();
            let i = settled.partition_point(|&(file, start, _)| (file, start) <= (span.file, span.end));
            !(i > 0 && settled[i - 1].0 == span.file && reach[i - 1] >= span.start)
        });
    }
    lints
}

/// The lints that look at one flow alone: W0101, W0102, W0103, W0108.
fn flow_lints(flow: &Flow, program: &Program, out: &mut Vec<Diagnostic>) {
    let origin = &program.origins[flow.origin];
    let text = &origin.text;
    let to_dns = matches!(flow.target.name(), PeerName::Dns);
    let egress = matches!(*flow.source, Peer::Pods { .. }) && !to_dns;
    let wide_open = egress && flow.ports.is_all() && is_world(&flow.target);
    if wide_open {
        out.push(
            Diagnostic::new(
                Code::EgressToWorld,
                origin.span,
                format!("`{text}` lets pods send to every address on every port"),
            )
            .with_label("every address, every port and protocol")
            .with_note("this covers the cluster's own networks, the nodes and the cloud metadata service as well as the internet")
            .with_help("list the ports, and name the servers called (an `external`), or write `internet` for public addresses only"),
        );
    } else if flow.ports.is_all() && !to_dns {
        out.push(
            Diagnostic::new(Code::NoPorts, origin.span, format!("`{text}` allows every port"))
                .with_label("no ports: every port of every protocol")
                .with_help("list the ports the connection uses, such as `:8080` or `:(80, 443)`; if every port is meant, say so on the line with `# netpolc: allow W0101`"),
        );
    }
    if is_world(&flow.source) {
        out.push(
            Diagnostic::new(Code::IngressFromWorld, origin.span, format!("`{text}` lets every address in"))
                .with_label("accepts connections from every IPv4 and IPv6 address")
                .with_secondary(origin.source_span, "every address")
                .with_note("this includes the cluster's private networks, the nodes and, with some network plugins, every pod")
                .with_help("write `internet` if only public clients connect directly; if every address is meant, say so on the line with `# netpolc: allow W0103`"),
        );
    }
    if egress && let Some(address) = metadata_reached(&flow.target, &flow.ports) {
        out.push(
            Diagnostic::new(Code::MetadataReachable, origin.span, format!("`{text}` lets pods reach the cloud metadata service"))
                .with_label(format!("includes `{address}` on port {METADATA_PORT}"))
                .with_note("the metadata service gives the node's cloud credentials to whoever asks: a pod that reaches it can act as the node")
                .with_help("write `internet`, which leaves out link-local addresses, or cut the address out: `external NAME = 0.0.0.0/0 except 169.254.169.254/32`"),
        );
    }
}

/// Whether a peer is every address of a family: `world`, `0.0.0.0/0`, or an
/// external of `::/0`, without holes.
fn is_world(peer: &Peer) -> bool {
    matches!(peer, Peer::Ips { blocks, .. } if blocks.iter().any(|b| b.except.is_empty() && (b.cidr == "0.0.0.0/0" || b.cidr == "::/0")))
}

/// The metadata address a flow towards `target` reaches through a block wider
/// than the address itself (a `/32` naming it is deliberate), if its ports
/// include the metadata port.
fn metadata_reached(target: &Peer, ports: &PortSet) -> Option<&'static str> {
    let Peer::Ips { blocks, .. } = target else { return None };
    let port_open = ports.is_all()
        || ports.0.iter().any(|p| {
            p.protocol == Protocol::Tcp
                && match p.port {
                    PortNumber::Single(n) => n == METADATA_PORT,
                    PortNumber::Range(a, b) => (a..=b).contains(&METADATA_PORT),
                    PortNumber::Named(_) => false,
                }
        });
    if !port_open {
        return None;
    }
    METADATA_ADDRESSES.into_iter().find(|text| {
        let Ok(address) = text.parse::<IpAddr>() else { return false };
        blocks.iter().any(|block| {
            let inside = |cidr: &str| Cidr::parse(cidr).is_ok_and(|c| c.contains_addr(address));
            let exact = Cidr::parse(&block.cidr).is_ok_and(|c| c.prefix == if address.is_ipv4() { 32 } else { 128 });
            inside(&block.cidr) && !exact && !block.except.iter().any(|hole| inside(hole))
        })
    })
}

/// W0104: flows that another flow already allows, with wider (or equal)
/// peers on both sides and a superset of its ports. Peers are compared by
/// meaning and only where that is certain (same namespace and a selector
/// that implies the other, every namespace, an IP block inside another), so
/// a warning is always right, though some coverings go unnoticed.
///
/// Each distinct peer is compared with the peers of its own namespace (and
/// the few that pick namespaces by label, or IP blocks with IP blocks), then
/// flows are looked up by (source, target) pair: no scan over all pairs of
/// flows.
fn covered_intents(program: &Program) -> Vec<Diagnostic> {
    let (peers, ends) = PeerTable::number(&program.flows);
    let wider = peers.wider();
    let by_pair = ByPair::new(&ends, peers.meanings.len());
    // Each flow on its own: on every core.
    parallel::map_chunks(&program.flows, |start, chunk| {
        let mut out = Vec::new();
        for (i, flow) in chunk.iter().enumerate().map(|(i, flow)| (start + i, flow)) {
            let (source, target) = ends[i];
            let cover = wider[source]
                .iter()
                .flat_map(|s| wider[target].iter().map(move |t| (*s, *t)))
                .filter_map(|pair| by_pair.run(pair))
                .flatten()
                .copied()
                .find(|&j| {
                    let other = &program.flows[j];
                    // Two intents that mean the same thing cover each other: only the later one is reported.
                    j != i && ports_cover(&other.ports, &flow.ports) && !(j > i && same_meaning(&peers, ends[i], ends[j], flow, other))
                });
            if let Some(j) = cover {
                let (mine, theirs) = (&program.origins[flow.origin], &program.origins[program.flows[j].origin]);
                out.push(
                    Diagnostic::new(
                        Code::CoveredIntent,
                        mine.span,
                        format!("`{}` is already allowed by `{}`", mine.text, theirs.text),
                    )
                    .with_label("adds nothing")
                    .with_secondary(theirs.span, "allows all of it")
                    .with_help("remove it; if the wider intent allows more than meant, narrow that one instead"),
                );
            }
        }
        out
    })
}

/// The flows of each (source, target) pair of peer ids, in flow order,
/// found without hashing: the flows sorted by source, then target (two
/// counting sorts, which keep flow order), and for each source its runs of
/// one target, in target order.
struct ByPair {
    flows: Vec<usize>,
    /// Each run: its target and where its flows are in `flows`.
    runs: Vec<(usize, Range<usize>)>,
    /// Where each source's runs are in `runs`, by source id.
    sources: Vec<usize>,
}

impl ByPair {
    fn new(ends: &[(usize, usize)], peers: usize) -> Self {
        let (by_target, _) = grouping::by_key(0..ends.len(), |i| ends[i].1, peers);
        let (flows, _) = grouping::by_key(by_target.iter().copied(), |i| ends[i].0, peers);
        let mut runs = Vec::with_capacity(flows.len());
        let mut sources = vec![0; peers + 1];
        let mut start = 0;
        for group in flows.chunk_by(|&a, &b| ends[a] == ends[b]) {
            let (source, target) = ends[group[0]];
            runs.push((target, start..start + group.len()));
            sources[source + 1] += 1;
            start += group.len();
        }
        for source in 0..peers {
            sources[source + 1] += sources[source];
        }
        ByPair { flows, runs, sources }
    }

    /// The flows from peer `source` to peer `target`, if any.
    fn run(&self, (source, target): (usize, usize)) -> Option<&[usize]> {
        let runs = &self.runs[self.sources[source]..self.sources[source + 1]];
        let found = runs.binary_search_by_key(&target, |(t, _)| *t).ok()?;
        Some(&self.flows[runs[found].1.clone()])
    }
}

fn same_meaning(peers: &PeerTable, a: (usize, usize), b: (usize, usize), fa: &Flow, fb: &Flow) -> bool {
    peers.covers(a.0, b.0) && peers.covers(a.1, b.1) && ports_cover(&fa.ports, &fb.ports)
}

/// A peer as far as meaning goes: names do not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Meaning<'p> {
    Pods(&'p Namespaces, &'p LabelSelector),
    Ips(&'p [IpBlock]),
}

impl<'p> Meaning<'p> {
    fn of(peer: &'p Peer) -> Self {
        match peer {
            Peer::Pods { namespaces, pods, .. } => Meaning::Pods(namespaces, pods),
            Peer::Ips { blocks, .. } => Meaning::Ips(blocks),
        }
    }
}

/// The distinct peers of a program, numbered in order of appearance.
struct PeerTable<'p> {
    /// Ids by the hash of their meaning; the rare meanings whose hash an
    /// earlier one has are found by value in `colliding`.
    by_hash: FxHashMap<u64, usize>,
    colliding: FxHashMap<Meaning<'p>, usize>,
    /// Ids by address: flows share their peers, so most are found without comparing a selector.
    shared: FxHashMap<usize, usize>,
    meanings: Vec<Meaning<'p>>,
    /// The blocks of each peer of addresses, parsed (`None` for pods).
    blocks: Vec<Option<Vec<Block>>>,
}

/// The distinct peers (by address) of a run of flows, in order of
/// appearance, each with the hash of its meaning, and the flows' (source,
/// target) as numbers in that list.
struct Seen<'p> {
    peers: Vec<(&'p Arc<Peer>, u64)>,
    ends: Vec<(usize, usize)>,
}

impl<'p> PeerTable<'p> {
    /// The peers of `flows`, numbered, and the (source, target) ids of each
    /// flow. Finding each run's distinct peers and hashing their meaning is
    /// most of the work, and each run's is its own: on every core. Numbering
    /// them in order of appearance then looks up each run's distinct peers,
    /// not every flow's two.
    fn number(flows: &'p [Flow]) -> (Self, Vec<(usize, usize)>) {
        let runs = parallel::map_chunks(flows, |start, chunk| {
            let mut local: FxHashMap<usize, usize> = FxHashMap::default();
            let mut peers = Vec::new();
            let mut id = |peer: &'p Arc<Peer>| {
                *local.entry(Arc::as_ptr(peer).addr()).or_insert_with(|| {
                    let meaning = Meaning::of(peer);
                    peers.push((peer, std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, meaning)));
                    peers.len() - 1
                })
            };
            // Borrowed from the flows, not from the chunk, to outlive the call.
            let ends = flows[start..start + chunk.len()]
                .iter()
                .map(|flow| (id(&flow.source), id(&flow.target)))
                .collect();
            vec![Seen { peers, ends }]
        });
        let mut table = PeerTable {
            by_hash: FxHashMap::with_capacity_and_hasher(flows.len() / 2, Default::default()),
            colliding: FxHashMap::default(),
            shared: FxHashMap::with_capacity_and_hasher(flows.len(), Default::default()),
            meanings: Vec::with_capacity(flows.len() / 2),
            blocks: Vec::with_capacity(flows.len() / 2),
        };
        let mut ends = Vec::with_capacity(flows.len());
        let mut ids = Vec::new();
        for run in runs {
            ids.clear();
            ids.extend(run.peers.iter().map(|&(peer, hash)| table.id(peer, hash)));
            ends.extend(run.ends.iter().map(|&(source, target)| (ids[source], ids[target])));
        }
        (table, ends)
    }

    /// The id of `peer`, whose meaning hashes to `hash`.
    fn id(&mut self, peer: &'p Arc<Peer>, hash: u64) -> usize {
        let address = Arc::as_ptr(peer).addr();
        if let Some(&id) = self.shared.get(&address) {
            return id;
        }
        let id = self.meaning_id(Meaning::of(peer), hash);
        self.shared.insert(address, id);
        id
    }

    fn meaning_id(&mut self, meaning: Meaning<'p>, hash: u64) -> usize {
        let next = self.meanings.len();
        match self.by_hash.entry(hash) {
            Entry::Vacant(first) => {
                first.insert(next);
            }
            Entry::Occupied(first) if self.meanings[*first.get()] == meaning => return *first.get(),
            Entry::Occupied(_) => {
                if let Some(&id) = self.colliding.get(&meaning) {
                    return id;
                }
                self.colliding.insert(meaning, next);
            }
        }
        self.meanings.push(meaning);
        self.blocks.push(match meaning {
            Meaning::Ips(blocks) => blocks.iter().map(parse_block).collect(),
            Meaning::Pods(..) => None,
        });
        next
    }

    /// For each peer, the peers that cover it (itself included), in id order.
    fn wider(&self) -> Vec<Vec<usize>> {
        // A covering peer lives in the same namespace, picks namespaces by
        // label, or is an IP block for an IP block; within those, the index
        // finds the few that share what covering requires.
        let mut by_namespace: FxHashMap<&str, Candidates> = FxHashMap::default();
        let (mut selected, mut addresses) = (Candidates::default(), Candidates::default());
        for (id, meaning) in self.meanings.iter().enumerate() {
            match meaning {
                Meaning::Pods(Namespaces::Named(ns), pods) => by_namespace.entry(ns.as_str()).or_default().add_pods(id, pods),
                Meaning::Pods(Namespaces::Selected(_), pods) => selected.add_pods(id, pods),
                Meaning::Ips(_) => addresses.add_blocks(id, self.blocks[id].as_deref().unwrap_or_default()),
            }
        }
        // Each peer on its own: on every core.
        parallel::map(&self.meanings, |id, meaning| {
            let mut wide = Vec::new();
            match *meaning {
                Meaning::Pods(namespaces, pods) => {
                    if let Namespaces::Named(ns) = namespaces
                        && let Some(index) = by_namespace.get(ns.as_str())
                    {
                        index.for_pods(pods, &mut wide);
                    }
                    selected.for_pods(pods, &mut wide);
                }
                Meaning::Ips(_) => addresses.for_blocks(self.blocks[id].as_deref().unwrap_or_default(), &mut wide),
            }
            wide.sort_unstable();
            wide.dedup();
            wide.retain(|&w| self.covers(w, id));
            wide
        })
    }

    /// Whether every endpoint of peer `narrow` is an endpoint of peer `wide`.
    fn covers(&self, wide: usize, narrow: usize) -> bool {
        if wide == narrow {
            return true;
        }
        match (self.meanings[wide], self.meanings[narrow]) {
            (Meaning::Pods(wide_ns, wide_pods), Meaning::Pods(narrow_ns, narrow_pods)) => {
                let namespaces = match (wide_ns, narrow_ns) {
                    (Namespaces::Named(a), Namespaces::Named(b)) => a == b,
                    (Namespaces::Selected(a), Namespaces::Named(_)) => a.is_empty(),
                    (Namespaces::Selected(a), Namespaces::Selected(b)) => implies(b, a),
                    (Namespaces::Named(_), Namespaces::Selected(_)) => false,
                };
                namespaces && implies(narrow_pods, wide_pods)
            }
            (Meaning::Ips(_), Meaning::Ips(_)) => match (&self.blocks[wide], &self.blocks[narrow]) {
                (Some(wide), Some(narrow)) => narrow.iter().all(|n| wide.iter().any(|w| block_covers(w, n))),
                _ => false,
            },
            _ => false,
        }
    }
}

/// The peers of one group (a namespace, the label-selected ones, the IP
/// blocks), indexed by what a peer they cover must share with them: the
/// value of their first label (or any value of their first `in` term), else
/// the key of their first term, else nothing (an empty selector covers every
/// pod); for IP blocks, each block.
#[derive(Default)]
struct Candidates<'p> {
    by_value: FxHashMap<(&'p str, &'p str), Vec<usize>>,
    by_key: FxHashMap<&'p str, Vec<usize>>,
    any: Vec<usize>,
    by_block: FxHashMap<Cidr, Vec<usize>>,
}

impl<'p> Candidates<'p> {
    fn add_pods(&mut self, id: usize, selector: &'p LabelSelector) {
        let first_in = selector.expressions.iter().find(|e| e.operator == Operator::In);
        if let Some((key, value)) = selector.labels.iter().next() {
            self.by_value.entry((key, value)).or_default().push(id);
        } else if let Some(e) = first_in {
            for value in &e.values {
                self.by_value.entry((&e.key, value)).or_default().push(id);
            }
        } else if let Some(e) = selector.expressions.first() {
            self.by_key.entry(&e.key).or_default().push(id);
        } else {
            self.any.push(id);
        }
    }

    /// Those that may cover pods chosen by `selector`.
    fn for_pods(&self, selector: &LabelSelector, out: &mut Vec<usize>) {
        out.extend(&self.any);
        let keys = selector.labels.keys().chain(selector.expressions.iter().map(|e| &e.key));
        for key in keys {
            out.extend(self.by_key.get(key.as_str()).into_iter().flatten());
            let fixed = selector.labels.get(key).or_else(|| {
                let e = selector.expressions.iter().find(|e| e.key == *key && e.operator == Operator::In);
                e.and_then(|e| e.values.first())
            });
            if let Some(value) = fixed {
                out.extend(self.by_value.get(&(key.as_str(), value.as_str())).into_iter().flatten());
            }
        }
    }

    fn add_blocks(&mut self, id: usize, blocks: &[Block]) {
        for (cidr, _) in blocks {
            self.by_block.entry(*cidr).or_default().push(id);
        }
    }

    /// Those with a block around the first of `blocks`.
    fn for_blocks(&self, blocks: &[Block], out: &mut Vec<usize>) {
        if let Some((cidr, _)) = blocks.first() {
            for prefix in 0..=cidr.prefix {
                let around = Cidr { prefix, ..*cidr }.canonical();
                out.extend(self.by_block.get(&around).into_iter().flatten());
            }
        }
    }
}

/// A block and its holes.
type Block = (Cidr, Vec<Cidr>);

fn parse_block(block: &IpBlock) -> Option<Block> {
    let holes: Result<Vec<Cidr>, String> = block.except.iter().map(|e| Cidr::parse(e)).collect();
    Some((Cidr::parse(&block.cidr).ok()?.canonical(), holes.ok()?))
}

/// Whether every address of `narrow` (a block minus its holes) is in `wide`.
/// Two CIDRs are either nested or apart, so each hole of `wide` that touches
/// `narrow` must lie inside one of `narrow`'s own holes.
fn block_covers(wide: &Block, narrow: &Block) -> bool {
    wide.0.contains(narrow.0)
        && wide.1.iter().all(|hole| {
            if hole.contains(narrow.0) {
                false
            } else if narrow.0.contains(*hole) {
                narrow.1.iter().any(|own| own.contains(*hole))
            } else {
                true
            }
        })
}

/// Whether every set of labels that `narrow` matches is matched by `wide`:
/// each requirement of `wide` must follow from one of `narrow`.
fn implies(narrow: &LabelSelector, wide: &LabelSelector) -> bool {
    fn on<'s>(selector: &'s LabelSelector, key: &'s str) -> impl Iterator<Item = &'s Expression> {
        selector.expressions.iter().filter(move |e| e.key == key)
    }
    // Whether `narrow` requires the key to hold a value that `allowed` accepts.
    let value_in = |key: &str, allowed: &dyn Fn(&str) -> bool| {
        narrow.labels.get(key).is_some_and(|v| allowed(v))
            || on(narrow, key).any(|e| e.operator == Operator::In && e.values.iter().all(|v| allowed(v)))
    };
    wide.labels.iter().all(|(key, value)| value_in(key, &|v| v == value))
        && wide.expressions.iter().all(|e| match e.operator {
            Operator::In => value_in(&e.key, &|v| e.values.iter().any(|w| w == v)),
            Operator::Exists => value_in(&e.key, &|_| true) || on(narrow, &e.key).any(|n| n.operator == Operator::Exists),
            Operator::DoesNotExist => on(narrow, &e.key).any(|n| n.operator == Operator::DoesNotExist),
            Operator::NotIn => {
                value_in(&e.key, &|v| !e.values.iter().any(|w| w == v))
                    || on(narrow, &e.key).any(|n| match n.operator {
                        Operator::DoesNotExist => true,
                        Operator::NotIn => e.values.iter().all(|v| n.values.contains(v)),
                        _ => false,
                    })
            }
        })
}

/// Whether `wide` allows every port that `narrow` allows. A named port is
/// only covered by the same name: which number it stands for depends on the pod.
fn ports_cover(wide: &PortSet, narrow: &PortSet) -> bool {
    if wide.is_all() {
        return true;
    }
    if narrow.is_all() {
        return false;
    }
    // Most often one port or range of `wide` holds each of `narrow`'s.
    if narrow.0.iter().all(|n| wide.0.iter().any(|w| port_contains(w, n))) {
        return true;
    }
    let range = |p: &PortNumber| match *p {
        PortNumber::Single(n) => Some((n, n)),
        PortNumber::Range(a, b) => Some((a, b)),
        PortNumber::Named(_) => None,
    };
    // Numbers and ranges of `wide`, merged per protocol, so that `80-89, 90` covers `85-90`.
    let mut merged: BTreeMap<Protocol, Vec<(u16, u16)>> = BTreeMap::new();
    let mut numeric: Vec<(Protocol, (u16, u16))> = wide.0.iter().filter_map(|p| Some((p.protocol, range(&p.port)?))).collect();
    numeric.sort_unstable();
    for (protocol, (a, b)) in numeric {
        let runs = merged.entry(protocol).or_default();
        match runs.last_mut() {
            Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => runs.push((a, b)),
        }
    }
    narrow.0.iter().all(|p| match range(&p.port) {
        Some((a, b)) => merged
            .get(&p.protocol)
            .is_some_and(|runs| runs.iter().any(|&(lo, hi)| lo <= a && b <= hi)),
        None => wide.0.contains(p),
    })
}

fn port_contains(wide: &PortSpec, narrow: &PortSpec) -> bool {
    wide.protocol == narrow.protocol
        && match (&wide.port, &narrow.port) {
            (PortNumber::Named(a), PortNumber::Named(b)) => a == b,
            (PortNumber::Single(a), PortNumber::Single(b)) => a == b,
            (PortNumber::Range(lo, hi), PortNumber::Single(n)) => lo <= n && n <= hi,
            (PortNumber::Range(lo, hi), PortNumber::Range(a, b)) => lo <= a && b <= hi,
            _ => false,
        }
}

/// The lints that read the files as written: W0105 (declarations nobody
/// uses), W0106 (`[]`) and W0107 (selectors that match nothing).
fn written_lints(files: &[ast::File]) -> Vec<Diagnostic> {
    let mut usage = Usage::default();
    // Declarations first, so that a name is only looked up when it is used.
    for (namespace, statement) in with_namespaces(files) {
        match &statement.node {
            Statement::Workload { name, selector } => {
                if let Some(ns) = namespace {
                    usage.workloads.push((ns, &name.node.text, name.span.to(selector.span)));
                    usage.used.insert((ns, &name.node.text), false);
                }
            }
            Statement::External { name, cidr, except } => {
                let end = except.last().map_or(cidr.span, |e| e.span);
                usage.externals.push((&name.node.text, name.span.to(end)));
                usage.bare.insert(&name.node.text, false);
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (namespace, statement) in with_namespaces(files) {
        match &statement.node {
            Statement::Namespace(_) => {}
            Statement::Workload { selector, .. } => out.extend(never_matches(&selector.node)),
            Statement::External { .. } => {}
            Statement::Intent(intent) => {
                let targets = intent.targets.iter().map(|t| &t.node.endpoint);
                for endpoint in std::iter::once(&intent.source).chain(targets) {
                    usage.endpoint(namespace, endpoint, &mut out);
                }
            }
            Statement::Expect(e) => {
                usage.endpoint(namespace, &e.source, &mut out);
                usage.endpoint(namespace, &e.target.node.endpoint, &mut out);
            }
            // Exposing a workload names it: it counts as used.
            Statement::Expose(e) => {
                usage.endpoint(namespace, &e.target.node.endpoint, &mut out);
                for caller in &e.callers {
                    usage.endpoint(namespace, caller, &mut out);
                }
            }
            Statement::Isolate(_) | Statement::AllowDns(_) | Statement::Annotation(_) | Statement::Meta(_) => {}
        }
    }
    out.extend(usage.unused());
    out
}

/// Every statement of `files`, in order, with the namespace it is written in.
fn with_namespaces(files: &[ast::File]) -> impl Iterator<Item = (Option<&str>, &ast::Spanned<Statement>)> {
    files.iter().flat_map(|file| {
        let mut namespace: Option<&str> = None;
        file.statements.iter().map(move |statement| {
            if let Statement::Namespace(name) = &statement.node {
                namespace = Some(&name.node.text);
            }
            (namespace, statement)
        })
    })
}

/// Declarations and the names that refer to them.
#[derive(Default)]
struct Usage<'a> {
    workloads: Vec<(&'a str, &'a str, Span)>,
    externals: Vec<(&'a str, Span)>,
    /// Whether each declared workload, by (namespace, name), is named in an intent or `expect`.
    used: FxHashMap<(&'a str, &'a str), bool>,
    /// Whether each external is named (by a bare name).
    bare: FxHashMap<&'a str, bool>,
}

impl<'a> Usage<'a> {
    fn endpoint(&mut self, namespace: Option<&'a str>, endpoint: &'a ast::Spanned<Endpoint>, out: &mut Vec<Diagnostic>) {
        let empty = |pods: &Pods| matches!(pods, Pods::Selector(s) if s.terms.is_empty());
        match &endpoint.node {
            Endpoint::Name(name) => {
                if let Some(used) = self.bare.get_mut(name.text.as_str()) {
                    *used = true;
                }
                if let Some(used) = namespace.and_then(|ns| self.used.get_mut(&(ns, name.text.as_str()))) {
                    *used = true;
                }
            }
            Endpoint::Qualified { namespace, pods } => {
                if let Pods::Name(name) = pods
                    && let Some(used) = self.used.get_mut(&(namespace.node.text.as_str(), name.node.text.as_str()))
                {
                    *used = true;
                }
                if let Pods::Selector(s) = pods {
                    out.extend(never_matches(s));
                }
                if empty(pods) {
                    out.push(every_pod(endpoint.span, &format!("{}/*", namespace.node.text)));
                }
            }
            Endpoint::PodSelector(s) if s.terms.is_empty() => out.push(every_pod(endpoint.span, "*")),
            Endpoint::PodSelector(s) => out.extend(never_matches(s)),
            Endpoint::Namespaces { namespaces, pods } => {
                out.extend(never_matches(namespaces));
                if let Pods::Selector(s) = pods {
                    out.extend(never_matches(s));
                }
                if empty(pods) {
                    let every = if namespaces.terms.is_empty() { "cluster" } else { "{...}/*" };
                    out.push(every_pod(endpoint.span, every));
                }
            }
            _ => {}
        }
    }

    fn unused(&self) -> Vec<Diagnostic> {
        let workloads = self.workloads.iter().filter(|(ns, name, _)| !self.used[&(*ns, *name)]).map(|(ns, name, span)| {
            Diagnostic::new(
                Code::UnusedDeclaration,
                *span,
                format!("workload `{name}` in namespace `{ns}` is declared but never used"),
            )
            .with_label("no intent or `expect` names it")
            .with_help("remove the declaration, or use it in an intent; one declared for other teams counts as used when their files are compiled with this one")
        });
        let externals = self.externals.iter().filter(|(name, _)| !self.bare[name]).map(|(name, span)| {
            Diagnostic::new(
                Code::UnusedDeclaration,
                *span,
                format!("external `{name}` is declared but never used"),
            )
            .with_label("no intent or `expect` names it")
            .with_help("remove the declaration, or use it in an intent")
        });
        workloads.chain(externals).collect()
    }
}

/// W0106 at an endpoint written with `[]`; `instead` is how to say it plainly.
fn every_pod(span: Span, instead: &str) -> Diagnostic {
    Diagnostic::new(Code::EmptyPodSelector, span, "`[]` selects every pod")
        .with_label("an empty selector matches every pod, whatever its labels")
        .with_help(format!(
            "write `{instead}` if every pod is meant; otherwise put the labels between the brackets, such as `[app=web]`"
        ))
}

/// W0107 when the terms of a selector contradict each other on some key.
fn never_matches(selector: &ast::Selector) -> Option<Diagnostic> {
    /// What the terms seen so far require of one key.
    #[derive(Default)]
    struct Key<'s> {
        first: Option<Span>,
        /// The values still possible (`None`: any value).
        allowed: Option<BTreeSet<&'s str>>,
        excluded: BTreeSet<&'s str>,
        present: bool,
        absent: bool,
    }
    impl<'s> Key<'s> {
        fn restrict(&mut self, values: BTreeSet<&'s str>) {
            self.allowed = Some(match self.allowed.take() {
                Some(before) => before.intersection(&values).copied().collect(),
                None => values,
            });
        }
    }
    let mut keys: FxHashMap<&str, Key> = FxHashMap::default();
    for term in &selector.terms {
        let key = keys.entry(term.node.key().node.as_str()).or_default();
        let first = *key.first.get_or_insert(term.span);
        match &term.node {
            Term::Equal(_, v) => key.restrict(BTreeSet::from([v.node.as_str()])),
            // An empty list is already an error (E0114).
            Term::In(_, vs) if vs.is_empty() => continue,
            Term::In(_, vs) => key.restrict(vs.iter().map(|v| v.node.as_str()).collect()),
            Term::NotEqual(_, v) => {
                key.excluded.insert(&v.node);
            }
            Term::NotIn(_, vs) => key.excluded.extend(vs.iter().map(|v| v.node.as_str())),
            Term::Exists(_) => key.present = true,
            Term::NotExists(_) => key.absent = true,
        }
        let needs_value = key.present || key.allowed.is_some();
        let no_value_left = key.allowed.as_ref().is_some_and(|a| a.iter().all(|v| key.excluded.contains(v)));
        if (key.absent && needs_value) || no_value_left {
            let name = term.node.key().node.as_str();
            let help = if key.absent && needs_value {
                format!("a label cannot be both absent and set: keep `!{name}` or the terms that need a value")
            } else {
                format!("to accept several values of `{name}`, write one term: `{name} in (a, b)`")
            };
            return Some(
                Diagnostic::new(Code::SelectorNeverMatches, term.span, "this selector can never match")
                    .with_label(format!("contradicts an earlier term on `{name}`"))
                    .with_secondary(first, format!("first term on `{name}`"))
                    .with_note("every term of a selector must hold, so no pod (or namespace) is selected")
                    .with_help(help),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::diagnostics::Code;

    /// The codes of the lints a source draws, in order.
    fn lints(text: &str) -> Vec<Code> {
        let out = crate::compile_str("t.np", text);
        assert!(!out.has_errors(), "{}", out.render_diagnostics());
        out.diagnostics
            .iter()
            .map(|d| d.code)
            .filter(|c| c.as_str().starts_with("W01"))
            .collect()
    }

    /// Whether `intents`, written in a namespace `a` that may resolve names, draw `code`.
    fn fires(code: Code, intents: &str) -> bool {
        lints(&format!("namespace a\nallow dns\n{intents}\n")).contains(&code)
    }

    #[test]
    fn an_intent_without_ports_allows_every_port() {
        assert!(fires(Code::NoPorts, "web -> api"));
        assert!(fires(Code::NoPorts, "web -> internet"));
        assert!(fires(Code::NoPorts, "world -> web"));
        assert!(!fires(Code::NoPorts, "web -> api:8080"));
        assert!(!fires(Code::NoPorts, "web -> dns, api:80"), "dns has default ports");
        assert!(
            !fires(Code::NoPorts, "web -> api:80\nexpect web -> db denied"),
            "an expectation is no intent"
        );
    }

    #[test]
    fn egress_to_world_on_every_port() {
        assert!(fires(Code::EgressToWorld, "web -> world"));
        assert!(!fires(Code::NoPorts, "web -> world"), "W0102 says it better than W0101");
        assert!(fires(Code::EgressToWorld, "external anywhere = 0.0.0.0/0\nweb -> anywhere"));
        assert!(fires(Code::EgressToWorld, "external anywhere6 = ::/0\nweb -> anywhere6"));
        assert!(!fires(Code::EgressToWorld, "web -> world:443"));
        assert!(!fires(Code::EgressToWorld, "web -> internet"));
        assert!(!fires(
            Code::EgressToWorld,
            "external public = 0.0.0.0/0 except 10.0.0.0/8\nweb -> public"
        ));
    }

    #[test]
    fn ingress_from_world() {
        assert!(fires(Code::IngressFromWorld, "world -> web:443"));
        assert!(fires(Code::IngressFromWorld, "0.0.0.0/0 -> web:443"));
        assert!(!fires(Code::IngressFromWorld, "internet -> web:443"));
        assert!(!fires(Code::IngressFromWorld, "198.51.100.0/24 -> web:443"));
        assert!(!fires(Code::IngressFromWorld, "web -> world:443"));
    }

    #[test]
    fn metadata_address_through_a_wide_block() {
        assert!(fires(Code::MetadataReachable, "web -> world:80"));
        assert!(fires(Code::MetadataReachable, "web -> world"));
        assert!(fires(Code::MetadataReachable, "web -> world:1-1024"));
        assert!(fires(Code::MetadataReachable, "web -> 169.254.0.0/16:80"));
        assert!(
            fires(Code::MetadataReachable, "external v6 = ::/0\nweb -> v6:80"),
            "AWS's IPv6 address"
        );
        assert!(!fires(Code::MetadataReachable, "web -> world:443"));
        assert!(!fires(Code::MetadataReachable, "web -> world:80/udp"));
        assert!(!fires(Code::MetadataReachable, "web -> internet:80"));
        assert!(
            !fires(Code::MetadataReachable, "external md = 169.254.169.254/32\nweb -> md:80"),
            "named on purpose"
        );
        assert!(!fires(
            Code::MetadataReachable,
            "external out = 0.0.0.0/0 except 169.254.169.254/32\nweb -> out:80"
        ));
        assert!(!fires(Code::MetadataReachable, "world -> web:80"), "ingress");
    }

    #[test]
    fn an_intent_covered_by_another() {
        let covered = |intents: &str| fires(Code::CoveredIntent, intents);
        assert!(covered("web -> api:80\nweb -> api:(80, 443)"));
        assert!(covered("web -> api:(80, 443)\nweb -> api:80"), "whatever the order");
        assert!(covered("web -> api:80\nweb -> api"));
        assert!(covered("web -> api:85-90\nweb -> api:(80-89, 90)"), "ranges merge");
        assert!(covered("web -> api:80\n* -> api:80"));
        assert!(covered("web -> b/api:80\nweb -> b/*:80"));
        assert!(covered("web -> b/api:80\ncluster -> b/api:80\nnamespace b"));
        assert!(covered("web -> [app=api, tier=x]:80\nweb -> api:80"));
        assert!(covered("web -> [app=api]:80\nweb -> [app in (api, db)]:80"));
        assert!(covered("web -> [tier=x]:80\nweb -> [tier]:80"));
        assert!(covered("web -> [!tier]:80\nweb -> [tier notin (a)]:80"));
        assert!(covered("web -> 10.1.0.0/16:443\nweb -> 10.0.0.0/8:443"));
        assert!(covered("web -> internet:443\nweb -> world:443"));
        assert!(covered("web -> api:80, allow dns"), "the namespace allows dns already");
        assert!(!covered("web -> api:80\nweb -> api:8080"));
        assert!(!covered("web -> api:80\nweb -> api:http"), "a named port may be any number");
        assert!(!covered("web -> api:80/udp\nweb -> api:80"));
        assert!(!covered("web -> api:80\nworker -> api:80"));
        assert!(!covered(
            "web -> 10.0.1.0/24:443\nexternal corp = 10.0.0.0/8 except 10.0.0.0/16\nweb -> corp:443"
        ));
        assert!(
            !covered("web -> ops/api:80\n{team=ops}/* -> ops/api:80\nnamespace ops"),
            "labels of `ops` unknown"
        );
        assert!(!covered("web -> [tier=x]:80\nweb -> [tier notin (x)]:80"));
        assert!(!covered("web -> [tier in (x, y)]:80\nweb -> [tier=z]:80"));
    }

    #[test]
    fn the_narrower_intent_is_reported_and_of_two_equal_ones_the_later() {
        let covered_lines = |intents: &str| {
            let out = crate::compile_str("t.np", &format!("namespace a\nallow dns\n{intents}\n"));
            let covered = out.diagnostics.iter().filter(|d| d.code == Code::CoveredIntent);
            covered.map(|d| out.sources.line_of(d.span())).collect::<Vec<_>>()
        };
        assert_eq!(covered_lines("web -> [app=api]:80\nweb -> api:80"), [4]);
        assert_eq!(covered_lines("web -> api:80\nweb -> [app=api]:80"), [4]);
        assert_eq!(covered_lines("web -> world:443\nweb -> internet:443"), [4]);
        assert_eq!(covered_lines("web -> internet:443\nweb -> world:443"), [3]);
    }

    #[test]
    fn covered_intents_are_found_among_many() {
        // Enough flows that their peers are numbered in several runs (on
        // several cores): each intent is covered by one far later, in
        // another run, with the same peers and one more port.
        let n = 150;
        let narrow: String = (0..n).map(|i| format!("w{i} -> api{i}:80\n")).collect();
        let wide: String = (0..n).map(|i| format!("w{i} -> api{i}:(80, 443)\n")).collect();
        let out = crate::compile_str("t.np", &format!("namespace a\nallow dns\n{narrow}{wide}"));
        let mut covered: Vec<(usize, &str)> = (out.diagnostics.iter())
            .filter(|d| d.code == Code::CoveredIntent)
            .map(|d| (out.sources.line_of(d.span()), d.message.as_str()))
            .collect();
        covered.sort_unstable();
        let expected: Vec<String> = (0..n)
            .map(|i| format!("`w{i} -> api{i}:80` is already allowed by `w{i} -> api{i}:(80, 443)`"))
            .collect();
        let expected: Vec<(usize, &str)> = expected.iter().enumerate().map(|(i, m)| (i + 3, m.as_str())).collect();
        assert_eq!(covered, expected);
    }

    #[test]
    fn declarations_nobody_uses() {
        let unused = |text: &str| fires(Code::UnusedDeclaration, text);
        assert!(unused("workload api = app.kubernetes.io/name=api\nweb -> db:5432"));
        assert!(unused("external corp = 10.0.0.0/8\nweb -> db:5432"));
        assert!(!unused("workload api = app.kubernetes.io/name=api\nweb -> api:80"));
        assert!(!unused(
            "workload api = app.kubernetes.io/name=api\nweb -> db:5432\nexpect web -> api denied"
        ));
        assert!(!unused("external corp = 10.0.0.0/8\nweb -> corp:5432"));
        assert!(!unused(
            "workload api = app.kubernetes.io/name=api\nnamespace b\nallow dns\nweb -> a/api:80"
        ));
        assert!(
            unused("workload api = app.kubernetes.io/name=api\nnamespace b\nallow dns\nweb -> api:80"),
            "another namespace's api"
        );
    }

    #[test]
    fn an_empty_pod_selector() {
        assert!(fires(Code::EmptyPodSelector, "web -> []:80"));
        assert!(fires(Code::EmptyPodSelector, "web -> b/[]:80\nnamespace b"));
        assert!(fires(Code::EmptyPodSelector, "{}/[] -> web:80"));
        assert!(fires(Code::EmptyPodSelector, "{team=ops}/[] -> web:80"));
        assert!(!fires(Code::EmptyPodSelector, "web -> *:80"));
        assert!(!fires(Code::EmptyPodSelector, "{}/[app=x] -> web:80"));
        assert!(!fires(Code::EmptyPodSelector, "web -> [app=api]:80"));
    }

    #[test]
    fn a_selector_that_never_matches() {
        let never = |text: &str| fires(Code::SelectorNeverMatches, text);
        assert!(never("workload w = app=a, app=b\nweb -> w:80"));
        assert!(never("web -> [app in (a, b), app notin (a, b)]:80"));
        assert!(never("web -> [app, !app]:80"));
        assert!(never("web -> [app=a, !app]:80"));
        assert!(never("web -> [app=a, app!=a]:80"));
        assert!(never("web -> b/[app in (a), app in (b)]:80\nnamespace b"));
        assert!(never("{env=prod, !env}/* -> web:80"));
        assert!(!never("web -> [app=a, version!=v1]:80"));
        assert!(!never("web -> [app in (a, b), app!=a]:80"));
        assert!(!never("web -> [!app, app notin (a)]:80"));
        assert!(!never("workload w = app=a, tier=b\nweb -> w:80"));
    }

    #[test]
    fn no_lint_where_an_error_or_a_useless_intent_points() {
        let out = crate::compile_str(
            "t.np",
            "namespace a\nallow dns\nweb -> api:99999\nweb -> db, cache:70000\nweb -> queue\n",
        );
        let lines: Vec<(usize, &str)> = out
            .diagnostics
            .iter()
            .map(|d| (out.sources.line_of(d.span()), d.code.as_str()))
            .collect();
        assert_eq!(lines, [(3, "E0103"), (4, "W0101"), (4, "E0103"), (5, "W0101")]);
        let useless = crate::compile_str("t.np", "namespace a\nallow dns\nworld -> dns\n");
        let codes: Vec<&str> = useless.diagnostics.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["W0007"], "no W0101 or W0103 on an intent that does nothing");
    }

    #[test]
    fn the_bundled_good_examples_draw_no_lint() {
        for entry in std::fs::read_dir("examples").expect("examples") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "np") {
                let text = std::fs::read_to_string(&path).expect("read");
                assert_eq!(lints(&text), Vec::new(), "{}", path.display());
            }
        }
    }
}
