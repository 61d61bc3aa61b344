//! Bad input never panics, never hangs, and always gets a diagnostic.
//!
//! Most cases drive the library (`netpolc::compile_str`) on a worker thread
//! with a time limit, so that a panic or a hang fails the test with the name
//! of the case instead of taking the test binary down; a few go through the
//! real binary (bytes that are not UTF-8, NUL bytes, a BOM, CRLF).
//!
//! Every result is held to the same invariants: errors mean no policies, every
//! diagnostic's span lies inside the input on char boundaries and renders with
//! its `file:line:column`, and compiling twice gives the same diagnostics and
//! the same YAML.

use netpolc::diagnostics::{self, Code};
use netpolc::{Compilation, Config, Severity, Sources, compile_str};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;
use support::TempDir;

/// Far above what any case needs even in a debug build on a slow machine:
/// only a real hang (or something quadratic on a big input) gets near it.
/// `NETPOLC_TEST_TIME_LIMIT` (seconds) overrides it.
fn time_limit() -> Duration {
    let secs = std::env::var("NETPOLC_TEST_TIME_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Every compilation in this file holds this lock. `parse.rs` switches pest's
/// process-wide error detail on and off around each syntax error, so two
/// compilations running at once can change each other's E0001 messages (see
/// `concurrent_compilations_give_the_same_diagnostics`); without the lock the
/// determinism checks below would be flaky under the parallel test runner.
static COMPILE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn compile_locked(name: &str, text: &str) -> Compilation {
    let _guard = COMPILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    compile_str(name, text)
}

/// Compiles `text` on a worker thread (default 2 MiB stack, less than the
/// binary's main thread has) and fails with the case's name on a panic or a hang.
fn compile_guarded(case: &str, text: String) -> (String, Compilation, Duration) {
    // The caller holds the lock, not the worker: when a case hangs, the test
    // fails and releases it, and the other tests go on.
    let _guard = COMPILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel();
    let name = format!("{case}.np");
    let worker = std::thread::Builder::new()
        .name(format!("compile {case}"))
        .spawn(move || {
            let started = Instant::now();
            let out = compile_str(&name, &text);
            let _ = tx.send((text, out, started.elapsed()));
        })
        .expect("spawn worker");
    match rx.recv_timeout(time_limit()) {
        Ok(result) => {
            let _ = worker.join();
            result
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let payload = worker.join().err();
            let message = payload
                .as_ref()
                .and_then(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                })
                .unwrap_or_default();
            panic!("case `{case}`: the compiler panicked: {message}")
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("case `{case}`: the compiler did not finish within {:?}", time_limit()),
    }
}

/// The invariants every compilation must hold, whatever its input.
/// `render_limit` bounds how many diagnostics are rendered one by one (it is slow on huge counts).
fn check_invariants(case: &str, text: &str, out: &Compilation, render_limit: usize) {
    let show = || truncate(text, 300);
    if out.has_errors() {
        assert!(
            out.policies.is_empty(),
            "case `{case}`: errors were reported but {} policies were kept\ninput: {:?}",
            out.policies.len(),
            show()
        );
    }
    for d in &out.diagnostics {
        for label in &d.labels {
            let s = label.span;
            assert_eq!(
                s.file,
                0,
                "case `{case}`: {} points into file {}\ninput: {:?}",
                d.code.as_str(),
                s.file,
                show()
            );
            assert!(
                s.start <= s.end && s.end <= text.len(),
                "case `{case}`: {} span {}..{} outside the input of {} bytes\ninput: {:?}",
                d.code.as_str(),
                s.start,
                s.end,
                text.len(),
                show()
            );
            assert!(
                text.is_char_boundary(s.start) && text.is_char_boundary(s.end),
                "case `{case}`: {} span {}..{} not on char boundaries\ninput: {:?}",
                d.code.as_str(),
                s.start,
                s.end,
                show()
            );
        }
    }
    // Each diagnostic renders on its own with its location (the renderer
    // falls back to a bare `error[E...]: message` line when codespan rejects a span).
    let location = format!("{case}.np:");
    for d in out.diagnostics.iter().take(render_limit) {
        let text = diagnostics::render(std::slice::from_ref(d), &out.sources, false);
        assert!(
            text.contains(&format!("[{}]", d.code.as_str())) && text.contains(&location),
            "case `{case}`: diagnostic rendered without its code or location:\n{text}\ninput: {:?}",
            show()
        );
    }
}

/// Compiles twice, checks the invariants and that both runs agree.
fn compile_checked(case: &str, text: String) -> Compilation {
    let (text, first, _) = compile_guarded(case, text);
    check_invariants(case, &text, &first, 20);
    let (text, second, _) = compile_guarded(case, text);
    assert_eq!(
        first.render_diagnostics(),
        second.render_diagnostics(),
        "case `{case}`: diagnostics differ between two runs\ninput: {:?}",
        truncate(&text, 300)
    );
    assert_eq!(first.yaml(), second.yaml(), "case `{case}`: YAML differs between two runs");
    first
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}... ({} bytes)", &text[..i], text.len()),
        None => text.to_string(),
    }
}

