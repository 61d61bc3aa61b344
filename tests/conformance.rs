//! Conformance with the upstream Kubernetes network policy e2e suite
//! (`test/e2e/network/netpol/` in kubernetes/kubernetes).
//!
//! Every file of `tests/conformance/` is one upstream case, written from its
//! facts: the policies it creates (in their final state), the probes it runs
//! and the reachability matrix it expects (see `tests/conformance/README.md`
//! for the format). This test builds the upstream model: namespaces x, y and
//! z labelled `ns=<name>` (plus `kubernetes.io/metadata.name`), each holding
//! pods a, b and c labelled `pod=<name>`, every pod serving ports 80 and 81
//! over TCP, UDP and SCTP on container ports named `serve-<port>-<protocol>`.
//! It then evaluates every (from pod, to pod, probe) with
//! [`netpolc::evaluate::evaluate`] and compares the result with the
//! expectation.
//!
//! Loopback: upstream never fails a case on a connection from a pod to
//! itself. Its `ignoreLoopback` constant is `true`, and the reachability
//! summary skips every cell where from == to, in every case (what policies
//! do to loopback traffic is left undefined: CNIs disagree, see
//! kubernetes/kubernetes#95879). This test does the same: the 9 diagonal
//! cells of each probe are shown in the tables but never compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use netpolc::evaluate::{Cluster, Connection, Endpoint, Pod, Protocol, evaluate, is_allowed, policy_name};
use netpolc::validate::validate_network_policy;
use serde::Deserialize;

/// The model's namespaces, in table order.
const NAMESPACES: [&str; 3] = ["x", "y", "z"];
/// The pods of each namespace, in table order.
const POD_NAMES: [&str; 3] = ["a", "b", "c"];
/// The ports every pod serves.
const PORTS: [u16; 2] = [80, 81];
/// The protocols every port is served over.
const PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];
/// The number of pods of the model.
const N: usize = NAMESPACES.len() * POD_NAMES.len();
/// The issue asks for at least this many upstream cases.
const MIN_CASES: usize = 30;

/// Cases on which the evaluator is known to disagree with upstream, by file
/// stem, with the reason. A listed case that fails is reported but does not
/// fail the test; a listed case that passes does (remove it from the list).
/// Only list a case when the upstream expectation is certainly right: the
/// fix belongs in `src/evaluate.rs`, not in the case.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

/// One case file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Case {
    /// What the case checks, in a sentence or two.
    description: String,
    /// The upstream test's name, for traceability.
    upstream: String,
    /// Labels added to the model's namespaces and pods (the final state of a
    /// case that relabels them).
    #[serde(default)]
    relabel: Relabel,
    /// The policies, in their final state.
    policies: Vec<NetworkPolicy>,
    /// The probes, `PORT/PROTOCOL`.
    probes: Vec<String>,
    /// The expectation of every probe that has none in `by_probe`.
    #[serde(default)]
    expect: Option<Expectation>,
    /// Expectations for single probes.
    #[serde(default)]
    by_probe: BTreeMap<String, Expectation>,
}

/// Extra labels, by namespace name and by `namespace/pod`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Relabel {
    #[serde(default)]
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pods: BTreeMap<String, BTreeMap<String, String>>,
}

/// A reachability matrix: a default, then exceptions applied in order.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    default: Reach,
    /// `allow FROM -> TO` or `deny FROM -> TO`, where FROM and TO are `ns/pod`
    /// with `*` for any namespace or pod, or `*` alone for every pod. A later
    /// line overrides an earlier one, as upstream's successive `Expect*` calls.
    #[serde(default)]
    except: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Reach {
    Allow,
    Deny,
}

/// `matrix[from][to]`: whether `from` reaches `to`, pods in table order.
type Matrix = [[bool; N]; N];

/// A probe: a destination port and a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Probe {
    port: u16,
    protocol: Protocol,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

