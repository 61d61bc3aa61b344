//! The connectivity delta between two versions of a policy set: which flows
//! a change adds and removes, grouped by source, with the intents behind
//! them. Names, order and annotations do not count: only what is allowed.

use crate::evaluate::{self, Connection, Endpoint, SideVerdict};
use crate::ir::Program;
use crate::model::{self, Model};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One version: its checked intents (empty for YAML-only input) and policies.
pub struct Version<'a> {
    /// The intents, when the version was compiled from `.np` files.
    pub program: &'a Program,
    /// Every policy of the version.
    pub policies: &'a [NetworkPolicy],
}

/// Flows between one source and one destination that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `namespace/pod` or an address.
    pub source: String,
    /// `namespace/pod` or an address.
    pub destination: String,
    /// The ports, as `8080/TCP`.
    pub ports: Vec<String>,
    /// Why: the rules (and, for netpolc output, the `.np` lines) that allow
    /// the flow in the version where it is allowed, or the isolation that
    /// changed.
    pub because: Vec<String>,
}

/// The whole delta.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// Flows the new version allows and the old one did not.
    pub added: Vec<Change>,
    /// Flows the old version allowed and the new one does not.
    pub removed: Vec<Change>,
}

impl Delta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// Computes the delta on a model built from both versions' intents and
/// policies, with the reachability engine (`reach`): endpoints in classes,
/// ports in atoms, both versions over the same ones.
pub fn diff(old: &Version, new: &Version, config: &crate::Config, prefix: &str) -> Delta {
    let mut both = old.program.clone();
    both.flows.extend(new.program.flows.iter().cloned());
    both.expectations.extend(new.program.expectations.iter().cloned());
    for (ns, info) in &new.program.namespaces {
        both.namespaces.entry(ns.clone()).or_insert_with(|| info.clone());
    }
    let mut model = model::synthesize(&both, config);
    model.probe_policies(old.policies);
    model.probe_policies(new.policies);
    add_policy_pods(&mut model, old.policies.iter().chain(new.policies));

    // One engine, both versions over the same classes and port atoms: only
    // the classes whose rows differ are compared, whole port ranges at once.
    let versions = crate::reach::Reachability::compute_versions(&[old.policies, new.policies], &model.cluster, &model.addresses);
    let mut delta = Delta::default();
    let [a, b] = versions.as_slice() else { return delta };
    for change in a.diff(b).unwrap_or_default() {
        for (ranges, policies, list, engine) in [
            (&change.added, new.policies, &mut delta.added, b),
            (&change.removed, old.policies, &mut delta.removed, a),
        ] {
            let Some(first_range) = ranges.first() else { continue };
            let ports: Vec<String> = ranges
                .iter()
                .map(|r| {
                    if r.start == r.end {
                        format!("{}/{}", r.start, r.protocol)
                    } else {
                        format!("{}-{}/{}", r.start, r.end, r.protocol)
                    }
                })
                .collect();
            let sources: Vec<Endpoint> = engine.members(change.src).collect();
            let destinations: Vec<Endpoint> = engine.members(change.dst).collect();
            for source in &sources {
                for destination in &destinations {
                    if source == destination || matches!((source, destination), (Endpoint::Ip(_), Endpoint::Ip(_))) {
                        continue;
                    }
                    let first = Connection::new(*source, *destination, first_range.start, first_range.protocol);
                    list.push(Change {
                        source: model.cluster.endpoint_name(source),
                        destination: model.cluster.endpoint_name(destination),
                        ports: ports.clone(),
                        because: reasons(policies, &model, &first, prefix),
                    });
                }
            }
        }
    }
    delta
        .added
        .sort_by(|x, y| (&x.source, &x.destination).cmp(&(&y.source, &y.destination)));
    delta
        .removed
        .sort_by(|x, y| (&x.source, &x.destination).cmp(&(&y.source, &y.destination)));
    delta
}

/// Pods for the selectors of policies that netpolc did not write, so that
/// a YAML-only diff has endpoints to compare.
fn add_policy_pods<'p>(model: &mut Model, policies: impl Iterator<Item = &'p NetworkPolicy>) {
    for policy in policies {
        let ns = evaluate::policy_namespace(policy).to_string();
        let selector = policy.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
        let labels: BTreeMap<String, String> = selector.and_then(|s| s.match_labels.clone()).unwrap_or_default();
        let exists = model.cluster.pods.iter().any(|p| p.namespace == ns && p.labels == labels);
        if !exists && selector.is_some_and(|s| s.match_expressions.is_none()) {
            let name = labels.values().next().cloned().unwrap_or_else(|| "any".into());
            let mut unique = name.clone();
            let mut n = 2;
            while model.cluster.pod_index(&ns, &unique).is_some() {
                unique = format!("{name}-{n}");
                n += 1;
            }
            let mut pod = evaluate::Pod::new(&ns, unique);
            pod.labels = labels;
            pod.ports = model.cluster.pods.first().map(|p| p.ports.clone()).unwrap_or_default();
            model.cluster.add_pod(pod);
        }
    }
}