fn codes(out: &Compilation) -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = out.diagnostics.iter().map(|d| d.code.as_str()).collect();
    codes.dedup();
    codes
}

fn assert_has_code(case: &str, out: &Compilation, code: Code) {
    assert!(
        out.diagnostics.iter().any(|d| d.code == code),
        "case `{case}`: expected {}, got {:?}",
        code.as_str(),
        codes(out)
    );
}

// ---- degenerate files -------------------------------------------------------

#[test]
fn empty_whitespace_and_comment_only_files_are_e0004() {
    let cases = [
        ("empty", String::new()),
        ("spaces", "   ".to_string()),
        ("whitespace", " \t\n\n \r\n\t\t\n".to_string()),
        ("newlines", "\n".repeat(10_000)),
        ("comments", "# one\n   # two\n#\n\t# three # four\n".to_string()),
        ("comment-no-newline", "# only a comment".to_string()),
    ];
    for (case, text) in cases {
        let out = compile_checked(case, text);
        assert!(out.has_errors(), "case `{case}`: {:?}", codes(&out));
        assert_has_code(case, &out, Code::EmptyFile);
    }
}

/// A file of `header` followed by `line` repeated until the file has `bytes` bytes.
fn repeated(header: &str, line: &str, bytes: usize) -> String {
    let mut text = String::from(header);
    while text.len() + line.len() <= bytes {
        text.push_str(line);
    }
    text
}

const REPEAT_HEADER: &str = "namespace shop\nallow dns\n";
const REPEAT_LINE: &str = "web -> api:8080\n";

/// Compiles `REPEAT_LINE` repeated up to `bytes`: no panic, the invariants, and
/// the policies of a single intent (every repeat is a W0002 duplicate).
fn repeated_intent(case: &str, bytes: usize) -> Compilation {
    let text = repeated(REPEAT_HEADER, REPEAT_LINE, bytes);
    let lines = text.lines().count();
    let (text, out, took) = compile_guarded(case, text);
    println!(
        "{case}: {} bytes, {lines} lines, {} diagnostics, compiled in {took:?}",
        text.len(),
        out.diagnostics.len()
    );
    check_invariants(case, &text, &out, 5);
    assert_has_code(case, &out, Code::DuplicateIntent);
    out
}

#[test]
fn a_file_of_one_repeated_intent_compiles() {
    // 32 KiB (2,000 repeats) keeps this test fast; the 10 MB version is below.
    let out = repeated_intent("repeated-32k", 32 * 1024);
    assert!(!out.has_errors(), "{}", truncate(&out.render_diagnostics(), 2000));
    let single = compile_locked("single.np", &format!("{REPEAT_HEADER}{REPEAT_LINE}"));
    assert_eq!(out.policies.len(), single.policies.len());
}

#[test]
fn a_10_mb_file_of_one_repeated_intent_compiles_in_reasonable_time() {
    // Measured (debug build): 10,000 repeats 6 s, 20,000 22 s, 40,000 140 s; 10 MB is 655,000.
    let out = repeated_intent("ten-mb", 10 * 1024 * 1024);
    assert!(!out.has_errors(), "{}", truncate(&out.render_diagnostics(), 2000));
}

#[test]
fn duplicate_intents_do_not_turn_into_an_error() {
    // A duplicate is only a warning, so output should still be written however
    // many there are. Each repeat adds `NAME:LINE, ` to the merged policies'
    // source annotation; past 256 KiB that is E0402. A long file name gets there
    // with 2,000 repeats (with `shop.np` it takes ~19,500, minutes in debug).
    let name = "d".repeat(200);
    let text = REPEAT_HEADER.to_string() + &REPEAT_LINE.repeat(2_000);
    let (_, out, took) = compile_guarded(&name, text);
    println!("2,000 duplicates: {took:?}");
    assert!(!out.has_errors(), "{}", truncate(&out.render_diagnostics(), 1500));
}

