//! Watch mode: keeps an output folder in step with the `.np` files while
//! people edit them.
//!
//! [`run`] wires the file system (`notify` with `notify-debouncer-full`) and
//! Ctrl-C to a channel of [`Event`]s; [`Session::serve`] is the loop, and
//! works with any event source (the unit tests feed it by hand). Each run
//! recompiles everything (keeping what did not change, [`crate::Cache`]),
//! prints one status line, and writes the folder with
//! [`emit::write_documents`]: only changed files, atomically, stale owned
//! files removed, foreign files untouched. With errors, the last good output
//! stays. On the file system, the compiling happens during the debounce
//! window, and the writing when it ends (decision 0023).

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
    /// These paths changed (created, written, removed or renamed), and have
    /// been quiet for the debounce window since.
    Changed(Vec<PathBuf>),
    /// These paths just changed: the event source reports each change as it
    /// happens, then again in a [`Event::Changed`] once it has been quiet
    /// (see [`Roots::reports_activity`]).
    Activity(Vec<PathBuf>),
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
    /// Whether the event source reports every change at once as
    /// [`Event::Activity`], before its [`Event::Changed`].
    fn reports_activity(&self) -> bool {
        false
    }
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
    /// How many relevant [`Event::Activity`] reports the loop has seen: the
    /// files are as a run read them while this number has not moved since.
    activity: u64,
    /// When the last relevant activity that no run has read yet was seen.
    unread_since: Option<Instant>,
    /// A compilation made during the debounce window, not yet reported,
    /// with the count of [`Session::activity`] when it read the files.
    ahead: Option<(u64, Result<Box<Compiled>, String>)>,
    /// The count of [`Session::activity`] when the last reported run read the files.
    reported: Option<u64>,
}

/// A run's compilation, before its status line is printed.
struct Compiled {
    config: crate::config::Config,
    options: crate::Options,
    loaded: Duration,
    compilation: Compilation,
    /// The result of writing the output folder, when written already.
    written: Option<Result<(emit::FolderReport, usize), emit::FolderError>>,
    /// From the start of the run to the end of compilation.
    took: Duration,
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

/// Whether a change to `path` calls for a new run of a session writing to
/// `output` and watching `roots`.
fn relevant(output: &Path, roots: &[Root], path: &Path) -> bool {
    if path.as_os_str().is_empty() {
        return true; // events were lost: rebuild to be safe
    }
    if path.starts_with(output) {
        return false;
    }
    if roots.iter().any(|r| r.dir == path) {
        return true;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if is_scratch(name) {
        return false;
    }
    let in_folder_root = roots.iter().any(|r| r.recursive && path.starts_with(&r.dir));
    if name == "netpolc.toml" {
        return true;
    }
    if !in_folder_root {
        return roots.iter().any(|r| r.files.iter().any(|f| f == path));
    }
    // A `.np` file, or a folder (new, renamed or removed: it may hold some).
    path.extension().is_some_and(|e| e == "np") || path.is_dir() || path.extension().is_none()
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
            activity: 0,
            unread_since: None,
            ahead: None,
            reported: None,
        }
    }

    /// Whether a change to `path` calls for a new run.
    pub fn relevant(&self, path: &Path) -> bool {
        relevant(&self.output, &self.roots, path)
    }

