//! Cluster models from real objects: the output of
//! `kubectl get namespaces,pods -A -o yaml` (or `-o json`), turned into the
//! [`Cluster`] that [`crate::evaluate`] decides connections in.
//!
//! ```
//! let text = "\
//! apiVersion: v1
//! kind: List
//! items:
//! - apiVersion: v1
//!   kind: Pod
//!   metadata: {name: api-7d4b9, namespace: backend, labels: {app: api}}
//!   spec:
//!     containers:
//!     - name: api
//!       ports: [{name: http, containerPort: 8080}]
//!   status: {phase: Running, podIP: 10.244.1.7}
//! ";
//! let cluster = netpolc::cluster::load_cluster(text).unwrap();
//! assert_eq!(cluster.pods[0].qualified_name(), "backend/api-7d4b9");
//! assert!(cluster.pods[0].has_named_port("http", netpolc::ir::Protocol::Tcp, 8080));
//! assert_eq!(cluster.namespaces[0].labels["kubernetes.io/metadata.name"], "backend");
//! ```
//!
//! What is read, and how:
//!
//! - The input is YAML or JSON (JSON when it starts with `{` or `[`): a `v1`
//!   `List` as kubectl prints it, a `PodList` or `NamespaceList` as the API
//!   returns it (items without `kind` take the list's), a single object, or
//!   a stream of them (`---` between YAML documents, or JSON values one after
//!   the other). A list inside a list is read too, to a small depth.
//! - Every item is first read as untyped data, dispatched on its `kind`, and
//!   the fields used here are then read with the real API types
//!   (`k8s_openapi::api::core::v1::{Namespace, Pod}`). Fields not used here
//!   are never looked at, so noise such as `managedFields`, conditions,
//!   volumes or resources cannot make loading fail. Objects of other kinds
//!   (Services, ConfigMaps...) are skipped and counted.
//! - Namespaces keep their labels and always get `kubernetes.io/metadata.name`.
//!   A namespace that only pods mention is created with that label alone.
//! - Pods keep their namespace (`default` when absent), name, labels, IP and
//!   named container ports (`spec.containers[].ports[]` with a `name`, and
//!   those of sidecars: init containers with `restartPolicy: Always`; the
//!   protocol defaults to TCP). Ports without a name are left out: a policy
//!   can only refer to a container port by its name.
//! - The evaluator's [`Pod`] holds one IP: it gets `status.podIP` (or the
//!   first of `status.podIPs`). The other addresses of a dual-stack pod are
//!   kept in [`LoadedCluster::extra_ips`], so that a caller can say which
//!   addresses were not evaluated.
//! - Pods with `spec.hostNetwork: true` are skipped: they use their node's
//!   address, and NetworkPolicies do not apply to them. So are pods in phase
//!   `Succeeded` or `Failed`, which run no more. Both are counted in
//!   [`Skipped`].
//! - An object given twice (the same namespace, or the same pod) replaces the
//!   earlier one. The result is sorted: namespaces by name, pods by namespace
//!   and name, whatever the order of the input.
//!
//! Malformed input never panics: it is a [`ClusterError`] naming the document,
//! the list item and, when known, the object.

use crate::evaluate::{Cluster, DEFAULT_NAMESPACE, NAMESPACE_NAME_LABEL, NamedPort, Pod, Protocol};
use k8s_openapi::api::core::v1 as api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// How deep lists may nest inside lists (a `List` whose items are `List`s...).
const MAX_LIST_DEPTH: usize = 4;

/// A cluster model and what was left out of it while loading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadedCluster {
    /// The namespaces and pods, sorted.
    pub cluster: Cluster,
    /// The objects that were read but are not part of the model.
    pub skipped: Skipped,
    /// For each pod with more than one IP (`namespace/name`), the addresses
    /// after the first, which the evaluator's [`Pod`] cannot hold.
    pub extra_ips: BTreeMap<String, Vec<IpAddr>>,
}

/// Objects read but left out of the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Objects of other kinds, counted by kind (`Service`, `ConfigMap`...).
    /// A `Pod` or `Namespace` of another API group than the core `v1` counts
    /// as `apiVersion kind`.
    pub kinds: BTreeMap<String, usize>,
    /// Pods with `spec.hostNetwork: true` (`namespace/name`), sorted.
    pub host_network: Vec<String>,
    /// Pods in phase `Succeeded` or `Failed` (`namespace/name`), sorted.
    pub finished: Vec<String>,
}

impl Skipped {
    /// Whether nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.host_network.is_empty() && self.finished.is_empty()
    }

    /// How many objects of other kinds were skipped.
    pub fn other_objects(&self) -> usize {
        self.kinds.values().sum()
    }
}

