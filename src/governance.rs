//! The organisation's rules from `netpolc.toml` (docs/configuration.md),
//! checked on the checked program so that a security review needs only read
//! what is left: required metadata and its patterns, `@expires` dates,
//! allowed IP blocks, forbidden ports and wide ranges, and cross-namespace
//! consent through `expose`. Every violation is an error at the `.np` line
//! behind it, with a hint naming the setting.

use crate::ast::Span;
use crate::cidr::Cidr;
use crate::config::{Config, IpBlockRule, Rules};
use crate::diagnostics::{Code, Diagnostic};
use crate::ir::*;
use crate::lower::local_namespaces;
use rustc_hash::{FxHashMap, FxHashSet};
use std::fmt;

/// Every rule violation of `program` under `config`.
pub fn check(program: &Program, config: &Config) -> Vec<Diagnostic> {
    let rules = &config.rules;
    let mut out = Vec::new();
    let mut intents_seen: FxHashSet<Span> = FxHashSet::default();
    let mut lines_seen: FxHashSet<Span> = FxHashSet::default();
    let declared: Vec<&String> = program.namespaces.iter().filter(|(_, i)| i.declared).map(|(n, _)| n).collect();
    let keys = AnnotationKeys::new(config);
    let mut exposures: FxHashMap<&str, Vec<&Exposure>> = FxHashMap::default();
    for e in &program.exposures {
        exposures.entry(e.namespace.as_str()).or_default().push(e);
    }
    // What no rule reads is not looked at: with no rules set (most
    // projects), only `@expires` lines are.
    let per_intent = !keys.required.is_empty() || rules.consent;
    let port_rules = !rules.forbidden_ports.is_empty() || rules.max_port_range.is_some();
    for flow in &program.flows {
        let origin = &program.origins[flow.origin];
        // Metadata belongs to the whole intent, which may have several targets.
        if per_intent && intents_seen.insert(origin.source_span) {
            out.extend(missing_metadata(origin, &keys));
            if rules.consent {
                out.extend(foreign_egress(flow, origin, &declared));
            }
        }
        for line in origin.metadata_lines.iter() {
            if keys.reads(&line.key) && lines_seen.insert(line.span) {
                out.extend(metadata_line(line, origin, config, &keys));
            }
        }
        if let Some(rule) = &rules.ip_blocks {
            out.extend(ip_blocks(flow, origin, rule));
        }
        if port_rules {
            out.extend(ports(flow, origin, rules));
        }
        if rules.consent {
            out.extend(consent(flow, origin, &exposures, &declared));
        }
    }
    out
}

/// The annotation key of a metadata key as written.
fn annotation_key(key: &str, config: &Config) -> String {
    if key.contains('/') {
        key.to_string()
    } else {
        format!("{}/{key}", config.annotation_prefix)
    }
}

/// The annotation keys the rules name, spelled out once for every intent.
struct AnnotationKeys<'c> {
    /// `metadata.required`: each key as written and as an annotation key.
    required: Vec<(&'c str, String)>,
    /// The annotation key of each of `metadata.patterns`, in order.
    patterns: Vec<String>,
    /// The annotation key of `@expires`.
    expires: String,
}

impl<'c> AnnotationKeys<'c> {
    /// Whether a rule reads the values of annotation `key`.
    fn reads(&self, key: &str) -> bool {
        key == self.expires || self.patterns.iter().any(|p| p == key)
    }

    fn new(config: &'c Config) -> Self {
        let rules = &config.rules;
        AnnotationKeys {
            required: rules
                .required_metadata
                .iter()
                .map(|k| (k.as_str(), annotation_key(k, config)))
                .collect(),
            patterns: rules.metadata_patterns.iter().map(|p| annotation_key(&p.key, config)).collect(),
            expires: annotation_key("expires", config),
        }
    }
}

/// The intent's first line, from its source to its first target.
fn intent_span(origin: &Origin) -> Span {
    origin.source_span.to(origin.span)
}

