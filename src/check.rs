//! Name resolution and checks: syntax trees to the typed IR. Every problem is
//! collected; checking goes on after an error so that one run reports all.

use crate::ast::{self, Endpoint, Isolation, Pods, Span, Spanned, Statement, Term};
use crate::cidr::Cidr;
use crate::config::{Config, DnsLocation};
use crate::diagnostics::{Code, Diagnostic};
use crate::ir::*;
use crate::parallel;
use crate::source::Sources;
use crate::validate;
use rustc_hash::FxHashMap;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

/// The non-public IPv4 ranges that `internet` leaves out.
pub const NON_PUBLIC_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
];
/// The non-public IPv6 ranges that `internet` leaves out. LANGUAGE.md also
/// lists `::ffff:0:0/96`, which Kubernetes' strict CIDR validation rejects and
/// which never appears on the wire (docs/decisions/0002-internet-ipv4-mapped.md).
pub const NON_PUBLIC_V6: &[&str] = &["::1/128", "fc00::/7", "fe80::/10", "ff00::/8"];

/// Resolves names across all files and checks everything, producing the IR
/// and every diagnostic found. `files[i]` is the tree of `sources` file `i`.
pub fn check(files: &[ast::File], sources: &Sources, config: &Config) -> (Program, Vec<Diagnostic>) {
    check_with(files, sources, config, None)
}

/// What checking keeps from one run for the next (watch mode): what pass
/// one found in each file, each file's intents as resolved, and the
/// declarations and configuration they were resolved against.
#[derive(Default)]
pub struct Memo {
    context: Option<(Declarations, Config)>,
    /// By file index.
    files: Vec<Option<KeptFile>>,
}

/// A file as the last run checked it.
struct KeptFile {
    name: String,
    /// Pass one's steps, unless the file has statements that pass one
    /// hands over by reference (`expect`, `expose`).
    steps: Option<Arc<[Step]>>,
    /// Its intents resolved.
    outcome: Arc<FileOutcome>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.files.iter().flatten().count();
        f.debug_struct("Memo").field("files_kept", &kept).finish_non_exhaustive()
    }
}

/// [`check`], re-using what `memo` kept of the last run. `same_text[i]`
/// says that file `i` has the text it had in that run. When its name is
/// the same too, what pass one found in it is taken as it is if the
/// configuration is the same (pass one reads nothing else), and so are its
/// intents as resolved if every declaration (with its place) is the same
/// too, which is all that resolving an intent reads besides its own file.
pub fn check_with(
    files: &[ast::File],
    sources: &Sources,
    config: &Config,
    memo: Option<(&mut Memo, &[bool])>,
) -> (Program, Vec<Diagnostic>) {
    let (memo, same_text) = match memo {
        Some((memo, same_text)) => (Some(memo), same_text),
        None => (None, &[][..]),
    };
    let unchanged = |i: usize| -> Option<&KeptFile> {
        let kept = memo.as_deref()?.files.get(i)?.as_ref()?;
        (same_text.get(i) == Some(&true) && kept.name == sources.name(i)).then_some(kept)
    };
    let same_config = memo.as_deref().and_then(|m| m.context.as_ref()).is_some_and(|(_, c)| c == config);
    let kept_steps: Vec<Option<Arc<[Step]>>> = (0..files.len())
        .map(|i| unchanged(i).filter(|_| same_config).and_then(|k| k.steps.clone()))
        .collect();
    let mut checker = Checker::new(sources, config, Declarations::default());
    let ((mut intents, expectations, exposures), steps) = checker.declarations(files, &kept_steps, memo.is_some());
    let alike = same_config
        && memo
            .as_deref()
            .and_then(|m| m.context.as_ref())
            .is_some_and(|(decls, _)| decls.resolve_alike(&checker.decls));
    let outcomes: Vec<Option<Arc<FileOutcome>>> = (0..files.len())
        .map(|i| unchanged(i).filter(|_| alike).map(|k| Arc::clone(&k.outcome)))
        .collect();
    // A file whose steps were kept but whose intents are not is read again for them.
    let reread: Vec<usize> = (0..files.len())
        .filter(|&i| outcomes[i].is_none() && kept_steps[i].is_some())
        .collect();
    let rescans = parallel::map(&reread, |_, &i| Checker::new(sources, config, ()).scan(&files[i]));
    for (&i, scan) in reread.iter().zip(rescans) {
        intents[i] = scan.intents;
    }
    let (mut program, outcomes) = checker.resolve_and_merge(&intents, outcomes, memo.is_some());
    for e in expectations {
        if let Some(resolved) = checker.expectation(&e) {
            program.expectations.push(resolved);
        }
    }
    for e in exposures {
        if let Some(resolved) = checker.exposure(&e) {
            program.exposures.push(resolved);
        }
    }
    if let Some(memo) = memo {
        memo.files = (outcomes.into_iter().zip(steps).enumerate())
            .map(|(i, (outcome, steps))| {
                Some(KeptFile {
                    name: sources.name(i).to_string(),
                    steps,
                    outcome,
                })
            })
            .collect();
        memo.context = Some((checker.decls, config.clone()));
    } else {
        parallel::free_elsewhere((outcomes, steps));
    }
    (program, checker.diagnostics)
}

#[derive(Default)]
struct Declarations {
    namespaces: BTreeMap<String, NamespaceInfo>,
    isolation_at: FxHashMap<String, (Isolation, Span)>,
    /// By namespace, then name (nested, so that looking one up allocates nothing).
    workloads: FxHashMap<String, FxHashMap<String, (LabelSelector, Span)>>,
    /// The same names per namespace with their shapes, to look for the one
    /// an undeclared name is a typo of.
    typo_candidates: FxHashMap<String, Vec<(String, CharShape, Span)>>,
    workload_names: FxHashMap<String, Span>,
    externals: FxHashMap<String, (IpBlock, Span)>,
}

impl Declarations {
    /// Whether an intent resolves against `other` exactly as against these
    /// (the typo candidates are made of the workloads).
    fn resolve_alike(&self, other: &Declarations) -> bool {
        self.namespaces == other.namespaces
            && self.isolation_at == other.isolation_at
            && self.workloads == other.workloads
            && self.workload_names == other.workload_names
            && self.externals == other.externals
    }

    fn workload(&self, namespace: &str, name: &str) -> Option<&(LabelSelector, Span)> {
        self.workloads.get(namespace)?.get(name)
    }
}

/// An `expect` statement found in pass one, resolved in pass two.
struct PendingExpectation<'a> {
    namespace: &'a str,
    statement: &'a ast::Expectation,
    span: Span,
}

/// An `expose` statement found in pass one, resolved in pass two.
struct PendingExposure<'a> {
    namespace: &'a str,
    statement: &'a ast::Exposure,
    span: Span,
}

/// An intent (or `allow dns`) found in pass one, resolved in pass two.
struct PendingIntent<'a> {
    namespace: &'a str,
    /// The source endpoint, or for `allow dns` the statement's span.
    source: Result<&'a Spanned<Endpoint>, Span>,
    targets: &'a [Spanned<ast::Target>],
    /// Shared by the intents of a file that have no `@` lines of their own.
    metadata: Arc<MetadataSource<'a>>,
}

/// A declaration checked in itself by a worker of pass one; conflicts
/// with other declarations are settled in file order. It owns its text:
/// watch mode keeps it for the next run (see [`Memo`]).
#[derive(Clone)]
enum Declaration {
    Namespace {
        name: String,
        span: Span,
    },
    Workload {
        namespace: String,
        name: String,
        name_span: Span,
        selector: LabelSelector,
        span: Span,
    },
    External {
        name: String,
        block: IpBlock,
        span: Span,
    },
    Isolate {
        namespace: String,
        mode: Isolation,
        span: Span,
    },
}

/// What a worker of pass one found in a file, in statement order.
#[derive(Clone)]
enum Step {
    Report(Diagnostic),
    Declare(Declaration),
}

/// One file read by a worker of pass one.
#[derive(Default)]
struct FileScan<'a> {
    steps: Vec<Step>,
    intents: Vec<PendingIntent<'a>>,
    expectations: Vec<PendingExpectation<'a>>,
    exposures: Vec<PendingExposure<'a>>,
}

/// A file as pass one's workers hand it over: its steps as the last run
/// found them, or read now.
enum FileRead<'a> {
    Kept(Arc<[Step]>),
    Scanned(FileScan<'a>),
}

/// What pass one hands to pass two; the intents by file.
type Pending<'a> = (Vec<Vec<PendingIntent<'a>>>, Vec<PendingExpectation<'a>>, Vec<PendingExposure<'a>>);

/// The closest declared workload to an undeclared name: (distance, name, where declared).
type Closest = Option<(usize, String, Span)>;

/// Pass one owns the declarations it builds (`D` is [`Declarations`]); the
/// workers of pass two share them (`D` is `&Declarations`), each with its
/// own diagnostics, caches and peer numbers.
struct Checker<'a, D = Declarations> {
    sources: &'a Sources,
    config: &'a Config,
    diagnostics: Vec<Diagnostic>,
    decls: D,
    /// "Did you mean" answers by namespace, then undeclared name.
    typo_cache: FxHashMap<String, FxHashMap<String, Closest>>,
    /// The peers of the intents of the file being resolved, numbered.
    peers: PeerTable,
    /// The peer each endpoint resolved to without a diagnostic, with its
    /// hash: most intents name the same few workloads.
    resolved: FxHashMap<EndpointKey<'a>, (u64, Arc<Peer>)>,
    /// The same, numbered in the file being resolved.
    resolved_here: FxHashMap<EndpointKey<'a>, usize>,
    /// The metadata of the last intent, as its flows' origins share it
    /// (and the intents after it under the same lines).
    last_metadata: Option<(Arc<MetadataSource<'a>>, IntentMetadata)>,
}

