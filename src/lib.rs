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

pub mod ast;
pub mod check;
pub mod cidr;
pub mod config;
pub mod diagnostics;
pub mod emit;
pub mod evaluate;
pub mod flowtable;
pub mod ir;
pub mod lower;
pub mod parse;
pub mod reach;
pub mod source;
pub mod validate;
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

/// Compiles one in-memory file.
pub fn compile_str(name: &str, text: &str) -> Compilation {
    let mut sources = Sources::new();
    sources.add(name, text);
    compile(sources, Vec::new(), &Config::default())
}

/// Runs every stage on `sources`. `early` holds diagnostics found while
/// loading (files that are not text); those files are not parsed.
pub fn compile(sources: Sources, early: Vec<Diagnostic>, config: &Config) -> Compilation {
    let mut diagnostics = early;
    let unreadable: Vec<usize> = diagnostics.iter().map(|d| d.span().file).collect();
    let mut files = Vec::with_capacity(sources.files().len());
    for (i, file) in sources.files().iter().enumerate() {
        if unreadable.contains(&i) {
            files.push(ast::File::default());
            continue;
        }
        let (tree, mut problems) = parse::parse(i, &file.text);
        diagnostics.append(&mut problems);
        files.push(tree);
    }
    let (program, mut problems) = check::check(&files, &sources, config);
    diagnostics.append(&mut problems);
    let (mut policies, mut problems) = lower::lower(&program, &sources, config);
    diagnostics.append(&mut problems);
    diagnostics.extend(validate_output(&policies, &program));
    diagnostics::sort(&mut diagnostics, &sources);
    if diagnostics::has_errors(&diagnostics) {
        policies.clear();
    }
    Compilation {
        sources,
        diagnostics,
        policies,
        program,
    }
}

/// Applies Kubernetes' validation to every generated object. A violation is
/// reported at the intent behind the object (or the namespace declaration).
fn validate_output(policies: &[NetworkPolicy], program: &ir::Program) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for policy in policies {
        let violations = validate::validate_network_policy(policy);
        if violations.is_empty() {
            continue;
        }
        let ns = policy.metadata.namespace.as_deref().unwrap_or("");
        let name = policy.metadata.name.as_deref().unwrap_or("");
        let span = program
            .origins
            .iter()
            .zip(program.flows.iter())
            .find(|(_, f)| lower::contributes(f, program, ns, name))
            .map(|(o, _)| o.span)
            .or_else(|| program.namespaces.get(ns).and_then(|i| i.declarations.first().copied()))
            .unwrap_or_default();
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