fn missing_metadata(origin: &Origin, keys: &AnnotationKeys) -> Option<Diagnostic> {
    let missing: Vec<&str> = keys
        .required
        .iter()
        .filter(|(_, full)| !origin.metadata.iter().any(|(k, v)| k == full && !v.is_empty()))
        .map(|(key, _)| *key)
        .collect();
    let first = missing.first()?;
    let listed = missing.iter().map(|k| format!("`@{k}`")).collect::<Vec<_>>().join(", ");
    Some(
        Diagnostic::new(Code::MissingMetadata, intent_span(origin), format!("`{}` has no {listed}", origin.text))
            .with_label(format!("missing {listed}"))
            .with_help(format!(
                "add `@{first} VALUE` on a line above the intent, or `meta {first} = VALUE` for the whole file (`metadata.required` in netpolc.toml)"
            )),
    )
}

/// Pattern and expiry checks of one metadata value, reported once per line
/// even when a `meta` line covers many intents.
fn metadata_line(line: &MetadataLine, origin: &Origin, config: &Config, keys: &AnnotationKeys) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (p, key) in config.rules.metadata_patterns.iter().zip(&keys.patterns) {
        if *key == line.key && !p.regex.is_match(&line.value) {
            out.push(
                Diagnostic::new(
                    Code::MetadataPattern,
                    line.span,
                    format!("`@{}` value `{}` does not match `{}`", p.key, line.value, p.pattern),
                )
                .with_label("does not match")
                .with_help(format!(
                    "`metadata.patterns.{}` in netpolc.toml requires values matching `{}` (the whole value)",
                    p.key, p.pattern
                )),
            );
        }
    }
    if line.key == keys.expires {
        out.extend(expiry(line, origin, config));
    }
    out
}

fn expiry(line: &MetadataLine, origin: &Origin, config: &Config) -> Option<Diagnostic> {
    let Some(date) = Date::parse(&line.value) else {
        return Some(
            Diagnostic::new(Code::InvalidExpiry, line.span, format!("`{}` is not a date", line.value))
                .with_label("expected YYYY-MM-DD")
                .with_help("write the last day the intent is needed, such as `@expires 2026-12-31`"),
        );
    };
    let today = config.today?;
    let left = today.days_until(date);
    let warn_days = i64::from(config.rules.expiry_warn_days);
    if left < 0 {
        Some(
            Diagnostic::new(Code::Expired, line.span, format!("`{}` expired on {date}", origin.text))
                .with_label(format!("{} day{} ago", -left, if left == -1 { "" } else { "s" }))
                .with_note("an expired intent fails the build, so that temporary access does not outlive its reason")
                .with_help("remove the intent, or give it a later date after a new review"),
        )
    } else if left <= warn_days {
        let when = match left {
            0 => "today".to_string(),
            1 => "tomorrow".to_string(),
            n => format!("in {n} days"),
        };
        Some(
            Diagnostic::new(Code::ExpiresSoon, line.span, format!("`{}` expires {when}, on {date}", origin.text))
                .with_label("its last day")
                .with_note(format!(
                    "from the day after, the build fails; this warning starts {warn_days} days before (`expiry.warn_days` in netpolc.toml)"
                ))
                .with_help("remove the intent, or give it a later date after a new review"),
        )
    } else {
        None
    }
}

/// The one namespace a pod peer lives in, if it names one.
fn named_namespace(peer: &Peer) -> Option<&str> {
    match peer {
        Peer::Pods {
            namespaces: Namespaces::Named(ns),
            ..
        } => Some(ns),
        _ => None,
    }
}