fn parse_probe(text: &str) -> Result<Probe, String> {
    let (port, protocol) = text.split_once('/').ok_or_else(|| format!("probe `{text}` is not PORT/PROTOCOL"))?;
    let port: u16 = port.parse().map_err(|_| format!("probe `{text}`: bad port"))?;
    let protocol = Protocol::from_api(protocol).ok_or_else(|| format!("probe `{text}`: protocol must be TCP, UDP or SCTP"))?;
    if !PORTS.contains(&port) {
        return Err(format!("probe `{text}`: the model's pods serve only ports {PORTS:?}"));
    }
    Ok(Probe { port, protocol })
}

/// The name of pod number `index` in table order, `x/a` ... `z/c`.
fn pod_name(index: usize) -> String {
    format!("{}/{}", NAMESPACES[index / POD_NAMES.len()], POD_NAMES[index % POD_NAMES.len()])
}

/// The IP of pod (namespace n, pod p): 10.0.<n+1>.<p+1>, so x/a is 10.0.1.1,
/// y/b 10.0.2.2 and z/c 10.0.3.3.
fn pod_ip(namespace: usize, pod: usize) -> IpAddr {
    let octet = |i: usize| u8::try_from(i + 1).expect("small index");
    IpAddr::V4(Ipv4Addr::new(10, 0, octet(namespace), octet(pod)))
}

/// The container port name upstream gives `port` over `protocol`.
fn port_name(port: u16, protocol: Protocol) -> String {
    format!("serve-{port}-{}", protocol.as_str().to_ascii_lowercase())
}

/// The upstream model, with the case's extra labels.
fn model(relabel: &Relabel) -> Result<Cluster, String> {
    for ns in relabel.namespaces.keys() {
        if !NAMESPACES.contains(&ns.as_str()) {
            return Err(format!("relabel: no namespace `{ns}` in the model"));
        }
    }
    for pod in relabel.pods.keys() {
        if !(0..N).any(|i| pod_name(i) == *pod) {
            return Err(format!("relabel: no pod `{pod}` in the model"));
        }
    }
    let mut cluster = Cluster::new();
    for (n, ns) in NAMESPACES.iter().enumerate() {
        let mut labels = vec![("ns".to_owned(), (*ns).to_owned())];
        if let Some(extra) = relabel.namespaces.get(*ns) {
            labels.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        cluster.add_namespace(ns, labels);
        for (p, name) in POD_NAMES.iter().enumerate() {
            let mut pod = Pod::new(*ns, *name).with_label("pod", *name).with_ip(pod_ip(n, p));
            for port in PORTS {
                for protocol in PROTOCOLS {
                    pod = pod.with_port(port_name(port, protocol), port, protocol);
                }
            }
            for (key, value) in relabel.pods.get(&format!("{ns}/{name}")).into_iter().flatten() {
                pod = pod.with_label(key.clone(), value.clone());
            }
            let index = cluster.add_pod(pod);
            assert_eq!(index, n * POD_NAMES.len() + p, "pods are added in table order");
        }
    }
    Ok(cluster)
}

/// One side of an exception: which pods it names.
struct PodPattern {
    namespace: Option<usize>,
    pod: Option<usize>,
}

impl PodPattern {
    fn parse(text: &str) -> Result<PodPattern, String> {
        if text == "*" {
            return Ok(PodPattern {
                namespace: None,
                pod: None,
            });
        }
        let (ns, pod) = text.split_once('/').ok_or_else(|| format!("`{text}` is not NS/POD or *"))?;
        let find = |name: &str, names: &[&str]| -> Result<Option<usize>, String> {
            if name == "*" {
                return Ok(None);
            }
            names
                .iter()
                .position(|n| *n == name)
                .map(Some)
                .ok_or_else(|| format!("`{text}`: `{name}` is not in the model ({names:?} or *)"))
        };
        Ok(PodPattern {
            namespace: find(ns, &NAMESPACES)?,
            pod: find(pod, &POD_NAMES)?,
        })
    }

    fn matches(&self, index: usize) -> bool {
        self.namespace.is_none_or(|n| n == index / POD_NAMES.len()) && self.pod.is_none_or(|p| p == index % POD_NAMES.len())
    }
}

/// The matrix an expectation describes.
fn expected_matrix(expectation: &Expectation) -> Result<Matrix, String> {
    let mut matrix = [[expectation.default == Reach::Allow; N]; N];
    for line in &expectation.except {
        let (verdict, rest) = line
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("`{line}` is not `allow|deny FROM -> TO`"))?;
        let allowed = match verdict {
            "allow" => true,
            "deny" => false,
            other => return Err(format!("`{line}`: `{other}` is neither allow nor deny")),
        };
        let (from, to) = rest.split_once("->").ok_or_else(|| format!("`{line}` has no `->`"))?;
        let (from, to) = (PodPattern::parse(from.trim())?, PodPattern::parse(to.trim())?);
        for (f, row) in matrix.iter_mut().enumerate() {
            for (t, cell) in row.iter_mut().enumerate() {
                if from.matches(f) && to.matches(t) {
                    *cell = allowed;
                }
            }
        }
    }
    Ok(matrix)
}