#[test]
fn overlong_lines_are_e0005_and_the_limit_is_exact() {
    // 100,000 characters on one line.
    let long = format!("namespace a\nweb -> {}\n", "x".repeat(100_000));
    let (text, out, took) = compile_guarded("long-line", long);
    println!("100,000-character line: {took:?}");
    check_invariants("long-line", &text, &out, 20);
    assert_has_code("long-line", &out, Code::LineTooLong);
    let e5 = out.diagnostics.iter().find(|d| d.code == Code::LineTooLong).expect("E0005");
    assert_eq!(out.sources.line_column(e5.span()).0, 2, "E0005 should point at line 2");

    // Multi-byte characters: the offset must stay on a char boundary.
    let (text, out, _) = compile_guarded("long-line-unicode", format!("namespace a\n# {}\n", "é日🦀".repeat(10_000)));
    check_invariants("long-line-unicode", &text, &out, 20);
    assert_has_code("long-line-unicode", &out, Code::LineTooLong);

    // Exactly 64 KiB is allowed (a diagnostic, but not E0005); one more byte is not.
    let limit = netpolc::parse::MAX_LINE_BYTES;
    let at = |n: usize| format!("namespace a\n{}\n", "a".repeat(n));
    let (text, out, _) = compile_guarded("line-at-limit", at(limit));
    check_invariants("line-at-limit", &text, &out, 20);
    assert!(!out.diagnostics.iter().any(|d| d.code == Code::LineTooLong), "{:?}", codes(&out));
    assert!(out.has_errors(), "a 64 KiB bare word is not a statement: {:?}", codes(&out));
    let (text, out, _) = compile_guarded("line-over-limit", at(limit + 1));
    check_invariants("line-over-limit", &text, &out, 20);
    assert_has_code("line-over-limit", &out, Code::LineTooLong);

    // A long line inside a continued statement.
    let (text, out, _) = compile_guarded(
        "long-continuation",
        format!("namespace a\nweb ->\n  api:80,\n  {}\n", "b".repeat(70_000)),
    );
    check_invariants("long-continuation", &text, &out, 20);
    assert_has_code("long-continuation", &out, Code::LineTooLong);
}

/// One intent from `web` to `n` targets, one per continued line.
fn many_targets(case: &str, n: usize) {
    let mut text = String::from("namespace a\nallow dns\nweb ->\n");
    for i in 0..n {
        text.push_str(&format!("  t{i}:80{}\n", if i + 1 < n { "," } else { "" }));
    }
    let (text, out, took) = compile_guarded(case, text);
    println!(
        "{case}: {n} targets in {took:?}, {} policies, {} diagnostics",
        out.policies.len(),
        out.diagnostics.len()
    );
    check_invariants(case, &text, &out, 5);
    assert!(!out.has_errors(), "{}", truncate(&out.render_diagnostics(), 2000));
    // One egress and one ingress policy per target, the DNS egress, and the default deny.
    assert_eq!(out.policies.len(), 2 * n + 2);
}

#[test]
fn many_targets_on_one_continued_intent() {
    // 300 keeps this test fast; the 50,000 version is below.
    many_targets("many-targets", 300);
}

#[test]
fn fifty_thousand_targets_on_one_continued_intent() {
    many_targets("fifty-thousand-targets", 50_000);
}

