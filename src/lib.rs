//! netpolc compiles `.np` intent files into paired Kubernetes NetworkPolicies.
//!
//! ```
//! let out = netpolc::compile_str("shop.np", "namespace frontend\nweb -> backend/api:8080, allow dns\n");
//! assert!(out.diagnostics.iter().all(|d| d.severity() != netpolc::diagnostics::Severity::Error));
//! assert!(out.yaml().contains("name: web-to-backend.api"));
//! ```
#![doc = include_str!("../docs/architecture.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// pest_derive without its `std` feature (which probes the stack on every rule
// call, needless for a grammar without recursion) names `alloc` paths.
extern crate alloc;

pub mod ast;
pub mod check;
pub mod cidr;
pub mod cluster;
pub mod config;
pub mod diagnostics;
pub mod diff;
pub mod diff_git;
pub mod emit;
pub mod evaluate;
pub mod explain;
pub mod fleet;
pub mod flowtable;
pub mod governance;
pub mod graph;
pub mod ir;
pub mod lint;
pub mod lower;
pub mod model;
pub mod parallel;
pub mod parse;
pub mod project;
pub mod reach;
pub mod rego;
pub mod report;
pub mod silence;
pub mod source;
pub mod validate;
pub mod verify;
pub mod watch;
pub mod yaml;

pub use config::Config;
pub use diagnostics::{Diagnostic, Severity};
pub use source::Sources;

use k8s_openapi::api::networking::v1::NetworkPolicy;

/// Words with a meaning of their own; as names they must be quoted.
pub const KEYWORDS: &[&str] = &[
    "namespace",
    "workload",
    "external",
    "isolate",
    "allow",
    "dns",
    "world",
    "internet",
    "cluster",
    "except",
    "in",
    "notin",
    "ingress",
    "egress",
    "both",
    "none",
    "meta",
    "expect",
    "expose",
];

/// The result of a compilation.
#[derive(Debug, Clone)]
pub struct Compilation {
    /// The input files.
    pub sources: Sources,
    /// Every problem found, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// The policies, sorted by namespace and name. Empty when there are errors.
    pub policies: Vec<NetworkPolicy>,
    /// The checked program.
    pub program: ir::Program,
    /// How long each stage took.
    pub timings: Timings,
}

impl Compilation {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        diagnostics::has_errors(&self.diagnostics)
    }

    /// The policies as a YAML stream.
    pub fn yaml(&self) -> String {
        emit::yaml_stream(&self.policies)
    }

    /// The diagnostics as plain text.
    pub fn render_diagnostics(&self) -> String {
        diagnostics::render(&self.diagnostics, &self.sources, false)
    }
}

/// Policies from a mix of inputs: `.np` intents (compiled) and
/// NetworkPolicy YAML or JSON files (`.yaml`, `.yml`, `.json`), which may
/// come from any tool.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The compiled intents (empty when only YAML was given).
    pub compilation: Compilation,
    /// Every policy: the compiled ones, then those read from files.
    pub policies: Vec<NetworkPolicy>,
}

/// Loads [`Inputs`]; folders are searched for `.np` files.
pub fn load_inputs(paths: &[std::path::PathBuf], config: &Config) -> Result<Inputs, source::InputError> {
    let is_objects = |p: &std::path::Path| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
    let (objects, intents): (Vec<_>, Vec<_>) = paths.iter().cloned().partition(|p| is_objects(p));
    let (sources, early) = if intents.is_empty() {
        (Sources::new(), Vec::new())
    } else {
        source::load(&intents)?
    };
    let compilation = compile(sources, early, config);
    let mut policies = compilation.policies.clone();
    for path in objects {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| source::InputError(format!("cannot read `{}`: {}", path.display(), source::lower_io(&e))))?;
        let found = cluster::load_policies(&text).map_err(|e| source::InputError(format!("`{}`: {e}", path.display())))?;
        policies.extend(found);
    }
    Ok(Inputs { compilation, policies })
}

/// Compiles one in-memory file.
pub fn compile_str(name: &str, text: &str) -> Compilation {
    let mut sources = Sources::new();
    sources.add(name, text);
    compile(sources, Vec::new(), &Config::default())
}

