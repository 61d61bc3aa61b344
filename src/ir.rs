//! The typed intermediate representation: resolved, checked flows between
//! peers. Data only; `check` builds it and `lower` consumes it.

use crate::ast::{Isolation, Span};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A checked program: every namespace involved and every flow declared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Program {
    /// Namespaces that are declared or referenced, by name.
    pub namespaces: BTreeMap<String, NamespaceInfo>,
    /// Every flow, in source order (files sorted by name).
    pub flows: Vec<Flow>,
    /// Provenance of each flow, indexed by [`Flow::origin`].
    pub origins: Vec<std::sync::Arc<Origin>>,
    /// The `expect` statements: the user's own tests of the policies.
    pub expectations: Vec<Expectation>,
    /// The `expose` statements: each namespace's consent to intents written elsewhere.
    pub exposures: Vec<Exposure>,
}

/// `expose TARGET to CALLER, ...`, resolved in the namespace it is written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The namespace, which owns the pods.
    pub namespace: String,
    /// The pods (empty: every pod of the namespace).
    pub pods: LabelSelector,
    /// The ports opened to the callers.
    pub ports: PortSet,
    /// Who may be given access by intents written in other namespaces.
    pub callers: Vec<Peer>,
    /// The statement.
    pub span: Span,
}

/// `expect SOURCE -> TARGET allowed|denied`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Who connects.
    pub source: Peer,
    /// To whom.
    pub target: Peer,
    /// The ports to try; empty means every modelled port.
    pub ports: PortSet,
    /// Whether the connections must be allowed (or denied).
    pub allowed: bool,
    /// The statement.
    pub span: Span,
    /// The statement, normalised.
    pub text: String,
}

/// What is known of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Whether some file says `namespace NAME` (then it gets a `default-deny`).
    pub declared: bool,
    /// Directions it enforces. Undeclared namespaces count as `both`.
    pub isolation: Isolation,
    /// Where it is declared (`namespace` and `isolate` statements).
    pub declarations: Vec<Span>,
}

/// `source` may open connections to `target` on `ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Who connects.
    pub source: Arc<Peer>,
    /// To whom.
    pub target: Arc<Peer>,
    /// On which ports.
    pub ports: PortSet,
    /// Index into [`Program::origins`].
    pub origin: usize,
}

/// Where a flow comes from, for annotations and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The target (or `allow dns` statement) in the source.
    pub span: Span,
    /// The intent's source endpoint (the statement for `allow dns`).
    pub source_span: Span,
    /// The intent, normalised: `web-app -> backend/user-api:8080`.
    pub text: String,
    /// `file:line`, the file named as in [`crate::source::SourceFile::name`].
    pub location: String,
    /// Annotation keys and values from `@` and `meta` lines: shared by the
    /// intents under the same lines (most of a file's).
    pub metadata: Arc<[(String, String)]>,
    /// The namespace section the intent is written in.
    pub namespace: String,
    /// The `@` and `meta` lines behind [`Origin::metadata`], one per value,
    /// for governance; shared as `metadata` is.
    pub metadata_lines: Arc<[MetadataLine]>,
    /// The ports as written, each with its place (empty when none were written).
    pub written_ports: Vec<(PortSpec, Span)>,
}

/// One metadata value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataLine {
    /// The annotation key (`netpolc.io/owner`).
    pub key: String,
    /// The value.
    pub value: String,
    /// Where the value is written.
    pub span: Span,
}

/// One side of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// Pods, chosen by namespace and labels.
    Pods {
        /// Which namespaces.
        namespaces: Namespaces,
        /// Which pods in them.
        pods: LabelSelector,
        /// How policy names refer to it.
        name: PeerName,
    },
    /// IP blocks outside the cluster.
    Ips {
        /// The blocks (one per address family for `world` and `internet`).
        blocks: Vec<IpBlock>,
        /// How policy names refer to it.
        name: PeerName,
    },
}

impl Peer {
    /// How policy names refer to this peer.
    pub fn name(&self) -> &PeerName {
        match self {
            Peer::Pods { name, .. } | Peer::Ips { name, .. } => name,
        }
    }
}

/// Namespaces of a pod peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespaces {
    /// One namespace, by name.
    Named(String),
    /// Every namespace whose labels match (empty: all of them).
    Selected(LabelSelector),
}

