//! Text to syntax tree: the pest grammar in `grammar/np.pest`, run one logical
//! line at a time so that every syntax error of a file is reported, and pest's
//! rule names turned into words before they reach a user. The most frequent
//! shapes of line are read by hand first (`fast`), to the same tree; the
//! grammar stays the definition, and reads every other line.

use crate::ast::*;
use crate::diagnostics::{Code, Diagnostic};
use grammar::{Grammar, Rule};
use pest::Parser as _;
use pest::iterators::Pair;

mod fast;

#[allow(missing_docs)]
mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/np.pest"]
    pub struct Grammar;
}

/// Physical lines longer than this are refused rather than parsed and shown.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Parses one file. Returns the statements that parsed and a diagnostic for
/// each line that did not.
pub fn parse(file: usize, text: &str) -> (File, Vec<Diagnostic>) {
    let lines = logical_lines(text);
    // A statement per line at most: no growing (a statement is a few hundred bytes).
    let mut statements = Vec::with_capacity(lines.len());
    let mut comments = Vec::new();
    let mut diagnostics = Vec::new();
    for line in lines {
        let (start, end) = (line.start, line.end);
        let chunk = &text[start..end];
        if let Some(offset) = line.too_long {
            let at = start + offset;
            diagnostics.push(
                Diagnostic::new(
                    Code::LineTooLong,
                    Span { file, start: at, end: at },
                    format!("line longer than {MAX_LINE_BYTES} bytes"),
                )
                .without_source()
                .with_help("split the intent over several lines after `,` or `->`"),
            );
            continue;
        }
        if line.blank {
            // A quarter of the fleet's logical lines: nothing for the grammar to do.
            comments.extend(comment_spans(file, start, chunk, &[]));
            continue;
        }
        if let Some((statement, line_comments)) = fast::line(file, start, chunk) {
            statements.push(statement);
            comments.extend(line_comments);
            continue;
        }
        let (statement, line_comments, mut problems) = grammar_line(file, start, chunk);
        statements.extend(statement);
        comments.extend(line_comments);
        diagnostics.append(&mut problems);
    }
    if statements.is_empty() && diagnostics.is_empty() {
        diagnostics.push(
            Diagnostic::file_level(Code::EmptyFile, file, "file has no statements")
                .with_help("start with `namespace NAME` and add intents, or remove the file"),
        );
    }
    (File { statements, comments }, diagnostics)
}

/// The grammar's reading of one logical line starting at byte `base`: its
/// statement, its comments, and its syntax error or other problems.
fn grammar_line(file: usize, base: usize, chunk: &str) -> (Option<Spanned<Statement>>, Vec<Span>, Vec<Diagnostic>) {
    let ctx = Ctx {
        file,
        base,
        problems: Default::default(),
    };
    let mut statement = None;
    let mut comments = Vec::new();
    let mut diagnostics = Vec::new();
    match Grammar::parse(Rule::line, chunk) {
        Ok(mut pairs) => {
            if let Some(line) = pairs.next() {
                comments = ctx.comments(&line, chunk);
                statement = line.into_inner().find(|pair| pair.as_rule() != Rule::EOI).map(|pair| {
                    let span = ctx.span(&pair);
                    Spanned::new(ctx.statement(pair), span)
                });
            }
        }
        Err(_) => {
            // Parse the bad line again with pest's detailed tracking, which also
            // records the literal tokens (`->`, `,`, `)`) it expected; it is
            // slower, so only failing lines pay for it.
            // The switch is process-wide: one detailed parse at a time.
            static DETAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let guard = DETAIL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            pest::set_error_detail(true);
            let detailed = Grammar::parse(Rule::line, chunk).err();
            pest::set_error_detail(false);
            drop(guard);
            if let Some(e) = detailed {
                diagnostics.push(ctx.syntax_error(e, chunk));
            }
        }
    }
    diagnostics.append(&mut ctx.take_problems());
    (statement, comments, diagnostics)
}

/// A logical line: physical lines joined where one's code ends with `,` or
/// `->`. Its byte range leaves out the final newline.
struct LogicalLine {
    start: usize,
    end: usize,
    /// The offset of its first physical line longer than `MAX_LINE_BYTES`.
    too_long: Option<usize>,
    /// Whether every physical line is blank or a comment, which the grammar
    /// accepts without a statement.
    blank: bool,
}