    fn say(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// Recompiles and rewrites the output folder; prints the status line.
    pub fn run_once(&mut self) -> Outcome {
        let compiled = self.compile(None);
        self.report(compiled, false)
    }

    /// Reads the project file and the `.np` files and compiles them. The
    /// output folder is written as soon as it is final, while lint finishes
    /// (`compile_then`, stage `output` of `--timings`); or, compiling ahead
    /// (`verdict`: the events and where to keep those read), once the
    /// debounced change arrives with no relevant change before it (see
    /// [`wait_for_verdict`]). Otherwise [`Session::report`] writes it.
    fn compile(&mut self, mut verdict: Option<(&Receiver<Event>, &mut Vec<Event>)>) -> Result<Box<Compiled>, String> {
        let started = Instant::now();
        let config = crate::project::configure(&self.options.paths, self.options.config.as_deref()).map_err(|e| e.to_string())?;
        let (sources, early) = crate::source::load(&self.options.paths).map_err(|e| e.to_string())?;
        if sources.files().is_empty() {
            return Err("no `.np` files found".to_string());
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
        let (dir, kept) = (&self.options.output, &mut self.written);
        let is_relevant = |path: &Path| relevant(&self.output, &self.roots, path);
        let patience = 2 * self.options.debounce + POLL;
        let (mut written, mut waited) = (None, Duration::ZERO);
        let mut write = |documents: &[crate::documents::Document]| {
            if let Some((events, backlog)) = verdict.as_mut() {
                let waiting = Instant::now();
                let go = wait_for_verdict(events, backlog, is_relevant, waiting + patience);
                waited = waiting.elapsed();
                if !go {
                    return;
                }
            }
            written = Some(emit::write_documents(dir, documents, Format::Yaml, kept));
        };
        let compilation = crate::compile_then(sources, early, &config, Some(&mut self.cache), options, Some(&mut write));
        Ok(Box::new(Compiled {
            config,
            options,
            loaded,
            compilation,
            written,
            took: started.elapsed().saturating_sub(waited),
        }))
    }

    /// Writes the output folder of a compilation (unless written already),
    /// prints its diagnostics and status line, runs `--exec`. `ahead`: it
    /// was compiled during the debounce window (see [`Session::serve`]).
    fn report(&mut self, compiled: Result<Box<Compiled>, String>, ahead: bool) -> Outcome {
        if self.options.clear {
            self.say("\x1b[2J\x1b[H");
        }
        let compiled = match compiled {
            Ok(compiled) => compiled,
            Err(e) => {
                self.say(&format!("error: {e}\nerror: kept the last good output\n"));
                return Outcome::Io;
            }
        };
        let Compiled {
            config,
            options,
            loaded,
            mut compilation,
            mut written,
            took,
        } = *compiled;
        let writing = Instant::now();
        if written.is_none() && !compilation.has_errors() {
            written = Some(match options.output {
                crate::Output::Objects => emit::write_policies(&self.options.output, &compilation.policies, Format::Yaml),
                crate::Output::Documents(_) => {
                    emit::write_documents(&self.options.output, &compilation.documents, Format::Yaml, &mut self.written)
                }
            });
            compilation.timings.stages.push(("write", writing.elapsed()));
        }
        let elapsed = took + writing.elapsed();
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
            let when = if ahead { ", compiled during the debounce window" } else { "" };
            self.say(&format!("timings (ms{when}): {}\n", ms.join(", ")));
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
    ///
    /// With an event source that reports changes at once
    /// ([`Roots::reports_activity`]), the loop compiles during the debounce
    /// window (decision 0023): once the files have been quiet for a tenth
    /// of the window, it compiles what they hold and keeps the result,
    /// unwritten. When the debounced change arrives, that result is written
    /// and reported if no relevant change was seen since it read the files;
    /// otherwise it is dropped and the run happens then, as it would have.
    /// Either way the output is written at the same moment, from the same
    /// files; compiling ahead only moves the work into the window.
    pub fn serve(&mut self, events: &Receiver<Event>, roots: &mut dyn Roots) {
        for i in 0..self.roots.len() {
            if !self.roots[i].dir.is_dir() {
                let dir = self.roots[i].dir.display().to_string();
                self.say(&format!("warning: `{dir}` does not exist; watching for it to appear\n"));
            }
        }
        let reports_activity = roots.reports_activity();
        let quiet = (self.options.debounce / 10).max(Duration::from_millis(1));
        self.check_roots(roots);
        self.run_now();
        loop {
            let wait = match self.unread_since {
                Some(at) if reports_activity => quiet.saturating_sub(at.elapsed()).min(POLL),
                _ => POLL,
            };
            let mut pending = false;
            match events.recv_timeout(wait) {
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(event) => pending |= self.note(event),
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Gather whatever else is already queued.
            loop {
                match events.try_recv() {
                    Ok(Event::Stop) => return,
                    Ok(event) => pending |= self.note(event),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
            // A root that disappeared is reported once; runs wait until it is back.
            let came_back = self.check_roots(roots);
            let present = self.roots.iter().all(|r| r.present);
            if came_back || (pending && present) {
                self.run_for_change(came_back, reports_activity);
            } else if reports_activity && present && self.unread_since.is_some_and(|at| at.elapsed() >= quiet) {
                let read_at = self.activity;
                self.unread_since = None;
                let mut backlog = Vec::new();
                let compiled = self.compile(Some((events, &mut backlog)));
                let written = matches!(&compiled, Ok(c) if c.written.is_some());
                // The events read while waiting count as if read here.
                let (mut pending, mut stop) = (false, false);
                for event in backlog {
                    match event {
                        Event::Stop => stop = true,
                        event => pending |= self.note(event),
                    }
                }
                if written {
                    // Written on the debounced change, with no relevant change before it.
                    self.report(compiled, true);
                    self.reported = Some(read_at);
                } else {
                    if read_at == self.activity {
                        self.ahead = Some((read_at, compiled));
                    }
                    if pending {
                        self.run_for_change(false, reports_activity);
                    }
                }
                if stop {
                    return;
                }
            }
        }
    }

    /// What the loop does on a relevant debounced change (or a root that came back).
    fn run_for_change(&mut self, came_back: bool, reports_activity: bool) {
        match self.ahead.take() {
            Some((read_at, compiled)) if read_at == self.activity && !came_back => {
                self.report(compiled, true);
                self.reported = Some(read_at);
            }
            // The last run read the files as they are now (a change the
            // debouncer passed on in two parts): nothing to do.
            _ if reports_activity && !came_back && self.reported == Some(self.activity) => {}
            _ => self.run_now(),
        }
    }

    /// Takes note of an event other than [`Event::Stop`]; returns whether it calls for a run.
    fn note(&mut self, event: Event) -> bool {
        match event {
            Event::Changed(paths) => paths.iter().any(|p| self.relevant(p)),
            Event::Activity(paths) => {
                if paths.iter().any(|p| self.relevant(p)) {
                    self.activity += 1;
                    self.unread_since = Some(Instant::now());
                    // What it compiled may be stale now.
                    self.ahead = None;
                }
                false
            }
            Event::Stop => false,
        }
    }

    /// A run of the loop, now: it reads the files as the activity seen so far left them.
    fn run_now(&mut self) {
        self.ahead = None;
        self.unread_since = None;
        self.run_once();
        self.reported = Some(self.activity);
    }
}

/// Whether an event only says that a file was opened, read or closed unchanged.
fn is_read(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    matches!(kind, EventKind::Access(access) if !matches!(access, AccessKind::Close(AccessMode::Write)))
}

/// Reads `events` into `backlog` until the debounced change that a
/// compilation made ahead waits for: true when a relevant
/// [`Event::Changed`] comes first, false when a relevant
/// [`Event::Activity`] (the files changed after they were read),
/// [`Event::Stop`], the end of the events or `deadline` does.
fn wait_for_verdict(events: &Receiver<Event>, backlog: &mut Vec<Event>, relevant: impl Fn(&Path) -> bool, deadline: Instant) -> bool {
    loop {
        let Ok(event) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            return false;
        };
        let verdict = match &event {
            Event::Stop => Some(false),
            Event::Activity(paths) if paths.iter().any(|p| relevant(p)) => Some(false),
            Event::Changed(paths) if paths.iter().any(|p| relevant(p)) => Some(true),
            Event::Activity(_) | Event::Changed(_) => None,
        };
        backlog.push(event);
        if let Some(go) = verdict {
            return go;
        }
    }
}

/// The paths of a raw event that may change what a run reads: none for
/// reads, the empty path (rebuild to be safe) for lost events.
fn changed_paths(event: &notify::Result<notify::Event>) -> Vec<PathBuf> {
    match event {
        Ok(e) if is_read(&e.kind) => Vec::new(),
        Ok(e) if e.paths.is_empty() => vec![PathBuf::new()],
        Ok(e) => e.paths.clone(),
        Err(_) => vec![PathBuf::new()],
    }
}

thread_local! {
    /// Where the watcher that the debouncer is about to build reports each
    /// change (set by [`run`] just before, on the same thread).
    static TAP: std::cell::RefCell<Option<Sender<Event>>> = const { std::cell::RefCell::new(None) };
}

/// The platform's watcher, reporting each change to the loop as
/// [`Event::Activity`] before handing it to the debouncer: one watch per
/// folder serves both, and a change is always reported before the
/// debouncer can pass it on.
struct Tapped(notify::RecommendedWatcher);

impl notify::Watcher for Tapped {
    fn new<F: notify::EventHandler>(mut handler: F, config: notify::Config) -> notify::Result<Self> {
        let tap = TAP.with_borrow_mut(Option::take);
        let watcher = notify::RecommendedWatcher::new(
            move |event: notify::Result<notify::Event>| {
                if let Some(tap) = &tap {
                    let paths = changed_paths(&event);
                    if !paths.is_empty() {
                        let _ = tap.send(Event::Activity(paths));
                    }
                }
                handler.handle_event(event);
            },
            config,
        )?;
        Ok(Tapped(watcher))
    }

    fn watch(&mut self, path: &Path, recursive_mode: notify::RecursiveMode) -> notify::Result<()> {
        self.0.watch(path, recursive_mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.0.unwatch(path)
    }

    fn configure(&mut self, option: notify::Config) -> notify::Result<bool> {
        self.0.configure(option)
    }

    fn kind() -> notify::WatcherKind {
        notify::RecommendedWatcher::kind()
    }
}

/// Adapts the debouncer to [`Roots`].
struct FsRoots(notify_debouncer_full::Debouncer<Tapped, notify_debouncer_full::RecommendedCache>);

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

    fn reports_activity(&self) -> bool {
        true
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
    let changes = tx.clone();
    TAP.set(Some(tx));
    // The debouncer looks for quiet files once per tick: a tenth of the window
    // (not its default quarter) adds at most 5 ms to a 50 ms window, for a
    // wake-up every 5 ms that costs microseconds.
    let tick = (options.debounce / 10).max(Duration::from_millis(1)).min(options.debounce);
    let debouncer = notify_debouncer_full::new_debouncer_opt::<_, Tapped, _>(
        options.debounce,
        Some(tick),
        move |result: notify_debouncer_full::DebounceEventResult| {
            let paths: Vec<PathBuf> = match result {
                // Reading a file is no change (and netpolc reads them all on each run).
                Ok(events) => events.into_iter().flat_map(|e| changed_paths(&Ok(e.event))).collect(),
                // Lost events: rebuild to be safe.
                Err(_) => vec![PathBuf::new()],
            };
            if !paths.is_empty() {
                let _ = changes.send(Event::Changed(paths));
            }
        },
        notify_debouncer_full::RecommendedCache::new(),
        notify::Config::default(),
    );
    TAP.set(None);
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

    /// An event source like the file system's: each change reported at once, then debounced.
    struct Reporting;

    impl Roots for Reporting {
        fn watch(&mut self, _: &Path, _: bool) -> Result<(), String> {
            Ok(())
        }
        fn unwatch(&mut self, _: &Path) {}
        fn reports_activity(&self) -> bool {
            true
        }
    }

    /// Runs a session with timings on `dir` (one file `pol/a.np` on port 80)
    /// while `script` sends events; returns its log.
    fn serve_reporting(dir: &Path, script: impl FnOnce(Sender<Event>, PathBuf) + Send + 'static) -> String {
        let file = dir.join("pol/a.np");
        std::fs::write(&file, "namespace a\nallow dns\nweb -> api:80\n").unwrap();
        let log = Log::default();
        let mut opts = options(dir);
        opts.timings = true;
        let mut session = Session::new(opts, Box::new(log.clone()));
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.join("pol").canonicalize().unwrap().join("a.np");
        let script = std::thread::spawn(move || script(tx, path));
        session.serve(&rx, &mut Reporting);
        script.join().unwrap();
        log.text()
    }

    fn port_written(dir: &Path) -> String {
        let out = std::fs::read_to_string(dir.join("out/a.yaml")).unwrap_or_default();
        let port = out.lines().filter_map(|l| l.split_once("port: ")).find(|(_, p)| *p != "53");
        port.map(|(_, p)| format!("port: {p}")).unwrap_or_default()
    }

    #[test]
    fn a_change_is_compiled_during_the_window_and_written_when_it_ends() {
        let dir = temp("ahead");
        let out = dir.clone();
        let log = serve_reporting(&dir, move |tx, path| {
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(port_written(&out), "port: 80");
            std::fs::write(&path, "namespace a\nallow dns\nweb -> api:81\n").unwrap();
            tx.send(Event::Activity(vec![path.clone()])).unwrap();
            // Long enough to compile; the output waits for the debounced change.
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(port_written(&out), "port: 80", "written before the debounce window ended");
            tx.send(Event::Changed(vec![path.clone()])).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(port_written(&out), "port: 81");
            // The debouncer may pass one change on in two parts: no second run.
            tx.send(Event::Changed(vec![path])).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            tx.send(Event::Stop).unwrap();
        });
        assert_eq!(log.matches("ok: 4 policies").count(), 2, "{log}");
        assert_eq!(log.matches("compiled during the debounce window").count(), 1, "{log}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A change made `wait` after the one that the loop compiled ahead:
    /// what it compiled is stale, and must never be written.
    fn a_change_after_the_read(tag: &str, wait: Duration) {
        let dir = temp(tag);
        let out = dir.clone();
        let log = serve_reporting(&dir, move |tx, path| {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(&path, "namespace a\nallow dns\nweb -> api:81\n").unwrap();
            tx.send(Event::Activity(vec![path.clone()])).unwrap();
            std::thread::sleep(wait);
            assert_eq!(port_written(&out), "port: 80", "written before the debounce window ended");
            std::fs::write(&path, "namespace a\nallow dns\nweb -> api:82\n").unwrap();
            tx.send(Event::Activity(vec![path.clone()])).unwrap();
            tx.send(Event::Changed(vec![path.clone()])).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(port_written(&out), "port: 82");
            tx.send(Event::Stop).unwrap();
        });
        assert_eq!(log.matches("ok: 4 policies").count(), 2, "{log}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_change_after_the_files_were_read_is_compiled_again() {
        // While the compilation made ahead waits for the debounced change.
        a_change_after_the_read("stale", Duration::from_millis(200));
    }

    #[test]
    fn a_stale_compilation_made_ahead_is_dropped() {
        // After it gave up waiting (two windows and 500 ms).
        a_change_after_the_read("patience", Duration::from_millis(800));
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