/// Runs every stage on `sources`, including the self-check of the output
/// against the intents ([`Verification::Full`]). `early` holds diagnostics
/// found while loading (files that are not text); those files are not parsed.
pub fn compile(sources: Sources, early: Vec<Diagnostic>, config: &Config) -> Compilation {
    compile_with(sources, early, config, None, Verification::Full)
}

/// How much of the output a compilation checks by evaluating it
/// (decision 0019).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Every flow of the model against the intents (`verify`), and the
    /// `expect` statements: what `check` and `verify` do.
    Full,
    /// The `expect` statements only: what `build` and `watch` do, since
    /// the full check costs more than the rest of the compilation together.
    Expectations,
}

/// Syntax trees kept from one compilation to the next (watch mode): a file
/// at the same position with the same text is not parsed again (a tree
/// depends on nothing else: its spans carry the file's position).
#[derive(Debug, Default)]
pub struct ParseCache {
    /// By file index.
    entries: Vec<Option<CachedParse>>,
}

/// A file's text, its tree and its syntax problems.
#[derive(Debug, Clone)]
struct CachedParse {
    text: String,
    tree: ast::File,
    problems: Vec<Diagnostic>,
}

impl ParseCache {
    fn get(&self, i: usize, file: &source::SourceFile) -> Option<(ast::File, Vec<Diagnostic>)> {
        match self.entries.get(i) {
            Some(Some(c)) if c.text == file.text => Some((c.tree.clone(), c.problems.clone())),
            _ => None,
        }
    }
}

/// [`compile`] with the given `verification`, re-using the syntax trees of
/// unchanged files from `cache` and leaving this run's trees in it.
pub fn compile_with(
    mut sources: Sources,
    early: Vec<Diagnostic>,
    config: &Config,
    mut cache: Option<&mut ParseCache>,
    verification: Verification,
) -> Compilation {
    let mut timings = Timings::default();
    let mut diagnostics = early;
    let mut unreadable: Vec<usize> = diagnostics.iter().map(|d| d.span().file).collect();
    unreadable.extend(sources.project_file());
    let cached = cache.as_deref();
    let parsed = parallel::map(sources.files(), |i, file| {
        if unreadable.contains(&i) {
            (ast::File::default(), Vec::new(), true)
        } else if let Some((tree, problems)) = cached.and_then(|c| c.get(i, file)) {
            // Parsing is a function of the file's index and text alone.
            (tree, problems, true)
        } else {
            let (tree, problems) = parse::parse(i, &file.text);
            (tree, problems, false)
        }
    });
    let mut files = Vec::with_capacity(parsed.len());
    if let Some(cache) = cache.as_deref_mut() {
        cache.entries.resize(sources.files().len(), None);
    }
    for (i, (tree, mut problems, reused)) in parsed.into_iter().enumerate() {
        if let Some(cache) = cache.as_deref_mut()
            && !reused
        {
            let file = &sources.files()[i];
            cache.entries[i] = Some(CachedParse {
                text: file.text.clone(),
                tree: tree.clone(),
                problems: problems.clone(),
            });
        }
        diagnostics.append(&mut problems);
        files.push(tree);
    }
    timings.lap("parse");
    // A broken project file would make every rule say something wrong: stop at its problems.
    let project = project::attach(config, &mut sources);
    if diagnostics::has_errors(&project) {
        diagnostics.extend(project);
        diagnostics::sort(&mut diagnostics, &sources);
        return Compilation {
            sources,
            diagnostics,
            policies: Vec::new(),
            program: ir::Program::default(),
            timings,
        };
    }
    let (program, mut problems) = check::check(&files, &sources, config);
    diagnostics.append(&mut problems);
    diagnostics.extend(governance::check(&program, config));
    timings.lap("check");
    // Lint, and read the silencing comments, before lowering builds the
    // objects, which is when memory peaks: by then the trees and lint's own
    // tables are freed. Lints that the diagnostics of later stages make moot
    // are dropped once those are known.
    let lints = lint::lint(&files, &program);
    let silencing = silence::Silencing::read(&files, &sources, &mut diagnostics);
    drop(files);
    timings.lap("lint");
    let (mut policies, mut problems) = lower::lower(&program, &sources, config);
    diagnostics.append(&mut problems);
    timings.lap("lower");
    diagnostics.extend(validate_output(&policies, &program));
    timings.lap("validate");
    diagnostics.extend(lint::settle(lints, &diagnostics));
    let wanted = verification == Verification::Full || !program.expectations.is_empty();
    if wanted && !diagnostics::has_errors(&diagnostics) {
        let mut model = model::synthesize(&program, config);
        model.probe_policies(&policies);
        timings.lap("model");
        if verification == Verification::Full {
            let mismatches = verify::verify(&program, &policies, &model);
            diagnostics.extend(verify::mismatch_diagnostics(&mismatches, &program, &model));
            timings.lap("verify");
        }
        diagnostics.extend(verify::check_expectations(&program, &policies, &model));
        timings.lap("expect");
    }
    diagnostics = silencing.apply(diagnostics, &sources, config);
    timings.lap("silence");
    diagnostics::sort(&mut diagnostics, &sources);
    if diagnostics::has_errors(&diagnostics) {
        policies.clear();
    }
    Compilation {
        sources,
        diagnostics,
        policies,
        program,
        timings,
    }
}

