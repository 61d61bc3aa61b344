//! Organisation rules written in Rego for OPA Gatekeeper or conftest,
//! evaluated in-process (regorus) against every generated NetworkPolicy.
//! Each violation is reported at the intent behind the object.
//!
//! A package's `violation[{"msg": msg}]` rules (Gatekeeper) see the object as
//! Gatekeeper's admission review gives it, `input.review.object`, with the
//! package's `input.parameters`; its `deny[msg]` rules (conftest) see the
//! object itself as `input`. Each file is read as Rego v1 if it parses so,
//! else as v0 (docs/decisions/0015-rego-syntax-and-input.md).

use crate::ast::Span;
use crate::diagnostics::{Code, Diagnostic};
use crate::source::{self, InputError, Sources};
use crate::{Compilation, ir, lower, parallel};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use regorus::{Engine, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The file of a Rego folder that gives packages their `input.parameters`:
/// a map from package name (`netpolc.owner`) to parameters.
pub const PARAMETERS: &str = "parameters.yaml";

/// The rules of a Rego folder, parsed and compiled once.
#[derive(Clone)]
pub struct Rules {
    engine: Engine,
    packages: Vec<Package>,
}

#[derive(Clone)]
struct Package {
    /// As written after `package`: `netpolc.owner`.
    name: String,
    /// The query path of the package: `data.netpolc.owner`.
    path: String,
    /// The entry points it declares, each with the file that declares it.
    entries: Vec<(Entry, String)>,
    /// Its `input.parameters` (Gatekeeper rules only).
    parameters: Value,
}

/// The rule a package is asked for, and the shape of its input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// Gatekeeper: `violation[{"msg": msg}]`, input `{review, parameters}`.
    Violation,
    /// conftest: `deny[msg]`, the object itself as input.
    Deny,
}

impl Entry {
    fn rule(self) -> &'static str {
        match self {
            Entry::Violation => "violation",
            Entry::Deny => "deny",
        }
    }
}

/// Loads the `.rego` files of `dir` (searched recursively) and its
/// [`PARAMETERS`], adding the files to `sources` so that diagnostics can
/// point into them. Returns the rules, or the diagnostics of the files that
/// do not parse or compile. A folder without rules, or unreadable, is an
/// [`InputError`].
pub fn load(dir: &Path, sources: &mut Sources) -> Result<Result<Rules, Vec<Diagnostic>>, InputError> {
    if !dir.is_dir() {
        return Err(InputError(format!("`{}` is not a folder of `.rego` files", dir.display())));
    }
    let first = sources.files().len();
    let mut diagnostics = source::add_files(sources, &[dir.to_path_buf()], "rego")?;
    if sources.files().len() == first {
        return Err(InputError(format!("no `.rego` files in `{}`", dir.display())));
    }
    let mut engine = Engine::new();
    for index in first..sources.files().len() {
        if diagnostics.iter().any(|d| d.span().file == index) {
            continue;
        }
        if let Err(problem) = add_policy(&mut engine, sources, index) {
            diagnostics.push(problem);
        }
    }
    if !diagnostics.is_empty() {
        return Ok(Err(diagnostics));
    }
    let mut packages = packages(&engine, dir)?;
    let mut parameters = read_parameters(dir)?;
    for package in &mut packages {
        package.parameters = parameters.remove(&package.name).unwrap_or_else(Value::new_object);
    }
    if let Some(unknown) = parameters.keys().next() {
        return Err(InputError(format!(
            "`{}` gives parameters to package `{unknown}`, which declares no `violation` or `deny` rule",
            dir.join(PARAMETERS).display()
        )));
    }
    // Without an input no rule fires, so an error now is in the policies
    // themselves (a compile error): report it once here, not once per object.
    for package in &packages {
        for (entry, file) in &package.entries {
            if let Err(e) = engine.eval_rule(format!("{}.{}", package.path, entry.rule())) {
                let file = sources.files().iter().rposition(|f| f.path == *file).unwrap_or(first);
                diagnostics.push(invalid_policy(sources, &format!("{e:#}"), file, None));
            }
        }
    }
    diagnostics.dedup();
    if !diagnostics.is_empty() {
        return Ok(Err(diagnostics));
    }
    Ok(Ok(Rules { engine, packages }))
}