/// Every distinct peer of the intents, numbered, so that flows compare by
/// number. A peer is hashed once (see [`peer_hash`]): its hash goes with it
/// from a file's table to the merged one.
#[derive(Default)]
struct PeerTable {
    peers: Vec<Arc<Peer>>,
    /// By peer number.
    hashes: Vec<u64>,
    /// The first peer of each hash; the rare peers whose hash an earlier
    /// one has are found by value in `colliding`.
    by_hash: FxHashMap<u64, usize>,
    colliding: FxHashMap<Arc<Peer>, usize>,
}

impl PeerTable {
    fn intern(&mut self, peer: Peer) -> usize {
        self.intern_hashed(peer_hash(&peer), peer)
    }

    fn intern_hashed(&mut self, hash: u64, peer: Peer) -> usize {
        match self.find(hash, &peer) {
            Some(id) => id,
            None => self.insert(hash, Arc::new(peer)),
        }
    }

    fn intern_shared(&mut self, hash: u64, peer: &Arc<Peer>) -> usize {
        match self.find(hash, peer) {
            Some(id) => id,
            None => self.insert(hash, Arc::clone(peer)),
        }
    }

    fn find(&self, hash: u64, peer: &Peer) -> Option<usize> {
        match self.by_hash.get(&hash) {
            Some(&id) if *self.peers[id] == *peer => Some(id),
            Some(_) => self.colliding.get(peer).copied(),
            None => None,
        }
    }

    fn insert(&mut self, hash: u64, peer: Arc<Peer>) -> usize {
        let id = self.peers.len();
        match self.by_hash.entry(hash) {
            Entry::Vacant(first) => {
                first.insert(id);
            }
            Entry::Occupied(_) => {
                self.colliding.insert(Arc::clone(&peer), id);
            }
        }
        self.peers.push(peer);
        self.hashes.push(hash);
        id
    }

    /// This table's number for peer `id` of a file's table `theirs`; `ids`
    /// remembers those found (by the file's numbers), and `by_address` the
    /// peers found in any file so far: the files a worker resolves share
    /// them, so most are found without comparing their value. Its keys
    /// must stay alive as long as it does.
    fn adopt(
        &mut self,
        theirs: &FileOutcome,
        ids: &mut [Option<usize>],
        id: usize,
        by_address: &mut FxHashMap<*const Peer, usize>,
    ) -> usize {
        if let Some(mine) = ids[id] {
            return mine;
        }
        let (peer, hash) = (&theirs.peers[id], theirs.hashes[id]);
        let mine = match by_address.entry(Arc::as_ptr(peer)) {
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(new) => *new.insert(self.intern_shared(hash, peer)),
        };
        ids[id] = Some(mine);
        mine
    }
}

/// The hash a [`PeerTable`] finds a peer by.
fn peer_hash(peer: &Peer) -> u64 {
    std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, peer)
}

/// What pass two found for the intents of one file: their outcomes in
/// order, and the peers they name, numbered in the file.
struct FileOutcome {
    peers: Vec<Arc<Peer>>,
    /// The peers' hashes, by number.
    hashes: Vec<u64>,
    intents: Vec<IntentOutcome>,
}

/// An intent resolved by a worker.
#[derive(Clone)]
struct IntentOutcome {
    /// The source's peer, if it has one.
    source: Option<usize>,
    /// What resolving the source reported.
    diagnostics: Vec<Diagnostic>,
    targets: Vec<TargetOutcome>,
}

/// A target resolved by a worker.
#[derive(Clone)]
struct TargetOutcome {
    /// The target's peer, if it has one.
    peer: Option<usize>,
    /// What resolving the target and its ports reported, in order.
    diagnostics: Vec<Diagnostic>,
    /// The flow it asks for, unless something is wrong with it.
    flow: Option<PendingFlow>,
}

/// A flow found by a worker, kept unless it duplicates an earlier one.
#[derive(Clone)]
struct PendingFlow {
    ports: PortSet,
    is_dns: bool,
    endpoint_span: Span,
    origin: Arc<Origin>,
}

/// What the meaning of the endpoints that come back most depends on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum EndpointKey<'a> {
    /// `NAME` written in a namespace: an external, or a workload of that namespace.
    Bare { namespace: &'a str, name: &'a str },
    /// `NS/NAME`.
    Qualified { namespace: &'a str, name: &'a str },
    /// `*` written in a namespace, or `NS/*`.
    All { namespace: &'a str },
    /// `cluster`, `world`, `internet` or `dns`: the same everywhere.
    Fixed(std::mem::Discriminant<Endpoint>),
}

impl<'a> EndpointKey<'a> {
    fn of(endpoint: &'a Endpoint, namespace: &'a str) -> Option<Self> {
        match endpoint {
            Endpoint::Name(name) => Some(EndpointKey::Bare {
                namespace,
                name: &name.text,
            }),
            Endpoint::Qualified {
                namespace,
                pods: Pods::Name(name),
            } => Some(EndpointKey::Qualified {
                namespace: &namespace.node.text,
                name: &name.node.text,
            }),
            Endpoint::Qualified {
                namespace,
                pods: Pods::All,
            } => Some(EndpointKey::All {
                namespace: &namespace.node.text,
            }),
            Endpoint::AllPods => Some(EndpointKey::All { namespace }),
            Endpoint::Cluster | Endpoint::World | Endpoint::Internet | Endpoint::Dns => {
                Some(EndpointKey::Fixed(std::mem::discriminant(endpoint)))
            }
            _ => None,
        }
    }
}

impl<'a> Checker<'a> {
    /// Pass one: declarations, namespaces, metadata attachment; intents are
    /// kept for pass two. Workers read the files, each on its own; what they
    /// declare is recorded here in file order, which is where conflicts show.
    /// A file with steps in `kept` is not read: its steps are taken as they
    /// are, and it yields no intents. With `keep`, each file's steps come
    /// back too (none for a file with `expect` or `expose` statements, which
    /// are read again each time as they borrow from the tree).
    fn declarations(
        &mut self,
        files: &'a [ast::File],
        kept: &[Option<Arc<[Step]>>],
        keep: bool,
    ) -> (Pending<'a>, Vec<Option<Arc<[Step]>>>) {
        let (sources, config) = (self.sources, self.config);
        let kept = |i: usize| kept.get(i).and_then(Option::as_ref);
        let (mut intents, mut expectations, mut exposures) = (Vec::new(), Vec::new(), Vec::new());
        let mut steps_by_file = Vec::with_capacity(if keep { files.len() } else { 0 });
        let all: Vec<usize> = (0..files.len()).collect();
        // Workers read the files (a kept one weighs nothing); this thread
        // records what they declare as they come in, in file order.
        parallel::map_weighted_chunks_into(
            &all,
            |&i| if kept(i).is_some() { 0 } else { files[i].statements.len() },
            || (),
            |(), _, part| {
                (part.iter())
                    .map(|&i| match kept(i) {
                        Some(steps) => FileRead::Kept(Arc::clone(steps)),
                        // A scan borrows from the file for as long as the trees live.
                        None => FileRead::Scanned(Checker::new(sources, config, ()).scan(&files[i])),
                    })
                    .collect()
            },
            |reads| {
                for read in reads {
                    let steps = match read {
                        FileRead::Kept(steps) => {
                            for step in steps.iter() {
                                self.step(step.clone());
                            }
                            intents.push(Vec::new());
                            Some(steps)
                        }
                        FileRead::Scanned(scan) => {
                            let keepable = keep && scan.expectations.is_empty() && scan.exposures.is_empty();
                            let steps = keepable.then(|| Arc::<[Step]>::from(scan.steps.as_slice()));
                            for step in scan.steps {
                                self.step(step);
                            }
                            intents.push(scan.intents);
                            expectations.extend(scan.expectations);
                            exposures.extend(scan.exposures);
                            steps
                        }
                    };
                    if keep {
                        steps_by_file.push(steps);
                    }
                }
            },
        );
        self.cross_declaration_checks();
        ((intents, expectations, exposures), steps_by_file)
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Report(d) => self.error(d),
            Step::Declare(declaration) => self.declare(declaration),
        }
    }

    /// Records a declaration, or reports how it conflicts with an earlier one.
    fn declare(&mut self, declaration: Declaration) {
        match declaration {
            Declaration::Namespace { name, span } => {
                let info = self.decls.namespaces.entry(name).or_default();
                info.declared = true;
                info.declarations.push(span);
            }
            Declaration::Workload {
                namespace,
                name,
                name_span,
                selector,
                span,
            } => self.workload(namespace, name, name_span, selector, span),
            Declaration::External { name, block, span } => self.external(name, block, span),
            Declaration::Isolate { namespace, mode, span } => self.isolate(&namespace, mode, span),
        }
    }

    fn workload(&mut self, namespace: String, name: String, name_span: Span, sel: LabelSelector, span: Span) {
        match self.decls.workload(&namespace, &name) {
            Some((existing, at)) if *existing != sel => {
                let at = *at;
                self.error(
                    Diagnostic::new(
                        Code::ConflictingWorkload,
                        span,
                        format!("workload `{name}` in namespace `{namespace}` is declared twice with different selectors"),
                    )
                    .with_label(format!("here it means `{sel}`"))
                    .with_secondary(at, format!("here it means `{existing}`"))
                    .with_help("keep one declaration, or give the second workload another name"),
                );
            }
            Some(_) => {}
            None => {
                let candidate = (name.clone(), CharShape::of(&name), span);
                self.decls.typo_candidates.entry(namespace.clone()).or_default().push(candidate);
                self.decls.workload_names.entry(name.clone()).or_insert(name_span);
                self.decls.workloads.entry(namespace).or_default().insert(name, (sel, span));
            }
        }
    }

    fn external(&mut self, name: String, block: IpBlock, span: Span) {
        match self.decls.externals.get(&name) {
            Some((existing, at)) if *existing != block => {
                let at = *at;
                self.error(
                    Diagnostic::new(
                        Code::ConflictingExternal,
                        span,
                        format!("external `{name}` is declared twice with different blocks"),
                    )
                    .with_label("second declaration")
                    .with_secondary(at, "first declaration")
                    .with_help("externals are global: keep one declaration for all files"),
                );
            }
            Some(_) => {}
            None => {
                self.decls.externals.insert(name, (block, span));
            }
        }
    }

    fn isolate(&mut self, namespace: &str, mode: Isolation, span: Span) {
        if let Some((existing, at)) = self.decls.isolation_at.get(namespace)
            && *existing != mode
        {
            let (existing, at) = (*existing, *at);
            self.error(
                Diagnostic::new(
                    Code::ConflictingIsolation,
                    span,
                    format!("namespace `{namespace}` is isolated differently in two places"),
                )
                .with_label(format!("`isolate {}` here", mode.as_str()))
                .with_secondary(at, format!("`isolate {}` here", existing.as_str()))
                .with_help("a namespace has one isolation mode: keep one `isolate` statement"),
            );
            return;
        }
        self.decls.isolation_at.insert(namespace.to_string(), (mode, span));
        let info = self.decls.namespaces.entry(namespace.to_string()).or_default();
        info.isolation = mode;
        info.declarations.push(span);
    }

    /// Pass two: endpoints to peers, targets to flows, file by file. The
    /// files without an outcome (all but those kept from the last run) are
    /// resolved by workers on every core, sharing out the intents; this
    /// thread merges the files' outcomes in order as they come in (see
    /// [`Merge`]), so that little of merging waits for the last file.
    /// Returns the program and the files' outcomes, in order.
    fn resolve_and_merge(
        &mut self,
        intents: &[Vec<PendingIntent<'a>>],
        outcomes: Vec<Option<Arc<FileOutcome>>>,
        keep: bool,
    ) -> (Program, Vec<Arc<FileOutcome>>) {
        let targets = (outcomes.iter().zip(intents))
            .map(|(kept, pending)| match kept {
                Some(outcome) => outcome.intents.iter().map(|i| i.targets.len()).sum(),
                None => pending.iter().map(|i| i.targets.len()).sum::<usize>(),
            })
            .sum();
        let mut merge = Merge::new(&self.decls.namespaces, targets, keep, outcomes.len());
        let (sources, config, decls) = (self.sources, self.config, &self.decls);
        let files: Vec<usize> = (0..outcomes.len()).collect();
        // A worker per thread: what it remembers (peers by endpoint, typo
        // hints) serves all the files it takes. A kept outcome weighs nothing.
        parallel::map_weighted_chunks_into(
            &files,
            |&i| if outcomes[i].is_some() { 0 } else { intents[i].len() },
            || Checker::new(sources, config, decls),
            |worker, _, files| {
                (files.iter())
                    .map(|&i| match &outcomes[i] {
                        Some(kept) => Arc::clone(kept),
                        None => Arc::new(worker.resolve_file(&intents[i])),
                    })
                    .collect()
            },
            |outcomes| outcomes.into_iter().for_each(|outcome| merge.file(outcome)),
        );
        let Merge {
            mut program,
            diagnostics,
            uses,
            outcomes,
            ..
        } = merge;
        self.diagnostics.extend(diagnostics);
        if self.config.declared_only {
            // Namespaces that are only referenced get nothing, as if `isolate none`:
            // lower writes no half there and verify expects none.
            for info in program.namespaces.values_mut().filter(|i| !i.declared) {
                info.isolation = Isolation::None;
            }
        }
        self.namespace_warnings(uses, &program);
        (program, outcomes)
    }
}

