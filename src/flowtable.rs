//! Flow tables: small cluster descriptions with the connections that must be
//! allowed or denied (see `docs/flow-tables.md`).
//!
//! ```text
//! namespace NAME [KEY=VALUE ...]
//! pod NS/NAME [KEY=VALUE ...] [ip=ADDRESS] [ports NAME=PORT/PROTO ...]
//! allow SRC -> DST:PORT[/PROTO]
//! deny  SRC -> DST:PORT[/PROTO]
//! ```
//!
//! [`parse`] builds the [`Cluster`] and the list of [`Expectation`]s;
//! [`check`] evaluates every expectation against a set of policies.
//!
//! Details the format leaves open, as implemented here:
//! - `#` starts a comment anywhere on a line.
//! - A `namespace` line may come after a `pod` line that mentioned the
//!   namespace (its labels are added), but a namespace or a pod may only be
//!   declared once, and two pods cannot share an IP.
//! - In `pod`, `ip=` may appear among the labels (so `ip` is not usable as a
//!   label key); every token after `ports` is a named port, whose `/PROTO`
//!   defaults to `tcp` as for `allow`/`deny`.
//! - Pods used by `allow`/`deny` must be declared on an earlier line.
//! - The port of `DST:PORT` is what follows the last `:`, so
//!   `2001:db8::1:443` is `2001:db8::1` port 443; `[2001:db8::1]:443` is
//!   also accepted.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::NetworkPolicy;

use crate::evaluate::{Cluster, Connection, Endpoint, Labels, NAMESPACE_NAME_LABEL, NamedPort, Pod, Protocol, evaluate};

/// A parsed flow table: the cluster it describes and what must hold in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowTable {
    /// The namespaces and pods declared by the table.
    pub cluster: Cluster,
    /// The `allow` / `deny` lines, in order.
    pub expectations: Vec<Expectation>,
}

/// One `allow` or `deny` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// The 1-based line number.
    pub line: usize,
    /// The statement as written, without its comment.
    pub text: String,
    /// `true` for `allow`, `false` for `deny`.
    pub allowed: bool,
    /// The connection the line is about; its pods index
    /// [`FlowTable::cluster`].
    pub connection: Connection,
}

/// A syntax or reference error in a flow table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowTableError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FlowTableError {
    /// `line N: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for FlowTableError {}

/// Parses a flow table. The first error stops parsing.
pub fn parse(text: &str) -> Result<FlowTable, FlowTableError> {
    let mut parser = Parser::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        parser
            .statement(line, content)
            .map_err(|message| FlowTableError { line, message })?;
    }
    Ok(FlowTable {
        cluster: parser.cluster,
        expectations: parser.expectations,
    })
}

/// Evaluates every expectation of the table against the policies and returns
/// one message per expectation that does not hold (empty when all hold).
/// Each message gives the line, the statement, the verdict and each side's
/// reason.
pub fn check(table: &FlowTable, policies: &[NetworkPolicy]) -> Vec<String> {
    let cluster = &table.cluster;
    table
        .expectations
        .iter()
        .filter_map(|expectation| {
            let conn = &expectation.connection;
            let verdict = evaluate(policies, cluster, conn);
            (verdict.allowed != expectation.allowed).then(|| {
                format!(
                    "line {}: `{}` does not hold: the connection is {} \
                     (egress of {}: {}; ingress of {}: {})",
                    expectation.line,
                    expectation.text,
                    if verdict.allowed { "allowed" } else { "denied" },
                    cluster.endpoint_name(&conn.source),
                    verdict.egress,
                    cluster.endpoint_name(&conn.destination),
                    verdict.ingress,
                )
            })
        })
        .collect()
}

#[derive(Default)]
struct Parser {
    cluster: Cluster,
    expectations: Vec<Expectation>,
    /// Line of each explicit `namespace` declaration.
    namespace_lines: HashMap<String, usize>,
    /// Line of each `pod` declaration, by pod index.
    pod_lines: Vec<usize>,
    /// Which pod (index) holds each IP.
    ip_owners: HashMap<IpAddr, usize>,
}

