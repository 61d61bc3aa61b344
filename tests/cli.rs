//! The `netpolc` binary as a user meets it: output on stdout, diagnostics on
//! stderr, exit codes, the output folder, colour, and help.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod support;
use support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_netpolc");

/// The first line netpolc writes in each file of an output folder (see `emit::HEADER`).
const HEADER: &str = netpolc::emit::HEADER;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// Runs netpolc in the package root with stdin closed and no colour-related
/// variables inherited; `env` adds variables.
fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("TERM")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run netpolc")
}

fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
    assert!(!stderr(out).contains("panicked"), "{}", stderr(out));
}

impl TempDir {
    fn str(&self, name: &str) -> String {
        self.join(name).to_string_lossy().into_owned()
    }

    fn copy(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.join(name);
        std::fs::copy(from, &to).expect("copy example");
        to
    }
}

/// Every file in `dir` (hidden ones too) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read output dir")
        .map(|e| {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = if e.file_type().expect("type").is_file() {
                std::fs::read(e.path()).expect("read")
            } else {
                b"<dir>".to_vec()
            };
            (name, bytes)
        })
        .collect()
}

fn visible_files(dir: &Path) -> Vec<String> {
    snapshot(dir).into_keys().filter(|n| !n.starts_with('.')).collect()
}

#[track_caller]
fn assert_no_temporary_files(dir: &Path) {
    let leftovers: Vec<String> = snapshot(dir)
        .into_keys()
        .filter(|n| n.contains("tmp") || n.contains("temp") || n.ends_with('~'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left in {}: {leftovers:?}", dir.display());
}

/// The `resources` of a kustomization.yaml, parsed as YAML.
fn kustomization_resources(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("kustomization.yaml")).expect("kustomization.yaml");
    assert!(text.starts_with(HEADER), "kustomization.yaml lacks the header:\n{text}");
    let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("kustomization.yaml is not YAML: {e}\n{text}"));
    assert_eq!(value["kind"], "Kustomization", "{text}");
    assert_eq!(value["apiVersion"], "kustomize.config.k8s.io/v1beta1", "{text}");
    value["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no resources list:\n{text}"))
        .iter()
        .map(|v| v.as_str().expect("resource is a string").to_string())
        .collect()
}

/// The namespaces of a YAML stream, in order of appearance, deduplicated.
fn namespaces_of(yaml: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in yaml.lines() {
        if let Some(ns) = line.strip_prefix("  namespace: ")
            && out.last().is_none_or(|last| last != ns)
        {
            out.push(ns.to_string());
        }
    }
    out
}

// ---- build to stdout --------------------------------------------------------

#[test]
fn build_prints_a_yaml_stream_identical_across_runs() {
    let first = run(&["build", "examples/shop.np"]);
    assert_exit(&first, 0);
    let text = stdout(&first);
    assert!(text.starts_with("---\n"), "not a YAML stream:\n{text}");
    assert!(text.contains("kind: NetworkPolicy"));
    let second = run(&["build", "examples/shop.np"]);
    assert_exit(&second, 0);
    assert_eq!(first.stdout, second.stdout, "two runs differ");
}

#[test]
fn build_output_does_not_depend_on_argument_order_or_folder() {
    let dir = TempDir::new("cli-order");
    dir.copy(&example("shop.np"), "a.np");
    dir.copy(&example("05-egress-dns.np"), "b.np");
    let (a, b) = (dir.str("a.np"), dir.str("b.np"));
    let ab = run(&["build", &a, &b]);
    let ba = run(&["build", &b, &a]);
    let folder = run(&["build", &dir.path().to_string_lossy()]);
    for out in [&ab, &ba, &folder] {
        assert_exit(out, 0);
    }
    assert!(stdout(&ab).starts_with("---\n"));
    assert_eq!(stdout(&ab), stdout(&ba), "`build a.np b.np` and `build b.np a.np` differ");
    assert_eq!(stdout(&ab), stdout(&folder), "`build a.np b.np` and `build DIR` differ");
    // Both files made it in, and the output is sorted by namespace.
    let namespaces = namespaces_of(&stdout(&ab));
    assert!(
        namespaces.contains(&"batch".to_string()) && namespaces.contains(&"frontend".to_string()),
        "{namespaces:?}"
    );
    let mut sorted = namespaces.clone();
    sorted.sort();
    assert_eq!(namespaces, sorted, "policies are not grouped and sorted by namespace");
}

