//! The documentation stays true: `docs/errors.md` has one section per
//! diagnostic code, in code order, and every ```np block of the user docs
//! compiles without errors.

use netpolc::Severity;
use netpolc::diagnostics::Code;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Whether `line` opens or closes a fenced code block.
fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```")
}

/// Whether `text` starts with a diagnostic code such as `E0101` or `W0001`.
fn starts_with_code(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 5
        && matches!(bytes[0], b'E' | b'W')
        && bytes[1..5].iter().all(u8::is_ascii_digit)
        && !bytes.get(5).is_some_and(u8::is_ascii_alphanumeric)
}

/// Every Markdown heading outside code blocks whose text starts with a code,
/// as `(line number, level, text)`.
fn code_headings(markdown: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for (i, line) in markdown.lines().enumerate() {
        if is_fence(line) {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let level = line.bytes().take_while(|&b| b == b'#').count();
        if level == 0 {
            continue;
        }
        let Some(text) = line[level..].strip_prefix(' ') else { continue };
        let text = text.trim();
        if starts_with_code(text) {
            out.push((i + 1, level, text.to_string()));
        }
    }
    out
}

#[test]
fn errors_md_has_one_section_per_code_in_order() {
    let path = root().join("docs/errors.md");
    let text = read(&path);
    let headings = code_headings(&text);

    let wrong_level: Vec<String> = headings
        .iter()
        .filter(|(_, level, _)| *level != 2)
        .map(|(line, level, text)| format!("line {line}: `{} {text}` should be a level-2 heading", "#".repeat(*level)))
        .collect();
    assert!(wrong_level.is_empty(), "docs/errors.md:\n{}", wrong_level.join("\n"));

    let found: Vec<&str> = headings.iter().map(|(_, _, text)| text.as_str()).collect();
    let expected: Vec<String> = Code::ALL.iter().map(|c| format!("{}: {}", c.as_str(), c.title())).collect();
    let missing: Vec<&String> = expected.iter().filter(|e| !found.contains(&e.as_str())).collect();
    let unexpected: Vec<&(usize, usize, String)> = headings.iter().filter(|(_, _, t)| !expected.contains(t)).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && found == expected,
        "docs/errors.md must have exactly one `## CODE: title` heading per code, in code order\n\
         missing: {missing:#?}\nunexpected (wrong code or title): {unexpected:#?}\nfound: {found:#?}"
    );
}

/// The ```np blocks of a Markdown text, as (line of the opening fence, content).
fn np_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, bool, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match current.as_mut() {
            None if is_fence(line) => {
                let info = line.trim_start().trim_start_matches('`').trim();
                let lang = info.split([' ', ',', '{']).next().unwrap_or("");
                current = Some((i + 1, lang == "np", String::new()));
            }
            None => {}
            Some(_) if is_fence(line) => {
                if let Some((start, true, text)) = current.take() {
                    blocks.push((start, text));
                }
                current = None;
            }
            Some((_, _, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(current.is_none(), "a code block is not closed");
    blocks
}

#[test]
fn np_blocks_in_the_docs_compile() {
    let mut files = vec![root().join("docs/errors.md"), root().join("docs/language.md")];
    let readme = root().join("README.md");
    if readme.exists() {
        files.push(readme);
    }
    let mut failures = Vec::new();
    let mut compiled = 0;
    for path in &files {
        let shown = path.strip_prefix(root()).unwrap_or(path).display().to_string();
        let blocks = np_blocks(&read(path));
        for (line, text) in blocks {
            compiled += 1;
            let out = netpolc::compile_str("doc.np", &text);
            if out.diagnostics.iter().any(|d| d.severity() == Severity::Error) {
                failures.push(format!(
                    "{shown}:{line}: this np block does not compile:\n{text}\n{}",
                    out.render_diagnostics()
                ));
            }
        }
    }
    assert!(
        compiled >= Code::ALL.len(),
        "expected at least one np block per code, found {compiled}"
    );
    assert!(
        failures.is_empty(),
        "{} np block(s) fail:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
