//! The project file, `netpolc.toml`: finding it above the inputs, reading it
//! into a [`Config`], and showing its problems like those of any input file
//! (docs/configuration.md lists every key).

use crate::ast::Span;
use crate::check::edit_distance;
use crate::cidr::Cidr;
use crate::config::{Config, DnsLocation, IpBlockRule, MetadataPattern, ProjectFile};
use crate::diagnostics::{Code, Diagnostic, Severity};
use crate::governance::Date;
use crate::ir::{LabelSelector, PortNumber, PortSpec, Protocol};
use crate::source::{InputError, SourceFile, Sources, lower_io};
use crate::validate;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// The name of the project file.
pub const FILE_NAME: &str = "netpolc.toml";

/// The environment variable that fixes today's date (`YYYY-MM-DD`) for
/// `@expires`, so that tests and reproducible builds do not depend on the clock.
pub const TODAY_VARIABLE: &str = "NETPOLC_TODAY";

/// The settings of a run: the file given with `--config`, else the one
/// found above the inputs, else the defaults; today's date from
/// [`TODAY_VARIABLE`] or the clock.
pub fn configure(paths: &[PathBuf], explicit: Option<&Path>) -> Result<Config, InputError> {
    let file = match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => discover(paths)?,
    };
    let mut config = match file {
        Some(path) => load(&path)?,
        None => Config::default(),
    };
    config.today = Some(today()?);
    Ok(config)
}