impl LoadedCluster {
    /// One line for a person: `3 namespaces, 4 pods; skipped 1 host-network
    /// pod, 1 finished pod, 2 other objects (1 ConfigMap, 1 Service); 1 pod
    /// with several IPs: only the first is evaluated`.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{}, {}",
            plural(self.cluster.namespaces.len(), "namespace"),
            plural(self.cluster.pods.len(), "pod")
        );
        let mut skipped = Vec::new();
        if !self.skipped.host_network.is_empty() {
            skipped.push(plural(self.skipped.host_network.len(), "host-network pod"));
        }
        if !self.skipped.finished.is_empty() {
            skipped.push(plural(self.skipped.finished.len(), "finished pod"));
        }
        if !self.skipped.kinds.is_empty() {
            let kinds: Vec<String> = self.skipped.kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
            skipped.push(format!(
                "{} ({})",
                plural(self.skipped.other_objects(), "other object"),
                kinds.join(", ")
            ));
        }
        if !skipped.is_empty() {
            out.push_str("; skipped ");
            out.push_str(&skipped.join(", "));
        }
        if !self.extra_ips.is_empty() {
            out.push_str(&format!(
                "; {} with several IPs: only the first is evaluated",
                plural(self.extra_ips.len(), "pod")
            ));
        }
        out
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// Why a cluster description could not be loaded, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterError {
    /// The document of a multi-document stream, from 1; `None` when the
    /// input is a single document or the problem concerns the whole input.
    pub document: Option<usize>,
    /// The index (from 0) of the item in its list's `items`, when the
    /// problem is in a list item.
    pub item: Option<usize>,
    /// The object, when it is known: ``pod `backend/api-7d4b9` ``.
    pub object: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ClusterError {
    fn whole(message: impl Into<String>) -> ClusterError {
        ClusterError {
            document: None,
            item: None,
            object: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ClusterError {
    /// `document 2, items[3] (pod `backend/api`): message`, leaving out the
    /// parts that are not known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = Vec::new();
        if let Some(document) = self.document {
            place.push(format!("document {document}"));
        }
        if let Some(item) = self.item {
            place.push(format!("items[{item}]"));
        }
        let mut place = place.join(", ");
        if let Some(object) = &self.object {
            if place.is_empty() {
                place = object.clone();
            } else {
                place = format!("{place} ({object})");
            }
        }
        if place.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{place}: {}", self.message)
        }
    }
}

impl std::error::Error for ClusterError {}

/// Loads a cluster model from kubectl output (see the module docs).
pub fn load_cluster(text: &str) -> Result<Cluster, ClusterError> {
    load(text).map(|loaded| loaded.cluster)
}

/// Loads a cluster model, and says what was skipped and which pod IPs the
/// model cannot hold.
pub fn load(text: &str) -> Result<LoadedCluster, ClusterError> {
    let documents = documents(text)?;
    let several = documents.len() > 1;
    let mut loader = Loader::default();
    for (index, document) in documents.iter().enumerate() {
        let at = Location {
            document: several.then_some(index + 1),
            item: None,
        };
        loader.object(document, at, None, 0)?;
    }
    Ok(loader.finish())
}

/// The documents of the input: JSON values or YAML documents.
fn documents(text: &str) -> Result<Vec<Value>, ClusterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(ClusterError::whole(
            "the input is empty: expected the output of `kubectl get namespaces,pods -A -o yaml`",
        ));
    }
    let documents: Vec<Value> = if trimmed.starts_with(['{', '[']) {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .map_err(|e| ClusterError::whole(format!("not valid JSON: {e}")))?
    } else {
        // YAML 1.2 booleans only (a namespace `n` or a label value `on`
        // stays a string, as kubectl means it), and numbers with leading
        // zeros or underscores stay strings too (`007`, `1_000`). A key
        // given twice keeps its last value, as in JSON.
        let options = serde_saphyr::options! {
            strict_booleans: true,
            leading_zero_numbers_as_strings: true,
            underscored_numbers_as_strings: true,
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
            with_snippet: false,
        };
        serde_saphyr::from_multiple_with_options::<Value>(text, options).map_err(|e| {
            let message = e.to_string();
            let message = message.trim().trim_start_matches("error: ");
            ClusterError::whole(format!("not valid YAML: {}", message.lines().next().unwrap_or_default()))
        })?
    };
    if documents.is_empty() {
        return Err(ClusterError::whole(
            "the input holds no object: expected the output of `kubectl get namespaces,pods -A -o yaml`",
        ));
    }
    Ok(documents)
}

