//! Each object's YAML document written straight from the plan, without
//! building its `k8s-openapi` object, validating it field by field and
//! dropping it again: most of the cost of rendering was in those maps and
//! strings, not in the text.
//!
//! The text is the reference's by construction: the same writer
//! (`yaml`'s nodes, in the order of `yaml::network_policy`) writes the
//! same values (those `build` would put in the object). What objects share
//! (a peer list, a pod selector, a port, the labels) is built once per
//! chunk as the reference builds it, checked by `validate`'s own rules and
//! written by `yaml`'s own writer into a [`Fragment`], then copied.
//!
//! A document is written only when no rule of `validate` is broken; any
//! doubt (a part that breaks a rule, an annotation key that is not a
//! qualified name as it is, metadata that would replace the `source` or
//! `intent` annotation, annotations over the size limit) and the object goes
//! the reference way, which also says what is wrong.

use super::{Direction, Pair, Plan, Policy, Work, push_deny_source, push_joined, render_peers, render_port, selector};
use crate::ir::{NamespaceInfo, Namespaces, Peer, PortSpec};
use crate::validate::{self, Validator};
use crate::yaml::{self, Fragment, KeyText, Map, Node};
use k8s_openapi::Resource;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use rustc_hash::FxHashMap;
use std::ops::Range;
use std::sync::Arc;

/// Depth of the keys of `spec` (`podSelector`, ...).
const SPEC_DEPTH: usize = 1;
/// Depth of the keys of a rule (`to`, `from`, `ports`) and of its items' dashes.
const RULE_DEPTH: usize = 2;

/// Writes documents of one plan, remembering what its objects share: one
/// per chunk of objects (it is not shared between threads).
pub(crate) struct Texts<'a, 'p> {
    plan: &'a Plan<'p>,
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
    /// Pod selectors of the policies, by local peer.
    selectors: FxHashMap<*const Peer, Option<usize>>,
    /// Items of `ports`.
    ports: FxHashMap<&'p PortSpec, Option<usize>>,
    /// The annotations of the object being written: keys, in `key_texts`,
    /// and where their values are in `values`.
    annotations: Vec<(&'a str, usize, Range<usize>)>,
    values: String,
    metadata: Vec<(&'p str, &'p str)>,
}

impl<'a, 'p> Texts<'a, 'p> {
    pub(crate) fn new(plan: &'a Plan<'p>) -> Self {
        let shared = &plan.shared;
        let mut validator = Validator::default();
        let mut texts = Texts {
            plan,
            labels: validator
                .labels_are_valid(&shared.labels)
                .then(|| Fragment::value(SPEC_DEPTH, |node| yaml::string_map(node, &shared.labels))),
            validator,
            fragments: Vec::new(),
            keys: FxHashMap::default(),
            key_texts: Vec::new(),
            source_key: None,
            intent_key: None,
            peers: FxHashMap::default(),
            selectors: FxHashMap::default(),
            ports: FxHashMap::default(),
            annotations: Vec::new(),
            values: String::new(),
            metadata: Vec::new(),
        };
        texts.source_key = texts.key(&shared.source_key);
        texts.intent_key = texts.key(&shared.intent_key);
        texts
    }

    /// Appends to `out` what `emit::yaml_document` writes for object `i`
    /// of the plan, when the object breaks no rule of `validate` and this
    /// can be told without building it; otherwise leaves `out` as it was.
    pub(crate) fn document(&mut self, i: usize, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let written = match &self.plan.work[i] {
            Work::DefaultDeny(ns, info) => self.default_deny(ns, info, out),
            Work::Pair(pair) => self.pair(pair, out),
        };
        if written.is_none() {
            out.truncate(start);
        }
        written.is_some()
    }

