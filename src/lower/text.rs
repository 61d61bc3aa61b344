//! Each object's YAML document written straight from the plan, without
//! building its `k8s-openapi` object, validating it field by field and
//! dropping it again: most of the cost of rendering was in those maps and
//! strings, not in the text.
//!
//! The text is the reference's by construction: the same writer
//! (`yaml`'s nodes, in the order of `yaml::network_policy`) writes the
//! same values (those `build` would put in the object). What objects share
//! (a peer list, a pod selector, a port, the labels) is built once per
//! thread as the reference builds it, checked by `validate`'s own rules and
//! written by `yaml`'s own writer into a [`Fragment`]; the annotations of
//! an intent's objects, once per run ([`OriginHeads`]).
//!
//! A document is not one string but a few pieces shared with other
//! documents, with its name between the first two ([`Text::AroundName`]):
//! written out with `writev`, the pieces never need copying into each
//! document, and a fleet's documents take about half the memory their
//! text would.
//!
//! A document is written only when no rule of `validate` is broken; any
//! doubt (a name, namespace, annotation key or shared part that breaks a
//! rule, metadata that would replace the `source` or `intent` annotation,
//! annotations over the size limit) and the object goes the reference way,
//! which also says what is wrong.

use super::{Annotation, Direction, Pair, Plan, Policy, Work, pod_selector, push_deny_source, push_joined, render_peers, render_port};
use crate::ir::{IpBlock, LabelSelector, NamespaceInfo, Namespaces, Origin, Peer, PortSpec};
use crate::validate::{self, Validator};
use crate::yaml::{self, Fragment, KeyText, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use rustc_hash::FxHashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// A document up to the value of `metadata.annotations`, as the writer
/// writes it. Documents are written as runs of such text and the values
/// between them, keys and indentation included: the tests compare every
/// document with the one the writer writes for the built object.
const HEAD: &[u8] = b"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  annotations:";

/// A document's text.
#[derive(Debug)]
pub(crate) enum Text {
    /// Bytes of its own.
    Own(Box<[u8]>),
    /// Pieces it shares with other documents; the object's name, written
    /// as it is, goes after the first. Most of a document is the same as
    /// in others (its intent's annotations, the peer list, the pod
    /// selector, the ports), so sharing the pieces instead of copying them
    /// makes most documents a handful of pointers.
    AroundName(Box<[Arc<[u8]>]>),
}

impl Text {
    /// The runs of the text of the document named `name`, in order.
    pub(crate) fn runs<'t>(&'t self, name: &'t str) -> impl Iterator<Item = &'t [u8]> {
        let (first, name, rest): (&[u8], _, &[Arc<[u8]>]) = match self {
            Text::Own(text) => (text, None, &[]),
            Text::AroundName(pieces) => match pieces.split_first() {
                Some((head, rest)) => (head, Some(name.as_bytes()), rest),
                None => (&[], None, &[]),
            },
        };
        std::iter::once(first).chain(name).chain(rest.iter().map(|piece| &**piece))
    }

    /// How many runs [`Text::runs`] gives, at most.
    pub(crate) fn run_count(&self) -> usize {
        match self {
            Text::Own(_) => 1,
            Text::AroundName(pieces) => pieces.len() + 1,
        }
    }

    /// The whole text of the document named `name`.
    pub(crate) fn bytes(&self, name: &str) -> Vec<u8> {
        self.runs(name).flatten().copied().collect()
    }
}

/// What follows `spec:` in the piece that names the namespace.
#[derive(Clone, Copy)]
enum Opening {
    /// Nothing: a default deny, written whole.
    Spec,
    EgressWithPorts,
    Egress,
    Ingress,
}

impl Opening {
    const ALL: usize = 4;

    fn text(self) -> &'static [u8] {
        match self {
            Opening::Spec => b"",
            Opening::EgressWithPorts => b"  egress:\n  - ports:",
            Opening::Egress => b"  egress:\n  - to:",
            Opening::Ingress => b"  ingress:\n  - from:",
        }
    }
}

/// Where a peer list sits in its rule, by what comes around it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PeersAt {
    /// Right after `to:` or `from:`, with nothing after it.
    Alone,
    /// After the ports of an egress rule: `to:` comes first.
    AfterPorts,
    /// Before the ports of an ingress rule: `ports:` comes after.
    BeforePorts,
}

/// Depth of the keys of `metadata` and `spec` (`labels`, `podSelector`, ...).
const SECTION_DEPTH: usize = 1;
/// Depth of the keys of a rule (`to`, `from`, `ports`) and of its items' dashes.
const RULE_DEPTH: usize = 2;

/// The value of an annotation: one item, or items joined in `Texts::values`.
enum Value<'p> {
    Item(&'p str),
    Joined(Range<usize>),
}

/// The first piece of the objects that come from one intent (their text
/// up to the name, see [`Texts::head`]), by the intent's place in
/// `Program::origins` (`None`: it breaks a rule). Most objects come from one
/// intent, and an intent's two halves are most often written on different
/// threads: the piece is made once, by the thread that asks first, and
/// shared. It depends on the intent alone.
pub(crate) struct OriginHeads(Vec<OnceLock<Option<Arc<[u8]>>>>);