fn ip_blocks(flow: &Flow, origin: &Origin, rule: &IpBlockRule) -> Vec<Diagnostic> {
    let sides = [
        (&*flow.target, &*flow.source, origin.span),
        (&*flow.source, &*flow.target, origin.source_span),
    ];
    let mut out = Vec::new();
    for (side, pods_side, span) in sides {
        let Peer::Ips { blocks, name } = side else { continue };
        if *name == PeerName::Dns {
            continue; // where DNS lives is the project's own setting
        }
        let inside = blocks
            .iter()
            .all(|b| Cidr::parse(&b.cidr).is_ok_and(|c| rule.allowed.iter().any(|allowed| allowed.contains(c))));
        let namespace = named_namespace(pods_side);
        let (listed, key) = match name {
            PeerName::World => (namespace.is_some_and(|ns| rule.world.iter().any(|w| w == ns)), Some("world")),
            PeerName::Internet => (namespace.is_some_and(|ns| rule.internet.iter().any(|w| w == ns)), Some("internet")),
            _ => (false, None),
        };
        if inside || listed {
            continue;
        }
        let allowed = if rule.allowed.is_empty() {
            "`ip_blocks.allowed` lists no block".to_string()
        } else {
            let list: Vec<String> = rule.allowed.iter().map(|c| c.to_string()).collect();
            format!("`ip_blocks.allowed`: {}", list.join(", "))
        };
        let d = match (key, namespace) {
            (Some(key), Some(ns)) => Diagnostic::new(
                Code::IpBlockNotAllowed,
                span,
                format!("`{key}` is not allowed for the pods of namespace `{ns}`"),
            )
            .with_label(format!("`{key}` here"))
            .with_help(format!(
                "list `{ns}` in `ip_blocks.{key}` in netpolc.toml if it must face every address, or use a block inside the allowed ones"
            )),
            (Some(key), None) => Diagnostic::new(
                Code::IpBlockNotAllowed,
                span,
                format!("`{key}` is allowed only for the pods of the namespaces listed in `ip_blocks.{key}`"),
            )
            .with_label(format!("`{key}` facing pods of no single namespace"))
            .with_help("write the intent for the pods of one listed namespace"),
            (None, _) => {
                let shown: Vec<String> = blocks.iter().map(|b| b.cidr.clone()).collect();
                let what = match name {
                    PeerName::External(n) => format!("external `{n}` ({})", shown.join(", ")),
                    _ => format!("`{}`", shown.join(", ")),
                };
                Diagnostic::new(Code::IpBlockNotAllowed, span, format!("{what} is outside the allowed IP blocks"))
                    .with_label("not inside an allowed block")
                    .with_help("use a block inside `ip_blocks.allowed` in netpolc.toml, or have this one added there")
            }
        };
        out.push(d.with_note(allowed));
    }
    out
}

/// The inclusive bounds of a numbered port; `None` for a named one.
fn bounds(port: &PortNumber) -> Option<(u16, u16)> {
    match port {
        PortNumber::Single(p) => Some((*p, *p)),
        PortNumber::Range(a, b) => Some((*a, *b)),
        PortNumber::Named(_) => None,
    }
}

fn overlaps(a: &PortSpec, b: &PortSpec) -> bool {
    match (bounds(&a.port), bounds(&b.port)) {
        (Some((a1, a2)), Some((b1, b2))) => a.protocol == b.protocol && a1 <= b2 && b1 <= a2,
        _ => false,
    }
}

/// A port as written in `.np` files: `8080`, `53/udp`, `8000-8100`, `http`.
pub struct PortText<'a>(pub &'a PortSpec);

impl fmt::Display for PortText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.port {
            PortNumber::Single(p) => write!(f, "{p}")?,
            PortNumber::Range(a, b) => write!(f, "{a}-{b}")?,
            PortNumber::Named(n) => f.write_str(n)?,
        }
        match self.0.protocol {
            Protocol::Tcp => Ok(()),
            other => write!(f, "/{}", other.as_str().to_ascii_lowercase()),
        }
    }
}

fn port_list(ports: &[PortSpec]) -> String {
    ports.iter().map(|p| format!("`{}`", PortText(p))).collect::<Vec<_>>().join(", ")
}