#[test]
fn build_json_prints_a_list_of_network_policies() {
    let out = run(&["build", "examples/shop.np", "--format", "json"]);
    assert_exit(&out, 0);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(value["kind"], "List");
    assert_eq!(value["apiVersion"], "v1");
    let items = value["items"].as_array().expect("items");
    assert!(!items.is_empty());
    for item in items {
        assert_eq!(item["kind"], "NetworkPolicy", "{item}");
        assert_eq!(item["apiVersion"], "networking.k8s.io/v1", "{item}");
    }
    // The same policies as the YAML stream.
    let yaml = run(&["build", "examples/shop.np"]);
    assert_eq!(items.len(), stdout(&yaml).matches("\n---\n").count() + 1);
}

// ---- build into a folder ------------------------------------------------------

/// Builds `inputs` into `out`; returns the process output.
fn build_to(out: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["build".into()];
    args.extend(inputs.iter().map(|p| p.to_string_lossy().into_owned()));
    args.push("-o".into());
    args.push(out.to_string_lossy().into_owned());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

const SHOP_FILES: [&str; 4] = ["backend.yaml", "frontend.yaml", "monitoring.yaml", "payments.yaml"];

#[test]
fn output_folder_holds_one_file_per_namespace_and_a_kustomization() {
    let dir = TempDir::new("cli-out");
    let out = dir.join("deploy");
    let result = build_to(&out, &[&example("shop.np")], &[]);
    assert_exit(&result, 0);
    assert!(result.stdout.is_empty(), "nothing on stdout with -o");

    let mut expected: Vec<String> = SHOP_FILES.iter().map(|s| s.to_string()).collect();
    expected.push("kustomization.yaml".into());
    expected.sort();
    assert_eq!(visible_files(&out), expected);
    assert_eq!(kustomization_resources(&out), SHOP_FILES);
    assert_no_temporary_files(&out);

    // Each file holds exactly its namespace's policies; together they are the stdout stream.
    let stream = stdout(&run(&["build", "examples/shop.np"]));
    let mut joined = String::new();
    for name in SHOP_FILES {
        let text = std::fs::read_to_string(out.join(name)).expect("namespace file");
        let body = text.strip_prefix(HEADER).unwrap_or_else(|| panic!("{name} lacks the header"));
        assert_eq!(namespaces_of(body), [name.trim_end_matches(".yaml")], "{name}");
        joined.push_str(body);
    }
    assert_eq!(joined, stream, "the folder's files do not add up to the stdout stream");

    // Rebuilding changes nothing.
    let before = snapshot(&out);
    assert_exit(&build_to(&out, &[&example("shop.np")], &[]), 0);
    assert_eq!(snapshot(&out), before);
}

#[test]
fn output_folder_in_json() {
    let dir = TempDir::new("cli-json");
    let out = dir.join("deploy");
    assert_exit(&build_to(&out, &[&example("shop.np")], &["--format", "json"]), 0);
    let json: Vec<String> = SHOP_FILES.iter().map(|f| f.replace(".yaml", ".json")).collect();
    assert_eq!(kustomization_resources(&out), json);
    for name in &json {
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(name)).expect("file")).expect("JSON");
        assert_eq!(value["kind"], "List", "{name}");
    }
    // Switching back to YAML replaces the JSON files.
    assert_exit(&build_to(&out, &[&example("shop.np")], &[]), 0);
    assert_eq!(kustomization_resources(&out), SHOP_FILES);
    assert!(
        visible_files(&out).iter().all(|f| !f.ends_with(".json")),
        "{:?}",
        visible_files(&out)
    );
    assert_no_temporary_files(&out);
}

