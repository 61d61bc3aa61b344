//! The input files of a run: finding them, reading them, and knowing them
//! by a name that does not depend on the machine.

use crate::ast::Span;
use crate::diagnostics::{Code, Diagnostic};
use codespan_reporting::files;
use std::path::{Path, PathBuf};

/// Files larger than this are refused: no intent file is near it, and it
/// keeps a wrong argument (a disk image, a log) from eating memory.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path to show in diagnostics: as the user gave it (or found below a folder they gave).
    pub path: String,
    /// The name used in generated annotations: relative to the folder given
    /// on the command line, or the file name for a file argument, with `/` separators.
    pub name: String,
    /// The text. For a file that is not valid UTF-8, a lossy copy (for diagnostics only).
    pub text: String,
}

/// All input files of a run, sorted by [`SourceFile::name`] so that output
/// never depends on the order of arguments.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
    /// Per file, the byte offset where each line starts.
    line_starts: Vec<Vec<usize>>,
    /// The project file (`netpolc.toml`), shown in diagnostics but not compiled.
    project: Option<usize>,
}

impl Sources {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an in-memory file (`name` serves as both path and name) and returns its index.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> usize {
        let name = name.into();
        self.push(SourceFile {
            path: name.clone(),
            name,
            text: text.into(),
        })
    }

    /// Adds a file and returns its index.
    pub fn push(&mut self, file: SourceFile) -> usize {
        let starts = line_starts(&file.text);
        self.push_with_lines(file, starts)
    }

    /// [`Sources::push`], with the file's [`line_starts`] found already.
    fn push_with_lines(&mut self, file: SourceFile, starts: Vec<usize>) -> usize {
        self.line_starts.push(starts);
        self.files.push(file);
        self.files.len() - 1
    }

    /// Adds the project file, which diagnostics may point into but which
    /// is not compiled, and returns its index; only the first one is kept.
    pub fn push_project_file(&mut self, file: SourceFile) -> usize {
        match self.project {
            Some(index) => index,
            None => {
                let index = self.push(file);
                self.project = Some(index);
                index
            }
        }
    }

    /// The index of the project file, if there is one.
    pub fn project_file(&self) -> Option<usize> {
        self.project
    }

    /// The files.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// File `index`.
    pub fn get(&self, index: usize) -> Option<&SourceFile> {
        self.files.get(index)
    }

    /// The annotation name of file `index` (empty if out of range).
    pub fn name(&self, index: usize) -> &str {
        self.files.get(index).map(|f| f.name.as_str()).unwrap_or("")
    }

    /// 1-based line number of a byte offset.
    pub fn line_of(&self, span: Span) -> usize {
        files::Files::line_index(self, span.file, span.start).map_or(0, |index| index + 1)
    }

    /// 1-based line and column (in characters) of the start of a span.
    pub fn line_column(&self, span: Span) -> (usize, usize) {
        let Some(f) = self.files.get(span.file) else { return (0, 0) };
        let start = span.start.min(f.text.len());
        let before = f.text.get(..start).unwrap_or("");
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (self.line_of(span), before[line_start..].chars().count() + 1)
    }

    /// The source text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        self.files
            .get(span.file)
            .and_then(|f| f.text.get(span.start..span.end))
            .unwrap_or("")
    }

    /// Where line `line` (0-based) of file `file` starts; one past the last
    /// line, the end of the text.
    fn line_start(&self, file: usize, line: usize) -> Result<usize, files::Error> {
        let (Some(f), Some(starts)) = (self.files.get(file), self.line_starts.get(file)) else {
            return Err(files::Error::FileMissing);
        };
        match line.cmp(&starts.len()) {
            std::cmp::Ordering::Less => Ok(starts[line]),
            std::cmp::Ordering::Equal => Ok(f.text.len()),
            std::cmp::Ordering::Greater => Err(files::Error::LineTooLarge {
                given: line,
                max: starts.len() - 1,
            }),
        }
    }
}

/// The renderer of diagnostics reads the files through the line table
/// each file got when it was added, instead of building its own.
impl<'a> files::Files<'a> for Sources {
    type FileId = usize;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, file: usize) -> Result<&'a str, files::Error> {
        self.files.get(file).map(|f| f.path.as_str()).ok_or(files::Error::FileMissing)
    }

    fn source(&'a self, file: usize) -> Result<&'a str, files::Error> {
        self.files.get(file).map(|f| f.text.as_str()).ok_or(files::Error::FileMissing)
    }

    fn line_index(&'a self, file: usize, byte: usize) -> Result<usize, files::Error> {
        let starts = self.line_starts.get(file).ok_or(files::Error::FileMissing)?;
        // The first line starts at 0: every byte is at or after it.
        Ok(starts.partition_point(|&start| start <= byte) - 1)
    }

    fn line_range(&'a self, file: usize, line: usize) -> Result<std::ops::Range<usize>, files::Error> {
        Ok(self.line_start(file, line)?..self.line_start(file, line + 1)?)
    }
}

/// A failure to read the inputs at all (exit code 2), as opposed to a problem in their content.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Finds every `.np` file named by `paths` (folders are searched recursively),
/// reads them, and returns them sorted by name, with a diagnostic for each
/// file that cannot be compiled as text (binary, not UTF-8, too large).
pub fn load(paths: &[PathBuf]) -> Result<(Sources, Vec<Diagnostic>), InputError> {
    let mut sources = Sources::new();
    let diagnostics = add_files(&mut sources, paths, "np")?;
    Ok((sources, diagnostics))
}

