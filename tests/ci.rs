//! The CI recipes of docs/ci.md work as written. The GitHub Actions workflow
//! and the GitLab CI jobs (`docs/ci/`) are valid YAML, and their scripts run
//! for real, with the real netpolc, in a scratch git repository: a pull
//! request whose committed YAML is up to date passes every step and gets its
//! diff comment; one whose YAML is stale fails the freshness step; one with
//! errors fails the check but still produces its report. `cargo install`,
//! `gh` and `curl` would reach the network: stand-ins record their arguments
//! instead. The pre-commit hooks run their real commands too.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_netpolc");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

/// A scratch folder holding an upstream repository (`main`: the shop
/// intents and their generated policies), a clone of it on a branch, and a
/// `bin` folder with netpolc and the stand-ins.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("netpolc-ci-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let scratch = Scratch { dir };
        let upstream = scratch.dir.join("upstream");
        std::fs::create_dir_all(upstream.join("policies")).unwrap();
        std::fs::copy(root().join("examples/shop.np"), upstream.join("policies/shop.np")).unwrap();
        scratch.git(&upstream, &["init", "-q", "-b", "main"]);
        scratch.netpolc(&upstream, &["build", "policies/", "-o", "deploy/netpol"]);
        scratch.git(&upstream, &["add", "."]);
        scratch.git(&upstream, &["commit", "-q", "-m", "shop"]);
        scratch.git(&scratch.dir, &["clone", "-q", "upstream", "work"]);
        scratch.git(&scratch.work(), &["checkout", "-q", "-b", "change"]);

        let bin = scratch.dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("netpolc")).unwrap();
        for stand_in in ["cargo", "gh", "curl"] {
            let script = format!("#!/bin/sh\necho \"{stand_in} $*\" >> \"{}\"\n", scratch.log_path().display());
            let path = bin.join(stand_in);
            std::fs::write(&path, script).unwrap();
            let mut permissions = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).unwrap();
        }
        scratch
    }

    fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("stand-ins.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn git(&self, dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "ci")
            .env("GIT_AUTHOR_EMAIL", "ci@example.com")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn netpolc(&self, dir: &Path, args: &[&str]) {
        let out = Command::new(BIN).args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "netpolc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Commits a new namespace on the branch; with `rebuild`, the generated policies too.
    fn change(&self, rebuild: bool) {
        let work = self.work();
        std::fs::write(
            work.join("policies/search.np"),
            "namespace search\nindexer -> backend/catalog:8080, allow dns\n",
        )
        .unwrap();
        if rebuild {
            self.netpolc(&work, &["build", "policies/", "-o", "deploy/netpol"]);
        }
        self.git(&work, &["add", "."]);
        self.git(&work, &["commit", "-q", "-m", "search"]);
    }

    /// Runs `script` with bash in the work tree, as CI runners do (stop at the
    /// first failing command), with the stand-ins first on PATH.
    fn run(&self, script: &str, env: &BTreeMap<String, String>) -> std::process::Output {
        let path = format!("{}:{}", self.dir.join("bin").display(), std::env::var("PATH").unwrap_or_default());
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(self.work())
            .envs(env)
            .env("PATH", path)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn strings(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- GitHub Actions

/// The value of each `${{ ... }}` expression the workflow uses, for a pull request.
fn github_expression(expression: &str) -> &'static str {
    match expression {
        "github.token" => "a-token",
        "github.base_ref" => "main",
        "github.event.pull_request.number" => "7",
        other => panic!("the test does not know `${{{{ {other} }}}}`: add it"),
    }
}

fn expand_github(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let end = rest[start..].find("}}").expect("closed expression") + start;
        out.push_str(&rest[..start]);
        out.push_str(github_expression(rest[start + 3..end].trim()));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs every step of the workflow's job as on a pull request; returns each
/// step's name and output (a step that fails does not stop the others, so
/// that each can be asserted on).
fn run_github_workflow(scratch: &Scratch) -> Vec<(String, std::process::Output)> {
    let workflow = yaml("docs/ci/github-workflow.yml");
    let jobs = workflow["jobs"].as_object().expect("jobs");
    assert_eq!(jobs.len(), 1);
    let job = jobs.values().next().unwrap();
    let mut results = Vec::new();
    for step in job["steps"].as_array().expect("steps") {
        if let Some(condition) = step["if"].as_str() {
            assert_eq!(condition, "github.event_name == 'pull_request'");
        }
        if let Some(action) = step["uses"].as_str() {
            if action.starts_with("github/codeql-action/upload-sarif@") {
                let file = scratch.work().join(step["with"]["sarif_file"].as_str().expect("sarif_file"));
                let log: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("the SARIF file to upload exists")).unwrap();
                assert_eq!(log["version"], "2.1.0");
            } else {
                assert!(action.starts_with("actions/checkout@"), "unexpected action {action}");
            }
            continue;
        }
        let mut env = strings(&workflow["env"]);
        env.extend(strings(&job["env"]));
        env.extend(strings(&step["env"]).into_iter().map(|(k, v)| (k, expand_github(&v))));
        let script = expand_github(step["run"].as_str().expect("a step runs a script or uses an action"));
        let name = step["name"].as_str().expect("every step that runs has a name").to_string();
        results.push((name, scratch.run(&script, &env)));
    }
    results
}

#[track_caller]
fn assert_steps(results: &[(String, std::process::Output)], failing: &[&str]) {
    for (name, out) in results {
        let expected = !failing.contains(&name.as_str());
        assert_eq!(
            out.status.success(),
            expected,
            "step `{name}`:\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in failing {
        assert!(results.iter().any(|(n, _)| n == name), "no step `{name}`");
    }
}

fn step<'a>(results: &'a [(String, std::process::Output)], name: &str) -> &'a std::process::Output {
    &results.iter().find(|(n, _)| n == name).expect("step").1
}

#[test]
fn github_workflow_passes_on_an_up_to_date_pull_request_and_comments_the_diff() {
    let scratch = Scratch::new("gh-ok");
    scratch.change(true);
    let results = run_github_workflow(&scratch);
    assert_steps(&results, &[]);
    let log = scratch.log();
    assert!(log.contains("cargo install --locked --git https://"), "{log}");
    assert!(log.contains("gh pr comment 7 --body-file netpolc-diff.md"), "{log}");
    let comment = std::fs::read_to_string(scratch.work().join("netpolc-diff.md")).unwrap();
    assert!(comment.contains("search") && comment.contains("catalog"), "{comment}");
    assert_eq!(step(&results, "Check").stdout, b"", "no annotation on clean input");
}

#[test]
fn github_workflow_fails_on_stale_policies() {
    let scratch = Scratch::new("gh-stale");
    scratch.change(false);
    let results = run_github_workflow(&scratch);
    assert_steps(&results, &["Committed NetworkPolicies are up to date"]);
    let diff = String::from_utf8_lossy(&step(&results, "Committed NetworkPolicies are up to date").stdout).into_owned();
    assert!(
        diff.contains("deploy/netpol/search.yaml"),
        "a new file counts as stale too:\n{diff}"
    );
}

#[test]
fn github_workflow_annotates_errors_and_still_uploads_the_report() {
    let scratch = Scratch::new("gh-bad");
    std::fs::write(scratch.work().join("policies/bad.np"), "namespace shop\nweb -> api:9000-8000\n").unwrap();
    let results = run_github_workflow(&scratch);
    assert_steps(
        &results,
        &[
            "Check",
            "Verify",
            "Committed NetworkPolicies are up to date",
            "Comment the connectivity change",
        ],
    );
    let annotations = String::from_utf8_lossy(&step(&results, "Check").stdout).into_owned();
    assert!(
        annotations.starts_with("::error file=policies/bad.np,line=2,col=12,"),
        "{annotations}"
    );
    let log: Value = serde_json::from_str(&std::fs::read_to_string(scratch.work().join("netpolc.sarif")).unwrap()).unwrap();
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "E0104");
}

// ---------------------------------------------------------------- GitLab CI

/// Runs every job of the GitLab file as in a merge-request pipeline; returns
/// each job's name and output.
fn run_gitlab_jobs(scratch: &Scratch) -> Vec<(String, std::process::Output)> {
    let file = yaml("docs/ci/gitlab-ci.yml");
    let file = file.as_object().expect("a mapping");
    let predefined: BTreeMap<String, String> = [
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ("CI_API_V4_URL", "https://gitlab.example.com/api/v4"),
        ("CI_PROJECT_ID", "42"),
        ("CI_MERGE_REQUEST_IID", "7"),
        ("NETPOLC_NOTE_TOKEN", "a-token"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut results = Vec::new();
    for (name, job) in file {
        if name == "variables" || name.starts_with('.') {
            continue;
        }
        let base = job["extends"].as_str().map(|parent| &file[parent]);
        let field = |key: &str| {
            job.get(key)
                .or_else(|| base.and_then(|b| b.get(key)))
                .cloned()
                .unwrap_or(Value::Null)
        };
        if let Some(rules) = field("rules").as_array() {
            for rule in rules {
                assert_eq!(rule["if"], "$CI_PIPELINE_SOURCE == \"merge_request_event\"");
            }
        }
        let mut env = strings(&file["variables"]);
        env.extend(strings(&field("variables")));
        env.extend(predefined.clone());
        let lines: Vec<String> = ["before_script", "script"]
            .iter()
            .flat_map(|key| field(key).as_array().cloned().unwrap_or_default())
            .map(|line| line.as_str().expect("script lines are strings").trim().to_string())
            .collect();
        assert!(!lines.is_empty(), "job {name} runs nothing");
        results.push((name.clone(), scratch.run(&lines.join("\n"), &env)));
    }
    results
}

#[test]
fn gitlab_jobs_pass_on_an_up_to_date_merge_request_and_post_the_diff() {
    let scratch = Scratch::new("gl-ok");
    scratch.change(true);
    let results = run_gitlab_jobs(&scratch);
    assert_eq!(
        results.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["netpolc", "netpolc-diff"]
    );
    assert_steps(&results, &[]);
    let log = scratch.log();
    assert!(
        log.contains(
            "curl --fail --silent --show-error --request POST --header PRIVATE-TOKEN: a-token --data-urlencode body@netpolc-diff.md \
             https://gitlab.example.com/api/v4/projects/42/merge_requests/7/notes"
        ),
        "{log}"
    );
    let comment = std::fs::read_to_string(scratch.work().join("netpolc-diff.md")).unwrap();
    assert!(comment.contains("search"), "{comment}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(scratch.work().join("netpolc-report.json")).unwrap()).unwrap();
    assert_eq!(report["version"], 1);
}

#[test]
fn gitlab_job_fails_on_stale_policies() {
    let scratch = Scratch::new("gl-stale");
    scratch.change(false);
    let results = run_gitlab_jobs(&scratch);
    assert_steps(&results, &["netpolc"]);
}

// ---------------------------------------------------------------- docs and pre-commit

#[test]
fn docs_ci_md_shows_the_files_as_they_are() {
    let doc = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    for file in ["docs/ci/github-workflow.yml", "docs/ci/gitlab-ci.yml", ".pre-commit-hooks.yaml"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(
            doc.contains(&format!("```yaml\n{text}```\n")),
            "docs/ci.md must show {file} verbatim"
        );
    }
    for (format, fence) in [("json", "json"), ("github", "text")] {
        let out = Command::new(BIN)
            .args(["check", "examples/errors/E0104-port-range-reversed.np", "--format", format])
            .current_dir(root())
            .output()
            .unwrap();
        let shown = format!("```{fence}\n{}```\n", String::from_utf8(out.stdout).unwrap());
        assert!(doc.contains(&shown), "docs/ci.md must show the real {format} output:\n{shown}");
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("(docs/ci.md)"), "README points to docs/ci.md");
}

#[test]
fn pre_commit_hooks_run_real_commands() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hooks = hooks.as_array().expect("a list of hooks");
    let ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["netpolc-check", "netpolc-verify", "netpolc-build"]);

    let scratch = Scratch::new("pre-commit");
    scratch.change(false);
    for hook in hooks {
        assert_eq!(hook["language"], "rust", "pre-commit builds netpolc with cargo");
        assert_eq!(hook["files"], "\\.np$");
        assert_eq!(hook["pass_filenames"], false);
        let entry = hook["entry"].as_str().expect("entry");
        assert!(entry.starts_with("netpolc "), "{entry}");
        let args: Vec<&str> = hook["args"].as_array().expect("args").iter().map(|a| a.as_str().unwrap()).collect();
        let out = scratch.run(&format!("{entry} {}", args.join(" ")), &BTreeMap::new());
        assert!(out.status.success(), "{entry}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // The build hook brought the stale policies up to date: pre-commit sees
    // changed files and fails the commit until they are added.
    let status = scratch.run("git status --porcelain deploy/netpol", &BTreeMap::new());
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains("deploy/netpol/search.yaml"), "{status}");
}