/// Parses file `index` as Rego v1, else as v0. When neither parses, the
/// error reported is the one found further into the file, since the syntax
/// the author used gets further before it stumbles; on a tie, v0's (a v0
/// file fails as v1 at its first rule body, where v0 may also stop).
fn add_policy(engine: &mut Engine, sources: &Sources, index: usize) -> Result<(), Diagnostic> {
    let Some(file) = sources.get(index) else { return Ok(()) };
    engine.set_rego_v0(false);
    let Err(v1) = engine.add_policy(file.path.clone(), file.text.clone()) else {
        return Ok(());
    };
    engine.set_rego_v0(true);
    let Err(v0) = engine.add_policy(file.path.clone(), file.text.clone()) else {
        return Ok(());
    };
    let (v1, v0) = (format!("{v1:#}"), format!("{v0:#}"));
    let place = |e: &str| location(e).map(|(_, line, column)| (line, column));
    let (shown, other, other_syntax) = if place(&v0) >= place(&v1) { (v0, v1, "v1") } else { (v1, v0, "v0") };
    Err(invalid_policy(sources, &shown, index, Some((other_syntax, &other))))
}

/// Every package that declares `violation` or `deny`, by name.
fn packages(engine: &Engine, dir: &Path) -> Result<Vec<Package>, InputError> {
    let failed = |e: &dyn std::fmt::Display| InputError(format!("cannot read the packages of `{}`: {e}", dir.display()));
    let mut by_name: BTreeMap<String, Package> = BTreeMap::new();
    for module in engine.get_policy_package_components().map_err(|e| failed(&e))? {
        for entry in [Entry::Violation, Entry::Deny] {
            if !engine
                .has_declared_rule_rooted_at(&module.source_file, entry.rule())
                .map_err(|e| failed(&e))?
            {
                continue;
            }
            let package = by_name.entry(module.components.join(".")).or_insert_with(|| Package {
                name: module.components.join("."),
                path: query_path(&module.components),
                entries: Vec::new(),
                parameters: Value::new_object(),
            });
            if !package.entries.iter().any(|(e, _)| *e == entry) {
                package.entries.push((entry, module.source_file.clone()));
            }
        }
    }
    if by_name.is_empty() {
        return Err(InputError(format!(
            "no `violation` or `deny` rule in the `.rego` files of `{}`",
            dir.display()
        )));
    }
    Ok(by_name.into_values().collect())
}

/// `data.a.b`, with bracket notation for components that are not identifiers.
fn query_path(components: &[String]) -> String {
    let mut path = String::from("data");
    for c in components {
        let identifier = c.chars().next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if identifier {
            path.push('.');
            path.push_str(c);
        } else {
            path.push_str(&format!("[{}]", serde_json::Value::from(c.as_str())));
        }
    }
    path
}

fn read_parameters(dir: &Path) -> Result<BTreeMap<String, Value>, InputError> {
    let path = dir.join(PARAMETERS);
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| InputError(format!("cannot read `{}`: {}", path.display(), source::lower_io(&e))))?;
    let values: BTreeMap<String, serde_json::Value> = serde_saphyr::from_str(&text).map_err(|e| {
        InputError(format!(
            "`{}`: {e}\nit must map package names to parameters, as in `netpolc.owner: {{key: team}}`",
            path.display()
        ))
    })?;
    Ok(values.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}

/// The place regorus names in an error (`--> FILE:LINE:COL`): file, line, column.
fn location(error: &str) -> Option<(String, usize, usize)> {
    let at = error.lines().find_map(|l| l.trim_start().strip_prefix("--> "))?;
    let mut parts = at.rsplitn(3, ':');
    let column = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    Some((parts.next()?.to_string(), line, column))
}