/// The project file of `paths`: for each, the first `netpolc.toml` in its
/// folder (a file's parent) or above, up to the file-system root. Inputs
/// that lead to different files (or some to none) are a usage error.
pub fn discover(paths: &[PathBuf]) -> Result<Option<PathBuf>, InputError> {
    let mut found: Option<(Option<PathBuf>, &PathBuf)> = None;
    for path in paths {
        let start = if path.is_dir() {
            path.clone()
        } else {
            path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        };
        let start = std::path::absolute(&start).unwrap_or(start);
        let file = start
            .ancestors()
            .map(|dir| dir.join(FILE_NAME))
            .find(|candidate| candidate.is_file())
            .map(|f| shown(&f));
        match &found {
            None => found = Some((file, path)),
            Some((first, first_path)) if first.as_deref().map(same_file) != file.as_deref().map(same_file) => {
                let describe = |f: &Option<PathBuf>| f.as_ref().map_or("no project file".to_string(), |f| format!("`{}`", f.display()));
                return Err(InputError(format!(
                    "`{}` and `{}` belong to different projects ({} and {}); compile them separately, or choose one with --config FILE",
                    first_path.display(),
                    path.display(),
                    describe(first),
                    describe(&file)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(found.and_then(|(file, _)| file))
}

/// A found file as users would write it: relative to the working folder when inside it.
fn shown(file: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| file.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| file.to_path_buf())
}

/// A file's identity, whatever path leads to it.
fn same_file(file: &Path) -> PathBuf {
    file.canonicalize().unwrap_or_else(|_| file.to_path_buf())
}

/// Reads a project file. Only I/O fails; problems in the content are
/// diagnostics in [`Config::file`].
pub fn load(path: &Path) -> Result<Config, InputError> {
    let bytes = std::fs::read(path).map_err(|e| InputError(format!("cannot read `{}`: {}", path.display(), lower_io(&e))))?;
    let text = String::from_utf8(bytes).map_err(|_| InputError(format!("`{}` is not UTF-8 text", path.display())))?;
    Ok(read(&path.to_string_lossy(), &text))
}

/// Today, from [`TODAY_VARIABLE`] when set, else the system clock (UTC).
pub fn today() -> Result<Date, InputError> {
    match std::env::var(TODAY_VARIABLE) {
        Ok(text) if !text.is_empty() => Date::parse(&text).ok_or_else(|| {
            InputError(format!(
                "{TODAY_VARIABLE}=`{text}` is not a date: write YYYY-MM-DD, or unset it to use the clock"
            ))
        }),
        _ => {
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Ok(Date::from_unix_days(seconds / 86_400))
        }
    }
}

/// Adds the project file to `sources` (after the `.np` files, which are
/// parsed by then; once, for sources that are compiled again) and returns
/// its diagnostics, pointing into it.
pub fn attach(config: &Config, sources: &mut Sources) -> Vec<Diagnostic> {
    let Some(file) = &config.file else { return Vec::new() };
    let name = Path::new(&file.path)
        .file_name()
        .map_or_else(|| file.path.clone(), |n| n.to_string_lossy().into_owned());
    let index = sources.push_project_file(SourceFile {
        path: file.path.clone(),
        name,
        text: file.text.clone(),
    });
    let mut out = file.diagnostics.clone();
    for d in &mut out {
        for label in &mut d.labels {
            label.span.file = index;
        }
    }
    out
}

/// Reads the text of a project file shown as `path`.
pub fn read(path: &str, text: &str) -> Config {
    let mut config = Config::default();
    let mut reader = Reader::default();
    let (document, errors) = DeTable::parse_recoverable(text);
    // The errors after the first are mostly its consequences: show one.
    for e in errors.iter().take(1) {
        let range = e.span().unwrap_or(0..0);
        let message = e.message().lines().next().unwrap_or("").to_string();
        reader.problems.push(
            Diagnostic::new(Code::ProjectFileSyntax, span(range), format!("invalid TOML: {message}"))
                .with_label("here")
                .with_help("netpolc.toml is TOML: `key = value` lines under `[table]` headers, strings in double quotes"),
        );
    }
    if errors.is_empty() {
        reader.document(document.get_ref(), &mut config);
    }
    config.file = Some(ProjectFile {
        path: path.to_string(),
        text: text.to_string(),
        diagnostics: reader.problems,
    });
    config
}

type Value<'i> = toml::Spanned<DeValue<'i>>;

/// Every table of the file and its keys; `""` is the top level.
const KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "workload_label",
            "annotation_prefix",
            "dns",
            "output",
            "lints",
            "metadata",
            "ip_blocks",
            "consent",
            "ports",
            "expiry",
        ],
    ),
    ("dns", &["namespace", "pods", "cidr", "ports"]),
    ("output", &["namespaces"]),
    ("lints", &["allow"]),
    ("metadata", &["required", "patterns"]),
    ("ip_blocks", &["allowed", "world", "internet"]),
    ("consent", &["cross_namespace"]),
    ("ports", &["forbidden", "max_range"]),
    ("expiry", &["warn_days"]),
];

fn span(range: std::ops::Range<usize>) -> Span {
    Span {
        file: 0,
        start: range.start,
        end: range.end,
    }
}

fn type_name(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[derive(Default)]
struct Reader {
    problems: Vec<Diagnostic>,
}

impl Reader {
    fn invalid(&mut self, value: &Value, message: String, label: impl Into<String>, help: impl Into<String>) {
        self.problems.push(
            Diagnostic::new(Code::InvalidSetting, span(value.span()), message)
                .with_label(label)
                .with_help(help),
        );
    }

    fn wrong_type(&mut self, value: &Value, key: &str, expected: &str) {
        let found = type_name(value.get_ref());
        self.invalid(
            value,
            format!("`{key}` must be {expected}, not {found}"),
            found,
            format!("see docs/configuration.md for `{key}`"),
        );
    }

    /// The entries of `table` whose keys are known; the others are reported.
    fn entries<'a, 'i>(&mut self, table: &'a DeTable<'i>, path: &str) -> Vec<(&'a str, &'a Value<'i>)> {
        let known = KEYS.iter().find(|(t, _)| *t == path).map_or(&[][..], |(_, k)| *k);
        let mut out = Vec::new();
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                out.push((name, value));
                continue;
            }
            let full = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            let elsewhere = KEYS.iter().find(|(t, keys)| *t != path && keys.contains(&name)).map(|(t, _)| *t);
            let close = known
                .iter()
                .map(|k| (edit_distance(name, k), *k))
                .filter(|(d, k)| *d <= 2.max(k.len() / 4))
                .min();
            let help = match (elsewhere, close) {
                (_, Some((_, k))) => format!("did you mean `{k}`?"),
                (Some(""), None) => format!("`{name}` is a top-level key: put it before the first `[table]`"),
                (Some(t), None) => format!("`{name}` belongs in the `[{t}]` table"),
                (None, None) => {
                    let listed = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                    if path.is_empty() {
                        format!("the settings are {listed}")
                    } else {
                        format!("the keys of `[{path}]` are {listed}")
                    }
                }
            };
            self.problems.push(
                Diagnostic::new(
                    Code::UnknownSetting,
                    span(key.span()),
                    format!("unknown key `{full}` in netpolc.toml"),
                )
                .with_label("not a netpolc setting")
                .with_help(help),
            );
        }
        out
    }

    fn table<'a, 'i>(&mut self, value: &'a Value<'i>, key: &str) -> Option<&'a DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(value, key, "a table");
                None
            }
        }
    }

    fn string(&mut self, value: &Value, key: &str) -> Option<String> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(value, key, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, value: &Value, key: &str) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(value, key, "`true` or `false`");
                None
            }
        }
    }

    fn integer(&mut self, value: &Value, key: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        let DeValue::Integer(i) = value.get_ref() else {
            self.wrong_type(value, key, "an integer");
            return None;
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.invalid(
                    value,
                    format!("`{key}` must be from {} to {}", range.start(), range.end()),
                    "out of range",
                    format!("see docs/configuration.md for `{key}`"),
                );
                None
            }
        }
    }

    fn array<'a, 'i>(&mut self, value: &'a Value<'i>, key: &str) -> &'a [Value<'i>] {
        match value.get_ref() {
            DeValue::Array(items) => items,
            _ => {
                self.wrong_type(value, key, "an array");
                &[]
            }
        }
    }

    /// The strings of an array, each with its value for diagnostics.
    fn strings<'a, 'i>(&mut self, value: &'a Value<'i>, key: &str) -> Vec<(String, &'a Value<'i>)> {
        let mut out = Vec::new();
        for item in self.array(value, key) {
            if let Some(s) = self.string(item, &format!("{key}[]")) {
                out.push((s, item));
            }
        }
        out
    }

    /// Namespace names, each a DNS label.
    fn namespaces(&mut self, value: &Value, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (name, item) in self.strings(value, key) {
            match validate::is_dns1123_label(&name) {
                Ok(()) => out.push(name),
                Err(reason) => self.invalid(
                    item,
                    format!("`{name}` in `{key}` is not a namespace name"),
                    reason,
                    "namespace names are DNS labels: lower-case letters, digits and `-`",
                ),
            }
        }
        out
    }

    fn cidr(&mut self, text: &str, value: &Value, key: &str) -> Option<Cidr> {
        match Cidr::parse(text) {
            Ok(c) if c.has_host_bits() => {
                self.invalid(
                    value,
                    format!("`{text}` in `{key}` has host bits set"),
                    format!("this means `{}`", c.canonical()),
                    format!("write `{}`", c.canonical()),
                );
                None
            }
            Ok(c) => Some(c),
            Err(reason) => {
                self.invalid(
                    value,
                    format!("`{text}` in `{key}` is not a valid CIDR"),
                    reason,
                    "write an address and a prefix length, such as `10.0.0.0/8` or `2001:db8::/32`",
                );
                None
            }
        }
    }

    /// Ports as in `.np` files (`22`, `53/udp`, `6000-6063`), or bare integers.
    fn ports(&mut self, value: &Value, key: &str) -> Vec<PortSpec> {
        let mut out = Vec::new();
        for item in self.array(value, key) {
            let text = match item.get_ref() {
                DeValue::Integer(i) => i.as_str().to_string(),
                DeValue::String(s) => s.to_string(),
                _ => {
                    self.wrong_type(item, &format!("{key}[]"), "a port number or a string such as \"53/udp\"");
                    continue;
                }
            };
            match port(&text) {
                Ok(spec) => out.push(spec),
                Err(reason) => self.invalid(
                    item,
                    format!("`{text}` in `{key}` is not a port"),
                    reason,
                    "write a number from 1 to 65535 or a range, with `/udp` or `/sctp` for those protocols (`22`, \"53/udp\", \"6000-6063\")",
                ),
            }
        }
        out
    }

    fn document(&mut self, root: &DeTable, config: &mut Config) {
        for (key, value) in self.entries(root, "") {
            match key {
                "workload_label" => {
                    if let Some(label) = self.string(value, key) {
                        match validate::validate_qualified_name(&label).first() {
                            None => config.workload_label = label,
                            Some(reason) => self.invalid(
                                value,
                                format!("`{label}` is not a label key"),
                                reason.clone(),
                                "a label key such as `app` or `app.kubernetes.io/name`",
                            ),
                        }
                    }
                }
                "annotation_prefix" => {
                    if let Some(prefix) = self.string(value, key) {
                        match validate::is_dns1123_subdomain(&prefix) {
                            Ok(()) => config.annotation_prefix = prefix,
                            Err(reason) => self.invalid(
                                value,
                                format!("`{prefix}` is not an annotation prefix"),
                                reason,
                                "a DNS subdomain such as `netpolc.io` or `policy.example.com`",
                            ),
                        }
                    }
                }
                "dns" => {
                    if let Some(t) = self.table(value, key) {
                        self.dns(t, config);
                    }
                }
                "output" => {
                    let Some(t) = self.table(value, key) else { continue };
                    for (_, v) in self.entries(t, "output") {
                        match self.string(v, "output.namespaces").as_deref() {
                            Some("all") => config.declared_only = false,
                            Some("declared") => config.declared_only = true,
                            Some(other) => self.invalid(
                                v,
                                format!("`output.namespaces` is `\"all\"` or `\"declared\"`, not `{other:?}`"),
                                "unknown choice",
                                "`\"declared\"` writes policies into declared namespaces only",
                            ),
                            None => {}
                        }
                    }
                }
                "lints" => {
                    let Some(t) = self.table(value, key) else { continue };
                    for (_, v) in self.entries(t, "lints") {
                        for (code, item) in self.strings(v, "lints.allow") {
                            match Code::ALL.iter().find(|c| c.as_str() == code) {
                                Some(c) if c.severity() == Severity::Warning => {
                                    config.silenced.insert(*c);
                                }
                                Some(_) => self.invalid(
                                    item,
                                    format!("`{code}` is an error and cannot be allowed"),
                                    "an error",
                                    "only warnings (`W` codes) can be silenced; fix the input instead",
                                ),
                                None => self.invalid(
                                    item,
                                    format!("`{code}` is not a diagnostic code"),
                                    "unknown code",
                                    "the codes are listed in docs/errors.md, such as `W0003`",
                                ),
                            }
                        }
                    }
                }
                "metadata" => {
                    if let Some(t) = self.table(value, key) {
                        self.metadata(t, config);
                    }
                }
                "ip_blocks" => {
                    let Some(t) = self.table(value, key) else { continue };
                    let mut rule = IpBlockRule::default();
                    for (k, v) in self.entries(t, "ip_blocks") {
                        match k {
                            "allowed" => {
                                for (text, item) in self.strings(v, "ip_blocks.allowed") {
                                    if let Some(c) = self.cidr(&text, item, "ip_blocks.allowed") {
                                        rule.allowed.push(c);
                                    }
                                }
                            }
                            "world" => rule.world = self.namespaces(v, "ip_blocks.world"),
                            _ => rule.internet = self.namespaces(v, "ip_blocks.internet"),
                        }
                    }
                    config.rules.ip_blocks = Some(rule);
                }
                "consent" => {
                    let Some(t) = self.table(value, key) else { continue };
                    for (_, v) in self.entries(t, "consent") {
                        if let Some(on) = self.boolean(v, "consent.cross_namespace") {
                            config.rules.consent = on;
                        }
                    }
                }
                "ports" => {
                    let Some(t) = self.table(value, key) else { continue };
                    for (k, v) in self.entries(t, "ports") {
                        if k == "forbidden" {
                            config.rules.forbidden_ports = self.ports(v, "ports.forbidden");
                        } else if let Some(n) = self.integer(v, "ports.max_range", 1..=65535) {
                            config.rules.max_port_range = u32::try_from(n).ok();
                        }
                    }
                }
                _ => {
                    let Some(t) = self.table(value, key) else { continue };
                    for (_, v) in self.entries(t, "expiry") {
                        if let Some(n) = self.integer(v, "expiry.warn_days", 0..=3650) {
                            config.rules.expiry_warn_days = u32::try_from(n).unwrap_or(0);
                        }
                    }
                }
            }
        }
    }

    fn dns(&mut self, table: &DeTable, config: &mut Config) {
        let (mut namespace, mut pods, mut cidr) = (None, None, None);
        for (key, value) in self.entries(table, "dns") {
            match key {
                "namespace" => {
                    let Some(name) = self.string(value, "dns.namespace") else {
                        continue;
                    };
                    match validate::is_dns1123_label(&name) {
                        Ok(()) => namespace = Some(name),
                        Err(reason) => self.invalid(
                            value,
                            format!("`{name}` is not a namespace name"),
                            reason,
                            "namespace names are DNS labels: lower-case letters, digits and `-`",
                        ),
                    }
                }
                "pods" => pods = self.labels(value),
                "cidr" => {
                    if let Some(text) = self.string(value, "dns.cidr")
                        && let Some(c) = self.cidr(&text, value, "dns.cidr")
                    {
                        cidr = Some((c, value));
                    }
                }
                _ => config.dns_ports = self.ports(value, "dns.ports"),
            }
        }
        match (cidr, namespace.is_some() || pods.is_some()) {
            (Some((_, value)), true) => self.invalid(
                value,
                "`dns.cidr` and `dns.namespace`/`dns.pods` both say where DNS is".to_string(),
                "one or the other",
                "give `cidr` for an IP block such as NodeLocal DNSCache, or `namespace` and `pods` for DNS pods",
            ),
            (Some((c, _)), false) => config.dns = DnsLocation::IpBlock(c.to_string()),
            (None, _) => {
                if let DnsLocation::Pods {
                    namespace: default_namespace,
                    pods: default_pods,
                } = &mut config.dns
                {
                    if let Some(n) = namespace {
                        *default_namespace = n;
                    }
                    if let Some(p) = pods {
                        *default_pods = p;
                    }
                }
            }
        }
    }

    /// `{ "k8s-app" = "kube-dns" }`: labels that pods must all carry.
    fn labels(&mut self, value: &Value) -> Option<LabelSelector> {
        let table = self.table(value, "dns.pods")?;
        let mut selector = LabelSelector::default();
        let mut ok = true;
        for (key, v) in table.iter() {
            let k: &str = key.get_ref();
            let Some(text) = self.string(v, &format!("dns.pods.{k}")) else {
                ok = false;
                continue;
            };
            if let Some(reason) = validate::validate_qualified_name(k).first() {
                ok = false;
                self.problems.push(
                    Diagnostic::new(Code::InvalidSetting, span(key.span()), format!("`{k}` is not a label key"))
                        .with_label(reason.clone())
                        .with_help("a label key such as `k8s-app`"),
                );
            }
            if let Err(reason) = validate::validate_label_value(&text) {
                ok = false;
                self.invalid(
                    v,
                    format!("`{text}` is not a label value"),
                    reason,
                    "a label value such as `kube-dns`",
                );
            }
            selector.labels.insert(k.to_string(), text);
        }
        if selector.is_empty() && ok {
            self.invalid(
                value,
                "`dns.pods` selects no labels".to_string(),
                "every pod",
                "give the labels of the DNS pods, such as `{ \"k8s-app\" = \"kube-dns\" }`",
            );
            return None;
        }
        ok.then_some(selector)
    }

    fn metadata(&mut self, table: &DeTable, config: &mut Config) {
        for (key, value) in self.entries(table, "metadata") {
            if key == "required" {
                for (k, item) in self.strings(value, "metadata.required") {
                    if self.metadata_key(&k, item, config) {
                        config.rules.required_metadata.push(k);
                    }
                }
                continue;
            }
            let Some(patterns) = self.table(value, "metadata.patterns") else {
                continue;
            };
            for (k, v) in patterns.iter() {
                let k: &str = k.get_ref();
                let Some(pattern) = self.string(v, &format!("metadata.patterns.{k}")) else {
                    continue;
                };
                if !self.metadata_key(k, v, config) {
                    continue;
                }
                match regex::Regex::new(&format!("^(?:{pattern})$")) {
                    Ok(regex) => config.rules.metadata_patterns.push(MetadataPattern {
                        key: k.to_string(),
                        pattern,
                        regex,
                    }),
                    Err(e) => {
                        let text = e.to_string();
                        let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid pattern");
                        let reason = reason.trim().trim_start_matches("error: ").to_string();
                        self.invalid(
                            v,
                            format!("`metadata.patterns.{k}` is not a valid pattern"),
                            reason,
                            "patterns are regular expressions (Rust `regex` syntax) that must match the whole value, such as \"SEC-[0-9]+\"",
                        );
                    }
                }
            }
        }
    }

    fn metadata_key(&mut self, key: &str, value: &Value, config: &Config) -> bool {
        let full = if key.contains('/') {
            key.to_string()
        } else {
            format!("{}/{key}", config.annotation_prefix)
        };
        match validate::validate_qualified_name(&full).first() {
            None => true,
            Some(reason) => {
                self.invalid(
                    value,
                    format!("`{key}` is not a metadata key"),
                    reason.clone(),
                    "a metadata key as written after `@`, such as `owner` or `k8s.example.com/projectId`",
                );
                false
            }
        }
    }
}