    fn default_deny(&mut self, namespace: &str, info: &NamespaceInfo, out: &mut Vec<u8>) -> Option<()> {
        self.annotations.clear();
        self.values.clear();
        push_deny_source(&mut self.values, info, self.plan.sources);
        self.annotations
            .push((&self.plan.shared.source_key, self.source_key?, 0..self.values.len()));
        self.check_metadata(super::DEFAULT_DENY, namespace)?;
        self.document_with(out, super::DEFAULT_DENY, namespace, |spec| {
            yaml::label_selector(spec.field("podSelector"), &meta::LabelSelector::default());
            let mut types = spec.field("policyTypes").open_seq();
            if info.isolation.ingress() {
                types.item().literal("Ingress");
            }
            if info.isolation.egress() {
                types.item().literal("Egress");
            }
            types.finish();
        })
    }

    fn pair(&mut self, pair: &Pair<'p>, out: &mut Vec<u8>) -> Option<()> {
        let Policy {
            namespace,
            name,
            direction,
            local,
            peer,
        } = &pair.policy;
        let peers = self.peers(peer, namespace)?;
        let selector = self.selector(local)?;
        let ports = match self.plan.ports(pair) {
            Some(ports) => Some(ports.iter().map(|port| self.port(port)).collect::<Option<Vec<usize>>>()?),
            None => None,
        };
        self.pair_annotations(pair)?;
        self.check_metadata(name, namespace)?;
        let fragments = &self.fragments;
        self.document_with(out, name, namespace, |spec| {
            let write_ports = |rule: &mut Map| {
                if let Some(ports) = &ports {
                    let mut items = rule.field("ports").open_seq();
                    for &port in ports {
                        items.item().fragment(&fragments[port]);
                    }
                    items.finish();
                }
            };
            let (field, peers_field) = match direction {
                Direction::Egress => ("egress", "to"),
                Direction::Ingress => ("ingress", "from"),
            };
            let mut rules = spec.field(field).open_seq();
            let mut rule = rules.item().open_map();
            if *direction == Direction::Egress {
                write_ports(&mut rule);
            }
            rule.field(peers_field).fragment(&fragments[peers]);
            if *direction == Direction::Ingress {
                write_ports(&mut rule);
            }
            rule.finish();
            rules.finish();
            spec.field("podSelector").fragment(&fragments[selector]);
            let mut types = spec.field("policyTypes").open_seq();
            types.item().literal(match direction {
                Direction::Egress => "Egress",
                Direction::Ingress => "Ingress",
            });
            types.finish();
        })
    }