/// Where an object is in the input.
#[derive(Clone, Copy, Debug)]
struct Location {
    document: Option<usize>,
    item: Option<usize>,
}

impl Location {
    fn error(self, object: Option<String>, message: impl Into<String>) -> ClusterError {
        ClusterError {
            document: self.document,
            item: self.item,
            object,
            message: message.into(),
        }
    }
}

#[derive(Default)]
struct Loader {
    cluster: Cluster,
    skipped: Skipped,
    extra_ips: BTreeMap<String, Vec<IpAddr>>,
}

/// The kind and `apiVersion` an item of a typed list has when it says none.
struct Implied<'a> {
    kind: Option<&'a str>,
    api_version: Option<&'a str>,
}

impl Loader {
    fn object(&mut self, value: &Value, at: Location, implied: Option<&Implied<'_>>, depth: usize) -> Result<(), ClusterError> {
        let Value::Object(object) = value else {
            return Err(at.error(None, format!("expected a Kubernetes object or `List`, found {}", describe(value))));
        };
        let kind = match object.get("kind") {
            Some(Value::String(kind)) if !kind.is_empty() => kind.as_str(),
            None | Some(Value::Null) => match implied.and_then(|i| i.kind) {
                Some(kind) => kind,
                None => return Err(at.error(None, "the object has no `kind`")),
            },
            Some(other) => return Err(at.error(None, format!("`kind` is {}, not a kind name", describe(other)))),
        };
        let api_version = match object.get("apiVersion") {
            Some(Value::String(v)) => Some(v.as_str()),
            None | Some(Value::Null) => implied.and_then(|i| i.api_version),
            Some(other) => return Err(at.error(None, format!("`apiVersion` is {}, not a version", describe(other)))),
        };
        let core = api_version.is_none_or(|v| v == "v1");
        match kind {
            "Namespace" if core => self.namespace(object, at),
            "Pod" if core => self.pod(object, at),
            "Namespace" | "Pod" => {
                let key = format!("{} {kind}", api_version.unwrap_or_default());
                *self.skipped.kinds.entry(key).or_default() += 1;
                Ok(())
            }
            list if list.ends_with("List") && object.contains_key("items") => self.list(object, list, api_version, at, depth),
            other => {
                *self.skipped.kinds.entry(other.to_owned()).or_default() += 1;
                Ok(())
            }
        }
    }

    fn list(
        &mut self,
        object: &Map<String, Value>,
        kind: &str,
        api_version: Option<&str>,
        at: Location,
        depth: usize,
    ) -> Result<(), ClusterError> {
        if depth >= MAX_LIST_DEPTH {
            return Err(at.error(None, format!("lists nest more than {MAX_LIST_DEPTH} deep")));
        }
        let items = match object.get("items") {
            Some(Value::Array(items)) => items.as_slice(),
            Some(Value::Null) | None => &[],
            Some(other) => return Err(at.error(None, format!("`items` of the `{kind}` is {}, not a sequence", describe(other)))),
        };
        // `PodList` items have no `kind`; a plain `List` names each item's.
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        let implied = Implied {
            kind: item_kind,
            api_version: item_kind.and(api_version),
        };
        for (index, item) in items.iter().enumerate() {
            let item_at = Location {
                document: at.document,
                item: Some(index),
            };
            self.object(item, item_at, Some(&implied), depth + 1)?;
        }
        Ok(())
    }

