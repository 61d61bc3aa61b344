//! Settings of a compilation. Defaults follow LANGUAGE.md; a project file
//! (`netpolc.toml`) will be able to change them.

use crate::diagnostics::Code;
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
        }
    }
}