/// Splits text into logical lines, learning in the same walk over each
/// physical line's bytes what `parse` asks of them. Every byte that matters
/// (`#`, `"`, `\`, newline, blanks, `,`, `->`) is ASCII, which never occurs
/// inside the encoding of another character.
fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut line = LogicalLine {
        start: 0,
        end: 0,
        too_long: None,
        blank: true,
    };
    let mut pos = 0;
    while pos < bytes.len() {
        let (code_end, line_end) = physical_line(bytes, pos);
        if line_end - pos > MAX_LINE_BYTES && line.too_long.is_none() {
            line.too_long = Some(pos - line.start);
        }
        let first = bytes[pos..line_end].iter().find(|b| !matches!(b, b' ' | b'\t' | b'\r'));
        line.blank &= matches!(first, None | Some(b'#'));
        let code = text[pos..code_end].trim_end();
        let continues = code.ends_with(',') || code.ends_with("->");
        if !continues || line_end == bytes.len() {
            line.end = line_end;
            lines.push(line);
            line = LogicalLine {
                start: line_end + 1,
                end: 0,
                too_long: None,
                blank: true,
            };
        }
        pos = line_end + 1;
    }
    if line.start < bytes.len() {
        line.end = bytes.len();
        lines.push(line);
    }
    lines
}

/// Where the code of the physical line at `start` ends (at its first `#`
/// outside a quoted string), and where the line does.
fn physical_line(bytes: &[u8], start: usize) -> (usize, usize) {
    let newline = |from: usize| bytes[from..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| from + i);
    let mut quoted = false;
    let mut at = start;
    // Most bytes are none of these four: the search steps over them, a table
    // lookup each (cheaper than four comparisons).
    static STOPS: [bool; 256] = {
        let mut stops = [false; 256];
        stops[b'\n' as usize] = true;
        stops[b'"' as usize] = true;
        stops[b'#' as usize] = true;
        stops[b'\\' as usize] = true;
        stops
    };
    while let Some(i) = bytes[at..].iter().position(|&b| STOPS[usize::from(b)]) {
        at += i;
        match bytes[at] {
            b'\n' => return (at, at),
            b'#' if !quoted => return (at, newline(at)),
            b'"' => quoted = !quoted,
            // In a string, the byte after `\` is taken as it is, unless it ends the line.
            b'\\' if quoted && bytes.get(at + 1).is_some_and(|&b| b != b'\n') => at += 1,
            _ => {}
        }
        at += 1;
    }
    (bytes.len(), bytes.len())
}