impl OriginHeads {
    pub(crate) fn new(plan: &Plan) -> Self {
        OriginHeads(plan.program.origins.iter().map(|_| OnceLock::new()).collect())
    }
}

/// Writes documents of one plan, remembering what its objects share: one
/// per thread.
pub(crate) struct Texts<'a, 'p> {
    plan: &'a Plan<'p>,
    by_origin: &'a OriginHeads,
    /// It remembers the keys and values it found valid.
    validator: Validator,
    /// `metadata.labels`, or `None` when they break a rule.
    labels: Option<Fragment>,
    fragments: Vec<Fragment>,
    /// Annotation keys, in `key_texts` (`None`: the key breaks a rule).
    keys: FxHashMap<&'a str, Option<usize>>,
    key_texts: Vec<KeyText>,
    /// The keys of the `source` and `intent` annotations.
    source_key: Option<usize>,
    intent_key: Option<usize>,
    /// Peer lists by peer and whether it is in the policy's namespace (`None`: they break a rule).
    peers: FxHashMap<(*const Peer, bool), Option<usize>>,
    /// The same lists by what they are written from, asked when the peer is
    /// new: distinct peers often have the same list (the same pods in other
    /// namespaces, each seen from its own; peers named otherwise), and a
    /// pointer is cheaper to hash than a peer.
    peer_shapes: FxHashMap<PeerShape<'p>, Option<usize>>,
    /// Pod selectors of the policies, by local peer, then by selector.
    selectors: FxHashMap<*const Peer, Option<usize>>,
    selector_shapes: FxHashMap<Option<Selector<'p>>, Option<usize>>,
    /// Items of `ports`.
    ports: FxHashMap<&'p PortSpec, Option<usize>>,
    /// Those of the object being written.
    port_items: Vec<usize>,
    /// Pieces of documents made from each fragment, by what comes around
    /// it: a peer list's by [`PeersAt`], a pod selector's by the policy
    /// type after it, a port's (the list of it alone) first.
    pieces: Vec<[Option<Arc<[u8]>>; 3]>,
    /// Lists of several ports, by their items.
    port_lists: FxHashMap<Box<[usize]>, Arc<[u8]>>,
    /// Where heads are written before they are shared.
    scratch: Vec<u8>,
    /// The annotations being listed: keys, in `key_texts`, and values.
    annotations: Vec<(&'a str, usize, Value<'p>)>,
    /// The values joined from several items.
    values: String,
    metadata: Vec<(&'p str, &'p str)>,
    /// The namespace of the last object and the text of its value (`None`:
    /// it breaks a rule): a chunk's objects come by namespace.
    namespace: Option<(String, Option<Fragment>)>,
    /// Its pieces from the line after the name, by [`Opening`].
    openings: [Option<Arc<[u8]>>; Opening::ALL],
}

impl<'a, 'p> Texts<'a, 'p> {
    pub(crate) fn new(plan: &'a Plan<'p>, by_origin: &'a OriginHeads) -> Self {
        let shared = &plan.shared;
        let mut validator = Validator::default();
        let mut texts = Texts {
            plan,
            by_origin,
            labels: validator
                .labels_are_valid(&shared.labels)
                .then(|| Fragment::value(SECTION_DEPTH, |node| yaml::string_map(node, &shared.labels))),
            validator,
            fragments: Vec::new(),
            keys: FxHashMap::default(),
            key_texts: Vec::new(),
            source_key: None,
            intent_key: None,
            peers: FxHashMap::default(),
            peer_shapes: FxHashMap::default(),
            selectors: FxHashMap::default(),
            selector_shapes: FxHashMap::default(),
            ports: FxHashMap::default(),
            port_items: Vec::new(),
            pieces: Vec::new(),
            port_lists: FxHashMap::default(),
            scratch: Vec::new(),
            annotations: Vec::new(),
            values: String::new(),
            metadata: Vec::new(),
            namespace: None,
            openings: Default::default(),
        };
        texts.source_key = texts.key(&shared.source_key);
        texts.intent_key = texts.key(&shared.intent_key);
        texts
    }

    /// What `emit::yaml_document` writes for object `i` of the plan, when
    /// the object breaks no rule of `validate` and this can be told without
    /// building it.
    pub(crate) fn document(&mut self, i: usize) -> Option<Text> {
        match &self.plan.work[i] {
            Work::DefaultDeny(ns, info) => self.default_deny(ns, info),
            Work::Pair(pair) => self.pair(pair),
        }
    }