/// A port as written in `.np` files, numbers only: `22`, `53/udp`, `6000-6063/tcp`.
fn port(text: &str) -> Result<PortSpec, String> {
    let (number, protocol) = match text.split_once('/') {
        Some((n, p)) => (n, p.parse::<Protocol>().map_err(|e| e.to_string())?),
        None => (text, Protocol::Tcp),
    };
    let one = |s: &str| match s.parse::<u16>() {
        Ok(p) if p >= 1 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(format!("`{s}` is not a port number from 1 to 65535")),
    };
    let port = match number.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            match a.cmp(&b) {
                std::cmp::Ordering::Less => PortNumber::Range(a, b),
                std::cmp::Ordering::Equal => PortNumber::Single(a),
                std::cmp::Ordering::Greater => return Err(format!("the range ends below its start: write `{b}-{a}`")),
            }
        }
        None => PortNumber::Single(one(number)?),
    };
    Ok(PortSpec { protocol, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(String, String)> {
        let config = read("netpolc.toml", text);
        let file = config.file.expect("file");
        file.diagnostics
            .iter()
            .map(|d| (d.code.as_str().to_string(), file.text[d.span().start..d.span().end].to_string()))
            .collect()
    }

    #[test]
    fn a_full_file_sets_every_key() {
        let config = read(
            "netpolc.toml",
            r#"
workload_label = "app.kubernetes.io/name"
annotation_prefix = "policy.example.com"
[dns]
cidr = "169.254.20.10/32"
ports = ["53/udp", 53]
[output]
namespaces = "declared"
[lints]
allow = ["W0003"]
[metadata]
required = ["owner", "k8s.example.com/projectId"]
patterns = { ticket = "SEC-[0-9]+" }
[ip_blocks]
allowed = ["10.0.0.0/8"]
world = ["frontend"]
internet = []
[consent]
cross_namespace = true
[ports]
forbidden = [22, "3389/tcp", "6000-6063"]
max_range = 100
[expiry]
warn_days = 30
"#,
        );
        assert_eq!(config.file.as_ref().map(|f| f.diagnostics.len()), Some(0), "{:?}", config.file);
        assert_eq!(config.workload_label, "app.kubernetes.io/name");
        assert_eq!(config.annotation_prefix, "policy.example.com");
        assert_eq!(config.dns, DnsLocation::IpBlock("169.254.20.10/32".into()));
        assert_eq!(config.dns_ports.len(), 2);
        assert!(config.declared_only);
        assert_eq!(config.silenced.iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["W0003"]);
        assert_eq!(config.rules.required_metadata, ["owner", "k8s.example.com/projectId"]);
        assert!(config.rules.metadata_patterns[0].regex.is_match("SEC-12"));
        assert!(
            !config.rules.metadata_patterns[0].regex.is_match("xSEC-12"),
            "patterns match whole values"
        );
        let rule = config.rules.ip_blocks.expect("ip_blocks");
        assert_eq!(rule.allowed.len(), 1);
        assert_eq!(rule.world, ["frontend"]);
        assert!(config.rules.consent);
        assert_eq!(
            config.rules.forbidden_ports[2],
            PortSpec {
                protocol: Protocol::Tcp,
                port: PortNumber::Range(6000, 6063)
            }
        );
        assert_eq!(config.rules.max_port_range, Some(100));
        assert_eq!(config.rules.expiry_warn_days, 30);
    }

    #[test]
    fn dns_pods_and_namespace() {
        let config = read("netpolc.toml", "[dns]\nnamespace = \"dns\"\npods = { app = \"coredns\" }\n");
        assert_eq!(
            config.dns,
            DnsLocation::Pods {
                namespace: "dns".into(),
                pods: LabelSelector::label("app", "coredns")
            }
        );
    }

    #[test]
    fn every_problem_points_at_its_value() {
        assert_eq!(problems("[ports\n"), [("E0601".to_string(), String::new())]);
        assert_eq!(problems("[metdata]\n"), [("E0602".to_string(), "metdata".to_string())]);
        assert_eq!(
            problems("required = [\"owner\"]\n"),
            [("E0602".to_string(), "required".to_string())]
        );
        let found = problems(
            "[ports]\nforbidden = [0, \"22/icmp\", \"90-80\"]\nmax_range = \"10\"\n[consent]\ncross_namespace = 1\n[ip_blocks]\nallowed = [\"10.0.0.1/8\", \"nope\"]\n[metadata]\npatterns = { ticket = \"SEC-(\" }\n[lints]\nallow = [\"E0101\", \"W9999\"]\n[dns]\ncidr = \"10.0.0.10/32\"\nnamespace = \"dns\"\n",
        );
        let mut spans: Vec<&str> = found.iter().map(|(_, s)| s.as_str()).collect();
        spans.sort();
        assert!(found.iter().all(|(c, _)| c == "E0603"), "{found:?}");
        let mut expected = [
            "\"10.0.0.10/32\"",
            "\"E0101\"",
            "\"W9999\"",
            "\"10.0.0.1/8\"",
            "\"nope\"",
            "\"SEC-(\"",
            "0",
            "\"22/icmp\"",
            "\"90-80\"",
            "\"10\"",
            "1",
        ];
        expected.sort();
        assert_eq!(spans, expected);
        assert_eq!(found.len(), 11, "{found:?}");
    }

    #[test]
    fn ports_read_like_np_ports() {
        assert_eq!(port("22").map(|p| p.port), Ok(PortNumber::Single(22)));
        assert_eq!(port("53/udp").map(|p| p.protocol), Ok(Protocol::Udp));
        assert_eq!(port("80-80").map(|p| p.port), Ok(PortNumber::Single(80)));
        assert!(port("65536").is_err());
        assert!(port("+1").is_err());
        assert!(port("http").is_err());
    }

    #[test]
    fn discovery_walks_up_and_refuses_disagreeing_inputs() {
        let root = std::env::temp_dir().join(format!("netpolc-discover-{}", std::process::id()));
        let (a, b) = (root.join("a/team"), root.join("b"));
        std::fs::create_dir_all(&a).expect("dirs");
        std::fs::create_dir_all(&b).expect("dirs");
        std::fs::write(root.join("a/netpolc.toml"), "").expect("write");
        std::fs::write(a.join("x.np"), "").expect("write");
        std::fs::write(b.join("y.np"), "").expect("write");
        let found = discover(&[a.join("x.np")]).expect("found");
        assert_eq!(
            found.as_deref().and_then(|p| p.file_name()).and_then(|n| n.to_str()),
            Some(FILE_NAME)
        );
        assert_eq!(discover(std::slice::from_ref(&a)).expect("found"), found);
        let e = discover(&[a.join("x.np"), b.join("y.np")]).expect_err("disagree");
        assert!(e.0.contains("different projects"), "{e}");
        std::fs::remove_dir_all(&root).ok();
    }
}
