//! A seeded generator of realistic `.np` fleets, for benchmarks and tests.
//!
//! [`generate`] turns a [`FleetSpec`] (how many namespaces, workloads and
//! intents, and a seed) into `.np` files that look like a real cluster's:
//!
//! * one file per team, each team owning one to three namespaces named after
//!   its domain (`payments`, `payments-jobs`, `payments-data`); a
//!   `platform.np` holds the shared `monitoring` and `ingress-nginx`
//!   namespaces and every `external` of the fleet;
//! * namespaces of uneven size, with web front ends, APIs, workers, databases,
//!   caches, queues, search engines, UDP services and media servers; a part of
//!   them declared with custom selectors (`app.kubernetes.io/name=...`,
//!   `app in (...)`, `track notin (...)`, `version!=...`, exists terms), the
//!   rest meaning `app=NAME`;
//! * `meta`, `@owner`, `@ticket` and `@reason` metadata, comments, intents of
//!   one to four targets (some over several lines), `allow dns` in every
//!   namespace and after some intents, a few `isolate ingress`;
//! * intents mostly inside a namespace, many towards popular namespaces
//!   (a Zipf-like skew), and some with `NS/*`, `*`, `world`, `internet`,
//!   named externals (IPv4 and IPv6, with `except`) and CIDR literals on
//!   either side; ports single, named, listed, ranged and UDP.
//!
//! The fleet is meant to compile without errors or warnings of the checker:
//! every namespace it names is declared, no intent is repeated, an undeclared
//! workload name is never within "did you mean" distance of a declared one,
//! and no name can make two policy names collide. The lints (`W01xx`) do
//! find what real fleets have: intents without ports, intents that others
//! cover, workloads declared and never used; its `world -> ...` intents
//! carry a silencing comment. The output depends only on the spec: the
//! generator has its own PRNG (SplitMix64) and iterates nothing unordered.
//!
//! "Intents" counts targets: `web -> api:80, db:5432, allow dns` is two
//! intents (the `allow dns` parts, like the `allow dns` statements, come on
//! top). So a compiled fleet has exactly [`FleetSpec::intents`] flows whose
//! target is not `dns`.
//!
//! ```
//! use netpolc::fleet::{FleetSpec, generate};
//! let files = generate(&FleetSpec { namespaces: 5, workloads: 20, intents: 60, seed: 7 });
//! let mut sources = netpolc::Sources::new();
//! for (name, text) in &files {
//!     sources.add(name.as_str(), text.as_str());
//! }
//! let out = netpolc::compile(sources, Vec::new(), &netpolc::Config::default());
//! assert!(!out.has_errors(), "{}", out.render_diagnostics());
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;

/// The size and seed of a generated fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FleetSpec {
    /// How many namespaces (at least 1). With three or more, two of them are
    /// the platform's `monitoring` and `ingress-nginx`.
    pub namespaces: usize,
    /// How many workloads in all (at least one per namespace: raised to
    /// `namespaces` if lower).
    pub workloads: usize,
    /// How many intents, counted as targets (see the module docs).
    pub intents: usize,
    /// The seed: the same spec always gives the same files.
    pub seed: u64,
}

impl FleetSpec {
    /// The size of the performance target: 20,000 intents over 5,000
    /// workloads in 200 namespaces.
    pub const TARGET: FleetSpec = FleetSpec {
        namespaces: 200,
        workloads: 5_000,
        intents: 20_000,
        seed: 0x006e_6574_706f_6c63,
    };

    /// A medium fleet for tests: 2,000 intents over 500 workloads in 40 namespaces.
    pub const MEDIUM: FleetSpec = FleetSpec {
        namespaces: 40,
        workloads: 500,
        intents: 2_000,
        seed: 0x006e_6574_706f_6c63,
    };
}

/// Generates the fleet: `(file name, text)` pairs, sorted by file name.
pub fn generate(spec: &FleetSpec) -> Vec<(String, String)> {
    let mut g = Generator::new(spec);
    g.build();
    g.render()
}

// ---------------------------------------------------------------------------
// Randomness.

/// SplitMix64: tiny, fast, and good enough to shape test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Cumulative weights, for weighted picks by binary search.
#[derive(Debug, Clone, Default)]
struct Weighted(Vec<f64>);

impl Weighted {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        Weighted(
            weights
                .into_iter()
                .map(|w| {
                    total += w.max(0.0);
                    total
                })
                .collect(),
        )
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        let total = self.0.last().copied().unwrap_or(0.0);
        if total <= 0.0 {
            return rng.below(self.0.len().max(1));
        }
        let x = rng.unit() * total;
        self.0.partition_point(|&c| c <= x).min(self.0.len() - 1)
    }
}

/// Splits `total` into `weights.len()` parts proportional to the weights,
/// each at least `floor`, summing exactly to `total` (largest remainder).
fn apportion(total: usize, weights: &[f64], floor: usize) -> Vec<usize> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let base = floor.min(total / n);
    let rest = total - base * n;
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| rest as f64 * w / sum).collect();
    let mut parts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = rest - parts.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts.iter().map(|p| p + base).collect()
}

