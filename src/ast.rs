//! The syntax tree of `.np` files: what was written, with spans, before any
//! name is resolved or any value is checked.

use std::fmt;

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    /// Index of the file in the [`crate::source::Sources`] of the run.
    pub file: usize,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span covering both `self` and `other` (same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A node with its location. Equality ignores the span, so trees compare by shape.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    /// The node.
    pub node: T,
    /// Where it was written.
    pub span: Span,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T> Spanned<T> {
    /// Wraps `node` with `span`.
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// One parsed `.np` file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    /// Statements in source order.
    pub statements: Vec<Spanned<Statement>>,
    /// Comments, from `#` to the end of their line, in source order (read by
    /// silencing comments, `# netpolc: allow W0101`).
    pub comments: Vec<Span>,
}

/// A statement: one logical line.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `namespace NAME`
    Namespace(Spanned<Name>),
    /// `workload NAME = SELECTOR`
    Workload {
        /// The declared name.
        name: Spanned<Name>,
        /// The pods it stands for.
        selector: Spanned<Selector>,
    },
    /// `external NAME = CIDR [except CIDR, ...]`
    External {
        /// The declared name.
        name: Spanned<Name>,
        /// The block.
        cidr: Spanned<String>,
        /// Holes in the block.
        except: Vec<Spanned<String>>,
    },
    /// `isolate ingress|egress|both|none`
    Isolate(Isolation),
    /// `allow dns[:PORTS]` as a statement of its own: a `dns` target for
    /// every pod of the namespace.
    AllowDns(Spanned<Target>),
    /// `@KEY VALUE`: metadata for the next intent.
    Annotation(Metadata),
    /// `meta KEY = VALUE`: metadata for the rest of the file.
    Meta(Metadata),
    /// `ENDPOINT -> TARGET, ...`
    Intent(Intent),
    /// `expect ENDPOINT -> TARGET allowed|denied`: the user's own test.
    /// Boxed, like `Expose`: both are rare and twice the size of an intent,
    /// which every statement would otherwise take.
    Expect(Box<Expectation>),
    /// `expose TARGET to ENDPOINT, ...`: the namespace's consent to intents from elsewhere.
    Expose(Box<Exposure>),
}

/// `expose TARGET[:PORTS] to ENDPOINT, ENDPOINT, ...`
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    /// Pods of the current namespace, and the ports opened on them.
    pub target: Spanned<Target>,
    /// Who may be given access by intents written elsewhere.
    pub callers: Vec<Spanned<Endpoint>>,
}

/// `expect SOURCE -> TARGET allowed|denied`
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Who connects.
    pub source: Spanned<Endpoint>,
    /// To whom, on which ports.
    pub target: Spanned<Target>,
    /// `allowed` (true) or `denied` (false).
    pub allowed: bool,
}

/// The directions a namespace enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Isolation {
    /// Ingress and egress (the default).
    #[default]
    Both,
    /// Ingress only.
    Ingress,
    /// Egress only.
    Egress,
    /// Neither: the namespace gets no policies.
    None,
}

impl Isolation {
    /// Whether ingress is enforced.
    pub fn ingress(self) -> bool {
        matches!(self, Isolation::Both | Isolation::Ingress)
    }
    /// Whether egress is enforced.
    pub fn egress(self) -> bool {
        matches!(self, Isolation::Both | Isolation::Egress)
    }
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Both => "both",
            Isolation::Ingress => "ingress",
            Isolation::Egress => "egress",
            Isolation::None => "none",
        }
    }
}

/// A key and value of metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The key as written (`owner`, `k8s.example.com/projectId`).
    pub key: Spanned<String>,
    /// The value, unquoted.
    pub value: Spanned<String>,
}

/// A namespace or workload name, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The text, without quotes.
    pub text: String,
    /// Whether it was written in double quotes (how keywords are used as names).
    pub quoted: bool,
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `SOURCE -> TARGET, TARGET, ...`
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// Who opens connections.
    pub source: Spanned<Endpoint>,
    /// To whom, on which ports.
    pub targets: Vec<Spanned<Target>>,
}

/// One target of an intent.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The peer.
    pub endpoint: Spanned<Endpoint>,
    /// Ports; empty means every port.
    pub ports: Vec<Spanned<Port>>,
}

/// An endpoint as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// `NAME`: a workload of the current namespace, or a global external.
    Name(Name),
    /// `NS/NAME`, `NS/*`, `NS/[SELECTOR]`
    Qualified {
        /// The namespace.
        namespace: Spanned<Name>,
        /// The pods in it.
        pods: Pods,
    },
    /// `*`
    AllPods,
    /// `[SELECTOR]`
    PodSelector(Selector),
    /// `{SELECTOR}/...`
    Namespaces {
        /// Which namespaces, by label.
        namespaces: Selector,
        /// The pods in them.
        pods: Pods,
    },
    /// `cluster`
    Cluster,
    /// `world`
    World,
    /// `internet`
    Internet,
    /// `dns` or `allow dns`
    Dns,
    /// An IPv4 CIDR literal, as written.
    Cidr(String),
    /// An IPv6 literal, which the language only accepts through `external`.
    Ipv6Literal(String),
}

/// The pod part of a qualified endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Pods {
    /// A workload name.
    Name(Spanned<Name>),
    /// `*`
    All,
    /// `[SELECTOR]`
    Selector(Selector),
}

/// A label selector: every term must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector {
    /// The terms.
    pub terms: Vec<Spanned<Term>>,
}

/// One selector term.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// `key=value`
    Equal(Spanned<String>, Spanned<String>),
    /// `key!=value`
    NotEqual(Spanned<String>, Spanned<String>),
    /// `key in (a, b)`
    In(Spanned<String>, Vec<Spanned<String>>),
    /// `key notin (a, b)`
    NotIn(Spanned<String>, Vec<Spanned<String>>),
    /// `key`
    Exists(Spanned<String>),
    /// `!key`
    NotExists(Spanned<String>),
}

impl Term {
    /// The label key the term is about.
    pub fn key(&self) -> &Spanned<String> {
        match self {
            Term::Equal(k, _) | Term::NotEqual(k, _) | Term::In(k, _) | Term::NotIn(k, _) | Term::Exists(k) | Term::NotExists(k) => k,
        }
    }
}

/// A port as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// Number, range or name.
    pub value: PortValue,
    /// The protocol as written (`udp`), if any.
    pub protocol: Option<Spanned<String>>,
}

/// The port part of a [`Port`].
#[derive(Debug, Clone, PartialEq)]
pub enum PortValue {
    /// `8080` (saturated, so out-of-range numbers stay visible to the checker)
    Number(u32),
    /// `8000-8100`
    Range(u32, u32),
    /// `http`
    Named(String),
}