/// Adds to `sources` every file named by `paths` whose name ends in
/// `.extension` (folders are searched recursively; files named directly are
/// taken whatever their name), sorted by name, and returns a diagnostic for
/// each file that is not text.
pub fn add_files(sources: &mut Sources, paths: &[PathBuf], extension: &str) -> Result<Vec<Diagnostic>, InputError> {
    let mut found: Vec<(String, String, PathBuf)> = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| InputError(format!("cannot read `{}`: {}", path.display(), lower_io(&e))))?;
        if meta.is_dir() {
            let mut below = Vec::new();
            walk(path, extension, &mut below)?;
            for file in below {
                let relative = file.strip_prefix(path).unwrap_or(&file);
                found.push((slash_path(relative), display_path(&file), file));
            }
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| display_path(path));
            found.push((name, display_path(path), path.clone()));
        }
    }
    found.sort();
    found.dedup_by(|a, b| a.2 == b.2);

    // Read, decoded and split into lines on every core; added in order.
    let read = crate::parallel::map(&found, |_, (_, shown, path)| {
        let bytes = std::fs::read(path).map_err(|e| InputError(format!("cannot read `{shown}`: {}", lower_io(&e))))?;
        let (text, problem) = decode(bytes);
        let starts = line_starts(&text);
        Ok((text, problem, starts))
    });
    let mut diagnostics = Vec::new();
    for ((name, shown, _), read) in found.into_iter().zip(read) {
        let (text, problem, starts) = read?;
        let index = sources.push_with_lines(SourceFile { path: shown, name, text }, starts);
        if let Some(problem) = problem {
            diagnostics.push(problem.into_diagnostic(index));
        }
    }
    Ok(diagnostics)
}

/// Where each line of `text` starts.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

/// Why a file's bytes are not a source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeProblem {
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge(usize),
    /// Contains NUL bytes.
    Binary,
    /// Invalid UTF-8 at this byte offset.
    NotUtf8(usize),
}

impl DecodeProblem {
    /// The diagnostic for file `file`.
    pub fn into_diagnostic(self, file: usize) -> Diagnostic {
        match self {
            DecodeProblem::TooLarge(n) => Diagnostic::file_level(
                Code::FileTooLarge,
                file,
                format!("file is {n} bytes, more than the {MAX_FILE_BYTES} an intent file may have"),
            )
            .without_source()
            .with_help("is this the right file? split large policy sets into several files"),
            DecodeProblem::Binary => Diagnostic::file_level(Code::Binary, file, "file is binary, not an intent file")
                .without_source()
                .with_help("only `.np` text files can be compiled"),
            DecodeProblem::NotUtf8(at) => Diagnostic::new(
                Code::NotUtf8,
                // The lossy copy shows the bad byte as U+FFFD, three bytes long.
                Span {
                    file,
                    start: at,
                    end: at + '\u{fffd}'.len_utf8(),
                },
                "file is not valid UTF-8",
            )
            .with_label("invalid byte here")
            .with_help("save the file as UTF-8"),
        }
    }
}

/// Turns bytes into text, or says why they are not text. The text returned
/// with a problem is for showing the diagnostic only.
pub fn decode(bytes: Vec<u8>) -> (String, Option<DecodeProblem>) {
    if bytes.len() > MAX_FILE_BYTES {
        return (String::new(), Some(DecodeProblem::TooLarge(bytes.len())));
    }
    if bytes.contains(&0) {
        return (String::new(), Some(DecodeProblem::Binary));
    }
    match String::from_utf8(bytes) {
        // Editors on Windows may start a UTF-8 file with a byte-order mark; it carries no meaning.
        Ok(text) => match text.strip_prefix('\u{feff}') {
            Some(rest) => (rest.to_string(), None),
            None => (text, None),
        },
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(DecodeProblem::NotUtf8(at)))
        }
    }
}

fn walk(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let entries = std::fs::read_dir(dir).map_err(|e| InputError(format!("cannot read folder `{}`: {}", dir.display(), lower_io(&e))))?;
    for entry in entries {
        let entry = entry.map_err(|e| InputError(format!("cannot read folder `{}`: {}", dir.display(), lower_io(&e))))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| InputError(format!("cannot read `{}`: {}", path.display(), lower_io(&e))))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if kind.is_dir() && !hidden {
            walk(&path, extension, out)?;
        } else if path.extension().is_some_and(|e| e == extension) && !hidden && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn display_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// An I/O error as a lower-case phrase.
pub fn lower_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codespan_reporting::files::{Files, SimpleFiles};

    /// The renderer must see the same files whether it reads them through
    /// `Sources` or through codespan's own `SimpleFiles`.
    #[test]
    fn sources_answer_the_renderer_as_codespan_files_do() {
        let texts = [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "namespace x\r\nweb -> api:80\r\n",
            "\n\nx\n\n",
            "é\nü -> ß\n",
        ];
        let mut sources = Sources::new();
        let mut reference = SimpleFiles::new();
        for (i, text) in texts.iter().enumerate() {
            sources.add(format!("f{i}.np"), *text);
            reference.add(format!("f{i}.np"), *text);
        }
        for (id, text) in texts.iter().enumerate() {
            assert_eq!(sources.name(id), reference.name(id).expect("file").as_str());
            assert_eq!(Files::source(&sources, id).expect("file"), reference.source(id).expect("file"));
            for byte in 0..=text.len() + 1 {
                assert_eq!(
                    Files::line_index(&sources, id, byte).ok(),
                    reference.line_index(id, byte).ok(),
                    "{text:?} byte {byte}"
                );
            }
            for line in 0..text.lines().count() + 3 {
                assert_eq!(
                    sources.line_range(id, line).map_err(|e| e.to_string()),
                    reference.line_range(id, line).map_err(|e| e.to_string()),
                    "{text:?} line {line}"
                );
            }
        }
        let missing = texts.len();
        assert!(Files::source(&sources, missing).is_err() && sources.line_range(missing, 0).is_err());
    }
}