impl Parser {
    fn statement(&mut self, line: usize, content: &str) -> Result<(), String> {
        let (keyword, rest) = match content.split_once(char::is_whitespace) {
            Some((keyword, rest)) => (keyword, rest.trim()),
            None => (content, ""),
        };
        match keyword {
            "namespace" => self.namespace(line, rest),
            "pod" => self.pod(line, rest),
            "allow" => self.expectation(line, content, rest, true),
            "deny" => self.expectation(line, content, rest, false),
            other => Err(format!("unknown statement `{other}` (expected namespace, pod, allow or deny)")),
        }
    }

    fn namespace(&mut self, line: usize, rest: &str) -> Result<(), String> {
        let mut tokens = rest.split_whitespace();
        let name = tokens.next().ok_or("`namespace` needs a name: namespace NAME [KEY=VALUE ...]")?;
        check_namespace_name(name)?;
        if let Some(first) = self.namespace_lines.get(name) {
            return Err(format!("namespace `{name}` is declared twice (first on line {first})"));
        }
        let mut labels = Labels::new();
        for token in tokens {
            add_label(&mut labels, token)?;
        }
        if let Some(value) = labels.get(NAMESPACE_NAME_LABEL)
            && value != name
        {
            return Err(format!("label `{NAMESPACE_NAME_LABEL}` is always the namespace's name (`{name}`)"));
        }
        self.cluster.add_namespace(name, labels);
        self.namespace_lines.insert(name.to_owned(), line);
        Ok(())
    }

    fn pod(&mut self, line: usize, rest: &str) -> Result<(), String> {
        let mut tokens = rest.split_whitespace();
        let reference = tokens
            .next()
            .ok_or("`pod` needs NAMESPACE/NAME: pod NS/NAME [KEY=VALUE ...] [ip=ADDRESS] [ports ...]")?;
        let (namespace, name) = parse_pod_reference(reference)?;
        if let Some(index) = self.cluster.pod_index(namespace, name) {
            let first = self.pod_lines.get(index).copied().unwrap_or_default();
            return Err(format!("pod `{reference}` is declared twice (first on line {first})"));
        }
        let mut pod = Pod::new(namespace, name);
        let mut in_ports = false;
        for token in tokens {
            if in_ports {
                add_named_port(&mut pod.ports, token)?;
            } else if token == "ports" {
                in_ports = true;
            } else if let Some(address) = token.strip_prefix("ip=") {
                if pod.ip.is_some() {
                    return Err("`ip=` is given twice".to_owned());
                }
                let ip = parse_ip(address)?;
                if let Some(owner) = self.ip_owners.get(&ip) {
                    let owner = self.cluster.endpoint_name(&Endpoint::Pod(*owner));
                    return Err(format!("IP {ip} is already the IP of pod `{owner}`"));
                }
                pod.ip = Some(ip);
            } else {
                add_label(&mut pod.labels, token)?;
            }
        }
        if in_ports && pod.ports.is_empty() {
            return Err("`ports` needs at least one NAME=PORT/PROTO".to_owned());
        }
        let ip = pod.ip;
        let index = self.cluster.add_pod(pod);
        self.pod_lines.push(line);
        if let Some(ip) = ip {
            self.ip_owners.insert(ip, index);
        }
        Ok(())
    }

    fn expectation(&mut self, line: usize, content: &str, rest: &str, allowed: bool) -> Result<(), String> {
        let usage = "expected SRC -> DST:PORT[/PROTO]";
        let (source, destination) = rest.split_once("->").ok_or(usage)?;
        let source = single_token(source, "source", usage)?;
        let destination = single_token(destination, "destination", usage)?;
        let source = self.endpoint(source)?;
        let (destination, port, protocol) = split_destination(destination)?;
        let destination = self.endpoint(destination)?;
        self.expectations.push(Expectation {
            line,
            text: content.to_owned(),
            allowed,
            connection: Connection::new(source, destination, port, protocol),
        });
        Ok(())
    }