// ---------------------------------------------------------------------------
// Vocabulary.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Web,
    Api,
    Worker,
    Db,
    Cache,
    Queue,
    Search,
    Udp,
    Media,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Web,
        Kind::Api,
        Kind::Worker,
        Kind::Db,
        Kind::Cache,
        Kind::Queue,
        Kind::Search,
        Kind::Udp,
        Kind::Media,
    ];

    /// How common the kind is in a namespace.
    fn share(self) -> f64 {
        match self {
            Kind::Web => 8.0,
            Kind::Api => 38.0,
            Kind::Worker => 16.0,
            Kind::Db => 10.0,
            Kind::Cache => 9.0,
            Kind::Queue => 5.0,
            Kind::Search => 4.0,
            Kind::Udp => 6.0,
            Kind::Media => 4.0,
        }
    }

    /// How often it opens connections.
    fn calls(self) -> f64 {
        match self {
            Kind::Web => 3.0,
            Kind::Api => 4.0,
            Kind::Worker => 4.0,
            Kind::Media => 1.0,
            Kind::Udp => 0.3,
            Kind::Db | Kind::Queue | Kind::Search => 0.2,
            Kind::Cache => 0.1,
        }
    }

    /// How often it is connected to.
    fn called(self) -> f64 {
        match self {
            Kind::Web => 1.0,
            Kind::Api => 4.0,
            Kind::Worker => 0.3,
            Kind::Db | Kind::Cache => 4.0,
            Kind::Queue | Kind::Search => 3.0,
            Kind::Udp => 2.0,
            Kind::Media => 1.0,
        }
    }

    fn tier(self) -> &'static str {
        match self {
            Kind::Web => "frontend",
            Kind::Api => "backend",
            Kind::Worker => "jobs",
            Kind::Db | Kind::Cache | Kind::Search => "data",
            Kind::Queue => "messaging",
            Kind::Udp => "telemetry",
            Kind::Media => "media",
        }
    }

    /// Names and container ports (port texts as written after `:`).
    fn bases(self) -> &'static [(&'static str, &'static [&'static str])] {
        const WEB: &[&str] = &["8080", "http", "(8080, 8443)", "3000"];
        const API: &[&str] = &["8080", "(8080, 9090)", "grpc", "http", "8443", "9000", "(8080, 8081)"];
        const WORKER: &[&str] = &["9090", "metrics", "8080"];
        match self {
            Kind::Web => &[
                ("web", WEB),
                ("frontend", WEB),
                ("storefront", WEB),
                ("portal", WEB),
                ("dashboard", WEB),
                ("admin-ui", WEB),
                ("docs-site", WEB),
                ("landing", WEB),
                ("console", WEB),
                ("status-page", WEB),
            ],
            Kind::Api => &[
                ("api", API),
                ("user-api", API),
                ("order-api", API),
                ("catalog-api", API),
                ("pricing-api", API),
                ("profile-api", API),
                ("graphql", API),
                ("gateway", API),
                ("bff", API),
                ("auth", API),
                ("session", API),
                ("billing", API),
                ("ledger", API),
                ("checkout", API),
                ("cart", API),
                ("inventory", API),
                ("quotes", API),
                ("rates", API),
                ("tokens", API),
                ("webhooks", API),
                ("reports", API),
                ("exports", API),
                ("uploads", API),
                ("accounts", API),
                ("invoices", API),
                ("payouts", API),
                ("refunds", API),
                ("coupons", API),
                ("reviews", API),
                ("wishlist", API),
                ("shipments", API),
                ("tracking", API),
                ("returns", API),
                ("addresses", API),
                ("consents", API),
                ("preferences", API),
                ("recommender", API),
                ("ranker", API),
                ("scorer", API),
                ("classifier", API),
                ("geocoder", API),
                ("tiles", API),
                ("thumbnails", API),
                ("renderer", API),
                ("pdf-service", API),
                ("mailer", API),
                ("sms-sender", API),
                ("push-sender", API),
                ("workflow", API),
                ("rules-engine", API),
                ("feature-flags", API),
                ("config-service", API),
                ("secrets-proxy", API),
            ],
            Kind::Worker => &[
                ("worker", WORKER),
                ("consumer", WORKER),
                ("indexer", WORKER),
                ("sync", WORKER),
                ("cron", WORKER),
                ("importer", WORKER),
                ("exporter", WORKER),
                ("reconciler", WORKER),
                ("notifier", WORKER),
                ("cleaner", WORKER),
                ("aggregator", WORKER),
                ("crawler", WORKER),
                ("batcher", WORKER),
                ("scheduler", WORKER),
            ],
            Kind::Db => &[
                ("postgres", &["5432"]),
                ("mysql", &["3306"]),
                ("mongodb", &["27017"]),
                ("cockroachdb", &["26257", "(26257, 8080)"]),
                ("cassandra", &["9042"]),
                ("clickhouse", &["(8123, 9000)", "9000"]),
                ("timescale", &["5432"]),
            ],
            Kind::Cache => &[
                ("redis", &["6379"]),
                ("memcached", &["11211"]),
                ("valkey", &["6379"]),
                ("varnish", &["6081", "(6081, 6082)"]),
            ],
            Kind::Queue => &[
                ("kafka", &["9092", "(9092, 9093)"]),
                ("rabbitmq", &["5672", "(5672, 15672)"]),
                ("nats", &["4222"]),
                ("pulsar", &["6650"]),
                ("zookeeper", &["(2181, 2888, 3888)"]),
            ],
            Kind::Search => &[
                ("elasticsearch", &["(9200, 9300)", "9200"]),
                ("opensearch", &["9200"]),
                ("solr", &["8983"]),
                ("meilisearch", &["7700"]),
            ],
            Kind::Udp => &[
                ("statsd", &["8125/udp"]),
                ("syslog", &["514/udp", "(514/udp, 601)"]),
                ("fluentd", &["(24224, 24224/udp)"]),
                ("turn", &["(3478/udp, 49152-65535/udp)", "3478"]),
                ("ntp", &["123/udp"]),
                ("sip-proxy", &["5060/udp", "(5060, 5060/udp)"]),
                ("otel-collector", &["(4317, 4318)", "4317"]),
                ("radius", &["(1812/udp, 1813/udp)"]),
            ],
            Kind::Media => &[
                ("streamer", &["8000-8100"]),
                ("relay", &["10000-20000/udp"]),
                ("sfu", &["(443, 10000-10100/udp)"]),
                ("ftp", &["(21, 30000-30100)"]),
                ("rtmp-ingest", &["1935"]),
                ("transcoder", &["(8080, 9000-9010)"]),
                ("sctp-gateway", &["(38412/sctp, 9090)"]),
            ],
        }
    }
}