/// What a regorus error says, without the place and the quoted source.
fn error_message(error: &str) -> &str {
    error
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| error.lines().find(|l| !l.trim().is_empty()).unwrap_or(error))
        .trim()
}

/// E0702 at the place the error names, or at the start of file `fallback`.
fn invalid_policy(sources: &Sources, error: &str, fallback: usize, other: Option<(&str, &str)>) -> Diagnostic {
    let place = place_in(sources, error);
    let span = place.unwrap_or(Span {
        file: fallback,
        start: 0,
        end: 0,
    });
    let mut d = Diagnostic::new(
        Code::RegoInvalid,
        span,
        format!("Rego policy is not valid: {}", error_message(error)),
    );
    if place.is_none() {
        d = d.with_note(error.trim().to_string());
    }
    if let Some((syntax, other)) = other {
        let at = location(other).map_or(String::new(), |(_, line, column)| format!(" at {line}:{column}"));
        d = d.with_note(format!("read as Rego {syntax}, it fails{at}: {}", error_message(other)));
    }
    d.with_help("fix the policy; each file is read as Rego v1 if it parses so, else as v0 (the syntax of the Gatekeeper library)")
}

/// The span of the place a regorus error names, in the Rego files of `sources`.
fn place_in(sources: &Sources, error: &str) -> Option<Span> {
    let (path, line, column) = location(error)?;
    let file = sources.files().iter().rposition(|f| f.path == path)?;
    Some(point(sources, file, line, column))
}

/// The one-character span at `line` and `column` (1-based) of file `file`,
/// counted as regorus counts them: a tab is 4 columns, another character
/// its length in bytes. Past the end of its line, the end of the line.
fn point(sources: &Sources, file: usize, line: usize, column: usize) -> Span {
    let text = sources.get(file).map_or("", |f| f.text.as_str());
    let line_start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let line_text = text.get(line_start..).unwrap_or("").split('\n').next().unwrap_or("");
    let mut at = 1;
    let (offset, width) = line_text
        .char_indices()
        .find(|&(_, c)| {
            let here = at;
            at += if c == '\t' { 4 } else { c.len_utf8() };
            at > column.max(here)
        })
        .map_or((line_text.len(), 0), |(i, c)| (i, c.len_utf8()));
    Span {
        file,
        start: line_start + offset,
        end: line_start + offset + width,
    }
}

/// What a package said about one object.
struct Verdict {
    package: usize,
    entry: Entry,
    /// The messages of the violations, or the evaluation error.
    outcome: Result<Vec<String>, String>,
}

impl Rules {
    /// Evaluates every rule on every policy (on every core) and returns a
    /// diagnostic per violation, at the intents behind the object. A rule
    /// that fails is reported once, on the first policy it fails on.
    /// `sources` must hold the Rego files, as [`load`] left them.
    pub fn check(&self, policies: &[NetworkPolicy], program: &ir::Program, sources: &Sources) -> Vec<Diagnostic> {
        // One engine per thread: evaluating needs `&mut Engine`, and a clone
        // shares the compiled policies.
        let verdicts = parallel::map_chunks(policies, |_, chunk| {
            let mut engine = self.engine.clone();
            chunk.iter().map(|policy| self.evaluate(&mut engine, policy)).collect()
        });
        let mut out = Vec::new();
        let provenance = lower::Provenance::new(program);
        // A failing rule usually fails on many objects: say so once.
        let mut failures: BTreeMap<(usize, String), (&NetworkPolicy, String, usize)> = BTreeMap::new();
        for (policy, verdicts) in policies.iter().zip(verdicts) {
            for verdict in verdicts {
                let Some(package) = self.packages.get(verdict.package) else {
                    continue;
                };
                let file = package
                    .entries
                    .iter()
                    .find(|(e, _)| *e == verdict.entry)
                    .map_or("", |(_, f)| f.as_str());
                let rule = format!("rule `{}` of package `{}` ({file})", verdict.entry.rule(), package.name);
                match verdict.outcome {
                    Ok(messages) => out.extend(messages.into_iter().map(|m| {
                        at_origin(Code::RegoViolation, m, policy, &provenance)
                            .with_note(rule.clone())
                            .with_help("change the intent so that its policy follows the rule, or ask the rule's owners about it")
                    })),
                    Err(error) => {
                        failures
                            .entry((verdict.package, error))
                            .and_modify(|(_, _, others)| *others += 1)
                            .or_insert((policy, rule, 0));
                    }
                }
            }
        }
        for ((_, error), (policy, rule, others)) in failures {
            out.push(failed_rule(policy, &provenance, sources, &rule, &error, others));
        }
        out
    }