    /// A declared pod (`NS/NAME`) or an IP address (brackets allowed).
    fn endpoint(&self, text: &str) -> Result<Endpoint, String> {
        if text.contains('/') {
            let (namespace, name) = parse_pod_reference(text)?;
            return self
                .cluster
                .pod_index(namespace, name)
                .map(Endpoint::Pod)
                .ok_or_else(|| format!("unknown pod `{text}` (declare it with a `pod` line before using it)"));
        }
        let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
        parse_ip(bare)
            .map(Endpoint::Ip)
            .map_err(|_| format!("`{text}` is neither a pod (NAMESPACE/NAME) nor an IP address"))
    }
}

/// The only token of `text`, or an error naming `what` is missing or
/// followed by extra text.
fn single_token<'a>(text: &'a str, what: &str, usage: &str) -> Result<&'a str, String> {
    let mut tokens = text.split_whitespace();
    match (tokens.next(), tokens.next()) {
        (Some(token), None) => Ok(token),
        (None, _) => Err(format!("missing {what}: {usage}")),
        (Some(_), Some(extra)) => Err(format!("unexpected `{extra}` after the {what}: {usage}")),
    }
}

/// Splits `DST:PORT[/PROTO]` into the destination text, port and protocol.
fn split_destination(text: &str) -> Result<(&str, u16, Protocol), String> {
    let (address, port_text) = if let Some(bracketed) = text.strip_prefix('[') {
        bracketed
            .split_once("]:")
            .ok_or_else(|| format!("expected [ADDRESS]:PORT, found `{text}`"))?
    } else {
        let Some((address, port_text)) = text.rsplit_once(':') else {
            return Err(format!("missing `:PORT` after the destination `{text}`"));
        };
        if !address.contains('/') && address.parse::<IpAddr>().is_err() && parse_ip(text).is_ok() {
            return Err(format!("missing `:PORT` after the IP address `{text}` (write [ADDRESS]:PORT)"));
        }
        (address, port_text)
    };
    let (port, protocol) = match port_text.split_once('/') {
        Some((port, protocol)) => (port, protocol.parse().map_err(|e| format!("{e}"))?),
        None => (port_text, Protocol::Tcp),
    };
    Ok((address, parse_port(port)?, protocol))
}

fn parse_port(text: &str) -> Result<u16, String> {
    let bad = || format!("bad port `{text}` (expected a number from 1 to 65535)");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(bad()),
    }
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| format!("bad IP address `{text}`"))
}

/// `NAME=PORT[/PROTO]`.
fn add_named_port(ports: &mut Vec<NamedPort>, token: &str) -> Result<(), String> {
    let (name, rest) = token
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PORT/PROTO after `ports`, found `{token}`"))?;
    if !crate::validate::validate_port_name(name).is_empty() {
        return Err(format!(
            "bad port name `{name}` (1-15 lowercase letters, digits and dashes, with a letter)"
        ));
    }
    if ports.iter().any(|p| p.name == name) {
        return Err(format!("port name `{name}` is given twice"));
    }
    let (port, protocol) = match rest.split_once('/') {
        Some((port, protocol)) => (port, protocol.parse().map_err(|e| format!("{e}"))?),
        None => (rest, Protocol::Tcp),
    };
    ports.push(NamedPort {
        name: name.to_owned(),
        port: parse_port(port)?,
        protocol,
    });
    Ok(())
}

