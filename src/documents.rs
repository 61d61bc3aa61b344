//! The plan of lowering to text, one document per object, without ever
//! holding every object: each YAML document is written straight from the
//! plan when it can be told valid that way (`lower::Texts`); otherwise, and
//! in JSON, the object is built, checked against Kubernetes' validation,
//! rendered, and dropped on the core that built it. The objects are most of
//! a compilation's memory (a few kilobytes each, in maps); their text is a
//! fraction of that. `build` (YAML or JSON) and `watch`
//! write these documents; the objects themselves are kept only where
//! something reads them (Rego rules, `expect`, the self-check, `diff`).
//!
//! Watch mode hands the documents of one run to the next: an object whose
//! inputs ([`lower::Inputs`]) equal, field by field, those of an object of
//! the last run is not built again, and that run's text and verdict are
//! used. The comparison is exact (no hash), so a stale text is never written.

use crate::emit::Format;
use crate::lower::{self, Plan, Text};
use crate::validate::Validator;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, IoSlice, Write};
use std::sync::Arc;

/// One object as text: in YAML, `---` and the document; in JSON, the
/// object as an item of a `List` (indented, without the comma).
#[derive(Debug, Clone)]
pub struct Document(Arc<Built>);

#[derive(Debug)]
struct Built {
    /// Shared by the documents of a namespace (a chunk's come by namespace).
    namespace: Arc<str>,
    name: String,
    format: Format,
    /// Kept only when the document may be reused (watch mode); boxed, as
    /// `build` holds every document at once and never has them.
    inputs: Option<Box<lower::Inputs>>,
    /// UTF-8 by construction (every writer writes `&str`s and ASCII), kept
    /// as bytes: they are only ever written out, so they are not checked
    /// again when the document is made.
    text: Text,
    /// What Kubernetes' validation says about the object (empty: valid).
    violations: Vec<String>,
}

