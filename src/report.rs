//! The diagnostics of a run as a report, for people or for CI: the human
//! text of [`diagnostics::render`], a versioned JSON document, SARIF 2.1.0
//! for code scanning, and GitHub Actions workflow annotations.
//!
//! Every format is byte-identical for the same diagnostics: they come sorted
//! (see [`diagnostics::sort`]) and nothing here depends on the machine, the
//! time or the working folder. The shapes are documented in `docs/ci.md`.

use crate::ast::Span;
use crate::diagnostics::{self, Code, Diagnostic, Severity};
use crate::source::Sources;
use serde::Serialize;
use std::collections::BTreeMap;

/// How to report the diagnostics of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The terminal text, on stderr.
    Human,
    /// `{"version":1,"diagnostics":[...],"summary":{...}}`, on stdout.
    Json,
    /// A SARIF 2.1.0 log with one run, on stdout.
    Sarif,
    /// `::error`/`::warning` workflow commands, one a line, on stdout.
    Github,
}

impl Format {
    /// Whether the report is for a program: it goes to stdout, alone, and is
    /// printed even when there is nothing to report (an empty JSON or SARIF
    /// document is still a document).
    pub fn is_machine(self) -> bool {
        self != Format::Human
    }
}

/// The version of the JSON shape; it changes only when a field changes
/// meaning or goes away (adding a field does not change it).
pub const JSON_VERSION: u32 = 1;

/// The schema that SARIF logs name in `$schema`: the OASIS 2.1.0 schema (errata 01).
pub const SARIF_SCHEMA_URI: &str = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The `partialFingerprints` key of SARIF results; the suffix changes if the
/// way fingerprints are computed ever does.
pub const FINGERPRINT_KEY: &str = "netpolc/v1";

/// Renders `diagnostics` (sorted, as a [`crate::Compilation`] holds them) in `format`;
/// `color` applies to the human text only.
pub fn render(format: Format, diagnostics: &[Diagnostic], sources: &Sources, color: bool) -> String {
    match format {
        Format::Human => diagnostics::render(diagnostics, sources, color),
        Format::Json => json(diagnostics, sources),
        Format::Sarif => sarif(diagnostics, sources),
        Format::Github => github(diagnostics, sources),
    }
}

/// A place in a file: 1-based lines and columns, columns in characters
/// (Unicode scalar values) as in the human output, `end_column` one past the
/// last character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    /// Line of the first character.
    pub line: usize,
    /// Column of the first character.
    pub column: usize,
    /// Line of the end.
    pub end_line: usize,
    /// Column just past the last character.
    pub end_column: usize,
}

impl Range {
    /// Where `span` is, with columns in characters.
    pub fn of(span: Span, sources: &Sources) -> Range {
        Range::counted(span, sources, |text| text.chars().count())
    }

    /// Where `span` is, with columns in UTF-16 code units (SARIF's default unit).
    pub fn utf16(span: Span, sources: &Sources) -> Range {
        Range::counted(span, sources, |text| text.encode_utf16().count())
    }

