//! Watch mode: keeps an output folder in step with the `.np` files while
//! people edit them.
//!
//! [`run`] wires the file system (`notify` with `notify-debouncer-full`) and
//! Ctrl-C to a channel of [`Event`]s; [`Session::serve`] is the loop, and
//! works with any event source (the unit tests feed it by hand). Each run
//! recompiles everything, prints one status line, and writes the folder with
//! [`emit::write_policies`]: only changed files, atomically, stale owned files
//! removed, foreign files untouched. With errors, the last good output stays.

use crate::Compilation;
use crate::emit::{self, Format};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How often a root that disappeared is looked for.
pub const POLL: Duration = Duration::from_millis(500);

/// What the watch loop reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// These paths changed (created, written, removed or renamed).
    Changed(Vec<PathBuf>),
    /// Stop cleanly (Ctrl-C).
    Stop,
}

/// The settings of a watch session.
#[derive(Debug, Clone)]
pub struct Options {
    /// `.np` files and folders, as given on the command line.
    pub paths: Vec<PathBuf>,
    /// The output folder.
    pub output: PathBuf,
    /// How long the file system must be quiet before a run.
    pub debounce: Duration,
    /// A shell command run after each successful regeneration.
    pub exec: Option<String>,
    /// Clear the screen before each run.
    pub clear: bool,
    /// Print the connectivity delta against the previous good state.
    pub diff: bool,
    /// Colour the diagnostics.
    pub color: bool,
    /// The project file given with `--config`; else it is looked for above
    /// the paths at each run, so that edits to it apply at once.
    pub config: Option<PathBuf>,
    /// Print how long each stage of each run took (`--timings`).
    pub timings: bool,
}

/// How the loop starts and stops watching a root.
pub trait Roots {
    /// Starts watching `root` (recursively or not).
    fn watch(&mut self, root: &Path, recursive: bool) -> Result<(), String>;
    /// Stops watching `root` (it disappeared).
    fn unwatch(&mut self, root: &Path);
}

/// A [`Roots`] that does nothing, for event sources that are not the file system.
#[derive(Debug, Default)]
pub struct NoRoots;

impl Roots for NoRoots {
    fn watch(&mut self, _: &Path, _: bool) -> Result<(), String> {
        Ok(())
    }
    fn unwatch(&mut self, _: &Path) {}
}

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The output folder holds the new policies.
    Written,
    /// The input has errors; the last good output was kept.
    Errors,
    /// The input could not be read or the folder not written.
    Io,
}

/// One watched folder: a folder argument, or the parent of file arguments.
#[derive(Debug, Clone)]
struct Root {
    dir: PathBuf,
    recursive: bool,
    /// For the parent of file arguments: the files that count.
    files: Vec<PathBuf>,
    present: bool,
}

/// A watch session: the settings, the watched roots, and the last good state.
pub struct Session {
    options: Options,
    output: PathBuf,
    roots: Vec<Root>,
    last_good: Option<Compilation>,
    /// What the last run built: an unchanged file is not parsed again, an
    /// object built from unchanged inputs not built again.
    cache: crate::Cache,
    /// The last run's diagnostics as text: most stay the same from one save to the next.
    rendered: crate::diagnostics::Kept,
    /// What each output file was made of: unchanged files are not read again.
    written: emit::Written,
    out: Box<dyn Write>,
}

/// A path made absolute and, where it exists, canonical, so that event paths compare.
fn normal(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => parent.canonicalize().map_or(abs.clone(), |p| p.join(name)),
        _ => abs,
    }
}

/// Watches `file` through its folder, shared with the other files there.
fn add_file_root(roots: &mut Vec<Root>, file: PathBuf) {
    let dir = file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    match roots.iter_mut().find(|r| r.dir == dir && !r.recursive) {
        Some(r) => r.files.push(file),
        None => roots.push(Root {
            dir,
            recursive: false,
            files: vec![file],
            present: false,
        }),
    }
}

