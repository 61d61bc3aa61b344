//! Why a connection is allowed or denied, in sentences: per side, whether
//! the pod is isolated and by which policies, which rule allowed the flow
//! (and, for netpolc's output, the `.np` line behind it), or, for a denial,
//! the rules that almost matched.

use crate::evaluate::{self, Cluster, Connection, Direction, Endpoint, SideVerdict};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::fmt::Write as _;

/// The annotation keys netpolc writes for provenance, under its prefix.
const SOURCE: &str = "source";
const INTENT: &str = "intent";

/// Explains one connection in plain text (several lines, ending with a newline).
pub fn explain(policies: &[NetworkPolicy], cluster: &Cluster, connection: &Connection, prefix: &str) -> String {
    let verdict = evaluate::evaluate(policies, cluster, connection);
    let mut out = String::new();
    let what = cluster.describe_connection(connection);
    if verdict.allowed {
        let _ = writeln!(out, "ALLOWED  {what}");
    } else {
        let sides: Vec<&str> = [(&verdict.egress, "egress"), (&verdict.ingress, "ingress")]
            .iter()
            .filter(|(v, _)| !v.permits())
            .map(|(_, s)| *s)
            .collect();
        let _ = writeln!(out, "DENIED   {what}  (by the {} side)", sides.join(" and the "));
    }
    for (direction, verdict) in [(Direction::Egress, &verdict.egress), (Direction::Ingress, &verdict.ingress)] {
        let (endpoint, role) = match direction {
            Direction::Egress => (&connection.source, "source"),
            Direction::Ingress => (&connection.destination, "destination"),
        };
        let name = cluster.endpoint_name(endpoint);
        let _ = writeln!(out, "\n{} of {name}:", direction.as_str());
        match verdict {
            SideVerdict::NotAPod => {
                let _ = writeln!(
                    out,
                    "  the {role} is an address outside the cluster: no policy applies on this side"
                );
            }
            SideVerdict::UnknownPod(_) => {
                let _ = writeln!(out, "  the {role} is not a pod of the model");
            }
            SideVerdict::NotIsolated => {
                let _ = writeln!(
                    out,
                    "  not isolated: no policy selects {name} for {}, so everything is allowed",
                    direction.as_str()
                );
            }
            SideVerdict::Allowed(rules) => {
                let _ = writeln!(
                    out,
                    "  isolated by {}",
                    isolating(policies, cluster, endpoint, direction).join(", ")
                );
                for rule in rules {
                    let _ = writeln!(
                        out,
                        "  allowed by {}/{} {}",
                        rule.namespace,
                        rule.name,
                        rule_label(direction, rule.rule)
                    );
                    provenance(&mut out, &policies[rule.policy], prefix);
                }
            }
            SideVerdict::Denied { isolated_by } => {
                let names: Vec<String> = isolated_by.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect();
                let _ = writeln!(out, "  isolated by {}", names.join(", "));
                let _ = writeln!(out, "  denied: no rule of these policies allows this connection");
                let misses = near_misses(policies, cluster, connection, direction, isolated_by.iter().map(|p| p.policy));
                if !misses.is_empty() {
                    let _ = writeln!(out, "  nearest rules:");
                    for miss in misses.iter().take(5) {
                        let _ = writeln!(out, "    - {miss}");
                    }
                }
            }
        }
    }
    out
}

fn rule_label(direction: Direction, rule: usize) -> String {
    format!("(spec.{}[{rule}])", direction.field())
}

fn isolating(policies: &[NetworkPolicy], cluster: &Cluster, endpoint: &Endpoint, direction: Direction) -> Vec<String> {
    let Some(pod) = cluster.endpoint_pod(endpoint) else {
        return Vec::new();
    };
    policies
        .iter()
        .filter(|p| evaluate::policy_isolates(p, pod, direction))
        .map(|p| format!("{}/{}", evaluate::policy_namespace(p), evaluate::policy_name(p)))
        .collect()
}

