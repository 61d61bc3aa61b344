//! `netpolc watch` driven as a user meets it: the real binary, real files,
//! edits in every shape editors make them, and the output folder checked
//! after each step, with bounded waits.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

mod support;
use support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_netpolc");
const LIMIT: Duration = Duration::from_secs(10);

/// A scratch folder with the policies in `pol/` and the output in `out/`.
fn scratch(tag: &str) -> TempDir {
    let dir = TempDir::new(&format!("watch-{tag}"));
    std::fs::create_dir_all(dir.join("pol")).expect("create temp dir");
    dir
}

impl TempDir {
    fn pol(&self, name: &str) -> PathBuf {
        self.join("pol").join(name)
    }
    fn out(&self, name: &str) -> PathBuf {
        self.join("out").join(name)
    }
}

/// A running `netpolc watch`, its stderr gathered line by line.
struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    fn start(dir: &TempDir, extra: &[&str]) -> Watch {
        let mut child = Command::new(BIN)
            .args(["--color", "never", "watch", "pol", "-o", "out"])
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start netpolc watch");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        Watch { child, lines }
    }

    fn count(&self, prefix: &str) -> usize {
        self.lines.lock().expect("lines").iter().filter(|l| l.starts_with(prefix)).count()
    }

    fn log(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Waits until at least `n` lines start with `prefix`.
    #[track_caller]
    fn wait_lines(&self, prefix: &str, n: usize) {
        let log = || self.log();
        wait(|| self.count(prefix) >= n, &format!("{n} lines starting with `{prefix}`"), log);
    }

    /// Waits until no new line has come for 300 ms (the run in progress has printed its status).
    fn settle(&self) {
        let started = Instant::now();
        loop {
            let n = self.lines.lock().expect("lines").len();
            std::thread::sleep(Duration::from_millis(300));
            if self.lines.lock().expect("lines").len() == n || started.elapsed() > LIMIT {
                return;
            }
        }
    }

    /// Sends SIGINT and returns the exit code.
    fn interrupt(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().expect("run kill");
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if started.elapsed() > LIMIT {
                let _ = self.child.kill();
                panic!("netpolc watch did not stop on SIGINT\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[track_caller]
fn wait(mut ready: impl FnMut() -> bool, what: &str, log: impl Fn() -> String) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < LIMIT, "waited {LIMIT:?} for {what}\nlog:\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Every file of the output folder with its content and modification time.
fn snapshot(dir: &TempDir) -> BTreeMap<String, (String, SystemTime)> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("out")).expect("read out").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let mtime = entry.metadata().and_then(|m| m.modified()).expect("mtime");
        files.insert(name, (text, mtime));
    }
    files
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

const ALPHA: &str = "namespace alpha\nallow dns\nweb -> api:80\n";
const BETA: &str = "namespace beta\nallow dns\nweb -> api:80\n";

#[test]
fn follows_edits_new_renamed_and_deleted_files_and_stops_on_sigint() {
    let dir = scratch("follow");
    write(&dir.pol("alpha.np"), ALPHA);
    write(&dir.pol("beta.np"), BETA);
    std::fs::create_dir_all(dir.join("out")).expect("out");
    write(&dir.out("README.txt"), "not netpolc's\n");
    let w = Watch::start(&dir, &[]);

    // Initial build.
    w.wait_lines("ok: ", 1);
    assert!(w.log().contains("ok: 8 policies in 2 namespaces, "), "{}", w.log());
    assert!(read(&dir.out("alpha.yaml")).is_some_and(|t| t.contains("port: 80")));
    assert!(read(&dir.out("beta.yaml")).is_some());
    let before = snapshot(&dir);

    // An edit rewrites that namespace's file only.
    write(&dir.pol("alpha.np"), &ALPHA.replace(":80", ":81"));
    wait(
        || read(&dir.out("alpha.yaml")).is_some_and(|t| t.contains("port: 81")),
        "alpha.yaml with port 81",
        || w.log(),
    );
    w.wait_lines("ok: ", 2);
    let after = snapshot(&dir);
    assert_eq!(before["beta.yaml"], after["beta.yaml"], "beta.yaml must not be rewritten");
    assert_eq!(before["kustomization.yaml"], after["kustomization.yaml"]);

    // A new file with a new namespace: a new output file, listed in the kustomization.
    write(&dir.pol("gamma.np"), "namespace gamma\nallow dns\nweb -> api:80\n");
    wait(|| dir.out("gamma.yaml").exists(), "gamma.yaml", || w.log());
    wait(
        || read(&dir.out("kustomization.yaml")).is_some_and(|t| t.contains("- gamma.yaml")),
        "gamma.yaml in the kustomization",
        || w.log(),
    );
    // The status line comes after the last file (the manifest) is in place.
    w.wait_lines("ok: ", 3);
    let oks = w.count("ok: ");

    // An invalid state: an error line, and the output untouched.
    let good = snapshot(&dir);
    write(&dir.pol("gamma.np"), "namespace gamma\nweb -> \n");
    w.wait_lines("error: kept the last good output", 1);
    assert!(w.log().contains("gamma.np:"), "{}", w.log());
    assert_eq!(snapshot(&dir), good, "the last good output must stay");

    // Fixed: regenerated.
    write(&dir.pol("gamma.np"), "namespace gamma\nallow dns\nweb -> api:82\n");
    wait(
        || read(&dir.out("gamma.yaml")).is_some_and(|t| t.contains("port: 82")),
        "gamma.yaml with port 82",
        || w.log(),
    );
    w.wait_lines("ok: ", oks + 1);

    // A rename: the annotations name the new file.
    std::fs::rename(dir.pol("gamma.np"), dir.pol("delta.np")).expect("rename");
    wait(
        || read(&dir.out("gamma.yaml")).is_some_and(|t| t.contains("delta.np:3")),
        "gamma.yaml from delta.np",
        || w.log(),
    );

    // The editor pattern: write a temporary file, rename it over the original.
    write(&dir.pol(".delta.np.swp"), "namespace gamma\nallow dns\nweb -> api:83\n");
    std::fs::rename(dir.pol(".delta.np.swp"), dir.pol("delta.np")).expect("rename over");
    wait(
        || read(&dir.out("gamma.yaml")).is_some_and(|t| t.contains("port: 83")),
        "gamma.yaml with port 83",
        || w.log(),
    );

    // A deleted file: its namespace's output is removed, and unlisted.
    std::fs::remove_file(dir.pol("delta.np")).expect("remove");
    wait(|| !dir.out("gamma.yaml").exists(), "gamma.yaml removed", || w.log());
    assert!(read(&dir.out("kustomization.yaml")).is_some_and(|t| !t.contains("gamma")));

    // Scratch files alone cause no run.
    w.settle();
    let oks = w.count("ok: ");
    write(&dir.pol("alpha.np~"), "garbage");
    write(&dir.pol(".#alpha.np"), "garbage");
    write(&dir.pol("4913"), "");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(w.count("ok: "), oks, "{}", w.log());
    assert_eq!(w.count("error: "), 1, "{}", w.log());

    // Ctrl-C: exit 0, the foreign file untouched, no temporary files left.
    assert_eq!(w.interrupt(), Some(0));
    assert_eq!(read(&dir.out("README.txt")).as_deref(), Some("not netpolc's\n"));
    let names: Vec<String> = snapshot(&dir).into_keys().collect();
    assert_eq!(
        names,
        [".netpolc-output", "README.txt", "alpha.yaml", "beta.yaml", "kustomization.yaml"]
    );
}

#[test]
fn once_builds_and_exits() {
    let dir = scratch("once");
    write(&dir.pol("alpha.np"), ALPHA);
    let run = || {
        Command::new(BIN)
            .args(["--color", "never", "watch", "pol", "-o", "out", "--once"])
            .current_dir(dir.path())
            .output()
            .expect("run")
    };
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.starts_with("ok: 4 policies in 1 namespaces, "), "{stderr}");
    assert!(dir.out("alpha.yaml").exists());
    let good = snapshot(&dir);
    write(&dir.pol("alpha.np"), "namespace alpha\nweb ->\n");
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.ends_with("error: kept the last good output\n"), "{stderr}");
    assert_eq!(snapshot(&dir), good);
}

