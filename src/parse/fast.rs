//! A hand-written reader for the logical lines fleets are made of:
//! `a -> ns/b:(8080, 9090/udp), allow dns`, `workload w = app=w, tier in (a, b)`,
//! `@owner team`, `meta k = v`, `namespace n`, `allow dns`, `isolate ingress`.
//!
//! pest pays a fixed cost on each of the two hundred rule calls such a line
//! needs; this reads its bytes once. It mirrors the grammar's ordered choices
//! and builds exactly the tree the grammar would, spans included, or gives up
//! (`None`) so that the grammar decides: on every rarer shape (`external`,
//! `expect`, `expose`, IPv6 literals, bracketed selectors, quoted names and
//! labels, escapes), on what the grammar reports while building the tree
//! (keywords as names), and on any error. Giving up is always correct; reading differently never is, which
//! the differential test in `parse`'s tests guards.

use super::port_value;
use crate::ast::*;

/// The statement of one logical line and its comments, exactly as the grammar
/// would give them, if the line has one of the shapes read here.
pub(super) fn line(file: usize, base: usize, chunk: &str) -> Option<(Spanned<Statement>, Vec<Span>)> {
    let mut c = Cursor {
        text: chunk,
        pos: 0,
        file,
        base,
        comments: Vec::new(),
    };
    c.skip();
    let start = c.pos;
    let statement = if c.peek() == Some(b'@') {
        c.annotation()?
    } else {
        match c.word_ahead() {
            "workload" => c.workload()?,
            "allow" => c.allow_dns()?,
            "namespace" => c.namespace()?,
            "meta" => c.meta()?,
            "isolate" => c.isolate()?,
            "external" | "expect" | "expose" => return None,
            _ => c.intent()?,
        }
    };
    let end = c.pos;
    c.skip();
    if c.pos != chunk.len() {
        return None;
    }
    Some((Spanned::new(statement, c.span(start, end)), c.comments))
}

/// Letters, digits, `-`, `.` and `_`: what names and keywords are made of.
const WORD: u8 = 1;
/// A word character or `/`: metadata and label keys.
const KEY: u8 = 2;
/// Letters, digits and `-`: port numbers, ranges and names.
const PORT: u8 = 4;
/// Anything but blanks, a newline or `#`: bare metadata values.
const VALUE: u8 = 8;
/// Letters: protocols.
const ALPHA: u8 = 16;
/// A space or a tab: between a metadata key and its value.
const BLANK: u8 = 32;

/// The classes of each byte, looked up once per byte rather than tested
/// range by range: names and words are most of what the fast path reads.
static CLASSES: [u8; 256] = {
    let mut classes = [VALUE; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte.is_ascii_alphabetic() {
            classes[b] |= WORD | KEY | PORT | ALPHA;
        } else if byte.is_ascii_digit() {
            classes[b] |= WORD | KEY | PORT;
        }
        b += 1;
    }
    classes[b'-' as usize] |= WORD | KEY | PORT;
    classes[b'.' as usize] |= WORD | KEY;
    classes[b'_' as usize] |= WORD | KEY;
    classes[b'/' as usize] |= KEY;
    classes[b' ' as usize] |= BLANK;
    classes[b'\t' as usize] |= BLANK;
    let mut i = 0;
    let not_value = [b' ', b'\t', b'\r', b'\n', b'#'];
    while i < not_value.len() {
        classes[not_value[i] as usize] &= !VALUE;
        i += 1;
    }
    classes
};

fn is(class: u8, b: u8) -> bool {
    CLASSES[usize::from(b)] & class != 0
}