const NAME_SUFFIXES: &[&str] = &[
    "-v2",
    "-internal",
    "-eu",
    "-us",
    "-canary",
    "-replica",
    "-primary",
    "-read",
    "-write",
    "-admin",
    "-public",
    "-legacy",
    "-batch",
];

/// Team domains; each team's namespaces are named after its domain.
const DOMAINS: &[&str] = &[
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "orders",
    "shipping",
    "inventory",
    "pricing",
    "reviews",
    "recommendations",
    "notifications",
    "messaging",
    "billing",
    "ledger",
    "fraud",
    "risk",
    "analytics",
    "reporting",
    "marketing",
    "crm",
    "support",
    "media",
    "streaming",
    "storage",
    "backup",
    "builds",
    "registry",
    "docs",
    "blog",
    "shop",
    "loyalty",
    "promotions",
    "geo",
    "maps",
    "tax",
    "invoicing",
    "accounts",
    "onboarding",
    "kyc",
    "compliance",
    "audit",
    "data-platform",
    "ml-serving",
    "feature-store",
    "etl",
    "warehouse",
    "edge",
    "sso",
    "partners",
    "vendors",
    "hr",
    "payroll",
    "wiki",
    "chat",
    "video",
    "telephony",
    "iot",
    "fleet-tracking",
    "returns",
    "subscriptions",
    "ads",
    "experiments",
    "translations",
    "assets",
    "secrets",
    "scheduling",
    "forecasting",
];

/// Extra namespaces of a team, after its main one.
const NS_SUFFIXES: &[&str] = &["-jobs", "-data", "-edge", "-internal", "-batch"];

/// Region suffixes, used when the domains run out.
const REGIONS: &[&str] = &["", "-eu", "-us", "-apac", "-latam", "-mea"];

const EXTERNALS: &[&str] = &[
    "corp-db",
    "corp-ldap",
    "smtp-relay",
    "psp",
    "bank-sftp",
    "partner-api",
    "vendor-feed",
    "saas-crm",
    "office-vpn",
    "legacy-dc",
    "backup-site",
    "sms-provider",
    "tax-service",
    "geo-provider",
    "card-network",
    "hsm-cluster",
];

const TICKET_PROJECTS: &[&str] = &["SEC", "NET", "PLAT", "OPS", "INC", "CHG"];

const REASONS: &[&str] = &[
    "PCI: card data leaves only towards the processor",
    "vendor #12 needs it for the nightly export",
    "temporary: remove after the migration",
    "required by the SLA with the partner",
    "audit finding 2024-07, scoped to this workload",
];

const EXT_PORTS: &[&str] = &[
    "443",
    "5432",
    "(80, 443)",
    "636",
    "587",
    "8443",
    "1521",
    "22",
    "9000-9100",
    "3306",
    "(443, 8443)",
];
const CIDR_PORTS: &[&str] = &[
    "22",
    "443",
    "5432",
    "3306",
    "1514/udp",
    "161/udp",
    "2049",
    "(80, 443)",
    "6443",
    "30000-32767",
];
const WORLD_PORTS: &[&str] = &["443", "(80, 443)", "123/udp", "443/udp", "587"];
const EDGE_PORTS: &[&str] = &["8443", "443", "8080", "(80, 443)"];
const MONITOR_PORTS: &[&str] = &["9090", "metrics", "(9090, 9100)", "8080", "9100"];
const ALL_PODS_PORTS: &[&str] = &["9090", "8080", "(8080, 8443)", "9100"];
const CONTROLLER_PORTS: &[&str] = &["8080", "http", "(8080, 8443)"];

// ---------------------------------------------------------------------------
// The model of a fleet.

#[derive(Debug, Clone)]
struct Workload {
    name: String,
    kind: Kind,
    /// The declared selector, if any.
    selector: Option<String>,
    /// Port texts of its containers.
    ports: &'static [&'static str],
    /// Weights for picking it as a caller and as a callee.
    calls: f64,
    called: f64,
}

#[derive(Debug, Clone)]
struct Namespace {
    name: String,
    team: usize,
    isolate: Option<&'static str>,
    workloads: Vec<Workload>,
    callers: Weighted,
    callees: Weighted,
    /// Workloads that take traffic from outside (web front ends, else APIs).
    edge: Vec<usize>,
    statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
struct Team {
    name: String,
    file: String,
    meta: Vec<String>,
}

#[derive(Debug, Clone)]
struct External {
    name: String,
    text: String,
}

/// An endpoint, independent of where it is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum End {
    Workload(usize, usize),
    All(usize),
    External(usize),
    Cidr(String),
    World,
    Internet,
}