#[test]
fn rebuilding_with_fewer_namespaces_removes_stale_files_but_never_foreign_ones() {
    let dir = TempDir::new("cli-stale");
    let out = dir.join("deploy");
    std::fs::create_dir_all(&out).expect("mkdir");
    // Files netpolc did not write, one of them even carrying its header.
    let custom = format!("{HEADER}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n");
    std::fs::write(out.join("custom.yaml"), &custom).expect("write");
    std::fs::write(out.join("notes.txt"), "my notes\n").expect("write");

    assert_exit(&build_to(&out, &[&example("shop.np"), &example("05-egress-dns.np")], &[]), 0);
    assert!(out.join("batch.yaml").exists());
    let mut all: Vec<String> = SHOP_FILES.iter().map(|s| s.to_string()).collect();
    all.push("batch.yaml".into());
    all.sort();
    assert_eq!(kustomization_resources(&out), all, "kustomization must list only netpolc's files");

    assert_exit(&build_to(&out, &[&example("shop.np")], &[]), 0);
    assert!(!out.join("batch.yaml").exists(), "stale namespace file was not removed");
    assert_eq!(kustomization_resources(&out), SHOP_FILES);
    let mut expected: Vec<String> = SHOP_FILES.iter().map(|s| s.to_string()).collect();
    expected.extend(["custom.yaml".to_string(), "kustomization.yaml".into(), "notes.txt".into()]);
    expected.sort();
    assert_eq!(visible_files(&out), expected);

    // Down to one namespace, then back: the foreign files are never touched.
    assert_exit(&build_to(&out, &[&example("05-egress-dns.np")], &[]), 0);
    assert_eq!(
        visible_files(&out),
        ["batch.yaml", "custom.yaml", "kustomization.yaml", "notes.txt"]
    );
    assert_eq!(std::fs::read_to_string(out.join("custom.yaml")).expect("custom.yaml kept"), custom);
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).expect("notes.txt kept"),
        "my notes\n"
    );
    assert_no_temporary_files(&out);
}

#[test]
fn a_foreign_file_with_an_output_name_stops_the_build_and_nothing_changes() {
    let dir = TempDir::new("cli-foreign");

    // A fresh folder holding someone else's frontend.yaml.
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(&fresh).expect("mkdir");
    std::fs::write(fresh.join("frontend.yaml"), "# hand-written\nkind: NetworkPolicy\n").expect("write");
    std::fs::write(fresh.join("notes.txt"), "mine\n").expect("write");
    let before = snapshot(&fresh);
    let result = build_to(&fresh, &[&example("shop.np")], &[]);
    assert_exit(&result, 2);
    assert!(
        stderr(&result).contains("frontend.yaml"),
        "the error should name the file:\n{}",
        stderr(&result)
    );
    assert_eq!(snapshot(&fresh), before, "the folder changed although the build failed");

    // A folder netpolc wrote before, where someone then added a frontend.yaml.
    let used = dir.join("used");
    assert_exit(&build_to(&used, &[&example("05-egress-dns.np")], &[]), 0);
    std::fs::write(used.join("frontend.yaml"), "kind: NetworkPolicy\n").expect("write");
    let before = snapshot(&used);
    assert_exit(&build_to(&used, &[&example("shop.np")], &[]), 2);
    assert_eq!(snapshot(&used), before, "the folder changed although the build failed");

    // A hand-written kustomization.yaml is just as foreign.
    let kustomize = dir.join("kustomize");
    std::fs::create_dir_all(&kustomize).expect("mkdir");
    std::fs::write(kustomize.join("kustomization.yaml"), "resources: [mine.yaml]\n").expect("write");
    let before = snapshot(&kustomize);
    assert_exit(&build_to(&kustomize, &[&example("shop.np")], &[]), 2);
    assert_eq!(snapshot(&kustomize), before);
}

#[test]
fn input_errors_leave_a_written_folder_byte_identical() {
    let dir = TempDir::new("cli-errors");
    let out = dir.join("deploy");
    assert_exit(&build_to(&out, &[&example("shop.np")], &[]), 0);
    let before = snapshot(&out);

    let bad = dir.write("bad.np", "namespace frontend\nweb -> api:99999\n");
    let result = build_to(&out, &[&bad], &[]);
    assert_exit(&result, 1);
    assert!(result.stdout.is_empty());
    assert_eq!(snapshot(&out), before, "a failed build changed the output folder");

    // Errors in one of several inputs: still nothing.
    let result = build_to(&out, &[&example("05-egress-dns.np"), &example("errors/E0101-invalid-name.np")], &[]);
    assert_exit(&result, 1);
    assert_eq!(snapshot(&out), before);

    // A warning with --deny-warnings fails the same way.
    let result = build_to(&out, &[&example("errors/W0002-duplicate-intent.np")], &["--deny-warnings"]);
    assert_exit(&result, 1);
    assert_eq!(snapshot(&out), before);

    // A missing input is a usage error and writes nothing either.
    let result = build_to(&out, &[&dir.join("missing.np")], &[]);
    assert_exit(&result, 2);
    assert_eq!(snapshot(&out), before);
    assert_no_temporary_files(&out);

    // An error into a folder that does not exist yet does not create it.
    let never = dir.join("never");
    assert_exit(&build_to(&never, &[&bad], &[]), 1);
    assert!(!never.exists(), "a failed build created its output folder");
}