#[test]
fn deeply_repeated_constructs() {
    let n = 100_000;
    let terms = vec!["a=b"; n];
    let cases: Vec<(&str, String)> = vec![
        // One line each: over 64 KiB, so E0005.
        (
            "selector-terms-one-line",
            format!("namespace a\nweb -> [{}]:80\n", terms.join(", ")),
        ),
        ("brackets", format!("namespace a\nweb -> {}\n", "[".repeat(n))),
        ("parens", format!("namespace a\nweb -> api:{}\n", "(".repeat(n))),
        ("braces", format!("namespace a\nweb -> {}\n", "{".repeat(n))),
        ("arrows", format!("namespace a\nweb {}\n", "-> ".repeat(n))),
        // Under the line limit, so the parser really sees them.
        ("brackets-20k", format!("namespace a\nweb -> {}\n", "[".repeat(20_000))),
        ("parens-20k", format!("namespace a\nweb -> api:{}80\n", "(".repeat(20_000))),
        ("arrows-20k", format!("namespace a\nweb{}\n", " ->".repeat(20_000))),
        // Continued over many physical lines, so the logical line is huge
        // (100,000 selector terms continued: see the next test).
        ("arrows-continued", format!("namespace a\nweb{}\n", " ->\n".repeat(n))),
        ("commas-continued", format!("namespace a\nweb -> api:80{}\n", ",\n".repeat(n))),
        ("metadata-10k", format!("namespace a\n{}", "@k v\n".repeat(10_000))),
        ("metadata-10k-no-namespace", "@owner team\n".repeat(10_000)),
    ];
    for (case, text) in cases {
        let (text, out, took) = compile_guarded(case, text);
        println!(
            "{case}: {took:?}, {} diagnostics {:?}",
            out.diagnostics.len(),
            truncate(&codes(&out).join(" "), 60)
        );
        check_invariants(case, &text, &out, 20);
        assert!(out.has_errors(), "case `{case}` should be an error: {:?}", codes(&out));
    }
    // Valid but repetitive: 10,000 `meta` statements and no intent.
    let (text, out, took) = compile_guarded("meta-statements-10k", format!("namespace a\n{}", "meta k = v\n".repeat(10_000)));
    println!("meta-statements-10k: {took:?}, {:?}", codes(&out));
    check_invariants("meta-statements-10k", &text, &out, 20);
    assert!(!out.has_errors(), "{:?}", codes(&out));
}

#[test]
fn selector_with_100k_duplicate_terms_continued_over_lines_is_still_checked() {
    let terms = vec!["a=b"; 100_000];
    let (text, out, took) = compile_guarded(
        "duplicate-terms",
        format!("namespace a\nallow dns\nweb -> [{}]:80\n", terms.join(",\n")),
    );
    println!("100,000 duplicate selector terms: {took:?}, {:?}", codes(&out));
    check_invariants("duplicate-terms", &text, &out, 20);
    // Duplicate `a=b` terms mean the same selector as one: either accepted or
    // diagnosed, but no panic, and a result either way.
    if !out.has_errors() {
        assert!(!out.policies.is_empty());
    }
}

// ---- encodings --------------------------------------------------------------

/// Compiles bytes the way the binary does (`source::decode`, then `compile`).
fn compile_bytes(case: &str, bytes: Vec<u8>) -> Compilation {
    let (text, problem) = netpolc::source::decode(bytes);
    let mut sources = Sources::new();
    let index = sources.add(format!("{case}.np"), text);
    let early = problem.map(|p| vec![p.into_diagnostic(index)]).unwrap_or_default();
    let out = {
        let _guard = COMPILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        netpolc::compile(sources, early, &Config::default())
    };
    let text = out.sources.files()[0].text.clone();
    check_invariants_except_end_boundary(case, &text, &out);
    out
}

/// Like [`check_invariants`], but the end of an E0002 span is allowed to fall
/// inside the replacement character (see `not_utf8_span_ends_on_a_char_boundary`).
fn check_invariants_except_end_boundary(case: &str, text: &str, out: &Compilation) {
    if out.has_errors() {
        assert!(out.policies.is_empty(), "case `{case}`");
    }
    for d in &out.diagnostics {
        let s = d.span();
        assert!(
            s.start <= s.end && s.end <= text.len(),
            "case `{case}`: {} span outside the text",
            d.code.as_str()
        );
        assert!(
            text.is_char_boundary(s.start),
            "case `{case}`: {} span start not on a boundary",
            d.code.as_str()
        );
        let rendered = diagnostics::render(std::slice::from_ref(d), &out.sources, false);
        assert!(
            rendered.contains(&format!("{case}.np:")),
            "case `{case}`: no location in\n{rendered}"
        );
    }
}