/// How many bytes at the start of `bytes` are of `class`.
fn span_of(class: u8, bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| is(class, b)).count()
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    file: usize,
    base: usize,
    /// The comments passed so far. No token holds a `#` but a quoted string,
    /// so on a line read to its end these are the line's comments.
    comments: Vec<Span>,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span {
            file: self.file,
            start: self.base + start,
            end: self.base + end,
        }
    }

    /// The grammar's implicit blanks and comments between tokens.
    fn skip(&mut self) {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'#' => self.comment(),
                _ => break,
            }
        }
    }

    /// Passes the comment at the cursor, keeping its span. Blanks are passed
    /// again after looking ahead: a comment is kept once. Out of `skip`, which
    /// runs between every two tokens and stays small.
    #[inline(never)]
    fn comment(&mut self) {
        let bytes = self.text.as_bytes();
        let end = bytes[self.pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| self.pos + i);
        if self.comments.last().is_none_or(|seen| seen.start < self.base + self.pos) {
            // Up to the line's last byte that is no `\r`, as `comment_spans` ends it.
            let text_end = self.pos + 1 + bytes[self.pos + 1..end].iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
            self.comments.push(self.span(self.pos, text_end));
        }
        self.pos = end;
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.text[self.pos..].starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    /// Reads one or more bytes that satisfy `is`; their range.
    fn run(&mut self, class: u8) -> Option<(usize, usize)> {
        let start = self.pos;
        let len = span_of(class, &self.text.as_bytes()[start..]);
        self.pos += len;
        (len > 0).then_some((start, self.pos))
    }

    /// The word at the cursor, not consumed: a keyword matches only a whole word.
    fn word_ahead(&self) -> &'a str {
        let len = span_of(WORD, &self.text.as_bytes()[self.pos..]);
        &self.text[self.pos..self.pos + len]
    }

    /// Whether the word at the cursor is `keyword`, without reading the whole word.
    fn at_keyword(&self, keyword: &str) -> bool {
        let rest = &self.text.as_bytes()[self.pos..];
        rest.starts_with(keyword.as_bytes()) && !rest.get(keyword.len()).is_some_and(|&b| is(WORD, b))
    }

    fn keyword(&mut self, keyword: &str) -> Option<()> {
        self.at_keyword(keyword).then(|| self.pos += keyword.len())
    }

    fn require(&mut self, token: &str) -> Option<()> {
        self.eat(token).then_some(())
    }

    fn string(&mut self, class: u8) -> Option<Spanned<String>> {
        let (start, end) = self.run(class)?;
        Some(Spanned::new(self.text[start..end].to_string(), self.span(start, end)))
    }

    /// A name without quotes that is no keyword (a keyword as a name is E0102, which the grammar path reports).
    fn name(&mut self) -> Option<Spanned<Name>> {
        let word = self.word_ahead();
        let name = self.named(self.pos, word)?;
        self.pos += word.len();
        Some(name)
    }

    /// The name that `word`, read at `start`, makes, if it is no keyword.
    fn named(&self, start: usize, word: &str) -> Option<Spanned<Name>> {
        if word.is_empty() || crate::KEYWORDS.contains(&word) {
            return None;
        }
        let name = Name {
            text: word.to_string(),
            quoted: false,
        };
        Some(Spanned::new(name, self.span(start, start + word.len())))
    }

    /// `@KEY VALUE`, with blanks but no comment or newline between them.
    fn annotation(&mut self) -> Option<Statement> {
        self.pos += 1;
        let key = self.string(KEY)?;
        self.run(BLANK)?;
        let value = self.metadata_value()?;
        Some(Statement::Annotation(Metadata { key, value }))
    }

    fn meta(&mut self) -> Option<Statement> {
        self.keyword("meta")?;
        self.skip();
        let key = self.string(KEY)?;
        self.skip();
        self.require("=")?;
        self.skip();
        let value = self.metadata_value()?;
        Some(Statement::Meta(Metadata { key, value }))
    }

    /// A quoted value without escapes, or a bare one up to a blank or `#`.
    fn metadata_value(&mut self) -> Option<Spanned<String>> {
        if self.peek() != Some(b'"') {
            return self.string(VALUE);
        }
        let start = self.pos;
        let inner = &self.text[start + 1..];
        let close = inner.find(['"', '\\', '\n'])?;
        if !inner[close..].starts_with('"') {
            return None;
        }
        self.pos = start + 1 + close + 1;
        Some(Spanned::new(inner[..close].to_string(), self.span(start, self.pos)))
    }

    fn namespace(&mut self) -> Option<Statement> {
        self.keyword("namespace")?;
        self.skip();
        let name = self.name()?;
        Some(Statement::Namespace(name))
    }

    fn isolate(&mut self) -> Option<Statement> {
        self.keyword("isolate")?;
        self.skip();
        let mode = match self.word_ahead() {
            "ingress" => Isolation::Ingress,
            "egress" => Isolation::Egress,
            "both" => Isolation::Both,
            "none" => Isolation::None,
            _ => return None,
        };
        self.pos += mode.as_str().len();
        Some(Statement::Isolate(mode))
    }

    /// `allow dns[:PORTS]`. Without ports, the statement's span runs over the
    /// blanks and comment after `dns`, as the grammar's does.
    fn allow_dns(&mut self) -> Option<Statement> {
        let start = self.pos;
        self.keyword("allow")?;
        self.skip();
        self.keyword("dns")?;
        self.skip();
        let ports = if self.peek() == Some(b':') { self.ports()? } else { Vec::new() };
        let span = self.span(start, self.pos);
        let target = Target {
            endpoint: Spanned::new(Endpoint::Dns, span),
            ports,
        };
        Some(Statement::AllowDns(Spanned::new(target, span)))
    }

    fn workload(&mut self) -> Option<Statement> {
        self.keyword("workload")?;
        self.skip();
        let name = self.name()?;
        self.skip();
        self.require("=")?;
        self.skip();
        let start = self.pos;
        let terms = self.list(Self::term)?;
        let selector = Spanned::new(Selector { terms }, self.span(start, self.pos));
        Some(Statement::Workload { name, selector })
    }

    /// `ITEM, ITEM, ...` as the grammar reads `item ~ ("," ~ item)*`: the
    /// blanks after the first item belong to the list even when no `,` follows
    /// (pest's implicit skip before a repetition), those after a later item do
    /// not. The cursor ends where the grammar's list ends.
    fn list<T>(&mut self, item: fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut items = vec![item(self)?];
        self.skip();
        if self.eat(",") {
            self.skip();
            items.push(item(self)?);
            loop {
                let end = self.pos;
                self.skip();
                if !self.eat(",") {
                    self.pos = end;
                    break;
                }
                self.skip();
                items.push(item(self)?);
            }
        }
        Some(items)
    }

    /// A selector term, in the grammar's order: `!key`, `key in|notin (...)`,
    /// `key!=value`, `key=value`, `key`.
    fn term(&mut self) -> Option<Spanned<Term>> {
        let start = self.pos;
        if self.eat("!") {
            self.skip();
            let key = self.string(KEY)?;
            return Some(Spanned::new(Term::NotExists(key), self.span(start, self.pos)));
        }
        let key = self.string(KEY)?;
        let after_key = self.pos;
        self.skip();
        let term = match self.word_ahead() {
            operator @ ("in" | "notin") => {
                let not = operator == "notin";
                self.pos += operator.len();
                self.skip();
                self.require("(")?;
                self.skip();
                let mut values = Vec::new();
                if self.peek() != Some(b')') {
                    loop {
                        values.push(self.string(WORD)?);
                        self.skip();
                        if !self.eat(",") {
                            break;
                        }
                        self.skip();
                    }
                }
                self.require(")")?;
                if not { Term::NotIn(key, values) } else { Term::In(key, values) }
            }
            _ if self.eat("!=") => Term::NotEqual(key, self.label_value()?),
            _ if self.eat("=") => Term::Equal(key, self.label_value()?),
            _ => {
                self.pos = after_key;
                Term::Exists(key)
            }
        };
        Some(Spanned::new(term, self.span(start, self.pos)))
    }

    /// A label value after `=` or `!=`; an empty one is left to the grammar.
    fn label_value(&mut self) -> Option<Spanned<String>> {
        self.skip();
        self.string(WORD)
    }

    /// `SOURCE -> TARGET, ...`. With one target, the statement's span runs
    /// over the blanks and comment after it, as the grammar's does.
    fn intent(&mut self) -> Option<Statement> {
        let source = self.endpoint()?;
        self.skip();
        self.require("->")?;
        self.skip();
        let targets = self.list(Self::target)?;
        Some(Statement::Intent(Intent { source, targets }))
    }

    /// `ENDPOINT[:PORTS]` or `allow dns[:PORTS]`; the cursor ends where the
    /// grammar's target does (after the blanks when it has no ports), while
    /// the target's span ends with its last part.
    fn target(&mut self) -> Option<Spanned<Target>> {
        let start = self.pos;
        let endpoint = if self.at_keyword("allow") {
            self.pos += "allow".len();
            self.skip();
            self.keyword("dns")?;
            Spanned::new(Endpoint::Dns, self.span(start, self.pos))
        } else {
            self.endpoint()?
        };
        let mut end = self.pos;
        self.skip();
        let mut ports = Vec::new();
        if self.peek() == Some(b':') {
            ports = self.ports()?;
            end = self.pos;
        }
        Some(Spanned::new(Target { endpoint, ports }, self.span(start, end)))
    }

    /// `NAME`, `NS/NAME`, `NS/*`, `*`, `cluster`, `world`, `internet`, `dns`, `10.0.0.0/24`.
    fn endpoint(&mut self) -> Option<Spanned<Endpoint>> {
        let start = self.pos;
        let rest = &self.text.as_bytes()[start..];
        // The grammar tries IPv6 then CIDR literals first. An IPv6 one is never
        // read here: it has a `/` and a digit after its `:`, which no port has.
        // Names that start with a digit are left to the grammar.
        if rest.first().is_none_or(u8::is_ascii_digit) {
            self.pos += cidr_literal(rest)?;
            return Some(Spanned::new(
                Endpoint::Cidr(self.text[start..self.pos].to_string()),
                self.span(start, self.pos),
            ));
        }
        if self.eat("*") {
            return Some(Spanned::new(Endpoint::AllPods, self.span(start, self.pos)));
        }
        let word = self.word_ahead();
        let keyword = match word {
            "cluster" => Some(Endpoint::Cluster),
            "world" => Some(Endpoint::World),
            "internet" => Some(Endpoint::Internet),
            "dns" => Some(Endpoint::Dns),
            _ => None,
        };
        let after_word = start + word.len();
        self.pos = after_word;
        self.skip();
        if self.eat("/") {
            let namespace = self.named(start, word)?;
            self.skip();
            let pods = if self.eat("*") { Pods::All } else { Pods::Name(self.name()?) };
            return Some(Spanned::new(Endpoint::Qualified { namespace, pods }, self.span(start, self.pos)));
        }
        self.pos = after_word;
        let endpoint = match keyword {
            Some(endpoint) => endpoint,
            None => Endpoint::Name(self.named(start, word)?.node),
        };
        Some(Spanned::new(endpoint, self.span(start, self.pos)))
    }

    /// `:PORT` or `:(PORT, ...)`.
    fn ports(&mut self) -> Option<Vec<Spanned<Port>>> {
        self.require(":")?;
        self.skip();
        if !self.eat("(") {
            return Some(vec![self.port()?]);
        }
        self.skip();
        let mut ports = vec![self.port()?];
        self.skip();
        while self.eat(",") {
            self.skip();
            ports.push(self.port()?);
            self.skip();
        }
        self.require(")")?;
        Some(ports)
    }

    /// `8080`, `8000-8100`, `http`, each with an optional `/PROTOCOL`, all in one word.
    fn port(&mut self) -> Option<Spanned<Port>> {
        let (start, end) = self.run(PORT)?;
        let value = port_value(&self.text[start..end]);
        let protocol = if self.eat("/") { Some(self.string(ALPHA)?) } else { None };
        Some(Spanned::new(Port { value, protocol }, self.span(start, self.pos)))
    }
}

/// The length of what the grammar's `cidr_literal` matches at the start of
/// `rest`: four dotted numbers, an optional `/` and number, then no word character.
fn cidr_literal(rest: &[u8]) -> Option<usize> {
    let digits = |at: usize| rest[at.min(rest.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut len = 0;
    for part in 0..4 {
        if part > 0 {
            (rest.get(len) == Some(&b'.')).then_some(())?;
            len += 1;
        }
        let n = digits(len);
        (n > 0).then_some(())?;
        len += n;
    }
    if rest.get(len) == Some(&b'/') && digits(len + 1) > 0 {
        len += 1 + digits(len + 1);
    }
    (!rest.get(len).is_some_and(|&b| is(WORD, b))).then_some(len)
}
