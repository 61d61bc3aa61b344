//! A purpose-built streaming YAML writer.
//!
//! [`to_writer`] appends to a `Vec<u8>` exactly the bytes that
//! `serde_saphyr::to_string` (serde-saphyr 2.1, default options) produces for
//! the same value, but without its per-node bookkeeping: every node is written
//! once, straight into the output buffer, and a string that needs no quoting
//! costs one table-driven byte scan.
//!
//! # Layout
//!
//! Indentation is two spaces per level.
//!
//! * A mapping used as a mapping value starts on the next line, one level
//!   deeper than its key; an empty one is written `key: {}`.
//! * A sequence used as a mapping value starts on the next line with its
//!   dashes at the key's own column (`key:\n- a`); an empty one is `key: []`.
//! * A collection inside a sequence starts on the dash's line (`- a: 1`,
//!   `- - x`), its later entries one level deeper than the dash.
//! * A key whose rendered text is longer than 1024 characters is written in
//!   explicit form (`? key` on one line, `: value` on the next).
//!
//! # Scalars
//!
//! * Integers and booleans are written as is; `None` and `()` as `null`.
//! * A string is written plain unless a YAML reader could take it for
//!   something else: an empty string, a YAML 1.1 or 1.2 null, boolean, number
//!   or timestamp spelling (`~`, `no`, `0x1f`, `1e3`, `.inf`, `1:20`,
//!   `2001-12-14`, ...), a leading indicator (`- x`, `? x`, `{a}`, `*x`, `&x`,
//!   `!x`, `%x`, `@x`, `` `x ``, `'`, `"`, `#`, `,`, `:`, `|`, `>`, a lone
//!   `-` or `?`), a document marker (`---`, `...`), leading or trailing ASCII
//!   whitespace, `": "`, a colon at the end (ignoring trailing Unicode
//!   whitespace), a `#` right after any whitespace, or a control character
//!   (including NEL, LS, PS, BOM, U+FFFE/U+FFFF). Such strings are double-quoted with
//!   YAML escapes (`\n`, `\t`, `\x01`, `\N`, `\L`, `\P`, `\uFEFF`, ...). The
//!   one-character strings `.`, `#` and `-` are single-quoted instead.
//! * A string containing a line break is written as a literal block scalar
//!   (`|`, `|-` or `|+` by its trailing newlines, with an indentation
//!   indicator when its first line starts with a space), unless it holds a
//!   character a block scalar cannot carry (`\r`, other controls, NEL, LS,
//!   PS, BOM), in which case it is double-quoted.
//! * A single-line string longer than 80 characters that would be plain
//!   (trailing spaces aside) is written as a folded block scalar (`>-`),
//!   wrapped at runs of spaces.
//! * Block scalar bodies are indented one level past the key or dash that
//!   introduces them (two columns at the document root).
//! * Keys are plain only when they are plain-safe as values and also contain
//!   no `:`, `,`, `[`, `]`, `{` or `}`; otherwise they are double-quoted.
//!
//! # Unsupported shapes
//!
//! Floats, byte strings, enum variants carrying data, unit variant names that
//! would need a block scalar, non-scalar map keys and serde-saphyr's own
//! wrapper types (`__yaml_*` names) are rejected with
//! [`Error::Unsupported`] rather than risk output that differs from
//! serde-saphyr; on any error the output buffer is left as it was.

use k8s_openapi::Resource;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::ser::{self, Impossible, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Spaces per indentation level.
const INDENT_STEP: usize = 2;
/// Single-line strings longer than this (in characters) are folded.
const FOLD_WIDTH: usize = 80;
/// Longest key text (in characters) written as an implicit `key:`.
const MAX_SIMPLE_KEY: usize = 1024;
/// A run of spaces used for indentation.
const SPACES: &[u8; 64] = b"                                                                ";

/// An error from [`to_writer`] or [`to_string`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The value uses a serde shape this writer does not reproduce (floats,
    /// byte strings, enum variants with data, non-scalar keys, serde-saphyr
    /// wrapper types). The caller may fall back to `serde_saphyr`.
    Unsupported(&'static str),
    /// A `Serialize` implementation reported an error.
    Custom(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported(what) => write!(f, "YAML writer does not support {what}"),
            Error::Custom(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}

/// Appends the YAML document for `value` to `out`: the same bytes that
/// `serde_saphyr::to_string(value)` returns. On error, `out` is left as it was.
pub fn to_writer<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    let start = out.len();
    let result = value.serialize(Node {
        out: &mut *out,
        pos: Pos::Root,
        depth: 0,
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Returns the YAML document for `value`, identical to
/// `serde_saphyr::to_string(value)`.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut out = Vec::with_capacity(256);
    to_writer(&mut out, value)?;
    // Only `&str` slices and ASCII are ever written, so this cannot fail.
    String::from_utf8(out).map_err(|_| Error::Custom("YAML writer produced invalid UTF-8".into()))
}

/// Appends several YAML documents separated by `---` lines: the same bytes
/// that `serde_saphyr::to_string_multiple(values)` returns. On error, `out`
/// is left as it was.
pub fn to_writer_multiple<T: Serialize>(out: &mut Vec<u8>, values: &[T]) -> Result<(), Error> {
    let start = out.len();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"---\n");
        }
        if let Err(e) = to_writer(out, value) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------

#[inline]
fn push_spaces(out: &mut Vec<u8>, mut n: usize) {
    // Indentation is short: copying sixteen spaces (a fixed size, two
    // stores) and dropping the extra ones is cheaper than a call to
    // `memset` for a few bytes, and every key and item is indented.
    const SHORT: usize = 16;
    if n <= SHORT {
        let len = out.len();
        out.extend_from_slice(&SPACES[..SHORT]);
        out.truncate(len + n);
        return;
    }
    while n > SPACES.len() {
        out.extend_from_slice(SPACES);
        n -= SPACES.len();
    }
    out.extend_from_slice(&SPACES[..n]);
}

#[inline]
fn push_indent(out: &mut Vec<u8>, depth: usize) {
    push_spaces(out, depth * INDENT_STEP);
}

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[inline]
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

#[inline]
fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

fn push_display(out: &mut Vec<u8>, v: impl fmt::Display) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{v}");
}

// ---------------------------------------------------------------------------
// Byte classes
// ---------------------------------------------------------------------------

// One bit per class, so that the classes of a whole string can be OR-ed
// together and most strings decided without looking at positions.

/// Byte needs no attention in a plain scalar.
const C_PLAIN: u8 = 0;
/// ASCII control character: forces double quotes.
const C_CTRL: u8 = 1;
/// Space: matters before `#` and after `:`.
const C_SPACE: u8 = 2;
/// `:`: not in keys, not before a space in values.
const C_COLON: u8 = 4;
/// `#`: starts a comment after whitespace.
const C_HASH: u8 = 8;
/// `,[]{}`: flow indicators, not allowed in plain keys.
const C_FLOW: u8 = 16;
/// Non-ASCII byte: decode the character.
const C_HIGH: u8 = 32;

static CLASS: [u8; 256] = {
    let mut t = [C_PLAIN; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20 || i == 0x7f {
            C_CTRL
        } else if i >= 0x80 {
            C_HIGH
        } else {
            match i as u8 {
                b' ' => C_SPACE,
                b':' => C_COLON,
                b'#' => C_HASH,
                b',' | b'[' | b']' | b'{' | b'}' => C_FLOW,
                _ => C_PLAIN,
            }
        };
        i += 1;
    }
    t
};

/// The union of the classes of the bytes of `b`.
#[inline]
fn classes(b: &[u8]) -> u8 {
    // Eight lookups per step with no branch in between: about two
    // instructions a byte, where a loop that stops at the first special byte
    // needs five or six.
    let (chunks, rest) = b.as_chunks::<8>();
    let union = chunks
        .iter()
        .fold(C_PLAIN, |acc, chunk| chunk.iter().fold(acc, |a, &c| a | CLASS[c as usize]));
    rest.iter().fold(union, |a, &c| a | CLASS[c as usize])
}

/// For ASCII bytes inside double quotes: 0 = copy, 1 = escape.
static DQ_ESCAPE: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t[0x7f] = 1;
    t
};

#[inline]
fn is_ascii_ws(b: u8) -> bool {
    b.is_ascii_whitespace()
}

/// Characters that cannot appear unescaped in a plain or single-quoted scalar.
#[inline]
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{FEFF}' | '\u{2028}' | '\u{2029}' | '\u{FFFE}' | '\u{FFFF}')
}

// ---------------------------------------------------------------------------
// Scalar resolution rules (what a YAML reader would not read back as a string)
// ---------------------------------------------------------------------------

#[inline]
fn strip_sign(s: &str) -> &str {
    s.strip_prefix(['+', '-']).unwrap_or(s)
}

fn radix_prefix(s: &str) -> Option<(u32, &str)> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'0' {
        return None;
    }
    let radix = match b[1] {
        b'b' | b'B' => 2,
        b'o' | b'O' => 8,
        b'x' | b'X' => 16,
        _ => return None,
    };
    Some((radix, &s[2..]))
}

/// A non-empty run of `radix` digits. Underscores are allowed anywhere when
/// `loose`, otherwise only between two digits.
fn digit_run(s: &str, radix: u32, loose: bool) -> bool {
    let b = s.as_bytes();
    let digit = |c: u8| (c as char).is_digit(radix);
    !b.is_empty()
        && (0..b.len())
            .all(|i| digit(b[i]) || (b[i] == b'_' && (loose || (i > 0 && digit(b[i - 1]) && b.get(i + 1).is_some_and(|&n| digit(n))))))
}

/// YAML 1.1 base-60 numbers such as `1:20` or `190:20:30.15`.
fn is_sexagesimal(s: &str) -> bool {
    let u = strip_sign(s);
    let (int, frac) = match u.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (u, None),
    };
    let Some((head, tail)) = int.split_once(':') else {
        return false;
    };
    let Some(&lead) = head.as_bytes().first() else {
        return false;
    };
    if !lead.is_ascii_digit() || (frac.is_none() && lead == b'0') || !head.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
        return false;
    }
    let parts_ok = tail.split(':').all(|p| match p.as_bytes() {
        [d] => d.is_ascii_digit(),
        [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
        _ => false,
    });
    parts_ok && frac.is_none_or(|f| f.bytes().all(|c| c.is_ascii_digit() || c == b'_'))
}