#[test]
fn invalid_utf8_nul_and_oversized_bytes_are_diagnosed() {
    let mut middle = b"namespace a\nallow dns\nweb -> ".to_vec();
    middle.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    middle.extend_from_slice(b"api:80\n");
    let out = compile_bytes("invalid-utf8", middle);
    assert_has_code("invalid-utf8", &out, Code::NotUtf8);
    assert_eq!(out.sources.line_column(out.diagnostics[0].span()), (3, 8));

    let out = compile_bytes("invalid-utf8-last-byte", b"namespace a\n\xe2\x82".to_vec());
    assert_has_code("invalid-utf8-last-byte", &out, Code::NotUtf8);

    let out = compile_bytes("nul", b"namespace a\0\nweb -> api:80\n".to_vec());
    assert_has_code("nul", &out, Code::Binary);

    let out = compile_bytes("only-nul", vec![0; 4096]);
    assert_has_code("only-nul", &out, Code::Binary);

    let out = compile_bytes("too-large", vec![b'\n'; netpolc::source::MAX_FILE_BYTES + 1]);
    assert_has_code("too-large", &out, Code::FileTooLarge);

    // NUL as a char in a `&str` (an editor plugin could hand us one): no panic, a diagnostic.
    let out = compile_checked("nul-in-str", "namespace a\nweb -> api\0:80\n".to_string());
    assert!(out.has_errors(), "{:?}", codes(&out));
}

#[test]
fn not_utf8_span_ends_on_a_char_boundary() {
    let (text, problem) = netpolc::source::decode(b"namespace a\n# caf\xe9\n".to_vec());
    let d = problem.expect("not UTF-8").into_diagnostic(0);
    let s = d.span();
    assert!(
        text.is_char_boundary(s.start) && text.is_char_boundary(s.end),
        "span {}..{} in {text:?}",
        s.start,
        s.end
    );
}

#[test]
fn crlf_line_endings_compile_like_lf() {
    for path in example_files() {
        let lf = std::fs::read_to_string(&path).expect("read example");
        let crlf = lf.replace('\n', "\r\n");
        let a = compile_checked("lf", lf);
        let b = compile_checked("lf", crlf);
        assert_eq!(codes(&a), codes(&b), "{}: diagnostics differ with CRLF", path.display());
        assert_eq!(a.yaml(), b.yaml(), "{}: YAML differs with CRLF", path.display());
    }
    // Lone CRs and a CRLF continuation.
    let out = compile_checked("lone-cr", "namespace a\rweb -> api:80\r".to_string());
    assert!(!out.diagnostics.is_empty() || !out.policies.is_empty());
    let lf = "namespace a\nallow dns\nweb ->\n  api:80,\n  db:5432\n";
    let a = compile_checked("continued", lf.to_string());
    let b = compile_checked("continued", lf.replace('\n', "\r\n"));
    assert!(!b.has_errors(), "{}", b.render_diagnostics());
    assert_eq!(a.yaml(), b.yaml());
}

#[test]
fn a_byte_order_mark_gives_a_diagnostic_or_compiles() {
    // Decision: a BOM is not part of the language, so either outcome is acceptable
    // here; what matters is no panic and a located diagnostic if it is refused.
    let text = "\u{feff}namespace a\nallow dns\nweb -> api:80\n".to_string();
    let out = compile_checked("bom", text);
    println!("BOM: {:?}\n{}", codes(&out), out.render_diagnostics());
    assert!(!out.diagnostics.is_empty() || !out.policies.is_empty());
    // A BOM in the middle of a file is just a strange character.
    let out = compile_checked("bom-middle", "namespace a\nweb -> \u{feff}api:80\n".to_string());
    assert!(out.has_errors(), "{:?}", codes(&out));
}