/// The comments of a logical line starting at byte `base`: on each physical
/// line, from the first `#` outside `strings` (ranges in `chunk`) to the end.
fn comment_spans(file: usize, base: usize, chunk: &str, strings: &[(usize, usize)]) -> Vec<Span> {
    if !chunk.contains('#') {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut line_start = 0;
    for physical in chunk.split('\n') {
        let hash = physical
            .match_indices('#')
            .map(|(i, _)| line_start + i)
            .find(|&at| !strings.iter().any(|&(s, e)| s <= at && at < e));
        if let Some(at) = hash {
            let end = line_start + physical.trim_end_matches('\r').len();
            out.push(Span {
                file,
                start: base + at,
                end: base + end,
            });
        }
        line_start += physical.len() + 1;
    }
    out
}

struct Ctx {
    file: usize,
    base: usize,
    problems: std::cell::RefCell<Vec<Diagnostic>>,
}

impl Ctx {
    fn take_problems(&self) -> Vec<Diagnostic> {
        self.problems.take()
    }

    fn problem(&self, d: Diagnostic) {
        self.problems.borrow_mut().push(d);
    }

    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span {
            file: self.file,
            start: self.base + s.start(),
            end: self.base + s.end(),
        }
    }

    /// The comments of a logical line that parsed: only quoted strings and
    /// metadata values may hold a `#` of their own.
    fn comments(&self, line: &Pair<Rule>, chunk: &str) -> Vec<Span> {
        if !chunk.contains('#') {
            return Vec::new();
        }
        let strings: Vec<(usize, usize)> = line
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| matches!(p.as_rule(), Rule::quoted | Rule::bare_metadata_value))
            .map(|p| (p.as_span().start(), p.as_span().end()))
            .collect();
        comment_spans(self.file, self.base, chunk, &strings)
    }

    fn spanned<T>(&self, pair: &Pair<Rule>, node: T) -> Spanned<T> {
        Spanned::new(node, self.span(pair))
    }

    fn statement(&self, pair: Pair<Rule>) -> Statement {
        let rule = pair.as_rule();
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let mut next = || inner.next();
        match rule {
            Rule::namespace_decl => {
                let _kw = next();
                Statement::Namespace(self.name(next()))
            }
            Rule::workload_decl => {
                let _kw = next();
                let name = self.name(next());
                let selector = next()
                    .map(|p| self.spanned(&p, self.selector(p.clone())))
                    .unwrap_or_else(|| Spanned::new(Selector::default(), Span::default()));
                Statement::Workload { name, selector }
            }
            Rule::external_decl => {
                let _kw = next();
                let name = self.name(next());
                let cidr = next()
                    .map(|p| self.spanned(&p, p.as_str().to_string()))
                    .unwrap_or_else(|| Spanned::new(String::new(), Span::default()));
                let except = inner
                    .filter(|p| p.as_rule() == Rule::cidr)
                    .map(|p| self.spanned(&p, p.as_str().to_string()))
                    .collect();
                Statement::External { name, cidr, except }
            }
            Rule::isolate_stmt => {
                let mode = inner.nth(1).map(|p| p.as_str().to_string()).unwrap_or_default();
                Statement::Isolate(match mode.as_str() {
                    "ingress" => Isolation::Ingress,
                    "egress" => Isolation::Egress,
                    "none" => Isolation::None,
                    _ => Isolation::Both,
                })
            }
            Rule::allow_dns_stmt => {
                let ports = inner
                    .find(|p| p.as_rule() == Rule::ports)
                    .map(|p| self.ports(p))
                    .unwrap_or_default();
                Statement::AllowDns(Spanned::new(
                    Target {
                        endpoint: Spanned::new(Endpoint::Dns, span),
                        ports,
                    },
                    span,
                ))
            }
            Rule::meta_stmt => {
                let _kw = next();
                Statement::Meta(self.metadata(next(), next()))
            }
            Rule::annotation => Statement::Annotation(self.metadata(next(), next())),
            Rule::expect_stmt => {
                let _kw = next();
                let source = next()
                    .map(|p| self.endpoint(p))
                    .unwrap_or_else(|| Spanned::new(Endpoint::AllPods, span));
                let target = self.target_or_placeholder(next(), span);
                let allowed = next().is_some_and(|p| p.as_str() == "allowed");
                Statement::Expect(Box::new(Expectation { source, target, allowed }))
            }
            Rule::expose_stmt => {
                let _kw = next();
                let target = self.target_or_placeholder(next(), span);
                let callers = inner.filter(|p| p.as_rule() == Rule::endpoint).map(|p| self.endpoint(p)).collect();
                Statement::Expose(Box::new(Exposure { target, callers }))
            }
            _ => Statement::Intent(self.intent(inner)),
        }
    }

    fn metadata(&self, key: Option<Pair<Rule>>, value: Option<Pair<Rule>>) -> Metadata {
        let key = key
            .map(|k| self.spanned(&k, k.as_str().to_string()))
            .unwrap_or_else(|| Spanned::new(String::new(), Span::default()));
        let value = value
            .map(|v| self.spanned(&v, self.text(v.clone())))
            .unwrap_or_else(|| Spanned::new(String::new(), Span::default()));
        Metadata { key, value }
    }

    fn intent(&self, mut inner: pest::iterators::Pairs<Rule>) -> Intent {
        let source = match inner.next() {
            Some(p) => self.endpoint(p),
            None => Spanned::new(Endpoint::AllPods, Span::default()),
        };
        let targets = inner.map(|t| self.target(t)).collect();
        Intent { source, targets }
    }

    /// The target, or a stand-in where the grammar guarantees one (never reached on parsed input).
    fn target_or_placeholder(&self, pair: Option<Pair<Rule>>, span: Span) -> Spanned<Target> {
        pair.map(|p| self.target(p)).unwrap_or_else(|| {
            let endpoint = Spanned::new(Endpoint::AllPods, span);
            Spanned::new(
                Target {
                    endpoint,
                    ports: Vec::new(),
                },
                span,
            )
        })
    }

    fn target(&self, pair: Pair<Rule>) -> Spanned<Target> {
        let mut span = self.span(&pair);
        let mut endpoint = Spanned::new(Endpoint::Dns, span);
        let mut ports = Vec::new();
        for p in pair.into_inner() {
            // Without ports, the pair also holds the blanks and comment after
            // the endpoint: the target ends with its last part.
            span.end = p.as_span().end() + self.base;
            match p.as_rule() {
                Rule::allow_dns => endpoint = self.spanned(&p, Endpoint::Dns),
                Rule::endpoint => endpoint = self.endpoint(p),
                Rule::ports => ports = self.ports(p),
                _ => {}
            }
        }
        Spanned::new(Target { endpoint, ports }, span)
    }

    fn endpoint(&self, pair: Pair<Rule>) -> Spanned<Endpoint> {
        let span = self.span(&pair);
        let Some(inner) = pair.into_inner().next() else {
            return Spanned::new(Endpoint::AllPods, span);
        };
        let node = match inner.as_rule() {
            Rule::ipv6_literal => Endpoint::Ipv6Literal(inner.as_str().to_string()),
            Rule::cidr_literal => Endpoint::Cidr(inner.as_str().to_string()),
            Rule::namespaces_endpoint => {
                let mut parts = inner.into_inner();
                let namespaces = parts
                    .next()
                    .and_then(|p| p.into_inner().next())
                    .map(|s| self.selector(s))
                    .unwrap_or_default();
                Endpoint::Namespaces {
                    namespaces,
                    pods: self.pods(parts.next()),
                }
            }
            Rule::qualified_endpoint => {
                let mut parts = inner.into_inner();
                let namespace = self.name(parts.next());
                Endpoint::Qualified {
                    namespace,
                    pods: self.pods(parts.next()),
                }
            }
            Rule::all_pods => Endpoint::AllPods,
            Rule::pod_selector => Endpoint::PodSelector(inner.into_inner().next().map(|s| self.selector(s)).unwrap_or_default()),
            Rule::cluster => Endpoint::Cluster,
            Rule::world => Endpoint::World,
            Rule::internet => Endpoint::Internet,
            Rule::dns => Endpoint::Dns,
            _ => Endpoint::Name(self.name(Some(inner)).node),
        };
        Spanned::new(node, span)
    }

    fn pods(&self, pair: Option<Pair<Rule>>) -> Pods {
        match pair {
            Some(p) if p.as_rule() == Rule::all_pods => Pods::All,
            Some(p) if p.as_rule() == Rule::pod_selector => {
                Pods::Selector(p.into_inner().next().map(|s| self.selector(s)).unwrap_or_default())
            }
            other => Pods::Name(self.name(other)),
        }
    }

    /// A name; a keyword written without quotes is reported here, where its
    /// position is known, and kept so that checking goes on.
    fn name(&self, pair: Option<Pair<Rule>>) -> Spanned<Name> {
        let Some(pair) = pair else {
            return Spanned::new(
                Name {
                    text: String::new(),
                    quoted: false,
                },
                Span::default(),
            );
        };
        let span = self.span(&pair);
        let inner = pair.into_inner().next();
        let (text, quoted) = match inner {
            Some(q) if q.as_rule() == Rule::quoted => (self.text_of_quoted(q), true),
            Some(b) => (b.as_str().to_string(), false),
            None => (String::new(), false),
        };
        if !quoted && crate::KEYWORDS.contains(&text.as_str()) {
            self.problem(
                Diagnostic::new(
                    Code::KeywordAsName,
                    span,
                    format!("`{text}` is a keyword and cannot be used as a name as it is"),
                )
                .with_label("keyword")
                .with_help(format!("write it in double quotes to use it as a name: \"{text}\"")),
            );
        }
        Spanned::new(Name { text, quoted }, span)
    }

    fn selector(&self, pair: Pair<Rule>) -> Selector {
        let terms = pair
            .into_inner()
            .map(|term| {
                let span = self.span(&term);
                let rule = term.as_rule();
                let mut parts = term.into_inner();
                let key = self.label_part(parts.next());
                let node = match rule {
                    Rule::not_exists => Term::NotExists(key),
                    Rule::exists => Term::Exists(key),
                    Rule::equal => Term::Equal(key, self.label_part(parts.next())),
                    Rule::not_equal => Term::NotEqual(key, self.label_part(parts.next())),
                    _ => {
                        let op = parts.next().map(|p| p.as_str().to_string()).unwrap_or_default();
                        let values = parts.map(|v| self.label_part(Some(v))).collect();
                        if op == "notin" {
                            Term::NotIn(key, values)
                        } else {
                            Term::In(key, values)
                        }
                    }
                };
                Spanned::new(node, span)
            })
            .collect();
        Selector { terms }
    }

    fn label_part(&self, pair: Option<Pair<Rule>>) -> Spanned<String> {
        match pair {
            Some(p) => {
                let span = self.span(&p);
                Spanned::new(self.text(p), span)
            }
            None => Spanned::new(String::new(), Span::default()),
        }
    }

    /// The text of a value that may be quoted.
    fn text(&self, pair: Pair<Rule>) -> String {
        match pair.clone().into_inner().next() {
            Some(q) if q.as_rule() == Rule::quoted => self.text_of_quoted(q),
            _ if pair.as_rule() == Rule::quoted => self.text_of_quoted(pair),
            _ => pair.as_str().to_string(),
        }
    }

    fn text_of_quoted(&self, pair: Pair<Rule>) -> String {
        let raw = pair.into_inner().next().map(|p| p.as_str()).unwrap_or("");
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn ports(&self, pair: Pair<Rule>) -> Vec<Spanned<Port>> {
        let mut out = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::port => out.push(self.port(p)),
                Rule::port_list => out.extend(p.into_inner().map(|q| self.port(q))),
                _ => {}
            }
        }
        out
    }

    fn port(&self, pair: Pair<Rule>) -> Spanned<Port> {
        let span = self.span(&pair);
        let mut value = PortValue::Named(String::new());
        let mut protocol = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::port_value => value = port_value(p.as_str()),
                Rule::protocol => protocol = Some(self.spanned(&p, p.as_str().to_string())),
                _ => {}
            }
        }
        Spanned::new(Port { value, protocol }, span)
    }

    fn syntax_error(&self, error: pest::error::Error<Rule>, chunk: &str) -> Diagnostic {
        let pos = match error.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((s, _)) => s,
        };
        let positives: &[Rule] = match &error.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } => positives,
            pest::error::ErrorVariant::CustomError { .. } => &[],
        };
        let mut tokens = Vec::new();
        let mut pos = pos;
        if let Some(attempts) = error.parse_attempts() {
            if attempts.max_position > pos {
                pos = attempts.max_position;
            }
            if attempts.max_position == pos {
                for t in attempts.expected_tokens() {
                    if let Some(word) = token_word(&t.to_string()) {
                        tokens.push(word);
                    }
                }
            }
        }
        let starts_with_keyword = ["namespace", "workload", "external", "isolate", "meta", "allow", "expect", "expose"]
            .iter()
            .any(|k| {
                chunk
                    .trim_start()
                    .strip_prefix(k)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '#']))
            });
        if starts_with_keyword {
            // The line could also be read as an intent whose source is named
            // like the keyword; `->` and `/` would only mislead.
            tokens.retain(|t| *t != "`->`" && *t != "`/`");
        }
        let found = describe_found(&chunk[pos.min(chunk.len())..]);
        let mut expected = expected_words(positives, tokens, found == "end of line");
        if chunk[..pos.min(chunk.len())].trim().is_empty() {
            // Nothing of the line was understood: whatever alternative got furthest is noise.
            expected = "a statement".to_string();
        }
        if chunk.trim_start().starts_with('@') && found == "end of line" {
            expected = "a value after the metadata key".to_string();
        }
        let end = pos + chunk[pos.min(chunk.len())..].chars().next().map_or(0, |c| c.len_utf8());
        let span = Span {
            file: self.file,
            start: self.base + pos,
            end: self.base + end,
        };
        let mut d =
            Diagnostic::new(Code::Syntax, span, format!("expected {expected}, found {found}")).with_label(format!("expected {expected}"));
        if let Some(hint) = syntax_hint(chunk, pos) {
            d = d.with_help(hint);
        }
        d
    }
}

