//! Cluster models loaded from real kubectl output (`tests/fixtures/cluster/`),
//! and the shop's policies evaluated against them.

use netpolc::cluster::{self, LoadedCluster};
use netpolc::evaluate::{self, Cluster, Connection, Endpoint, NAMESPACE_NAME_LABEL, Protocol};
use std::net::IpAddr;

fn fixture(name: &str) -> String {
    let path = format!("tests/fixtures/cluster/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn load(name: &str) -> LoadedCluster {
    cluster::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP")
}

#[test]
fn kubectl_list_of_namespaces_and_pods() {
    let loaded = load("shop.yaml");
    let c = &loaded.cluster;

    let namespaces: Vec<&str> = c.namespaces.iter().map(|n| n.name.as_str()).collect();
    // `payments` has no Namespace object in the fixture: its pods create it.
    assert_eq!(
        namespaces,
        ["backend", "default", "frontend", "kube-system", "monitoring", "payments"]
    );
    let frontend = c.namespace("frontend").expect("frontend");
    assert_eq!(frontend.labels.get("team").map(String::as_str), Some("web"));
    assert_eq!(frontend.labels.get(NAMESPACE_NAME_LABEL).map(String::as_str), Some("frontend"));
    assert_eq!(c.namespace("payments").expect("payments").labels.len(), 1);

    let pods: Vec<String> = c.pods.iter().map(|p| p.qualified_name()).collect();
    assert_eq!(
        pods,
        [
            "backend/cart-6d9f7c8b5d-x2x7k",
            "backend/catalog-5c7d8f9b6-4kq2m",
            "frontend/storefront-7b9c6d5f4-abcde",
            "kube-system/coredns-668d6bf9bc-7vz4t",
            "monitoring/prometheus-0",
            "payments/checkout-84f5d7c9b-m5n6p",
            "payments/checkout-84f5d7c9b-zz9k1",
        ]
    );
    let pod = |name: &str| c.pods.iter().find(|p| p.qualified_name() == name).expect(name);

    let storefront = pod("frontend/storefront-7b9c6d5f4-abcde");
    assert_eq!(storefront.ip, Some(ip("10.244.1.10")));
    assert_eq!(
        storefront.labels.get("app.kubernetes.io/name").map(String::as_str),
        Some("storefront")
    );
    assert_eq!(
        storefront.labels.get("app.kubernetes.io/version").map(String::as_str),
        Some("3.2.1")
    );
    // The port without `protocol` is TCP.
    assert!(storefront.has_named_port("metrics", Protocol::Tcp, 9090));
    assert!(storefront.has_named_port("https", Protocol::Tcp, 443));
    assert_eq!(
        loaded.extra_ips.get("frontend/storefront-7b9c6d5f4-abcde"),
        Some(&vec![ip("fd00:10:244:1::a")])
    );

    let coredns = pod("kube-system/coredns-668d6bf9bc-7vz4t");
    assert!(coredns.has_named_port("dns", Protocol::Udp, 53));
    assert!(coredns.has_named_port("dns-tcp", Protocol::Tcp, 53));
    assert!(!coredns.has_named_port("dns", Protocol::Tcp, 53));

    // The Istio sidecar (an init container that keeps running) brings its
    // port; the plain init container does not run beside the app.
    let checkout = pod("payments/checkout-84f5d7c9b-m5n6p");
    assert!(checkout.has_named_port("https", Protocol::Tcp, 8443));
    assert!(checkout.has_named_port("http-envoy-prom", Protocol::Tcp, 15090));
    assert_eq!(checkout.ports.len(), 2);

    // A pending pod has no IP yet, but is there.
    assert_eq!(pod("payments/checkout-84f5d7c9b-zz9k1").ip, None);

    assert_eq!(loaded.skipped.host_network, ["kube-system/kube-proxy-9xq7w"]);
    assert_eq!(loaded.skipped.finished, ["backend/db-migrate-28845120-q8z9x"]);
    assert!(loaded.skipped.kinds.is_empty());
    assert_eq!(
        loaded.summary(),
        "6 namespaces, 7 pods; skipped 1 host-network pod, 1 finished pod; 1 pod with several IPs: only the first is evaluated"
    );
    assert_eq!(cluster::load_cluster(&fixture("shop.yaml")).expect("loads"), loaded.cluster);
}

#[test]
fn api_pod_list_in_json() {
    let loaded = load("payments-podlist.json");
    assert_eq!(loaded.cluster.pods.len(), 1);
    let pod = &loaded.cluster.pods[0];
    assert_eq!(pod.qualified_name(), "payments/checkout-84f5d7c9b-m5n6p");
    assert_eq!(pod.ip, Some(ip("10.244.2.15")));
    assert!(pod.has_named_port("https", Protocol::Tcp, 8443));
    assert_eq!(loaded.skipped.finished, ["payments/fraud-check-1730714400-7tq2c"]);
}

#[test]
fn multi_document_stream_with_other_kinds() {
    let loaded = load("stream.yaml");
    let c = &loaded.cluster;
    assert_eq!(c.namespaces.len(), 1);
    assert_eq!(c.namespaces[0].labels.get("pci").map(String::as_str), Some("true"));
    assert_eq!(c.pods.len(), 1);
    assert_eq!(loaded.skipped.other_objects(), 2);
    assert_eq!(
        loaded.summary(),
        "1 namespace, 1 pod; skipped 2 other objects (1 ConfigMap, 1 Service)"
    );
}

#[test]
fn the_same_cluster_in_json_and_yaml() {
    // The YAML fixture, re-encoded as JSON, loads to the same model.
    let value: serde_json::Value = serde_saphyr::from_str(&fixture("shop.yaml")).expect("YAML");
    let json = serde_json::to_string_pretty(&value).expect("JSON");
    assert_eq!(cluster::load(&json).expect("JSON loads"), load("shop.yaml"));
}

/// Cut anywhere, a fixture gives a model or an error, never a panic.
#[test]
fn truncated_fixtures_never_panic() {
    for name in ["shop.yaml", "payments-podlist.json", "stream.yaml"] {
        let text = fixture(name);
        let mut cut = 0;
        while cut < text.len() {
            if text.is_char_boundary(cut) {
                let _ = cluster::load(&text[..cut]);
            }
            cut += 61;
        }
    }
}

fn shop_policies() -> Vec<k8s_openapi::api::networking::v1::NetworkPolicy> {
    let (sources, early) = netpolc::source::load(&["examples/shop.np".into()]).expect("shop");
    let out = netpolc::compile(sources, early, &netpolc::Config::default());
    assert!(!out.has_errors(), "{}", out.render_diagnostics());
    out.policies
}

/// An endpoint by pod name prefix (`frontend/storefront`) or IP.
fn endpoint(c: &Cluster, text: &str) -> Endpoint {
    if let Ok(ip) = text.parse() {
        return Endpoint::Ip(ip);
    }
    let (ns, prefix) = text.split_once('/').expect("ns/name");
    let index = c
        .pods
        .iter()
        .position(|p| p.namespace == ns && p.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no pod {text}"));
    Endpoint::Pod(index)
}

#[test]
fn shop_policies_on_the_real_pods() {
    let c = load("shop.yaml").cluster;
    let policies = shop_policies();
    let allowed = |src: &str, dst: &str, port: u16, protocol: Protocol| {
        let conn = Connection::new(endpoint(&c, src), endpoint(&c, dst), port, protocol);
        evaluate::is_allowed(&policies, &c, &conn)
    };
    let tcp = |src: &str, dst: &str, port: u16| allowed(src, dst, port, Protocol::Tcp);

    assert!(tcp("203.0.113.99", "frontend/storefront", 443));
    assert!(!tcp("203.0.113.99", "frontend/storefront", 9090));
    assert!(tcp("frontend/storefront", "backend/catalog", 8080));
    assert!(tcp("frontend/storefront", "backend/cart", 8080));
    assert!(!tcp("frontend/storefront", "payments/checkout-84f5d7c9b-m5n6p", 8443));
    assert!(tcp("backend/cart", "payments/checkout-84f5d7c9b-m5n6p", 8443));
    assert!(!tcp("backend/catalog", "payments/checkout-84f5d7c9b-m5n6p", 8443));
    assert!(tcp("backend/catalog", "10.20.1.5", 5432));
    assert!(!tcp("backend/catalog", "10.20.5.5", 5432));
    assert!(tcp("payments/checkout-84f5d7c9b-m5n6p", "203.0.113.10", 443));
    assert!(!tcp("payments/checkout-84f5d7c9b-m5n6p", "198.51.100.10", 443));
    assert!(tcp("monitoring/prometheus", "frontend/storefront", 9090));
    assert!(tcp("monitoring/prometheus", "payments/checkout-84f5d7c9b-m5n6p", 9090));
    assert!(!tcp("monitoring/prometheus", "kube-system/coredns", 9153));
    assert!(allowed("frontend/storefront", "kube-system/coredns", 53, Protocol::Udp));
    assert!(tcp("frontend/storefront", "kube-system/coredns", 53));
    assert!(!tcp("frontend/storefront", "monitoring/prometheus", 9090));
}
