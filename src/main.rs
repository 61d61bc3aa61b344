//! The `netpolc` command line: arguments in, exit codes out. All the work is in the library.

use clap::{Parser, Subcommand, ValueEnum};
use netpolc::emit::{self, Format};
use netpolc::graph;
use netpolc::report;
use netpolc::{Compilation, Config, Options, Output, Severity, Verification};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// The compiler allocates millions of small objects (selectors, strings, maps
// of the Kubernetes types) across threads; mimalloc does that 1.3-1.8 times
// faster than glibc here, for more peak memory (decision 0018). Its version
// 2 line (Cargo.toml) touches far less fresh memory here than version 3
// (decision 0028).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (decision 0029). A run
/// touches its memory once and exits. A huge page is a free 2 MB block, and
/// in a VM whose host takes such blocks back soon after they are freed (free
/// page reporting), each huge-page fault after a pause waits for the host to
/// supply 2 MB again: measured here, a fleet build after a pause took 1.8
/// times as long with huge pages as with small ones.
#[cfg(target_os = "linux")]
fn small_pages_only() {
    // Only speed is at stake: if the kernel refuses, the default stays.
    let _ = nix::sys::prctl::set_thp_disable(true);
}

#[cfg(not(target_os = "linux"))]
fn small_pages_only() {}