    fn default_deny(&mut self, namespace: &str, info: &NamespaceInfo) -> Option<Text> {
        self.annotations.clear();
        self.values.clear();
        push_deny_source(&mut self.values, info, self.plan.sources);
        let value = Value::Joined(0..self.values.len());
        self.annotations.push((&self.plan.shared.source_key, self.source_key?, value));
        let head = self.head()?;
        let name = self.plain_name(super::DEFAULT_DENY)?;
        let opening = self.opening(namespace, Opening::Spec)?;
        let mut out = Vec::with_capacity(head.len() + name.len() + opening.len() + 64);
        out.extend_from_slice(&head);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&opening);
        out.extend_from_slice(b"  podSelector:");
        yaml::label_selector(Node::after_key(&mut out, SECTION_DEPTH), &meta::LabelSelector::default());
        out.extend_from_slice(b"  policyTypes:");
        let mut types = Node::after_key(&mut out, SECTION_DEPTH).open_seq();
        if info.isolation.ingress() {
            types.item().literal("Ingress");
        }
        if info.isolation.egress() {
            types.item().literal("Egress");
        }
        types.finish();
        Some(Text::Own(out.into()))
    }

    fn pair(&mut self, pair: &Pair<'p>) -> Option<Text> {
        let Policy {
            namespace,
            name,
            direction,
            local,
            peer,
        } = &pair.policy;
        let peers = self.peers(peer, namespace)?;
        let selector = self.selector(local)?;
        let ports = self.plan.ports(pair);
        self.port_items.clear();
        for port in ports.into_iter().flatten() {
            let item = self.port(port)?;
            self.port_items.push(item);
        }
        let by_origin = self.by_origin;
        let origins = self.plan.origins(pair);
        let head = match origins {
            [only] => by_origin.0[*only].get_or_init(|| self.head_of(origins)).clone()?,
            _ => self.head_of(origins)?,
        };
        self.plain_name(name)?;
        // `spec`'s keys, and a rule's, in the order the writer puts them.
        let (opening, peers_at) = match (direction, ports.is_some()) {
            (Direction::Egress, true) => (Opening::EgressWithPorts, PeersAt::AfterPorts),
            (Direction::Egress, false) => (Opening::Egress, PeersAt::Alone),
            (Direction::Ingress, true) => (Opening::Ingress, PeersAt::BeforePorts),
            (Direction::Ingress, false) => (Opening::Ingress, PeersAt::Alone),
        };
        let mut pieces = Vec::with_capacity(4 + usize::from(ports.is_some()));
        pieces.push(head);
        pieces.push(self.opening(namespace, opening)?);
        if peers_at == PeersAt::AfterPorts {
            pieces.push(self.port_list());
        }
        pieces.push(self.peer_piece(peers, peers_at));
        if peers_at == PeersAt::BeforePorts {
            pieces.push(self.port_list());
        }
        pieces.push(self.selector_piece(selector, *direction));
        Some(Text::AroundName(pieces.into()))
    }

    /// `name`, when it is a valid object name that the writer writes as it is.
    fn plain_name<'n>(&self, name: &'n str) -> Option<&'n str> {
        validate::is_dns1123_subdomain(name).ok()?;
        yaml::is_plain_line(name).then_some(name)
    }

    /// The piece that follows the name in a document of `namespace`: the
    /// rest of `metadata`, `spec:` and `opening`; `None` when the namespace
    /// breaks a rule.
    fn opening(&mut self, namespace: &str, opening: Opening) -> Option<Arc<[u8]>> {
        // A chunk's objects come by namespace: its pieces are made once for them.
        if self.namespace.as_ref().is_none_or(|(last, _)| last != namespace) {
            let text = (validate::is_dns1123_label(namespace).is_ok()).then(|| Fragment::value(SECTION_DEPTH, |node| node.str(namespace)));
            self.namespace = Some((namespace.to_string(), text));
            self.openings = Default::default();
        }
        let text = self.namespace.as_ref().and_then(|(_, text)| text.as_ref())?;
        let piece = self.openings[opening as usize].get_or_insert_with(|| {
            let mut out = b"\n  namespace:".to_vec();
            Node::after_key(&mut out, SECTION_DEPTH).fragment(text);
            out.extend_from_slice(b"spec:\n");
            out.extend_from_slice(opening.text());
            out.into()
        });
        Some(Arc::clone(piece))
    }

    /// The piece of the peer list at `peers` in `fragments`, with what comes around it.
    fn peer_piece(&mut self, peers: usize, at: PeersAt) -> Arc<[u8]> {
        self.piece(peers, at as usize, |fragment, out| {
            if at == PeersAt::AfterPorts {
                out.extend_from_slice(b"    to:");
            }
            Node::after_key(out, RULE_DEPTH).fragment(fragment);
            if at == PeersAt::BeforePorts {
                out.extend_from_slice(b"    ports:");
            }
        })
    }

    /// The piece of the pod selector at `selector` in `fragments` and the
    /// policy types after it.
    fn selector_piece(&mut self, selector: usize, direction: Direction) -> Arc<[u8]> {
        self.piece(selector, direction as usize, |fragment, out| {
            out.extend_from_slice(b"  podSelector:");
            Node::after_key(out, SECTION_DEPTH).fragment(fragment);
            out.extend_from_slice(match direction {
                Direction::Egress => b"  policyTypes:\n  - Egress\n",
                Direction::Ingress => b"  policyTypes:\n  - Ingress\n",
            });
        })
    }

    /// The piece of the list of the ports in `port_items`.
    fn port_list(&mut self) -> Arc<[u8]> {
        let write = |items: &[&Fragment], out: &mut Vec<u8>| {
            let mut list = Node::after_key(out, RULE_DEPTH).open_seq();
            for item in items {
                list.item().fragment(item);
            }
            list.finish();
        };
        if let &[only] = &self.port_items[..] {
            return self.piece(only, 0, |item, out| write(&[item], out));
        }
        if let Some(piece) = self.port_lists.get(&self.port_items[..]) {
            return Arc::clone(piece);
        }
        let mut out = Vec::new();
        write(
            &self.port_items.iter().map(|&item| &self.fragments[item]).collect::<Vec<_>>(),
            &mut out,
        );
        let piece: Arc<[u8]> = out.into();
        self.port_lists.insert(self.port_items[..].into(), Arc::clone(&piece));
        piece
    }

    /// Piece `slot` of fragment `fragment`, written by `write` the first time.
    fn piece(&mut self, fragment: usize, slot: usize, write: impl FnOnce(&Fragment, &mut Vec<u8>)) -> Arc<[u8]> {
        if self.pieces.len() <= fragment {
            self.pieces.resize_with(self.fragments.len(), Default::default);
        }
        let piece = self.pieces[fragment][slot].get_or_insert_with(|| {
            let mut out = Vec::new();
            write(&self.fragments[fragment], &mut out);
            out.into()
        });
        Arc::clone(piece)
    }

    /// The first piece of a pair made from `origins` (see [`Texts::head`]).
    fn head_of(&mut self, origins: &[usize]) -> Option<Arc<[u8]>> {
        self.list_annotations(origins)?;
        self.head()
    }

    /// The annotations `build` gives a pair made from `origins`, into
    /// `annotations` and `values`: `None` when metadata would replace the
    /// `source` or `intent` annotation.
    fn list_annotations(&mut self, origins: &[usize]) -> Option<()> {
        let plan = self.plan;
        let shared = &plan.shared;
        self.annotations.clear();
        self.values.clear();
        let (source, intent) = (self.source_key?, self.intent_key?);
        if let [only] = origins
            && self.list_distinct_annotations(&plan.program.origins[*only], source, intent)?
        {
            return Some(());
        }
        self.annotations.clear();
        let origins = || origins.iter().map(|&i| &*plan.program.origins[i]);
        let mut metadata = std::mem::take(&mut self.metadata);
        let mut all_known = true;
        super::each_annotation(origins, &mut metadata, |annotation, items, separator| {
            let (key, text): (&'a str, _) = match annotation {
                Annotation::Source => (&shared.source_key, Some(source)),
                Annotation::Intent => (&shared.intent_key, Some(intent)),
                Annotation::Metadata(key) => (key, self.key(key)),
            };
            match text {
                Some(text) if all_known => self.push_annotation(key, text, items, separator),
                _ => all_known = false,
            }
        });
        self.metadata = metadata;
        // In the object's map's order; a key set twice (metadata naming the
        // `source` or `intent` annotation) would replace a value there.
        self.annotations.sort_unstable_by_key(|&(key, ..)| key);
        let distinct = self.annotations.windows(2).all(|pair| pair[0].0 != pair[1].0);
        (all_known && distinct).then_some(())
    }

    /// [`Texts::list_annotations`] for one intent, when its metadata keys
    /// are distinct from each other and from the `source` and `intent`
    /// keys: then every key has one value, the intent's own. `Some(false)`
    /// when they are not (nothing to join or replace is looked for here).
    fn list_distinct_annotations(&mut self, origin: &'p Origin, source: usize, intent: usize) -> Option<bool> {
        let shared = &self.plan.shared;
        self.annotations.push((&shared.source_key, source, Value::Item(&origin.location)));
        self.annotations.push((&shared.intent_key, intent, Value::Item(&origin.text)));
        for (key, value) in origin.metadata.iter() {
            let text = self.key(key)?;
            self.annotations.push((key, text, Value::Item(value)));
        }
        self.annotations.sort_unstable_by_key(|&(key, ..)| key);
        Some(self.annotations.windows(2).all(|pair| pair[0].0 != pair[1].0))
    }

    fn push_annotation(&mut self, key: &'a str, text: usize, mut items: impl Iterator<Item = &'p str>, separator: &str) {
        let value = match (items.next(), items.next()) {
            // Most objects come from one intent: its text is the value.
            (Some(only), None) => Value::Item(only),
            (first, second) => {
                let start = self.values.len();
                push_joined(&mut self.values, first.into_iter().chain(second).chain(items), separator);
                Value::Joined(start..self.values.len())
            }
        };
        self.annotations.push((key, text, value));
    }

    fn value(&self, value: &Value<'p>) -> &str {
        match value {
            Value::Item(item) => item,
            Value::Joined(range) => &self.values[range.clone()],
        }
    }

    /// The first piece of a document with the annotations listed in
    /// `annotations`: its text up to the value of `metadata.name`, the
    /// space before it included; `None` when they are over Kubernetes' size
    /// limit (their keys were checked as they were met) or the labels break
    /// a rule.
    fn head(&mut self) -> Option<Arc<[u8]>> {
        let size = validate::annotations_size(self.annotations.iter().map(|(key, _, value)| (*key, self.value(value))));
        let labels = self.labels.as_ref().filter(|_| size <= validate::TOTAL_ANNOTATION_SIZE_LIMIT)?;
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.extend_from_slice(HEAD);
        let mut annotations = Node::after_key(&mut out, SECTION_DEPTH).open_map();
        for (_, key, value) in &self.annotations {
            annotations.key(&self.key_texts[*key]);
            annotations.value_node().str(self.value(value));
        }
        annotations.finish();
        out.extend_from_slice(b"  labels:");
        Node::after_key(&mut out, SECTION_DEPTH).fragment(labels);
        out.extend_from_slice(b"  name: ");
        let head = Arc::from(&out[..]);
        self.scratch = out;
        Some(head)
    }

    /// An annotation key.
    fn key(&mut self, key: &'a str) -> Option<usize> {
        if let Some(&known) = self.keys.get(key) {
            return known;
        }
        let known = self.validator.annotation_key_is_valid(key).then(|| {
            self.key_texts.push(KeyText::new(key));
            self.key_texts.len() - 1
        });
        self.keys.insert(key, known);
        known
    }

    /// The `to` or `from` list of a policy in `namespace` towards `peer`.
    fn peers(&mut self, peer: &'p Arc<Peer>, namespace: &'p str) -> Option<usize> {
        // The list names the peer's namespace unless it is the policy's: this
        // is all it takes of `namespace`.
        let here = matches!(&**peer, Peer::Pods { namespaces: Namespaces::Named(ns), .. } if ns == namespace);
        let (validator, shapes, fragments) = (&mut self.validator, &mut self.peer_shapes, &mut self.fragments);
        remembered(&mut self.peers, (Arc::as_ptr(peer), here), || {
            cached(shapes, fragments, PeerShape::of(peer, here), || {
                let peers = render_peers(peer, namespace);
                (validator.peers_are_valid(&peers)).then(|| Fragment::value(RULE_DEPTH, |node| yaml::peers(node, &peers)))
            })
        })
    }

    /// The `podSelector` of a policy for the pods of `local`.
    fn selector(&mut self, local: &'p Arc<Peer>) -> Option<usize> {
        let (validator, shapes, fragments) = (&mut self.validator, &mut self.selector_shapes, &mut self.fragments);
        // What `pod_selector` reads.
        let pods = match &**local {
            Peer::Pods { pods, .. } => Some(Selector(pods)),
            Peer::Ips { .. } => None,
        };
        remembered(&mut self.selectors, Arc::as_ptr(local), || {
            cached(shapes, fragments, pods, || {
                let pods = pod_selector(local);
                (validator.selector_is_valid(&pods)).then(|| Fragment::value(SECTION_DEPTH, |node| yaml::label_selector(node, &pods)))
            })
        })
    }

    /// An item of `ports`.
    fn port(&mut self, port: &'p PortSpec) -> Option<usize> {
        let validator = &mut self.validator;
        cached(&mut self.ports, &mut self.fragments, port, || {
            let item = render_port(port);
            (validator.port_is_valid(&item)).then(|| Fragment::item(RULE_DEPTH, |node| yaml::policy_port(node, &item)))
        })
    }
}