/// The probes of a case, each with its expected matrix.
fn probes_and_expectations(case: &Case) -> Result<Vec<(Probe, Matrix)>, String> {
    if case.probes.is_empty() {
        return Err("no probes".to_owned());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for text in &case.probes {
        let probe = parse_probe(text)?;
        if !seen.insert(probe) {
            return Err(format!("probe {probe} is listed twice"));
        }
        let expectation = case
            .by_probe
            .get(text)
            .or(case.expect.as_ref())
            .ok_or_else(|| format!("probe {probe} has no expectation (neither `expect` nor `byProbe.{text}`)"))?;
        out.push((probe, expected_matrix(expectation)?));
    }
    if let Some(extra) = case.by_probe.keys().find(|k| !case.probes.contains(k)) {
        return Err(format!("byProbe.{extra} is not one of the probes"));
    }
    if case.expect.is_some() && case.probes.iter().all(|p| case.by_probe.contains_key(p)) {
        return Err("`expect` is never used: every probe has its own `byProbe` entry".to_owned());
    }
    Ok(out)
}

/// The policies must be what upstream created: namespaced in the model and
/// accepted by the API server.
fn check_policies(policies: &[NetworkPolicy]) -> Result<(), String> {
    for policy in policies {
        let name = policy_name(policy);
        match policy.metadata.namespace.as_deref() {
            Some(ns) if NAMESPACES.contains(&ns) => {}
            other => {
                return Err(format!(
                    "policy `{name}`: metadata.namespace must be one of {NAMESPACES:?}, not {other:?}"
                ));
            }
        }
        let violations = validate_network_policy(policy);
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
            return Err(format!("policy `{name}` would be rejected: {}", list.join("; ")));
        }
    }
    Ok(())
}

/// A truth table as upstream prints it: rows are sources, columns
/// destinations.
fn table(title: &str, cell: impl Fn(usize, usize) -> char) -> String {
    let mut out = format!("{title}\n    -   ");
    for to in 0..N {
        let _ = write!(out, "{:<5}", pod_name(to));
    }
    out.push('\n');
    for from in 0..N {
        let _ = write!(out, "    {:<4}", pod_name(from));
        for to in 0..N {
            let _ = write!(out, "{:<5}", cell(from, to));
        }
        out.push('\n');
    }
    out
}

fn mark(reachable: bool) -> char {
    if reachable { '.' } else { 'X' }
}

/// Evaluates one probe of a case; `Some(report)` when it disagrees with the
/// expectation.
fn check_probe(file: &str, case: &Case, cluster: &Cluster, probe: Probe, expected: &Matrix) -> Option<String> {
    let connection = |from: usize, to: usize| Connection::new(Endpoint::Pod(from), Endpoint::Pod(to), probe.port, probe.protocol);
    let mut observed = [[false; N]; N];
    let mut details = Vec::new();
    for (from, row) in observed.iter_mut().enumerate() {
        for (to, cell) in row.iter_mut().enumerate() {
            let conn = connection(from, to);
            let verdict = evaluate(&case.policies, cluster, &conn);
            *cell = verdict.allowed;
            if is_allowed(&case.policies, cluster, &conn) != verdict.allowed {
                details.push(format!(
                    "  {}: is_allowed disagrees with evaluate ({verdict})",
                    cluster.describe_connection(&conn)
                ));
            }
            if from != to && verdict.allowed != expected[from][to] {
                details.push(format!(
                    "  {}: expected {}, evaluator says {verdict}",
                    cluster.describe_connection(&conn),
                    if expected[from][to] { "allowed" } else { "denied" },
                ));
            }
        }
    }
    if details.is_empty() {
        return None;
    }
    let mut report = format!(
        "{file}: probe {probe}\n  {}\n  upstream: {}\n\n",
        case.description.trim(),
        case.upstream
    );
    report.push_str(&table("  expected (. reachable, X blocked):", |f, t| mark(expected[f][t])));
    report.push_str(&table("  evaluator:", |f, t| mark(observed[f][t])));
    report.push_str(&table("  comparison (. agrees, X disagrees, - loopback, not compared):", |f, t| {
        if f == t { '-' } else { mark(expected[f][t] == observed[f][t]) }
    }));
    report.push('\n');
    report.push_str(&details.join("\n"));
    Some(report)
}