/// The name of a peer inside policy names (LANGUAGE.md §5.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerName {
    /// A workload: its name.
    Workload(String),
    /// `*`: `all`.
    All,
    /// `cluster`.
    Cluster,
    /// `world`.
    World,
    /// `internet`.
    Internet,
    /// `dns`.
    Dns,
    /// An `external`: its name.
    External(String),
    /// A CIDR literal: `cidr-10-0-0-0-24`.
    Cidr(String),
    /// A selector: `sel-` and a short hash of its canonical text.
    Selector(String),
    /// Pods in namespaces chosen by labels: `sel-<hash>.<pods>`, or
    /// `cluster.<pods>` when every namespace is chosen.
    InNamespaces(Option<String>, Box<PeerName>),
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerName::Workload(n) | PeerName::External(n) => f.write_str(n),
            PeerName::All => f.write_str("all"),
            PeerName::Cluster => f.write_str("cluster"),
            PeerName::World => f.write_str("world"),
            PeerName::Internet => f.write_str("internet"),
            PeerName::Dns => f.write_str("dns"),
            PeerName::Cidr(c) => {
                f.write_str("cidr-")?;
                f.write_str(&c.replace(['.', '/', ':'], "-"))
            }
            PeerName::Selector(hash) => write!(f, "sel-{hash}"),
            PeerName::InNamespaces(Some(hash), pods) => write!(f, "sel-{hash}.{pods}"),
            PeerName::InNamespaces(None, pods) => write!(f, "cluster.{pods}"),
        }
    }
}

/// A Kubernetes label selector in canonical form (sorted, deduplicated).
/// Empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LabelSelector {
    /// `matchLabels`.
    pub labels: BTreeMap<String, String>,
    /// `matchExpressions`, sorted.
    pub expressions: Vec<Expression>,
}

impl LabelSelector {
    /// Whether it matches everything.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.expressions.is_empty()
    }

    /// A selector of one `key=value`.
    pub fn label(key: &str, value: &str) -> Self {
        LabelSelector {
            labels: BTreeMap::from([(key.to_string(), value.to_string())]),
            expressions: Vec::new(),
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { ", " };
            first = false;
            f.write_str(s)
        };
        for (k, v) in &self.labels {
            sep(f)?;
            write!(f, "{k}={v}")?;
        }
        for e in &self.expressions {
            sep(f)?;
            match e.operator {
                Operator::Exists => write!(f, "{}", e.key)?,
                Operator::DoesNotExist => write!(f, "!{}", e.key)?,
                Operator::In | Operator::NotIn => {
                    let op = if e.operator == Operator::In { "in" } else { "notin" };
                    write!(f, "{} {op} ({})", e.key, e.values.join(", "))?
                }
            }
        }
        Ok(())
    }
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Expression {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values, sorted and deduplicated (empty for `Exists`/`DoesNotExist`).
    pub values: Vec<String>,
}

/// A `matchExpressions` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `In`
    In,
    /// `NotIn`
    NotIn,
    /// `Exists`
    Exists,
    /// `DoesNotExist`
    DoesNotExist,
}

impl Operator {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

/// A canonical IP block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpBlock {
    /// The block, canonical (`10.20.0.0/16`).
    pub cidr: String,
    /// Holes, canonical, sorted.
    pub except: Vec<String>,
}

/// Ports of a flow. Empty means every port of every protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortSet(pub Vec<PortSpec>);

impl PortSet {
    /// Every port.
    pub fn all() -> Self {
        PortSet(Vec::new())
    }

    /// Whether it allows every port.
    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }
}

/// A protocol and a port, range or port name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSpec {
    /// The protocol.
    pub protocol: Protocol,
    /// Which ports.
    pub port: PortNumber,
}

/// A transport protocol a NetworkPolicy port can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP, the default when a policy port or a container port names none.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The spelling the Kubernetes API uses: `"TCP"`, `"UDP"` or `"SCTP"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// Parses the exact spelling the Kubernetes API accepts (`"TCP"`, `"UDP"`,
    /// `"SCTP"`); anything else, including lowercase, gives `None`.
    pub fn from_api(text: &str) -> Option<Protocol> {
        match text {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when text is not a protocol name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseProtocolError {
    /// The text that was not recognised.
    pub text: String,
}

impl fmt::Display for ParseProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown protocol `{}` (expected tcp, udp or sctp)", self.text)
    }
}

impl std::error::Error for ParseProtocolError {}

impl FromStr for Protocol {
    type Err = ParseProtocolError;

    /// Accepts the lowercase (`tcp`) or uppercase (`TCP`) spelling.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "TCP" | "tcp" => Ok(Protocol::Tcp),
            "UDP" | "udp" => Ok(Protocol::Udp),
            "SCTP" | "sctp" => Ok(Protocol::Sctp),
            _ => Err(ParseProtocolError { text: text.to_owned() }),
        }
    }
}

/// Port part of a [`PortSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortNumber {
    /// One port.
    Single(u16),
    /// An inclusive range, start below end.
    Range(u16, u16),
    /// A named container port.
    Named(String),
}