#[test]
fn exec_runs_after_each_success_only() {
    let dir = scratch("exec");
    write(&dir.pol("alpha.np"), ALPHA);
    let w = Watch::start(&dir, &["--exec", "echo run >> runs.txt", "--debounce", "20"]);
    let runs = || read(&dir.join("runs.txt")).unwrap_or_default().lines().count();
    w.wait_lines("ok: ", 1);
    assert!(w.log().contains("; exec exited with 0"), "{}", w.log());
    assert_eq!(runs(), 1);
    write(&dir.pol("alpha.np"), "namespace alpha\nweb ->\n");
    w.wait_lines("error: kept the last good output", 1);
    // The command runs before the status line is printed: one per `ok` so far.
    assert_eq!(runs(), w.count("ok: "), "no run after an error\n{}", w.log());
    write(&dir.pol("alpha.np"), ALPHA);
    w.wait_lines("ok: ", 2);
    w.settle();
    // On a loaded machine the file system may report one save in two
    // batches, 20 ms apart: two good runs, each followed by the command.
    assert_eq!(runs(), w.count("ok: "), "one run after each success\n{}", w.log());
    assert_eq!(w.interrupt(), Some(0));
}

#[test]
fn a_folder_that_disappears_is_watched_again_when_it_comes_back() {
    let dir = scratch("root");
    write(&dir.pol("alpha.np"), ALPHA);
    let w = Watch::start(&dir, &["--diff"]);
    w.wait_lines("ok: ", 1);
    std::fs::remove_dir_all(dir.join("pol")).expect("remove pol");
    w.wait_lines("warning: ", 1);
    assert!(w.log().contains("disappeared"), "{}", w.log());
    assert!(dir.out("alpha.yaml").exists(), "the last good output stays");
    std::fs::create_dir_all(dir.join("pol")).expect("pol again");
    write(&dir.pol("alpha.np"), &ALPHA.replace(":80", ":81"));
    wait(
        || read(&dir.out("alpha.yaml")).is_some_and(|t| t.contains("port: 81")),
        "alpha.yaml with port 81",
        || w.log(),
    );
    w.wait_lines("ok: ", 2);
    // --diff: the delta against the previous good state.
    assert!(w.log().contains("1 added, 1 removed"), "{}", w.log());
    // Edits are seen again in the new folder.
    write(&dir.pol("alpha.np"), &ALPHA.replace(":80", ":82"));
    wait(
        || read(&dir.out("alpha.yaml")).is_some_and(|t| t.contains("port: 82")),
        "alpha.yaml with port 82",
        || w.log(),
    );
    assert_eq!(w.count("warning: "), 1, "reported once\n{}", w.log());
    assert_eq!(w.interrupt(), Some(0));
}