impl End {
    fn is_ip(&self) -> bool {
        matches!(self, End::External(_) | End::Cidr(_) | End::World | End::Internet)
    }
}

#[derive(Debug, Clone)]
struct Target {
    end: End,
    ports: &'static str,
}

#[derive(Debug, Clone)]
struct Statement {
    source: End,
    targets: Vec<Target>,
    allow_dns: bool,
    metadata: Vec<String>,
    comment: Option<&'static str>,
}

struct Generator {
    spec: FleetSpec,
    rng: Rng,
    namespaces: Vec<Namespace>,
    teams: Vec<Team>,
    externals: Vec<External>,
    popular: Weighted,
    monitoring: Option<usize>,
    ingress: Option<usize>,
    seen: HashSet<(End, End, &'static str)>,
    dns_sources: HashSet<(usize, usize)>,
    fallback: u32,
}

impl Generator {
    fn new(spec: &FleetSpec) -> Self {
        let namespaces = spec.namespaces.max(1);
        let spec = FleetSpec {
            namespaces,
            workloads: spec.workloads.max(namespaces),
            ..*spec
        };
        Generator {
            spec,
            rng: Rng::new(spec.seed),
            namespaces: Vec::new(),
            teams: Vec::new(),
            externals: Vec::new(),
            popular: Weighted::default(),
            monitoring: None,
            ingress: None,
            seen: HashSet::new(),
            dns_sources: HashSet::new(),
            fallback: 0,
        }
    }

    fn build(&mut self) {
        self.make_namespaces();
        self.make_workloads();
        self.make_externals();
        self.make_intents();
    }

    /// Teams and their namespaces; the platform first when there is room.
    fn make_namespaces(&mut self) {
        let n = self.spec.namespaces;
        let mut names: Vec<(String, usize)> = Vec::new();
        if n >= 3 {
            self.teams.push(Team {
                name: "team-platform".into(),
                file: "platform.np".into(),
                meta: vec!["meta k8s.example.com/cost-center = cc-1000".into()],
            });
            names.push(("monitoring".into(), 0));
            names.push(("ingress-nginx".into(), 0));
            self.monitoring = Some(0);
            self.ingress = Some(1);
        }
        let mut domains: Vec<&str> = DOMAINS.to_vec();
        self.rng.shuffle(&mut domains);
        let mut round = 0;
        'teams: while names.len() < n {
            for domain in &domains {
                if names.len() >= n {
                    break 'teams;
                }
                let region = match REGIONS.get(round) {
                    Some(r) => r.to_string(),
                    None => format!("-r{round}"),
                };
                let base = format!("{domain}{region}");
                let team = self.teams.len();
                let mut meta = Vec::new();
                if self.rng.chance(0.6) {
                    meta.push(format!("meta k8s.example.com/cost-center = cc-{}", 1001 + team));
                }
                if self.rng.chance(0.2) {
                    meta.push(format!("meta environment = {}", self.rng.pick(&["prod", "\"prod eu\"", "staging"])));
                }
                self.teams.push(Team {
                    name: format!("team-{base}"),
                    file: format!("team-{base}.np"),
                    meta,
                });
                let size = match self.rng.unit() {
                    x if x < 0.55 => 1,
                    x if x < 0.85 => 2,
                    _ => 3,
                };
                names.push((base.clone(), team));
                let mut suffixes: Vec<&str> = NS_SUFFIXES.to_vec();
                self.rng.shuffle(&mut suffixes);
                for suffix in suffixes.iter().take(size - 1) {
                    if names.len() >= n {
                        break;
                    }
                    names.push((format!("{base}{suffix}"), team));
                }
            }
            round += 1;
        }
        for (name, team) in names {
            let isolate = match self.rng.unit() {
                x if x < 0.05 => Some("ingress"),
                x if x < 0.07 => Some("both"),
                _ => None,
            };
            self.namespaces.push(Namespace {
                name,
                team,
                isolate,
                workloads: Vec::new(),
                callers: Weighted::default(),
                callees: Weighted::default(),
                edge: Vec::new(),
                statements: Vec::new(),
            });
        }
        // Some namespaces are called from everywhere (identity, messaging...).
        let mut rank: Vec<usize> = (0..n).collect();
        self.rng.shuffle(&mut rank);
        let mut weights = vec![0.0; n];
        for (r, &i) in rank.iter().enumerate() {
            weights[i] = 1.0 / ((r + 1) as f64).powf(0.9);
        }
        self.popular = Weighted::new(weights);
    }

