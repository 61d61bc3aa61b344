//! The text of a diagnostic without colour, written straight into a buffer
//! when its layout is the simple one: every label on a line of its own, in
//! one file, over printable ASCII. That is nearly every diagnostic a run
//! reports (3,204 of the benchmark fleet's 3,259 warnings). The text is
//! byte-for-byte what codespan-reporting writes (the tests compare the two
//! on every diagnostic of the examples and of a fleet, and on constructed
//! edge cases). Anything else is left to codespan, which writes each
//! character through `fmt` and made rendering the fleet's warnings a fifth
//! of a build's instructions (decision 0030).

use super::Diagnostic;
use crate::source::Sources;
use codespan_reporting::files::Files;

/// A label's line, where it starts and ends on it (bytes, end exclusive and
/// at least one past the start, as codespan draws an empty label), and what
/// it says.
struct Shown<'d> {
    line: usize,
    start: usize,
    end: usize,
    primary: bool,
    message: &'d str,
}

/// `d` as codespan-reporting renders it without colour (`notes` are the
/// notes it would be given), or `None` when the layout is not the simple one.
pub(super) fn text(d: &Diagnostic, notes: &[String], sources: &Sources) -> Option<Vec<u8>> {
    let labels = if d.show_source { d.labels.as_slice() } else { &[] };
    let file = labels.first().map(|l| l.span.file);
    let mut shown = Vec::with_capacity(labels.len());
    for label in labels {
        let span = label.span;
        if Some(span.file) != file || span.start > span.end || span.end > sources.get(span.file)?.text.len() {
            return None;
        }
        let line = sources.line_index(span.file, span.start).ok()?;
        if sources.line_index(span.file, span.end).ok()? != line {
            return None;
        }
        let line_start = sources.line_range(span.file, line).ok()?.start;
        let start = span.start - line_start;
        shown.push(Shown {
            line,
            start,
            end: (span.end - line_start).max(start + 1),
            primary: label.primary,
            message: &label.message,
        });
    }
    shown.sort_by_key(|s| s.line);
    if shown.windows(2).any(|pair| pair[0].line == pair[1].line) {
        return None;
    }

    let mut out = Vec::with_capacity(512);
    for part in [super::severity_word(d), "[", d.code.as_str(), "]: ", &d.message, "\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    // The widest line number sets the gutter; the snippet is located at the
    // first primary label, or the first label if none is primary.
    let padding = shown.last().map_or(0, |s| digits(s.line + 1));
    let gutter = |out: &mut Vec<u8>| out.resize(out.len() + padding + 1, b' ');
    if let Some(file) = file {
        let located = (labels.iter()).min_by_key(|l| (!l.primary, l.span.start)).map(|l| l.span.start)?;
        let location = sources.location(file, located).ok()?;
        gutter(&mut out);
        // The name codespan shows (the path), not the one annotations use.
        let name = Files::name(sources, file).ok()?;
        let (line, column) = (location.line_number.to_string(), location.column_number.to_string());
        for part in ["┌─ ", name, ":", &line, ":", &column, "\n"] {
            out.extend_from_slice(part.as_bytes());
        }
        gutter(&mut out);
        out.extend_from_slice("│\n".as_bytes());
        let text = &sources.get(file)?.text;
        for (i, s) in shown.iter().enumerate() {
            let source = source_line(sources, file, s.line, text)?;
            // Only printable ASCII has the one column per byte counted below.
            let measured = &source.as_bytes()[..source.len().min(s.end)];
            if !measured.iter().all(|b| (b' '..=b'~').contains(b)) {
                return None;
            }
            write_source(&mut out, padding, s.line, source);
            gutter(&mut out);
            out.extend_from_slice("│ ".as_bytes());
            // Blanks up to the label, then carets; the column just past the
            // end of the line takes a caret for a label that reaches it.
            let stop = s.end.min(source.len() + 1);
            let blank = s.start.min(stop);
            out.resize(out.len() + blank, b' ');
            out.resize(out.len() + stop - blank, if s.primary { b'^' } else { b'-' });
            if !s.message.is_empty() {
                out.push(b' ');
                out.extend_from_slice(s.message.as_bytes());
            }
            out.push(b'\n');
            match shown.get(i + 1).map(|next| next.line - s.line) {
                None | Some(1) => {}
                // One line between two labels is shown rather than elided.
                Some(2) => write_source(&mut out, padding, s.line + 1, source_line(sources, file, s.line + 1, text)?),
                Some(_) => {
                    gutter(&mut out);
                    out.extend_from_slice("·\n".as_bytes());
                }
            }
        }
        if !notes.is_empty() {
            gutter(&mut out);
            out.extend_from_slice("│\n".as_bytes());
        }
    }
    for note in notes {
        for (i, line) in note.lines().enumerate() {
            gutter(&mut out);
            out.extend_from_slice(if i == 0 { b"= " } else { b"  " });
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out.push(b'\n');
    Some(out)
}

/// Line `line` of `file` as codespan shows it: without its line break, and
/// only if it has no tab (codespan widens tabs to the next tab stop).
fn source_line<'t>(sources: &Sources, file: usize, line: usize, text: &'t str) -> Option<&'t str> {
    let line = text.get(sources.line_range(file, line).ok()?)?;
    let line = line.trim_end_matches(['\n', '\r', '\0']);
    (!line.contains('\t')).then_some(line)
}

fn write_source(out: &mut Vec<u8>, padding: usize, line: usize, source: &str) {
    let number = (line + 1).to_string();
    out.resize(out.len() + padding - number.len(), b' ');
    out.extend_from_slice(number.as_bytes());
    out.extend_from_slice(" │ ".as_bytes());
    out.extend_from_slice(source.as_bytes());
    out.push(b'\n');
}

fn digits(n: usize) -> usize {
    n.ilog10() as usize + 1
}
