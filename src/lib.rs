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
pub mod documents;
pub mod emit;
pub mod evaluate;
pub mod explain;
pub mod fleet;
pub mod flowtable;
pub mod governance;
pub mod graph;
mod grouping;
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
    /// The policies, sorted by namespace and name. Empty when there are
    /// errors, and when compiled for [`Output::Documents`].
    pub policies: Vec<NetworkPolicy>,
    /// The policies as text, one document each, in the same order, when
    /// compiled for [`Output::Documents`]. Empty when there are errors.
    pub documents: Vec<documents::Document>,
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

    /// The policies as a YAML stream, from the objects or from YAML documents
    /// (empty for JSON documents).
    pub fn yaml(&self) -> String {
        if self.documents.is_empty() {
            emit::yaml_stream(&self.policies)
        } else {
            let mut out = Vec::new();
            // Writing into a Vec cannot fail.
            let _ = documents::write(&self.documents, emit::Format::Yaml, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
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
    compile_with(sources, early, config, None, Options::FULL)
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

/// What a compilation keeps of the policies it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The objects ([`Compilation::policies`]), for whatever reads them.
    Objects,
    /// Their text only, in this format ([`Compilation::documents`]): each
    /// object is dropped once rendered, which takes a fraction of the memory.
    Documents(emit::Format),
}

/// How much a compilation checks and what it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How much of the output is checked by evaluating it.
    pub verification: Verification,
    /// What is kept of the policies.
    pub output: Output,
}

impl Options {
    /// What `check` and `verify` do: the full check, objects kept.
    pub const FULL: Options = Options {
        verification: Verification::Full,
        output: Output::Objects,
    };
}

/// What one compilation keeps for the next (watch mode): the syntax trees
/// of the files, and the documents of the objects.
#[derive(Debug, Default)]
pub struct Cache {
    /// By file index: a file at the same position with the same text is
    /// not parsed again (a tree depends on nothing else: its spans carry
    /// the file's position).
    entries: Vec<Option<CachedParse>>,
    /// The last run's documents, with the inputs each was built from
    /// (see [`documents`]).
    documents: Vec<documents::Document>,
    /// What checking found in each file in the last run: its declarations
    /// and problems, and its intents as resolved.
    check: check::Memo,
}

/// A file's text, its tree and its syntax problems.
#[derive(Debug)]
struct CachedParse {
    text: String,
    tree: ast::File,
    problems: Vec<Diagnostic>,
}

/// [`compile`] with the given `options`, re-using what `cache` holds of
/// earlier runs and leaving this run's in it.
pub fn compile_with(sources: Sources, early: Vec<Diagnostic>, config: &Config, cache: Option<&mut Cache>, options: Options) -> Compilation {
    compile_then(sources, early, config, cache, options, None)
}

/// What reads the documents of [`compile_then`] as soon as they are final.
pub type OnOutput<'f> = &'f mut dyn FnMut(&[documents::Document]);

/// [`compile_with`], handing the documents to `on_output` as soon as they
/// are final, before the lints are done: with [`Output::Documents`], when
/// there is no error and no `expect` statement. The compilation then
/// carries the same documents (watch mode writes them this way, so that
/// the output does not wait for lint).
pub fn compile_then(
    mut sources: Sources,
    early: Vec<Diagnostic>,
    config: &Config,
    mut cache: Option<&mut Cache>,
    options: Options,
    mut on_output: Option<OnOutput>,
) -> Compilation {
    let verification = options.verification;
    let mut timings = Timings::default();
    let mut diagnostics = early;
    let mut unreadable: Vec<usize> = diagnostics.iter().map(|d| d.span().file).collect();
    unreadable.extend(sources.project_file());
    // The trees of unchanged files come out of the cache (a tree is a
    // function of its file's index and text alone), and go back once read.
    let mut earlier = cache.as_deref_mut().map(|c| std::mem::take(&mut c.entries)).unwrap_or_default();
    let mut slots: Vec<Option<(ast::File, Vec<Diagnostic>)>> = (sources.files().iter().enumerate())
        .map(|(i, file)| {
            if unreadable.contains(&i) {
                return Some((ast::File::default(), Vec::new()));
            }
            match earlier.get_mut(i).and_then(Option::take) {
                Some(c) if c.text == file.text => Some((c.tree, c.problems)),
                _ => None,
            }
        })
        .collect();
    drop(earlier);
    let todo: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_none()).collect();
    // A tree from the cache means the text the last run checked.
    let same_text: Vec<bool> = (0..slots.len()).map(|i| slots[i].is_some() && !unreadable.contains(&i)).collect();
    let parsed = parallel::map(&todo, |_, &i| parse::parse(i, &sources.files()[i].text));
    for (&i, tree) in todo.iter().zip(parsed) {
        slots[i] = Some(tree);
    }
    let mut files = Vec::with_capacity(slots.len());
    let mut syntax_problems = Vec::new();
    for (tree, mut problems) in slots.into_iter().flatten() {
        if cache.is_some() {
            syntax_problems.push(problems.clone());
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
            documents: Vec::new(),
            program: ir::Program::default(),
            timings,
        };
    }
    let memo = cache.as_deref_mut().map(|c| (&mut c.check, same_text.as_slice()));
    let (program, mut problems) = check::check_with(&files, &sources, config, memo);
    diagnostics.append(&mut problems);
    diagnostics.extend(governance::check(&program, config));
    timings.lap("check");
    let silencing = silence::Silencing::read(&files, &sources, &mut diagnostics);
    // The model reads the objects: the `expect` statements and the full check need them.
    let wanted = verification == Verification::Full || !program.expectations.is_empty();
    // Lints that the diagnostics of later stages make moot are dropped once
    // those are known. Lint only warns: with a reader of the early output,
    // it runs once the output is handed over, so that nothing delays it.
    // Otherwise lint runs first and the trees go before lowering builds the
    // objects, which is when memory peaks.
    let lint_first = on_output.is_none();
    // Lints the trees, then puts them into the cache for the next run (or frees them).
    let lint_trees =
        |(files, syntax_problems): (Vec<ast::File>, Vec<Vec<Diagnostic>>), cache: Option<&mut Cache>, timings: &mut Timings| {
            let lints = lint::lint(&files, &program);
            keep_trees(cache, files, syntax_problems, &sources, &unreadable);
            timings.lap("lint");
            lints
        };
    let mut trees = Some((files, syntax_problems));
    let mut lints = match trees.take_if(|_| lint_first) {
        Some(trees) => lint_trees(trees, cache.as_deref_mut(), &mut timings),
        None => Vec::new(),
    };
    let (plan, mut problems) = lower::plan(&program, &sources, config);
    diagnostics.append(&mut problems);
    timings.lap("lower");
    let (mut policies, mut documents) = match options.output {
        Output::Documents(format) if !wanted => {
            let earlier = cache.as_deref().map(|c| c.documents.as_slice());
            let documents = documents::render(&plan, earlier, format);
            let mut provenance = None;
            for doc in documents.iter().filter(|d| !d.violations().is_empty()) {
                let provenance = provenance.get_or_insert_with(|| lower::Provenance::new(&program));
                diagnostics.push(invalid_object(doc.namespace(), doc.name(), doc.violations(), provenance));
            }
            timings.lap("render");
            // Only lints and silencing are left, and neither makes or removes an error.
            if let Some(on_output) = on_output.as_mut()
                && !diagnostics::has_errors(&diagnostics)
            {
                on_output(&documents);
                timings.lap("output");
            }
            // Freeing the plan (a name per pair) waits until the output is handed over.
            drop(plan);
            (Vec::new(), documents)
        }
        _ => {
            let indexes: Vec<usize> = (0..plan.len()).collect();
            let policies = parallel::map(&indexes, |_, &i| plan.build(i));
            drop(plan);
            diagnostics.extend(validate_output(&policies, &program));
            timings.lap("validate");
            (policies, Vec::new())
        }
    };
    if let Some(trees) = trees {
        lints = lint_trees(trees, cache.as_deref_mut(), &mut timings);
    }
    if let Some(cache) = cache {
        cache.documents = documents.clone();
    }
    diagnostics.extend(lint::settle(lints, &diagnostics));
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
    if let Output::Documents(format) = options.output
        && !policies.is_empty()
    {
        documents = documents::of_objects(&policies, format);
        policies = Vec::new();
    }
    diagnostics = silencing.apply(diagnostics, &sources, config);
    timings.lap("silence");
    diagnostics::sort(&mut diagnostics, &sources);
    if diagnostics::has_errors(&diagnostics) {
        policies.clear();
        documents.clear();
    }
    Compilation {
        sources,
        diagnostics,
        policies,
        documents,
        program,
        timings,
    }
}