/// `KEY=VALUE` (the value may be empty).
fn add_label(labels: &mut Labels, token: &str) -> Result<(), String> {
    let (key, value) = token
        .split_once('=')
        .ok_or_else(|| format!("expected a label KEY=VALUE, found `{token}`"))?;
    if key.is_empty() {
        return Err(format!("empty label key in `{token}`"));
    }
    if labels.insert(key.to_owned(), value.to_owned()).is_some() {
        return Err(format!("label `{key}` is given twice"));
    }
    Ok(())
}

/// `NS/NAME`, both valid Kubernetes names.
fn parse_pod_reference(text: &str) -> Result<(&str, &str), String> {
    let (namespace, name) = text
        .split_once('/')
        .ok_or_else(|| format!("expected a pod as NAMESPACE/NAME, found `{text}`"))?;
    check_namespace_name(namespace)?;
    let valid = !name.is_empty() && name.len() <= 253 && name.split('.').all(|label| is_dns_label(label, 253));
    if !valid {
        return Err(format!("bad pod name `{name}` (lowercase letters, digits, `-` and `.`)"));
    }
    Ok((namespace, name))
}

fn check_namespace_name(name: &str) -> Result<(), String> {
    if is_dns_label(name, 63) {
        Ok(())
    } else {
        Err(format!("bad namespace name `{name}` (up to 63 lowercase letters, digits and `-`)"))
    }
}