/// The case files, sorted; their names must be `NN-short-name.yaml` with
/// distinct numbers.
fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut numbers = BTreeSet::new();
    for path in &files {
        let stem = stem(path);
        let (number, name) = stem.split_once('-').unwrap_or(("", ""));
        assert!(
            number.len() == 2 && number.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty(),
            "{stem}.yaml: case files are named NN-short-name.yaml"
        );
        assert!(numbers.insert(number.to_owned()), "{stem}.yaml: number {number} is used twice");
    }
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name").to_owned()
}

fn load(path: &Path) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let case = serde_saphyr::from_str::<Case>(&text).map_err(|e| format!("bad case file: {e}"))?;
    // The API types ignore fields they do not know, so a misspelt field
    // would silently vanish: each policy must read back as written.
    let raw: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| format!("bad case file: {e}"))?;
    let written = raw
        .get("policies")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (policy, written) in case.policies.iter().zip(&written) {
        let read = serde_json::to_value(policy).map_err(|e| format!("policy `{}`: {e}", policy_name(policy)))?;
        if read != *written {
            return Err(format!(
                "policy `{}` does not read back as written (a misspelt or misplaced field?)\n  written: {written}\n  read:    {read}",
                policy_name(policy)
            ));
        }
    }
    Ok(case)
}