    fn counted(span: Span, sources: &Sources, width: impl Fn(&str) -> usize) -> Range {
        let at = |offset: usize| {
            let text = sources.get(span.file).map_or("", |f| f.text.as_str());
            let before = text.get(..offset.min(text.len())).unwrap_or("");
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let line = sources.line_of(Span {
                file: span.file,
                start: offset,
                end: offset,
            });
            (line.max(1), width(&before[line_start..]) + 1)
        };
        let (line, column) = at(span.start);
        let (end_line, end_column) = at(span.end.max(span.start));
        Range {
            line,
            column,
            end_line,
            end_column,
        }
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn path(sources: &Sources, file: usize) -> &str {
    sources.get(file).map_or("", |f| f.path.as_str())
}

fn count(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.severity() == Severity::Error).count();
    (errors, diagnostics.len() - errors)
}

/// Serde cannot fail on these types (no map has non-string keys).
fn pretty(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

// ---------------------------------------------------------------- JSON

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    diagnostics: Vec<JsonDiagnostic<'a>>,
    summary: Summary,
}

#[derive(Serialize)]
struct Summary {
    errors: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: &'static str,
    title: &'static str,
    message: &'a str,
    file: &'a str,
    #[serde(flatten)]
    range: Range,
    labels: Vec<JsonLabel<'a>>,
    notes: Vec<&'a str>,
    help: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    file: &'a str,
    #[serde(flatten)]
    range: Range,
    message: &'a str,
    primary: bool,
}

/// The diagnostics as a JSON document (shape version [`JSON_VERSION`], documented in `docs/ci.md`).
pub fn json(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let (errors, warnings) = count(diagnostics);
    let diagnostics = diagnostics
        .iter()
        .map(|d| {
            let span = d.span();
            let (help, notes): (Vec<&str>, Vec<&str>) = d.notes.iter().map(String::as_str).partition(|n| n.starts_with("help: "));
            JsonDiagnostic {
                code: d.code.as_str(),
                severity: severity_word(d.severity()),
                title: d.code.title(),
                message: &d.message,
                file: path(sources, span.file),
                range: Range::of(span, sources),
                labels: d
                    .labels
                    .iter()
                    .map(|l| JsonLabel {
                        file: path(sources, l.span.file),
                        range: Range::of(l.span, sources),
                        message: &l.message,
                        primary: l.primary,
                    })
                    .collect(),
                notes: notes.iter().map(|n| n.strip_prefix("note: ").unwrap_or(n)).collect(),
                help: help.iter().map(|h| h.strip_prefix("help: ").unwrap_or(h)).collect(),
            }
        })
        .collect();
    pretty(&JsonReport {
        version: JSON_VERSION,
        diagnostics,
        summary: Summary { errors, warnings },
    })
}

// ---------------------------------------------------------------- SARIF

#[derive(Serialize)]
struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [SarifRun<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRun<'a> {
    tool: Tool,
    column_kind: &'static str,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    information_uri: Option<&'static str>,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: &'static str,
    name: String,
    short_description: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<String>,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<Location>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_locations: Vec<Location>,
    partial_fingerprints: BTreeMap<&'a str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Text>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
}

/// The project's repository (Cargo.toml's `repository`), if it names one:
/// the base of `informationUri` and of the rules' `helpUri`.
fn repository() -> Option<&'static str> {
    Some(env!("CARGO_PKG_REPOSITORY").trim_end_matches('/')).filter(|r| !r.is_empty())
}

/// The anchor of a code's section in `docs/errors.md`, as GitHub and GitLab
/// make it from the heading `## CODE: title`: lower case, spaces to `-`,
/// punctuation other than `-` and `_` dropped.
pub fn errors_md_anchor(code: Code) -> String {
    format!("{}: {}", code.as_str(), code.title())
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The `helpUri` of a code, below the repository `base`.
pub fn help_uri(base: &str, code: Code) -> String {
    format!("{base}/blob/main/docs/errors.md#{}", errors_md_anchor(code))
}

/// A path as given on the command line, as a URI reference: relative ones
/// against `%SRCROOT%` (the repository root, when netpolc runs there), with
/// `/` separators, `./` dropped, and anything outside the URI's unreserved
/// and path characters percent-encoded.
pub fn artifact_uri(path: &str) -> (String, Option<&'static str>) {
    let slashed = path.replace('\\', "/");
    let drive = matches!(slashed.as_bytes(), [letter, b':', b'/', ..] if letter.is_ascii_alphabetic());
    let absolute = slashed.starts_with('/') || drive;
    let mut trimmed = slashed.as_str();
    while let Some(rest) = trimmed.strip_prefix("./") {
        trimmed = rest.trim_start_matches('/');
    }
    let mut uri = String::new();
    for byte in trimmed.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b'@' => uri.push(byte as char),
            // A colon is fine in a path, but in the first segment of a relative
            // reference it would read as a scheme; only a drive letter keeps it.
            b':' if absolute => uri.push(':'),
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    if absolute {
        let root = if uri.starts_with('/') { "file://" } else { "file:///" };
        (format!("{root}{uri}"), None)
    } else {
        (uri, Some("%SRCROOT%"))
    }
}

fn sarif_location(span: Span, message: &str, sources: &Sources) -> Location {
    let (uri, uri_base_id) = artifact_uri(path(sources, span.file));
    let range = Range::utf16(span, sources);
    Location {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation { uri, uri_base_id },
            region: Region {
                start_line: range.line,
                start_column: range.column,
                end_line: range.end_line,
                end_column: range.end_column,
            },
        },
        message: (!message.is_empty()).then(|| Text { text: message.to_string() }),
    }
}