fn provenance(out: &mut String, policy: &NetworkPolicy, prefix: &str) {
    let annotations = policy.metadata.annotations.as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(&format!("{prefix}/{key}")));
    if let Some(source) = get(SOURCE) {
        let intents = get(INTENT).map(|i| i.replace('\n', "; ")).unwrap_or_default();
        if intents.is_empty() {
            let _ = writeln!(out, "    from {source}");
        } else {
            let _ = writeln!(out, "    from {source}: {intents}");
        }
    }
}

/// Rules of the isolating policies where either the peer or the port matched.
fn near_misses(
    policies: &[NetworkPolicy],
    cluster: &Cluster,
    connection: &Connection,
    direction: Direction,
    isolating: impl Iterator<Item = usize>,
) -> Vec<String> {
    let (peer_endpoint, destination) = match direction {
        Direction::Egress => (&connection.destination, cluster.endpoint_pod(&connection.destination)),
        Direction::Ingress => (&connection.source, cluster.endpoint_pod(&connection.destination)),
    };
    let mut out = Vec::new();
    for index in isolating {
        let policy = &policies[index];
        let namespace = evaluate::policy_namespace(policy);
        let rules = evaluate::rules(policy, direction);
        for (i, (peers, ports)) in rules.into_iter().enumerate() {
            let peer_ok = evaluate::peers_match(peers, namespace, cluster, peer_endpoint);
            let port_ok = evaluate::ports_match(ports, destination, connection.port, connection.protocol);
            let rule = format!("{namespace}/{} {}", evaluate::policy_name(policy), rule_label(direction, i));
            if peer_ok && !port_ok {
                out.push(format!("{rule} allows this peer, but only on {}", describe_ports(ports)));
            } else if port_ok && !peer_ok {
                let side = if direction == Direction::Egress { "to" } else { "from" };
                out.push(format!(
                    "{rule} allows this port, but only {side} {}",
                    describe_peers(peers, namespace)
                ));
            }
        }
    }
    out
}

fn describe_ports(ports: Option<&[NetworkPolicyPort]>) -> String {
    let list: Vec<String> = ports
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            match (&p.port, p.end_port) {
                (Some(IntOrString::Int(a)), Some(b)) => format!("{a}-{b}/{protocol}"),
                (Some(IntOrString::Int(a)), None) => format!("{a}/{protocol}"),
                (Some(IntOrString::String(name)), _) => format!("{name}/{protocol}"),
                (None, _) => format!("any port/{protocol}"),
            }
        })
        .collect();
    if list.is_empty() { "every port".into() } else { list.join(", ") }
}

fn describe_selector(selector: &LabelSelector) -> String {
    let mut terms: Vec<String> = selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default().join(", ");
        terms.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        });
    }
    if terms.is_empty() { "all".into() } else { terms.join(", ") }
}

fn describe_peers(peers: Option<&[NetworkPolicyPeer]>, namespace: &str) -> String {
    let list: Vec<String> = peers
        .unwrap_or_default()
        .iter()
        .map(|peer| {
            if let Some(block) = &peer.ip_block {
                let except = block.except.as_deref().unwrap_or_default();
                return if except.is_empty() {
                    block.cidr.clone()
                } else {
                    format!("{} except {}", block.cidr, except.join(", "))
                };
            }
            let pods = peer.pod_selector.as_ref().map(describe_selector).unwrap_or_else(|| "all".into());
            let pods = if pods == "all" {
                "all pods".to_string()
            } else {
                format!("pods [{pods}]")
            };
            match &peer.namespace_selector {
                None => format!("{pods} of namespace {namespace}"),
                Some(sel) => match sel.match_labels.as_ref().and_then(|m| m.get(evaluate::NAMESPACE_NAME_LABEL)) {
                    Some(ns) if sel.match_labels.as_ref().is_some_and(|m| m.len() == 1) && sel.match_expressions.is_none() => {
                        format!("{pods} of namespace {ns}")
                    }
                    _ => format!("{pods} of namespaces [{}]", describe_selector(sel)),
                },
            }
        })
        .collect();
    if list.is_empty() { "everywhere".into() } else { list.join(" or ") }
}