#[derive(Parser)]
#[command(name = "netpolc", version, about = "Compile .np intents into paired Kubernetes NetworkPolicies")]
#[command(
    after_help = "Examples:\n  netpolc build examples/shop.np\n  netpolc build policies/ -o deploy/netpol\n  netpolc check policies/ --deny-warnings\n  netpolc graph policies/ --format mermaid"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// When to colour diagnostics (`auto`: on a terminal, unless NO_COLOR is set)
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
    /// Print how long each compiler stage took, on stderr
    #[arg(long, global = true)]
    timings: bool,
    /// The project file [default: the first netpolc.toml in the inputs' folder or above]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Compile intents and write the NetworkPolicies
    #[command(
        after_help = "Examples:\n  netpolc build examples/shop.np                # YAML on stdout\n  netpolc build policies/ -o deploy/netpol       # one file per namespace + kustomization.yaml\n  netpolc build policies/ --format json          # a Kubernetes List\n\nExit codes: 0 written, 1 problems in the input (nothing written), 2 bad usage or I/O error."
    )]
    Build {
        /// `.np` files, or folders searched recursively for them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Write `<namespace>.yaml` files and `kustomization.yaml` into this folder instead of stdout
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = OutputFormat::Yaml)]
        format: OutputFormat,
        /// Treat warnings as errors
        #[arg(long)]
        deny_warnings: bool,
        /// Check every generated policy against the Rego rules (OPA Gatekeeper `violation`, conftest `deny`) of this folder
        #[arg(long, value_name = "DIR")]
        rego: Option<PathBuf>,
    },
    /// Prove that the emitted policies allow exactly what the intents say
    #[command(
        after_help = "Examples:\n  netpolc verify examples/shop.np\n  netpolc verify policies/\n\n`check` and `build` run the same proof; `verify` also says what it covered.\nExit codes: 0 proved, 1 problems in the input or a mismatch (a bug in netpolc), 2 bad usage or I/O error."
    )]
    Verify {
        /// `.np` files, or folders searched recursively for them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// How to report diagnostics (json, sarif and github go to stdout; see docs/ci.md)
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
    },
    /// Explain why a connection is allowed or denied
    #[command(
        after_help = "Examples:\n  netpolc explain frontend/web backend/catalog:8080 examples/shop.np\n  netpolc explain world frontend/web:443 policies/\n  netpolc explain shop/web-5d9c backend/api-7f6b:8080 deploy/netpol/*.yaml --cluster cluster.yaml\n\nExit codes: 0 explained, 1 problems in the input, 2 bad usage or I/O error."
    )]
    Explain(ExplainArgs),
    /// Show the connectivity that a change adds and removes
    #[command(
        after_help = "Examples:\n  netpolc diff old/ new/\n  netpolc diff --git origin/main policies/ --format markdown > comment.md\n  netpolc diff before.yaml after.yaml --format json\n\nA change that only renames or reorders shows no difference.\nExit codes: 0 compared, 1 problems in the input, 2 bad usage or I/O error."
    )]
    Diff(DiffArgs),
    /// Check intents without writing anything
    #[command(
        after_help = "Examples:\n  netpolc check policies/\n  netpolc check team-a.np team-b.np --deny-warnings\n  netpolc check policies/ --rego rules/                    # also OPA Gatekeeper / conftest rules\n  netpolc check policies/ --format sarif > netpolc.sarif   # for code scanning\n  netpolc check policies/ --format github                  # annotations in a GitHub Actions log\n\nWith --format json, sarif or github the report alone goes to stdout (see docs/ci.md).\nExit codes: 0 clean, 1 problems in the input, 2 bad usage or I/O error."
    )]
    Check {
        /// `.np` files, or folders searched recursively for them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Treat warnings as errors (exit 1)
        #[arg(long)]
        deny_warnings: bool,
        /// How to report diagnostics (json, sarif and github go to stdout; see docs/ci.md)
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
        /// Check every generated policy against the Rego rules (OPA Gatekeeper `violation`, conftest `deny`) of this folder
        #[arg(long, value_name = "DIR")]
        rego: Option<PathBuf>,
    },
    /// Rebuild the output folder whenever the intents change
    #[command(
        after_help = "Examples:\n  netpolc watch policies/ -o deploy/netpol\n  netpolc watch policies/ -o deploy/netpol --exec 'kubectl apply --dry-run=server -k deploy/netpol'\n  netpolc watch policies/ -o deploy/netpol --diff --clear\n  netpolc watch policies/ -o deploy/netpol --once     # build and exit, for scripts\n\nOnly files whose content changed are rewritten, each atomically; with errors the last good output stays.\nExit codes: 0 on Ctrl-C (or --once: written), 1 problems in the input (--once), 2 bad usage or I/O error."
    )]
    Watch(WatchArgs),
    /// Draw the intent graph: namespaces as clusters, edges labelled with ports
    #[command(
        after_help = "Examples:\n  netpolc graph examples/shop.np | dot -Tpng > shop.png  # DOT on stdout\n  netpolc graph policies/ --format mermaid               # for Markdown (GitHub, GitLab)\n  netpolc graph policies/ --format svg -o graph.svg      # needs Graphviz's `dot`\n  netpolc graph policies/ -o graph.mmd                   # the format follows the extension\n\nExit codes: 0 written, 1 problems in the input (nothing written), 2 bad usage, I/O error or no `dot` for SVG."
    )]
    Graph {
        /// `.np` files, or folders searched recursively for them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format [default: from the extension of -o (.svg, .mmd, .mermaid, .dot, .gv), else dot]
        #[arg(long, value_enum)]
        format: Option<GraphFormat>,
        /// Write to this file instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// The `explain` subcommand's arguments.
#[derive(clap::Args)]
struct ExplainArgs {
    /// The source: an endpoint as in intents (`frontend/web-app`, `world`), or with --cluster a pod (`NAMESPACE/POD`) or an IP
    src: String,
    /// The destination, optionally with `:PORT[/PROTO]` (`backend/user-api:8080`)
    dst: String,
    /// `.np` files or folders, and NetworkPolicy YAML/JSON files (default: the current folder)
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// A cluster model: the output of `kubectl get namespaces,pods -A -o yaml`
    #[arg(long, value_name = "FILE")]
    cluster: Option<PathBuf>,
}

/// The `watch` subcommand's arguments.
#[derive(clap::Args)]
struct WatchArgs {
    /// `.np` files, or folders watched recursively
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The output folder: `<namespace>.yaml` files and `kustomization.yaml`
    #[arg(short, long, value_name = "DIR", required = true)]
    output: PathBuf,
    /// Run this shell command (`sh -c`) after each successful regeneration
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// Clear the screen before each run
    #[arg(long)]
    clear: bool,
    /// Build once and exit
    #[arg(long)]
    once: bool,
    /// Print the connectivity added and removed by each change
    #[arg(long)]
    diff: bool,
    /// Wait this long for the file system to be quiet before a run (at least 1)
    #[arg(long, value_name = "MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    debounce: u64,
}

/// The `diff` subcommand's arguments.
#[derive(clap::Args)]
struct DiffArgs {
    /// OLD and NEW (files or folders of `.np` intents or NetworkPolicy YAML); with --git, the paths to compare (default: the current folder)
    paths: Vec<PathBuf>,
    /// Compare the paths as they are in this git revision (OLD) with the working tree (NEW)
    #[arg(long, value_name = "REV")]
    git: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiffFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT
    Dot,
    /// A Mermaid flowchart
    Mermaid,
    /// SVG drawn by Graphviz's `dot` command
    Svg,
}

impl GraphFormat {
    /// The format a file name asks for, by its extension.
    fn from_path(path: &std::path::Path) -> Option<GraphFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "svg" => Some(GraphFormat::Svg),
            "mmd" | "mermaid" => Some(GraphFormat::Mermaid),
            "dot" | "gv" => Some(GraphFormat::Dot),
            _ => None,
        }
    }
}