    fn namespace(&mut self, object: &Map<String, Value>, at: Location) -> Result<(), ClusterError> {
        let metadata = metadata(object, at, "namespace")?;
        let name = metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(at.error(None, "a namespace has no `metadata.name`"));
        }
        let mut labels = metadata.labels.unwrap_or_default();
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.clone());
        // An object given twice replaces the earlier one: its labels, not a merge.
        let index = self.cluster.add_namespace(&name, std::iter::empty::<(String, String)>());
        self.cluster.namespaces[index].labels = labels;
        Ok(())
    }

    fn pod(&mut self, object: &Map<String, Value>, at: Location) -> Result<(), ClusterError> {
        let metadata = metadata(object, at, "pod")?;
        let name = metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(at.error(None, "a pod has no `metadata.name`"));
        }
        let namespace = metadata
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let qualified = format!("{namespace}/{name}");
        let who = Some(format!("pod `{qualified}`"));
        let fail = |message: String| at.error(who.clone(), message);

        let pod = api::Pod {
            metadata,
            spec: pod_spec(object.get("spec")).map_err(fail)?,
            status: pod_status(object.get("status")).map_err(fail)?,
        };
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();

        if spec.host_network == Some(true) {
            self.skipped.host_network.push(qualified);
            return Ok(());
        }
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            self.skipped.finished.push(qualified);
            return Ok(());
        }

        let mut ips: Vec<IpAddr> = Vec::new();
        let listed = status.pod_ips.unwrap_or_default();
        let texts = status.pod_ip.iter().map(|ip| ("status.podIP".to_owned(), ip.as_str())).chain(
            listed
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("status.podIPs[{i}].ip"), p.ip.as_str())),
        );
        for (path, text) in texts {
            if text.is_empty() {
                continue;
            }
            let ip: IpAddr = text.parse().map_err(|_| fail(format!("`{path}` is not an IP address: `{text}`")))?;
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }

        let mut ports = Vec::new();
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, c)| c.restart_policy.as_deref() == Some("Always"))
            .map(|(i, c)| (format!("spec.initContainers[{i}]"), c));
        let containers = spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("spec.containers[{i}]"), c))
            .chain(sidecars);
        for (path, container) in containers {
            for (j, port) in container.ports.iter().flatten().enumerate() {
                let Some(port_name) = port.name.as_ref().filter(|n| !n.is_empty()) else {
                    continue;
                };
                let path = format!("{path}.ports[{j}]");
                let number = u16::try_from(port.container_port)
                    .ok()
                    .filter(|&n| n != 0)
                    .ok_or_else(|| fail(format!("`{path}.containerPort` is {}, outside 1-65535", port.container_port)))?;
                let protocol = match port.protocol.as_deref() {
                    None | Some("") => Protocol::Tcp,
                    Some(text) => Protocol::from_api(text)
                        .ok_or_else(|| fail(format!("`{path}.protocol` is `{text}`: expected `TCP`, `UDP` or `SCTP`")))?,
                };
                ports.push(NamedPort {
                    name: port_name.clone(),
                    port: number,
                    protocol,
                });
            }
        }

        if ips.len() > 1 {
            self.extra_ips.insert(qualified.clone(), ips[1..].to_vec());
        } else {
            self.extra_ips.remove(&qualified);
        }
        self.cluster.add_pod(Pod {
            namespace,
            name,
            labels: pod.metadata.labels.unwrap_or_default(),
            ip: ips.first().copied(),
            ports,
        });
        Ok(())
    }

    fn finish(mut self) -> LoadedCluster {
        self.cluster.sort();
        self.skipped.host_network.sort();
        self.skipped.host_network.dedup();
        self.skipped.finished.sort();
        self.skipped.finished.dedup();
        LoadedCluster {
            cluster: self.cluster,
            skipped: self.skipped,
            extra_ips: self.extra_ips,
        }
    }
}

/// `metadata.name`, `metadata.namespace` and `metadata.labels`, read as
/// `ObjectMeta`.
fn metadata(object: &Map<String, Value>, at: Location, what: &str) -> Result<ObjectMeta, ClusterError> {
    let picked = pick(object.get("metadata"), &["name", "namespace", "labels"]);
    let metadata: ObjectMeta = typed(picked).map_err(|e| {
        let field = |key: &str| object.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str);
        let who = match (field("namespace"), field("name")) {
            (Some(ns), Some(name)) => Some(format!("{what} `{ns}/{name}`")),
            (None, Some(name)) => Some(format!("{what} `{name}`")),
            _ => None,
        };
        at.error(who, format!("`metadata`: {e}"))
    })?;
    Ok(metadata)
}

/// The parts of `spec` used here, read as `PodSpec`: `hostNetwork`, and the
/// name, ports and restart policy of every (init) container.
fn pod_spec(spec: Option<&Value>) -> Result<Option<api::PodSpec>, String> {
    let spec = match spec {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(spec)) => spec,
        Some(other) => return Err(format!("`spec` is {}, not a mapping", describe(other))),
    };
    let host_network = match spec.get("hostNetwork") {
        None | Some(Value::Null) => None,
        Some(v) => Some(typed::<bool>(v.clone()).map_err(|e| format!("`spec.hostNetwork`: {e}"))?),
    };
    let init_containers = containers(spec, "initContainers")?;
    Ok(Some(api::PodSpec {
        containers: containers(spec, "containers")?.unwrap_or_default(),
        init_containers,
        host_network,
        ..api::PodSpec::default()
    }))
}

/// `spec.containers` or `spec.initContainers`: each container's name,
/// ports and restart policy, read as `Container`.
fn containers(spec: &Map<String, Value>, field: &str) -> Result<Option<Vec<api::Container>>, String> {
    let list = match spec.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(format!("`spec.{field}` is {}, not a sequence", describe(other))),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, container) in list.iter().enumerate() {
        let picked = pick(Some(container), &["name", "ports", "restartPolicy"]);
        let container: api::Container = typed(picked).map_err(|e| format!("`spec.{field}[{i}]`: {e}"))?;
        out.push(container);
    }
    Ok(Some(out))
}