#[test]
fn an_output_path_that_is_a_file_is_an_io_error() {
    let dir = TempDir::new("cli-file-as-dir");
    let file = dir.write("deploy", "not a folder\n");
    let result = build_to(&file, &[&example("shop.np")], &[]);
    assert_exit(&result, 2);
    assert_eq!(std::fs::read_to_string(&file).expect("file kept"), "not a folder\n");
    assert!(stderr(&result).starts_with("error"), "{}", stderr(&result));
}

// ---- check and exit codes -------------------------------------------------------

#[test]
fn check_exit_codes() {
    let clean = run(&["check", "examples/shop.np"]);
    assert_exit(&clean, 0);
    assert!(clean.stdout.is_empty(), "check writes nothing on stdout");

    let error = run(&["check", "examples/errors/E0101-invalid-name.np"]);
    assert_exit(&error, 1);
    assert!(error.stdout.is_empty());

    let warning = run(&["check", "examples/errors/W0002-duplicate-intent.np"]);
    assert_exit(&warning, 0);
    assert!(stderr(&warning).contains("W0002"), "{}", stderr(&warning));
    assert_exit(&run(&["check", "examples/errors/W0002-duplicate-intent.np", "--deny-warnings"]), 1);
    assert_exit(&run(&["check", "--deny-warnings", "examples/shop.np"]), 0);

    let missing = run(&["check", "examples/no-such-file.np"]);
    assert_exit(&missing, 2);
    assert!(stderr(&missing).contains("no-such-file.np"), "{}", stderr(&missing));

    let dir = TempDir::new("cli-no-np");
    dir.write("readme.txt", "not an intent file\n");
    dir.write("policy.yaml", "kind: NetworkPolicy\n");
    let empty = run(&["check", &dir.path().to_string_lossy()]);
    assert_exit(&empty, 2);
    assert!(stderr(&empty).contains("no `.np` files"), "{}", stderr(&empty));

    assert_exit(&run(&["check", "--no-such-flag", "examples/shop.np"]), 2);
    assert_exit(&run(&["build", "examples/shop.np", "--format", "xml"]), 2);
    assert_exit(&run(&["check"]), 2);
    assert_exit(&run(&["frobnicate"]), 2);
    assert_exit(&run(&[]), 2);
}