/// Whether a file name belongs to an editor's scratch files or is hidden.
pub fn is_scratch(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name == "4913"
        || [".swp", ".swx", ".swo", ".tmp", ".bak"].iter().any(|e| name.ends_with(e))
}

impl Session {
    /// A session writing its status lines to `out`.
    pub fn new(options: Options, out: Box<dyn Write>) -> Session {
        let output = normal(&options.output);
        let mut roots: Vec<Root> = Vec::new();
        for p in &options.paths {
            let is_file = p.is_file() || p.extension().is_some_and(|e| e == "np");
            if is_file {
                add_file_root(&mut roots, normal(p));
            } else {
                roots.push(Root {
                    dir: normal(p),
                    recursive: true,
                    files: Vec::new(),
                    present: false,
                });
            }
        }
        // The project file may sit above the folders (at the repository's
        // root): watch it too, so that editing it recompiles.
        let project = match &options.config {
            Some(path) => Some(path.clone()),
            None => crate::project::discover(&options.paths).ok().flatten(),
        };
        if let Some(file) = project.map(|p| normal(&p))
            && !roots.iter().any(|r| r.recursive && file.starts_with(&r.dir))
        {
            add_file_root(&mut roots, file);
        }
        Session {
            options,
            output,
            roots,
            last_good: None,
            cache: crate::Cache::default(),
            rendered: crate::diagnostics::Kept::default(),
            written: emit::Written::default(),
            out,
        }
    }