/// How `check` and `verify` report diagnostics.
#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    /// Text for a terminal, on stderr
    Human,
    /// A versioned JSON document
    Json,
    /// SARIF 2.1.0, for code scanning
    Sarif,
    /// GitHub Actions annotations (`::error file=...::message`)
    Github,
}

impl From<ReportFormat> for report::Format {
    fn from(format: ReportFormat) -> Self {
        match format {
            ReportFormat::Human => report::Format::Human,
            ReportFormat::Json => report::Format::Json,
            ReportFormat::Sarif => report::Format::Sarif,
            ReportFormat::Github => report::Format::Github,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Yaml,
    Json,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    // The one-shot compilations, which start no other program (children
    // would inherit the setting).
    if matches!(cli.command, Command::Build { .. } | Command::Check { .. }) {
        small_pages_only();
    }
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal(),
    };
    let project = cli.config.as_deref();
    match cli.command {
        Command::Build {
            paths,
            output,
            format,
            deny_warnings,
            rego,
        } => {
            let format = match format {
                OutputFormat::Yaml => Format::Yaml,
                OutputFormat::Json => Format::Json,
            };
            // Written from documents, each object dropped once rendered;
            // the Rego rules read the objects.
            let options = Options {
                verification: Verification::Expectations,
                output: if rego.is_none() {
                    Output::Documents(format)
                } else {
                    Output::Objects
                },
            };
            let Some(compilation) = configure(&paths, project)
                .and_then(|config| compile_as(&paths, &config, rego.as_deref(), report::Format::Human, color, options))
            else {
                return ExitCode::from(2);
            };
            if failed(compilation, deny_warnings) {
                return ExitCode::from(1);
            }
            let started = std::time::Instant::now();
            match output {
                None => {
                    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
                    let written = match options.output {
                        Output::Objects => emit::write(&compilation.policies, format, &mut stdout),
                        Output::Documents(_) => netpolc::documents::write(&compilation.documents, format, &mut stdout),
                    };
                    if written.and_then(|()| stdout.flush()).is_err() {
                        return ExitCode::from(2);
                    }
                }
                Some(dir) => match match options.output {
                    Output::Objects => emit::write_policies(&dir, &compilation.policies, format),
                    Output::Documents(_) => emit::write_documents(&dir, &compilation.documents, format, &mut emit::Written::default()),
                } {
                    Ok((report, files)) => eprintln!(
                        "wrote {} policies in {} files to {} ({} changed, {} removed)",
                        compilation.policies.len() + compilation.documents.len(),
                        files,
                        dir.display(),
                        report.written.len(),
                        report.removed.len()
                    ),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
            }
            if cli.timings {
                print_timings(compilation, Some(started.elapsed()));
            }
            ExitCode::SUCCESS
        }
        Command::Graph { paths, format, output } => {
            let format = format
                .or_else(|| output.as_deref().and_then(GraphFormat::from_path))
                .unwrap_or(GraphFormat::Dot);
            let Some(compilation) = configure(&paths, project).and_then(|config| compile(&paths, color, &config)) else {
                return ExitCode::from(2);
            };
            if failed(compilation, false) {
                return ExitCode::from(1);
            }
            let text = match format {
                GraphFormat::Dot => graph::dot(&compilation.program),
                GraphFormat::Mermaid => graph::mermaid(&compilation.program),
                GraphFormat::Svg => match graph::svg(&graph::dot(&compilation.program)) {
                    Ok(svg) => svg,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            let written = match &output {
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush())
                }
                Some(path) => std::fs::write(path, text.as_bytes()),
            };
            if let Err(e) = written {
                match &output {
                    Some(path) => eprintln!("error: cannot write {}: {e}", path.display()),
                    None => eprintln!("error: cannot write to stdout: {e}"),
                }
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Command::Explain(args) => explain(args, color, project),
        Command::Verify { paths, format } => {
            let Some(config) = configure(&paths, project) else {
                return ExitCode::from(2);
            };
            let Some(compilation) = compile_as(&paths, &config, None, format.into(), color, Options::FULL) else {
                return ExitCode::from(2);
            };
            if failed(compilation, false) {
                return ExitCode::from(1);
            }
            let mut model = netpolc::model::synthesize(&compilation.program, &config);
            model.probe_policies(&compilation.policies);
            let (pods, addresses, ports) = (model.cluster.pods.len(), model.addresses.len(), model.ports.len());
            let pairs = pods * pods.saturating_sub(1) + 2 * pods * addresses;
            let summary = format!(
                "verified: {} policies allow exactly the {} flows the intents declare; {} connections checked ({} pods and {} addresses of the model, {} ports each), {} expectations hold",
                compilation.policies.len(),
                compilation.program.flows.len(),
                pairs * ports,
                pods,
                addresses,
                ports,
                compilation.program.expectations.len()
            );
            if report::Format::from(format).is_machine() {
                eprintln!("{summary}");
            } else {
                println!("{summary}");
            }
            ExitCode::SUCCESS
        }
        Command::Diff(args) => diff(args, color, project),
        Command::Watch(args) => watch(args, color, project, cli.timings),
        Command::Check {
            paths,
            deny_warnings,
            format,
            rego,
        } => {
            let Some(compilation) = configure(&paths, project)
                .and_then(|config| compile_as(&paths, &config, rego.as_deref(), format.into(), color, Options::FULL))
            else {
                return ExitCode::from(2);
            };
            if failed(compilation, deny_warnings) {
                return ExitCode::from(1);
            }
            if compilation.diagnostics.is_empty() {
                eprintln!(
                    "ok: {} policies in {} namespaces",
                    compilation.policies.len(),
                    namespaces(compilation)
                );
            }
            ExitCode::SUCCESS
        }
    }
}

/// The settings of a run (`--config`, else the project file found above
/// the inputs); `None` after saying why they cannot be had (exit 2).
fn configure(paths: &[PathBuf], explicit: Option<&Path>) -> Option<Config> {
    match netpolc::project::configure(paths, explicit) {
        Ok(config) => Some(config),
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

/// Loads and compiles; prints diagnostics for people. `None` on an I/O error.
fn compile(paths: &[PathBuf], color: bool, config: &Config) -> Option<&'static Compilation> {
    let options = Options {
        verification: Verification::Expectations,
        output: Output::Objects,
    };
    compile_as(paths, config, None, report::Format::Human, color, options)
}

/// Loads and compiles, then checks the Rego rules of `rego`; prints
/// diagnostics in `format`. `None` on an I/O error, which is told on stderr
/// and never in the report.
///
/// The result is leaked on purpose: the process ends right after using it,
/// and freeing tens of thousands of objects one by one takes longer than
/// the operating system takes to drop the whole heap.
fn compile_as(
    paths: &[PathBuf],
    config: &Config,
    rego: Option<&Path>,
    format: report::Format,
    color: bool,
    options: Options,
) -> Option<&'static Compilation> {
    let started = std::time::Instant::now();
    let (sources, early) = match netpolc::source::load(paths) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    if sources.files().is_empty() {
        eprintln!(
            "error: no `.np` files found in {}",
            paths.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
        );
        return None;
    }
    let loaded = started.elapsed();
    let mut compilation = netpolc::compile_with(sources, early, config, None, options);
    compilation.timings.stages.insert(0, ("load", loaded));
    let compiled = std::time::Instant::now();
    if let Some(dir) = rego
        && let Err(e) = netpolc::rego::apply(dir, &mut compilation)
    {
        eprintln!("error: {e}");
        return None;
    }
    if format.is_machine() {
        let text = report::render(format, &compilation.diagnostics, &compilation.sources, color);
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
            eprintln!("error: cannot write the report to stdout: {}", netpolc::source::lower_io(&e));
            return None;
        }
    } else {
        // Streamed: thousands of warnings need not be held as one text. An
        // unwritable stderr does not stop the build.
        let mut stderr = std::io::BufWriter::with_capacity(1 << 16, std::io::stderr().lock());
        let _ =
            netpolc::diagnostics::write(&compilation.diagnostics, &compilation.sources, color, &mut stderr).and_then(|()| stderr.flush());
    }
    compilation.timings.stages.push(("report", compiled.elapsed()));
    Some(Box::leak(Box::new(compilation)))
}

fn watch(args: WatchArgs, color: bool, project: Option<&Path>, timings: bool) -> ExitCode {
    let options = netpolc::watch::Options {
        config: project.map(Path::to_path_buf),
        paths: args.paths,
        output: args.output,
        debounce: std::time::Duration::from_millis(args.debounce),
        exec: args.exec,
        clear: args.clear,
        diff: args.diff,
        color,
        timings,
    };
    if args.once {
        let mut session = netpolc::watch::Session::new(options, Box::new(std::io::stderr()));
        return match session.run_once() {
            netpolc::watch::Outcome::Written => ExitCode::SUCCESS,
            netpolc::watch::Outcome::Errors => ExitCode::from(1),
            netpolc::watch::Outcome::Io => ExitCode::from(2),
        };
    }
    ExitCode::from(netpolc::watch::run(options))
}

fn explain(args: ExplainArgs, color: bool, project: Option<&Path>) -> ExitCode {
    let Some(config) = configure(&args.paths, project) else {
        return ExitCode::from(2);
    };
    let inputs = match netpolc::load_inputs(&args.paths, &config) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let compiled = &inputs.compilation;
    if !compiled.diagnostics.is_empty() {
        eprint!("{}", netpolc::diagnostics::render(&compiled.diagnostics, &compiled.sources, color));
    }
    if compiled.has_errors() {
        return ExitCode::from(1);
    }
    let (cluster, connections) = match &args.cluster {
        Some(file) => {
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: cannot read `{}`: {}", file.display(), netpolc::source::lower_io(&e));
                    return ExitCode::from(2);
                }
            };
            let cluster = match netpolc::cluster::load_cluster(&text) {
                Ok(cluster) => cluster,
                Err(e) => {
                    eprintln!("error: `{}`: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            match netpolc::explain::resolve_in_cluster(&cluster, &inputs.policies, &args.src, &args.dst) {
                Ok(connections) => (cluster, connections),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => match netpolc::explain::resolve(&compiled.sources, &config, &inputs.policies, &args.src, &args.dst) {
            Ok((model, connections)) => (model.cluster, connections),
            Err(failed) => {
                eprint!("{}", netpolc::diagnostics::render(&failed.diagnostics, &failed.sources, color));
                eprintln!("error: cannot resolve `{} -> {}`", args.src, args.dst);
                return ExitCode::from(2);
            }
        },
    };
    let Some(first) = connections.first() else {
        eprintln!("error: no port to try: give one, as in `{}:8080`", args.dst);
        return ExitCode::from(2);
    };
    let mut text = String::new();
    if connections.len() > 1 {
        let allowed: Vec<String> = connections
            .iter()
            .filter(|c| netpolc::evaluate::is_allowed(&inputs.policies, &cluster, c))
            .map(|c| format!("{}/{}", c.port, c.protocol))
            .collect();
        let others = connections.len() - allowed.len();
        match allowed.len() {
            0 => text.push_str(&format!(
                "denied on all {others} ports tried (every port the intents and policies name, and one nobody names)\n\n"
            )),
            _ => text.push_str(&format!(
                "allowed on {}; denied on the {others} other ports tried\n\n",
                allowed.join(", ")
            )),
        }
    }
    let shown = connections
        .iter()
        .find(|c| netpolc::evaluate::is_allowed(&inputs.policies, &cluster, c))
        .unwrap_or(first);
    text.push_str(&netpolc::explain::explain(
        &inputs.policies,
        &cluster,
        shown,
        &config.annotation_prefix,
    ));
    print!("{text}");
    ExitCode::SUCCESS
}

fn diff(args: DiffArgs, color: bool, project: Option<&Path>) -> ExitCode {
    let mut scratch = None;
    let (old_paths, new_paths) = match &args.git {
        None => match args.paths.as_slice() {
            [old, new] => (vec![old.clone()], vec![new.clone()]),
            _ => {
                eprintln!("error: give OLD and NEW, or --git REV and the paths to compare");
                return ExitCode::from(2);
            }
        },
        Some(rev) => {
            let paths = if args.paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                args.paths.clone()
            };
            match netpolc::diff_git::checkout(rev, &paths) {
                Ok((dir, old)) => {
                    scratch = Some(dir);
                    (old, paths)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    // Both sides are compiled with the settings of the new one, so that only the intents differ.
    let Some(config) = configure(&new_paths, project) else {
        return ExitCode::from(2);
    };
    let load = |paths: &[PathBuf]| netpolc::load_inputs(paths, &config);
    let (old, new) = match (load(&old_paths), load(&new_paths)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    for side in [&old, &new] {
        let c = &side.compilation;
        if !c.diagnostics.is_empty() {
            eprint!("{}", netpolc::diagnostics::render(&c.diagnostics, &c.sources, color));
        }
        if c.has_errors() {
            return ExitCode::from(1);
        }
    }
    let old_version = netpolc::diff::Version {
        program: &old.compilation.program,
        policies: &old.policies,
    };
    let new_version = netpolc::diff::Version {
        program: &new.compilation.program,
        policies: &new.policies,
    };
    let delta = netpolc::diff::diff(&old_version, &new_version, &config, &config.annotation_prefix);
    let text = match args.format {
        DiffFormat::Text => netpolc::diff::text(&delta),
        DiffFormat::Json => netpolc::diff::json(&delta),
        DiffFormat::Markdown => netpolc::diff::markdown(&delta),
    };
    print!("{text}");
    ExitCode::SUCCESS
}

fn print_timings(c: &Compilation, emit: Option<std::time::Duration>) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    for (stage, d) in &c.timings.stages {
        eprintln!("{stage:>9}: {:8.2} ms", ms(*d));
    }
    if let Some(d) = emit {
        eprintln!("{:>9}: {:8.2} ms", "emit", ms(d));
    }
}

fn failed(c: &Compilation, deny_warnings: bool) -> bool {
    c.has_errors() || (deny_warnings && c.diagnostics.iter().any(|d| d.severity() == Severity::Warning))
}

fn namespaces(c: &Compilation) -> usize {
    let mut names: Vec<&str> = c.policies.iter().filter_map(|p| p.metadata.namespace.as_deref()).collect();
    names.dedup();
    names.len()
}