    fn make_workloads(&mut self) {
        let n = self.namespaces.len();
        let weights: Vec<f64> = (0..n).map(|_| 0.3 + 2.0 * self.rng.unit().powi(2)).collect();
        let counts = apportion(self.spec.workloads, &weights, 1);
        let kind_weights = Weighted::new(Kind::ALL.iter().map(|k| k.share()));
        for (i, count) in counts.into_iter().enumerate() {
            let mut workloads: Vec<Workload> = Vec::new();
            let fixed: &[(&str, Kind, &str)] = if Some(i) == self.monitoring {
                &[
                    ("prometheus", Kind::Worker, "app.kubernetes.io/name=prometheus"),
                    ("grafana", Kind::Web, "app.kubernetes.io/name=grafana"),
                    ("alertmanager", Kind::Api, "app.kubernetes.io/name=alertmanager"),
                ]
            } else if Some(i) == self.ingress {
                &[(
                    "controller",
                    Kind::Web,
                    "app.kubernetes.io/name=ingress-nginx, app.kubernetes.io/component=controller",
                )]
            } else {
                &[]
            };
            for (name, kind, selector) in fixed.iter().take(count) {
                workloads.push(Workload {
                    name: name.to_string(),
                    kind: *kind,
                    selector: Some(selector.to_string()),
                    ports: kind.bases()[0].1,
                    calls: kind.calls(),
                    called: kind.called(),
                });
            }
            while workloads.len() < count {
                let kind = Kind::ALL[kind_weights.pick(&mut self.rng)];
                let (base, ports) = *self.rng.pick(kind.bases());
                let taken = |name: &str| workloads.iter().any(|w| w.name == name);
                let mut name = base.to_string();
                if taken(&name) {
                    name = format!("{base}{}", self.rng.pick(NAME_SUFFIXES));
                }
                let mut k = 2;
                while taken(&name) {
                    name = format!("{base}-{k}");
                    k += 1;
                }
                let hub = 0.3 + 4.0 * self.rng.unit().powi(4);
                workloads.push(Workload {
                    name,
                    kind,
                    selector: None,
                    ports,
                    calls: kind.calls() * (0.5 + self.rng.unit()),
                    called: kind.called() * hub,
                });
            }
            let namespace = self.namespaces[i].name.clone();
            self.declare(&mut workloads, &namespace);
            let ns = &mut self.namespaces[i];
            ns.callers = Weighted::new(workloads.iter().map(|w| w.calls));
            ns.callees = Weighted::new(workloads.iter().map(|w| w.called));
            ns.edge = (0..workloads.len()).filter(|&w| workloads[w].kind == Kind::Web).collect();
            if ns.edge.is_empty() {
                ns.edge = (0..workloads.len()).filter(|&w| workloads[w].kind == Kind::Api).collect();
            }
            if ns.edge.is_empty() {
                ns.edge = vec![0];
            }
            ns.workloads = workloads;
        }
    }