// ---- the same through the binary ---------------------------------------------

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a time limit (killing it when exceeded).
fn netpolc(args: &[&Path]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netpolc"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run netpolc");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > time_limit() {
            let _ = child.kill();
            panic!("netpolc {args:?} did not finish within {:?}", time_limit());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn bad_bytes_through_the_binary() {
    let dir = TempDir::new("robustness-bytes");
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("invalid-utf8.np", b"namespace a\nweb -> \xff\xfeapi:80\n".to_vec(), Some("E0002")),
        ("nul.np", b"namespace a\nweb\0 -> api:80\n".to_vec(), Some("E0003")),
        ("empty.np", Vec::new(), Some("E0004")),
        (
            "long.np",
            format!("namespace a\n{}\n", "z".repeat(100_000)).into_bytes(),
            Some("E0005"),
        ),
        ("bom.np", b"\xef\xbb\xbfnamespace a\nallow dns\nweb -> api:80\n".to_vec(), None),
        ("crlf.np", b"namespace a\r\nallow dns\r\nweb -> api:80\r\n".to_vec(), None),
    ];
    for (name, bytes, code) in &cases {
        let path = dir.write(name, bytes);
        let run = netpolc(&[Path::new("build"), &path]);
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
        println!("{name}: exit {:?}\n{}", run.code, run.stderr);
        match code {
            Some(code) => {
                assert_eq!(run.code, Some(1), "{name}: {}", run.stderr);
                assert!(run.stdout.is_empty(), "{name}: output written despite errors");
                assert!(
                    run.stderr.contains(&format!("[{code}]")),
                    "{name}: expected {code} in\n{}",
                    run.stderr
                );
                assert!(run.stderr.contains(&format!("{name}:")), "{name}: no location in\n{}", run.stderr);
            }
            None => {
                // Either compiles or is refused with a located diagnostic; never anything else.
                match run.code {
                    Some(0) => assert!(run.stdout.starts_with("---\n"), "{name}"),
                    Some(1) => {
                        assert!(run.stdout.is_empty(), "{name}");
                        assert!(run.stderr.contains(&format!("{name}:1:")), "{name}: {}", run.stderr);
                    }
                    other => panic!("{name}: unexpected exit {other:?}\n{}", run.stderr),
                }
            }
        }
    }
    // CRLF gives the same policies as LF.
    let lf = dir.write("lf.np", b"namespace a\nallow dns\nweb -> api:80\n");
    let crlf = netpolc(&[Path::new("build"), &dir.join("crlf.np")]);
    let lf = netpolc(&[Path::new("build"), &lf]);
    assert_eq!(crlf.code, Some(0), "{}", crlf.stderr);
    assert_eq!(lf.stdout.replace("lf.np", "crlf.np"), crlf.stdout);

    // More than 16 MiB is refused before parsing.
    let big = dir.write("big.np", vec![b'#'; netpolc::source::MAX_FILE_BYTES + 1]);
    let run = netpolc(&[Path::new("check"), &big]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("[E0006]"), "{}", run.stderr);
}

// ---- random input -------------------------------------------------------------

/// xorshift64*: small, seeded, good enough to pick tokens.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The language's tokens and punctuation, and things that look almost like them.
const ALPHABET: &[&str] = &[
    "namespace ",
    "namespace a\n",
    "workload ",
    "external ",
    "isolate ",
    "allow ",
    "allow dns",
    "dns",
    "world",
    "internet",
    "cluster",
    "except ",
    " in ",
    " notin ",
    "ingress",
    "egress",
    "both",
    "none",
    "meta ",
    "->",
    " -> ",
    "-",
    "--",
    ",",
    ", ",
    ":",
    "/",
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    "\"",
    "\\",
    "#",
    "@",
    "@owner ",
    "=",
    "!=",
    "!",
    "*",
    "\n",
    "\n",
    "\n",
    ",\n",
    "->\n",
    "\r\n",
    "\r",
    " ",
    " ",
    "\t",
    "0",
    "1",
    "53",
    "80",
    "65535",
    "65536",
    "99999999999999999999999",
    "8000-8100",
    "9-1",
    "/udp",
    "/tcp",
    "/sctp",
    "/icmp",
    "web",
    "api",
    "a",
    "x-y",
    "Web",
    "a_b",
    "a.b",
    "app=web",
    "k8s.io/name",
    "-a-",
    "10.0.0.0/8",
    "10.0.0.1/8",
    "10.0.0.0/33",
    "256.0.0.0/8",
    "1.2.3.4",
    "0.0.0.0/0",
    "::/0",
    "fe80::1/64",
    "::",
    "é",
    "日本",
    "🦀",
    "\u{200b}",
    "\u{feff}",
    "\u{301}",
    "\u{0}",
];

fn random_input(rng: &mut Rng) -> String {
    let mut text = String::new();
    if rng.below(3) > 0 {
        text.push_str("namespace a\n");
    }
    let tokens = 1 + rng.below(40);
    for _ in 0..tokens {
        text.push_str(rng.pick(ALPHABET));
        if rng.below(8) == 0 {
            // Long words and numbers now and then.
            text.push_str(&"a".repeat(60 + rng.below(10)));
        }
    }
    text
}