#[test]
fn build_with_errors_exits_1_and_prints_nothing_on_stdout() {
    for file in ["examples/errors/E0101-invalid-name.np", "examples/errors/E0001-syntax.np"] {
        for format in ["yaml", "json"] {
            let out = run(&["build", file, "--format", format]);
            assert_exit(&out, 1);
            assert!(
                out.stdout.is_empty(),
                "{file}: stdout not empty: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(!out.stderr.is_empty());
        }
    }
    // Warnings alone still build; with --deny-warnings they do not.
    let warned = run(&["build", "examples/errors/W0002-duplicate-intent.np"]);
    assert_exit(&warned, 0);
    assert!(stdout(&warned).starts_with("---\n"));
    let denied = run(&["build", "examples/errors/W0002-duplicate-intent.np", "--deny-warnings"]);
    assert_exit(&denied, 1);
    assert!(denied.stdout.is_empty());
}

// ---- diagnostics -------------------------------------------------------------------

#[test]
fn diagnostics_go_to_stderr_with_file_line_column_and_code() {
    let out = run(&["check", "examples/errors/E0101-invalid-name.np"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(out.stdout.is_empty());
    assert!(err.contains("E0101"), "{err}");
    assert!(err.contains("examples/errors/E0101-invalid-name.np:1:11"), "{err}");
    assert!(err.contains("examples/errors/E0101-invalid-name.np:2:10"), "{err}");

    let out = run(&["build", "examples/errors/W0002-duplicate-intent.np"]);
    let err = stderr(&out);
    assert!(
        err.contains("W0002") && err.contains("examples/errors/W0002-duplicate-intent.np:4:8"),
        "{err}"
    );
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("---\n"));
    assert!(!stdout(&out).contains("warning["), "diagnostics leaked to stdout");
}

const ESCAPE: &str = "\x1b[";

#[test]
fn colour_only_on_request_or_on_a_terminal() {
    let file = "examples/errors/E0101-invalid-name.np";
    // Not a terminal (stderr is a pipe here).
    let piped = run(&["check", file]);
    assert!(!stderr(&piped).contains(ESCAPE), "escapes on a pipe:\n{:?}", stderr(&piped));
    let no_color = run_env(&["check", file], &[("NO_COLOR", "1")]);
    assert!(!stderr(&no_color).contains(ESCAPE));
    let never = run(&["check", file, "--color", "never"]);
    assert!(!stderr(&never).contains(ESCAPE));

    let always = run(&["check", file, "--color", "always"]);
    assert_exit(&always, 1);
    assert!(
        stderr(&always).contains(ESCAPE),
        "no escapes with --color always:\n{}",
        stderr(&always)
    );
    // The global flag works before the subcommand too, and beats NO_COLOR.
    let before = run_env(&["--color", "always", "check", file], &[("NO_COLOR", "1")]);
    assert!(stderr(&before).contains(ESCAPE));
    // Colour never reaches stdout.
    let built = run(&["build", "examples/shop.np", "--color", "always"]);
    assert!(!stdout(&built).contains(ESCAPE));
    // Without escapes, the text is the same as with them stripped.
    assert_eq!(strip_ansi(&stderr(&always)), stderr(&never));
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---- help --------------------------------------------------------------------------

#[test]
fn help_shows_examples() {
    for args in [
        vec!["--help"],
        vec!["build", "--help"],
        vec!["check", "--help"],
        vec!["help", "build"],
        vec!["-h"],
    ] {
        let out = run(&args);
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(text.contains("Usage:"), "{args:?}:\n{text}");
        assert!(text.contains("Examples:"), "{args:?} shows no examples:\n{text}");
        assert!(text.contains("netpolc "), "{args:?}:\n{text}");
    }
    let out = run(&["--version"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("netpolc "), "{}", stdout(&out));
}

#[test]
fn the_project_file_is_found_above_the_inputs_or_given_with_config() {
    let shop = "examples/governance/shop.np";
    let today = [("NETPOLC_TODAY", "2026-03-01")];
    let out = run_env(&["check", shop], &today);
    assert_exit(&out, 0);
    assert!(stderr(&out).starts_with("ok: "), "{}", stderr(&out));

    // The same rules given by hand apply to a file outside the folder.
    let out = run_env(
        &["check", "--config", "examples/governance/netpolc.toml", "examples/05-egress-dns.np"],
        &today,
    );
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("error[E0604]"), "{}", stderr(&out));

    // After the date of its `@expires`, the governed shop fails.
    let out = run_env(&["check", shop], &[("NETPOLC_TODAY", "2031-01-01")]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("error[E0607]"), "{}", stderr(&out));
    assert!(stderr(&out).contains("examples/governance/shop.np:22:10"), "{}", stderr(&out));

    // Inputs of different projects, a missing file, or a wrong date are usage errors.
    let out = run_env(&["build", shop, "examples/shop.np"], &today);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("different projects") && stderr(&out).contains("--config"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    let out = run_env(&["build", "--config", "examples/governance/none.toml", shop], &today);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("cannot read `examples/governance/none.toml`"),
        "{}",
        stderr(&out)
    );
    let out = run_env(&["check", shop], &[("NETPOLC_TODAY", "tomorrow")]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("NETPOLC_TODAY"), "{}", stderr(&out));
}

#[test]
fn every_command_uses_the_project_file() {
    let shop = "examples/governance/shop.np";
    let today = [("NETPOLC_TODAY", "2026-03-01")];
    let out = run_env(&["explain", "frontend/web", "backend/api:8080", shop], &today);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("ALLOWED"), "{}", stdout(&out));
    let out = run_env(&["verify", shop], &today);
    assert_exit(&out, 0);
    let out = run_env(&["diff", shop, shop], &today);
    assert_exit(&out, 0);
    let out = run_env(&["graph", shop], &today);
    assert_exit(&out, 0);
    // The rules apply to each: a date past the `@expires` fails them all.
    for args in [
        &["explain", "frontend/web", "backend/api:8080", shop][..],
        &["verify", shop],
        &["diff", shop, shop],
        &["graph", shop],
        &["build", shop],
    ] {
        let out = run_env(args, &[("NETPOLC_TODAY", "2031-01-01")]);
        assert_exit(&out, 1);
        assert!(stderr(&out).contains("error[E0607]"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_bad_project_file_is_shown_like_a_bad_input() {
    let out = run(&["build", "examples/governance/E0602-unknown-setting"]);
    assert_exit(&out, 1);
    assert!(stdout(&out).is_empty());
    let text = stderr(&out);
    assert!(text.contains("error[E0602]: unknown key `metdata` in netpolc.toml"), "{text}");
    assert!(
        text.contains("examples/governance/E0602-unknown-setting/netpolc.toml:1:2"),
        "{text}"
    );
    assert!(text.contains("did you mean `metadata`?"), "{text}");
}