/// Integer or float spellings of YAML 1.2 core, or (unless `y12`) YAML 1.1.
fn is_numeric(s: &str, y12: bool) -> bool {
    if !matches!(s.as_bytes().first(), Some(b'0'..=b'9' | b'+' | b'-' | b'.' | b'_')) {
        return false;
    }
    let u = strip_sign(s);
    if u.eq_ignore_ascii_case(".inf") || u.eq_ignore_ascii_case(".nan") {
        return true;
    }
    if !y12 {
        if is_sexagesimal(s) {
            return true;
        }
        if radix_prefix(u).is_some_and(|(radix, digits)| digit_run(digits, radix, true)) {
            return true;
        }
    }
    let squeezed;
    let t = if !y12 && s.contains('_') {
        squeezed = s.replace('_', "");
        squeezed.as_str()
    } else {
        s
    };
    let u = strip_sign(t);
    if let Some((radix, digits)) = radix_prefix(u) {
        let digits = if !y12 && (t.starts_with("0b") || t.starts_with("0o")) {
            strip_sign(digits)
        } else {
            digits
        };
        return digit_run(digits, radix, false);
    }
    let mantissa = match u.split_once(['e', 'E']) {
        Some((m, exp)) => {
            if !digit_run(strip_sign(exp), 10, false) {
                return false;
            }
            m
        }
        None => u,
    };
    match mantissa.split_once('.') {
        Some((whole, frac)) => {
            if !whole.is_empty() && !digit_run(whole, 10, false) {
                return false;
            }
            if !y12 {
                frac.bytes().all(|c| c.is_ascii_digit() || c == b'.')
            } else if frac.is_empty() {
                !whole.is_empty()
            } else {
                digit_run(frac, 10, false)
            }
        }
        None => digit_run(mantissa, 10, false),
    }
}

/// YAML 1.1 timestamp syntax (`2001-12-14`, `2001-12-14t21:59:43.10-05:00`, ...).
fn is_timestamp(s: &str) -> bool {
    fn digits(s: &mut &str, min: usize, max: usize) -> bool {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        let ok = (min..=max).contains(&n);
        if ok {
            *s = &s[n..];
        }
        ok
    }
    fn eat(s: &mut &str, c: char) -> bool {
        match s.strip_prefix(c) {
            Some(rest) => {
                *s = rest;
                true
            }
            None => false,
        }
    }
    let mut s = s;
    if !(digits(&mut s, 4, 4) && eat(&mut s, '-') && digits(&mut s, 1, 2) && eat(&mut s, '-') && digits(&mut s, 1, 2)) {
        return false;
    }
    if s.is_empty() {
        return true;
    }
    if let Some(rest) = s.strip_prefix(['T', 't']) {
        s = rest;
    } else {
        let rest = s.trim_start_matches([' ', '\t']);
        if rest.len() == s.len() {
            return false;
        }
        s = rest;
    }
    if !(digits(&mut s, 1, 2) && eat(&mut s, ':') && digits(&mut s, 1, 2) && eat(&mut s, ':') && digits(&mut s, 1, 2)) {
        return false;
    }
    if eat(&mut s, '.') || eat(&mut s, ',') {
        digits(&mut s, 0, usize::MAX);
    }
    s = s.trim_start_matches([' ', '\t']);
    if s.is_empty() || s == "Z" {
        return true;
    }
    if !((eat(&mut s, '+') || eat(&mut s, '-')) && digits(&mut s, 1, 2)) {
        return false;
    }
    if eat(&mut s, ':') && !digits(&mut s, 2, 2) {
        return false;
    }
    s.is_empty()
}

/// Whether a plain `s` (non-empty) would be read as something other than a
/// string: YAML 1.2 core rules, plus YAML 1.1 ones unless `y12`.
fn is_ambiguous(s: &str, y12: bool) -> bool {
    let b = s.as_bytes();
    match b[0] {
        b'0'..=b'9' | b'+' | b'-' | b'.' | b'_' => {
            // Numbers, timestamps and infinities use only these bytes.
            b.iter().all(|&c| c.is_ascii_alphanumeric() || b"+-._:, \t".contains(&c))
                && (is_numeric(s, y12) || (!y12 && is_timestamp(s)) || s.eq_ignore_ascii_case("+inf") || s.eq_ignore_ascii_case("-inf"))
        }
        b'~' => b.len() == 1,
        b'<' => !y12 && s == "<<",
        b'=' => !y12 && b.len() == 1,
        first if b.len() <= 5 => {
            let word = |w: &str| s.eq_ignore_ascii_case(w);
            match first.to_ascii_lowercase() {
                b'n' => word("null") || word("nan") || (!y12 && (word("no") || word("n"))),
                b't' => word("true"),
                b'f' => word("false"),
                b'i' => word("inf"),
                b'y' => !y12 && (word("yes") || word("y")),
                b'o' => !y12 && (word("on") || word("off")),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether `s` can be written as a plain scalar: in value position, or in key
/// position (`key`), where `:` and flow indicators are also excluded.
#[inline]
fn is_plain(s: &str, key: bool) -> bool {
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    match first {
        b',' | b':' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' => {
            return false;
        }
        b'-' | b'?' if b.len() == 1 || is_ascii_ws(b[1]) => return false,
        _ if is_ascii_ws(first) || is_ascii_ws(last) => return false,
        _ => {}
    }
    let found = classes(b);
    if found & C_CTRL != 0 || (key && found & (C_COLON | C_FLOW) != 0) {
        return false;
    }
    // `: ` and ` #` need a space next to the indicator, and any non-ASCII
    // character needs decoding; every other string is decided by its classes.
    if found & C_HIGH != 0 {
        if !positions_are_plain(s, key) {
            return false;
        }
    } else if found & C_SPACE != 0 && found & (C_COLON | C_HASH) != 0 && has_indicator_pair(b) {
        return false;
    }
    if found & C_COLON != 0 && (last == b':' || (found & C_HIGH != 0 && s.trim_end().ends_with(':'))) {
        return false;
    }
    if b.len() >= 3 && (b.starts_with(b"---") || b.starts_with(b"...")) && (b.len() == 3 || is_ascii_ws(b[3])) {
        return false;
    }
    // Only these can spell a number, null, boolean, timestamp or merge key.
    let candidate = b.len() <= 5 || matches!(first, b'0'..=b'9' | b'+' | b'-' | b'.' | b'_' | b'~' | b'<' | b'=');
    !(candidate && (is_ambiguous(s, false) || (key && is_ambiguous(s, true))))
}

/// Whether ASCII text holds `: ` or ` #`: [`positions_are_plain`] for
/// text without controls or other characters, as one pass with no branch
/// (which the compiler can turn into vector code: intents hold spaces
/// and colons, and every object carries its intents' text).
fn has_indicator_pair(b: &[u8]) -> bool {
    let pairs = b.iter().zip(b.iter().skip(1));
    pairs.fold(false, |found, (&x, &y)| {
        found | ((x == b':') & (y == b' ')) | ((x == b' ') & (y == b'#'))
    })
}

/// The checks of [`is_plain`] that depend on neighbours: no `: `, no `#`
/// after whitespace (Unicode whitespace included), no character that needs
/// escaping.
fn positions_are_plain(s: &str, key: bool) -> bool {
    let b = s.as_bytes();
    let mut prev_ws = false;
    let mut i = 0;
    loop {
        // Most bytes need no attention: skip them in a tight loop.
        let run_start = i;
        while i < b.len() && CLASS[b[i] as usize] == C_PLAIN {
            i += 1;
        }
        if i == b.len() {
            return true;
        }
        if i > run_start {
            prev_ws = false;
        }
        match CLASS[b[i] as usize] {
            C_SPACE => prev_ws = true,
            C_COLON => {
                if key || b.get(i + 1) == Some(&b' ') {
                    return false;
                }
                prev_ws = false;
            }
            C_HASH => {
                if prev_ws {
                    return false;
                }
            }
            C_FLOW => {
                if key {
                    return false;
                }
                prev_ws = false;
            }
            C_CTRL => return false,
            _ => {
                let Some(c) = s[i..].chars().next() else {
                    return false;
                };
                if needs_escape(c) {
                    return false;
                }
                prev_ws = c.is_whitespace();
                i += c.len_utf8();
                continue;
            }
        }
        i += 1;
    }
}

/// Whether every character of `s` can be carried by a block scalar.
fn is_block_safe(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            if !(c == b'\n' || c == b'\t' || (0x20..0x7f).contains(&c)) {
                return false;
            }
        } else {
            // Rejected: U+0080..U+009F, U+2028, U+2029, U+FEFF, U+FFFE, U+FFFF.
            let next = |k: usize| b.get(i + k).copied().unwrap_or(0);
            match c {
                0xC2 if next(1) <= 0x9F => return false,
                0xE2 if next(1) == 0x80 && matches!(next(2), 0xA8 | 0xA9) => return false,
                0xEF if (next(1) == 0xBB && next(2) == 0xBF) || (next(1) == 0xBF && matches!(next(2), 0xBE | 0xBF)) => {
                    return false;
                }
                _ => {}
            }
        }
        i += 1;
    }
    true
}

// ---------------------------------------------------------------------------
// Scalar writers
// ---------------------------------------------------------------------------

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_double_quoted(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (esc, width): (&[u8], usize) = if c < 0x80 {
            if DQ_ESCAPE[c as usize] == 0 {
                i += 1;
                continue;
            }
            let named: &[u8] = match c {
                b'\\' => b"\\\\",
                b'"' => b"\\\"",
                0 => b"\\0",
                7 => b"\\a",
                8 => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                0x0B => b"\\v",
                0x0C => b"\\f",
                b'\r' => b"\\r",
                0x1B => b"\\e",
                _ => b"",
            };
            (named, 1)
        } else {
            let next = |k: usize| b.get(i + k).copied().unwrap_or(0);
            match (c, next(1), next(2)) {
                (0xC2, 0x85, _) => (b"\\N".as_slice(), 2),
                (0xC2, 0x80..=0x9F, _) => (b"".as_slice(), 2),
                (0xE2, 0x80, 0xA8) => (b"\\L".as_slice(), 3),
                (0xE2, 0x80, 0xA9) => (b"\\P".as_slice(), 3),
                (0xEF, 0xBB, 0xBF) => (b"\\uFEFF".as_slice(), 3),
                (0xEF, 0xBF, 0xBE) => (b"\\uFFFE".as_slice(), 3),
                (0xEF, 0xBF, 0xBF) => (b"\\uFFFF".as_slice(), 3),
                _ => {
                    i += 1;
                    continue;
                }
            }
        };
        out.extend_from_slice(&b[start..i]);
        if esc.is_empty() {
            // `\xHH` for the remaining C0 and C1 controls and DEL.
            let code = if width == 1 { c } else { b[i + 1] };
            out.extend_from_slice(&[b'\\', b'x', HEX[(code >> 4) as usize], HEX[(code & 15) as usize]]);
        } else {
            out.extend_from_slice(esc);
        }
        i += width;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Literal block scalar (`|`) for a string with line breaks; `column` is the
/// body's indentation.
fn push_literal(out: &mut Vec<u8>, s: &str, column: usize) {
    let content = s.trim_end_matches('\n');
    let trailing = s.len() - content.len();
    out.push(b'|');
    let first_line = content.split('\n').find(|l| !l.is_empty()).unwrap_or("");
    if first_line.starts_with(' ') {
        out.push(b'0' + INDENT_STEP as u8);
    }
    match trailing {
        0 => out.push(b'-'),
        1 if !content.is_empty() => {}
        _ => out.push(b'+'),
    }
    out.push(b'\n');
    if content.is_empty() {
        out.resize(out.len() + trailing, b'\n');
        return;
    }
    for line in content.split('\n') {
        if !line.is_empty() {
            push_spaces(out, column);
            out.extend_from_slice(line.as_bytes());
        }
        out.push(b'\n');
    }
    if trailing >= 2 {
        out.resize(out.len() + trailing - 1, b'\n');
    }
}

/// Folded block scalar (`>-`) for a long single-line string, wrapped at
/// spaces; `column` is the body's indentation.
///
/// Once more than [`FOLD_WIDTH`] characters have been counted, the line is
/// broken at the last completed run of spaces, or never again if there is
/// none; a run of `n` spaces leaves `n - 1` of them at the end of the line.
/// Counting restarts at the character that triggered the break. (`s` is
/// plain-safe apart from trailing spaces, so it holds no tab or line break.)
fn push_folded(out: &mut Vec<u8>, s: &str, column: usize) {
    out.extend_from_slice(b">-\n");
    let b = s.as_bytes();
    let mut start = 0;
    let mut count = 0;
    let mut open_run: Option<usize> = None;
    let mut break_at: Option<(usize, usize)> = None;
    for (i, c) in s.char_indices() {
        if c == ' ' {
            open_run.get_or_insert(i);
        } else if let Some(run) = open_run.take() {
            break_at = Some((run, i));
        }
        count += 1;
        if count > FOLD_WIDTH {
            let Some((run, end)) = break_at.take() else {
                break;
            };
            push_spaces(out, column);
            out.extend_from_slice(&b[start..run]);
            push_spaces(out, end - run - 1);
            out.push(b'\n');
            start = end;
            count = 0;
        }
    }
    push_spaces(out, column);
    out.extend_from_slice(&b[start..]);
    out.push(b'\n');
}

/// Whether [`Node::str`] writes `s` as it is, on one line (after a space
/// where a value goes).
pub(crate) fn is_plain_line(s: &str) -> bool {
    is_plain(s, false) && !is_too_wide(s)
}

/// Whether `s` is over [`FOLD_WIDTH`] characters, which the writer folds when it can.
fn is_too_wide(s: &str) -> bool {
    s.len() > FOLD_WIDTH && s.chars().count() > FOLD_WIDTH
}

/// Writes string `s` as a node at `pos`/`depth`, followed by a newline.
#[inline]
fn push_str_node(out: &mut Vec<u8>, s: &str, pos: Pos, depth: usize) {
    if pos.spaced() {
        out.push(b' ');
    }
    let column = depth * INDENT_STEP + INDENT_STEP;
    if is_plain(s, false) {
        if is_too_wide(s) {
            push_folded(out, s, column);
        } else {
            out.extend_from_slice(s.as_bytes());
            out.push(b'\n');
        }
        return;
    }
    if s.contains('\n') {
        if is_block_safe(s) {
            push_literal(out, s, column);
            return;
        }
    } else if s.len() > FOLD_WIDTH {
        // Trailing spaces survive in a folded scalar, so they do not block folding.
        let probe = s.trim_end_matches(' ');
        if probe.len() != s.len() && !probe.is_empty() && is_plain(probe, false) && is_too_wide(s) {
            push_folded(out, s, column);
            return;
        }
    } else if matches!(s, "." | "#" | "-") {
        out.extend_from_slice(&[b'\'', s.as_bytes()[0], b'\'', b'\n']);
        return;
    }
    push_double_quoted(out, s);
    out.push(b'\n');
}

// ---------------------------------------------------------------------------
// The serializer
// ---------------------------------------------------------------------------

/// Where a node is being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// The document root, at the start of a line.
    Root,
    /// A mapping value, right after `key:`; `depth` is the key's depth.
    Value,
    /// A value after an explicit key, right after `:`; `depth` is the key's depth.
    ExplicitValue,
    /// A sequence item, right after `- `; `depth` is the dash's depth.
    Item,
}

impl Pos {
    /// Whether a scalar in this position is preceded by a space.
    #[inline]
    fn spaced(self) -> bool {
        matches!(self, Pos::Value | Pos::ExplicitValue)
    }
}

/// Serializer for one node.
pub(crate) struct Node<'a> {
    out: &'a mut Vec<u8>,
    pos: Pos,
    depth: usize,
}