impl Document {
    /// The object's namespace.
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The text (see [`Document`]).
    pub fn text(&self) -> Cow<'_, str> {
        match &self.0.text {
            Text::Own(text) => String::from_utf8_lossy(text),
            pieces => Cow::Owned(
                String::from_utf8(pieces.bytes(&self.0.name)).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// The rules of Kubernetes' validation that the object breaks.
    pub fn violations(&self) -> &[String] {
        &self.0.violations
    }

    /// Whether two documents are one and the same (reused from an earlier run).
    pub fn same(a: &Document, b: &Document) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

/// Builds, validates and renders every object of `plan` on every core, in
/// order. With `earlier` (the documents of the last run, in their order,
/// which is by namespace then name), objects built from the same inputs as
/// one of them take its document instead; the documents then keep their
/// inputs for the next run.
pub fn render(plan: &Plan, earlier: Option<&[Document]>, format: Format) -> Vec<Document> {
    let indexes: Vec<usize> = (0..plan.len()).collect();
    // Per thread: a validator, which remembers the keys and values it found
    // valid; the parts of documents written so far (most YAML documents are
    // written straight from the plan; the others, and JSON, from the object,
    // which validation then explains); the last namespace.
    let by_origin = lower::OriginHeads::new(plan);
    let per_thread = || {
        (
            Validator::default(),
            (format == Format::Yaml).then(|| lower::Texts::new(plan, &by_origin)),
            None,
        )
    };
    crate::parallel::map_chunks_with(&indexes, per_thread, |state, _, chunk| {
        let (validator, texts, last_namespace): &mut (_, _, Option<Arc<str>>) = state;
        let mut cursor = None;
        chunk
            .iter()
            .map(|&i| {
                if let Some(reused) = earlier.and_then(|docs| reusable(plan, i, docs, format, &mut cursor)) {
                    return reused;
                }
                let (object_namespace, name) = plan.name(i);
                let (text, violations) = match texts.as_mut().and_then(|texts| texts.document(i)) {
                    Some(text) => {
                        debug_assert!(std::str::from_utf8(&text.bytes(name)).is_ok(), "a document that is not UTF-8");
                        (text, Vec::new())
                    }
                    None => {
                        let object = plan.build(i);
                        let violations = validator.validate(&object).iter().map(ToString::to_string).collect();
                        (text_of(&object, format), violations)
                    }
                };
                let namespace = match &*last_namespace {
                    Some(last) if **last == *object_namespace => Arc::clone(last),
                    _ => Arc::clone(last_namespace.insert(Arc::from(object_namespace))),
                };
                Document(Arc::new(Built {
                    namespace,
                    name: name.to_string(),
                    format,
                    inputs: earlier.is_some().then(|| Box::new(plan.inputs(i))),
                    text,
                    violations,
                }))
            })
            .collect()
    })
}

/// The document of the last run that object `i` would reproduce. Both
/// runs' objects are sorted by namespace and name, and a chunk's objects
/// come in order: `cursor` is where the last one was looked for.
fn reusable(plan: &Plan, i: usize, earlier: &[Document], format: Format, cursor: &mut Option<usize>) -> Option<Document> {
    let wanted = plan.name(i);
    fn key(d: &Document) -> (&str, &str) {
        (d.namespace(), d.name())
    }
    let mut at = *cursor.get_or_insert_with(|| earlier.partition_point(|d| key(d) < wanted));
    while at < earlier.len() && key(&earlier[at]) < wanted {
        at += 1;
    }
    *cursor = Some(at);
    let doc = earlier.get(at).filter(|d| key(d) == wanted && d.0.format == format)?;
    let inputs = doc.0.inputs.as_ref()?;
    plan.is_built_from(i, inputs).then(|| doc.clone())
}

thread_local! {
    /// Where each document is written before it is copied out at its exact
    /// size: one buffer per thread, grown once to the largest document,
    /// instead of a new one grown (and reallocated) for each.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One object's text in `format`.
fn text_of(object: &NetworkPolicy, format: Format) -> Text {
    SCRATCH.with_borrow_mut(|text| {
        text.clear();
        match format {
            Format::Yaml => crate::emit::yaml_document(text, object),
            Format::Json => {
                // serde_json writes an item of a list at depth two exactly as the
                // object alone, each line indented by four more spaces (strings
                // never hold a raw newline in JSON).
                let mut alone = Vec::with_capacity(1024);
                // Writing a k8s-openapi object into a Vec cannot fail.
                let _ = serde_json::to_writer_pretty(&mut alone, object);
                for (i, line) in alone.split(|&b| b == b'\n').enumerate() {
                    if i > 0 {
                        text.push(b'\n');
                    }
                    text.extend_from_slice(b"    ");
                    text.extend_from_slice(line);
                }
            }
        }
        utf8_bytes(text)
    })
}

/// A document's text, kept as bytes: every writer writes `&str`s and ASCII,
/// so it is UTF-8 by construction (checked in debug builds, as the tests run).
fn utf8_bytes(text: &[u8]) -> Text {
    debug_assert!(std::str::from_utf8(text).is_ok(), "a document that is not UTF-8");
    Text::Own(text.into())
}

/// Renders objects that were built already (for the runs that keep them).
pub fn of_objects(policies: &[NetworkPolicy], format: Format) -> Vec<Document> {
    crate::parallel::map(policies, |_, object| {
        Document(Arc::new(Built {
            namespace: Arc::from(object.metadata.namespace.as_deref().unwrap_or_default()),
            name: object.metadata.name.clone().unwrap_or_default(),
            format,
            inputs: None,
            text: text_of(object, format),
            violations: Vec::new(),
        }))
    })
}

/// Writes the documents, in order, in `format` (theirs): a YAML stream, or
/// a JSON `List` as `emit` writes it.
pub fn write<'a>(documents: impl IntoIterator<Item = &'a Document>, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Yaml => {
            // Handed over a batch at a time without copying them into a
            // buffer first: a fleet's documents are tens of megabytes, most
            // of it in pieces they share.
            let mut batch: Vec<IoSlice> = Vec::with_capacity(WRITE_BATCH);
            for doc in documents {
                let Built { text, name, .. } = &*doc.0;
                if batch.len() + text.run_count() > WRITE_BATCH {
                    write_all_vectored(out, &mut batch)?;
                }
                batch.extend(text.runs(name).map(IoSlice::new));
            }
            write_all_vectored(out, &mut batch)?;
        }
        Format::Json => {
            out.write_all(b"{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [")?;
            let mut separator: &[u8] = b"\n";
            for doc in documents {
                out.write_all(separator)?;
                for run in doc.0.text.runs(&doc.0.name) {
                    out.write_all(run)?;
                }
                separator = b",\n";
            }
            let empty = separator == b"\n";
            out.write_all(if empty { b"]\n}\n" } else { b"\n  ]\n}\n" })?;
        }
    }
    Ok(())
}

/// Runs of text written by one call (the most a `writev` takes on Linux).
const WRITE_BATCH: usize = 1024;

/// Writes every byte of `slices`, then empties it.
fn write_all_vectored<'a>(out: &mut dyn Write, slices: &mut Vec<IoSlice<'a>>) -> io::Result<()> {
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match out.write_vectored(rest) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "failed to write the documents")),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    slices.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn program(text: &str) -> (crate::ir::Program, crate::source::Sources) {
        let c = crate::compile_str("t.np", text);
        assert!(!c.has_errors(), "{}", c.render_diagnostics());
        (c.program, c.sources)
    }

    const SHOP: &str = "namespace frontend\n@owner web\nweb -> backend/api:8080, allow dns\n\
                        namespace backend\napi -> db:5432\napi -> 10.0.0.0/24:443\n";

    /// Takes at most a few bytes per call, of the first slice only, and is
    /// interrupted now and then: as a pipe or a slow terminal may be.
    struct Trickle {
        written: Vec<u8>,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(5) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(7);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn documents_reach_a_writer_that_takes_a_few_bytes_at_a_time_whole_and_in_order() {
        let (program, sources) = program(SHOP);
        let (plan, _) = lower::plan(&program, &sources, &Config::default());
        let documents = render(&plan, None, Format::Yaml);
        let mut whole = Vec::new();
        write(&documents, Format::Yaml, &mut whole).unwrap();
        let expected: Vec<u8> = documents.iter().flat_map(|d| d.text().as_bytes().to_vec()).collect();
        assert_eq!(whole, expected);
        let mut trickle = Trickle {
            written: Vec::new(),
            calls: 0,
        };
        write(&documents, Format::Yaml, &mut trickle).unwrap();
        assert_eq!(trickle.written, expected);
    }

    #[test]
    fn documents_in_shared_pieces_reach_the_writer_whole_over_several_batches() {
        let (program, sources) = program(SHOP);
        let (plan, _) = lower::plan(&program, &sources, &Config::default());
        let documents = render(&plan, None, Format::Yaml);
        assert!(documents.iter().any(|d| matches!(d.0.text, Text::AroundName(_))));
        assert!(documents.iter().any(|d| matches!(d.0.text, Text::Own(_))));
        // More runs of text than one call takes, in documents of both kinds.
        let many: Vec<&Document> = documents.iter().cycle().take(WRITE_BATCH).collect();
        assert!(many.iter().map(|d| d.0.text.run_count()).sum::<usize>() > 2 * WRITE_BATCH);
        let mut whole = Vec::new();
        write(many.iter().copied(), Format::Yaml, &mut whole).unwrap();
        let expected: String = many.iter().map(|d| d.text()).collect();
        assert_eq!(String::from_utf8(whole).unwrap(), expected);
    }

    #[test]
    fn documents_are_the_objects_rendered() {
        let (program, sources) = program(SHOP);
        let config = Config::default();
        let (policies, _) = lower::lower(&program, &sources, &config);
        let (plan, _) = lower::plan(&program, &sources, &config);
        let docs = render(&plan, None, Format::Yaml);
        let mut text = Vec::new();
        write(&docs, Format::Yaml, &mut text).expect("write to a vector");
        assert_eq!(String::from_utf8(text).expect("utf-8"), crate::emit::yaml_stream(&policies));
        let names: Vec<(String, String)> = docs.iter().map(|d| (d.namespace().to_string(), d.name().to_string())).collect();
        let expected: Vec<(String, String)> = policies
            .iter()
            .map(|p| {
                (
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(names, expected);
        assert!(docs.iter().all(|d| d.violations().is_empty()));

        // The same in JSON: a `List` as serde_json writes it, also when empty.
        let json = render(&plan, None, Format::Json);
        for (docs, objects) in [(&json[..], &policies[..]), (&json[..1], &policies[..1]), (&[][..], &[][..])] {
            let mut text = Vec::new();
            write(docs, Format::Json, &mut text).expect("write to a vector");
            assert_eq!(String::from_utf8(text).expect("utf-8"), crate::emit::json_list(objects));
        }
    }

    #[test]
    fn only_objects_with_new_inputs_are_built_again() {
        let config = Config::default();
        let (program, sources) = program(SHOP);
        let (plan, _) = lower::plan(&program, &sources, &config);
        let first = render(&plan, Some(&[]), Format::Yaml);

        // Unchanged input: every document is reused.
        let (program, sources) = self::program(SHOP);
        let (plan, _) = lower::plan(&program, &sources, &config);
        let again = render(&plan, Some(&first), Format::Yaml);
        assert!(first.iter().zip(&again).all(|(a, b)| Document::same(a, b)));

        // A new port on one intent rebuilds its two halves; a blank line
        // above another moves its source line, which its half carries.
        let edited = SHOP
            .replace("api -> db:5432", "api -> db:(5432, 5433)")
            .replace("api -> 10.0.0.0/24:443", "\napi -> 10.0.0.0/24:443");
        let (program, sources) = self::program(&edited);
        let (plan, _) = lower::plan(&program, &sources, &config);
        let next = render(&plan, Some(&again), Format::Yaml);
        let fresh = render(&plan, None, Format::Yaml);
        assert_eq!(next.len(), fresh.len());
        let mut rebuilt = Vec::new();
        for (doc, expected) in next.iter().zip(&fresh) {
            assert_eq!(doc.text(), expected.text(), "{}", doc.name());
            if !again.iter().any(|old| Document::same(old, doc)) {
                rebuilt.push(doc.name());
            }
        }
        assert_eq!(rebuilt, ["api-to-cidr-10-0-0-0-24", "api-to-db", "db-from-api"]);
        assert_eq!(
            next.len() - rebuilt.len(),
            5,
            "{:?}",
            next.iter().map(Document::name).collect::<Vec<_>>()
        );

        // Another annotation prefix changes every object.
        let other = Config {
            annotation_prefix: "example.com".to_string(),
            ..Config::default()
        };
        let (plan, _) = lower::plan(&program, &sources, &other);
        let prefixed = render(&plan, Some(&next), Format::Yaml);
        assert!(prefixed.iter().zip(&next).all(|(a, b)| !Document::same(a, b)));
    }

    #[test]
    fn an_object_kubernetes_would_reject_is_reported_the_same_way() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/errors/E0402-invalid-object.np")).expect("example");
        let compiled = |output| {
            let mut sources = crate::source::Sources::new();
            sources.add("E0402-invalid-object.np", text.as_str());
            let options = crate::Options {
                verification: crate::Verification::Expectations,
                output,
            };
            crate::compile_with(sources, Vec::new(), &Config::default(), Some(&mut crate::Cache::default()), options)
        };
        let (objects, documents) = (compiled(crate::Output::Objects), compiled(crate::Output::Documents(Format::Yaml)));
        assert!(documents.has_errors() && documents.documents.is_empty() && documents.policies.is_empty());
        assert!(
            documents
                .diagnostics
                .iter()
                .any(|d| d.code == crate::diagnostics::Code::InvalidObject)
        );
        assert_eq!(documents.render_diagnostics(), objects.render_diagnostics());
    }
}