/// Lowercase letters, digits and `-`, starting and ending with a letter or a
/// digit, at most `max` characters.
fn is_dns_label(text: &str, max: usize) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => bytes.len() <= max && alnum(first) && alnum(last) && bytes.iter().all(|&b| alnum(b) || b == b'-'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
namespace frontend
namespace backend team=core
pod frontend/web app.kubernetes.io/name=web-app
pod backend/api app=user-api ports http=8080/tcp
pod kube-system/coredns k8s-app=kube-dns

allow frontend/web -> backend/api:8080
deny  frontend/web -> backend/api:8081
allow frontend/web -> kube-system/coredns:53/udp
deny  backend/api -> frontend/web:443
deny  8.8.8.8 -> backend/api:8080
";

    fn policy(yaml: &str) -> NetworkPolicy {
        let text = format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{yaml}");
        match serde_saphyr::from_str(&text) {
            Ok(policy) => policy,
            Err(e) => panic!("bad test YAML: {e}\n{text}"),
        }
    }

    fn example_policies() -> Vec<NetworkPolicy> {
        vec![
            policy(
                "metadata: {name: api-from-web, namespace: backend}
spec:
  podSelector: {matchLabels: {app: user-api}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: frontend}}
      podSelector: {matchLabels: {app.kubernetes.io/name: web-app}}
    ports: [{port: http}]
",
            ),
            policy("metadata: {name: deny-ingress, namespace: frontend}\nspec: {podSelector: {}}"),
        ]
    }

    fn err(text: &str) -> FlowTableError {
        match parse(text) {
            Ok(table) => panic!("expected an error, parsed {table:?}"),
            Err(e) => e,
        }
    }

    /// The error for `text` is on `line` and its message contains `needle`.
    fn assert_err(text: &str, line: usize, needle: &str) {
        let e = err(text);
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains(needle), "`{}` lacks `{needle}`", e.message);
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parses_the_documented_example() {
        let table = parse(EXAMPLE).unwrap();
        let c = &table.cluster;
        let names: Vec<&str> = c.namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["frontend", "backend", "kube-system"]);
        assert_eq!(
            c.namespace("backend").unwrap().labels,
            labels(&[(NAMESPACE_NAME_LABEL, "backend"), ("team", "core")])
        );
        assert_eq!(
            c.namespace("kube-system").unwrap().labels,
            labels(&[(NAMESPACE_NAME_LABEL, "kube-system")])
        );
        assert_eq!(c.pods.len(), 3);
        let api = &c.pods[1];
        assert_eq!((api.namespace.as_str(), api.name.as_str()), ("backend", "api"));
        assert_eq!(api.labels, labels(&[("app", "user-api")]));
        assert_eq!(
            api.ports,
            vec![NamedPort {
                name: "http".into(),
                port: 8080,
                protocol: Protocol::Tcp
            }]
        );
        assert_eq!(api.ip, None);
        assert_eq!(c.pods[0].labels, labels(&[("app.kubernetes.io/name", "web-app")]));

        let e = &table.expectations;
        assert_eq!(e.len(), 5);
        let (web, api, dns) = (Endpoint::Pod(0), Endpoint::Pod(1), Endpoint::Pod(2));
        assert_eq!(
            e[0],
            Expectation {
                line: 7,
                text: "allow frontend/web -> backend/api:8080".into(),
                allowed: true,
                connection: Connection::new(web, api, 8080, Protocol::Tcp),
            }
        );
        assert_eq!((e[1].line, e[1].allowed), (8, false));
        assert_eq!(e[1].connection, Connection::new(web, api, 8081, Protocol::Tcp));
        assert_eq!(e[2].connection, Connection::new(web, dns, 53, Protocol::Udp));
        assert_eq!(e[3].connection, Connection::new(api, web, 443, Protocol::Tcp));
        assert_eq!(
            e[4].connection,
            Connection::new(Endpoint::Ip("8.8.8.8".parse().unwrap()), api, 8080, Protocol::Tcp)
        );
        assert_eq!(e[4].text, "deny  8.8.8.8 -> backend/api:8080");
    }

    #[test]
    fn check_passes_when_all_expectations_hold() {
        let table = parse(EXAMPLE).unwrap();
        assert_eq!(check(&table, &example_policies()), Vec::<String>::new());
    }

    #[test]
    fn check_reports_each_failing_line_with_reasons() {
        let table = parse(EXAMPLE).unwrap();
        // Without policies, the three `deny` lines fail.
        let failures = check(&table, &[]);
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert_eq!(
            failures[0],
            "line 8: `deny  frontend/web -> backend/api:8081` does not hold: the connection is \
             allowed (egress of frontend/web: not isolated, allowed; ingress of backend/api: \
             not isolated, allowed)"
        );
        assert!(failures[1].starts_with("line 10: `deny  backend/api -> frontend/web:443`"));
        assert_eq!(
            failures[2],
            "line 11: `deny  8.8.8.8 -> backend/api:8080` does not hold: the connection is \
             allowed (egress of 8.8.8.8: not a pod, not evaluated; ingress of backend/api: \
             not isolated, allowed)"
        );

        // Only the frontend default-deny: line 10 now holds; web -> api:8081
        // and 8.8.8.8 -> api are still allowed.
        let policies = &example_policies()[1..];
        let failures = check(&table, policies);
        let lines: Vec<&str> = failures.iter().map(|f| f.split(':').next().unwrap_or_default()).collect();
        assert_eq!(lines, ["line 8", "line 11"]);

        // Denying a line that is allowed by a rule names the rule.
        let table = parse(&format!("{EXAMPLE}deny frontend/web -> backend/api:8080\n")).unwrap();
        let failures = check(&table, &example_policies());
        assert_eq!(
            failures,
            ["line 12: `deny frontend/web -> backend/api:8080` does not hold: the connection is \
              allowed (egress of frontend/web: not isolated, allowed; ingress of backend/api: \
              allowed by backend/api-from-web spec.ingress[0])"]
        );

        // An allow that is denied names the isolating policies.
        let table = parse(&format!("{EXAMPLE}allow backend/api -> frontend/web:80\n")).unwrap();
        let failures = check(&table, &example_policies());
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0].ends_with(
                "the connection is denied (egress of backend/api: not isolated, allowed; \
                 ingress of frontend/web: denied: isolated by frontend/deny-ingress and no \
                 rule matches)"
            ),
            "{}",
            failures[0]
        );
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let text = "# a table\r\n\r\n   \r\nnamespace a x=1 # trailing\r\npod a/p y= # empty value\r\n\
                    allow a/p -> a/p:80 # self\r\n";
        let table = parse(text).unwrap();
        assert_eq!(
            table.cluster.namespaces[0].labels,
            labels(&[(NAMESPACE_NAME_LABEL, "a"), ("x", "1")])
        );
        assert_eq!(table.cluster.pods[0].labels, labels(&[("y", "")]));
        assert_eq!(table.expectations.len(), 1);
        assert_eq!(table.expectations[0].line, 6);
        assert_eq!(table.expectations[0].text, "allow a/p -> a/p:80");
    }

    #[test]
    fn pod_ips_ports_and_protocols() {
        let text = "\
pod ns/a app=a ip=10.1.2.3 ports http=8080/tcp dns=53/udp s=9/SCTP plain=81
pod ns/b ip=2001:db8::5 tier=db
allow ns/a -> ns/b:5432/udp
allow ns/a -> 2001:db8::1:443/sctp
allow ns/a -> [2001:db8::1]:443
allow [::1] -> ns/a:1/TCP
allow 10.0.0.1->ns/a:65535
";
        let table = parse(text).unwrap();
        let c = &table.cluster;
        assert_eq!(c.pods[0].ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(c.pods[0].labels, labels(&[("app", "a")]));
        let ports: Vec<(&str, u16, Protocol)> = c.pods[0].ports.iter().map(|p| (p.name.as_str(), p.port, p.protocol)).collect();
        assert_eq!(
            ports,
            [
                ("http", 8080, Protocol::Tcp),
                ("dns", 53, Protocol::Udp),
                ("s", 9, Protocol::Sctp),
                ("plain", 81, Protocol::Tcp)
            ]
        );
        assert_eq!(c.pods[1].ip, Some("2001:db8::5".parse().unwrap()));
        assert_eq!(c.pods[1].labels, labels(&[("tier", "db")]));

        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let conns: Vec<Connection> = table.expectations.iter().map(|e| e.connection).collect();
        let (a, b) = (Endpoint::Pod(0), Endpoint::Pod(1));
        assert_eq!(
            conns,
            [
                Connection::new(a, b, 5432, Protocol::Udp),
                Connection::new(a, Endpoint::Ip(v6), 443, Protocol::Sctp),
                Connection::new(a, Endpoint::Ip(v6), 443, Protocol::Tcp),
                Connection::new(Endpoint::Ip("::1".parse().unwrap()), a, 1, Protocol::Tcp),
                Connection::new(Endpoint::Ip("10.0.0.1".parse().unwrap()), a, 65535, Protocol::Tcp),
            ]
        );
    }

    #[test]
    fn namespace_may_follow_the_pod_that_created_it() {
        let table = parse("pod shop/cart\nnamespace shop team=x\n").unwrap();
        assert_eq!(table.cluster.namespaces.len(), 1);
        assert_eq!(
            table.cluster.namespaces[0].labels,
            labels(&[(NAMESPACE_NAME_LABEL, "shop"), ("team", "x")])
        );
        // Restating the name label with the right value is fine.
        assert!(parse("namespace shop kubernetes.io/metadata.name=shop").is_ok());
    }

    #[test]
    fn statement_errors() {
        assert_err("namespace a\nallo a/b -> a/c:80", 2, "unknown statement `allo`");
        assert_err("namespace", 1, "needs a name");
        assert_err("namespace Bad", 1, "bad namespace name `Bad`");
        assert_err("namespace a\nnamespace a", 2, "declared twice (first on line 1)");
        assert_err("namespace a b", 1, "expected a label KEY=VALUE, found `b`");
        assert_err("namespace a =x", 1, "empty label key");
        assert_err("namespace a k=1 k=2", 1, "label `k` is given twice");
        assert_err("namespace a kubernetes.io/metadata.name=b", 1, "always the namespace's name");
    }

    #[test]
    fn pod_errors() {
        assert_err("pod", 1, "needs NAMESPACE/NAME");
        assert_err("pod web", 1, "expected a pod as NAMESPACE/NAME");
        assert_err("pod a/", 1, "bad pod name");
        assert_err("pod /x", 1, "bad namespace name");
        assert_err("pod a/b/c", 1, "bad pod name `b/c`");
        assert_err("pod a/x\n\npod a/x", 3, "pod `a/x` is declared twice (first on line 1)");
        assert_err("pod a/x ip=10.0.0.300", 1, "bad IP address `10.0.0.300`");
        assert_err("pod a/x ip=1.1.1.1 ip=1.1.1.2", 1, "`ip=` is given twice");
        assert_err("pod a/x ip=1.1.1.1\npod a/y ip=1.1.1.1", 2, "already the IP of pod `a/x`");
        assert_err("pod a/x ports", 1, "`ports` needs at least one");
        assert_err("pod a/x ports http", 1, "expected NAME=PORT/PROTO");
        assert_err("pod a/x ports http=0/tcp", 1, "bad port `0`");
        assert_err("pod a/x ports http=65536", 1, "bad port `65536`");
        assert_err("pod a/x ports http=80/icmp", 1, "unknown protocol `icmp`");
        assert_err("pod a/x ports HTTP=80", 1, "bad port name `HTTP`");
        assert_err("pod a/x ports h=80 h=81", 1, "port name `h` is given twice");
        assert_err("pod a/x app=1 app=2", 1, "label `app` is given twice");
    }

    #[test]
    fn connection_errors() {
        let decl = "pod a/x ip=10.0.0.1\n";
        let at2 = |line: &str, needle: &str| assert_err(&format!("{decl}{line}"), 2, needle);
        at2("allow a/x -> a/y:80", "unknown pod `a/y`");
        at2("allow b/x -> a/x:80", "unknown pod `b/x`");
        at2("deny a/x a/x:80", "expected SRC -> DST:PORT[/PROTO]");
        at2("deny -> a/x:80", "missing source");
        at2("deny a/x ->", "missing destination");
        at2("deny a/x -> a/x:80 extra", "unexpected `extra` after the destination");
        at2("deny a/x -> a/x", "missing `:PORT`");
        at2("deny a/x -> a/x:", "bad port ``");
        at2("deny a/x -> a/x:http", "bad port `http`");
        at2("deny a/x -> a/x:0", "bad port `0`");
        at2("deny a/x -> a/x:70000", "bad port `70000`");
        at2("deny a/x -> a/x:-1", "bad port `-1`");
        at2("deny a/x -> a/x:+80", "bad port `+80`");
        at2("deny a/x -> a/x:80/icmp", "unknown protocol `icmp`");
        at2("deny a/x -> a/x:80/Udp", "unknown protocol `Udp`");
        at2("deny 1.2.3 -> a/x:80", "`1.2.3` is neither a pod");
        at2("deny a/x -> 300.1.1.1:80", "`300.1.1.1` is neither a pod");
        at2("deny a/x -> 2001:db8::1", "missing `:PORT` after the IP address");
        at2("deny a/x -> [2001:db8::1]", "expected [ADDRESS]:PORT");
        at2("deny a/x -> 8.8.8.8", "missing `:PORT`");
        // Pods must be declared before use.
        assert_err("allow a/x -> a/y:80\npod a/x\npod a/y", 1, "unknown pod `a/x`");
    }

    #[test]
    fn error_display_has_the_line() {
        let e = err("namespace a\n\nbogus");
        assert_eq!(
            e.to_string(),
            "line 3: unknown statement `bogus` (expected namespace, pod, allow or deny)"
        );
    }

    #[test]
    fn empty_table_is_fine() {
        let table = parse("# nothing\n\n").unwrap();
        assert_eq!(table, FlowTable::default());
        assert!(check(&table, &example_policies()).is_empty());
    }
}