impl<'a> Node<'a> {
    /// The value of a key at `depth` whose `key:` ends `out`.
    pub(crate) fn after_key(out: &'a mut Vec<u8>, depth: usize) -> Self {
        Node {
            out,
            pos: Pos::Value,
            depth,
        }
    }

    /// Writes `fragment`, which must have been written for a node at this
    /// very position and depth.
    #[inline]
    pub(crate) fn fragment(self, fragment: &Fragment) {
        debug_assert!(
            self.pos == fragment.pos && self.depth == fragment.depth,
            "a fragment written elsewhere"
        );
        self.out.extend_from_slice(&fragment.text);
    }

    #[inline]
    fn scalar(self, text: &[u8]) -> Result<(), Error> {
        if self.pos.spaced() {
            self.out.push(b' ');
        }
        self.out.extend_from_slice(text);
        self.out.push(b'\n');
        Ok(())
    }

    #[inline]
    pub(crate) fn int(self, v: i64) {
        if self.pos.spaced() {
            self.out.push(b' ');
        }
        push_i64(self.out, v);
        self.out.push(b'\n');
    }

    #[inline]
    fn uint(self, v: u64) -> Result<(), Error> {
        if self.pos.spaced() {
            self.out.push(b' ');
        }
        push_u64(self.out, v);
        self.out.push(b'\n');
        Ok(())
    }

    #[inline]
    pub(crate) fn str(self, s: &str) {
        push_str_node(self.out, s, self.pos, self.depth);
    }

    /// A constant known to be written plain on one line (the same bytes as
    /// [`Node::str`], without checking it each time).
    #[inline]
    pub(crate) fn literal(self, s: &'static str) {
        debug_assert!(is_plain(s, false) && s.len() <= FOLD_WIDTH, "{s:?}");
        let _ = self.scalar(s.as_bytes());
    }

    fn display(self, v: impl fmt::Display) -> Result<(), Error> {
        if self.pos.spaced() {
            self.out.push(b' ');
        }
        push_display(self.out, v);
        self.out.push(b'\n');
        Ok(())
    }

    #[inline]
    pub(crate) fn open_seq(self) -> Seq<'a> {
        // Items of a sequence nested in a sequence sit one level past the outer dash;
        // a sequence under a key keeps its dashes at the key's column.
        let depth = match self.pos {
            Pos::Item => self.depth + 1,
            _ => self.depth,
        };
        Seq {
            out: self.out,
            pos: self.pos,
            depth,
            first: true,
        }
    }

    #[inline]
    pub(crate) fn open_map(self) -> Map<'a> {
        let depth = match self.pos {
            Pos::Root => 0,
            _ => self.depth + 1,
        };
        Map {
            out: self.out,
            pos: self.pos,
            depth,
            first: true,
            explicit: false,
        }
    }
}

/// A node written once, to be copied wherever the same node goes at the
/// same position and depth: what the writer writes for a node depends on
/// nothing else (not on what precedes it), so the copy is the very text.
pub(crate) struct Fragment {
    pos: Pos,
    depth: usize,
    /// Not shrunk to its length: that would copy it again, and fragments
    /// live only as long as their chunk.
    text: Vec<u8>,
}

