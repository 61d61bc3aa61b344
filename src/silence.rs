//! Silencing warnings, once all diagnostics of a run are known.
//! `Config::silenced` (`[lints] allow` in `netpolc.toml`) drops the warnings of
//! a code everywhere; a comment `# netpolc: allow W0101, W0104 -- reason`
//! drops them on its own line or, alone on its line, in the statement below
//! it. Errors are never silenced: naming one in such a comment is a warning
//! (W0110), and so is a code that does not exist (W0109).

use crate::ast::{self, Span, Statement};
use crate::config::Config;
use crate::diagnostics::{Code, Diagnostic, Severity};
use crate::source::Sources;
use rustc_hash::FxHashMap;

/// What marks a comment as addressed to netpolc.
const PREFIX: &str = "netpolc:";

/// The lines that silencing comments apply to, read from the syntax trees
/// before they are dropped (they are the largest structure of a run that
/// nothing needs after lowering).
#[derive(Debug, Default)]
pub struct Silencing {
    /// Codes silenced per (file, line).
    allowed: FxHashMap<(usize, usize), Vec<Code>>,
}

impl Silencing {
    /// Reads every silencing comment of `files` (`files[i]` is the tree of
    /// `sources` file `i`); a malformed one goes to `problems`.
    pub fn read(files: &[ast::File], sources: &Sources, problems: &mut Vec<Diagnostic>) -> Silencing {
        let mut allowed: FxHashMap<(usize, usize), Vec<Code>> = FxHashMap::default();
        for (index, file) in files.iter().enumerate() {
            for comment in &file.comments {
                if let Some(directive) = Directive::read(*comment, sources, problems) {
                    for line in directive.lines(file, sources, problems) {
                        allowed.entry((index, line)).or_default().extend(&directive.codes);
                    }
                }
            }
        }
        Silencing { allowed }
    }

    /// Drops the warnings that the project or a comment silences from
    /// `diagnostics`, once all of them are known.
    pub fn apply(&self, mut diagnostics: Vec<Diagnostic>, sources: &Sources, config: &Config) -> Vec<Diagnostic> {
        diagnostics.retain(|d| {
            let span = d.span();
            let silenced = config.silenced.contains(&d.code)
                || self
                    .allowed
                    .get(&(span.file, sources.line_of(span)))
                    .is_some_and(|codes| codes.contains(&d.code));
            d.severity() == Severity::Error || !silenced
        });
        diagnostics
    }
}

/// A comment `# netpolc: allow CODE, ...`.
struct Directive {
    comment: Span,
    codes: Vec<Code>,
}