fn port_value(text: &str) -> PortValue {
    let number = |s: &str| {
        s.bytes().try_fold(0u32, |n, b| {
            if b.is_ascii_digit() {
                Some(n.saturating_mul(10).saturating_add(u32::from(b - b'0')))
            } else {
                None
            }
        })
    };
    if let Some(n) = number(text) {
        return PortValue::Number(n);
    }
    if let Some((a, b)) = text.split_once('-')
        && let (Some(a), Some(b)) = (number(a), number(b))
    {
        return PortValue::Range(a, b);
    }
    PortValue::Named(text.to_string())
}

fn describe_found(rest: &str) -> String {
    let rest = rest.trim_start_matches([' ', '\t']);
    match rest.chars().next() {
        None => "end of line".to_string(),
        Some('\n') | Some('\r') => "end of line".to_string(),
        Some(c) if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .take(40)
                .collect();
            format!("`{word}`")
        }
        Some(c) => format!("`{c}`"),
    }
}

fn syntax_hint(chunk: &str, pos: usize) -> Option<String> {
    let before = chunk[..pos.min(chunk.len())].trim_end();
    let rest = chunk[pos.min(chunk.len())..].trim_start();
    if rest.starts_with("=>") || rest.starts_with("<-") || rest.starts_with("-->") {
        return Some("an intent is written `SOURCE -> TARGET`".into());
    }
    if rest.starts_with(':') && before.ends_with(|c: char| c.is_alphanumeric()) && !before.contains("->") {
        return Some("ports belong to targets: `web -> api:8080`".into());
    }
    if chunk.trim_start().starts_with('@') {
        return Some("metadata is written `@key value`, with a value".into());
    }
    if before.split_whitespace().last().is_some_and(|w| w.matches(':').count() >= 2) {
        return Some("IPv6 blocks are declared with `external NAME = 2001:db8::/32` and used by name".into());
    }
    if unclosed_quote(chunk) {
        return Some("a quoted string must end with `\"` on the same line".into());
    }
    None
}