impl Fragment {
    /// The node that `write` writes as the value of a key at `depth`.
    pub(crate) fn value(depth: usize, write: impl FnOnce(Node<'_>)) -> Self {
        Self::at(Pos::Value, depth, write)
    }

    /// The node that `write` writes as an item of a sequence whose dashes are at `depth`.
    pub(crate) fn item(depth: usize, write: impl FnOnce(Node<'_>)) -> Self {
        Self::at(Pos::Item, depth, write)
    }

    fn at(pos: Pos, depth: usize, write: impl FnOnce(Node<'_>)) -> Self {
        // Most fragments (a peer list, a selector) are a few hundred bytes:
        // room for them at once, not grown from nothing.
        let mut text = Vec::with_capacity(256);
        write(Node {
            out: &mut text,
            pos,
            depth,
        });
        Fragment { pos, depth, text }
    }
}

/// A mapping key written once, to be written again as a key of any block
/// mapping ([`Map::key`]): its text depends on the key alone.
pub(crate) struct KeyText {
    text: Box<[u8]>,
    explicit: bool,
}

impl KeyText {
    pub(crate) fn new(key: &str) -> Self {
        let mut text = Vec::new();
        // A later key of a mapping at the margin: nothing precedes the key itself.
        let mut map = Map {
            out: &mut text,
            pos: Pos::Root,
            depth: 0,
            first: false,
            explicit: false,
        };
        map.str_key(key);
        let explicit = map.explicit;
        KeyText {
            text: text.into(),
            explicit,
        }
    }
}

/// Rejects serde-saphyr's internal wrapper names, whose output this writer
/// does not reproduce.
#[inline]
fn check_name(name: &str) -> Result<(), Error> {
    if name.starts_with("__yaml_") {
        Err(Error::Unsupported("serde-saphyr wrapper types"))
    } else {
        Ok(())
    }
}

impl<'a> ser::Serializer for Node<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.scalar(if v { b"true" } else { b"false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.int(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.uint(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.uint(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.uint(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.uint(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(Error::Unsupported("floating-point numbers"))
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(Error::Unsupported("floating-point numbers"))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        push_str_node(self.out, v, self.pos, self.depth);
        Ok(())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(Error::Unsupported("byte strings"))
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.scalar(b"null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.scalar(b"null")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.scalar(b"null")
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        // serde-saphyr indents a block scalar differently here; variant names
        // never need one in practice.
        if variant.len() > FOLD_WIDTH || variant.contains('\n') {
            return Err(Error::Unsupported("enum variant names needing block scalars"));
        }
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<(), Error> {
        check_name(name)?;
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(Error::Unsupported("enum variants with data"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, Error> {
        Ok(self.open_seq())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Seq<'a>, Error> {
        Ok(self.open_seq())
    }
    fn serialize_tuple_struct(self, name: &'static str, _len: usize) -> Result<Seq<'a>, Error> {
        check_name(name)?;
        Ok(self.open_seq())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error::Unsupported("enum variants with data"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Map<'a>, Error> {
        Ok(self.open_map())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Map<'a>, Error> {
        Ok(self.open_map())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error::Unsupported("enum variants with data"))
    }
}

/// Block sequence in progress.
pub(crate) struct Seq<'a> {
    out: &'a mut Vec<u8>,
    pos: Pos,
    /// Depth of the dashes.
    depth: usize,
    first: bool,
}

impl Seq<'_> {
    /// Writes what precedes an item (a line break, indentation, `- `) and
    /// returns the node for the item itself.
    #[inline]
    pub(crate) fn item(&mut self) -> Node<'_> {
        if !self.first {
            push_indent(self.out, self.depth);
        } else {
            self.first = false;
            match self.pos {
                // The first item shares the line of the enclosing dash.
                Pos::Item => {}
                Pos::Root => push_indent(self.out, self.depth),
                Pos::Value | Pos::ExplicitValue => {
                    self.out.push(b'\n');
                    push_indent(self.out, self.depth);
                }
            }
        }
        self.out.extend_from_slice(b"- ");
        Node {
            out: &mut *self.out,
            pos: Pos::Item,
            depth: self.depth,
        }
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(self.item())
    }

    #[inline]
    pub(crate) fn finish(self) {
        if self.first {
            if self.pos.spaced() {
                self.out.push(b' ');
            }
            self.out.extend_from_slice(b"[]\n");
        }
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

/// Block mapping in progress.
pub(crate) struct Map<'a> {
    out: &'a mut Vec<u8>,
    pos: Pos,
    /// Depth of the keys.
    depth: usize,
    first: bool,
    /// The last key was written in explicit `? key` form.
    explicit: bool,
}

impl Map<'_> {
    /// Writes what precedes a key: a line break and indentation, or nothing
    /// for a first key that shares the line of a dash or the document start.
    #[inline]
    fn key_prefix(&mut self) {
        if !self.first {
            push_indent(self.out, self.depth);
            return;
        }
        self.first = false;
        match self.pos {
            Pos::Root | Pos::Item => {}
            Pos::Value => {
                self.out.push(b'\n');
                push_indent(self.out, self.depth);
            }
            Pos::ExplicitValue => self.out.push(b' '),
        }
    }

    /// Ends a key whose text starts at `start`: `:` or, for an over-long key,
    /// the explicit `? key` form.
    #[inline]
    fn key_suffix(&mut self, start: usize) {
        let text = &self.out[start..];
        if text.len() > MAX_SIMPLE_KEY && text.iter().filter(|&&b| b & 0xC0 != 0x80).count() > MAX_SIMPLE_KEY {
            self.out.splice(start..start, *b"? ");
            self.out.push(b'\n');
            self.explicit = true;
        } else {
            self.out.push(b':');
        }
    }

    #[inline]
    pub(crate) fn str_key(&mut self, key: &str) {
        self.key_prefix();
        let start = self.out.len();
        if is_plain(key, true) {
            self.out.extend_from_slice(key.as_bytes());
        } else {
            push_double_quoted(self.out, key);
        }
        self.key_suffix(start);
    }

    /// Writes a key written before into a [`KeyText`].
    #[inline]
    pub(crate) fn key(&mut self, key: &KeyText) {
        self.key_prefix();
        self.out.extend_from_slice(&key.text);
        self.explicit = key.explicit;
    }

    /// Writes a key known to be plain and short (a struct field name of the
    /// Kubernetes types) and returns the node for its value.
    #[inline]
    pub(crate) fn field(&mut self, key: &'static str) -> Node<'_> {
        debug_assert!(is_plain(key, true) && key.len() <= MAX_SIMPLE_KEY, "{key:?}");
        self.key_prefix();
        self.out.extend_from_slice(key.as_bytes());
        self.out.push(b':');
        Node {
            out: &mut *self.out,
            pos: Pos::Value,
            depth: self.depth,
        }
    }

    /// Returns the node for the value of the key just written.
    #[inline]
    pub(crate) fn value_node(&mut self) -> Node<'_> {
        let pos = if self.explicit {
            self.explicit = false;
            push_indent(self.out, self.depth);
            self.out.push(b':');
            Pos::ExplicitValue
        } else {
            Pos::Value
        };
        Node {
            out: &mut *self.out,
            pos,
            depth: self.depth,
        }
    }

    #[inline]
    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(self.value_node())
    }

    #[inline]
    pub(crate) fn finish(self) {
        if self.first {
            if self.pos.spaced() {
                self.out.push(b' ');
            }
            self.out.extend_from_slice(b"{}\n");
        }
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key_prefix();
        let start = self.out.len();
        key.serialize(Key { out: &mut *self.out })?;
        self.key_suffix(start);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.str_key(key);
        self.value(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

/// Serializer for a mapping key: a scalar written inline, without newline.
struct Key<'a> {
    out: &'a mut Vec<u8>,
}

fn non_scalar_key<T>() -> Result<T, Error> {
    Err(Error::Unsupported("non-scalar map keys"))
}

impl ser::Serializer for Key<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.extend_from_slice(if v { b"true".as_slice() } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        push_i64(self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        push_display(self.out, v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        push_u64(self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        push_display(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(Error::Unsupported("floating-point numbers"))
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(Error::Unsupported("floating-point numbers"))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        if is_plain(v, true) {
            self.out.extend_from_slice(v.as_bytes());
        } else {
            push_double_quoted(self.out, v);
        }
        Ok(())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        non_scalar_key()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<(), Error> {
        check_name(name)?;
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        non_scalar_key()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        non_scalar_key()
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        non_scalar_key()
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        non_scalar_key()
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        non_scalar_key()
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        non_scalar_key()
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        non_scalar_key()
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        non_scalar_key()
    }
}

// ---------------------------------------------------------------------------
// NetworkPolicy, field by field
// ---------------------------------------------------------------------------

/// Appends the YAML document for `policy`: the same bytes as
/// [`to_writer`] (hence serde-saphyr), without going through serde. The
/// compiler writes tens of thousands of policies; here field names are
/// written as the constants they are and no `Option` or map passes through
/// serde's generic calls.
///
/// Every struct is destructured without `..`, so a field that a new
/// k8s-openapi adds cannot be skipped silently: it stops the build. Metadata
/// fields the compiler never sets are written through the serde path.
pub fn network_policy(out: &mut Vec<u8>, policy: &NetworkPolicy) {
    let NetworkPolicy { metadata, spec } = policy;
    let mut m = Node {
        out,
        pos: Pos::Root,
        depth: 0,
    }
    .open_map();
    m.field("apiVersion").literal(<NetworkPolicy as Resource>::API_VERSION);
    m.field("kind").literal(<NetworkPolicy as Resource>::KIND);
    object_meta(m.field("metadata"), metadata);
    if let Some(spec) = spec {
        policy_spec(m.field("spec"), spec);
    }
    m.finish();
}

fn object_meta(node: Node<'_>, meta: &ObjectMeta) {
    let ObjectMeta {
        annotations,
        creation_timestamp,
        deletion_grace_period_seconds,
        deletion_timestamp,
        finalizers,
        generate_name,
        generation,
        labels,
        managed_fields,
        name,
        namespace,
        owner_references,
        resource_version,
        self_link,
        uid,
    } = meta;
    let unusual = creation_timestamp.is_some()
        || deletion_grace_period_seconds.is_some()
        || deletion_timestamp.is_some()
        || finalizers.is_some()
        || generate_name.is_some()
        || generation.is_some()
        || managed_fields.is_some()
        || owner_references.is_some()
        || resource_version.is_some()
        || self_link.is_some()
        || uid.is_some();
    if unusual {
        // Only plain strings, integers, maps and lists: the serde path cannot fail on them.
        let _ = meta.serialize(node);
        return;
    }
    let mut m = node.open_map();
    if let Some(annotations) = annotations {
        string_map(m.field("annotations"), annotations);
    }
    if let Some(labels) = labels {
        string_map(m.field("labels"), labels);
    }
    if let Some(name) = name {
        m.field("name").str(name);
    }
    if let Some(namespace) = namespace {
        m.field("namespace").str(namespace);
    }
    m.finish();
}

pub(crate) fn string_map(node: Node<'_>, map: &BTreeMap<String, String>) {
    let mut m = node.open_map();
    for (key, value) in map {
        m.str_key(key);
        m.value_node().str(value);
    }
    m.finish();
}

fn strings(node: Node<'_>, items: &[String]) {
    let mut q = node.open_seq();
    for item in items {
        q.item().str(item);
    }
    q.finish();
}

fn policy_spec(node: Node<'_>, spec: &NetworkPolicySpec) {
    let NetworkPolicySpec {
        egress,
        ingress,
        pod_selector,
        policy_types,
    } = spec;
    let mut m = node.open_map();
    if let Some(rules) = egress {
        let mut q = m.field("egress").open_seq();
        for NetworkPolicyEgressRule { ports, to } in rules {
            let mut r = q.item().open_map();
            if let Some(ports) = ports {
                policy_ports(r.field("ports"), ports);
            }
            if let Some(to) = to {
                peers(r.field("to"), to);
            }
            r.finish();
        }
        q.finish();
    }
    if let Some(rules) = ingress {
        let mut q = m.field("ingress").open_seq();
        for NetworkPolicyIngressRule { from, ports } in rules {
            let mut r = q.item().open_map();
            if let Some(from) = from {
                peers(r.field("from"), from);
            }
            if let Some(ports) = ports {
                policy_ports(r.field("ports"), ports);
            }
            r.finish();
        }
        q.finish();
    }
    if let Some(selector) = pod_selector {
        label_selector(m.field("podSelector"), selector);
    }
    if let Some(types) = policy_types {
        strings(m.field("policyTypes"), types);
    }
    m.finish();
}

pub(crate) fn peers(node: Node<'_>, peers: &[NetworkPolicyPeer]) {
    let mut q = node.open_seq();
    for NetworkPolicyPeer {
        ip_block,
        namespace_selector,
        pod_selector,
    } in peers
    {
        let mut m = q.item().open_map();
        if let Some(IPBlock { cidr, except }) = ip_block {
            let mut b = m.field("ipBlock").open_map();
            b.field("cidr").str(cidr);
            if let Some(except) = except {
                strings(b.field("except"), except);
            }
            b.finish();
        }
        if let Some(selector) = namespace_selector {
            label_selector(m.field("namespaceSelector"), selector);
        }
        if let Some(selector) = pod_selector {
            label_selector(m.field("podSelector"), selector);
        }
        m.finish();
    }
    q.finish();
}

pub(crate) fn label_selector(node: Node<'_>, selector: &LabelSelector) {
    let LabelSelector {
        match_expressions,
        match_labels,
    } = selector;
    let mut m = node.open_map();
    if let Some(expressions) = match_expressions {
        let mut q = m.field("matchExpressions").open_seq();
        for LabelSelectorRequirement { key, operator, values } in expressions {
            let mut e = q.item().open_map();
            e.field("key").str(key);
            e.field("operator").str(operator);
            if let Some(values) = values {
                strings(e.field("values"), values);
            }
            e.finish();
        }
        q.finish();
    }
    if let Some(labels) = match_labels {
        string_map(m.field("matchLabels"), labels);
    }
    m.finish();
}

fn policy_ports(node: Node<'_>, ports: &[NetworkPolicyPort]) {
    let mut q = node.open_seq();
    for port in ports {
        policy_port(q.item(), port);
    }
    q.finish();
}

pub(crate) fn policy_port(node: Node<'_>, port: &NetworkPolicyPort) {
    let NetworkPolicyPort { end_port, port, protocol } = port;
    let mut m = node.open_map();
    if let Some(end) = end_port {
        m.field("endPort").int((*end).into());
    }
    match port {
        Some(IntOrString::Int(n)) => m.field("port").int((*n).into()),
        Some(IntOrString::String(name)) => m.field("port").str(name),
        None => {}
    }
    if let Some(protocol) = protocol {
        m.field("protocol").str(protocol);
    }
    m.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::List;
    use k8s_openapi::api::networking::v1::{
        IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector, LabelSelectorRequirement, ListMeta, ObjectMeta, OwnerReference, Time,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    // ----- helpers -------------------------------------------------------

    /// Asserts byte identity with serde-saphyr and returns the YAML.
    #[track_caller]
    fn same<T: Serialize>(value: &T) -> String {
        let theirs = serde_saphyr::to_string(value).expect("serde-saphyr failed");
        let ours = match to_string(value) {
            Ok(s) => s,
            Err(e) => panic!("our writer failed: {e}\nserde-saphyr wrote:\n{theirs}"),
        };
        if ours != theirs {
            panic!("output differs\n--- serde-saphyr:\n{theirs:?}\n--- ours:\n{ours:?}\n");
        }
        ours
    }

    /// Asserts byte identity and that the YAML parses back to `value`.
    #[track_caller]
    fn same_and_round_trips<T>(value: &T)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
    {
        let yaml = same(value);
        let back: T = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("re-parse failed: {e}\n{yaml}"));
        assert_eq!(&back, value, "round trip changed the value\n{yaml}");
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        }
    }

    fn port(p: Option<IntOrString>, proto: Option<&str>, end: Option<i32>) -> NetworkPolicyPort {
        NetworkPolicyPort {
            port: p,
            protocol: proto.map(str::to_string),
            end_port: end,
        }
    }

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some("shop".to_string()),
            labels: Some(labels(&[
                ("app.kubernetes.io/managed-by", "netpolc"),
                ("app.kubernetes.io/part-of", "shop"),
            ])),
            annotations: Some(labels(&[
                ("netpolc.io/source", "shop.np:7, shop.np:12"),
                ("netpolc.io/intent", "web-app -> backend/user-api:(8080, 9090/udp)"),
            ])),
            ..ObjectMeta::default()
        }
    }

    /// A policy exercising every field shape the compiler emits.
    fn full_policy() -> NetworkPolicy {
        NetworkPolicy {
            metadata: ObjectMeta {
                finalizers: Some(vec![]),
                generation: Some(3),
                deletion_grace_period_seconds: Some(-30),
                creation_timestamp: Some(Time("2024-05-06T07:08:09Z".parse().expect("timestamp"))),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Namespace".into(),
                    name: "shop".into(),
                    uid: "0000-1111".into(),
                    controller: Some(true),
                    block_owner_deletion: Some(false),
                }]),
                ..meta("web-app-to-backend.user-api")
            },
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(selector(&[("app", "backend"), ("tier", "user-api")])),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![
                    NetworkPolicyIngressRule {
                        from: Some(vec![
                            NetworkPolicyPeer {
                                pod_selector: Some(selector(&[("app", "web-app")])),
                                namespace_selector: Some(LabelSelector {
                                    match_labels: None,
                                    match_expressions: Some(vec![
                                        LabelSelectorRequirement {
                                            key: "kubernetes.io/metadata.name".into(),
                                            operator: "In".into(),
                                            values: Some(vec!["shop".into(), "no".into()]),
                                        },
                                        LabelSelectorRequirement {
                                            key: "env".into(),
                                            operator: "Exists".into(),
                                            values: None,
                                        },
                                        LabelSelectorRequirement {
                                            key: "x".into(),
                                            operator: "NotIn".into(),
                                            values: Some(vec![]),
                                        },
                                    ]),
                                }),
                                ip_block: None,
                            },
                            NetworkPolicyPeer {
                                ip_block: Some(IPBlock {
                                    cidr: "10.0.0.0/8".into(),
                                    except: Some(vec!["10.1.0.0/16".into(), "10.2.3.0/24".into()]),
                                }),
                                ..NetworkPolicyPeer::default()
                            },
                            NetworkPolicyPeer {
                                ip_block: Some(IPBlock {
                                    cidr: "::/0".into(),
                                    except: Some(vec!["fc00::/7".into()]),
                                }),
                                ..NetworkPolicyPeer::default()
                            },
                            NetworkPolicyPeer {
                                pod_selector: Some(LabelSelector::default()),
                                namespace_selector: Some(LabelSelector::default()),
                                ip_block: None,
                            },
                        ]),
                        ports: Some(vec![
                            port(Some(IntOrString::Int(8080)), Some("TCP"), None),
                            port(Some(IntOrString::Int(9090)), Some("UDP"), Some(9099)),
                            port(Some(IntOrString::String("http".into())), None, None),
                            port(Some(IntOrString::String("8443".into())), Some("SCTP"), None),
                            port(None, Some("TCP"), None),
                            port(None, None, None),
                        ]),
                    },
                    NetworkPolicyIngressRule::default(),
                    NetworkPolicyIngressRule {
                        from: Some(vec![]),
                        ports: Some(vec![]),
                    },
                ]),
                egress: Some(vec![
                    NetworkPolicyEgressRule {
                        to: Some(vec![NetworkPolicyPeer {
                            ip_block: Some(IPBlock {
                                cidr: "0.0.0.0/0".into(),
                                except: None,
                            }),
                            ..NetworkPolicyPeer::default()
                        }]),
                        ports: Some(vec![port(Some(IntOrString::Int(53)), Some("UDP"), None)]),
                    },
                    NetworkPolicyEgressRule::default(),
                ]),
            }),
        }
    }