#[test]
fn evaluator_agrees_with_the_upstream_e2e_suite() {
    let files = case_files();
    assert!(
        files.len() >= MIN_CASES,
        "expected at least {MIN_CASES} upstream cases, found {}",
        files.len()
    );
    for (known, _) in KNOWN_FAILURES {
        assert!(
            files.iter().any(|f| stem(f) == *known),
            "KNOWN_FAILURES lists `{known}`, which is not a case file"
        );
    }

    let mut failures = Vec::new();
    let mut known_failures = Vec::new();
    let mut upstream_names = BTreeSet::new();
    let mut compared = 0;
    for path in &files {
        let file = stem(path);
        let case = match load(path) {
            Ok(case) => case,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        let setup = check_policies(&case.policies)
            .and_then(|()| model(&case.relabel))
            .and_then(|cluster| Ok((cluster, probes_and_expectations(&case)?)));
        let (cluster, probes) = match setup {
            Ok(setup) => setup,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        if !upstream_names.insert(case.upstream.clone()) {
            failures.push(format!("{file}: another case already reproduces \"{}\"", case.upstream));
        }
        let reports: Vec<String> = probes
            .iter()
            .filter_map(|(probe, expected)| check_probe(&file, &case, &cluster, *probe, expected))
            .collect();
        compared += probes.len() * (N * N - N);
        match KNOWN_FAILURES.iter().find(|(known, _)| *known == file) {
            Some((_, reason)) if reports.is_empty() => failures.push(format!(
                "{file}: listed in KNOWN_FAILURES ({reason}) but the evaluator now agrees with upstream: remove it from the list"
            )),
            Some((_, reason)) => known_failures.push(format!("{file} (known failure: {reason})\n{}", reports.join("\n\n"))),
            None => failures.extend(reports),
        }
    }

    println!(
        "{} upstream cases, {compared} connections compared (loopback excluded), {} known failure(s)",
        files.len(),
        known_failures.len()
    );
    for report in &known_failures {
        println!("\n{report}");
    }
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with the upstream e2e suite:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The model is upstream's: 9 pods with their labels, IPs and the 6 named
/// container ports, 3 namespaces with their labels.
#[test]
fn the_model_is_upstreams() {
    let cluster = model(&Relabel::default()).expect("model");
    assert_eq!(cluster.pods.len(), N);
    assert_eq!(cluster.namespaces.len(), NAMESPACES.len());
    for ns in &cluster.namespaces {
        assert_eq!(ns.labels.get("ns"), Some(&ns.name));
        assert_eq!(ns.labels.get("kubernetes.io/metadata.name"), Some(&ns.name));
        assert_eq!(ns.labels.len(), 2);
    }
    for (index, pod) in cluster.pods.iter().enumerate() {
        assert_eq!(pod.qualified_name(), pod_name(index));
        assert_eq!(pod.labels.len(), 1);
        assert_eq!(pod.labels.get("pod"), Some(&pod.name));
        assert_eq!(pod.ports.len(), PORTS.len() * PROTOCOLS.len());
        assert!(pod.has_named_port("serve-81-sctp", Protocol::Sctp, 81));
        assert!(!pod.has_named_port("serve-81-sctp", Protocol::Tcp, 81));
    }
    assert_eq!(cluster.pods[0].ip, Some(pod_ip(0, 0)));
    assert_eq!(pod_ip(1, 1).to_string(), "10.0.2.2");

    // Relabelling adds labels and refuses names outside the model.
    let relabel = Relabel {
        namespaces: [("y".to_owned(), [("ns2".to_owned(), "updated".to_owned())].into())].into(),
        pods: [("x/b".to_owned(), [("pod2".to_owned(), "updated".to_owned())].into())].into(),
    };
    let cluster = model(&relabel).expect("model");
    assert_eq!(
        cluster.namespace("y").and_then(|ns| ns.labels.get("ns2")).map(String::as_str),
        Some("updated")
    );
    assert_eq!(cluster.pods[1].labels.get("pod2").map(String::as_str), Some("updated"));
    assert_eq!(cluster.pods[1].labels.get("pod").map(String::as_str), Some("b"));
    let bad = Relabel {
        namespaces: BTreeMap::new(),
        pods: [("w/a".to_owned(), BTreeMap::new())].into(),
    };
    assert!(model(&bad).is_err());
}

/// Exceptions apply in order over the default, with `*` wildcards.
#[test]
fn expectations_apply_in_order() {
    let expectation = Expectation {
        default: Reach::Allow,
        except: vec![
            "deny * -> x/a".to_owned(),
            "allow x/b -> x/a".to_owned(),
            "deny y/* -> z/c".to_owned(),
        ],
    };
    let m = expected_matrix(&expectation).expect("valid");
    let denied: Vec<(String, String)> = (0..N)
        .flat_map(|f| (0..N).map(move |t| (f, t)))
        .filter(|&(f, t)| !m[f][t])
        .map(|(f, t)| (pod_name(f), pod_name(t)))
        .collect();
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> { list.iter().map(|(f, t)| ((*f).to_owned(), (*t).to_owned())).collect() };
    let mut want = pairs(&[("x/a", "x/a"), ("x/c", "x/a"), ("y/a", "x/a"), ("y/b", "x/a"), ("y/c", "x/a")]);
    want.extend(pairs(&[
        ("y/a", "z/c"),
        ("y/b", "z/c"),
        ("y/c", "z/c"),
        ("z/a", "x/a"),
        ("z/b", "x/a"),
        ("z/c", "x/a"),
    ]));
    want.sort();
    let mut denied = denied;
    denied.sort();
    assert_eq!(denied, want);

    for bad in [
        "block x/a -> x/b",
        "deny x/a x/b",
        "deny q/a -> x/b",
        "deny x/d -> x/b",
        "deny x -> x/b",
    ] {
        let e = Expectation {
            default: Reach::Deny,
            except: vec![bad.to_owned()],
        };
        assert!(expected_matrix(&e).is_err(), "{bad}");
    }
    assert!(parse_probe("80/TCP").is_ok());
    assert!(parse_probe("82/TCP").is_err());
    assert!(parse_probe("80/tcp").is_err());
}