fn ports(flow: &Flow, origin: &Origin, rules: &Rules) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let forbidden = &rules.forbidden_ports;
    if flow.ports.is_all() {
        if !forbidden.is_empty() {
            out.push(
                Diagnostic::new(
                    Code::ForbiddenPort,
                    origin.span,
                    format!("`{}` allows every port, forbidden ones included", origin.text),
                )
                .with_label("no ports: every port")
                .with_help(format!(
                    "list the ports the target listens on; `ports.forbidden` in netpolc.toml forbids {}",
                    port_list(forbidden)
                )),
            );
        }
        if let Some(max) = rules.max_port_range {
            out.push(
                Diagnostic::new(Code::PortRangeTooWide, origin.span, format!("`{}` allows every port", origin.text))
                    .with_label("no ports: all 65535 of them")
                    .with_help(format!(
                        "list the ports the target listens on; `ports.max_range` in netpolc.toml allows at most {max} in one range"
                    )),
            );
        }
        return out;
    }
    for spec in &flow.ports.0 {
        let span = origin
            .written_ports
            .iter()
            .find(|(written, _)| written == spec)
            .map_or(origin.span, |(_, span)| *span);
        let hits: Vec<PortSpec> = forbidden.iter().filter(|f| overlaps(spec, f)).cloned().collect();
        if !hits.is_empty() {
            let message = match spec.port {
                PortNumber::Range(..) => format!("port range `{}` includes forbidden {}", PortText(spec), port_list(&hits)),
                _ => format!("port `{}` is forbidden", PortText(spec)),
            };
            out.push(
                Diagnostic::new(Code::ForbiddenPort, span, message)
                    .with_label("forbidden")
                    .with_help(format!("`ports.forbidden` in netpolc.toml forbids {}", port_list(forbidden))),
            );
        }
        if let (Some(max), PortNumber::Range(a, b)) = (rules.max_port_range, &spec.port) {
            let width = u32::from(*b) - u32::from(*a) + 1;
            if width > max {
                out.push(
                    Diagnostic::new(
                        Code::PortRangeTooWide,
                        span,
                        format!("port range `{}` spans {width} ports, more than {max}", PortText(spec)),
                    )
                    .with_label(format!("{width} ports"))
                    .with_help(format!(
                        "list the ports the target needs; `ports.max_range` in netpolc.toml allows at most {max} in one range"
                    )),
                );
            }
        }
    }
    out
}

/// With consent on, an intent may only write egress rules into its own
/// namespace: the caller's team owns its egress, and writes the intent.
fn foreign_egress(flow: &Flow, origin: &Origin, declared: &[&String]) -> Option<Diagnostic> {
    let foreign: Vec<&String> = local_namespaces(&flow.source, declared)
        .filter(|ns| **ns != origin.namespace)
        .collect();
    let first = foreign.first()?;
    let listed = foreign.iter().map(|ns| format!("`{ns}`")).collect::<Vec<_>>().join(", ");
    let plural = if foreign.len() == 1 { "" } else { "s" };
    Some(
        Diagnostic::new(
            Code::ForeignEgress,
            origin.source_span,
            format!("this intent, written in namespace `{}`, opens the egress of namespace{plural} {listed}", origin.namespace),
        )
        .with_label(format!("pods of {listed}"))
        .with_help(format!(
            "write it under `namespace {first}`, whose team owns that egress; a target in another namespace then needs that namespace's `expose` (`consent.cross_namespace` in netpolc.toml)"
        )),
    )
}