/// Merging the files' outcomes in order numbers the peers, drops
/// duplicates and orders the diagnostics as one pass over all intents
/// would. Unless `keep` (watch mode keeps the outcomes for its next run),
/// what they hold is moved out of them rather than cloned: they are
/// dropped next.
struct Merge {
    program: Program,
    diagnostics: Vec<Diagnostic>,
    keep: bool,
    /// The files' outcomes merged so far, in order.
    outcomes: Vec<Arc<FileOutcome>>,
    peers: PeerTable,
    /// Every peer in it belongs to `outcomes`, kept for as long as it lives.
    by_address: FxHashMap<*const Peer, usize>,
    /// Flows by what they allow, peers by number: the first flow of each
    /// pair of peers (its place in `program.flows`), and the pairs' other
    /// ports (rare): most flows hash two numbers, not their ports.
    seen: FxHashMap<(usize, usize), usize>,
    seen_more: FxHashMap<(usize, usize, PortSet), Span>,
    /// By peer number: whether its namespace is recorded already.
    touched: Vec<bool>,
    uses: NamespaceUses,
}

impl Merge {
    /// A merge of files with about `targets` targets in all.
    fn new(namespaces: &BTreeMap<String, NamespaceInfo>, targets: usize, keep: bool, files: usize) -> Self {
        Merge {
            program: Program {
                namespaces: namespaces.clone(),
                flows: Vec::with_capacity(targets),
                origins: Vec::with_capacity(targets),
                ..Default::default()
            },
            diagnostics: Vec::new(),
            keep,
            outcomes: Vec::with_capacity(files),
            peers: PeerTable::default(),
            by_address: FxHashMap::default(),
            seen: FxHashMap::with_capacity_and_hasher(targets, Default::default()),
            seen_more: FxHashMap::default(),
            touched: Vec::new(),
            uses: NamespaceUses::default(),
        }
    }

    /// Merges the next file's outcome.
    fn file(&mut self, mut outcome: Arc<FileOutcome>) {
        let intents = match Arc::get_mut(&mut outcome).filter(|_| !self.keep) {
            Some(owned) => std::mem::take(&mut owned.intents),
            None => outcome.intents.clone(),
        };
        // Each of the file's peers is numbered at its first use, as one pass numbers them.
        let mut ids = vec![None; outcome.peers.len()];
        for intent in intents {
            self.diagnostics.extend(intent.diagnostics);
            let source = intent
                .source
                .map(|id| self.peers.adopt(&outcome, &mut ids, id, &mut self.by_address));
            for target in intent.targets {
                let target_id = target.peer.map(|id| self.peers.adopt(&outcome, &mut ids, id, &mut self.by_address));
                self.diagnostics.extend(target.diagnostics);
                if let (Some(source_id), Some(target_id), Some(flow)) = (source, target_id, target.flow) {
                    self.flow((source_id, target_id), flow);
                }
            }
        }
        self.outcomes.push(outcome);
    }

    /// Keeps a flow between peers numbered `source_id` and `target_id`, or
    /// reports it as a duplicate.
    fn flow(&mut self, (source_id, target_id): (usize, usize), flow: PendingFlow) {
        if let Some(first) = self.first_declared((source_id, target_id), &flow.ports, flow.origin.span) {
            // The duplicate adds nothing: it is dropped, so that it does not
            // grow the annotations of the policy it would merge into.
            self.diagnostics.push(
                Diagnostic::new(
                    Code::DuplicateIntent,
                    flow.origin.span,
                    format!("`{}` is declared twice", flow.origin.text),
                )
                .with_label("duplicate, ignored")
                .with_secondary(first, "first declared here")
                .with_help("remove one of them"),
            );
            return;
        }
        // Flows share the peers: cloning one costs a count.
        let (source, peer) = (Arc::clone(&self.peers.peers[source_id]), Arc::clone(&self.peers.peers[target_id]));
        if self.first_touch(source_id) {
            touch_namespace(&mut self.program, &source);
        }
        // DNS pods count only in a declared namespace, which is there already.
        if !flow.is_dns && self.first_touch(target_id) {
            touch_namespace(&mut self.program, &peer);
        }
        self.diagnostics
            .extend(selector_side_warning(&source, flow.origin.source_span, "source"));
        if !flow.is_dns {
            self.diagnostics.extend(selector_side_warning(&peer, flow.endpoint_span, "target"));
        }
        (self.uses).record((source_id, &source), (target_id, &peer), &flow.origin, &self.program.namespaces);
        let PendingFlow { ports, origin, .. } = flow;
        self.program.flows.push(Flow {
            source,
            target: peer,
            ports,
            origin: self.program.origins.len(),
        });
        self.program.origins.push(origin);
    }

    /// Where the flow was first declared if it is a duplicate; otherwise it
    /// is recorded, to be kept next.
    fn first_declared(&mut self, (source, target): (usize, usize), ports: &PortSet, span: Span) -> Option<Span> {
        match self.seen.entry((source, target)) {
            Entry::Vacant(new) => {
                new.insert(self.program.flows.len());
                None
            }
            Entry::Occupied(first) => {
                let first = &self.program.flows[*first.get()];
                if first.ports == *ports {
                    return Some(self.program.origins[first.origin].span);
                }
                match self.seen_more.entry((source, target, ports.clone())) {
                    Entry::Vacant(new) => {
                        new.insert(span);
                        None
                    }
                    Entry::Occupied(first) => Some(*first.get()),
                }
            }
        }
    }

    /// Whether peer `id` is seen here for the first time.
    fn first_touch(&mut self, id: usize) -> bool {
        if id >= self.touched.len() {
            self.touched.resize(id + 1, false);
        }
        !std::mem::replace(&mut self.touched[id], true)
    }
}

/// What needs no declarations: pass one's workers, and checks used by every pass.
impl<'a, D> Checker<'a, D> {
    fn new(sources: &'a Sources, config: &'a Config, decls: D) -> Self {
        Checker {
            sources,
            config,
            diagnostics: Vec::new(),
            decls,
            typo_cache: FxHashMap::default(),
            peers: PeerTable::default(),
            resolved: FxHashMap::default(),
            resolved_here: FxHashMap::default(),
            last_metadata: None,
        }
    }