/// How long each stage of a compilation took.
#[derive(Debug, Clone)]
pub struct Timings {
    last: std::time::Instant,
    /// Stage names and durations, in order.
    pub stages: Vec<(&'static str, std::time::Duration)>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            last: std::time::Instant::now(),
            stages: Vec::new(),
        }
    }
}

impl Timings {
    /// Records the time since the previous lap under `stage`.
    pub fn lap(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        self.stages.push((stage, now - self.last));
        self.last = now;
    }
}

/// Applies Kubernetes' validation to every generated object. A violation is
/// reported at the intent behind the object (or the namespace declaration).
fn validate_output(policies: &[NetworkPolicy], program: &ir::Program) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // One validator per thread's chunk, which checks each distinct key and value once.
    let verdicts = parallel::map_chunks(policies, |_, chunk| {
        let mut validator = validate::Validator::default();
        chunk.iter().map(|policy| validator.validate(policy)).collect()
    });
    let mut provenance = None;
    for (policy, violations) in policies.iter().zip(verdicts) {
        if violations.is_empty() {
            continue;
        }
        let ns = policy.metadata.namespace.as_deref().unwrap_or("");
        let name = policy.metadata.name.as_deref().unwrap_or("");
        let provenance = provenance.get_or_insert_with(|| lower::Provenance::new(program));
        let span = provenance.of(ns, name).first().copied().unwrap_or_default();
        let mut d = Diagnostic::new(
            diagnostics::Code::InvalidObject,
            span,
            format!("policy `{name}` in namespace `{ns}` would be rejected by Kubernetes"),
        );
        for v in violations {
            d = d.with_note(v.to_string());
        }
        d = d
            .with_help("if this names a value you wrote (metadata, names), shorten it; otherwise it is a bug in netpolc: please report it");
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> Sources {
        let mut sources = Sources::new();
        for &(name, text) in files {
            sources.add(name, text);
        }
        sources
    }

    /// What a compilation says, to compare a cached run with a fresh one.
    fn outcome(c: &Compilation) -> (String, String) {
        (c.yaml(), c.render_diagnostics())
    }

    #[test]
    fn cached_trees_give_the_same_result_as_parsing_again() {
        let a = "namespace frontend\nweb -> backend/api:8080, allow dns\n";
        let b = "namespace backend\napi -> db:5432\n";
        let config = Config::default();
        let mut cache = ParseCache::default();
        let runs: [&[(&str, &str)]; 6] = [
            &[("a.np", a), ("b.np", b)],
            // An edit: the edited file must be parsed again.
            &[("a.np", a), ("b.np", "namespace backend\napi -> db:5433\n")],
            // A syntax error, then its repair.
            &[("a.np", "namespace frontend\nweb -> \n"), ("b.np", b)],
            &[("a.np", a), ("b.np", b)],
            // A new file in front shifts every index (spans carry the index).
            &[("0.np", "namespace ops\nbot -> frontend/web:80\n"), ("a.np", a), ("b.np", b)],
            // A renamed file at the same position keeps its tree; the name reaches only the annotations.
            &[
                ("0.np", "namespace ops\nbot -> frontend/web:80\n"),
                ("a-renamed.np", a),
                ("b.np", b),
            ],
        ];
        for files in runs {
            let cached = compile_with(sources(files), Vec::new(), &config, Some(&mut cache), Verification::Full);
            let fresh = compile(sources(files), Vec::new(), &config);
            assert_eq!(outcome(&cached), outcome(&fresh), "{files:?}");
        }
    }
}