fn consent(flow: &Flow, origin: &Origin, exposures: &FxHashMap<&str, Vec<&Exposure>>, declared: &[&String]) -> Vec<Diagnostic> {
    let Peer::Pods { pods, name, .. } = &*flow.target else {
        return Vec::new();
    };
    if *name == PeerName::Dns {
        return Vec::new(); // DNS is the project's own setting, not a team's pods
    }
    let mut out = Vec::new();
    for ns in local_namespaces(&flow.target, declared) {
        if *ns == origin.namespace {
            continue;
        }
        let in_ns = exposures.get(ns.as_str()).map_or(&[][..], Vec::as_slice);
        if in_ns.iter().any(|e| covers(e, pods, &flow.ports, &flow.source)) {
            continue;
        }
        let ports = match flow.ports.0.as_slice() {
            [] => String::new(),
            [one] => format!(":{}", PortText(one)),
            many => format!(":({})", many.iter().map(|p| PortText(p).to_string()).collect::<Vec<_>>().join(", ")),
        };
        let mut d = Diagnostic::new(
            Code::MissingConsent,
            origin.span,
            format!("`{}` reaches into namespace `{ns}`, which does not expose it", origin.text),
        )
        .with_label(format!("no `expose` in `{ns}` covers this"))
        .with_help(format!(
            "under `namespace {ns}`, its team accepts it with `expose {}{ports} to {}` (`consent.cross_namespace` in netpolc.toml)",
            pods_text(name, pods),
            caller_text(&flow.source)
        ));
        for e in in_ns.iter().filter(|e| e.pods.is_empty() || e.pods == *pods).take(2) {
            d = d.with_secondary(e.span, "does not cover it: other ports or callers");
        }
        out.push(d);
    }
    out
}

/// Whether `exposure` accepts a connection from `caller` to `pods` of its namespace on `ports`.
/// It covers when it names the same pods (or `*`), a superset of the ports,
/// and a caller equal to the intent's or wider by `NS/*`, `cluster` or an enclosing IP block.
pub fn covers(exposure: &Exposure, pods: &LabelSelector, ports: &PortSet, caller: &Peer) -> bool {
    (exposure.pods.is_empty() || exposure.pods == *pods)
        && ports_cover(&exposure.ports, ports)
        && exposure.callers.iter().any(|c| caller_covers(c, caller))
}

fn ports_cover(exposed: &PortSet, wanted: &PortSet) -> bool {
    exposed.is_all()
        || (!wanted.is_all()
            && wanted.0.iter().all(|w| {
                exposed.0.iter().any(|e| {
                    e.protocol == w.protocol
                        && match (bounds(&e.port), bounds(&w.port)) {
                            (Some((e1, e2)), Some((w1, w2))) => e1 <= w1 && w2 <= e2,
                            _ => e.port == w.port,
                        }
                })
            }))
}

fn caller_covers(exposed: &Peer, caller: &Peer) -> bool {
    match (exposed, caller) {
        (
            Peer::Pods {
                namespaces: en, pods: ep, ..
            },
            Peer::Pods {
                namespaces: cn, pods: cp, ..
            },
        ) => {
            let cluster = matches!(en, Namespaces::Selected(sel) if sel.is_empty()) && ep.is_empty();
            cluster || (en == cn && (ep.is_empty() || ep == cp))
        }
        (Peer::Ips { blocks: eb, .. }, Peer::Ips { blocks: cb, .. }) => cb.iter().all(|c| eb.iter().any(|e| block_covers(e, c))),
        _ => false,
    }
}

/// Whether every address of `inner` is in `outer` (holes included).
fn block_covers(outer: &IpBlock, inner: &IpBlock) -> bool {
    let (Ok(o), Ok(i)) = (Cidr::parse(&outer.cidr), Cidr::parse(&inner.cidr)) else {
        return false;
    };
    o.contains(i)
        && outer
            .except
            .iter()
            .filter_map(|h| Cidr::parse(h).ok())
            .all(|h| !h.contains(i) && !i.contains(h))
}

/// Pods as the owning namespace would write them in `expose`.
fn pods_text(name: &PeerName, pods: &LabelSelector) -> String {
    match name {
        PeerName::Workload(w) => w.clone(),
        _ if pods.is_empty() => "*".to_string(),
        _ => format!("[{pods}]"),
    }
}