/// The connections `netpolc explain SRC DST` asks about, resolved with the
/// intents' own names: SRC and DST are endpoints in the language's syntax
/// (`frontend/web-app`, `world`, `backend/[tier=db]`), DST optionally with
/// ports. They are resolved against the declarations of `sources` (pass an
/// empty set for policies that netpolc did not write), and a model is
/// synthesised around them and the policies. On a bad endpoint, the
/// compilation with its diagnostics is returned.
pub fn resolve(
    sources: &crate::Sources,
    config: &crate::Config,
    policies: &[NetworkPolicy],
    src: &str,
    dst: &str,
) -> Result<(crate::model::Model, Vec<Connection>), Box<crate::Compilation>> {
    let namespace = [src, dst]
        .iter()
        .find_map(|e| {
            e.split_once('/')
                .map(|(ns, _)| ns)
                .filter(|ns| !ns.starts_with(['{', '[']) && !ns.contains('.'))
        })
        .unwrap_or(evaluate::DEFAULT_NAMESPACE);
    let mut all = sources.clone();
    let query = all.add("<query>", format!("namespace {namespace}\nexpect {src} -> {dst} allowed\n"));
    let compiled = crate::compile(all, Vec::new(), config);
    // The query is an `expect` statement; whether it holds is what we explain, not an error.
    let in_query = |d: &crate::Diagnostic| {
        d.span().file == query && d.severity() == crate::Severity::Error && d.code != crate::diagnostics::Code::ExpectationFailed
    };
    let Some(expectation) = compiled.program.expectations.iter().find(|e| e.span.file == query) else {
        return Err(Box::new(compiled));
    };
    if compiled.diagnostics.iter().any(in_query) {
        return Err(Box::new(compiled));
    }
    let mut model = crate::model::synthesize(&compiled.program, config);
    model.probe_policies(policies);
    // A documentation address reads better than `0.0.0.1` when any address will do.
    let preferred: std::net::IpAddr = std::net::Ipv4Addr::new(198, 51, 100, 7).into();
    let pick = |peer: &crate::ir::Peer| {
        let members = model.members(peer);
        members.iter().find(|e| **e == Endpoint::Ip(preferred)).or(members.first()).cloned()
    };
    let (Some(source), Some(destination)) = (pick(&expectation.source), pick(&expectation.target)) else {
        return Err(Box::new(compiled));
    };
    let destination_pod = model.cluster.endpoint_pod(&destination);
    let connections = model
        .ports
        .iter()
        .filter(|(port, protocol)| {
            expectation.ports.is_all() || crate::model::ports_contain(&expectation.ports, destination_pod, *port, *protocol)
        })
        .map(|&(port, protocol)| Connection::new(source, destination, port, protocol))
        .collect();
    Ok((model, connections))
}

/// The connections `netpolc explain SRC DST --cluster FILE` asks about: SRC
/// and DST are pods (`NAMESPACE/POD`) or IP addresses (`[2001:db8::1]` with
/// a port), DST optionally with `:PORT[/PROTO]`; without a port, every port
/// the policies name is tried.
pub fn resolve_in_cluster(cluster: &Cluster, policies: &[NetworkPolicy], src: &str, dst: &str) -> Result<Vec<Connection>, String> {
    let endpoint = |text: &str| -> Result<Endpoint, String> {
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse() {
            return Ok(Endpoint::Ip(ip));
        }
        let (ns, pod) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is neither NAMESPACE/POD nor an IP address"))?;
        cluster
            .pod_index(ns, pod)
            .map(Endpoint::Pod)
            .ok_or_else(|| format!("there is no pod `{ns}/{pod}` in the cluster model"))
    };
    let (dst_text, ports) = split_port(dst)?;
    let (source, destination) = (endpoint(src)?, endpoint(dst_text)?);
    let ports = match ports {
        Some(p) => vec![p],
        None => {
            let mut probe = crate::model::Model::default();
            probe.probe_policies(policies);
            probe.ports
        }
    };
    Ok(ports
        .into_iter()
        .map(|(port, protocol)| Connection::new(source, destination, port, protocol))
        .collect())
}