/// What a peer list is written from: all that `render_peers` reads of the
/// peer and of the policy's namespace (whether the peer is in it).
#[derive(PartialEq, Eq, Hash)]
enum PeerShape<'p> {
    Pods {
        /// `None` in the policy's own namespace.
        namespaces: Option<Namespace<'p>>,
        pods: Selector<'p>,
    },
    Ips(&'p [IpBlock]),
}

impl<'p> PeerShape<'p> {
    fn of(peer: &'p Peer, here: bool) -> Self {
        match peer {
            Peer::Pods { namespaces, pods, .. } => PeerShape::Pods {
                namespaces: (!here).then_some(match namespaces {
                    Namespaces::Named(name) => Namespace::Named(name),
                    Namespaces::Selected(selector) => Namespace::Selected(Selector(selector)),
                }),
                pods: Selector(pods),
            },
            Peer::Ips { blocks, .. } => PeerShape::Ips(blocks),
        }
    }
}

#[derive(PartialEq, Eq, Hash)]
enum Namespace<'p> {
    Named(&'p str),
    Selected(Selector<'p>),
}

/// A label selector, compared whole but hashed by its sizes and first
/// label only: hashing every label of every new peer's selectors cost
/// about as much as the lists it found. Equal selectors hash alike.
#[derive(PartialEq, Eq)]
struct Selector<'p>(&'p LabelSelector);