/// A random char boundary of `text` (0..=len).
fn boundary(rng: &mut Rng, text: &str) -> usize {
    let mut at = rng.below(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut text = text.to_string();
    for _ in 0..1 + rng.below(3) {
        let a = boundary(rng, &text);
        let mut b = (a + 1 + rng.below(24)).min(text.len());
        while !text.is_char_boundary(b) {
            b -= 1;
        }
        match rng.below(3) {
            0 => text.replace_range(a..b, ""),
            1 => {
                let mut insert = String::new();
                for _ in 0..1 + rng.below(3) {
                    insert.push_str(rng.pick(ALPHABET));
                }
                text.insert_str(a, &insert);
            }
            _ => {
                let span = text[a..b].to_string();
                let at = boundary(rng, &text);
                text.insert_str(at, &span);
            }
        }
    }
    text
}

fn example_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "np"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// Counts: 3,000 inputs from the alphabet, and 3,000 mutants spread round-robin
/// over the example files (3,000 in all, not per file: 3,000 per file would be
/// 20 times as many, minutes in a debug build). Each case is compiled twice.
/// Measured in a debug build: this whole file takes about 10 s of CPU (most of
/// it the soup and the mutants); compilations are serialised by `COMPILE_LOCK`, so the
/// wall time is about the same on an idle machine (23 s on a loaded 2-core one).
/// The large cases above also run at full size (10 MB, 50,000 targets), now
/// that the compiler is no longer quadratic in them.
const RANDOM_INPUTS: usize = 3_000;
const MUTANTS: usize = 3_000;

/// Runs every case (compiled twice) and checks it; returns how many had errors.
/// One thread: compilations are serialised by `COMPILE_LOCK` anyway.
fn run_all(kind: &str, cases: Vec<String>) -> usize {
    let started = Instant::now();
    let total = cases.len();
    let mut errors = 0;
    for (i, text) in cases.into_iter().enumerate() {
        let case = format!("{kind}-{i}");
        let first = compile_locked(&format!("{case}.np"), &text);
        check_invariants(&case, &text, &first, 5);
        let second = compile_locked(&format!("{case}.np"), &text);
        assert_eq!(
            first.render_diagnostics(),
            second.render_diagnostics(),
            "case `{case}`: diagnostics differ between two runs\ninput: {text:?}"
        );
        assert_eq!(
            first.yaml(),
            second.yaml(),
            "case `{case}`: YAML differs between two runs\ninput: {text:?}"
        );
        if first.has_errors() {
            errors += 1;
        }
        assert!(
            !first.diagnostics.is_empty() || !first.policies.is_empty(),
            "case `{case}`: neither a diagnostic nor a policy\ninput: {text:?}"
        );
    }
    println!("{kind}: {total} cases, {errors} with errors, in {:?}", started.elapsed());
    errors
}

#[test]
fn random_token_soup_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases: Vec<String> = (0..RANDOM_INPUTS).map(|_| random_input(&mut rng)).collect();
    let errors = run_all("soup", cases);
    assert!(errors > RANDOM_INPUTS / 2, "the soup should mostly be wrong");
}

#[test]
fn random_mutations_of_the_examples_never_panic() {
    let sources: Vec<String> = example_files().iter().map(|p| std::fs::read_to_string(p).expect("read")).collect();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let cases: Vec<String> = (0..MUTANTS).map(|i| mutate(&mut rng, &sources[i % sources.len()])).collect();
    run_all("mutant", cases);
}