    /// The annotations `build` gives a pair, into `annotations` and `values`:
    /// `None` when metadata would replace the `source` or `intent` annotation.
    fn pair_annotations(&mut self, pair: &Pair<'p>) -> Option<()> {
        let (plan, shared) = (self.plan, &self.plan.shared);
        let origins = || plan.origins(pair).iter().map(|&i| &*plan.program.origins[i]);
        self.annotations.clear();
        self.values.clear();
        let (source, intent) = (self.source_key?, self.intent_key?);
        self.push_annotation(&shared.source_key, source, origins().map(|o| o.location.as_str()), ", ");
        self.push_annotation(&shared.intent_key, intent, origins().map(|o| o.text.as_str()), "\n");
        let mut metadata = std::mem::take(&mut self.metadata);
        metadata.clear();
        metadata.extend(origins().flat_map(|o| o.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        // Stable, as in `build`: each key's values stay in the order of the origins.
        metadata.sort_by_key(|&(k, _)| k);
        let mut all_known = true;
        for values in metadata.chunk_by(|a, b| a.0 == b.0) {
            let key = values[0].0;
            let text = self.key(key).filter(|_| key != shared.source_key && key != shared.intent_key);
            let Some(text) = text else {
                all_known = false;
                break;
            };
            self.push_annotation(key, text, values.iter().map(|&(_, v)| v), ", ");
        }
        self.metadata = metadata;
        // The keys are distinct: their order is the object's map's.
        self.annotations.sort_unstable_by_key(|&(key, _, _)| key);
        all_known.then_some(())
    }

    fn push_annotation(&mut self, key: &'a str, text: usize, items: impl Iterator<Item = &'p str>, separator: &str) {
        let start = self.values.len();
        push_joined(&mut self.values, items, separator);
        self.annotations.push((key, text, start..self.values.len()));
    }

    /// Whether the metadata of an object named `name` in `namespace`, with
    /// the annotations in `annotations`, breaks no rule.
    fn check_metadata(&self, name: &str, namespace: &str) -> Option<()> {
        if !(self.labels.is_some() && validate::is_dns1123_subdomain(name).is_ok() && validate::is_dns1123_label(namespace).is_ok()) {
            return None;
        }
        // Their keys were checked as they were met.
        let mut total: usize = 0;
        for (key, _, value) in &self.annotations {
            total = total.saturating_add(key.len()).saturating_add(value.len());
        }
        (total <= validate::TOTAL_ANNOTATION_SIZE_LIMIT).then_some(())
    }

    /// Writes the document of an object named `name` in `namespace`, with
    /// the annotations in `annotations`, and `spec`'s fields.
    fn document_with(&self, out: &mut Vec<u8>, name: &str, namespace: &str, spec: impl FnOnce(&mut Map)) -> Option<()> {
        let labels = self.labels.as_ref()?;
        out.extend_from_slice(b"---\n");
        let mut root = Node::root(out).open_map();
        root.field("apiVersion").literal(<NetworkPolicy as Resource>::API_VERSION);
        root.field("kind").literal(<NetworkPolicy as Resource>::KIND);
        let mut metadata = root.field("metadata").open_map();
        if !self.annotations.is_empty() {
            let mut annotations = metadata.field("annotations").open_map();
            for (_, key, value) in &self.annotations {
                annotations.key(&self.key_texts[*key]);
                annotations.value_node().str(&self.values[value.clone()]);
            }
            annotations.finish();
        }
        metadata.field("labels").fragment(labels);
        metadata.field("name").str(name);
        metadata.field("namespace").str(namespace);
        metadata.finish();
        let mut fields = root.field("spec").open_map();
        spec(&mut fields);
        fields.finish();
        root.finish();
        Some(())
    }

    fn keep(&mut self, fragment: Fragment) -> usize {
        self.fragments.push(fragment);
        self.fragments.len() - 1
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
        let key = (Arc::as_ptr(peer), here);
        if let Some(&known) = self.peers.get(&key) {
            return known;
        }
        let peers = render_peers(peer, namespace);
        let known = self
            .validator
            .peers_are_valid(&peers)
            .then(|| self.keep(Fragment::value(RULE_DEPTH, |node| yaml::peers(node, &peers))));
        self.peers.insert(key, known);
        known
    }

    /// The `podSelector` of a policy for the pods of `local`.
    fn selector(&mut self, local: &'p Arc<Peer>) -> Option<usize> {
        let key = Arc::as_ptr(local);
        if let Some(&known) = self.selectors.get(&key) {
            return known;
        }
        let pods = match &**local {
            Peer::Pods { pods, .. } => selector(pods),
            Peer::Ips { .. } => meta::LabelSelector::default(),
        };
        let known = self
            .validator
            .selector_is_valid(&pods)
            .then(|| self.keep(Fragment::value(SPEC_DEPTH, |node| yaml::label_selector(node, &pods))));
        self.selectors.insert(key, known);
        known
    }

    /// An item of `ports`.
    fn port(&mut self, port: &'p PortSpec) -> Option<usize> {
        if let Some(&known) = self.ports.get(port) {
            return known;
        }
        let item = render_port(port);
        let known = self
            .validator
            .port_is_valid(&item)
            .then(|| self.keep(Fragment::item(RULE_DEPTH, |node| yaml::policy_port(node, &item))));
        self.ports.insert(port, known);
        known
    }
}