    /// A worker's part of pass one: one file's statements, in order.
    fn scan(mut self, file: &'a ast::File) -> FileScan<'a> {
        let mut scan = FileScan::default();
        let mut namespace: Option<&'a str> = None;
        let mut metadata = MetadataScope::default();
        for statement in &file.statements {
            let declaration = self.scan_statement(statement, &mut namespace, &mut metadata, &mut scan);
            // A declaration's own problems come before its conflicts, as in one pass.
            scan.steps.extend(self.diagnostics.drain(..).map(Step::Report));
            scan.steps.extend(declaration.map(Step::Declare));
        }
        self.dangling(&mut metadata.pending, None);
        scan.steps.extend(self.diagnostics.drain(..).map(Step::Report));
        scan
    }

    /// Reads one statement of a file: what it declares is returned, the rest is kept in `scan`.
    fn scan_statement(
        &mut self,
        statement: &'a Spanned<Statement>,
        namespace: &mut Option<&'a str>,
        metadata: &mut MetadataScope<'a>,
        scan: &mut FileScan<'a>,
    ) -> Option<Declaration> {
        let is_intent = matches!(statement.node, Statement::Intent(_) | Statement::AllowDns(_));
        if !is_intent && !matches!(statement.node, Statement::Annotation(_)) {
            let before_namespace = matches!(statement.node, Statement::Namespace(_));
            self.dangling(&mut metadata.pending, Some((statement.span, before_namespace)));
        }
        let needs_namespace = !matches!(
            statement.node,
            Statement::Namespace(_) | Statement::External { .. } | Statement::Meta(_) | Statement::Annotation(_)
        );
        if needs_namespace && namespace.is_none() {
            self.error(
                Diagnostic::new(Code::IntentOutsideNamespace, statement.span, "statement outside any namespace")
                    .with_label("no `namespace` above this")
                    .with_help("start the file with `namespace NAME`; only `external` and `meta` may come before it"),
            );
            metadata.pending.clear();
            return None;
        }
        let current = namespace.unwrap_or_default();
        match &statement.node {
            Statement::Namespace(name) => {
                *namespace = Some(&name.node.text);
                let valid = self.dns_label(name);
                return valid.then(|| Declaration::Namespace {
                    name: name.node.text.clone(),
                    span: statement.span,
                });
            }
            Statement::Workload { name, selector } => return self.workload_declaration(current, name, selector),
            Statement::External { name, cidr, except } => return self.external_declaration(name, cidr, except),
            Statement::Isolate(mode) => {
                return Some(Declaration::Isolate {
                    namespace: current.to_string(),
                    mode: *mode,
                    span: statement.span,
                });
            }
            Statement::Annotation(m) => {
                if let Some(key) = self.metadata_key(&m.key) {
                    metadata.pending.push((key.into(), m));
                }
            }
            Statement::Meta(m) => {
                if let Some(key) = self.metadata_key(&m.key) {
                    metadata.set_file(key.into(), m);
                }
            }
            Statement::Intent(intent) => {
                scan.intents.push(PendingIntent {
                    namespace: current,
                    source: Ok(&intent.source),
                    targets: &intent.targets,
                    metadata: metadata.take(),
                });
            }
            Statement::Expose(exposure) => {
                scan.exposures.push(PendingExposure {
                    namespace: current,
                    statement: exposure,
                    span: statement.span,
                });
            }
            Statement::Expect(expectation) => {
                scan.expectations.push(PendingExpectation {
                    namespace: current,
                    statement: expectation,
                    span: statement.span,
                });
            }
            Statement::AllowDns(target) => {
                scan.intents.push(PendingIntent {
                    namespace: current,
                    source: Err(statement.span),
                    targets: std::slice::from_ref(target),
                    metadata: metadata.take(),
                });
            }
        }
        None
    }

    /// A workload declaration checked in itself; `None` after reporting why it is wrong.
    fn workload_declaration(
        &mut self,
        namespace: &'a str,
        name: &'a Spanned<ast::Name>,
        selector: &Spanned<ast::Selector>,
    ) -> Option<Declaration> {
        let valid_name = self.dns_label(name);
        let sel = self.selector(&selector.node)?;
        valid_name.then(|| Declaration::Workload {
            namespace: namespace.to_string(),
            name: name.node.text.clone(),
            name_span: name.span,
            selector: sel,
            span: name.span.to(selector.span),
        })
    }

    /// An external declaration checked in itself; `None` after reporting why it is wrong.
    fn external_declaration(
        &mut self,
        name: &'a Spanned<ast::Name>,
        cidr: &Spanned<String>,
        except: &[Spanned<String>],
    ) -> Option<Declaration> {
        let valid_name = self.dns_label(name);
        let block = self.ip_block(cidr, except)?;
        valid_name.then(|| Declaration::External {
            name: name.node.text.clone(),
            block,
            span: name.span.to(except.last().map_or(cidr.span, |e| e.span)),
        })
    }

    fn error(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn dns_as_source(&mut self, span: Span) {
        self.error(
            Diagnostic::new(Code::DnsAsSource, span, "`dns` cannot be a source")
                .with_label("`dns` is a target only")
                .with_note("replies are always allowed: DNS answers need no intent of their own")
                .with_help("write the intent from the pods that resolve names: `web -> dns`"),
        );
    }

    fn dangling(&mut self, pending: &mut Vec<(Arc<str>, &ast::Metadata)>, next: Option<(Span, bool)>) {
        if let Some((_, first)) = pending.first() {
            let span = first.key.span.to(first.value.span);
            let mut d = Diagnostic::new(
                Code::DanglingMetadata,
                span,
                format!("metadata `@{}` is not followed by an intent", first.key.node),
            )
            .with_label("this metadata belongs to nothing")
            .with_help("put `@` lines directly above the intent they describe, or use `meta KEY = VALUE` for the whole file");
            if let Some((next, is_namespace)) = next {
                d = d.with_secondary(next, "this statement comes in between");
                if is_namespace {
                    d = d.with_note("metadata describes one intent, not a namespace: put it below `namespace`, just above the intent");
                }
            }
            self.error(d);
        }
        pending.clear();
    }

    fn dns_label(&mut self, name: &Spanned<ast::Name>) -> bool {
        match validate::is_dns1123_label(&name.node.text) {
            Ok(()) => true,
            Err(reason) => {
                let suggestion = suggest_label(&name.node.text);
                let mut d =
                    Diagnostic::new(Code::InvalidName, name.span, format!("`{}` is not a valid name", name.node.text)).with_label(reason);
                d = match suggestion {
                    Some(s) if s != name.node.text => d.with_help(format!("names are DNS labels: lower-case letters, digits and `-`, at most 63 characters, such as `{s}`")),
                    _ => d.with_help("names are DNS labels: lower-case letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters"),
                };
                self.error(d);
                false
            }
        }
    }

    /// The annotation key for a metadata key, or `None` after reporting why it is not one.
    fn metadata_key(&mut self, key: &Spanned<String>) -> Option<String> {
        let prefix = &self.config.annotation_prefix;
        let full = if key.node.contains('/') {
            key.node.clone()
        } else {
            [prefix.as_str(), "/", &key.node].concat()
        };
        let name = full.strip_prefix(prefix.as_str()).and_then(|rest| rest.strip_prefix('/'));
        if matches!(name, Some("source" | "intent")) {
            self.error(
                Diagnostic::new(
                    Code::ReservedMetadataKey,
                    key.span,
                    format!("metadata key `{}` is reserved", key.node),
                )
                .with_label("netpolc writes this annotation itself")
                .with_help("`source` and `intent` record where each policy comes from; choose another key"),
            );
            return None;
        }
        let problems = validate::validate_qualified_name(&full);
        if let Some(problem) = problems.first() {
            self.error(
                Diagnostic::new(Code::InvalidMetadataKey, key.span, format!("`{}` is not a valid metadata key", key.node))
                    .with_label(problem.clone())
                    .with_help("metadata keys become annotation keys: letters, digits, `-`, `_` and `.`, at most 63 characters, with an optional DNS prefix and `/`"),
            );
            return None;
        }
        Some(full)
    }

    fn label_key(&mut self, key: &Spanned<String>) -> bool {
        let problems = validate::validate_qualified_name(&key.node);
        match problems.first() {
            None => true,
            Some(p) => {
                let p = p.clone();
                self.error(
                    Diagnostic::new(Code::InvalidLabelKey, key.span, format!("`{}` is not a valid label key", key.node))
                        .with_label(p)
                        .with_help("label keys are an optional DNS prefix and `/`, then at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit"),
                );
                false
            }
        }
    }

    fn label_value(&mut self, value: &Spanned<String>) -> bool {
        match validate::validate_label_value(&value.node) {
            Ok(()) => true,
            Err(p) => {
                self.error(
                    Diagnostic::new(Code::InvalidLabelValue, value.span, format!("`{}` is not a valid label value", value.node))
                        .with_label(p)
                        .with_help("label values have at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit, or are empty"),
                );
                false
            }
        }
    }

    fn selector(&mut self, selector: &ast::Selector) -> Option<LabelSelector> {
        let mut ok = true;
        let mut out = LabelSelector::default();
        for term in &selector.terms {
            ok &= self.label_key(term.node.key());
            let values: Vec<&Spanned<String>> = match &term.node {
                Term::Equal(_, v) | Term::NotEqual(_, v) => vec![v],
                Term::In(_, vs) | Term::NotIn(_, vs) => vs.iter().collect(),
                Term::Exists(_) | Term::NotExists(_) => Vec::new(),
            };
            for v in values {
                ok &= self.label_value(v);
            }
            let key = term.node.key().node.clone();
            let expression = |operator, values: &[Spanned<String>]| {
                let mut values: Vec<String> = values.iter().map(|v| v.node.clone()).collect();
                values.sort();
                values.dedup();
                Expression {
                    key: key.clone(),
                    operator,
                    values,
                }
            };
            match &term.node {
                Term::Equal(_, v) => match out.labels.get(&key) {
                    Some(existing) if *existing != v.node => out.expressions.push(expression(Operator::In, std::slice::from_ref(v))),
                    _ => {
                        out.labels.insert(key.clone(), v.node.clone());
                    }
                },
                Term::NotEqual(_, v) => out.expressions.push(expression(Operator::NotIn, std::slice::from_ref(v))),
                Term::In(_, vs) | Term::NotIn(_, vs) => {
                    if vs.is_empty() {
                        ok = false;
                        self.error(
                            Diagnostic::new(Code::EmptySetTerm, term.span, format!("`{key}` is compared with an empty list"))
                                .with_label("no values")
                                .with_help("Kubernetes needs at least one value for `in` and `notin`; use `!key` or `key` to test whether a label exists"),
                        );
                    }
                    let op = if matches!(term.node, Term::In(..)) {
                        Operator::In
                    } else {
                        Operator::NotIn
                    };
                    out.expressions.push(expression(op, vs));
                }
                Term::Exists(_) => out.expressions.push(expression(Operator::Exists, &[])),
                Term::NotExists(_) => out.expressions.push(expression(Operator::DoesNotExist, &[])),
            }
        }
        out.expressions.sort();
        out.expressions.dedup();
        ok.then_some(out)
    }

    fn cidr(&mut self, text: &Spanned<String>) -> Option<Cidr> {
        match Cidr::parse(&text.node) {
            Ok(c) => {
                if c.has_host_bits() {
                    let canonical = c.canonical();
                    self.error(
                        Diagnostic::new(Code::HostBitsSet, text.span, format!("`{}` has host bits set", text.node))
                            .with_label(format!("this means `{canonical}`"))
                            .with_help(format!("write `{canonical}`")),
                    );
                }
                Some(c.canonical())
            }
            Err(reason) => {
                self.error(
                    Diagnostic::new(Code::InvalidCidr, text.span, format!("`{}` is not a valid CIDR", text.node))
                        .with_label(reason)
                        .with_help("write an address and a prefix length, such as `10.0.0.0/24` or `2001:db8::/32`"),
                );
                None
            }
        }
    }

    fn ip_block(&mut self, cidr: &Spanned<String>, except: &[Spanned<String>]) -> Option<IpBlock> {
        let block = self.cidr(cidr);
        let mut holes = Vec::new();
        let mut ok = block.is_some();
        for e in except {
            let Some(hole) = self.cidr(e) else {
                ok = false;
                continue;
            };
            if let Some(block) = block
                && !block.strictly_contains(hole)
            {
                ok = false;
                self.error(
                    Diagnostic::new(
                        Code::ExceptOutsideBlock,
                        e.span,
                        format!("`{hole}` is not strictly inside `{block}`"),
                    )
                    .with_label("outside the block")
                    .with_secondary(cidr.span, "the block")
                    .with_help("each `except` must be a smaller block inside the block it is cut from, of the same IP family"),
                );
            }
            holes.push(hole.to_string());
        }
        holes.sort();
        holes.dedup();
        let block = block?;
        ok.then(|| IpBlock {
            cidr: block.to_string(),
            except: holes,
        })
    }

    /// `file:line` of a span.
    fn location(&self, span: Span) -> String {
        let name = self.sources.name(span.file);
        let mut location = String::with_capacity(name.len() + 6);
        location.push_str(name);
        location.push(':');
        // Every flow has one: the digits are written without the formatting machinery.
        let line = self.sources.line_of(span);
        let digits = line.checked_ilog10().unwrap_or(0) + 1;
        for place in (0..digits).rev() {
            location.push(char::from(b'0' + (line / 10usize.pow(place) % 10) as u8));
        }
        location
    }

    /// The ports of a target, and each as written with its place.
    fn ports(&mut self, ports: &[Spanned<ast::Port>], to_ips: bool, is_dns: bool) -> Option<(PortSet, Vec<(PortSpec, Span)>)> {
        if ports.is_empty() {
            let set = if is_dns {
                PortSet(self.config.dns_ports.clone())
            } else {
                PortSet::all()
            };
            return Some((set, Vec::new()));
        }
        let mut written = Vec::with_capacity(ports.len());
        let mut ok = true;
        let mut out = Vec::with_capacity(ports.len());
        for port in ports {
            let protocol = match &port.node.protocol {
                None => Some(Protocol::Tcp),
                Some(p) => match p.node.to_ascii_lowercase().as_str() {
                    "tcp" => Some(Protocol::Tcp),
                    "udp" => Some(Protocol::Udp),
                    "sctp" => Some(Protocol::Sctp),
                    _ => {
                        self.error(
                            Diagnostic::new(Code::UnknownProtocol, p.span, format!("unknown protocol `{}`", p.node))
                                .with_label("not a protocol of NetworkPolicies")
                                .with_help("use `tcp` (the default), `udp` or `sctp`"),
                        );
                        None
                    }
                },
            };
            let number = match &port.node.value {
                ast::PortValue::Number(n) => self.port_number(*n, port.span).map(PortNumber::Single),
                ast::PortValue::Range(a, b) => {
                    let (a, b) = (self.port_number(*a, port.span), self.port_number(*b, port.span));
                    match (a, b) {
                        (Some(a), Some(b)) if b < a => {
                            self.error(
                                Diagnostic::new(
                                    Code::PortRangeReversed,
                                    port.span,
                                    format!("port range `{a}-{b}` ends below its start"),
                                )
                                .with_label("end is lower than start")
                                .with_help(format!("write `{b}-{a}`")),
                            );
                            None
                        }
                        (Some(a), Some(b)) if a == b => Some(PortNumber::Single(a)),
                        (Some(a), Some(b)) => Some(PortNumber::Range(a, b)),
                        _ => None,
                    }
                }
                ast::PortValue::Named(name) => {
                    let problems = validate::validate_port_name(name);
                    if let Some(p) = problems.first() {
                        let p = p.clone();
                        self.error(
                            Diagnostic::new(Code::InvalidPortName, port.span, format!("`{name}` is not a valid port name"))
                                .with_label(p)
                                .with_help("a named port has 1 to 15 lower-case letters, digits and `-`, with at least one letter, such as `http` or `metrics`"),
                        );
                        None
                    } else if to_ips {
                        self.error(
                            Diagnostic::new(
                                Code::NamedPortToIpBlock,
                                port.span,
                                format!("named port `{name}` towards an IP block can never match"),
                            )
                            .with_label("named ports are looked up on the destination pod")
                            .with_help("an IP block has no container ports: give the port number"),
                        );
                        None
                    } else {
                        Some(PortNumber::Named(name.clone()))
                    }
                }
            };
            match (protocol, number) {
                (Some(protocol), Some(number)) => {
                    let spec = PortSpec { protocol, port: number };
                    written.push((spec.clone(), port.span));
                    out.push(spec);
                }
                _ => ok = false,
            }
        }
        out.sort();
        out.dedup();
        ok.then_some((PortSet(out), written))
    }

    fn port_number(&mut self, n: u32, span: Span) -> Option<u16> {
        match u16::try_from(n) {
            Ok(p) if p >= 1 => Some(p),
            _ => {
                let shown = if n == u32::MAX { "number".to_string() } else { format!("`{n}`") };
                self.error(
                    Diagnostic::new(Code::PortOutOfRange, span, format!("port {shown} is outside 1-65535"))
                        .with_label("not a port number")
                        .with_help("ports are numbers from 1 to 65535"),
                );
                None
            }
        }
    }
}

impl<'a, D: Borrow<Declarations>> Checker<'a, D> {
    fn decls(&self) -> &Declarations {
        self.decls.borrow()
    }

    /// A worker's part of pass two: the intents of one file (see [`Checker::resolve_files`]).
    fn resolve_file(&mut self, intents: &[PendingIntent<'a>]) -> FileOutcome {
        self.resolved_here.clear();
        let intents = intents.iter().map(|intent| self.resolve_intent(intent)).collect();
        let table = std::mem::take(&mut self.peers);
        FileOutcome {
            peers: table.peers,
            hashes: table.hashes,
            intents,
        }
    }

    fn resolve_intent(&mut self, intent: &PendingIntent<'a>) -> IntentOutcome {
        let source = match intent.source {
            Err(_) => Some(self.peers.intern(Peer::Pods {
                namespaces: Namespaces::Named(intent.namespace.to_string()),
                pods: LabelSelector::default(),
                name: PeerName::All,
            })),
            Ok(s) if matches!(s.node, Endpoint::Dns) => {
                self.dns_as_source(s.span);
                None
            }
            Ok(s) => self.peer(s, intent.namespace),
        };
        let diagnostics = std::mem::take(&mut self.diagnostics);
        // The source as written, or the whole `allow dns` statement.
        let head = intent.source.map(|s| normalise(self.sources.slice(s.span)));
        let targets = intent
            .targets
            .iter()
            .map(|target| {
                let peer = self.peer(&target.node.endpoint, intent.namespace);
                let flow = source.zip(peer).and_then(|ends| self.flow(intent, &head, target, ends));
                TargetOutcome {
                    peer,
                    diagnostics: std::mem::take(&mut self.diagnostics),
                    flow,
                }
            })
            .collect();
        IntentOutcome {
            source,
            diagnostics,
            targets,
        }
    }

    /// The metadata of an intent under the lines of `source`, shared with
    /// the intent before it when that one is under the same lines.
    fn metadata_of(&mut self, source: &Arc<MetadataSource<'a>>) -> IntentMetadata {
        match &self.last_metadata {
            // The pointer stays taken while it is kept here: it cannot name other lines.
            Some((last, shared)) if Arc::ptr_eq(last, source) => shared.clone(),
            _ => {
                let shared = collect_metadata(source);
                self.last_metadata = Some((Arc::clone(source), shared.clone()));
                shared
            }
        }
    }

    /// The flow from peer `source_id` to `target`, peer `target_id`; `None`
    /// after reporting why there is none.
    fn flow(
        &mut self,
        intent: &PendingIntent<'a>,
        head: &Result<String, Span>,
        target: &Spanned<ast::Target>,
        (source_id, target_id): (usize, usize),
    ) -> Option<PendingFlow> {
        let source_span = intent.source.map_or(target.span, |s| s.span);
        let (source, peer) = (&*self.peers.peers[source_id], &*self.peers.peers[target_id]);
        let target_is_ips = matches!(peer, Peer::Ips { .. });
        if matches!(source, Peer::Ips { .. }) && target_is_ips {
            self.error(
                Diagnostic::new(
                    Code::IpBlockBothSides,
                    target.node.endpoint.span,
                    "an intent cannot have an IP block on both sides",
                )
                .with_label("IP block target")
                .with_secondary(source_span, "IP block source")
                .with_help("NetworkPolicies only restrict pods: one side of an intent must be pods"),
            );
            return None;
        }
        let is_dns = matches!(target.node.endpoint.node, Endpoint::Dns);
        let (ports, written_ports) = self.ports(&target.node.ports, target_is_ips, is_dns)?;
        let text = match head {
            Ok(source_text) => {
                let target_text = self.sources.slice(target.span);
                let mut text = String::with_capacity(source_text.len() + 4 + target_text.len());
                text.push_str(source_text);
                text.push_str(" -> ");
                push_normalised(&mut text, target_text);
                text
            }
            Err(statement) => normalise(self.sources.slice(*statement)),
        };
        let (metadata, metadata_lines) = self.metadata_of(&intent.metadata);
        Some(PendingFlow {
            ports,
            is_dns,
            endpoint_span: target.node.endpoint.span,
            origin: Arc::new(Origin {
                span: target.span,
                source_span,
                location: self.location(target.span),
                text,
                metadata,
                namespace: intent.namespace.to_string(),
                metadata_lines,
                written_ports,
            }),
        })
    }

    /// Resolves an `expect` statement; `None` after reporting why it cannot be.
    fn expectation(&mut self, e: &PendingExpectation) -> Option<Expectation> {
        let source = self.endpoint(&e.statement.source, e.namespace)?;
        let target = self.endpoint(&e.statement.target.node.endpoint, e.namespace)?;
        let is_dns = matches!(e.statement.target.node.endpoint.node, Endpoint::Dns);
        let (ports, _) = self.ports(&e.statement.target.node.ports, matches!(target, Peer::Ips { .. }), is_dns)?;
        Some(Expectation {
            source,
            target,
            ports,
            allowed: e.statement.allowed,
            span: e.span,
            text: normalise(self.sources.slice(e.span)),
        })
    }

    /// Resolves an `expose` statement; `None` after reporting why it cannot be.
    /// Its target must be pods of the namespace it is written in: a
    /// namespace consents for itself only.
    fn exposure(&mut self, e: &PendingExposure) -> Option<Exposure> {
        let target = &e.statement.target;
        let peer = self.endpoint(&target.node.endpoint, e.namespace);
        let mut callers = Vec::new();
        for caller in &e.statement.callers {
            if matches!(caller.node, Endpoint::Dns) {
                self.dns_as_source(caller.span);
            } else if let Some(peer) = self.endpoint(caller, e.namespace) {
                callers.push(peer);
            }
        }
        let pods = match &peer {
            Some(Peer::Pods {
                namespaces: Namespaces::Named(ns),
                pods,
                name,
            }) if *ns == e.namespace && *name != PeerName::Dns => pods.clone(),
            Some(_) => {
                self.error(
                    Diagnostic::new(
                        Code::ExposeOutsideNamespace,
                        target.node.endpoint.span,
                        format!("`expose` in namespace `{}` names pods it does not own", e.namespace),
                    )
                    .with_label(format!("not pods of `{}`", e.namespace))
                    .with_help(format!(
                        "a namespace consents for its own pods only: expose `NAME`, `*` or `[SELECTOR]` of `{}`, and let other namespaces expose theirs",
                        e.namespace
                    )),
                );
                return None;
            }
            None => return None,
        };
        let ports = self.ports(&target.node.ports, matches!(peer.as_ref()?, Peer::Ips { .. }), false)?.0;
        (callers.len() == e.statement.callers.len()).then(|| Exposure {
            namespace: e.namespace.to_string(),
            pods,
            ports,
            callers,
            span: e.span,
        })
    }

    fn cross_declaration_checks(&mut self) {
        let mut clashes: Vec<(String, Span, Span)> = Vec::new();
        for (name, (_, ext_span)) in &self.decls().externals {
            if let Some(w) = self.decls().workload_names.get(name) {
                clashes.push((name.clone(), *w, *ext_span));
            }
        }
        clashes.sort_by_key(|c| (c.1.file, c.1.start));
        for (name, workload, external) in clashes {
            self.error(
                Diagnostic::new(
                    Code::ExternalAndWorkload,
                    workload,
                    format!("`{name}` is declared both as a workload and as an external"),
                )
                .with_label("workload")
                .with_secondary(external, "external")
                .with_help("a bare name must mean one thing: rename one of them"),
            );
        }
    }

    /// The warnings about namespaces as the flows kept use them (see
    /// [`NamespaceUses`]): undeclared namespaces whose pods get rules, then
    /// namespaces that isolate egress but reach no DNS, each by name.
    fn namespace_warnings(&mut self, uses: NamespaceUses, program: &Program) {
        let mut namespaces = uses.namespaces;
        namespaces.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for ns in namespaces.iter().filter(|_| !self.config.declared_only) {
            let (Some(at), name) = (ns.first_rule, &ns.name) else { continue };
            let directions = match (ns.egress, ns.ingress) {
                (true, true) => "egress and ingress",
                (true, false) => "egress",
                _ => "ingress",
            };
            self.error(
                Diagnostic::new(
                    Code::UndeclaredNamespace,
                    at,
                    format!("namespace `{name}` is not declared, but its pods get {directions} rules"),
                )
                .with_label(format!("makes pods of `{name}` isolated for {directions}"))
                .with_note("a pod selected by any policy loses every connection in that direction that no policy allows")
                .with_help(format!(
                    "declare `namespace {name}` in the file of the team that owns it and list its flows there"
                )),
            );
        }
        for ns in &namespaces {
            let (Some(at), name) = (ns.first_egress, &ns.name) else { continue };
            let isolates_egress = program.namespaces.get(name).is_some_and(|i| i.declared && i.isolation.egress());
            if isolates_egress && !ns.reaches_dns {
                self.error(
                    Diagnostic::new(
                        Code::MissingDns,
                        at,
                        format!("namespace `{name}` isolates egress but nothing in it may resolve names"),
                    )
                    .with_label("egress intent without DNS")
                    .with_help(format!(
                        "add `, allow dns` to this intent, or a line `allow dns` under `namespace {name}`"
                    )),
                );
            }
        }
    }

    /// The number of the peer an endpoint of an intent stands for; `None` after reporting why it has none.
    fn peer(&mut self, endpoint: &'a Spanned<Endpoint>, namespace: &'a str) -> Option<usize> {
        let key = EndpointKey::of(&endpoint.node, namespace);
        if let Some(key) = key {
            if let Some(&id) = self.resolved_here.get(&key) {
                return Some(id);
            }
            if let Some((hash, peer)) = self.resolved.get(&key) {
                let id = self.peers.intern_shared(*hash, peer);
                self.resolved_here.insert(key, id);
                return Some(id);
            }
        }
        let reported = self.diagnostics.len();
        let peer = self.endpoint(endpoint, namespace)?;
        let id = self.peers.intern(peer);
        // A name that drew a diagnostic (a "did you mean") draws it again at each use.
        if let Some(key) = key
            && self.diagnostics.len() == reported
        {
            self.resolved
                .insert(key, (self.peers.hashes[id], Arc::clone(&self.peers.peers[id])));
            self.resolved_here.insert(key, id);
        }
        Some(id)
    }

    fn endpoint(&mut self, endpoint: &Spanned<Endpoint>, namespace: &str) -> Option<Peer> {
        let span = endpoint.span;
        match &endpoint.node {
            Endpoint::Name(name) => {
                if let Some((block, _)) = self.decls().externals.get(&name.text) {
                    return Some(Peer::Ips {
                        blocks: vec![block.clone()],
                        name: PeerName::External(name.text.clone()),
                    });
                }
                self.workload_peer(namespace, &Spanned::new(name.clone(), span))
            }
            Endpoint::Qualified { namespace: ns, pods } => {
                let ns_ok = self.dns_label(ns);
                let peer = match pods {
                    Pods::Name(n) => self.workload_peer(&ns.node.text, n),
                    Pods::All => Some(Peer::Pods {
                        namespaces: Namespaces::Named(ns.node.text.clone()),
                        pods: LabelSelector::default(),
                        name: PeerName::All,
                    }),
                    Pods::Selector(s) => {
                        let sel = self.selector(s)?;
                        let name = PeerName::Selector(short_hash(&format!("[{sel}]")));
                        Some(Peer::Pods {
                            namespaces: Namespaces::Named(ns.node.text.clone()),
                            pods: sel,
                            name,
                        })
                    }
                };
                if ns_ok { peer } else { None }
            }
            Endpoint::AllPods => Some(Peer::Pods {
                namespaces: Namespaces::Named(namespace.to_string()),
                pods: LabelSelector::default(),
                name: PeerName::All,
            }),
            Endpoint::PodSelector(s) => {
                let sel = self.selector(s)?;
                let name = PeerName::Selector(short_hash(&format!("[{sel}]")));
                Some(Peer::Pods {
                    namespaces: Namespaces::Named(namespace.to_string()),
                    pods: sel,
                    name,
                })
            }
            Endpoint::Namespaces { namespaces, pods } => {
                let ns_sel = self.selector(namespaces);
                let (pod_sel, pod_name) = match pods {
                    Pods::All => (Some(LabelSelector::default()), PeerName::All),
                    Pods::Name(n) => {
                        let ok = self.dns_label(n);
                        let sel = LabelSelector::label(&self.config.workload_label, &n.node.text);
                        (ok.then_some(sel), PeerName::Workload(n.node.text.clone()))
                    }
                    Pods::Selector(s) => {
                        let sel = self.selector(s);
                        let name = PeerName::Selector(sel.as_ref().map(|s| short_hash(&format!("[{s}]"))).unwrap_or_default());
                        (sel, name)
                    }
                };
                let (ns_sel, pod_sel) = (ns_sel?, pod_sel?);
                let name = match (ns_sel.is_empty(), pod_name) {
                    (true, PeerName::All) => PeerName::Cluster,
                    (true, pods) => PeerName::InNamespaces(None, Box::new(pods)),
                    (false, pods) => PeerName::InNamespaces(Some(short_hash(&format!("{{{ns_sel}}}"))), Box::new(pods)),
                };
                Some(Peer::Pods {
                    namespaces: Namespaces::Selected(ns_sel),
                    pods: pod_sel,
                    name,
                })
            }
            Endpoint::Cluster => Some(Peer::Pods {
                namespaces: Namespaces::Selected(LabelSelector::default()),
                pods: LabelSelector::default(),
                name: PeerName::Cluster,
            }),
            Endpoint::World => Some(Peer::Ips {
                blocks: vec![
                    IpBlock {
                        cidr: "0.0.0.0/0".into(),
                        except: Vec::new(),
                    },
                    IpBlock {
                        cidr: "::/0".into(),
                        except: Vec::new(),
                    },
                ],
                name: PeerName::World,
            }),
            Endpoint::Internet => Some(Peer::Ips {
                blocks: vec![
                    IpBlock {
                        cidr: "0.0.0.0/0".into(),
                        except: NON_PUBLIC_V4.iter().map(|s| s.to_string()).collect(),
                    },
                    IpBlock {
                        cidr: "::/0".into(),
                        except: NON_PUBLIC_V6.iter().map(|s| s.to_string()).collect(),
                    },
                ],
                name: PeerName::Internet,
            }),
            Endpoint::Dns => Some(match &self.config.dns {
                DnsLocation::Pods { namespace, pods } => Peer::Pods {
                    namespaces: Namespaces::Named(namespace.clone()),
                    pods: pods.clone(),
                    name: PeerName::Dns,
                },
                DnsLocation::IpBlock(cidr) => Peer::Ips {
                    blocks: vec![IpBlock {
                        cidr: cidr.clone(),
                        except: Vec::new(),
                    }],
                    name: PeerName::Dns,
                },
            }),
            Endpoint::Cidr(text) => {
                let cidr = self.cidr(&Spanned::new(text.clone(), span))?;
                let canonical = cidr.to_string();
                Some(Peer::Ips {
                    blocks: vec![IpBlock {
                        cidr: canonical.clone(),
                        except: Vec::new(),
                    }],
                    name: PeerName::Cidr(canonical),
                })
            }
            Endpoint::Ipv6Literal(text) => {
                self.error(
                    Diagnostic::new(Code::Ipv6Literal, span, format!("IPv6 block `{text}` written in an intent"))
                        .with_label("IPv6 literal")
                        .with_help(format!("declare it and use its name: `external NAME = {text}`")),
                );
                None
            }
        }
    }

    fn workload_peer(&mut self, namespace: &str, name: &Spanned<ast::Name>) -> Option<Peer> {
        if !self.dns_label(name) {
            return None;
        }
        let text = &name.node.text;
        let pods = match self.decls().workload(namespace, text) {
            Some((sel, _)) => sel.clone(),
            None => {
                self.typo_warning(namespace, name);
                LabelSelector::label(&self.config.workload_label, text)
            }
        };
        Some(Peer::Pods {
            namespaces: Namespaces::Named(namespace.to_string()),
            pods,
            name: PeerName::Workload(text.clone()),
        })
    }

    fn typo_warning(&mut self, namespace: &str, name: &Spanned<ast::Name>) {
        let text = &name.node.text;
        // The same undeclared name is usually referenced many times: look it up once.
        let cached = self.typo_cache.get(namespace).and_then(|names| names.get(text.as_str()));
        let best = match cached {
            Some(found) => found.clone(),
            None => {
                let found = self.closest_workload(namespace, text);
                let names = self.typo_cache.entry(namespace.to_string()).or_default();
                names.insert(text.clone(), found.clone());
                found
            }
        };
        self.report_typo(namespace, name, best);
    }

    fn closest_workload(&self, namespace: &str, text: &str) -> Closest {
        let declared = self.decls().typo_candidates.get(namespace)?;
        let shape = CharShape::of(text);
        declared
            .iter()
            .filter_map(|(n, n_shape, at)| {
                let limit = max_typo_distance(n_shape.length);
                // Most names are ruled out without computing the distance.
                if shape.distance_at_least(n_shape) > limit {
                    return None;
                }
                let d = bounded_edit_distance(text, n, limit)?;
                (d > 0).then_some((d, n.as_str(), *at))
            })
            .min()
            .map(|(d, n, at)| (d, n.to_string(), at))
    }

    fn report_typo(&mut self, namespace: &str, name: &Spanned<ast::Name>, best: Closest) {
        let text = &name.node.text;
        if let Some((_, suggestion, at)) = best {
            let label = self.config.workload_label.clone();
            self.error(
                Diagnostic::new(
                    Code::UnknownWorkloadTypo,
                    name.span,
                    format!("workload `{text}` is not declared in namespace `{namespace}`; did you mean `{suggestion}`?"),
                )
                .with_label(format!("selects pods labelled `{label}={text}`"))
                .with_secondary(at, format!("`{suggestion}` is declared here"))
                .with_help(format!(
                    "write `{suggestion}`, or declare `workload {text} = ...` if `{label}={text}` is meant"
                )),
            );
        }
    }
}

/// The annotations of an intent, and the metadata lines behind them.
type IntentMetadata = (Arc<[(String, String)]>, Arc<[MetadataLine]>);

/// The warning that no policy is generated for one side of a flow, when
/// that side is pods chosen by namespace labels.
fn selector_side_warning(peer: &Peer, span: Span, side: &str) -> Option<Diagnostic> {
    let Peer::Pods {
        namespaces: Namespaces::Selected(sel),
        ..
    } = peer
    else {
        return None;
    };
    if sel.is_empty() {
        return None;
    }
    let half = if side == "source" { "egress" } else { "ingress" };
    Some(
        Diagnostic::new(
            Code::NamespaceSelectorHalf,
            span,
            format!("no {half} policy is generated for the namespaces matching `{{{sel}}}`"),
        )
        .with_label(format!("{side} chosen by namespace labels"))
        .with_note(format!(
            "netpolc cannot know which namespaces carry these labels, so their {half} half is up to them"
        ))
        .with_help("if those namespaces isolate this direction, they must allow this flow themselves"),
    )
}

/// Records the namespace of pods that receive rules, declared or not.
fn touch_namespace(program: &mut Program, peer: &Peer) {
    if let Peer::Pods {
        namespaces: Namespaces::Named(ns),
        ..
    } = peer
        && !program.namespaces.contains_key(ns)
    {
        program.namespaces.insert(ns.clone(), NamespaceInfo::default());
    }
}

/// What the namespace warnings need to know of the flows kept, gathered
/// as merging keeps them: a peer's namespace is looked up once per peer
/// number, not once per flow.
#[derive(Default)]
struct NamespaceUses {
    /// By peer number: the place in `namespaces` of the namespace of a peer
    /// that is pods of one named namespace; `None` until the peer is seen.
    by_peer: Vec<Option<Option<usize>>>,
    places: FxHashMap<String, usize>,
    /// In the order first seen.
    namespaces: Vec<NamespaceUse>,
}

/// How the flows kept use one namespace's pods.
struct NamespaceUse {
    name: String,
    declared: bool,
    /// Undeclared only: whether its pods get egress or ingress rules, and the first flow that gives them one.
    egress: bool,
    ingress: bool,
    first_rule: Option<Span>,
    /// The first flow out of it, and whether some flow out of it reaches DNS.
    first_egress: Option<Span>,
    reaches_dns: bool,
}

impl NamespaceUses {
    /// Records a flow kept, from `source` to `target` (with their peer numbers).
    fn record(
        &mut self,
        (source_id, source): (usize, &Peer),
        (target_id, target): (usize, &Peer),
        origin: &Origin,
        known: &BTreeMap<String, NamespaceInfo>,
    ) {
        let dns_target = matches!(target.name(), PeerName::Dns);
        if let Some(place) = self.place(source_id, source, known) {
            let ns = &mut self.namespaces[place];
            if !ns.declared {
                ns.egress = true;
                ns.first_rule.get_or_insert(origin.source_span);
            }
            ns.first_egress.get_or_insert(origin.span);
            ns.reaches_dns |= dns_target;
        }
        // DNS pods count only in a declared namespace.
        if !dns_target && let Some(place) = self.place(target_id, target, known) {
            let ns = &mut self.namespaces[place];
            if !ns.declared {
                ns.ingress = true;
                ns.first_rule.get_or_insert(origin.span);
            }
        }
    }

    fn place(&mut self, id: usize, peer: &Peer, known: &BTreeMap<String, NamespaceInfo>) -> Option<usize> {
        if id >= self.by_peer.len() {
            self.by_peer.resize(id + 1, None);
        }
        if let Some(place) = self.by_peer[id] {
            return place;
        }
        let place = match peer {
            Peer::Pods {
                namespaces: Namespaces::Named(name),
                ..
            } => Some(match self.places.get(name.as_str()) {
                Some(&place) => place,
                None => {
                    let place = self.namespaces.len();
                    self.places.insert(name.clone(), place);
                    self.namespaces.push(NamespaceUse {
                        name: name.clone(),
                        declared: known.get(name).is_some_and(|info| info.declared),
                        egress: false,
                        ingress: false,
                        first_rule: None,
                        first_egress: None,
                        reaches_dns: false,
                    });
                    place
                }
            }),
            _ => None,
        };
        self.by_peer[id] = Some(place);
        place
    }
}

/// The metadata in force while reading a file: its `meta` lines so far, each
/// key replaced for one intent by the `@` lines just above it.
#[derive(Default)]
struct MetadataScope<'a> {
    /// `meta` lines by annotation key.
    file: BTreeMap<Arc<str>, &'a ast::Metadata>,
    /// `@` lines waiting for the next intent, with their annotation keys.
    pending: Vec<(Arc<str>, &'a ast::Metadata)>,
    /// What an intent without `@` lines gets: most intents, so it is built once per `meta` line.
    file_only: Option<Arc<MetadataSource<'a>>>,
}

impl<'a> MetadataScope<'a> {
    fn set_file(&mut self, key: Arc<str>, m: &'a ast::Metadata) {
        self.file.insert(key, m);
        self.file_only = None;
    }

    /// The metadata of the next intent; the `@` lines are used up.
    fn take(&mut self) -> Arc<MetadataSource<'a>> {
        let from_file = |(key, m): (&Arc<str>, &&'a ast::Metadata)| (Arc::clone(key), &m.value);
        if self.pending.is_empty() {
            let file = &self.file;
            let shared = self.file_only.get_or_insert_with(|| Arc::new(file.iter().map(from_file).collect()));
            return Arc::clone(shared);
        }
        // A key written with `@` replaces the file's value; repeated values count once.
        let mut merged: MetadataSource = self
            .file
            .iter()
            .filter(|(key, _)| !self.pending.iter().any(|(k, _)| k == *key))
            .map(from_file)
            .collect();
        for (key, m) in self.pending.drain(..) {
            if !merged.iter().any(|(k, v)| *k == key && v.node == m.value.node) {
                merged.push((key, &m.value));
            }
        }
        // Stable: the values of a key stay in the order written.
        merged.sort_by(|(a, _), (b, _)| a.cmp(b));
        Arc::new(merged)
    }
}

/// The metadata values of an intent with their annotation keys, by key;
/// the values of a key in the order written.
type MetadataSource<'a> = Vec<(Arc<str>, &'a Spanned<String>)>;

/// Annotations (the values of a key joined) and lines (one per value).
fn collect_metadata(source: &MetadataSource) -> IntentMetadata {
    let lines = source
        .iter()
        .map(|(key, v)| MetadataLine {
            key: String::from(&**key),
            value: v.node.clone(),
            span: v.span,
        })
        .collect();
    let mut annotations: Vec<(String, String)> = Vec::with_capacity(source.len());
    for (key, v) in source {
        match annotations.last_mut() {
            Some((last, joined)) if last.as_str() == &**key => {
                joined.push_str(", ");
                joined.push_str(&v.node);
            }
            _ => annotations.push((String::from(&**key), v.node.clone())),
        }
    }
    (annotations.into(), lines)
}

/// Collapses white space (line continuations included) to single spaces and drops comments.
pub fn normalise(text: &str) -> String {
    let mut out = String::new();
    push_normalised(&mut out, text);
    out
}

/// Appends `text` normalised (see [`normalise`]) to `out`, which need not be empty.
fn push_normalised(out: &mut String, text: &str) {
    // Most intents are written on one line with single spaces: they stay as they are.
    if is_normal(text) {
        out.push_str(text);
        return;
    }
    let start = out.len();
    out.reserve(text.len());
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or("");
        for word in code.split_whitespace() {
            if out.len() > start && !out.ends_with('(') && !word.starts_with(')') {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
}

/// Whether [`normalise`] leaves `text` as it is: printable ASCII words
/// separated by single spaces, no comment, no space just inside parentheses.
fn is_normal(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        return false;
    }
    // One pass over the bytes, each with the one before it.
    let mut before = 0;
    for &b in bytes {
        let printable = b == b' ' || (b.is_ascii_graphic() && b != b'#');
        if !printable || matches!((before, b), (b' ', b' ' | b')') | (b'(', b' ')) {
            return false;
        }
        before = b;
    }
    true
}

/// A short, stable hash (FNV-1a, 64 bits) as 8 base-36-free hex digits.
pub fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", (hash >> 32) as u32 ^ hash as u32)
}

fn suggest_label(text: &str) -> Option<String> {
    let s: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-').to_string();
    (!s.is_empty() && s.len() <= 63).then_some(s)
}

/// How far a name of `length` characters may be from what was written to be suggested.
fn max_typo_distance(length: usize) -> usize {
    match length {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    }
}

/// What a cheap lower bound of the edit distance needs of a string: its
/// length and the set of its characters (folded into 64 bits).
struct CharShape {
    length: usize,
    chars: u64,
}

impl CharShape {
    fn of(text: &str) -> Self {
        text.chars().fold(CharShape { length: 0, chars: 0 }, |shape, c| CharShape {
            length: shape.length + 1,
            chars: shape.chars | 1 << (u32::from(c) % 64),
        })
    }

    /// A lower bound of the edit distance: every edit changes the length by
    /// at most one, and each character of one string that the other lacks
    /// needs an edit of its own (folding characters only merges some of them).
    fn distance_at_least(&self, other: &CharShape) -> usize {
        let missing = (self.chars & !other.chars)
            .count_ones()
            .max((other.chars & !self.chars).count_ones());
        self.length.abs_diff(other.length).max(missing as usize)
    }
}

/// The Levenshtein distance of `a` and `b` if it is at most `limit`: the
/// rows stop as soon as every cell of one is over the limit.
fn bounded_edit_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        let mut smallest = row[0];
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
            smallest = smallest.min(row[j + 1]);
            prev = cur;
        }
        if smallest > limit {
            return None;
        }
    }
    Some(row[b.len()]).filter(|&d| d <= limit)
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of DNS-label shape, and a few that are not, compared in every pair.
    const WORDS: &[&str] = &[
        "",
        "a",
        "ab",
        "api",
        "apl",
        "pai",
        "web",
        "webb",
        "wbe",
        "billing-api",
        "biling-api",
        "billing-ap1",
        "orders-api",
        "orders",
        "payments-worker",
        "payment-workers",
        "ledger",
        "ledgre",
        "élan",
        "elan",
        "ℓedger",
        "x-y-z",
        "xyz",
    ];

    #[test]
    fn the_bounded_distance_is_the_distance_up_to_its_limit() {
        for a in WORDS {
            for b in WORDS {
                let exact = edit_distance(a, b);
                for limit in 0..5 {
                    let expected = (exact <= limit).then_some(exact);
                    assert_eq!(bounded_edit_distance(a, b, limit), expected, "{a:?} {b:?} within {limit}");
                }
                let bound = CharShape::of(a).distance_at_least(&CharShape::of(b));
                assert!(bound <= exact, "{a:?} {b:?}: bound {bound} over distance {exact}");
            }
        }
    }

    #[test]
    fn peers_of_one_hash_keep_numbers_of_their_own() {
        let pods = |name: &str| Peer::Pods {
            namespaces: Namespaces::Named("shop".into()),
            pods: LabelSelector::label("app", name),
            name: PeerName::Workload(name.into()),
        };
        // Every peer given the same hash, as if they all collided.
        let mut file = PeerTable::default();
        let ids: Vec<usize> = ["web", "api", "db", "api", "web"]
            .iter()
            .map(|n| file.intern_hashed(7, pods(n)))
            .collect();
        assert_eq!(ids, [0, 1, 2, 1, 0]);
        assert_eq!(file.find(7, &pods("cache")), None);
        // A merged table that knows one of them under another number.
        let mut merged = PeerTable::default();
        merged.intern_hashed(7, pods("db"));
        let theirs = FileOutcome {
            peers: file.peers,
            hashes: file.hashes,
            intents: Vec::new(),
        };
        let (mut seen, mut by_address) = (vec![None; 3], FxHashMap::default());
        let adopted: Vec<usize> = (0..3).map(|id| merged.adopt(&theirs, &mut seen, id, &mut by_address)).collect();
        assert_eq!(adopted, [1, 2, 0]);
        let names: Vec<String> = merged.peers.iter().map(|p| p.name().to_string()).collect();
        assert_eq!(names, ["db", "web", "api"]);
    }

    #[test]
    fn text_already_normal_is_left_alone_and_other_text_is_normalised() {
        let slow = |text: &str| {
            let mut out = String::new();
            for line in text.lines() {
                for word in line.split('#').next().unwrap_or("").split_whitespace() {
                    if !out.is_empty() && !out.ends_with('(') && !word.starts_with(')') {
                        out.push(' ');
                    }
                    out.push_str(word);
                }
            }
            out
        };
        for text in [
            "",
            "web -> api:8080",
            "web -> api:(80, 443)",
            "web  -> api",
            " web -> api",
            "web -> api ",
            "web -> api:( 80, 443 )",
            "web -> api # why",
            "web -> api:80,\n       db:5432",
            "web\t-> api",
            "web ->\u{a0}api",
            "a (b )c",
            ")x -> y(",
            "x -> (y )",
            "x -> ( y",
            "x ->  y",
            "x -> #",
        ] {
            assert_eq!(normalise(text), slow(text), "{text:?}");
            assert_eq!(is_normal(text), normalise(text) == text, "{text:?}");
            let mut appended = String::from("web -> ");
            push_normalised(&mut appended, text);
            assert_eq!(appended, format!("web -> {}", slow(text)), "{text:?}");
        }
    }
}