/// The literal tokens worth naming in "expected ..."; keywords and white
/// space are left to the rule names.
fn token_word(token: &str) -> Option<&'static str> {
    Some(match token {
        "->" => "`->`",
        "," => "`,`",
        ")" => "`)`",
        "(" => "`(`",
        "]" => "`]`",
        "}" => "`}`",
        "=" => "`=`",
        "/" => "`/`",
        "\"" => "`\"`",
        _ => return None,
    })
}

/// Whether some line of `chunk` opens a quoted string it does not close.
fn unclosed_quote(chunk: &str) -> bool {
    chunk.lines().any(|line| {
        let mut quoted = false;
        let mut escaped = false;
        for c in line.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '#' if !quoted => break,
                _ => {}
            }
        }
        quoted
    })
}

fn expected_words(rules: &[Rule], tokens: Vec<&'static str>, at_end: bool) -> String {
    let mut words: Vec<&str> = Vec::new();
    for word in tokens.into_iter().chain(rules.iter().map(|r| rule_word(*r))) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if words.len() > 1 {
        words.retain(|w| *w != "a statement" && *w != "a quoted string" && !(at_end && *w == "end of line"));
    }
    match words.len() {
        0 => "something else".into(),
        1 => words[0].into(),
        n => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

/// The word for a grammar rule in "expected ..." messages.
fn rule_word(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of line",
        Rule::statement | Rule::line => "a statement",
        Rule::namespace_decl | Rule::kw_namespace => "`namespace`",
        Rule::workload_decl | Rule::kw_workload => "`workload`",
        Rule::external_decl | Rule::kw_external => "`external`",
        Rule::isolate_stmt | Rule::kw_isolate => "`isolate`",
        Rule::allow_dns_stmt | Rule::kw_allow | Rule::allow_dns => "`allow dns`",
        Rule::kw_dns | Rule::dns => "`dns`",
        Rule::kw_except => "`except`",
        Rule::kw_meta | Rule::meta_stmt => "`meta`",
        Rule::kw_expect | Rule::expect_stmt => "`expect`",
        Rule::verdict => "`allowed` or `denied`",
        Rule::kw_expose | Rule::expose_stmt => "`expose`",
        Rule::kw_to => "`to`",
        Rule::annotation => "`@key value`",
        Rule::intent => "an intent",
        Rule::isolation => "`ingress`, `egress`, `both` or `none`",
        Rule::target => "a target",
        Rule::endpoint
        | Rule::namespaces_endpoint
        | Rule::qualified_endpoint
        | Rule::cluster
        | Rule::world
        | Rule::internet
        | Rule::kw_cluster
        | Rule::kw_world
        | Rule::kw_internet => "an endpoint",
        Rule::all_pods => "`*`",
        Rule::pods => "pods",
        Rule::pod_selector => "`[`",
        Rule::namespace_selector => "`{`",
        Rule::cidr_literal | Rule::ipv6_literal | Rule::cidr => "a CIDR such as `10.0.0.0/24`",
        Rule::ports => "`:` and ports",
        Rule::port_list | Rule::port | Rule::port_value => "a port",
        Rule::protocol => "`tcp`, `udp` or `sctp`",
        Rule::selector | Rule::term | Rule::not_exists | Rule::set_term | Rule::not_equal | Rule::equal | Rule::exists => {
            "a selector term such as `app=web`"
        }
        Rule::set_operator | Rule::kw_in | Rule::kw_notin => "`in` or `notin`",
        Rule::label_key | Rule::bare_key => "a label key",
        Rule::label_value | Rule::bare_value | Rule::set_value | Rule::bare_set_value => "a label value",
        Rule::name | Rule::bare_name => "a name",
        Rule::metadata_key => "a metadata key",
        Rule::metadata_value | Rule::bare_metadata_value => "a value",
        Rule::quoted | Rule::quoted_text => "a quoted string",
        Rule::WHITESPACE | Rule::COMMENT | Rule::word_char => "a word",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the fast path did on one logical line.
    #[derive(PartialEq)]
    enum Outcome {
        /// The fast path gave the grammar's statement, spans and comments.
        Same,
        /// The fast path left the line to the grammar.
        Declined,
    }

    /// Compares the fast path with the grammar on one logical line (at a
    /// non-zero offset, so that spans are shifted as in a file).
    fn compare(chunk: &str) -> Outcome {
        let Some((statement, comments)) = fast::line(3, 1000, chunk) else {
            return Outcome::Declined;
        };
        let (expected, expected_comments, problems) = grammar_line(3, 1000, chunk);
        assert!(
            problems.is_empty(),
            "fast path read a line the grammar rejects: {chunk:?}\n{problems:?}"
        );
        // Debug, not ==: `Spanned` equality ignores spans.
        assert_eq!(format!("{:?}", Some(statement)), format!("{expected:?}"), "on {chunk:?}");
        assert_eq!(comments, expected_comments, "comments of {chunk:?}");
        Outcome::Same
    }

    /// The logical lines of a text that reach the grammar in `parse`.
    fn chunks(text: &str) -> Vec<&str> {
        logical_lines(text)
            .into_iter()
            .filter(|line| line.too_long.is_none() && !line.blank)
            .map(|line| &text[line.start..line.end])
            .collect()
    }

    /// The `.np` files under `examples/` and the `np` code blocks of `docs/`.
    fn written_texts() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        let mut dirs = vec![root.join("examples"), root.join("docs")];
        while let Some(dir) = dirs.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            entries.sort();
            for path in entries {
                let ext = path.extension().and_then(|e| e.to_str());
                if path.is_dir() {
                    dirs.push(path);
                } else if ext == Some("np") {
                    // An example of the encoding error is not UTF-8.
                    texts.extend(std::fs::read_to_string(&path).ok());
                } else if ext == Some("md") {
                    let doc = std::fs::read_to_string(&path).unwrap();
                    let blocks = doc.split("```").skip(1).step_by(2);
                    texts.extend(blocks.filter_map(|b| b.strip_prefix("np\n")).map(str::to_string));
                }
            }
        }
        texts
    }

    /// What mutations insert: pieces that change how a line reads, and
    /// every keyword (`crate::KEYWORDS`).
    const PIECES: &[&str] = &[
        " ",
        "\t",
        "\n",
        "\r",
        "#",
        "# c\n",
        "\"",
        "\\",
        "\"x y\"",
        "\"a#b\"",
        ",",
        ",\n",
        "->",
        "-",
        ">",
        ":",
        "/",
        "*",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "=",
        "!=",
        "!",
        "@",
        ".",
        "_",
        "a",
        "Z",
        "9",
        "0",
        "é",
        "\u{feff}",
        "\u{0}",
        "::",
        "10.0.0.0/8",
        "ab:1/2",
        "allow dns",
        "to",
        "tcp",
        "udp",
        "/tcp",
        "/",
        ":80",
        ":(1, 2)",
        "8000-8100",
        "app=web",
        "x in (a, b)",
        "ns/w",
        "ns/*",
        "a -> b",
        "@owner ",
        ", )",
        "/53",
        "1.2.3.4",
        "/24",
    ];

    fn piece(i: usize) -> &'static str {
        PIECES.get(i).copied().unwrap_or_else(|| crate::KEYWORDS[i - PIECES.len()])
    }

    /// Lines at the edges of what the fast path reads, to mutate with the others.
    const EDGES: &[&str] = &[
        "workload w = tier in (a, b), track notin (), !beta, version!=v1, ready",
        "workload w = k in (a, )",
        "workload w = k in (a b)",
        "workload w = k=, j=\"x\"",
        "a -> db:53/53, cafe:80/1, 10.0.0.0/8:443, 10.1.2.3, 10.0.0.0/8x, 1.2.3",
        "a -> b : ( 80 /udp , 90 ) , allow  dns : 53/udp # c",
        "ns / b -> ns / * : 80, * , world, internet, cluster, dns",
        "allow dns # c",
        "allow dns:(53/udp, 53/tcp)",
        "@owner \"team a # b\" # c",
        "@k \"a\\\"b\"",
        "@k\ta#b",
        "meta k = \"v\" # c",
        "isolate none # c",
        "namespace \"in\" # c",
    ];

    /// A seeded mutant of `line`: one to three insertions, deletions,
    /// replacements or truncations.
    fn mutate(seed: &mut u64, line: &str) -> String {
        let mut next = |n: usize| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed % n as u64) as usize
        };
        let mut s = line.to_string();
        for _ in 0..1 + next(3) {
            let boundaries: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
            let at = boundaries[next(boundaries.len())];
            let to = boundaries.iter().copied().filter(|&b| b >= at).nth(1 + next(3)).unwrap_or(s.len());
            match next(5) {
                0 => s.replace_range(at..to, ""),
                1 => s.replace_range(at..to, piece(next(PIECES.len() + crate::KEYWORDS.len()))),
                2 => s.truncate(at),
                _ => s.insert_str(at, piece(next(PIECES.len() + crate::KEYWORDS.len()))),
            }
        }
        s
    }

    #[test]
    fn logical_lines_continue_after_code_that_ends_with_a_comma_or_arrow() {
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        let text = format!("a -> b,\n  c # d,\n@k \"a\\\"#\" ->\n  e\n\n  # only\r\n\t\nf -> g,\n{long}\ntail ->\n");
        let continued = format!("f -> g,\n{long}");
        let lines: Vec<_> = logical_lines(&text)
            .into_iter()
            .map(|line| (&text[line.start..line.end], line.too_long, line.blank))
            .collect();
        let expected = [
            // The `,` after `#` is in the comment.
            ("a -> b,\n  c # d,", None, false),
            // The `#` after an escaped quote is in the string.
            ("@k \"a\\\"#\" ->\n  e", None, false),
            ("", None, true),
            ("  # only\r", None, true),
            ("\t", None, true),
            (continued.as_str(), Some(8), false),
            // A line continued at the end of the text keeps its newline.
            ("tail ->\n", None, false),
        ];
        assert_eq!(lines, expected);
    }

    #[test]
    fn fast_path_reads_every_line_as_the_grammar_does() {
        let fleet = crate::fleet::generate(&crate::fleet::FleetSpec {
            namespaces: 12,
            workloads: 150,
            intents: 600,
            seed: 7,
        });
        let fleet_lines: Vec<&str> = fleet.iter().flat_map(|(_, text)| chunks(text)).collect();
        let fast = fleet_lines.iter().filter(|chunk| compare(chunk) == Outcome::Same).count();
        // The generated fleet is what the fast path is for: if it stops
        // firing, parsing silently gets slow again.
        assert!(
            fast * 100 >= fleet_lines.len() * 98,
            "fast path on {fast} of {} fleet lines",
            fleet_lines.len()
        );

        let written = written_texts();
        let mut lines: Vec<&str> = written.iter().flat_map(|text| chunks(text)).collect();
        assert!(lines.len() > 300, "examples and docs give {} lines", lines.len());
        for chunk in &lines {
            compare(chunk);
        }

        lines.extend(fleet_lines.iter().step_by(4));
        lines.extend(EDGES);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut same = 0;
        for i in 0..25_000 {
            // Every tenth mutant is of an edge line.
            let at = if i % 10 == 0 {
                lines.len() - 1 - i / 10 % EDGES.len()
            } else {
                i * 7919 % lines.len()
            };
            // Now and then two lines at once, as a continued line would be.
            let text = if i % 5 == 0 {
                format!("{}\n{}", lines[at], lines[(at + 1) % lines.len()])
            } else {
                lines[at].to_string()
            };
            let mutant = mutate(&mut seed, &text);
            for chunk in chunks(&mutant) {
                same += usize::from(compare(chunk) == Outcome::Same);
            }
        }
        // Most mutants break the line; enough must still be read fast for the
        // comparison to mean something.
        assert!(same > 5_000, "only {same} mutants read by the fast path");
    }
}