/// A caller as another namespace would write it after `to`.
fn caller_text(peer: &Peer) -> String {
    match peer {
        Peer::Pods {
            namespaces: Namespaces::Named(ns),
            pods,
            name,
        } => format!("{ns}/{}", pods_text(name, pods)),
        Peer::Pods {
            namespaces: Namespaces::Selected(sel),
            pods,
            ..
        } => match (sel.is_empty(), pods.is_empty()) {
            (true, true) => "cluster".to_string(),
            (_, true) => format!("{{{sel}}}/*"),
            _ => format!("{{{sel}}}/[{pods}]"),
        },
        Peer::Ips { blocks, name } => match name {
            PeerName::Cidr(_) => blocks.first().map(|b| b.cidr.clone()).unwrap_or_default(),
            other => other.to_string(),
        },
    }
}

/// A calendar day (proleptic Gregorian), for `@expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`, a real day of a year from 1970 to 9999.
    pub fn parse(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| {
            let part = text.get(range)?;
            part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse::<u16>().ok())?
        };
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (month, day) = (u8::try_from(month).ok()?, u8::try_from(day).ok()?);
        let date = Date { year, month, day };
        (year >= 1970 && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)).then_some(date)
    }

    /// The day `days` after 1970-01-01 (what the system clock counts in).
    pub fn from_unix_days(days: u64) -> Date {
        let target = Date::EPOCH.number() + i64::try_from(days).unwrap_or(i64::MAX / 2);
        let mut date = Date::EPOCH;
        while (Date {
            year: date.year + 1,
            ..date
        })
        .number()
            <= target
            && date.year < 9999
        {
            date.year += 1;
        }
        while date.month < 12
            && (Date {
                month: date.month + 1,
                ..date
            })
            .number()
                <= target
        {
            date.month += 1;
        }
        let day = target - date.number() + 1;
        date.day = u8::try_from(day.clamp(1, i64::from(days_in_month(date.year, date.month)))).unwrap_or(1);
        date
    }

    const EPOCH: Date = Date {
        year: 1970,
        month: 1,
        day: 1,
    };

    /// How many days from `self` to `other` (negative when `other` is earlier).
    pub fn days_until(self, other: Date) -> i64 {
        other.number() - self.number()
    }

    /// Days since an arbitrary fixed day: years start in March, so that
    /// the leap day is the last day of its year and months have fixed offsets.
    fn number(self) -> i64 {
        let (y, m) = if self.month <= 2 {
            (i64::from(self.year) - 1, i64::from(self.month) + 9)
        } else {
            (i64::from(self.year), i64::from(self.month) - 3)
        };
        365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + i64::from(self.day) - 1
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(Date::parse("2026-12-31").map(|d| d.to_string()), Some("2026-12-31".into()));
        assert!(Date::parse("2028-02-29").is_some());
        for bad in [
            "2026-02-29",
            "2100-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "26-12-31",
            "2026-1-01",
            "2026/12/31",
            "+026-12-31",
            "",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_arithmetic_matches_the_calendar() {
        let d = |t: &str| Date::parse(t).expect("date");
        assert_eq!(d("2026-01-01").days_until(d("2026-12-31")), 364);
        assert_eq!(d("2028-02-28").days_until(d("2028-03-01")), 2);
        assert_eq!(d("2100-02-28").days_until(d("2100-03-01")), 1);
        assert_eq!(d("2026-03-01").days_until(d("2026-02-01")), -28);
        assert_eq!(Date::from_unix_days(0), d("1970-01-01"));
        // 2000-03-01 is day 11017 of the Unix era; 2026-03-04, day 20516.
        assert_eq!(Date::from_unix_days(11017), d("2000-03-01"));
        assert_eq!(Date::from_unix_days(20516), d("2026-03-04"));
        for days in [59, 365, 789, 10956, 20000, 20515, 47482] {
            assert_eq!(Date::EPOCH.days_until(Date::from_unix_days(days)), days as i64, "{days}");
        }
    }
}