    /// The `i`-th policy of a realistic compiler output.
    fn sample_policy(i: usize) -> NetworkPolicy {
        let svc = ["web-app", "backend", "user-api", "payments", "db", "cache"][i % 6];
        let peer = ["backend", "web-app", "db", "world", "payments", "user-api"][(i / 6) % 6];
        let name = format!("{svc}-to-{peer}.rule-{i}");
        let ingress = i.is_multiple_of(2);
        let peers = vec![
            NetworkPolicyPeer {
                pod_selector: Some(selector(&[("app", peer)])),
                namespace_selector: Some(selector(&[("kubernetes.io/metadata.name", "shop")])),
                ip_block: None,
            },
            NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: format!("10.{}.{}.0/24", i % 256, (i / 256) % 256),
                    except: i.is_multiple_of(3).then(|| vec![format!("10.{}.0.0/28", i % 256)]),
                }),
                ..NetworkPolicyPeer::default()
            },
        ];
        let ports = vec![
            port(Some(IntOrString::Int(8080 + (i % 7) as i32)), Some("TCP"), None),
            port(Some(IntOrString::Int(9090)), Some("UDP"), Some(9100)),
        ];
        let mut metadata = meta(&name);
        if let Some(a) = metadata.annotations.as_mut() {
            a.insert("netpolc.io/intent".into(), format!("{svc} -> {peer}:({}, 9090/udp)", 8080 + i % 7));
            a.insert("netpolc.io/source".into(), format!("shop.np:{}, shop.np:{}", i, i + 5));
        }
        NetworkPolicy {
            metadata,
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(selector(&[("app", svc)])),
                policy_types: Some(vec![if ingress { "Ingress" } else { "Egress" }.into()]),
                ingress: ingress.then(|| {
                    vec![NetworkPolicyIngressRule {
                        from: Some(peers.clone()),
                        ports: Some(ports.clone()),
                    }]
                }),
                egress: (!ingress).then(|| {
                    vec![NetworkPolicyEgressRule {
                        to: Some(peers),
                        ports: Some(ports),
                    }]
                }),
            }),
        }
    }

    /// Tiny deterministic xorshift64* generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    // ----- tricky strings ----------------------------------------------------

    const TRICKY: &[&str] = &[
        "",
        " ",
        "  ",
        "\t",
        "\n",
        "\n\n",
        "\r",
        "\r\n",
        "a",
        "web-app-to-backend.user-api",
        "app.kubernetes.io/managed-by",
        "kubernetes.io/metadata.name",
        "netpolc",
        "10.0.0.0/24",
        "0.0.0.0/0",
        "::/0",
        "::1",
        "fc00::/7",
        "2001:db8::/32",
        "shop.np:7, shop.np:12",
        "web-app -> backend/user-api:(8080, 9090/udp)",
        "world -> web-app:443",
        "web-app:443",
        "true",
        "True",
        "TRUE",
        "false",
        "yes",
        "Yes",
        "no",
        "NO",
        "on",
        "off",
        "Off",
        "y",
        "Y",
        "n",
        "N",
        "null",
        "Null",
        "NULL",
        "~",
        "nan",
        "NaN",
        ".nan",
        ".NaN",
        "inf",
        "+inf",
        "-inf",
        ".inf",
        "-.inf",
        "+.Inf",
        "123",
        "-123",
        "+123",
        "0",
        "00",
        "007",
        "0x1f",
        "0X1F",
        "0o17",
        "0b101",
        "0b",
        "0x",
        "0xg",
        "1e3",
        "1E3",
        "1e+3",
        "1e-3",
        "1e",
        "e3",
        "1.5",
        "1.",
        ".5",
        "1.2.3",
        "1..2",
        "1_000",
        "_1",
        "1_",
        "1__0",
        "0b1_0",
        "0x_1",
        "+0b1",
        "0b-1",
        "0o+7",
        "1:20",
        "1:20:30",
        "190:20:30.15",
        "0:20",
        "0:20.5",
        "1:60",
        "1:5:",
        "12:30",
        "8080:80",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "2001-12-15T02:59:43.1Z",
        "2001-1-1",
        "2001-12-14x",
        "2024-05-06T07:08:09Z",
        "<<",
        "=",
        "<",
        "==",
        "-",
        "--",
        "---",
        "--- x",
        "---x",
        "...",
        "... x",
        "....",
        "- x",
        "-x",
        "-\tx",
        "?",
        "? x",
        "?x",
        ":",
        ":x",
        "x:",
        "x: y",
        "x:y",
        "x :y",
        "{a}",
        "[a]",
        "a{b}",
        "a[0]",
        "a,b",
        ",a",
        "}",
        "*x",
        "&x",
        "!x",
        "!!str",
        "%x",
        "@x",
        "`x",
        "|",
        "|x",
        ">",
        ">x",
        "'",
        "''",
        "'x'",
        "\"",
        "\"x\"",
        "x'y",
        "x\"y",
        "\\",
        "a\\b",
        "#",
        "#x",
        "x#y",
        "x #y",
        "x\t#y",
        "x\u{a0}#y",
        "x\u{3000}#y",
        ".",
        "..",
        "a.",
        "x:\u{a0}",
        "x:\u{3000}",
        "x\u{a0}",
        "\u{a0}x",
        " x",
        "x ",
        "x\t",
        "a b",
        "a  b",
        "tab\there",
        "line\nbreak",
        "line\nbreak\n",
        "line\nbreak\n\n",
        "\nleading",
        "  indented\nsecond",
        "\n  indented after blank",
        "trailing space \nx",
        "crlf\r\nline",
        "nel\u{85}x",
        "ls\u{2028}x",
        "ps\u{2029}x",
        "bom\u{feff}x",
        "\u{feff}",
        "nonchar\u{fffe}\u{ffff}",
        "c1\u{80}\u{9f}",
        "del\u{7f}",
        "nul\u{0}",
        "bell\u{7}esc\u{1b}",
        "vt\u{b}ff\u{c}",
        "ctl\u{1}\u{1f}",
        "héllo wörld",
        "日本語",
        "emoji 😀",
        "\u{1F600}",
        "zero\u{200b}width",
        "privé: oui",
        "a-very-long-name-with-no-spaces-at-all-that-goes-on-and-on-beyond-eighty-characters-for-sure",
        "a sentence that is quite long and has spaces so that it will be folded by the writer when long",
        "a sentence that is quite long and has spaces so that it will be folded by the writer, even: this",
        "trailing spaces on a long line are kept in the folded block scalar output of the writer!!      ",
        "   leading spaces on a long line mean it cannot be plain so it should be quoted instead ok",
        "x                                                                                    y",
        "x \t                                                                                  y",
        "a                                                                                                   ",
        "                                                                                                    ",
        "a b                                                                                                 ",
        "this-is-eighty-one-characters-long-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx y",
        "this is eighty characters long and made of words so it is not folded at all: xx",
        "this is eighty-one characters long and made of words so it is folded right away!",
        "exactly at the limit with a run of spaces   right around the eightieth column   and more words",
        "ααααααααααααααααααααααααααααααααααααααααα ααααααααααααααααααααααααααααααααααααααααα",
        "multi\nline with a very long first line that goes on and on beyond the eighty column limit ok\nend",
    ];

    fn key_map(s: &str) -> BTreeMap<String, i32> {
        BTreeMap::from([(s.to_string(), 1)])
    }

    fn value_map(s: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("k".to_string(), s.to_string())])
    }

    #[test]
    fn tricky_strings_everywhere() {
        for &s in TRICKY {
            same(&s);
            same(&value_map(s));
            same(&key_map(s));
            same(&vec![s]);
            same(&vec![vec![s, s]]);
            same(&vec![value_map(s)]);
            same(&BTreeMap::from([("outer", value_map(s))]));
            same(&BTreeMap::from([("outer", vec![vec![s]])]));
        }
    }

    #[test]
    fn tricky_strings_round_trip() {
        for &s in TRICKY {
            same_and_round_trips(&value_map(s));
            same_and_round_trips(&key_map(s));
            same_and_round_trips(&vec![s.to_string()]);
        }
    }

    #[test]
    fn all_short_strings_over_a_nasty_alphabet() {
        let alphabet: Vec<char> = " -?:#'\"\\.,[]{}!&*%@`|><=~+_0159abeEnoxyTN\t\n\u{a0}é".chars().collect();
        let mut strings = Vec::new();
        for &a in &alphabet {
            strings.push(a.to_string());
            for &b in &alphabet {
                strings.push(format!("{a}{b}"));
                strings.push(format!("x{a}{b}"));
                strings.push(format!("{a}{b}x"));
            }
        }
        for chunk in strings.chunks(64) {
            let as_values: Vec<(String, String)> = chunk.iter().enumerate().map(|(i, s)| (format!("k{i}"), s.clone())).collect();
            same(&Pairs(as_values));
            let as_keys: Vec<(String, String)> = chunk.iter().map(|s| (s.clone(), "v".to_string())).collect();
            same(&Pairs(as_keys));
            same(&chunk);
        }
    }

    /// Every C0/C1 control and special code point in each scalar position.
    #[test]
    fn every_escape() {
        let specials = (0u32..0x100).chain([0x2028, 0x2029, 0xfeff, 0xfffe, 0xffff, 0x3000]);
        for c in specials.filter_map(char::from_u32) {
            for s in [c.to_string(), format!("a{c}"), format!("a{c}b\nc"), format!("{c}\n")] {
                same(&value_map(&s));
                same(&key_map(&s));
                same(&vec![s.as_str()]);
            }
        }
    }

    /// A map with possibly repeated keys, in order.
    struct Pairs(Vec<(String, String)>);

    impl Serialize for Pairs {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }

    // ----- NetworkPolicies -------------------------------------------------

    #[test]
    fn network_policy_every_field_shape() {
        let policy = full_policy();
        let yaml = same(&policy);
        assert!(yaml.contains("  podSelector: {}\n"), "{yaml}");
        assert!(yaml.contains("\n  - {}\n"), "{yaml}");
        assert!(yaml.contains("\n  - from: []\n    ports: []\n"), "{yaml}");
        same_and_round_trips(&policy);
    }

    #[test]
    fn network_policy_minimal_and_empty() {
        same_and_round_trips(&NetworkPolicy::default());
        same_and_round_trips(&NetworkPolicy {
            metadata: meta("deny-all"),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![]),
                egress: Some(vec![]),
            }),
        });
        same_and_round_trips(&NetworkPolicy {
            metadata: ObjectMeta {
                labels: Some(BTreeMap::new()),
                annotations: Some(BTreeMap::new()),
                ..ObjectMeta::default()
            },
            spec: Some(NetworkPolicySpec::default()),
        });
    }

    #[test]
    fn network_policy_with_tricky_strings() {
        let mut rng = Rng(7);
        for &s in TRICKY {
            let mut policy = full_policy();
            let meta = &mut policy.metadata;
            meta.name = Some(s.to_string());
            meta.labels.get_or_insert_default().insert(s.to_string(), s.to_string());
            meta.annotations
                .get_or_insert_default()
                .insert(format!("netpolc.io/{}", rng.below(9)), s.to_string());
            let spec = policy.spec.as_mut().expect("spec");
            spec.policy_types = Some(vec![s.to_string()]);
            if let Some(rule) = spec.ingress.as_mut().and_then(|r| r.first_mut()) {
                rule.ports = Some(vec![port(Some(IntOrString::String(s.into())), Some(s), None)]);
            }
            same_and_round_trips(&policy);
        }
    }

    #[test]
    fn many_policies_and_lists() {
        let policies: Vec<NetworkPolicy> = (0..300).map(sample_policy).collect();
        for p in &policies {
            same(p);
        }
        same(&policies);
        let list = List {
            items: policies[..20].to_vec(),
            metadata: ListMeta {
                resource_version: Some("12345".into()),
                ..ListMeta::default()
            },
        };
        same_and_round_trips(&list);
        same_and_round_trips(&List::<NetworkPolicy>::default());
        same(&BTreeMap::from([("policies", &policies[..5])]));
    }

    #[test]
    fn multiple_documents() {
        let policies: Vec<NetworkPolicy> = (0..50).map(sample_policy).collect();
        let mut out = Vec::new();
        to_writer_multiple(&mut out, &policies).expect("write");
        let expected = serde_saphyr::to_string_multiple(&policies).expect("saphyr");
        assert_eq!(String::from_utf8(out).expect("utf-8"), expected);
        let mut out = b"x".to_vec();
        to_writer_multiple(&mut out, &[Tree::Int(1), Tree::Seq(vec![])]).expect("write");
        assert_eq!(out, b"x1\n---\n[]\n");
        let err = to_writer_multiple(&mut out, &[1.0, 2.0]).expect_err("floats");
        assert!(matches!(err, Error::Unsupported(_)));
        assert_eq!(out, b"x1\n---\n[]\n");
    }

    /// Nesting far deeper than any policy, with every kind of node at the bottom.
    #[test]
    fn deep_nesting() {
        let leaves = [
            Tree::Str("plain".into()),
            Tree::Str("two\n  lines\n".into()),
            Tree::Str("folded ".repeat(30)),
            Tree::Str("k".repeat(1100)),
            Tree::Map(vec![], true),
            Tree::Seq(vec![]),
            Tree::Null,
        ];
        for leaf in leaves {
            let mut tree = leaf.clone();
            for level in 0..60 {
                tree = match level % 3 {
                    0 => Tree::Seq(vec![tree, leaf.clone()]),
                    1 => Tree::Map(vec![("k".repeat(1030), leaf.clone()), ("b".into(), tree)], true),
                    _ => Tree::Map(vec![("a".into(), tree), ("b".into(), leaf.clone())], false),
                };
            }
            let yaml = same(&tree);
            let back: Val = serde_saphyr::from_str(&yaml).expect("re-parse");
            assert_eq!(back, tree.expected());
        }
    }

    #[test]
    fn appends_to_existing_buffer() {
        let mut out = b"prefix\n".to_vec();
        to_writer(&mut out, &sample_policy(1)).expect("write");
        let expected = serde_saphyr::to_string(&sample_policy(1)).expect("saphyr");
        assert_eq!(&out[..7], b"prefix\n");
        assert_eq!(&out[7..], expected.as_bytes());
    }

    // ----- scalars and shapes ----------------------------------------------

    #[derive(Serialize, Deserialize, PartialEq, Debug, Default)]
    struct Scalars {
        i8: i8,
        i16: i16,
        i32: i32,
        i64: i64,
        u8: u8,
        u16: u16,
        u32: u32,
        u64: u64,
        i128: i128,
        u128: u128,
        yes: bool,
        no: bool,
        ch: char,
        none: Option<String>,
        some: Option<u16>,
        unit: (),
        unit_enum: Mode,
        tuple: (u8, String, bool),
        newtype: Wrapper,
        tuple_struct: Pair,
        nested: Vec<Vec<Vec<u8>>>,
        empty_nested: Vec<Vec<u8>>,
        options: Vec<Option<u8>>,
        maps: Vec<BTreeMap<String, Vec<String>>>,
        int_keys: BTreeMap<i32, bool>,
        bool_keys: BTreeMap<bool, u8>,
        unit_keys: BTreeMap<Mode, u8>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
    enum Mode {
        #[default]
        Ingress,
        #[serde(rename = "true")]
        Egress,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug, Default)]
    struct Wrapper(String);

    #[derive(Serialize, Deserialize, PartialEq, Debug, Default)]
    struct Pair(u8, String);

    #[test]
    fn scalars_and_shapes() {
        let extremes = Scalars {
            i8: i8::MIN,
            i16: i16::MIN,
            i32: i32::MIN,
            i64: i64::MIN,
            u8: u8::MAX,
            u16: u16::MAX,
            u32: u32::MAX,
            u64: u64::MAX,
            i128: i128::MIN,
            u128: u128::MAX,
            yes: true,
            no: false,
            ch: '#',
            none: None,
            some: Some(0),
            unit: (),
            unit_enum: Mode::Egress,
            tuple: (7, "x: y".into(), true),
            newtype: Wrapper("0x10".into()),
            tuple_struct: Pair(1, "".into()),
            nested: vec![vec![vec![1, 2], vec![]], vec![], vec![vec![3]]],
            empty_nested: vec![vec![]],
            options: vec![None, Some(1), None],
            maps: vec![
                BTreeMap::new(),
                BTreeMap::from([("a".into(), vec![]), ("b".into(), vec!["x".into()])]),
            ],
            int_keys: BTreeMap::from([(-1, true), (0, false), (42, true)]),
            bool_keys: BTreeMap::from([(false, 0), (true, 1)]),
            unit_keys: BTreeMap::from([(Mode::Ingress, 1), (Mode::Egress, 2)]),
        };
        same(&extremes);
        same(&Scalars::default());
        for n in [0i64, 1, 9, 10, 99, 100, 12345, -1, -10, i64::MAX, i64::MIN] {
            same(&n);
            same(&vec![n]);
            same(&BTreeMap::from([(n, n)]));
        }
        for n in [0u64, 7, 10, 100, 1000, 65535, 1 << 32, u64::MAX] {
            same(&n);
        }
        same(&());
        same(&None::<u8>);
        same(&true);
        same(&'x');
        same(&Vec::<u8>::new());
        same(&BTreeMap::<String, u8>::new());
        same(&Mode::Egress);
        same(&vec![Mode::Ingress, Mode::Egress]);
        for c in ['a', '.', '#', '-', ' ', '"', '\'', '\n', '\t', '\u{85}', 'é', ':', '~', 'y'] {
            same(&c);
            same(&BTreeMap::from([(c, c)]));
            same(&vec![vec![c]]);
        }
    }

    #[test]
    fn long_keys_use_explicit_form() {
        let long = "k".repeat(1030);
        let exact = "k".repeat(1024);
        let quoted = "\u{1}".repeat(300);
        let wide = "é".repeat(1020);
        let nested = BTreeMap::from([("a".to_string(), 1)]);
        for key in [&long, &exact, &quoted, &wide] {
            same(&BTreeMap::from([(key.clone(), "v")]));
            same(&BTreeMap::from([(key.clone(), nested.clone())]));
            same(&BTreeMap::from([(key.clone(), vec!["a", "b"])]));
            same(&BTreeMap::from([(key.clone(), Vec::<u8>::new())]));
            same(&BTreeMap::from([(key.clone(), BTreeMap::<u8, u8>::new())]));
            same(&BTreeMap::from([(key.clone(), "multi\nline")]));
            same(&vec![BTreeMap::from([(key.clone(), 1), ("b".into(), 2)])]);
            same(&vec![BTreeMap::from([(key.clone(), nested.clone()), ("0".into(), nested.clone())])]);
        }
    }

    #[derive(Serialize)]
    enum Data {
        New(u8),
        Tuple(u8, u8),
        Struct { a: u8 },
    }

    struct Bytes;

    impl Serialize for Bytes {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(b"abc")
        }
    }

    #[test]
    fn unsupported_shapes_are_errors_and_leave_output_alone() {
        #[track_caller]
        fn rejected<T: Serialize>(value: &T) {
            let mut out = b"keep".to_vec();
            let err = to_writer(&mut out, value).expect_err("should be rejected");
            assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
            assert_eq!(out, b"keep");
            assert!(!err.to_string().is_empty());
        }
        rejected(&1.5f64);
        rejected(&BTreeMap::from([("a", 1.5f32)]));
        rejected(&Data::New(1));
        rejected(&Data::Tuple(1, 2));
        rejected(&Data::Struct { a: 1 });
        rejected(&vec![Bytes]);
        rejected(&BTreeMap::from([(vec![1u8], 1u8)]));
        let mut bad_key = BTreeMap::new();
        bad_key.insert((1u8, 2u8), 3u8);
        rejected(&bad_key);
    }

    #[test]
    fn custom_errors_propagate() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("nope"))
            }
        }
        let mut out = Vec::new();
        let err = to_writer(&mut out, &BTreeMap::from([("a", Fails)])).expect_err("fails");
        assert_eq!(err, Error::Custom("nope".into()));
        assert!(out.is_empty());
        let _: &dyn std::error::Error = &err;
    }

    // ----- random structures ---------------------------------------------------

    /// A random YAML-shaped value.
    #[derive(Clone, Debug)]
    enum Tree {
        Str(String),
        Int(i64),
        UInt(u64),
        Bool(bool),
        Null,
        /// A map; `bool`: whether the length is announced up front.
        Map(Vec<(String, Tree)>, bool),
        Struct(Vec<(&'static str, Tree)>),
        Seq(Vec<Tree>),
    }

    impl Serialize for Tree {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Tree::Str(v) => s.serialize_str(v),
                Tree::Int(v) => s.serialize_i64(*v),
                Tree::UInt(v) => s.serialize_u64(*v),
                Tree::Bool(v) => s.serialize_bool(*v),
                Tree::Null => s.serialize_none(),
                Tree::Map(entries, known) => {
                    let mut m = s.serialize_map(known.then_some(entries.len()))?;
                    for (k, v) in entries {
                        m.serialize_entry(k, v)?;
                    }
                    m.end()
                }
                Tree::Struct(fields) => {
                    let mut m = s.serialize_struct("Tree", fields.len())?;
                    for (k, v) in fields {
                        m.serialize_field(k, v)?;
                    }
                    m.end()
                }
                Tree::Seq(items) => {
                    let mut q = s.serialize_seq(Some(items.len()))?;
                    for v in items {
                        q.serialize_element(v)?;
                    }
                    q.end()
                }
            }
        }
    }

    /// What a YAML reader gives back for a [`Tree`].
    #[derive(Debug, PartialEq)]
    enum Val {
        Null,
        Bool(bool),
        Int(i128),
        Str(String),
        Seq(Vec<Val>),
        Map(Vec<(Val, Val)>),
    }

    impl Tree {
        fn expected(&self) -> Val {
            match self {
                Tree::Str(s) => Val::Str(s.clone()),
                Tree::Int(v) => Val::Int((*v).into()),
                Tree::UInt(v) => Val::Int((*v).into()),
                Tree::Bool(v) => Val::Bool(*v),
                Tree::Null => Val::Null,
                Tree::Map(e, _) => Val::Map(e.iter().map(|(k, v)| (Val::Str(k.clone()), v.expected())).collect()),
                Tree::Struct(e) => Val::Map(e.iter().map(|(k, v)| (Val::Str(k.to_string()), v.expected())).collect()),
                Tree::Seq(items) => Val::Seq(items.iter().map(Tree::expected).collect()),
            }
        }
    }

    impl<'de> Deserialize<'de> for Val {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Val;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("any YAML value")
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Val, E> {
                    Ok(Val::Bool(v))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Val, E> {
                    Ok(Val::Int(v.into()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val, E> {
                    Ok(Val::Int(v.into()))
                }
                fn visit_i128<E: de::Error>(self, v: i128) -> Result<Val, E> {
                    Ok(Val::Int(v))
                }
                fn visit_u128<E: de::Error>(self, v: u128) -> Result<Val, E> {
                    i128::try_from(v).map(Val::Int).map_err(E::custom)
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Val, E> {
                    Err(E::custom(format!("unexpected float {v}")))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Val, E> {
                    Ok(Val::Str(v.to_string()))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Val, E> {
                    Ok(Val::Null)
                }
                fn visit_none<E: de::Error>(self) -> Result<Val, E> {
                    Ok(Val::Null)
                }
                fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
                    Val::deserialize(d)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
                    let mut items = Vec::new();
                    while let Some(v) = a.next_element()? {
                        items.push(v);
                    }
                    Ok(Val::Seq(items))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
                    let mut entries = Vec::new();
                    while let Some(e) = a.next_entry()? {
                        entries.push(e);
                    }
                    Ok(Val::Map(entries))
                }
            }
            d.deserialize_any(V)
        }
    }

    const STATIC_KEYS: &[&str] = &[
        "apiVersion",
        "kind",
        "app.kubernetes.io/name",
        "on",
        "a: b",
        "",
        "key with space",
        "x,y",
        "#",
        "-",
        "é",
    ];

    const NASTY: &[char] = &[
        'a', 'b', 'z', 'A', 'x', 'e', 'E', 'n', 'o', 'y', 'T', '0', '1', '5', '9', ' ', ' ', ' ', '-', '?', ':', ':', '#', '\'', '"', '\\',
        '\n', '\n', '\t', '\r', '.', '_', '+', '~', '!', '&', '*', '%', '@', '`', '|', '>', '<', '=', ',', '[', ']', '{', '}', '/', 'é',
        '\u{a0}', '\u{85}', '\u{2028}', '\u{feff}', '\u{fffe}', '😀', '\u{3000}', '\u{0}', '\u{1b}', '\u{7f}', '\u{9f}', '日',
    ];

    fn random_string(rng: &mut Rng) -> String {
        let mut s = String::new();
        match rng.below(10) {
            // Number- and timestamp-like spellings.
            0 | 1 => {
                let alphabet: Vec<char> = "0123456789_.eE+-:xXoObB tTZ,".chars().collect();
                for _ in 0..rng.below(12) {
                    s.push(*rng.pick(&alphabet));
                }
            }
            // A known tricky string, perhaps decorated.
            2 => {
                s.push_str(rng.pick::<&str>(TRICKY));
                if rng.chance(30) {
                    s.insert(0, *rng.pick(NASTY));
                }
                if rng.chance(30) {
                    s.push(*rng.pick(NASTY));
                }
            }
            // Long text with spaces and words: folded-block candidates.
            3 => {
                let words = ["lorem", "ipsum", "a", "dolor-sit", "x", "amet", "ååå", "\t", "  "];
                let len = 60 + rng.below(200);
                while s.chars().count() < len {
                    s.push_str(rng.pick::<&str>(&words));
                    let spaces = if rng.chance(85) { 1 } else { rng.below(4) };
                    s.extend(std::iter::repeat_n(' ', spaces));
                    if rng.chance(3) {
                        s.push(*rng.pick(NASTY));
                    }
                }
                if rng.chance(50) {
                    s = s.trim_end().to_string();
                }
            }
            // Multi-line text.
            4 => {
                for _ in 0..1 + rng.below(4) {
                    if rng.chance(30) {
                        s.push(' ');
                    }
                    for _ in 0..rng.below(12) {
                        s.push(*rng.pick(NASTY));
                    }
                    s.push('\n');
                }
                for _ in 0..rng.below(3) {
                    s.push('\n');
                }
                if rng.chance(40) {
                    s.pop();
                }
            }
            // Short nasty strings.
            _ => {
                for _ in 0..rng.below(9) {
                    s.push(*rng.pick(NASTY));
                }
            }
        }
        s
    }

    fn random_tree(rng: &mut Rng, depth: usize) -> Tree {
        let leaf = depth >= 5 || rng.chance(45);
        if leaf {
            return match rng.below(10) {
                0 => Tree::Int(rng.next() as i64 >> rng.below(64)),
                1 => Tree::UInt(rng.next() >> rng.below(64)),
                2 => Tree::Bool(rng.chance(50)),
                3 => Tree::Null,
                _ => Tree::Str(random_string(rng)),
            };
        }
        let len = if rng.chance(15) { 0 } else { 1 + rng.below(4) };
        match rng.below(3) {
            0 => Tree::Seq((0..len).map(|_| random_tree(rng, depth + 1)).collect()),
            1 => {
                let mut entries: Vec<(String, Tree)> = Vec::new();
                while entries.len() < len {
                    let key = if rng.chance(2) { "k".repeat(1025) } else { random_string(rng) };
                    if entries.iter().all(|(k, _)| *k != key) {
                        entries.push((key, random_tree(rng, depth + 1)));
                    }
                }
                Tree::Map(entries, rng.chance(70))
            }
            _ => {
                let mut fields: Vec<(&'static str, Tree)> = Vec::new();
                while fields.len() < len {
                    let key = *rng.pick(STATIC_KEYS);
                    if fields.iter().all(|(k, _)| *k != key) {
                        fields.push((key, random_tree(rng, depth + 1)));
                    }
                }
                Tree::Struct(fields)
            }
        }
    }

    #[test]
    fn random_strings_match() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let s = random_string(&mut rng);
            same(&value_map(&s));
            same(&key_map(&s));
            same(&vec![vec![s.as_str()]]);
        }
    }

    #[test]
    fn random_trees_match_and_round_trip() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        // How often each interesting construct showed up, to keep the generator honest.
        let marks = [": |", "- |", ": >-", "- >-", "? ", "\"", "'", "{}", "[]", "- - ", "|2"];
        let mut seen = [0usize; 11];
        for _ in 0..5_000 {
            let tree = random_tree(&mut rng, 0);
            let yaml = same(&tree);
            for (n, mark) in seen.iter_mut().zip(marks) {
                *n += usize::from(yaml.contains(mark));
            }
            let back: Val = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("re-parse failed: {e}\n{yaml}"));
            assert_eq!(back, tree.expected(), "round trip changed the value\n{yaml}");
        }
        for (n, mark) in seen.iter().zip(marks) {
            assert!(*n >= 20, "{mark:?} seen in only {n} documents");
        }
    }

    // ----- the NetworkPolicy writer ------------------------------------------------

    /// Asserts that [`network_policy`] writes serde-saphyr's bytes for `policy`
    /// and that k8s-openapi reads them back to `policy`, so no field is lost.
    #[track_caller]
    fn direct_same_and_round_trips(policy: &NetworkPolicy) {
        let mut out = b"keep\n".to_vec();
        network_policy(&mut out, policy);
        let ours = String::from_utf8(out).expect("UTF-8");
        let theirs = serde_saphyr::to_string(policy).expect("serde-saphyr");
        if ours[5..] != theirs {
            panic!("output differs\n--- serde-saphyr:\n{theirs:?}\n--- ours:\n{:?}\n", &ours[5..]);
        }
        let back: NetworkPolicy = serde_saphyr::from_str(&theirs).unwrap_or_else(|e| panic!("re-parse failed: {e}\n{theirs}"));
        assert_eq!(&back, policy, "round trip changed the policy\n{theirs}");
    }

    fn maybe<T>(rng: &mut Rng, make: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        rng.chance(70).then(|| make(rng))
    }

    fn some_strings(rng: &mut Rng) -> Vec<String> {
        (0..rng.below(4)).map(|_| policy_string(rng)).collect()
    }

    fn some_map(rng: &mut Rng) -> BTreeMap<String, String> {
        (0..rng.below(4)).map(|_| (policy_string(rng), policy_string(rng))).collect()
    }

    /// Mostly the strings the compiler writes, sometimes a nasty one.
    fn policy_string(rng: &mut Rng) -> String {
        if rng.chance(60) {
            rng.pick(&[
                "app",
                "web-app",
                "netpolc.io/source",
                "team-a.np:12, team-a.np:40",
                "a -> b:(80, 443/udp)",
                "TCP",
                "10.0.0.0/8",
            ])
            .to_string()
        } else {
            random_string(rng)
        }
    }

    fn random_selector(rng: &mut Rng) -> LabelSelector {
        LabelSelector {
            match_expressions: maybe(rng, |rng| {
                (0..rng.below(3))
                    .map(|_| LabelSelectorRequirement {
                        key: policy_string(rng),
                        operator: policy_string(rng),
                        values: maybe(rng, some_strings),
                    })
                    .collect()
            }),
            match_labels: maybe(rng, some_map),
        }
    }

    fn random_peers(rng: &mut Rng) -> Vec<NetworkPolicyPeer> {
        (0..rng.below(3))
            .map(|_| NetworkPolicyPeer {
                ip_block: maybe(rng, |rng| IPBlock {
                    cidr: policy_string(rng),
                    except: maybe(rng, some_strings),
                }),
                namespace_selector: maybe(rng, random_selector),
                pod_selector: maybe(rng, random_selector),
            })
            .collect()
    }

    fn random_ports(rng: &mut Rng) -> Vec<NetworkPolicyPort> {
        (0..rng.below(3))
            .map(|_| NetworkPolicyPort {
                end_port: maybe(rng, |rng| rng.next() as i32),
                port: maybe(rng, |rng| {
                    if rng.chance(50) {
                        IntOrString::Int(rng.next() as i32 >> rng.below(32))
                    } else {
                        IntOrString::String(policy_string(rng))
                    }
                }),
                protocol: maybe(rng, policy_string),
            })
            .collect()
    }

    /// A policy where every field the writer handles itself may be absent,
    /// empty or full, and any string may be nasty.
    fn random_policy(rng: &mut Rng) -> NetworkPolicy {
        NetworkPolicy {
            metadata: ObjectMeta {
                annotations: maybe(rng, some_map),
                labels: maybe(rng, some_map),
                name: maybe(rng, policy_string),
                namespace: maybe(rng, policy_string),
                ..ObjectMeta::default()
            },
            spec: maybe(rng, |rng| NetworkPolicySpec {
                egress: maybe(rng, |rng| {
                    (0..rng.below(3))
                        .map(|_| NetworkPolicyEgressRule {
                            ports: maybe(rng, random_ports),
                            to: maybe(rng, random_peers),
                        })
                        .collect()
                }),
                ingress: maybe(rng, |rng| {
                    (0..rng.below(3))
                        .map(|_| NetworkPolicyIngressRule {
                            from: maybe(rng, random_peers),
                            ports: maybe(rng, random_ports),
                        })
                        .collect()
                }),
                pod_selector: maybe(rng, random_selector),
                policy_types: maybe(rng, some_strings),
            }),
        }
    }

    #[test]
    fn network_policy_writer_matches_on_every_field_shape() {
        direct_same_and_round_trips(&full_policy());
        direct_same_and_round_trips(&NetworkPolicy::default());
        for i in 0..50 {
            direct_same_and_round_trips(&sample_policy(i));
        }
        let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
        for _ in 0..3_000 {
            direct_same_and_round_trips(&random_policy(&mut rng));
        }
    }

    /// Metadata the compiler never sets goes through the serde path, still
    /// byte-identical and complete.
    #[test]
    fn network_policy_writer_keeps_unusual_metadata() {
        let full = full_policy();
        let mut rng = Rng(11);
        for i in 0..20 {
            let mut policy = random_policy(&mut rng);
            let meta = &mut policy.metadata;
            match i % 4 {
                0 => meta.uid = Some(policy_string(&mut rng)),
                1 => meta.generation = Some(i),
                2 => meta.owner_references.clone_from(&full.metadata.owner_references),
                _ => meta.creation_timestamp.clone_from(&full.metadata.creation_timestamp),
            }
            direct_same_and_round_trips(&policy);
        }
    }

    /// The class-union shortcut of `is_plain` against serde-saphyr, with the
    /// special bytes at every offset of the eight-byte steps and of the tail.
    #[test]
    fn plain_decisions_at_every_offset() {
        let specials: Vec<char> = " :#,[]{}-?'\"\t\u{7f}\u{a0}\u{85}\u{3000}é.~".chars().collect();
        let mut strings = Vec::new();
        for len in [7, 8, 9, 16, 17, 21] {
            for at in 0..len {
                for &a in &specials {
                    for b in [None, Some(' '), Some(':'), Some('#'), Some('\u{a0}')] {
                        let mut s: Vec<char> = "abcdefghijklmnopqrstuvwxyz".chars().take(len).collect();
                        s[at] = a;
                        if let Some(b) = b
                            && at + 1 < len
                        {
                            s[at + 1] = b;
                        }
                        strings.push(s.into_iter().collect::<String>());
                    }
                }
            }
        }
        for chunk in strings.chunks(64) {
            let as_values: Vec<(String, String)> = chunk.iter().enumerate().map(|(i, s)| (format!("k{i}"), s.clone())).collect();
            same(&Pairs(as_values));
            let as_keys: Vec<(String, String)> = chunk.iter().map(|s| (s.clone(), "v".to_string())).collect();
            same(&Pairs(as_keys));
        }
    }

    // ----- throughput ------------------------------------------------------------

    /// Best-of-`runs` seconds to write every policy of `docs` with `ours` and
    /// with serde-saphyr; asserts both wrote the same bytes, returns their count.
    fn race(docs: &[&NetworkPolicy], runs: usize) -> (usize, f64, f64) {
        use std::time::Instant;
        let mut ours = Vec::new();
        let mut theirs = String::new();
        let (mut best_ours, mut best_theirs) = (f64::MAX, f64::MAX);
        for _ in 0..runs {
            ours.clear();
            let t = Instant::now();
            for p in docs {
                network_policy(&mut ours, p);
            }
            best_ours = best_ours.min(t.elapsed().as_secs_f64());

            theirs.clear();
            let t = Instant::now();
            for p in docs {
                serde_saphyr::to_fmt_writer(&mut theirs, *p).expect("serde-saphyr");
            }
            best_theirs = best_theirs.min(t.elapsed().as_secs_f64());
        }
        assert_eq!(ours, theirs.as_bytes());
        (ours.len(), best_ours, best_theirs)
    }

    /// Run with `cargo test --release -- --ignored --nocapture throughput`.
    #[test]
    #[ignore = "benchmark; run in release mode"]
    fn throughput() {
        let policies: Vec<NetworkPolicy> = (0..20_000).map(sample_policy).collect();
        let distinct: Vec<&NetworkPolicy> = policies.iter().collect();
        let hot: Vec<&NetworkPolicy> = (0..20_000).map(|i| &policies[i % 64]).collect();
        for (label, docs) in [
            ("20,000 distinct policies", &distinct),
            ("20,000 docs from 64 cache-resident policies", &hot),
        ] {
            let (bytes, ours, theirs) = race(docs, 7);
            let mb = bytes as f64 / 1e6;
            println!(
                "{label}, {mb:.1} MB: ours {:.1} ms = {:.0} MB/s; serde-saphyr {:.1} ms = {:.0} MB/s; {:.1}x",
                ours * 1e3,
                mb / ours,
                theirs * 1e3,
                mb / theirs,
                theirs / ours
            );
        }
    }
}