impl std::hash::Hash for Selector<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let LabelSelector { labels, expressions } = self.0;
        (labels.len(), expressions.len(), labels.first_key_value()).hash(state);
    }
}

/// Where in `fragments` the fragment for `key` is, made by `make` (and kept)
/// the first time it is asked for; `None` when it breaks a rule.
fn cached<K: std::hash::Hash + Eq>(
    cache: &mut FxHashMap<K, Option<usize>>,
    fragments: &mut Vec<Fragment>,
    key: K,
    make: impl FnOnce() -> Option<Fragment>,
) -> Option<usize> {
    remembered(cache, key, || {
        make().map(|fragment| {
            fragments.push(fragment);
            fragments.len() - 1
        })
    })
}

/// What `find` says for `key`, asked only the first time.
fn remembered<K: std::hash::Hash + Eq>(
    cache: &mut FxHashMap<K, Option<usize>>,
    key: K,
    find: impl FnOnce() -> Option<usize>,
) -> Option<usize> {
    if let Some(&known) = cache.get(&key) {
        return known;
    }
    let known = find();
    cache.insert(key, known);
    known
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fleet::{FleetSpec, generate};
    use crate::ir::{Expression, IpBlock, LabelSelector, Operator, Origin, PeerName, PortNumber, Program, Protocol};
    use crate::source::Sources;
    use std::collections::HashMap;

    /// What the fast path did with the objects of a plan.
    #[derive(Debug, Default, Clone, Copy)]
    struct Share {
        objects: usize,
        written: usize,
        /// Objects that validation rejects.
        invalid: usize,
    }

    impl std::ops::AddAssign for Share {
        fn add_assign(&mut self, other: Share) {
            self.objects += other.objects;
            self.written += other.written;
            self.invalid += other.invalid;
        }
    }

    /// Every object of `plan` both ways: whenever the fast path writes a
    /// document, it is the reference's text byte for byte and the object
    /// breaks no rule.
    /// Twice: in order, and backwards with new caches (what is met first
    /// is what gets cached).
    fn compare(plan: &Plan, what: &str) -> Share {
        let mut share = Share::default();
        let order: Vec<usize> = (0..plan.len()).collect();
        for (pass, order) in [order.clone(), order.into_iter().rev().collect()].into_iter().enumerate() {
            let by_origin = OriginHeads::new(plan);
            let mut texts = Texts::new(plan, &by_origin);
            for i in order {
                let object = plan.build(i);
                let mut reference = Vec::new();
                crate::emit::yaml_document(&mut reference, &object);
                let violations = validate::validate_network_policy(&object);
                let fast = texts.document(i);
                let written = fast.is_some();
                let name = plan.name(i);
                if let Some(fast) = fast {
                    assert!(
                        violations.is_empty(),
                        "{what}: {name:?} written by the fast path, yet invalid: {violations:?}"
                    );
                    assert_eq!(
                        String::from_utf8_lossy(&fast.bytes(name.1)),
                        String::from_utf8_lossy(&reference),
                        "{what}: {name:?}"
                    );
                }
                if pass == 0 {
                    share.objects += 1;
                    share.written += usize::from(written);
                    share.invalid += usize::from(!violations.is_empty());
                }
            }
        }
        share
    }

    fn sources(files: &[(String, String)]) -> Sources {
        let mut sources = Sources::new();
        for (name, text) in files {
            sources.add(name.as_str(), text.as_str());
        }
        sources
    }

    /// The checked program of `sources`, whatever its diagnostics.
    fn program(sources: &Sources, config: &Config) -> Program {
        let files: Vec<crate::ast::File> = (sources.files().iter().enumerate())
            .map(|(i, file)| crate::parse::parse(i, &file.text).0)
            .collect();
        crate::check::check(&files, sources, config).0
    }

    fn configs() -> [Config; 3] {
        let prefixed = |prefix: &str| Config {
            annotation_prefix: prefix.to_string(),
            ..Config::default()
        };
        // An upper-case prefix is valid (annotation keys are checked in lower
        // case); one with a space is not.
        [Config::default(), prefixed("Example.COM"), prefixed("not a prefix")]
    }

    #[test]
    fn every_example_is_written_as_the_reference_writes_it() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
        let mut files = Vec::new();
        for dir in [root.to_string(), format!("{root}/errors"), format!("{root}/governance")] {
            for entry in std::fs::read_dir(&dir).expect("examples") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "np") {
                    files.push(path);
                }
            }
        }
        files.sort();
        let mut share = Share::default();
        for path in &files {
            // Examples that are not text (E0002, E0003) have no program.
            let Ok(text) = std::fs::read_to_string(path) else { continue };
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let sources = sources(&[(name.clone(), text)]);
            for config in configs() {
                let program = program(&sources, &config);
                let (plan, _) = super::super::plan(&program, &sources, &config);
                share += compare(&plan, &format!("{name} ({})", config.annotation_prefix));
            }
        }
        assert!(share.objects > 300 && share.invalid > 0, "{share:?}");
        // Only E0402's objects and those of the invalid prefix are invalid; the fast path takes every other.
        assert_eq!(share.written + share.invalid, share.objects, "{share:?}");
    }

    const FLEETS: [FleetSpec; 3] = [
        FleetSpec {
            namespaces: 6,
            workloads: 40,
            intents: 150,
            seed: 1,
        },
        FleetSpec {
            namespaces: 12,
            workloads: 90,
            intents: 300,
            seed: 0x006e_6574_706f_6c63,
        },
        FleetSpec {
            namespaces: 3,
            workloads: 25,
            intents: 120,
            seed: 99,
        },
    ];

    #[test]
    fn generated_fleets_are_written_as_the_reference_writes_them_and_all_on_the_fast_path() {
        let config = Config::default();
        for spec in FLEETS {
            let sources = sources(&generate(&spec));
            let program = program(&sources, &config);
            let (plan, _) = super::super::plan(&program, &sources, &config);
            let share = compare(&plan, &format!("{spec:?}"));
            assert!(share.objects > 50, "{spec:?}: {share:?}");
            assert_eq!((share.written, share.invalid), (share.objects, 0), "{spec:?}");
        }
    }

    /// SplitMix64, to shape the mutations.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % n as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        /// A string that is valid where names and labels go, or one that
        /// needs quoting, folding, a block scalar or an explicit key, is not
        /// ASCII, or breaks a rule of validation.
        fn string(&mut self) -> String {
            const TRICKY: &[&str] = &[
                "",
                "null",
                "Null",
                "~",
                "true",
                "no",
                "y",
                "on",
                "1e3",
                "0x1F",
                "0o17",
                "1_000",
                "12:30",
                "2001-12-14",
                ".inf",
                "-",
                ".",
                "#",
                "- x",
                "? x",
                "-x",
                "a: b",
                "a:b",
                "a:",
                "a #b",
                "a#b",
                "#x",
                " lead",
                "trail ",
                "tab\tx",
                "line\nbreak",
                "line\n",
                "\nlead",
                " \n",
                "é",
                "日本語",
                "\u{85}nel",
                "x\u{2028}y",
                "\u{feff}bom",
                "ctl\u{1}",
                "del\u{7f}",
                "quote\"",
                "back\\slash",
                "'single'",
                "[flow]",
                "{map}",
                "a,b",
                "@at",
                "`tick",
                "%pct",
                "!tag",
                "&anchor",
                "*alias",
                "|pipe",
                ">fold",
                "...",
                "---",
                "--- x",
                "UPPER",
                "Upper-Case",
                "with space",
                "a/b",
                "a/b/c",
                "-lead",
                "trail-",
                "a..b",
                "a_b",
                "ok",
                "web-1",
                "x.y.z",
                "123",
                "0",
            ];
            match self.below(10) {
                0 => "word ".repeat(10 + self.below(30)),
                1 => "x".repeat(60 + self.below(10)),
                2 => format!("{}   ", "ab ".repeat(30)),
                3 => "k".repeat(1020 + self.below(10)),
                4 => "n".repeat(250 + self.below(8)),
                _ => TRICKY[self.below(TRICKY.len())].to_string(),
            }
        }

        /// Mostly valid label-like text, sometimes tricky.
        fn value(&mut self) -> String {
            const PLAIN: &[&str] = &["web", "api", "db", "team-a", "a.b", "A_b", "v1", "x9"];
            if self.chance(50) {
                PLAIN[self.below(PLAIN.len())].to_string()
            } else {
                self.string()
            }
        }
    }

    fn mutate_selector(sel: &mut LabelSelector, rng: &mut Rng) {
        if rng.chance(40) {
            sel.labels.insert(rng.value(), rng.value());
        }
        if rng.chance(20) {
            let operator = [Operator::In, Operator::NotIn, Operator::Exists, Operator::DoesNotExist][rng.below(4)];
            let mut values: Vec<String> = (0..rng.below(3)).map(|_| rng.value()).collect();
            values.sort();
            values.dedup();
            sel.expressions.push(Expression {
                key: rng.value(),
                operator,
                values,
            });
        }
    }

    fn mutate_peer(peer: &Peer, rng: &mut Rng) -> Peer {
        let mut peer = peer.clone();
        match &mut peer {
            Peer::Pods { namespaces, pods, name } => {
                mutate_selector(pods, rng);
                match namespaces {
                    Namespaces::Named(ns) if rng.chance(15) => *ns = rng.value(),
                    Namespaces::Selected(sel) => mutate_selector(sel, rng),
                    _ => {}
                }
                if rng.chance(20) {
                    *name = PeerName::Workload(rng.value());
                }
            }
            Peer::Ips { blocks, .. } => {
                const CIDRS: &[&str] = &[
                    "10.0.0.0/8",
                    "10.0.0.1/8",
                    "",
                    "10.1.0.0/16",
                    "192.168.0.0/16",
                    "fd00::/8",
                    "300.0.0.0/8",
                    "x",
                ];
                if rng.chance(50) {
                    blocks.push(IpBlock {
                        cidr: CIDRS[rng.below(CIDRS.len())].to_string(),
                        except: (0..rng.below(3)).map(|_| CIDRS[rng.below(CIDRS.len())].to_string()).collect(),
                    });
                }
                if rng.chance(10) {
                    blocks.clear();
                }
            }
        }
        peer
    }

    fn mutate_port(port: &PortSpec, rng: &mut Rng) -> PortSpec {
        const NAMES: &[&str] = &["http", "HTTP", "a--b", "80", "toolongportname1", "-web", "metrics", "null", ""];
        let protocol = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][rng.below(3)];
        let port = match rng.below(5) {
            0 => PortNumber::Single(0),
            1 => PortNumber::Range(9000, 8000),
            2 => PortNumber::Range(1, 65535),
            3 => PortNumber::Named(NAMES[rng.below(NAMES.len())].to_string()),
            _ => port.port.clone(),
        };
        PortSpec { protocol, port }
    }

    fn mutate_origin(origin: &Origin, program_keys: &[&str], rng: &mut Rng) -> Origin {
        let mut origin = origin.clone();
        if rng.chance(30) {
            origin.text = rng.string();
        }
        if rng.chance(20) {
            origin.location = rng.string();
        }
        let mut metadata = origin.metadata.to_vec();
        for _ in 0..rng.below(3) {
            let key = match rng.below(4) {
                0 => program_keys[rng.below(program_keys.len())].to_string(),
                1 => rng.string(),
                _ => format!("netpolc.io/{}", rng.value()),
            };
            metadata.push((key, rng.string()));
        }
        if rng.chance(2) {
            metadata.push(("netpolc.io/huge".to_string(), "h".repeat(256 * 1024)));
        }
        origin.metadata = metadata.into();
        origin
    }

    /// `program` with some of its names, labels, ports, peers, intents and
    /// metadata replaced by tricky or invalid values; a mutated peer stays
    /// shared by the flows that shared it.
    fn mutate(program: &Program, rng: &mut Rng) -> Program {
        let mut program = program.clone();
        let keys = ["netpolc.io/source", "netpolc.io/intent", "netpolc.io/owner", "Example.COM/x"];
        let mut peers: HashMap<*const Peer, Arc<Peer>> = HashMap::new();
        let mut mutated = |peer: &Arc<Peer>, rng: &mut Rng| {
            Arc::clone(peers.entry(Arc::as_ptr(peer)).or_insert_with(|| {
                if rng.chance(30) {
                    Arc::new(mutate_peer(peer, rng))
                } else {
                    Arc::clone(peer)
                }
            }))
        };
        // Equal peers behind distinct pointers, as when flows do not share them.
        let copied = |peer: Arc<Peer>, rng: &mut Rng| if rng.chance(20) { Arc::new((*peer).clone()) } else { peer };
        for flow in &mut program.flows {
            flow.source = copied(mutated(&flow.source, rng), rng);
            flow.target = copied(mutated(&flow.target, rng), rng);
            if rng.chance(15) {
                flow.ports.0 = flow.ports.0.iter().map(|p| mutate_port(p, rng)).collect();
            }
        }
        for origin in &mut program.origins {
            if rng.chance(30) {
                *origin = Arc::new(mutate_origin(origin, &keys, rng));
            }
        }
        if rng.chance(30) {
            let info = crate::ir::NamespaceInfo {
                declared: true,
                isolation: crate::ast::Isolation::Both,
                declarations: program
                    .namespaces
                    .values()
                    .next()
                    .map(|i| i.declarations.clone())
                    .unwrap_or_default(),
            };
            program.namespaces.insert(rng.value(), info);
        }
        program
    }

    #[test]
    fn mutated_programs_are_written_as_the_reference_writes_them_or_not_at_all() {
        let mut files = generate(&FLEETS[0]);
        for example in [
            "10-metadata.np",
            "09-selectors.np",
            "11-ports.np",
            "13-world-internet.np",
            "15-namespace-selectors.np",
        ] {
            let text = std::fs::read_to_string(format!("{}/examples/{example}", env!("CARGO_MANIFEST_DIR"))).expect("example");
            files.push((example.to_string(), text));
        }
        let mut share = Share::default();
        let mut rng = Rng(7);
        for (name, text) in files.iter().skip(files.len() - 8) {
            let sources = sources(&[(name.clone(), text.clone())]);
            for config in configs() {
                let original = program(&sources, &config);
                for round in 0..12 {
                    let program = mutate(&original, &mut rng);
                    let (plan, _) = super::super::plan(&program, &sources, &config);
                    share += compare(&plan, &format!("{name} round {round}"));
                }
            }
        }
        // Both ways are taken, many times: the mutations make invalid objects and valid ones.
        assert!(
            share.written > 500 && share.invalid > 500 && share.objects > share.written + share.invalid,
            "{share:?}"
        );
    }
}