/// What allows a connection in a version: its rules with their provenance.
fn reasons(policies: &[NetworkPolicy], model: &Model, connection: &Connection, prefix: &str) -> Vec<String> {
    let verdict = evaluate::evaluate(policies, &model.cluster, connection);
    let mut out = Vec::new();
    for (side, direction) in [(&verdict.egress, "egress"), (&verdict.ingress, "ingress")] {
        match side {
            SideVerdict::NotIsolated => out.push(format!("{direction}: not isolated")),
            SideVerdict::Allowed(rules) => {
                for rule in rules {
                    let policy = &policies[rule.policy];
                    let annotations = policy.metadata.annotations.as_ref();
                    let get = |key: &str| annotations.and_then(|a| a.get(&format!("{prefix}/{key}")));
                    let place = format!("{}/{}", rule.namespace, rule.name);
                    out.push(match (get("source"), get("intent")) {
                        (Some(source), Some(intent)) => format!("{direction}: {place} ({source}: {})", intent.replace('\n', "; ")),
                        _ => format!("{direction}: {place}"),
                    });
                }
            }
            SideVerdict::NotAPod | SideVerdict::UnknownPod(_) | SideVerdict::Denied { .. } => {}
        }
    }
    out
}

/// The delta as text for a terminal, grouped by source (namespace/workload).
pub fn text(delta: &Delta) -> String {
    let mut out = String::new();
    if delta.is_empty() {
        out.push_str("no connectivity change\n");
        return out;
    }
    let mut by_source: BTreeMap<&str, Vec<(&str, &Change)>> = BTreeMap::new();
    for (sign, list) in [("+", &delta.added), ("-", &delta.removed)] {
        for c in list {
            by_source.entry(c.source.as_str()).or_default().push((sign, c));
        }
    }
    for (source, changes) in by_source {
        let _ = writeln!(out, "{source}");
        for (sign, c) in changes {
            let _ = writeln!(out, "  {sign} -> {}  {}", c.destination, c.ports.join(", "));
            for why in &c.because {
                let _ = writeln!(out, "      {why}");
            }
        }
    }
    let _ = writeln!(out, "\n{} added, {} removed", delta.added.len(), delta.removed.len());
    out
}

/// The delta as JSON (see `docs/analysis.md`).
pub fn json(delta: &Delta) -> String {
    let mut text = serde_json::to_string_pretty(delta).unwrap_or_default();
    text.push('\n');
    text
}

/// The delta as Markdown, for a pull-request comment.
pub fn markdown(delta: &Delta) -> String {
    let mut out = String::from("### netpolc: connectivity changes\n\n");
    if delta.is_empty() {
        out.push_str("No connectivity change.\n");
        return out;
    }
    let _ = writeln!(out, "**{} added, {} removed**\n", delta.added.len(), delta.removed.len());
    out.push_str("| | source | destination | ports | because |\n|---|---|---|---|---|\n");
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    for (sign, list) in [("➕", &delta.added), ("➖", &delta.removed)] {
        for c in list {
            let _ = writeln!(
                out,
                "| {sign} | `{}` | `{}` | {} | {} |",
                cell(&c.source),
                cell(&c.destination),
                cell(&c.ports.join(", ")),
                cell(&c.because.join("<br>"))
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(old: &str, new: &str) -> Delta {
        let (a, b) = (crate::compile_str("a.np", old), crate::compile_str("b.np", new));
        assert!(
            !a.has_errors() && !b.has_errors(),
            "{}{}",
            a.render_diagnostics(),
            b.render_diagnostics()
        );
        diff(
            &Version {
                program: &a.program,
                policies: &a.policies,
            },
            &Version {
                program: &b.program,
                policies: &b.policies,
            },
            &crate::Config::default(),
            "netpolc.io",
        )
    }

    #[test]
    fn adding_a_port_shows_one_added_flow_with_its_intent() {
        let d = delta(
            "namespace a\nallow dns\nweb -> api:8080\n",
            "namespace a\nallow dns\nweb -> api:(8080, 8443)\n",
        );
        assert_eq!(d.removed, vec![]);
        assert_eq!(d.added.len(), 1, "{d:?}");
        assert_eq!((d.added[0].source.as_str(), d.added[0].destination.as_str()), ("a/web", "a/api"));
        assert_eq!(d.added[0].ports, vec!["8443/TCP"]);
        assert!(
            d.added[0].because.iter().any(|b| b.contains("b.np:3: web -> api:(8080, 8443)")),
            "{d:?}"
        );
    }

    #[test]
    fn removing_an_intent_shows_removed_flows() {
        let d = delta(
            "namespace a\nallow dns\nweb -> api:8080\nweb -> db:5432\n",
            "namespace a\nallow dns\nweb -> api:8080\n",
        );
        assert_eq!(d.added, vec![]);
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].destination, "a/db");
    }

    #[test]
    fn reordering_and_renaming_change_nothing() {
        let old = "namespace a\nworkload web = app=web\nallow dns\nweb -> api:8080\nweb -> db:5432\n";
        let new = "namespace a\nworkload frontend = app=web\nallow dns\nfrontend -> db:5432\nfrontend -> api:8080\n";
        assert!(delta(old, new).is_empty());
    }

    #[test]
    fn dropping_isolation_adds_flows() {
        let d = delta("namespace a\nallow dns\nweb -> api:8080\n", "namespace a\nisolate none\n");
        assert!(!d.added.is_empty());
        assert!(d.added.iter().any(|c| c.because.iter().any(|b| b.contains("not isolated"))));
        let md = markdown(&d);
        assert!(md.starts_with("### netpolc: connectivity changes") && md.contains("| ➕ |"), "{md}");
    }
}
