//! Settings of a compilation. Defaults follow LANGUAGE.md; a project file
//! (`netpolc.toml`, read by [`crate::project`]) changes them and adds the
//! organisation's rules (docs/configuration.md).

use crate::cidr::Cidr;
use crate::diagnostics::{Code, Diagnostic};
use crate::governance::Date;
use crate::ir::{LabelSelector, PortNumber, PortSpec, Protocol};
use std::collections::BTreeSet;

/// Where cluster DNS lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsLocation {
    /// Pods in a namespace (default: `kube-system`, `k8s-app=kube-dns`).
    Pods {
        /// The namespace.
        namespace: String,
        /// The DNS pods.
        pods: LabelSelector,
    },
    /// An IP block, such as NodeLocal DNSCache's `169.254.20.10/32`.
    IpBlock(String),
}

/// Settings of a compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The label key that an undeclared workload `NAME` selects on (`app`).
    pub workload_label: String,
    /// The prefix of generated annotations (`netpolc.io`).
    pub annotation_prefix: String,
    /// Where `dns` points.
    pub dns: DnsLocation,
    /// The ports of `dns` when an intent gives none.
    pub dns_ports: Vec<PortSpec>,
    /// Warnings silenced for the whole project (`[lints] allow = ["W0101"]`
    /// in `netpolc.toml`); a line silences its own with `# netpolc: allow W0101`.
    pub silenced: BTreeSet<Code>,
    /// Whether only declared namespaces get policies (`[output] namespaces = "declared"`):
    /// namespaces that are only referenced are then left alone, as if `isolate none`.
    pub declared_only: bool,
    /// The organisation's rules, checked by [`crate::governance`]; all off by default.
    pub rules: Rules,
    /// Today, for `@expires`. `None` (the library default) checks the dates'
    /// form only; the command line sets it from the clock or `NETPOLC_TODAY`.
    pub today: Option<Date>,
    /// The project file these settings come from, and the problems found in
    /// it; `compile` shows it like an input file.
    pub file: Option<ProjectFile>,
}

/// The organisation's rules from `netpolc.toml` (docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Metadata keys every intent and `allow dns` must carry, as written (`owner`).
    pub required_metadata: Vec<String>,
    /// Patterns that whole metadata values must match, by key as written.
    pub metadata_patterns: Vec<MetadataPattern>,
    /// Where IP blocks may point; `None`: anywhere.
    pub ip_blocks: Option<IpBlockRule>,
    /// Whether an intent into another namespace needs that namespace's `expose`.
    pub consent: bool,
    /// Ports no intent may allow.
    pub forbidden_ports: Vec<PortSpec>,
    /// The most ports one range (or a target without ports) may span.
    pub max_port_range: Option<u32>,
    /// How many days before an `@expires` date its intent is warned about.
    pub expiry_warn_days: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            required_metadata: Vec::new(),
            metadata_patterns: Vec::new(),
            ip_blocks: None,
            consent: false,
            forbidden_ports: Vec::new(),
            max_port_range: None,
            expiry_warn_days: 14,
        }
    }
}

/// `[metadata.patterns] KEY = "REGEX"`.
#[derive(Debug, Clone)]
pub struct MetadataPattern {
    /// The metadata key as written (`ticket`).
    pub key: String,
    /// The pattern as written.
    pub pattern: String,
    /// The pattern, anchored to match whole values.
    pub regex: regex::Regex,
}

impl PartialEq for MetadataPattern {
    fn eq(&self, other: &Self) -> bool {
        (&self.key, &self.pattern) == (&other.key, &other.pattern)
    }
}

impl Eq for MetadataPattern {}

/// `[ip_blocks]`: IP blocks must lie inside `allowed`; `world` and
/// `internet` may also face the pods of the namespaces listed for them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpBlockRule {
    /// Blocks that intents may name (and any block inside them).
    pub allowed: Vec<Cidr>,
    /// Namespaces whose pods may face `world`.
    pub world: Vec<String>,
    /// Namespaces whose pods may face `internet`.
    pub internet: Vec<String>,
}

/// A project file as read: shown by the one renderer like an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// The path to show in diagnostics.
    pub path: String,
    /// The text.
    pub text: String,
    /// Problems found in it; their spans point into `text` (file index 0
    /// until [`crate::project::attach`] adds the file to the run's sources).
    pub diagnostics: Vec<Diagnostic>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workload_label: "app".into(),
            annotation_prefix: "netpolc.io".into(),
            dns: DnsLocation::Pods {
                namespace: "kube-system".into(),
                pods: LabelSelector::label("k8s-app", "kube-dns"),
            },
            dns_ports: vec![
                PortSpec {
                    protocol: Protocol::Tcp,
                    port: PortNumber::Single(53),
                },
                PortSpec {
                    protocol: Protocol::Udp,
                    port: PortNumber::Single(53),
                },
            ],
            silenced: BTreeSet::new(),
            declared_only: false,
            rules: Rules::default(),
            today: None,
            file: None,
        }
    }
}