/// Puts the trees of this run into `cache` for the next (or frees them).
fn keep_trees(
    cache: Option<&mut Cache>,
    files: Vec<ast::File>,
    syntax_problems: Vec<Vec<Diagnostic>>,
    sources: &Sources,
    unreadable: &[usize],
) {
    if let Some(cache) = cache {
        let entries = files.into_iter().zip(syntax_problems).enumerate();
        cache.entries = entries
            .map(|(i, (tree, problems))| {
                let text = sources.files()[i].text.clone();
                (!unreadable.contains(&i)).then_some(CachedParse { text, tree, problems })
            })
            .collect();
    } else {
        parallel::free_elsewhere(files);
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
        let violations: Vec<String> = violations.iter().map(ToString::to_string).collect();
        out.push(invalid_object(ns, name, &violations, provenance));
    }
    out
}

/// A violation of Kubernetes' validation, reported at the intent behind the
/// object (or the namespace declaration).
fn invalid_object(ns: &str, name: &str, violations: &[String], provenance: &lower::Provenance) -> Diagnostic {
    let span = provenance.of(ns, name).first().copied().unwrap_or_default();
    let mut d = Diagnostic::new(
        diagnostics::Code::InvalidObject,
        span,
        format!("policy `{name}` in namespace `{ns}` would be rejected by Kubernetes"),
    );
    for v in violations {
        d = d.with_note(v.clone());
    }
    d.with_help("if this names a value you wrote (metadata, names), shorten it; otherwise it is a bug in netpolc: please report it")
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

    /// Two files, each naming a workload of the other's namespace.
    const FRONTEND: &str = "namespace frontend\nweb -> backend/api:8080, allow dns\n";
    const BACKEND: &str = "namespace backend\napi -> db:5432\n";

    #[test]
    fn cached_trees_give_the_same_result_as_parsing_again() {
        let (a, b) = (FRONTEND, BACKEND);
        let config = Config::default();
        let mut cache = Cache::default();
        let c = "namespace backend\nworkload api = tier=api\napi -> db:5432\n";
        let runs: [&[(&str, &str)]; 11] = [
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
            // A declaration in another file changes what an unchanged file's intent means.
            &[("a.np", a), ("c.np", c)],
            &[("a.np", a), ("c.np", &c.replace("tier=api", "tier=api2"))],
            &[("a.np", a), ("c.np", "namespace backend\napi -> db:5432\n")],
            // A name close to a declaration in another file, then declared there.
            &[("a.np", &a.replace("backend/api", "backend/apii")), ("c.np", c)],
            &[
                ("a.np", &a.replace("backend/api", "backend/apii")),
                ("c.np", &format!("{c}workload apii = tier=apii\n")),
            ],
        ];
        for files in runs {
            let cached = compile_with(sources(files), Vec::new(), &config, Some(&mut cache), Options::FULL);
            let fresh = compile(sources(files), Vec::new(), &config);
            assert_eq!(outcome(&cached), outcome(&fresh), "{files:?}");
        }
    }

    #[test]
    fn the_output_is_handed_over_early_only_when_it_is_final() {
        let yaml = Options {
            verification: Verification::Expectations,
            output: Output::Documents(emit::Format::Yaml),
        };
        let cases: [(&str, Options, bool); 6] = [
            ("namespace a\nweb -> api:80\n", yaml, true),
            // Only warnings (every port, a typo): still final.
            ("namespace a\nworkload api = x=y\nweb -> apii\n", yaml, true),
            ("namespace a\nweb -> api:99999\n", yaml, false),
            // `expect` statements are checked against the objects, after.
            ("namespace a\nweb -> api:80\nexpect web -> api:80 allowed\n", yaml, false),
            ("namespace a\nweb -> api:80\n", Options::FULL, false),
            (
                "namespace a\nweb -> api:80\n",
                Options {
                    verification: Verification::Expectations,
                    output: Output::Objects,
                },
                false,
            ),
        ];
        for (text, options, early) in cases {
            let mut handed: Option<Vec<documents::Document>> = None;
            let mut take = |docs: &[documents::Document]| handed = Some(docs.to_vec());
            let c = compile_then(
                sources(&[("a.np", text)]),
                Vec::new(),
                &Config::default(),
                None,
                options,
                Some(&mut take),
            );
            let without = compile_with(sources(&[("a.np", text)]), Vec::new(), &Config::default(), None, options);
            assert_eq!(outcome(&c), outcome(&without), "{text}");
            assert_eq!(handed.is_some(), early, "{text}");
            if let Some(handed) = handed {
                assert!(!c.has_errors(), "{text}");
                assert!(!handed.is_empty());
                let texts = |docs: &[documents::Document]| docs.iter().map(|d| d.text().to_string()).collect::<Vec<_>>();
                assert_eq!(texts(&handed), texts(&c.documents), "{text}");
            }
        }
    }

    #[test]
    fn kept_resolutions_give_the_same_result_as_checking_again() {
        let a = "namespace frontend\nworkload web = tier=web\n@owner team-a\nweb -> backend/api:8080, allow dns\n";
        let b = "namespace backend\nworkload api = tier=api\napi -> db:5432\n";
        // Problems pass one finds in the file itself, and an `expect` (which
        // pass one hands over by reference, so the file is read every time).
        let noisy = format!("{a}@-bad x\nweb -> backend/api:9090\nexpect web -> backend/api:8080 allowed\n@owner left-over\n");
        let noisy_quiet = format!("{a}@-bad x\nweb -> backend/api:9090\n@owner left-over\n");
        let runs: [&[(&str, &str)]; 16] = [
            &[("a.np", a), ("b.np", b)],
            // With a.np kept as resolved: a duplicate of its intent, and a typo of its workload.
            &[("a.np", a), ("b.np", &format!("{b}frontend/web -> api:8080\n"))],
            &[("a.np", a), ("b.np", &format!("{b}frontend/webb -> api:8080\n"))],
            // A duplicate of an unchanged file's intent, in another file.
            &[("a.np", a), ("b.np", &format!("{b}namespace frontend\nweb -> backend/api:8080\n"))],
            // A typo of a workload declared in an unchanged file, then its declaration.
            &[
                ("a.np", a),
                (
                    "b.np",
                    "namespace backend\napi -> db:5432\nnamespace frontend\nwebb -> backend/api:80\n",
                ),
            ],
            &[
                ("a.np", a),
                (
                    "b.np",
                    "namespace backend\napi -> db:5432\nnamespace frontend\nworkload webb = x=y\nwebb -> backend/api:80\n",
                ),
            ],
            // A declaration moved within a file: only its place changes.
            &[("a.np", a), ("b.np", &format!("# moved\n{b}"))],
            // An external that takes a bare name away from a workload.
            &[("a.np", a), ("b.np", &format!("external web = 10.0.0.0/8\n{b}"))],
            &[("a.np", a), ("b.np", b)],
            // The same texts under other names.
            &[("c.np", a), ("d.np", b)],
            // With a file kept whose own problems pass one reports, while
            // another declares a workload of the same name differently.
            &[("a.np", &noisy), ("b.np", b)],
            &[
                ("a.np", &noisy),
                ("b.np", &format!("{b}namespace frontend\nworkload web = tier=other\n")),
            ],
            &[("a.np", &noisy_quiet), ("b.np", b)],
            &[
                ("a.np", &noisy_quiet),
                ("b.np", &format!("namespace frontend\nworkload web = tier=other\n{b}")),
            ],
            &[("a.np", &noisy_quiet), ("b.np", &format!("{b}external api = 10.0.0.0/8\n"))],
            &[("a.np", &noisy_quiet), ("b.np", b)],
        ];
        let configs = [
            Config::default(),
            Config {
                declared_only: true,
                ..Config::default()
            },
            // Read while resolving: what an undeclared name selects.
            Config {
                workload_label: "app.kubernetes.io/name".to_string(),
                ..Config::default()
            },
            // Read by pass one: the annotation keys of metadata.
            Config {
                annotation_prefix: "netpolc.example.org".to_string(),
                ..Config::default()
            },
        ];
        let mut cache = Cache::default();
        let mut check = |files: &[(&str, &str)], config: &Config| {
            let cached = compile_with(sources(files), Vec::new(), config, Some(&mut cache), Options::FULL);
            let fresh = compile(sources(files), Vec::new(), config);
            assert_eq!(outcome(&cached), outcome(&fresh), "{files:?}");
            assert_eq!(cached.program, fresh.program, "{files:?}");
        };
        // Each set of files under each configuration in turn: the configuration
        // changes between runs that read the same files.
        for files in runs {
            for config in &configs {
                check(files, config);
            }
        }
        // Then each configuration over every set: the files change between
        // runs under the same configuration.
        for config in &configs {
            for files in runs {
                check(files, config);
            }
        }
    }

    #[test]
    fn unchanged_files_are_not_resolved_again_unless_a_declaration_changes() {
        let (a, b) = (FRONTEND, BACKEND);
        let config = Config::default();
        let mut cache = Cache::default();
        let mut run = |files: &[(&str, &str)]| compile_with(sources(files), Vec::new(), &config, Some(&mut cache), Options::FULL).program;
        // Whether each flow's origin is the very one of the run before.
        let kept = |before: &ir::Program, after: &ir::Program| -> Vec<bool> {
            after
                .origins
                .iter()
                .map(|o| before.origins.iter().any(|p| std::sync::Arc::ptr_eq(o, p)))
                .collect()
        };
        let first = run(&[("a.np", a), ("b.np", b)]);
        let edited = run(&[("a.np", a), ("b.np", "namespace backend\napi -> db:5433\n")]);
        assert_eq!(kept(&first, &edited), [true, true, false], "only b.np is resolved again");
        let declared = run(&[("a.np", a), ("b.np", "namespace backend\nworkload db = x=y\napi -> db:5433\n")]);
        assert_eq!(
            kept(&edited, &declared),
            [false, false, false],
            "a new declaration resolves every file again"
        );
        let renamed = run(&[("a2.np", a), ("b.np", "namespace backend\nworkload db = x=y\napi -> db:5433\n")]);
        assert_eq!(
            kept(&declared, &renamed),
            [false, false, true],
            "a renamed file is resolved again (its origins name it)"
        );
    }
}