    /// Declares about 40% of the workloads with custom selectors, plus every
    /// one whose name is within "did you mean" distance of another (so an
    /// undeclared name never draws a typo warning).
    fn declare(&mut self, workloads: &mut [Workload], namespace: &str) {
        let mut declared: Vec<bool> = workloads.iter().map(|w| w.selector.is_some() || self.rng.chance(0.4)).collect();
        loop {
            let mut changed = false;
            for t in 0..workloads.len() {
                if declared[t] {
                    continue;
                }
                let close = (0..workloads.len()).any(|n| {
                    n != t && declared[n] && {
                        let d = crate::check::edit_distance(&workloads[t].name, &workloads[n].name);
                        d > 0 && d <= typo_distance(&workloads[n].name)
                    }
                });
                if close {
                    declared[t] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (w, declared) in workloads.iter_mut().zip(declared) {
            if !declared || w.selector.is_some() {
                continue;
            }
            let name = &w.name;
            w.selector = Some(match self.rng.below(8) {
                0 | 1 => format!("app.kubernetes.io/name={name}"),
                2 => format!("app.kubernetes.io/name={name}, app.kubernetes.io/part-of={namespace}"),
                3 => format!("app={name}, tier={}", w.kind.tier()),
                4 => format!("app in ({name}, {name}-canary)"),
                5 => format!("app.kubernetes.io/name={name}, track notin (canary, shadow)"),
                6 => format!("app={name}, version!=v1"),
                _ => format!("app.kubernetes.io/component={name}, app.kubernetes.io/instance"),
            });
        }
    }

    fn make_externals(&mut self) {
        let count = (self.spec.namespaces / 5).max(4);
        let workload_names: HashSet<&str> = self
            .namespaces
            .iter()
            .flat_map(|ns| ns.workloads.iter().map(|w| w.name.as_str()))
            .collect();
        for k in 0..count {
            let base = EXTERNALS[k % EXTERNALS.len()];
            let mut name = match k / EXTERNALS.len() {
                0 => base.to_string(),
                r => format!("{base}-{}", r + 1),
            };
            while workload_names.contains(name.as_str()) {
                name.push_str("-net");
            }
            let (a, b) = ((k / 256) as u8, (k % 256) as u8);
            let text = match self.rng.below(10) {
                0 | 1 => format!("2001:db8:{:x}::/48 except 2001:db8:{:x}:ff::/64", 0x100 + k, 0x100 + k),
                2..=4 => format!("10.{}.0.0/16 except 10.{}.5.0/24", 20 + k % 200, 20 + k % 200),
                5 => format!("172.{}.{b}.0/24", 16 + a % 16),
                _ => format!("203.{}.{b}.0/24", a % 200),
            };
            self.externals.push(External { name, text });
        }
    }

    fn make_intents(&mut self) {
        let weights: Vec<f64> = self.namespaces.iter().map(|ns| ns.workloads.len() as f64).collect();
        let budgets = apportion(self.spec.intents, &weights, 0);
        for (here, budget) in budgets.into_iter().enumerate() {
            let mut left = budget;
            while left > 0 {
                let mut st = self.statement(here, left);
                if st.targets.is_empty() {
                    st = self.fallback_statement(here);
                }
                left -= st.targets.len();
                self.decorate(here, &mut st);
                self.namespaces[here].statements.push(st);
            }
        }
    }

    /// One statement written in namespace `here`, with at most `max` targets.
    fn statement(&mut self, here: usize, max: usize) -> Statement {
        let roll = self.rng.unit();
        let ns = &self.namespaces[here];
        let edge = *self.rng.pick(&ns.edge);
        let (source, wanted, targets_here): (End, usize, bool) = match roll {
            // `monitoring/prometheus -> *:9090`, or one workload's metrics.
            x if x < 0.04 && self.monitoring.is_some() => (End::Workload(self.monitoring.unwrap_or(0), 0), 1, true),
            // `ingress-nginx/controller -> web:8080`.
            x if x < 0.07 && self.ingress.is_some() => (End::Workload(self.ingress.unwrap_or(0), 0), 1 + self.rng.below(2), true),
            // `world -> web:443`, `internet -> web:443`.
            x if x < 0.085 => (if self.rng.chance(0.7) { End::World } else { End::Internet }, 1, true),
            // `partner -> api:8443`.
            x if x < 0.095 => (End::External(self.rng.below(self.externals.len())), 1, true),
            // `* -> redis:6379`: the whole namespace may use it.
            x if x < 0.115 => (End::All(here), 1, true),
            // `data-platform/* -> postgres:5432`, `other/caller -> api:8080`.
            x if x < 0.14 => {
                let other = self.popular.pick(&mut self.rng);
                let src = if other == here || self.rng.chance(0.5) {
                    End::All(other)
                } else {
                    let w = self.namespaces[other].callers.pick(&mut self.rng);
                    End::Workload(other, w)
                };
                (src, 1, true)
            }
            // A workload of this namespace calling out.
            _ => {
                let w = ns.callers.pick(&mut self.rng);
                let wanted = match self.rng.unit() {
                    x if x < 0.55 => 1,
                    x if x < 0.80 => 2,
                    x if x < 0.93 => 3,
                    _ => 4,
                };
                (End::Workload(here, w), wanted, false)
            }
        };
        let mut st = Statement {
            source: source.clone(),
            targets: Vec::new(),
            allow_dns: false,
            metadata: Vec::new(),
            comment: None,
        };
        let wanted = wanted.min(max);
        let mut tries = 0;
        while st.targets.len() < wanted && tries < 12 {
            tries += 1;
            let target = if targets_here {
                self.inbound_target(here, &source, edge)
            } else {
                self.outbound_target(here)
            };
            if source.is_ip() && target.end.is_ip() || source == target.end {
                continue;
            }
            // Towards an IP block only the source's egress half exists: in a
            // namespace that does not isolate egress, the intent would do nothing.
            if target.end.is_ip() && !self.isolates_egress(&source) {
                continue;
            }
            if self.seen.insert((source.clone(), target.end.clone(), target.ports)) {
                st.targets.push(target);
            }
        }
        st
    }

    /// Whether the pods of `end` are in a namespace that isolates egress.
    fn isolates_egress(&self, end: &End) -> bool {
        match end {
            End::Workload(n, _) | End::All(n) => self.namespaces[*n].isolate != Some("ingress"),
            _ => false,
        }
    }

    /// A target in namespace `here` for a source from elsewhere.
    fn inbound_target(&mut self, here: usize, source: &End, edge: usize) -> Target {
        let ns = &self.namespaces[here];
        match source {
            End::Workload(m, 0) if Some(*m) == self.monitoring => {
                if self.rng.chance(0.6) {
                    Target {
                        end: End::All(here),
                        ports: self.rng.word(MONITOR_PORTS),
                    }
                } else {
                    let w = self.rng.below(ns.workloads.len());
                    Target {
                        end: End::Workload(here, w),
                        ports: self.rng.word(MONITOR_PORTS),
                    }
                }
            }
            End::Workload(i, 0) if Some(*i) == self.ingress => {
                let w = if self.rng.chance(0.6) { edge } else { *self.rng.pick(&ns.edge) };
                Target {
                    end: End::Workload(here, w),
                    ports: self.rng.word(CONTROLLER_PORTS),
                }
            }
            End::World | End::Internet | End::External(_) => Target {
                end: End::Workload(here, edge),
                ports: self.rng.word(EDGE_PORTS),
            },
            _ => {
                let w = ns.callees.pick(&mut self.rng);
                let ports = self.workload_ports(here, w);
                Target {
                    end: End::Workload(here, w),
                    ports,
                }
            }
        }
    }

    /// A target for a workload of namespace `here`.
    fn outbound_target(&mut self, here: usize) -> Target {
        let roll = self.rng.unit();
        match roll {
            x if x < 0.58 => {
                let w = self.namespaces[here].callees.pick(&mut self.rng);
                let ports = self.workload_ports(here, w);
                Target {
                    end: End::Workload(here, w),
                    ports,
                }
            }
            x if x < 0.85 => {
                let other = self.popular.pick(&mut self.rng);
                let w = self.namespaces[other].callees.pick(&mut self.rng);
                let ports = self.workload_ports(other, w);
                Target {
                    end: End::Workload(other, w),
                    ports,
                }
            }
            x if x < 0.88 => {
                let other = self.popular.pick(&mut self.rng);
                Target {
                    end: End::All(other),
                    ports: self.rng.word(ALL_PODS_PORTS),
                }
            }
            x if x < 0.94 => Target {
                end: End::External(self.rng.below(self.externals.len())),
                ports: self.rng.word(EXT_PORTS),
            },
            x if x < 0.97 => {
                let cidr = match self.rng.below(4) {
                    0 => format!("192.168.{}.0/24", self.rng.below(256)),
                    1 => format!("172.{}.{}.0/24", 16 + self.rng.below(16), self.rng.below(256)),
                    2 => format!("198.51.100.{}/28", 16 * self.rng.below(16)),
                    _ => format!("10.{}.{}.0/24", 100 + self.rng.below(100), self.rng.below(256)),
                };
                Target {
                    end: End::Cidr(cidr),
                    ports: self.rng.word(CIDR_PORTS),
                }
            }
            _ => Target {
                end: if self.rng.chance(0.7) { End::Internet } else { End::World },
                ports: self.rng.word(WORLD_PORTS),
            },
        }
    }

    /// The ports a caller uses towards a workload: mostly its main port,
    /// sometimes another, rarely none (every port).
    fn workload_ports(&mut self, ns: usize, w: usize) -> &'static str {
        let ports = self.namespaces[ns].workloads[w].ports;
        match self.rng.unit() {
            x if x < 0.04 => "",
            x if x < 0.80 => ports[0],
            _ => self.rng.word(ports),
        }
    }

    /// A target no other intent has: a fresh /32 towards or from a workload
    /// (from, in a namespace that does not isolate egress).
    fn fallback_statement(&mut self, here: usize) -> Statement {
        loop {
            self.fallback += 1;
            let f = self.fallback;
            let w = self.namespaces[here].callers.pick(&mut self.rng);
            let cidr = End::Cidr(format!("10.{}.{}.{}/32", 200 + (f >> 16) % 56, (f >> 8) & 255, f & 255));
            let (source, end) = if self.namespaces[here].isolate == Some("ingress") {
                (cidr, End::Workload(here, w))
            } else {
                (End::Workload(here, w), cidr)
            };
            let ports = self.rng.word(CIDR_PORTS);
            if self.seen.insert((source.clone(), end.clone(), ports)) {
                return Statement {
                    source,
                    targets: vec![Target { end, ports }],
                    allow_dns: false,
                    metadata: Vec::new(),
                    comment: None,
                };
            }
        }
    }

    /// Metadata, comments and a trailing `allow dns`.
    fn decorate(&mut self, here: usize, st: &mut Statement) {
        let team = &self.teams[self.namespaces[here].team];
        if self.rng.chance(0.35) {
            st.metadata.push(format!("@owner {}", team.name));
        }
        if self.rng.chance(0.2) {
            let project = self.rng.pick(TICKET_PROJECTS);
            st.metadata.push(format!("@ticket {project}-{}", 100 + self.rng.below(9900)));
        }
        if self.rng.chance(0.04) {
            st.metadata.push(format!("@reason \"{}\"", self.rng.pick(REASONS)));
        }
        if self.rng.chance(0.05) {
            st.comment = Some(*self.rng.pick(&[
                "# see the runbook before changing this",
                "# agreed with the owners of the callee",
                "# TODO: narrow the ports once the new version is out",
            ]));
        }
        if let End::Workload(n, w) = st.source
            && n == here
            && self.namespaces[n].isolate != Some("ingress")
            && self.rng.chance(0.15)
            && self.dns_sources.insert((n, w))
        {
            st.allow_dns = true;
        }
    }

    // -----------------------------------------------------------------------
    // Text.

    fn end_text(&self, end: &End, here: usize) -> String {
        match end {
            End::Workload(n, w) if *n == here => self.namespaces[*n].workloads[*w].name.clone(),
            End::Workload(n, w) => format!("{}/{}", self.namespaces[*n].name, self.namespaces[*n].workloads[*w].name),
            End::All(n) if *n == here => "*".into(),
            End::All(n) => format!("{}/*", self.namespaces[*n].name),
            End::External(k) => self.externals[*k].name.clone(),
            End::Cidr(c) => c.clone(),
            End::World => "world".into(),
            End::Internet => "internet".into(),
        }
    }

    fn render(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = Vec::new();
        for (t, team) in self.teams.iter().enumerate() {
            let mut out = String::new();
            let _ = writeln!(
                out,
                "# {}: network intents of {} (generated by netpolc::fleet, seed {}).",
                team.file, team.name, self.spec.seed
            );
            for line in &team.meta {
                let _ = writeln!(out, "{line}");
            }
            if t == 0 {
                out.push_str("\n# Address blocks outside the cluster, shared by every team.\n");
                let width = self.externals.iter().map(|e| e.name.len()).max().unwrap_or(0);
                for e in &self.externals {
                    let _ = writeln!(out, "external {:width$} = {}", e.name, e.text);
                }
            }
            for (i, ns) in self.namespaces.iter().enumerate().filter(|(_, ns)| ns.team == t) {
                self.render_namespace(&mut out, i, ns);
            }
            files.push((team.file.clone(), out));
        }
        files.sort();
        files
    }

    fn render_namespace(&self, out: &mut String, here: usize, ns: &Namespace) {
        let _ = writeln!(out, "\nnamespace {}", ns.name);
        if let Some(isolation) = ns.isolate {
            let _ = writeln!(out, "isolate {isolation}");
        }
        let width = ns
            .workloads
            .iter()
            .filter(|w| w.selector.is_some())
            .map(|w| w.name.len())
            .max()
            .unwrap_or(0);
        let mut any = false;
        for w in &ns.workloads {
            if let Some(selector) = &w.selector {
                let _ = writeln!(out, "workload {:width$} = {selector}", w.name);
                any = true;
            }
        }
        if any {
            out.push('\n');
        }
        if ns.isolate != Some("ingress") {
            out.push_str("allow dns\n");
        }
        for st in &ns.statements {
            if !st.metadata.is_empty() || st.comment.is_some() {
                out.push('\n');
            }
            if let Some(c) = st.comment {
                let _ = writeln!(out, "{c}");
            }
            for m in &st.metadata {
                let _ = writeln!(out, "{m}");
            }
            let source = self.end_text(&st.source, here);
            let mut items: Vec<String> = st
                .targets
                .iter()
                .map(|t| {
                    let end = self.end_text(&t.end, here);
                    if t.ports.is_empty() { end } else { format!("{end}:{}", t.ports) }
                })
                .collect();
            if st.allow_dns {
                items.push("allow dns".into());
            }
            let head = format!("{source} -> ");
            // A public entry point is meant: say so, as a real team would (W0103).
            let silenced = if st.source == End::World {
                "  # netpolc: allow W0103 -- public entry point"
            } else {
                ""
            };
            if items.len() >= 3 {
                let indent = " ".repeat(head.len());
                let _ = writeln!(out, "{head}{}{silenced}", items.join(&format!(",\n{indent}")));
            } else {
                let _ = writeln!(out, "{head}{}{silenced}", items.join(", "));
            }
        }
    }
}

/// The "did you mean" threshold of `check` (kept in step with it by the tests).
fn typo_distance(name: &str) -> usize {
    match name.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Severity;
    use crate::ir::PeerName;

    const SMALL: FleetSpec = FleetSpec {
        namespaces: 20,
        workloads: 200,
        intents: 1_000,
        seed: 42,
    };

    fn compile(files: &[(String, String)]) -> crate::Compilation {
        let mut sources = crate::Sources::new();
        for (name, text) in files {
            sources.add(name.as_str(), text.as_str());
        }
        crate::compile(sources, Vec::new(), &crate::Config::default())
    }

    #[test]
    fn same_seed_same_fleet() {
        assert_eq!(generate(&SMALL), generate(&SMALL));
        assert_ne!(generate(&SMALL), generate(&FleetSpec { seed: 43, ..SMALL }));
    }

    #[test]
    fn small_fleet_compiles_cleanly_with_the_intents_asked() {
        let files = generate(&SMALL);
        let out = compile(&files);
        let problems: Vec<_> = out.diagnostics.iter().filter(|d| !d.code.as_str().starts_with("W01")).collect();
        assert!(
            problems.is_empty(),
            "{} errors, {} warnings:\n{}",
            problems.iter().filter(|d| d.severity() == Severity::Error).count(),
            problems.iter().filter(|d| d.severity() == Severity::Warning).count(),
            out.render_diagnostics()
        );
        assert!(files.iter().any(|(_, text)| text.contains("# netpolc: allow W0103")));
        assert!(!out.diagnostics.iter().any(|d| d.code == crate::diagnostics::Code::IngressFromWorld));
        let intents = out.program.flows.iter().filter(|f| *f.target.name() != PeerName::Dns).count();
        assert_eq!(intents, SMALL.intents);
        assert_eq!(out.program.namespaces.len(), SMALL.namespaces);
        assert!(
            out.program.namespaces.values().all(|n| n.declared),
            "every namespace named is declared"
        );
        assert!(!out.policies.is_empty());
    }

    #[test]
    fn tiny_and_odd_sizes_still_compile() {
        for spec in [
            FleetSpec {
                namespaces: 1,
                workloads: 1,
                intents: 30,
                seed: 1,
            },
            FleetSpec {
                namespaces: 2,
                workloads: 1,
                intents: 10,
                seed: 2,
            },
            FleetSpec {
                namespaces: 3,
                workloads: 3,
                intents: 0,
                seed: 3,
            },
            FleetSpec {
                namespaces: 7,
                workloads: 300,
                intents: 700,
                seed: 4,
            },
        ] {
            let out = compile(&generate(&spec));
            assert!(!out.has_errors(), "{spec:?}\n{}", out.render_diagnostics());
            let intents = out.program.flows.iter().filter(|f| *f.target.name() != PeerName::Dns).count();
            assert_eq!(intents, spec.intents, "{spec:?}");
        }
    }

    #[test]
    fn typo_threshold_matches_check() {
        // An undeclared name at this distance from a declared one must warn.
        let out = crate::compile_str(
            "t.np",
            "namespace a\nworkload billing = app=billing\nallow dns\nbillinx -> billing:80\n",
        );
        assert!(
            out.diagnostics
                .iter()
                .any(|d| d.code == crate::diagnostics::Code::UnknownWorkloadTypo)
        );
        assert_eq!(typo_distance("billing"), 2);
    }

    #[test]
    fn apportion_is_exact() {
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0], 1).iter().sum::<usize>(), 10);
        assert_eq!(apportion(2, &[1.0, 5.0, 1.0], 1).iter().sum::<usize>(), 2);
        assert!(apportion(100, &[0.1, 9.0], 1).iter().all(|&p| p >= 1));
    }
}