/// `HOST[:PORT[/PROTO]]`, with `[v6]:PORT` for IPv6 addresses.
type HostPort<'t> = (&'t str, Option<(u16, crate::ir::Protocol)>);

fn split_port(text: &str) -> Result<HostPort<'_>, String> {
    let (host, rest) = if let Some(end) = text.find(']') {
        (&text[..=end], text[end + 1..].strip_prefix(':'))
    } else if text.matches(':').count() > 1 {
        (text, None)
    } else {
        match text.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (text, None),
        }
    };
    let Some(rest) = rest else { return Ok((host, None)) };
    let (port, protocol) = rest.split_once('/').unwrap_or((rest, "tcp"));
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("`{port}` is not a port number from 1 to 65535"))?;
    let protocol = protocol.parse().map_err(|e: crate::ir::ParseProtocolError| e.to_string())?;
    Ok((host, Some((port, protocol))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Protocol;

    fn shop() -> (Vec<NetworkPolicy>, Cluster) {
        let text = std::fs::read_to_string("examples/shop.np").expect("shop");
        let out = crate::compile_str("shop.np", &text);
        let model = crate::model::synthesize(&out.program, &crate::Config::default());
        (out.policies, model.cluster)
    }

    fn conn(c: &Cluster, src: &str, dst: &str, port: u16) -> Connection {
        let pod = |q: &str| {
            let (ns, name) = q.split_once('/').expect("ns/name");
            Endpoint::Pod(c.pod_index(ns, name).unwrap_or_else(|| panic!("{q}")))
        };
        Connection::new(pod(src), pod(dst), port, Protocol::Tcp)
    }

    #[test]
    fn an_allowed_flow_names_both_rules_and_the_intent() {
        let (policies, cluster) = shop();
        let text = explain(
            &policies,
            &cluster,
            &conn(&cluster, "frontend/web", "backend/catalog", 8080),
            "netpolc.io",
        );
        assert!(text.starts_with("ALLOWED  frontend/web -> backend/catalog:8080/TCP"), "{text}");
        assert!(
            text.contains("allowed by frontend/web-to-backend.catalog (spec.egress[0])"),
            "{text}"
        );
        assert!(
            text.contains("allowed by backend/catalog-from-frontend.web (spec.ingress[0])"),
            "{text}"
        );
        assert!(text.contains("from shop.np:12: web -> backend/catalog:8080"), "{text}");
        assert!(text.contains("isolated by frontend/default-deny"), "{text}");
    }

    #[test]
    fn a_denial_names_the_side_and_the_near_misses() {
        let (policies, cluster) = shop();
        let text = explain(
            &policies,
            &cluster,
            &conn(&cluster, "frontend/web", "backend/catalog", 8443),
            "netpolc.io",
        );
        assert!(
            text.starts_with("DENIED   frontend/web -> backend/catalog:8443/TCP  (by the egress and the ingress side)"),
            "{text}"
        );
        assert!(
            text.contains("frontend/web-to-backend.catalog (spec.egress[0]) allows this peer, but only on 8080/TCP"),
            "{text}"
        );
        let text = explain(
            &policies,
            &cluster,
            &conn(&cluster, "backend/cart", "backend/catalog", 8080),
            "netpolc.io",
        );
        assert!(
            text.contains("allows this port, but only from pods [app.kubernetes.io/name=storefront] of namespace frontend"),
            "{text}"
        );
    }
}