/// `status.phase`, `status.podIP` and `status.podIPs`, read as `PodStatus`.
fn pod_status(status: Option<&Value>) -> Result<Option<api::PodStatus>, String> {
    match status {
        None | Some(Value::Null) => Ok(None),
        Some(status) => typed(pick(Some(status), &["phase", "podIP", "podIPs"]))
            .map(Some)
            .map_err(|e| format!("`status`: {e}")),
    }
}

/// A copy of `value` with only `keys` (a non-mapping is returned as it is,
/// for the typed read to reject).
fn pick(value: Option<&Value>, keys: &[&str]) -> Value {
    match value {
        None => Value::Object(Map::new()),
        Some(Value::Object(map)) => Value::Object(keys.iter().filter_map(|&k| map.get(k).map(|v| (k.to_owned(), v.clone()))).collect()),
        Some(other) => other.clone(),
    }
}

/// Reads untyped data as an API type; the error is serde's message, with a
/// hint when YAML read a value meant as text as a number or boolean.
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let scalar = ["integer", "floating point", "boolean"]
            .iter()
            .any(|t| message.starts_with(&format!("invalid type: {t}")));
        if scalar && message.ends_with("expected a string") {
            format!("{message} (quote the value)")
        } else {
            message
        }
    })
}

/// `a string (`x`)`, `a number (`3`)`, `a sequence`, ...
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a boolean (`{b}`)"),
        Value::Number(n) => format!("a number (`{n}`)"),
        Value::String(s) if s.chars().count() > 40 => format!("a string (`{}...`)", s.chars().take(40).collect::<String>()),
        Value::String(s) => format!("a string (`{s}`)"),
        Value::Array(_) => "a sequence".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