/// FNV-1a, 64 bits: small, and the same on every machine and release (unlike
/// the standard library's hasher, which promises neither).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// What identifies a diagnostic across runs while the file around it
/// changes: its code, file, message and the text of its line, without the
/// line number (lines move when others are added above).
fn fingerprint_key(d: &Diagnostic, sources: &Sources) -> [String; 4] {
    let span = d.span();
    let text = sources.get(span.file).map_or("", |f| f.text.as_str());
    let start = span.start.min(text.len());
    let line_start = text.get(..start).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    let line_end = text.get(start..).and_then(|t| t.find('\n')).map_or(text.len(), |i| start + i);
    let line = text.get(line_start..line_end).unwrap_or("").trim();
    [
        d.code.as_str().to_string(),
        artifact_uri(path(sources, span.file)).0,
        d.message.clone(),
        line.to_string(),
    ]
}

/// The diagnostics as a SARIF 2.1.0 log: one run whose rules are every
/// diagnostic code, columns in UTF-16 code units, paths relative to `%SRCROOT%`.
pub fn sarif(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let rules = Code::ALL
        .iter()
        .map(|&code| Rule {
            id: code.as_str(),
            name: format!("{code:?}"),
            short_description: Text {
                text: code.title().to_string(),
            },
            help_uri: repository().map(|base| help_uri(base, code)),
            default_configuration: Configuration {
                level: severity_word(code.severity()),
            },
        })
        .collect();
    let mut seen: BTreeMap<[String; 4], usize> = BTreeMap::new();
    let results = diagnostics
        .iter()
        .map(|d| {
            let key = fingerprint_key(d, sources);
            let occurrence = seen.entry(key.clone()).or_insert(0);
            *occurrence += 1;
            let ordinal = occurrence.to_string();
            let parts: Vec<&str> = key.iter().map(String::as_str).chain([ordinal.as_str()]).collect();
            let primary = d.labels.iter().find(|l| l.primary);
            let mut text = d.message.clone();
            for note in &d.notes {
                text.push('\n');
                text.push_str(note);
            }
            SarifResult {
                rule_id: d.code.as_str(),
                rule_index: Code::ALL.iter().position(|&c| c == d.code).unwrap_or(0),
                level: severity_word(d.severity()),
                message: Text { text },
                locations: vec![sarif_location(d.span(), primary.map_or("", |l| l.message.as_str()), sources)],
                related_locations: d
                    .labels
                    .iter()
                    .filter(|l| !l.primary)
                    .map(|l| sarif_location(l.span, &l.message, sources))
                    .collect(),
                partial_fingerprints: BTreeMap::from([(FINGERPRINT_KEY, format!("{:016x}", fnv1a(&parts)))]),
            }
        })
        .collect();
    pretty(&SarifLog {
        schema: SARIF_SCHEMA_URI,
        version: "2.1.0",
        runs: [SarifRun {
            tool: Tool {
                driver: Driver {
                    name: env!("CARGO_PKG_NAME"),
                    version: env!("CARGO_PKG_VERSION"),
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    information_uri: repository(),
                    rules,
                },
            },
            column_kind: "utf16CodeUnits",
            results,
        }],
    })
}

// ---------------------------------------------------------------- GitHub