    /// Whether a change to `path` calls for a new run.
    pub fn relevant(&self, path: &Path) -> bool {
        if path.as_os_str().is_empty() {
            return true; // events were lost: rebuild to be safe
        }
        if path.starts_with(&self.output) {
            return false;
        }
        if self.roots.iter().any(|r| r.dir == path) {
            return true;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        if is_scratch(name) {
            return false;
        }
        let in_folder_root = self.roots.iter().any(|r| r.recursive && path.starts_with(&r.dir));
        if name == "netpolc.toml" {
            return true;
        }
        if !in_folder_root {
            return self.roots.iter().any(|r| r.files.iter().any(|f| f == path));
        }
        // A `.np` file, or a folder (new, renamed or removed: it may hold some).
        path.extension().is_some_and(|e| e == "np") || path.is_dir() || path.extension().is_none()
    }

    fn say(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// Recompiles and rewrites the output folder; prints the status line.
    pub fn run_once(&mut self) -> Outcome {
        if self.options.clear {
            self.say("\x1b[2J\x1b[H");
        }
        let started = Instant::now();
        let config = match crate::project::configure(&self.options.paths, self.options.config.as_deref()) {
            Ok(config) => config,
            Err(e) => {
                self.say(&format!("error: {e}\nerror: kept the last good output\n"));
                return Outcome::Io;
            }
        };
        let (sources, early) = match crate::source::load(&self.options.paths) {
            Ok(loaded) => loaded,
            Err(e) => {
                self.say(&format!("error: {e}\nerror: kept the last good output\n"));
                return Outcome::Io;
            }
        };
        if sources.files().is_empty() {
            self.say("error: no `.np` files found\nerror: kept the last good output\n");
            return Outcome::Io;
        }
        // `--diff` compares the objects of two runs; otherwise only their text is kept.
        let options = crate::Options {
            verification: crate::Verification::Expectations,
            output: if self.options.diff {
                crate::Output::Objects
            } else {
                crate::Output::Documents(Format::Yaml)
            },
        };
        let loaded = started.elapsed();
        // The output is written as soon as it is final, while lint finishes
        // (`compile_then`, stage `output` of `--timings`). Otherwise (the
        // objects of `--diff`, the model of `expect`) it is written after.
        let (dir, kept) = (&self.options.output, &mut self.written);
        let mut written = None;
        let mut write = |documents: &[crate::documents::Document]| {
            written = Some(emit::write_documents(dir, documents, Format::Yaml, kept));
        };
        let mut compilation = crate::compile_then(sources, early, &config, Some(&mut self.cache), options, Some(&mut write));
        if written.is_none() && !compilation.has_errors() {
            let at = Instant::now();
            written = Some(match options.output {
                crate::Output::Objects => emit::write_policies(&self.options.output, &compilation.policies, Format::Yaml),
                crate::Output::Documents(_) => {
                    emit::write_documents(&self.options.output, &compilation.documents, Format::Yaml, &mut self.written)
                }
            });
            compilation.timings.stages.push(("write", at.elapsed()));
        }
        let elapsed = started.elapsed();
        let wrote = Instant::now();
        if !compilation.diagnostics.is_empty() {
            let mut text = Vec::new();
            let (diagnostics, sources) = (&compilation.diagnostics, &compilation.sources);
            // Writing into a Vec cannot fail.
            let _ = crate::diagnostics::write_keeping(diagnostics, sources, self.options.color, &mut self.rendered, &mut text);
            let _ = self.out.write_all(&text);
        }
        let report = match written {
            None => {
                self.say("error: kept the last good output\n");
                return Outcome::Errors;
            }
            Some(Ok((report, _))) => report,
            Some(Err(e)) => {
                self.say(&format!("error: {e}\nerror: kept the last good output\n"));
                return Outcome::Io;
            }
        };
        if self.options.timings {
            let mut stages = vec![("load", loaded)];
            stages.extend(compilation.timings.stages.iter().copied());
            stages.push(("report", wrote.elapsed()));
            let ms: Vec<String> = stages.iter().map(|(s, d)| format!("{s} {:.1}", d.as_secs_f64() * 1000.0)).collect();
            self.say(&format!("timings (ms): {}\n", ms.join(", ")));
        }
        let mut namespaces: Vec<&str> = match options.output {
            crate::Output::Objects => compilation
                .policies
                .iter()
                .filter_map(|p| p.metadata.namespace.as_deref())
                .collect(),
            crate::Output::Documents(_) => compilation.documents.iter().map(crate::documents::Document::namespace).collect(),
        };
        namespaces.dedup();
        let mut line = format!(
            "ok: {} policies in {} namespaces, {} ms, {} file{} written",
            compilation.policies.len() + compilation.documents.len(),
            namespaces.len(),
            elapsed.as_millis(),
            report.written.len(),
            if report.written.len() == 1 { "" } else { "s" }
        );
        if !report.removed.is_empty() {
            line.push_str(&format!(", {} removed", report.removed.len()));
        }
        if self.options.diff
            && let Some(old) = &self.last_good
        {
            let old_version = crate::diff::Version {
                program: &old.program,
                policies: &old.policies,
            };
            let new_version = crate::diff::Version {
                program: &compilation.program,
                policies: &compilation.policies,
            };
            let delta = crate::diff::diff(&old_version, &new_version, &config, &config.annotation_prefix);
            let text = crate::diff::text(&delta);
            self.say(&text);
        }
        if let Some(cmd) = self.options.exec.clone() {
            let status = std::process::Command::new("sh").arg("-c").arg(&cmd).status();
            match status {
                Ok(s) => match s.code() {
                    Some(code) => line.push_str(&format!("; exec exited with {code}")),
                    None => line.push_str("; exec was killed by a signal"),
                },
                Err(e) => line.push_str(&format!("; exec failed to start: {e}")),
            }
        }
        line.push('\n');
        self.say(&line);
        self.last_good = Some(compilation);
        Outcome::Written
    }

    /// Starts watching the roots that exist; reports those that do not.
    fn check_roots(&mut self, roots: &mut dyn Roots) -> bool {
        let mut came_back = false;
        for i in 0..self.roots.len() {
            let root = self.roots[i].clone();
            let exists = root.dir.is_dir();
            if exists && !root.present {
                match roots.watch(&root.dir, root.recursive) {
                    Ok(()) => {
                        self.roots[i].present = true;
                        came_back = true;
                    }
                    Err(e) => self.say(&format!("warning: cannot watch `{}`: {e}\n", root.dir.display())),
                }
            } else if !exists && root.present {
                roots.unwatch(&root.dir);
                self.roots[i].present = false;
                self.say(&format!(
                    "warning: `{}` disappeared; watching for it to come back\n",
                    root.dir.display()
                ));
            }
        }
        came_back
    }

    /// The loop: a first run, then a run after each relevant change, until
    /// [`Event::Stop`] or the end of the event source. Events that arrive
    /// during a run are gathered into at most one more run.
    pub fn serve(&mut self, events: &Receiver<Event>, roots: &mut dyn Roots) {
        for i in 0..self.roots.len() {
            if !self.roots[i].dir.is_dir() {
                let dir = self.roots[i].dir.display().to_string();
                self.say(&format!("warning: `{dir}` does not exist; watching for it to appear\n"));
            }
        }
        self.check_roots(roots);
        self.run_once();
        loop {
            let mut pending = false;
            match events.recv_timeout(POLL) {
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Event::Changed(paths)) => pending |= paths.iter().any(|p| self.relevant(p)),
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Gather whatever else is already queued.
            loop {
                match events.try_recv() {
                    Ok(Event::Stop) => return,
                    Ok(Event::Changed(paths)) => pending |= paths.iter().any(|p| self.relevant(p)),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
            // A root that disappeared is reported once; runs wait until it is back.
            let came_back = self.check_roots(roots);
            if came_back || (pending && self.roots.iter().all(|r| r.present)) {
                self.run_once();
            }
        }
    }
}

/// Whether an event only says that a file was opened, read or closed unchanged.
fn is_read(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    matches!(kind, EventKind::Access(access) if !matches!(access, AccessKind::Close(AccessMode::Write)))
}

/// Adapts the debouncer to [`Roots`].
struct FsRoots(notify_debouncer_full::Debouncer<notify::RecommendedWatcher, notify_debouncer_full::RecommendedCache>);

impl Roots for FsRoots {
    fn watch(&mut self, root: &Path, recursive: bool) -> Result<(), String> {
        let mode = if recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        self.0.watch(root, mode).map_err(|e| e.to_string())
    }

    fn unwatch(&mut self, root: &Path) {
        let _ = self.0.unwatch(root);
    }
}

/// Runs watch mode on the real file system until Ctrl-C. Returns the exit
/// code: 0 after Ctrl-C, 2 when watching cannot start.
pub fn run(options: Options) -> u8 {
    let (tx, rx): (Sender<Event>, Receiver<Event>) = std::sync::mpsc::channel();
    let stop = tx.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop.send(Event::Stop);
    }) {
        eprintln!("error: cannot handle Ctrl-C: {e}");
        return 2;
    }
    let changes = tx;
    // The debouncer looks for quiet files once per tick: a tenth of the window
    // (not its default quarter) adds at most 5 ms to a 50 ms window, for a
    // wake-up every 5 ms that costs microseconds.
    let tick = (options.debounce / 10).max(Duration::from_millis(1)).min(options.debounce);
    let debouncer = notify_debouncer_full::new_debouncer(
        options.debounce,
        Some(tick),
        move |result: notify_debouncer_full::DebounceEventResult| {
            let paths: Vec<PathBuf> = match result {
                // Reading a file is no change (and netpolc reads them all on each run).
                Ok(events) => events
                    .into_iter()
                    .filter(|e| !is_read(&e.event.kind))
                    .flat_map(|e| e.event.paths.clone())
                    .collect(),
                // Lost events: rebuild to be safe.
                Err(_) => vec![PathBuf::new()],
            };
            if !paths.is_empty() {
                let _ = changes.send(Event::Changed(paths));
            }
        },
    );
    let debouncer = match debouncer {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot watch the file system: {e}");
            return 2;
        }
    };
    let mut roots = FsRoots(debouncer);
    let mut session = Session::new(options, Box::new(std::io::stderr()));
    session.serve(&rx, &mut roots);
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log {
        fn text(&self) -> String {
            self.0.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("netpolc-watch-unit-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("pol")).unwrap();
        dir
    }

    fn options(dir: &Path) -> Options {
        Options {
            paths: vec![dir.join("pol")],
            output: dir.join("out"),
            debounce: Duration::from_millis(50),
            exec: None,
            clear: false,
            diff: false,
            color: false,
            config: None,
            timings: false,
        }
    }

    #[test]
    fn scratch_names() {
        for name in [".a.np.swp", "a.np~", ".#a.np", "4913", "a.np.swp", "a.np.tmp", ".hidden.np"] {
            assert!(is_scratch(name), "{name}");
        }
        for name in ["a.np", "netpolc.toml", "team"] {
            assert!(!is_scratch(name), "{name}");
        }
    }

    #[test]
    fn what_counts_as_a_change() {
        let dir = temp("relevant");
        std::fs::create_dir_all(dir.join("pol/sub")).unwrap();
        let session = Session::new(options(&dir), Box::new(Log::default()));
        let pol = dir.join("pol").canonicalize().unwrap();
        assert!(session.relevant(&pol.join("a.np")));
        assert!(session.relevant(&pol.join("sub/b.np")));
        assert!(session.relevant(&pol.join("sub")), "a folder may hold `.np` files");
        assert!(session.relevant(&pol.join("netpolc.toml")));
        assert!(session.relevant(&pol), "the root itself");
        assert!(!session.relevant(&pol.join("notes.md")));
        assert!(!session.relevant(&pol.join(".a.np.swp")));
        assert!(!session.relevant(&pol.join("a.np~")));
        let out = dir.join("out").canonicalize().unwrap_or_else(|_| normal(&dir.join("out")));
        assert!(!session.relevant(&out.join("a.np")), "the output folder is ignored");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_argument_watches_only_that_file() {
        let dir = temp("file");
        std::fs::write(dir.join("pol/a.np"), "namespace a\nallow dns\n").unwrap();
        let mut opts = options(&dir);
        opts.paths = vec![dir.join("pol/a.np")];
        let session = Session::new(opts, Box::new(Log::default()));
        let pol = dir.join("pol").canonicalize().unwrap();
        assert!(session.relevant(&pol.join("a.np")));
        assert!(!session.relevant(&pol.join("b.np")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_loop_runs_on_relevant_changes_and_stops() {
        let dir = temp("serve");
        let file = dir.join("pol/a.np");
        std::fs::write(&file, "namespace a\nallow dns\nweb -> api:80\n").unwrap();
        let log = Log::default();
        let mut session = Session::new(options(&dir), Box::new(log.clone()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pol = dir.join("pol").canonicalize().unwrap();
        std::fs::write(&file, "namespace a\nallow dns\nweb -> api:81\n").unwrap();
        // Two relevant changes queued together make one run (queued before
        // the loop starts, so that a quick first run cannot split them); an
        // irrelevant one none.
        tx.send(Event::Changed(vec![pol.join("a.np")])).unwrap();
        tx.send(Event::Changed(vec![pol.join("a.np")])).unwrap();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            tx.send(Event::Changed(vec![pol.join("notes.md")])).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            tx.send(Event::Stop).unwrap();
        });
        session.serve(&rx, &mut NoRoots);
        sender.join().unwrap();
        let text = log.text();
        assert_eq!(text.matches("ok: 4 policies in 1 namespaces").count(), 2, "{text}");
        let out = std::fs::read_to_string(dir.join("out/a.yaml")).unwrap();
        assert!(out.contains("port: 81"), "{out}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_keep_the_last_good_output() {
        let dir = temp("errors");
        let file = dir.join("pol/a.np");
        std::fs::write(&file, "namespace a\nallow dns\nweb -> api:80\n").unwrap();
        let log = Log::default();
        let mut session = Session::new(options(&dir), Box::new(log.clone()));
        assert_eq!(session.run_once(), Outcome::Written);
        let good = std::fs::read_to_string(dir.join("out/a.yaml")).unwrap();
        std::fs::write(&file, "namespace a\nweb ->\n").unwrap();
        assert_eq!(session.run_once(), Outcome::Errors);
        assert_eq!(std::fs::read_to_string(dir.join("out/a.yaml")).unwrap(), good);
        assert!(log.text().ends_with("error: kept the last good output\n"), "{}", log.text());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