/// Reads NetworkPolicy objects from YAML or JSON: single objects, multi-document
/// streams, and `List` / `NetworkPolicyList` wrappers. Other kinds are skipped.
pub fn load_policies(text: &str) -> Result<Vec<k8s_openapi::api::networking::v1::NetworkPolicy>, ClusterError> {
    fn walk(value: &Value, out: &mut Vec<k8s_openapi::api::networking::v1::NetworkPolicy>, depth: usize) -> Result<(), ClusterError> {
        match value.get("kind").and_then(Value::as_str) {
            Some("NetworkPolicy") => {
                let policy =
                    serde_json::from_value(value.clone()).map_err(|e| ClusterError::whole(format!("not a valid NetworkPolicy: {e}")))?;
                out.push(policy);
            }
            Some(kind) if kind.ends_with("List") && depth < 4 => {
                for item in value.get("items").and_then(Value::as_array).into_iter().flatten() {
                    let mut item = item.clone();
                    if kind == "NetworkPolicyList"
                        && let Some(map) = item.as_object_mut()
                    {
                        map.entry("kind").or_insert_with(|| Value::String("NetworkPolicy".into()));
                        map.entry("apiVersion")
                            .or_insert_with(|| Value::String("networking.k8s.io/v1".into()));
                    }
                    walk(&item, out, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    for document in documents(text)? {
        walk(&document, &mut out, 0)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn look_ups_find_the_right_pod_after_sorting() {
        let text = "apiVersion: v1\nkind: List\nitems:\n\
- {apiVersion: v1, kind: Pod, metadata: {name: z, namespace: b, labels: {app: z}}, spec: {containers: []}}\n\
- {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: a, labels: {app: a}}, spec: {containers: []}}\n\
- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n\
- {apiVersion: v1, kind: Namespace, metadata: {name: a, labels: {team: x}}}\n";
        let cluster = load_cluster(text).expect("loads");
        for (ns, name) in [("a", "a"), ("b", "z")] {
            let i = cluster.pod_index(ns, name).expect("found");
            assert_eq!((cluster.pods[i].namespace.as_str(), cluster.pods[i].name.as_str()), (ns, name));
        }
        assert_eq!(
            cluster.namespace("a").and_then(|n| n.labels.get("team")).map(String::as_str),
            Some("x")
        );
        assert_eq!(cluster.namespace("b").map(|n| n.name.as_str()), Some("b"));
    }

    use super::*;

    fn err(text: &str) -> ClusterError {
        match load(text) {
            Ok(loaded) => panic!("expected an error, loaded {loaded:?}"),
            Err(e) => e,
        }
    }

    fn ok(text: &str) -> LoadedCluster {
        load(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn single_pod_document_creates_its_namespace() {
        let loaded =
            ok("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: ns, labels: {app: a}}\nspec: {containers: [{name: c}]}\n");
        assert_eq!(loaded.cluster.namespaces.len(), 1);
        assert_eq!(loaded.cluster.namespaces[0].name, "ns");
        assert_eq!(loaded.cluster.namespaces[0].labels.len(), 1);
        let pod = &loaded.cluster.pods[0];
        assert_eq!(pod.qualified_name(), "ns/a");
        assert_eq!(pod.labels.get("app").map(String::as_str), Some("a"));
        assert_eq!(pod.ip, None);
        assert!(pod.ports.is_empty());
        assert!(loaded.skipped.is_empty());
    }

    #[test]
    fn namespace_labels_always_include_the_name_label() {
        let loaded =
            ok("kind: Namespace\napiVersion: v1\nmetadata:\n  name: shop\n  labels: {team: web, kubernetes.io/metadata.name: wrong}\n");
        let ns = &loaded.cluster.namespaces[0];
        assert_eq!(ns.labels.get("team").map(String::as_str), Some("web"));
        assert_eq!(ns.labels.get(NAMESPACE_NAME_LABEL).map(String::as_str), Some("shop"));
    }

    #[test]
    fn a_namespace_given_twice_keeps_the_last_labels() {
        let loaded =
            ok("kind: Namespace\nmetadata: {name: a, labels: {x: '1'}}\n---\nkind: Namespace\nmetadata: {name: a, labels: {y: '2'}}\n");
        assert_eq!(loaded.cluster.namespaces.len(), 1);
        let labels = &loaded.cluster.namespaces[0].labels;
        assert!(!labels.contains_key("x") && labels.contains_key("y"));
    }

    #[test]
    fn yaml_1_1_booleans_and_zero_padded_numbers_stay_text() {
        let loaded = ok("kind: Pod\nmetadata: {name: y, namespace: no, labels: {a: on, b: Off, c: 007, d: 1_000}}\n");
        let pod = &loaded.cluster.pods[0];
        assert_eq!(pod.qualified_name(), "no/y");
        let labels: Vec<(&str, &str)> = pod.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(labels, [("a", "on"), ("b", "Off"), ("c", "007"), ("d", "1_000")]);
    }

    #[test]
    fn errors_are_one_line() {
        for text in [
            "kind: Pod\nmetadata: {name: [\n",
            "{\"kind\":\n\n",
            "kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, ports: [{containerPort: x}]}]}\n",
        ] {
            let e = err(text).to_string();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_key_given_twice_keeps_its_last_value() {
        let loaded = ok("kind: Pod\nmetadata:\n  name: a\n  name: b\n");
        assert_eq!(loaded.cluster.pods[0].name, "b");
    }

    #[test]
    fn pod_without_namespace_is_in_default() {
        let loaded = ok("kind: Pod\nmetadata: {name: a}\n");
        assert_eq!(loaded.cluster.pods[0].qualified_name(), "default/a");
        assert_eq!(loaded.cluster.namespaces[0].name, "default");
    }

    #[test]
    fn ports_named_unnamed_protocols_and_sidecars() {
        let loaded = ok("
kind: Pod
metadata: {name: a, namespace: n}
spec:
  initContainers:
  - {name: setup, ports: [{name: ignored, containerPort: 1}]}
  - {name: proxy, restartPolicy: Always, ports: [{name: admin, containerPort: 15000}]}
  containers:
  - name: app
    ports:
    - {name: http, containerPort: 8080}
    - {containerPort: 9999}
    - {name: stats, containerPort: 8125, protocol: UDP}
  - name: sctp
    ports: [{name: sig, containerPort: 3868, protocol: SCTP}]
");
        let pod = &loaded.cluster.pods[0];
        let ports: Vec<(&str, u16, Protocol)> = pod.ports.iter().map(|p| (p.name.as_str(), p.port, p.protocol)).collect();
        assert_eq!(
            ports,
            [
                ("http", 8080, Protocol::Tcp),
                ("stats", 8125, Protocol::Udp),
                ("sig", 3868, Protocol::Sctp),
                ("admin", 15000, Protocol::Tcp)
            ]
        );
    }

    #[test]
    fn dual_stack_pods_keep_the_first_ip_and_report_the_others() {
        let loaded = ok("
kind: Pod
metadata: {name: a, namespace: n}
status:
  podIP: 10.0.0.5
  podIPs: [{ip: 10.0.0.5}, {ip: 'fd00::5'}]
");
        assert_eq!(loaded.cluster.pods[0].ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(loaded.extra_ips["n/a"], vec!["fd00::5".parse::<IpAddr>().unwrap()]);
        assert!(loaded.summary().contains("1 pod with several IPs"));
        // Without podIP, the first of podIPs.
        let loaded = ok("kind: Pod\nmetadata: {name: a}\nstatus: {podIPs: [{ip: 'fd00::7'}]}\n");
        assert_eq!(loaded.cluster.pods[0].ip, Some("fd00::7".parse().unwrap()));
        assert!(loaded.extra_ips.is_empty());
    }

    #[test]
    fn host_network_and_finished_pods_are_skipped_and_counted() {
        let loaded = ok("
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: proxy, namespace: kube-system}, spec: {hostNetwork: true, containers: [{name: p}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: job-1, namespace: batch}, status: {phase: Succeeded, podIP: 10.0.0.9}}
- {apiVersion: v1, kind: Pod, metadata: {name: job-2, namespace: batch}, status: {phase: Failed}}
- {apiVersion: v1, kind: Pod, metadata: {name: web, namespace: batch}, status: {phase: Pending}}
- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: batch}}
- {apiVersion: metrics.k8s.io/v1beta1, kind: Pod, metadata: {name: web, namespace: batch}}
");
        assert_eq!(loaded.cluster.pods.len(), 1);
        assert_eq!(loaded.skipped.host_network, ["kube-system/proxy"]);
        assert_eq!(loaded.skipped.finished, ["batch/job-1", "batch/job-2"]);
        assert_eq!(loaded.skipped.kinds.get("Service"), Some(&1));
        assert_eq!(loaded.skipped.kinds.get("metrics.k8s.io/v1beta1 Pod"), Some(&1));
        assert_eq!(
            loaded.summary(),
            "1 namespace, 1 pod; skipped 1 host-network pod, 2 finished pods, 2 other objects (1 Service, 1 metrics.k8s.io/v1beta1 Pod)"
        );
    }

    #[test]
    fn typed_lists_imply_the_kind_of_their_items() {
        let loaded = ok(r#"{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"a","namespace":"x"}}]}"#);
        assert_eq!(loaded.cluster.pods[0].qualified_name(), "x/a");
        let loaded = ok("apiVersion: v1\nkind: NamespaceList\nitems:\n- metadata: {name: x}\n- metadata: {name: y}\n");
        assert_eq!(loaded.cluster.namespaces.len(), 2);
        // A plain List does not: its items must say what they are.
        let e = err("apiVersion: v1\nkind: List\nitems:\n- metadata: {name: x}\n");
        assert_eq!(e.to_string(), "items[0]: the object has no `kind`");
    }

    #[test]
    fn json_streams_and_yaml_streams() {
        let loaded = ok("{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}\n{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"b\"}}\n");
        assert_eq!(loaded.cluster.namespaces.len(), 2);
        let loaded = ok("---\nkind: Namespace\nmetadata: {name: b}\n---\n---\nkind: Namespace\nmetadata: {name: a}\n...\n");
        let names: Vec<&str> = loaded.cluster.namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn empty_lists_give_an_empty_cluster() {
        assert_eq!(
            ok("apiVersion: v1\nkind: List\nitems: []\nmetadata: {resourceVersion: ''}\n").cluster,
            Cluster::new()
        );
        assert_eq!(ok("apiVersion: v1\nkind: List\nitems: null\n").cluster, Cluster::new());
    }

    #[test]
    fn errors_name_the_place_and_the_object() {
        let e = err("kind: List\nitems:\n- kind: Pod\n  metadata: {name: a, namespace: n}\n  status: {podIP: 10.0.0.300}\n");
        assert_eq!(e.item, Some(0));
        assert_eq!(e.document, None);
        assert_eq!(e.object.as_deref(), Some("pod `n/a`"));
        assert_eq!(
            e.to_string(),
            "items[0] (pod `n/a`): `status.podIP` is not an IP address: `10.0.0.300`"
        );

        let e = err(
            "kind: Namespace\nmetadata: {name: n}\n---\nkind: List\nitems:\n- {kind: Namespace, metadata: {name: m}}\n- kind: Pod\n  metadata: {name: b, namespace: n}\n  spec:\n    containers:\n    - name: c\n      ports: [{name: http, containerPort: 70000}]\n",
        );
        assert_eq!(
            e.to_string(),
            "document 2, items[1] (pod `n/b`): `spec.containers[0].ports[0].containerPort` is 70000, outside 1-65535"
        );

        let e = err(
            "kind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: c\n    ports: [{name: dns, containerPort: 53, protocol: udp}]\n",
        );
        assert_eq!(
            e.to_string(),
            "pod `default/a`: `spec.containers[0].ports[0].protocol` is `udp`: expected `TCP`, `UDP` or `SCTP`"
        );

        let e =
            err("kind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: c}\n  - ports: [{name: http, containerPort: '80'}]\n");
        assert_eq!(
            e.to_string(),
            "pod `default/a`: `spec.containers[1]`: invalid type: string \"80\", expected i32"
        );

        let e = err("kind: Pod\nmetadata: {name: a, labels: {tier: 1}}\n");
        assert_eq!(
            e.to_string(),
            "pod `a`: `metadata`: invalid type: integer `1`, expected a string (quote the value)"
        );

        let e = err("kind: Pod\nmetadata: {namespace: n}\n");
        assert_eq!(e.to_string(), "a pod has no `metadata.name`");
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for (text, expected) in [
            ("", "the input is empty"),
            ("  \n\t\n", "the input is empty"),
            ("# only a comment\n", "the input holds no object"),
            ("---\n...\n", "the input holds no object"),
            (
                "just a string",
                "expected a Kubernetes object or `List`, found a string (`just a string`)",
            ),
            ("[1, 2]", "expected a Kubernetes object or `List`, found a sequence"),
            ("- kind: Pod\n", "expected a Kubernetes object or `List`, found a sequence"),
            (
                "{\"kind\": \"Pod\"",
                "not valid JSON: EOF while parsing an object at line 1 column 14",
            ),
            (
                "kind: Pod\nmetadata: {name: [\n",
                "not valid YAML: unclosed bracket '[' at line 2, column 18",
            ),
            (
                "a: b\n  c: d\n",
                "not valid YAML: mapping values are not allowed in this context at line 2, column 4",
            ),
            ("kind: [Pod]\n", "`kind` is a sequence, not a kind name"),
            ("kind: List\nitems: {a: 1}\n", "`items` of the `List` is a mapping, not a sequence"),
            (
                "kind: List\nitems: [3]\n",
                "items[0]: expected a Kubernetes object or `List`, found a number (`3`)",
            ),
            ("kind: Pod\nmetadata: 7\n", "`metadata`: invalid type"),
            (
                "kind: Pod\nmetadata: {name: a}\nspec: 3\n",
                "pod `default/a`: `spec` is a number (`3`), not a mapping",
            ),
            (
                "kind: Pod\nmetadata: {name: a}\nspec: {containers: {}}\n",
                "`spec.containers` is a mapping, not a sequence",
            ),
            (
                "kind: Pod\nmetadata: {name: a}\nspec: {hostNetwork: yes please}\n",
                "`spec.hostNetwork`: invalid type",
            ),
            (
                "kind: Pod\nmetadata: {name: a}\nstatus: {podIPs: [{ip: 5}]}\n",
                "`status`: invalid type: integer `5`, expected a string (quote the value)",
            ),
            (
                "kind: Pod\nmetadata: {name: a}\nstatus: {podIPs: [{ip: x}]}\n",
                "`status.podIPs[0].ip` is not an IP address: `x`",
            ),
            (
                "kind: Namespace\nmetadata: {labels: {a: b}}\n",
                "a namespace has no `metadata.name`",
            ),
            ("apiVersion: 1\nkind: Pod\n", "`apiVersion` is a number (`1`), not a version"),
        ] {
            let e = err(text);
            assert!(e.to_string().contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn deeply_nested_lists_stop() {
        let mut text = String::from("{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}");
        for _ in 0..10 {
            text = format!("{{\"kind\":\"List\",\"items\":[{text}]}}");
        }
        assert!(err(&text).to_string().contains("lists nest more than"));
        // Deep data anywhere else is refused by the parsers, without a crash.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(load(&deep).is_err());
        let deep = format!("kind: Pod\nmetadata: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(load(&deep).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let samples = [
            "\u{feff}kind: Namespace\nmetadata: {name: bom}\n",
            "kind: Pod\nmetadata: &a {name: x}\nspec: *a\n",
            "kind: Pod\nmetadata: {name: x, labels: {? [a] : b}}\n",
            "kind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, ports: [{name: p, containerPort: -1}]}]}\n",
            "kind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, ports: [{name: p, containerPort: 1e99}]}]}\n",
            "kind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, ports: [{name: p, containerPort: 0}]}]}\n",
            "kind: Pod\nmetadata: {name: x}\nstatus: {podIP: ''}\n",
            "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"},\"status\":{\"podIP\":\"::1\"}} trailing",
            "\0\u{1}\u{2}",
            "kind: !!binary aGVsbG8=\n",
            "kind: \"\"\n",
        ];
        for text in samples {
            let _ = load(text);
        }
        assert_eq!(ok(samples[0]).cluster.namespaces[0].name, "bom");
        assert_eq!(ok(samples[6]).cluster.pods[0].ip, None);
    }
}