    fn evaluate(&self, engine: &mut Engine, policy: &NetworkPolicy) -> Vec<Verdict> {
        let object = serde_json::to_value(policy).map(Value::from).unwrap_or(Value::Undefined);
        let review = review(policy, &object);
        let mut verdicts = Vec::new();
        for (index, package) in self.packages.iter().enumerate() {
            for &(entry, _) in &package.entries {
                let input = match entry {
                    Entry::Violation => object_of([("review", review.clone()), ("parameters", package.parameters.clone())]),
                    Entry::Deny => object.clone(),
                };
                engine.set_input(input);
                let outcome = engine
                    .eval_rule(format!("{}.{}", package.path, entry.rule()))
                    .map(|v| messages(&v))
                    .map_err(|e| format!("{e:#}"));
                if outcome.as_ref().is_ok_and(Vec::is_empty) {
                    continue;
                }
                verdicts.push(Verdict {
                    package: index,
                    entry,
                    outcome,
                });
            }
        }
        verdicts
    }
}

/// A diagnostic at the intents behind `policy` (the namespace declaration
/// for a `default-deny`).
fn at_origin(code: Code, message: String, policy: &NetworkPolicy, provenance: &lower::Provenance) -> Diagnostic {
    let ns = policy.metadata.namespace.as_deref().unwrap_or("");
    let name = policy.metadata.name.as_deref().unwrap_or("");
    let origins = provenance.of(ns, name);
    let mut d = Diagnostic::new(code, origins.first().copied().unwrap_or_default(), message)
        .with_label(format!("generates policy `{name}` in namespace `{ns}`"));
    for other in origins.iter().skip(1).take(3) {
        d = d.with_secondary(*other, "also generates it");
    }
    if origins.len() > 4 {
        d = d.with_note(format!("{} more intents generate this policy", origins.len() - 4));
    }
    d
}

/// E0703: the rule's error, with the place in the Rego file it names.
fn failed_rule(
    policy: &NetworkPolicy,
    provenance: &lower::Provenance,
    sources: &Sources,
    rule: &str,
    error: &str,
    others: usize,
) -> Diagnostic {
    let name = policy.metadata.name.as_deref().unwrap_or("");
    let d = at_origin(
        Code::RegoEvaluationFailed,
        format!("Rego rule failed on policy `{name}`"),
        policy,
        provenance,
    )
    .with_note(rule.to_string());
    let place = place_in(sources, error);
    let d = match place {
        Some(span) => d.with_secondary(span, error_message(error)),
        None => d.with_note(error.trim().to_string()),
    };
    let d = match others {
        0 => d,
        1 => d.with_note("it fails on 1 other policy too"),
        n => d.with_note(format!("it fails on {n} other policies too")),
    };
    d.with_help("fix the rule: it must not fail on a valid NetworkPolicy")
}