/// The governance rules, consent and the Rego rules see mutated input too:
/// mutants of the governed examples, compiled under their netpolc.toml (every
/// rule on), and mutants of the Rego examples, checked against their rules.
#[test]
fn random_mutations_under_the_project_rules_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let toml = std::fs::read_to_string(root.join("governance/netpolc.toml")).expect("netpolc.toml");
    let mut governed_config = netpolc::project::read("netpolc.toml", &toml);
    governed_config.today = netpolc::governance::Date::parse("2026-03-01");
    let texts = |dir: &str| -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .expect("examples")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "np"))
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read_to_string(p).expect("read")).collect()
    };
    let (governed_texts, rego_texts) = (texts("governance"), texts("rego"));
    let rules = root.join("rego");
    let compile = |name: &str, text: &str, config: &Config| {
        let _guard = COMPILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut sources = Sources::new();
        sources.add(name, text);
        netpolc::compile(sources, Vec::new(), config)
    };
    let mut rng = Rng(0x5eed_0f90_7e27);
    let (mut governed, mut violated) = (0, 0);
    for i in 0..GOVERNED_MUTANTS {
        let case = format!("governed-{i}");
        let with_rego = i % 4 == 0;
        let (text, config) = if with_rego {
            (mutate(&mut rng, &rego_texts[i % rego_texts.len()]), Config::default())
        } else {
            (mutate(&mut rng, &governed_texts[i % governed_texts.len()]), governed_config.clone())
        };
        let mut first = compile(&format!("{case}.np"), &text, &config);
        check_invariants(&case, &text, &first, 3);
        let second = compile(&format!("{case}.np"), &text, &config);
        assert_eq!(
            first.render_diagnostics(),
            second.render_diagnostics(),
            "case `{case}`\ninput: {text:?}"
        );
        assert_eq!(first.yaml(), second.yaml(), "case `{case}`\ninput: {text:?}");
        governed += usize::from(first.diagnostics.iter().any(|d| d.code.as_str().starts_with("E06")));
        if with_rego {
            netpolc::rego::apply(&rules, &mut first).expect("the example rules load");
            // Violations point at the intents (file 0), and an error still suppresses the output.
            check_invariants(&case, &text, &first, 3);
            violated += usize::from(first.diagnostics.iter().any(|d| d.code == Code::RegoViolation));
        }
    }
    println!("governed: {GOVERNED_MUTANTS} cases, {governed} with governance errors, {violated} with Rego violations");
    // The rules must really be exercised, not only the parser.
    assert!(governed > GOVERNED_MUTANTS / 10, "only {governed} cases hit a governance rule");
    assert!(violated > GOVERNED_MUTANTS / 40, "only {violated} cases broke a Rego rule");
}

/// Mutants of the governed and Rego examples, each compiled twice.
const GOVERNED_MUTANTS: usize = 600;

/// Syntax errors whose messages depend on pest's error detail being on.
const DETAIL_SENSITIVE: &[&str] = &[
    "namespace a\nworkload w = \n",
    "(namespace a\n",
    "namespace a\nworkload w = app=web,\n",
];

#[test]
fn concurrent_compilations_give_the_same_diagnostics() {
    let expected: Vec<String> = DETAIL_SENSITIVE
        .iter()
        .map(|t| compile_str("s.np", t).render_diagnostics())
        .collect();
    let mut differences: Vec<String> = Vec::new();

    // netpolc serialises its own use of pest's process-wide detail switch;
    // compilations on several threads must not see each other's.
    // Real compilations on four threads (rarer: the window is a few instructions wide).
    let started = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let expected = expected.clone();
            std::thread::spawn(move || {
                let mut differences = Vec::new();
                let mut round = 0;
                while started.elapsed() < Duration::from_secs(10) && differences.is_empty() {
                    round += 1;
                    for (text, want) in DETAIL_SENSITIVE.iter().zip(&expected) {
                        let got = compile_str("s.np", text).render_diagnostics();
                        if &got != want {
                            differences.push(format!("concurrent round {round}, input {text:?}:\nexpected:\n{want}\ngot:\n{got}"));
                            break;
                        }
                    }
                }
                differences
            })
        })
        .collect();
    differences.extend(handles.into_iter().flat_map(|h| h.join().expect("worker")));
    assert!(differences.is_empty(), "{}", differences.join("\n---\n"));
}

#[test]
fn a_stray_character_at_the_start_of_a_line_names_a_statement() {
    for text in ["(namespace a\n", "%namespace a\n", "\u{feff}namespace a\n"] {
        let out = compile_locked("s.np", text);
        let e = out.diagnostics.iter().find(|d| d.code == Code::Syntax).expect("E0001");
        assert!(
            e.message.contains("statement") || e.message.contains("namespace") || e.message.contains("endpoint"),
            "{text:?}: {}",
            e.message
        );
    }
}

#[test]
fn severity_is_consistent_with_has_errors() {
    // A tiny sanity check on the API the invariants lean on.
    let out = compile_locked("w.np", "namespace a\nallow dns\nweb -> api:80\nweb -> api:80\n");
    assert!(!out.has_errors());
    assert!(out.diagnostics.iter().all(|d| d.severity() == Severity::Warning));
    assert!(!out.policies.is_empty());
}