impl Directive {
    /// The directive a comment holds, if it starts with `netpolc:`; problems
    /// in it go to `problems`.
    fn read(comment: Span, sources: &Sources, problems: &mut Vec<Diagnostic>) -> Option<Directive> {
        let text = sources.slice(comment);
        let body = text.strip_prefix('#')?.trim_start();
        let rest = body.strip_prefix(PREFIX)?;
        let offset = |part: &str| comment.start + (part.as_ptr() as usize - text.as_ptr() as usize);
        let at = |part: &str| Span {
            file: comment.file,
            start: offset(part),
            end: offset(part) + part.len(),
        };
        let malformed = |message: &str| {
            Diagnostic::new(Code::InvalidSilencing, comment, message.to_string())
                .with_label("silences nothing")
                .with_help("write `# netpolc: allow W0101` (several codes: `allow W0101, W0104`; a reason may follow `--`)")
        };
        let Some(list) = rest
            .trim_start()
            .strip_prefix("allow")
            .filter(|l| l.is_empty() || l.starts_with(char::is_whitespace))
        else {
            problems.push(malformed(
                "a comment starting with `netpolc:` must say `allow` and the codes to silence",
            ));
            return None;
        };
        let list = list.split_once("--").map_or(list, |(codes, _reason)| codes);
        let mut codes = Vec::new();
        for word in list.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
            match Code::ALL.iter().find(|c| c.as_str().eq_ignore_ascii_case(word)) {
                Some(code) if code.as_str() != word => problems.push(
                    Diagnostic::new(Code::InvalidSilencing, at(word), format!("`{word}` is not a code"))
                        .with_label("codes are written in capitals")
                        .with_help(format!("write `{}`", code.as_str())),
                ),
                Some(code) if code.severity() == Severity::Error => problems.push(
                    Diagnostic::new(Code::SilencedError, at(word), format!("error `{word}` cannot be silenced"))
                        .with_label("only warnings can be silenced")
                        .with_help("an error means the input cannot be compiled as written: fix the input instead"),
                ),
                Some(code) => codes.push(*code),
                None => problems.push(
                    Diagnostic::new(Code::InvalidSilencing, at(word), format!("`{word}` is not a diagnostic code"))
                        .with_label("unknown code")
                        .with_help("warning codes look like `W0101`; docs/errors.md lists them all"),
                ),
            }
        }
        if codes.is_empty() && !list.contains(|c: char| c.is_ascii_alphanumeric()) {
            problems.push(malformed("this silencing comment names no code"));
        }
        (!codes.is_empty()).then_some(Directive { comment, codes })
    }

    /// The lines it applies to: its own line when it follows code; when it
    /// stands alone, every line of the next statement that is not metadata,
    /// with only comments (and `@` lines) in between.
    fn lines(&self, file: &ast::File, sources: &Sources, problems: &mut Vec<Diagnostic>) -> std::ops::Range<usize> {
        let own = sources.line_of(self.comment);
        let text = sources.get(self.comment.file).map_or("", |f| f.text.as_str());
        let line_start = text[..self.comment.start].rfind('\n').map_or(0, |i| i + 1);
        if !text[line_start..self.comment.start].trim().is_empty() {
            return own..own + 1;
        }
        let mut pos = self.comment.end;
        loop {
            pos = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
            let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
            let line = text[pos..end].trim();
            if line.is_empty() {
                problems.push(
                    Diagnostic::new(Code::InvalidSilencing, self.comment, "this silencing comment is above no statement")
                        .with_label("followed by a blank line or the end of the file")
                        .with_help("put it directly above the statement it is about, or at the end of that statement's line"),
                );
                return 0..0;
            }
            if line.starts_with('#') {
                continue;
            }
            let first = file.statements.partition_point(|s| s.span.start < pos);
            match file.statements.get(first).filter(|s| s.span.start < end) {
                Some(s) if matches!(s.node, Statement::Annotation(_)) => continue,
                Some(s) => {
                    let last = sources.line_of(Span {
                        start: s.span.end,
                        ..s.span
                    });
                    return sources.line_of(s.span)..last + 1;
                }
                // A line that did not parse: its syntax error is reported already.
                None => return 0..0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::diagnostics::Code;

    fn compile(text: &str, config: &Config) -> crate::Compilation {
        let mut sources = crate::Sources::new();
        sources.add("t.np", text);
        crate::compile(sources, Vec::new(), config)
    }

    /// (line, code) of every diagnostic of a source under `namespace a` and `allow dns`.
    fn reported(body: &str) -> Vec<(usize, &'static str)> {
        let out = compile(&format!("namespace a\nallow dns\n{body}\n"), &Config::default());
        out.diagnostics
            .iter()
            .map(|d| (out.sources.line_of(d.span()), d.code.as_str()))
            .collect()
    }

    #[test]
    fn a_comment_silences_its_own_line_only() {
        assert_eq!(reported("web -> api"), [(3, "W0101")]);
        assert_eq!(reported("web -> api   # netpolc: allow W0101"), []);
        assert_eq!(reported("web -> api   # netpolc: allow W0101 -- every port, on purpose"), []);
        assert_eq!(reported("web -> api   # netpolc: allow W0104, W0101"), []);
        assert_eq!(reported("web -> api   # netpolc: allow W0104"), [(3, "W0101")], "another code");
        assert_eq!(
            reported("web -> api   # netpolc: allow W0101\nweb -> db"),
            [(4, "W0101")],
            "the next line is not concerned"
        );
        assert_eq!(
            reported("web -> api:80,   # netpolc: allow W0101\n       db"),
            [(4, "W0101")],
            "a line of a longer statement"
        );
    }

    #[test]
    fn a_comment_alone_on_its_line_silences_the_statement_below() {
        assert_eq!(reported("# netpolc: allow W0101\nweb -> api"), []);
        assert_eq!(
            reported("# netpolc: allow W0101\n# every port: the vendor does not say which\nweb -> api"),
            []
        );
        assert_eq!(
            reported("# netpolc: allow W0101\n@owner team-web\nweb -> api"),
            [],
            "metadata belongs to the intent"
        );
        assert_eq!(
            reported("# netpolc: allow W0101\nweb -> api:80,\n       db,\n       cache"),
            [],
            "every line of it"
        );
        assert_eq!(reported("# netpolc: allow W0101\nweb -> api\nweb -> db"), [(5, "W0101")]);
        assert_eq!(
            reported("# netpolc: allow W0101\n\nweb -> api"),
            [(3, "W0109"), (5, "W0101")],
            "a blank line ends its reach"
        );
        assert_eq!(
            reported("web -> api:80\n# netpolc: allow W0101"),
            [(4, "W0109")],
            "the end of the file too"
        );
    }

    #[test]
    fn a_hash_inside_a_quoted_value_starts_no_comment() {
        assert_eq!(reported("@reason \"see # netpolc: allow W9999\"\nweb -> api:80"), []);
        // A bare metadata value ends at `#`, even after a stray quote.
        assert_eq!(reported("@reason x\"y # netpolc: allow W9999\nweb -> api:80"), [(3, "W0109")]);
    }

    #[test]
    fn bad_silencing_comments_are_reported() {
        let out = compile(
            "namespace a\nallow dns\nweb -> api:80  # netpolc: allow W9999, w0101\n",
            &Config::default(),
        );
        let rendered = out.render_diagnostics();
        assert!(rendered.contains("`W9999` is not a diagnostic code"), "{rendered}");
        assert!(rendered.contains("help: write `W0101`"), "{rendered}");
        assert_eq!(reported("web -> api:80  # netpolc: allow"), [(3, "W0109")]);
        assert_eq!(reported("web -> api:80  # netpolc: disable W0101"), [(3, "W0109")]);
        assert_eq!(reported("web -> api:80  # netpolc-generated, not a silencing comment"), []);
    }

    #[test]
    fn errors_are_never_silenced() {
        assert_eq!(
            reported("web -> api:99999  # netpolc: allow E0103"),
            [(3, "E0103"), (3, "W0110")],
            "the error stays, and the comment is reported"
        );
        let mut config = Config::default();
        config.silenced.insert(Code::PortOutOfRange);
        let out = compile("namespace a\nallow dns\nweb -> api:99999\n", &config);
        assert!(out.has_errors());
    }

    #[test]
    fn the_project_silences_a_code_everywhere() {
        let text = "namespace a\nallow dns\nweb -> api\nworld -> web:443\n";
        let mut config = Config::default();
        config.silenced.insert(Code::NoPorts);
        let out = compile(text, &config);
        let codes: Vec<&str> = out.diagnostics.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["W0103"]);
        config.silenced.insert(Code::IngressFromWorld);
        assert!(compile(text, &config).diagnostics.is_empty());
        // The checker's own warnings too, not only the lints.
        config.silenced.insert(Code::MissingDns);
        assert!(compile("namespace b\nweb -> api:80\n", &config).diagnostics.is_empty());
    }

    #[test]
    fn every_warning_can_be_silenced_on_its_line() {
        // W0006 points at an intent; W0003 at a name in one; W0005 at a target.
        let text = "namespace a\nworkload user-api = app=user-api\nweb -> usr-api:80, b/api:80  # netpolc: allow W0003, W0005, W0006\nexpect web -> user-api denied\n";
        let out = compile(text, &Config::default());
        assert!(out.diagnostics.is_empty(), "{}", out.render_diagnostics());
        let bare = compile(&text.replace("  # netpolc: allow W0003, W0005, W0006", ""), &Config::default());
        let codes: Vec<&str> = bare.diagnostics.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["W0003", "W0006", "W0005"]);
    }
}