#[test]
fn new_folders_and_truncate_then_write_saves() {
    let dir = scratch("folders");
    write(&dir.pol("alpha.np"), ALPHA);
    let w = Watch::start(&dir, &[]);
    w.wait_lines("ok: ", 1);

    // A new folder with a file in it.
    std::fs::create_dir_all(dir.pol("team/sub")).expect("new folder");
    write(&dir.pol("team/sub/beta.np"), BETA);
    wait(|| dir.out("beta.yaml").exists(), "beta.yaml from a new folder", || w.log());
    w.wait_lines("ok: ", 2);

    // Truncate, pause past the debounce window (an invalid empty file), then write.
    let good = snapshot(&dir);
    let errors = w.count("error: kept the last good output");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(dir.pol("alpha.np")).expect("truncate");
        w.wait_lines("error: kept the last good output", errors + 1);
        assert_eq!(snapshot(&dir), good, "an empty intermediate file leaves the output alone");
        file.write_all(ALPHA.replace(":80", ":84").as_bytes()).expect("write");
    }
    wait(
        || read(&dir.out("alpha.yaml")).is_some_and(|t| t.contains("port: 84")),
        "alpha.yaml with port 84",
        || w.log(),
    );

    // The folder removed: its namespace goes.
    std::fs::remove_dir_all(dir.pol("team")).expect("remove folder");
    wait(|| !dir.out("beta.yaml").exists(), "beta.yaml removed", || w.log());
    assert_eq!(w.interrupt(), Some(0));
}

#[test]
fn the_project_file_above_the_folder_is_reloaded_when_it_changes() {
    let dir = scratch("project");
    write(&dir.pol("alpha.np"), ALPHA);
    write(&dir.join("netpolc.toml"), "[output]\nnamespaces = \"declared\"\n");
    let w = Watch::start(&dir, &[]);
    w.wait_lines("ok: ", 1);

    // A rule that the intents break: the last good output stays.
    let good = snapshot(&dir);
    write(&dir.join("netpolc.toml"), "[ports]\nforbidden = [80]\n");
    w.wait_lines("error: kept the last good output", 1);
    assert!(w.log().contains("error[E0609]"), "{}", w.log());
    assert_eq!(snapshot(&dir), good);

    // A broken file is shown with its line, and fixing it rebuilds.
    write(&dir.join("netpolc.toml"), "[ports]\nforbiden = [80]\n");
    w.wait_lines("error: kept the last good output", 2);
    assert!(w.log().contains("netpolc.toml:2:1"), "{}", w.log());
    write(&dir.join("netpolc.toml"), "[ports]\nforbidden = [22]\n");
    w.wait_lines("ok: ", 2);
    assert_eq!(w.interrupt(), Some(0));
}

#[test]
fn help_has_examples() {
    let out = Command::new(BIN).args(["watch", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text.contains("Examples:") && text.contains("--exec") && text.contains("--debounce"),
        "{text}"
    );
}