/// Escapes the message of a workflow command, as the Actions runner reads it.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a property value of a workflow command (`file=`, `title=`...),
/// where `:` and `,` would otherwise end the value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The diagnostics as GitHub Actions workflow commands, one a line:
/// `::error file=F,line=L,col=C,endLine=L,endColumn=C,title=CODE: title::message`
/// (with escapes).
/// Columns are in characters; `endColumn` is the last character's (GitHub's
/// range is inclusive), and columns are left out for a range over several lines,
/// which GitHub does not accept.
pub fn github(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let span = d.span();
        let range = Range::of(span, sources);
        let mut properties = vec![
            format!("file={}", escape_property(path(sources, span.file))),
            format!("line={}", range.line),
        ];
        let one_line = range.line == range.end_line;
        if one_line {
            properties.push(format!("col={}", range.column));
        }
        properties.push(format!("endLine={}", range.end_line));
        if one_line {
            properties.push(format!("endColumn={}", range.end_column.saturating_sub(1).max(range.column)));
        }
        properties.push(format!(
            "title={}",
            escape_property(&format!("{}: {}", d.code.as_str(), d.code.title()))
        ));
        let mut text = d.message.clone();
        for label in d.labels.iter().filter(|l| !l.primary) {
            let at = Range::of(label.span, sources);
            text.push_str(&format!(
                "\n{}:{}:{}: {}",
                path(sources, label.span.file),
                at.line,
                at.column,
                label.message
            ));
        }
        for note in &d.notes {
            text.push('\n');
            text.push_str(note);
        }
        out.push_str(&format!(
            "::{} {}::{}\n",
            severity_word(d.severity()),
            properties.join(","),
            escape_data(&text)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(text: &str) -> Sources {
        let mut sources = Sources::new();
        sources.add("a.np", text);
        sources
    }

    #[test]
    fn ranges_count_characters_or_utf16_units_from_one() {
        // `é` is 2 bytes, 1 char, 1 UTF-16 unit; `😀` is 4 bytes, 1 char, 2 UTF-16 units.
        let text = "x\n# é😀 web\n";
        let s = sources(text);
        let start = text.find("web").unwrap();
        let span = Span {
            file: 0,
            start,
            end: start + 3,
        };
        assert_eq!(
            Range::of(span, &s),
            Range {
                line: 2,
                column: 6,
                end_line: 2,
                end_column: 9
            }
        );
        assert_eq!(
            Range::utf16(span, &s),
            Range {
                line: 2,
                column: 7,
                end_line: 2,
                end_column: 10
            }
        );
        let whole_file = Span { file: 0, start: 0, end: 0 };
        assert_eq!(
            Range::of(whole_file, &s),
            Range {
                line: 1,
                column: 1,
                end_line: 1,
                end_column: 1
            }
        );
    }

    #[test]
    fn artifact_uris_are_relative_to_the_source_root_with_forward_slashes() {
        assert_eq!(artifact_uri("policies/a.np"), ("policies/a.np".to_string(), Some("%SRCROOT%")));
        assert_eq!(artifact_uri("./policies//a.np").0, "policies//a.np");
        assert_eq!(artifact_uri(".//a.np").0, "a.np");
        assert_eq!(artifact_uri("policies\\team a\\é.np").0, "policies/team%20a/%C3%A9.np");
        assert_eq!(artifact_uri("50%#?.np").0, "50%25%23%3F.np");
        assert_eq!(artifact_uri("a:b.np").0, "a%3Ab.np");
        assert_eq!(artifact_uri("/srv/p q.np"), ("file:///srv/p%20q.np".to_string(), None));
        assert_eq!(artifact_uri("C:\\p\\a.np"), ("file:///C:/p/a.np".to_string(), None));
    }

    #[test]
    fn anchors_follow_the_markdown_heading_rules() {
        assert_eq!(errors_md_anchor(Code::PortRangeReversed), "e0104-port-range-ends-below-its-start");
        assert_eq!(errors_md_anchor(Code::PortOutOfRange), "e0103-port-outside-1-65535");
        assert_eq!(errors_md_anchor(Code::ExceptOutsideBlock), "e0108-except-outside-its-block");
        assert_eq!(
            help_uri("https://example.org/netpolc", Code::HostBitsSet),
            "https://example.org/netpolc/blob/main/docs/errors.md#w0001-cidr-with-host-bits-set"
        );
    }

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(escape_data("50% a:b,c\r\nnext"), "50%25 a:b,c%0D%0Anext");
        assert_eq!(escape_property("50% a:b,c\r\nnext"), "50%25 a%3Ab%2Cc%0D%0Anext");
        // `%` first: an escape sequence in the input is not taken for one.
        assert_eq!(escape_property("%3A"), "%253A");
    }

    #[test]
    fn fingerprints_ignore_line_numbers_but_not_content() {
        let fingerprint = |text: &str| {
            let out = crate::compile_str("a.np", text);
            let log: serde_json::Value = serde_json::from_str(&sarif(&out.diagnostics, &out.sources)).unwrap();
            log["runs"][0]["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["ruleId"] == "E0104")
                .map(|r| r["partialFingerprints"][FINGERPRINT_KEY].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let base = fingerprint("namespace a\nweb -> api:9000-8000\n");
        assert_eq!(base.len(), 1);
        assert_eq!(base, fingerprint("namespace a\n\n# moved down\nweb -> api:9000-8000\n"));
        assert_ne!(base, fingerprint("namespace a\nweb -> db:9000-8000\n"));
        // The same problem twice on equal lines: two alerts, two fingerprints.
        let twice = fingerprint("namespace a\nweb -> api:9000-8000\nweb -> api:9000-8000\n");
        assert_eq!(twice.len(), 2, "{twice:?}");
        assert_ne!(twice[0], twice[1]);
        assert_eq!(twice[0], base[0]);
    }
}