/// The admission review Gatekeeper gives a policy: `input.review`.
fn review(policy: &NetworkPolicy, object: &Value) -> Value {
    let text = |s: Option<&str>| Value::from(s.unwrap_or(""));
    object_of([
        (
            "kind",
            object_of([
                ("group", Value::from("networking.k8s.io")),
                ("version", Value::from("v1")),
                ("kind", Value::from("NetworkPolicy")),
            ]),
        ),
        ("name", text(policy.metadata.name.as_deref())),
        ("namespace", text(policy.metadata.namespace.as_deref())),
        ("operation", Value::from("CREATE")),
        ("object", object.clone()),
    ])
}

fn object_of<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::from(fields.into_iter().map(|(k, v)| (Value::from(k), v)).collect::<BTreeMap<_, _>>())
}

/// The messages of a rule's result: a set (or array) of strings or of
/// objects with `msg`; `true` for a rule that only says no.
fn messages(result: &Value) -> Vec<String> {
    match result {
        Value::Undefined | Value::Null | Value::Bool(false) => Vec::new(),
        Value::Bool(true) => vec!["denied".to_string()],
        Value::Set(items) => items.iter().map(message).collect(),
        Value::Array(items) => items.iter().map(message).collect(),
        other => vec![message(other)],
    }
}

fn message(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.to_string(),
        Value::Object(fields) => match fields.get(&Value::from("msg")) {
            Some(Value::String(s)) => s.to_string(),
            _ => value.to_json_str().unwrap_or_default(),
        },
        _ => value.to_json_str().unwrap_or_default(),
    };
    // A diagnostic message is one line.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks `compilation`'s policies against the rules of `dir` (`--rego`):
/// adds the Rego files to its sources and the diagnostics to its own,
/// and clears its policies when there are errors.
pub fn apply(dir: &Path, compilation: &mut Compilation) -> Result<(), InputError> {
    let found = match load(dir, &mut compilation.sources)? {
        Ok(rules) => rules.check(&compilation.policies, &compilation.program, &compilation.sources),
        Err(diagnostics) => diagnostics,
    };
    compilation.timings.lap("rego");
    compilation.diagnostics.extend(found);
    crate::diagnostics::sort(&mut compilation.diagnostics, &compilation.sources);
    if compilation.has_errors() {
        compilation.policies.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_paths_quote_what_is_not_an_identifier() {
        assert_eq!(query_path(&["netpolc".into(), "owner".into()]), "data.netpolc.owner");
        assert_eq!(query_path(&["lib".into(), "1.0".into()]), r#"data.lib["1.0"]"#);
    }

    #[test]
    fn locations_are_read_from_regorus_errors() {
        let error = "\n--> a:b.rego:3:7\n  |\n3 | deny x\n  |       ^\nerror: unexpected token";
        assert_eq!(location(error), Some(("a:b.rego".to_string(), 3, 7)));
        assert_eq!(location("no place"), None);
    }

    #[test]
    fn messages_come_from_strings_and_msg_fields() {
        let set = Value::from_json_str(r#"[{"msg": "too\n wide", "details": {}}, "plain", {"other": 1}]"#).expect("json");
        assert_eq!(messages(&set), vec!["too wide", "plain", "{ \"other\": 1 }"]);
        assert!(messages(&Value::Undefined).is_empty());
        assert_eq!(messages(&Value::Bool(true)), vec!["denied"]);
    }

    #[test]
    fn points_are_clamped_to_their_line() {
        let mut sources = Sources::new();
        let file = sources.add("p.rego", "package p\nxé y\n\tab\n");
        // `é` is two bytes, so two columns: the space is column 4.
        assert_eq!(point(&sources, file, 2, 4), Span { file, start: 13, end: 14 });
        assert_eq!(point(&sources, file, 2, 99), Span { file, start: 15, end: 15 });
        // A tab is four columns: `b` is column 6.
        assert_eq!(point(&sources, file, 3, 6), Span { file, start: 18, end: 19 });
        assert_eq!(point(&sources, file, 9, 1), Span { file, start: 20, end: 20 });
    }
}
