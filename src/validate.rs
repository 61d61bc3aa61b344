//! The Kubernetes API server's validation rules for `networking.k8s.io/v1`
//! `NetworkPolicy` objects, applied to what the compiler emits.
//!
//! [`validate_network_policy`] returns every rule that an object breaks; an
//! empty list means the API server would accept the object on create. Tests
//! run it over every emitted object, so a violation is a compiler bug.
//!
//! The rules follow Kubernetes' own validation:
//!
//! - `pkg/apis/networking/validation/validation.go`: `ValidateNetworkPolicy`,
//!   `ValidateNetworkPolicySpec`, `ValidateNetworkPolicyPort`,
//!   `ValidateNetworkPolicyPeer`, `ValidateIPBlock`;
//! - `staging/src/k8s.io/apimachinery/pkg/api/validation/objectmeta.go`
//!   (`ValidateObjectMetaAccessor`, `ValidateAnnotations`, owner references,
//!   finalizers) and `generic.go` (`NameIsDNSSubdomain`, `maskTrailingDash`);
//! - `staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go`
//!   (`ValidateLabelSelector`, `ValidateLabels`, `ValidateManagedFields`);
//! - `staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go` and
//!   `pkg/api/validate/content/kube.go` (DNS names, label keys and values,
//!   port names and numbers);
//! - `staging/src/k8s.io/apimachinery/pkg/util/validation/ip.go`
//!   (`IsValidCIDRForLegacyField` with strict validation).
//!
//! Two checks are deliberately stricter than a default API server, because
//! the compiler should never emit what they reject:
//!
//! - CIDRs are checked as with the `StrictIPCIDRValidation` feature gate
//!   (alpha since Kubernetes 1.33): no leading zeros, no IPv4-mapped IPv6
//!   addresses, no bits set after the prefix length. Without the gate the
//!   server accepts these with a warning.
//! - duplicate `spec.policyTypes` entries are reported; the server accepts
//!   them (the list is atomic and only its length and values are checked).
//!
//! The public helpers ([`is_dns1123_label`], [`validate_qualified_name`],
//! [`validate_cidr`], ...) are the same checks, for the compiler to apply to
//! user input before anything is lowered.

pub use crate::cidr::Cidr;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ManagedFieldsEntry, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rustc_hash::FxHashSet;
use serde::Serialize;

/// Longest DNS-1123 label, in bytes (e.g. `metadata.namespace`).
pub const DNS1123_LABEL_MAX_LEN: usize = 63;
/// Longest DNS-1123 subdomain, in bytes (e.g. `metadata.name`).
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;
/// Longest name part of a qualified name (label or annotation key), in bytes.
pub const QUALIFIED_NAME_MAX_LEN: usize = 63;
/// Longest label value, in bytes.
pub const LABEL_VALUE_MAX_LEN: usize = 63;
/// Longest port name (an IANA service name), in bytes.
pub const PORT_NAME_MAX_LEN: usize = 15;
/// Largest total size of all annotation keys and values of one object, in bytes.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const MANAGED_FIELDS_MANAGER_MAX_LEN: usize = 128;
const MANAGED_FIELDS_SUBRESOURCE_MAX_LEN: usize = 256;
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];
const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];
const POLICY_TYPES: [&str; 2] = ["Ingress", "Egress"];
const SELECTOR_OPERATORS: [&str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];

/// One broken rule: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Violation {
    /// JSON path of the offending field, e.g. `spec.ingress[0].ports[1].endPort`.
    ///
    /// Like the API server, problems inside `labels`, `annotations` and
    /// `matchLabels` are reported on the map itself; the message names the
    /// offending key or value.
    pub field: String,
    /// What is wrong, lower-case and without a final period.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every rule of the API server's create-time validation that `np` breaks,
/// in field order; empty when the server would accept it.
///
/// A missing `spec` is validated as the empty spec the server defaults it to.
pub fn validate_network_policy(np: &NetworkPolicy) -> Vec<Violation> {
    Validator::default().validate(np)
}

/// [`validate_network_policy`] for many objects: label and annotation keys
/// and label values repeat across thousands of policies, so each distinct
/// one is checked once and its verdict remembered.
#[derive(Default)]
pub struct Validator {
    out: Out,
}

impl Validator {
    /// Every rule of the API server's create-time validation that `np`
    /// breaks, as [`validate_network_policy`] reports them.
    pub fn validate(&mut self, np: &NetworkPolicy) -> Vec<Violation> {
        validate_object_meta(&np.metadata, &Path::root("metadata"), &mut self.out);
        if let Some(spec) = &np.spec {
            validate_spec(spec, &Path::root("spec"), &mut self.out);
        }
        std::mem::take(&mut self.out.violations)
    }

    // Verdicts on parts of an object, for a writer that never builds the
    // whole object (`lower`'s text): each says whether `validate` finds
    // nothing wrong in that part, which no other part of the object changes.

    /// Whether labels (`metadata.labels`, `matchLabels`) break no rule.
    pub(crate) fn labels_are_valid(&mut self, labels: &BTreeMap<String, String>) -> bool {
        self.verdict(|out| check_labels(labels, &Path::root(""), out))
    }

    /// Whether an annotation key breaks no rule.
    pub(crate) fn annotation_key_is_valid(&mut self, key: &str) -> bool {
        self.verdict(|out| out.check_annotation_key(key, &Path::root("")))
    }

    /// Whether a label selector (`podSelector`, `namespaceSelector`) breaks no rule.
    pub(crate) fn selector_is_valid(&mut self, selector: &LabelSelector) -> bool {
        self.verdict(|out| check_label_selector(selector, &Path::root(""), out))
    }

    /// Whether the peers of a rule (`from`, `to`) break no rule.
    pub(crate) fn peers_are_valid(&mut self, peers: &[NetworkPolicyPeer]) -> bool {
        self.verdict(|out| {
            for peer in peers {
                check_peer(peer, &Path::root(""), out);
            }
        })
    }

    /// Whether a port of a rule breaks no rule.
    pub(crate) fn port_is_valid(&mut self, port: &NetworkPolicyPort) -> bool {
        self.verdict(|out| check_port(port, &Path::root(""), out))
    }

    fn verdict(&mut self, check: impl FnOnce(&mut Out)) -> bool {
        check(&mut self.out);
        let valid = self.out.violations.is_empty();
        self.out.violations.clear();
        valid
    }
}

/// Every rule that a label selector breaks, with `path` (e.g.
/// `spec.podSelector`) as the prefix of the reported fields.
///
/// `In` and `NotIn` need values, `Exists` and `DoesNotExist` forbid them, no
/// other operator exists; keys must be qualified names and values label values.
pub fn validate_label_selector(selector: &LabelSelector, path: &str) -> Vec<Violation> {
    let mut out = Out::default();
    check_label_selector(selector, &Path::root(path), &mut out);
    out.violations
}

// ---------------------------------------------------------------------------
// Names, keys and values

/// Whether `value` is a DNS-1123 label (RFC 1123): at most 63 bytes of
/// lower-case ASCII letters, digits and `-`, starting and ending with a letter
/// or digit. Namespaces must be labels.
pub fn is_dns1123_label(value: &str) -> Result<(), String> {
    let mut reasons = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LEN {
        reasons.push(max_len_reason(DNS1123_LABEL_MAX_LEN));
    }
    if !label_chars_ok(value) {
        if value.contains('.') && subdomain_chars_ok(value) {
            reasons.push("must not contain dots".to_owned());
        } else {
            reasons.push(
                "must consist of lower-case letters, digits or '-', and must start and end \
                 with a letter or digit (e.g. `my-name` or `123-abc`)"
                    .to_owned(),
            );
        }
    }
    join_reasons(reasons)
}

/// Whether `value` is a DNS-1123 subdomain (RFC 1123): at most 253 bytes of
/// dot-separated parts, each of lower-case ASCII letters, digits and `-` that
/// starts and ends with a letter or digit. Object names must be subdomains.
///
/// As in Kubernetes, the parts themselves have no length limit of their own.
pub fn is_dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.len() <= DNS1123_SUBDOMAIN_MAX_LEN && subdomain_chars_ok(value) {
        return Ok(());
    }
    let mut reasons = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        reasons.push(max_len_reason(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    if !subdomain_chars_ok(value) {
        reasons.push(
            "must consist of lower-case letters, digits, '-' or '.', and must start and end \
             with a letter or digit (e.g. `example.com`)"
                .to_owned(),
        );
    }
    join_reasons(reasons)
}

/// Every reason why `value` is not a qualified name (a label key, annotation
/// key or finalizer); empty when it is one.
///
/// A qualified name is an optional prefix and `/`, then a name. The prefix
/// must be a DNS-1123 subdomain (lower-case, at most 253 bytes); the name is
/// 1 to 63 bytes of ASCII letters (either case), digits, `-`, `_` and `.`,
/// starting and ending with a letter or digit.
///
/// Annotation keys are checked after lower-casing the whole key, so an
/// upper-case annotation prefix is accepted while a label-key prefix is not.
pub fn validate_qualified_name(value: &str) -> Vec<String> {
    if is_qualified_name(value) {
        return Vec::new();
    }
    let mut reasons = Vec::new();
    let name = match value.split_once('/') {
        None => value,
        Some((prefix, name)) if !name.contains('/') => {
            if prefix.is_empty() {
                reasons.push("prefix part must not be empty".to_owned());
            } else if let Err(reason) = is_dns1123_subdomain(prefix) {
                reasons.push(format!("prefix part {reason}"));
            }
            name
        }
        Some(_) => {
            reasons.push(
                "must be a name of letters, digits, '-', '_' or '.' that starts and ends with \
                 a letter or digit, with an optional DNS subdomain prefix and '/' \
                 (e.g. `example.com/MyName`)"
                    .to_owned(),
            );
            return reasons;
        }
    };
    if name.is_empty() {
        reasons.push("name part must not be empty".to_owned());
        return reasons;
    }
    if name.len() > QUALIFIED_NAME_MAX_LEN {
        reasons.push(format!("name part {}", max_len_reason(QUALIFIED_NAME_MAX_LEN)));
    }
    if !label_value_chars_ok(name) {
        reasons.push(
            "name part must consist of letters, digits, '-', '_' or '.', and must start and \
             end with a letter or digit (e.g. `MyName`, `my.name` or `123-abc`)"
                .to_owned(),
        );
    }
    reasons
}

/// Whether `value` is a valid label value: empty, or at most 63 bytes of
/// ASCII letters, digits, `-`, `_` and `.` that start and end with a letter or
/// digit.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    let mut reasons = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LEN {
        reasons.push(max_len_reason(LABEL_VALUE_MAX_LEN));
    }
    if !value.is_empty() && !label_value_chars_ok(value) {
        reasons.push(
            "must be empty or consist of letters, digits, '-', '_' or '.', and must start and \
             end with a letter or digit (e.g. `MyValue`, `my_value` or `12345`)"
                .to_owned(),
        );
    }
    join_reasons(reasons)
}

/// Every reason why `value` is not a port name (an IANA service name, RFC
/// 6335); empty when it is one.
///
/// A port name is 1 to 15 bytes of lower-case ASCII letters, digits and `-`,
/// with at least one letter, no `-` at either end and no `--`. A string of
/// digits such as `"80"` is therefore not a port name: numeric ports must be
/// emitted as integers.
pub fn validate_port_name(value: &str) -> Vec<String> {
    let mut reasons = Vec::new();
    if value.len() > PORT_NAME_MAX_LEN {
        reasons.push(max_len_reason(PORT_NAME_MAX_LEN));
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        reasons.push("must contain only lower-case letters (a-z), digits (0-9) and '-'".to_owned());
    }
    if !value.bytes().any(|b| b.is_ascii_lowercase()) {
        reasons.push("must contain at least one letter (a-z)".to_owned());
    }
    if value.contains("--") {
        reasons.push("must not contain consecutive hyphens".to_owned());
    }
    if value.starts_with('-') || value.ends_with('-') {
        reasons.push("must not begin or end with a hyphen".to_owned());
    }
    reasons
}

/// Whether `port` is a valid port number: 1 to 65535.
pub fn validate_port_number(port: i32) -> Result<(), String> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err("must be between 1 and 65535, inclusive".to_owned())
    }
}

// ---------------------------------------------------------------------------
// CIDRs

/// Parses `value` as an IPv4 or IPv6 CIDR, with the strict rules Kubernetes
/// applies under `StrictIPCIDRValidation`.
///
/// Accepted: `address/prefix-length` where the address is dotted-decimal IPv4
/// without leading zeros, or IPv6 in any RFC 4291 text form (upper or lower
/// case, `::`, a trailing dotted IPv4 part); the prefix length is decimal
/// without leading zeros and at most 32 or 128. Rejected besides: IPv4-mapped
/// IPv6 addresses (`::ffff:1.2.3.4/128`) and addresses with bits set after the
/// prefix length (`10.0.0.1/8`; the message names the intended network).
pub fn validate_cidr(value: &str) -> Result<Cidr, String> {
    let cidr = Cidr::parse(value)?;
    if cidr.has_host_bits() {
        return Err(format!(
            "must not have bits set beyond the prefix length (did you mean `{}`?)",
            cidr.canonical()
        ));
    }
    Ok(cidr)
}

// ---------------------------------------------------------------------------
// Character classes
//
// Every emitted object has a dozen names, keys and values to check, so the
// checks are single passes over the bytes (no splitting, no allocation).

const fn is_lower_alnum(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9')
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn label_chars_ok(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first) && is_lower_alnum(last) && bytes.iter().all(|&b| is_lower_alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// Labels joined by single dots, with no length limit on the parts: lower-case
/// letters, digits, `-` and `.`, where both ends and both sides of every dot
/// are letters or digits.
fn subdomain_chars_ok(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !is_lower_alnum(first) || !is_lower_alnum(last) {
        return false;
    }
    // Every object's name is checked: the union of the bytes' kinds, eight
    // lookups a step with no branch in between, rules out most names and
    // passes those without dots; only the others look at the dots'
    // neighbours (a dot is never first or last).
    let (chunks, rest) = bytes.as_chunks::<8>();
    let kinds = chunks
        .iter()
        .fold(0, |acc, chunk| chunk.iter().fold(acc, |a, &b| a | NAME_KIND[b as usize]));
    let kinds = rest.iter().fold(kinds, |a, &b| a | NAME_KIND[b as usize]);
    kinds & OTHER == 0
        && (kinds & DOT == 0
            || (1..bytes.len() - 1).all(|i| bytes[i] != b'.' || (is_lower_alnum(bytes[i - 1]) && is_lower_alnum(bytes[i + 1]))))
}

/// A lower-case letter or digit, or `-`, in [`NAME_KIND`].
const LETTER_DIGIT_OR_DASH: u8 = 0;
/// `.` in [`NAME_KIND`].
const DOT: u8 = 1;
/// Any other byte in [`NAME_KIND`].
const OTHER: u8 = 2;

/// The kind of each byte in a DNS-1123 subdomain.
static NAME_KIND: [u8; 256] = {
    let mut kinds = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        if is_lower_alnum(b as u8) || b as u8 == b'-' {
            kinds[b] = LETTER_DIGIT_OR_DASH;
        }
        b += 1;
    }
    kinds[b'.' as usize] = DOT;
    kinds
};

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn label_value_chars_ok(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Whether `value` is a qualified name, without the reasons: the common case,
/// checked before [`validate_qualified_name`] explains a failure.
fn is_qualified_name(value: &str) -> bool {
    let name = match value.as_bytes().iter().position(|&b| b == b'/') {
        None => value,
        Some(slash) => {
            let (prefix, name) = (&value[..slash], &value[slash + 1..]);
            if prefix.len() > DNS1123_SUBDOMAIN_MAX_LEN || !subdomain_chars_ok(prefix) {
                return false;
            }
            name
        }
    };
    name.len() <= QUALIFIED_NAME_MAX_LEN && label_value_chars_ok(name)
}

fn max_len_reason(max: usize) -> String {
    format!("must be no more than {max} bytes")
}

fn join_reasons(reasons: Vec<String>) -> Result<(), String> {
    if reasons.is_empty() { Ok(()) } else { Err(reasons.join("; ")) }
}

// ---------------------------------------------------------------------------
// Reporting

/// A JSON path under construction: a chain of borrowed steps, rendered
/// only when a violation names it (most objects have none).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Child(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn root(name: &'a str) -> Self {
        Path::Root(name)
    }

    fn child(&'a self, name: &'a str) -> Path<'a> {
        Path::Child(self, name)
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    fn render(&self, out: &mut String) {
        match self {
            Path::Root(name) => out.push_str(name),
            Path::Child(parent, name) => {
                parent.render(out);
                out.push('.');
                out.push_str(name);
            }
            Path::Index(parent, i) => {
                parent.render(out);
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
}

/// The violations found, and the keys and values known to be valid.
#[derive(Default)]
struct Out {
    violations: Vec<Violation>,
    /// Qualified names (label, selector and annotation keys).
    valid_keys: FxHashSet<Box<str>>,
    valid_label_values: FxHashSet<Box<str>>,
}

impl Out {
    fn push(&mut self, path: &Path, message: String) {
        let mut field = String::new();
        path.render(&mut field);
        self.violations.push(Violation { field, message });
    }

    /// A label or selector key; `field` is where a problem is reported.
    fn check_key(&mut self, key: &str, field: &Path) {
        if self.valid_keys.contains(key) {
            return;
        }
        let reasons = validate_qualified_name(key);
        if reasons.is_empty() {
            self.valid_keys.insert(key.into());
        }
        for reason in reasons {
            self.invalid(field, key, &reason);
        }
    }

    /// An annotation key: checked, as by the API server, in lower case
    /// (a valid key stays valid in lower case).
    fn check_annotation_key(&mut self, key: &str, field: &Path) {
        if self.valid_keys.contains(key) {
            return;
        }
        if is_qualified_name(key) {
            self.valid_keys.insert(key.into());
            return;
        }
        for reason in validate_qualified_name(&key.to_lowercase()) {
            self.invalid(field, key, &reason);
        }
    }

    fn check_label_value(&mut self, value: &str, field: &Path) {
        if self.valid_label_values.contains(value) {
            return;
        }
        match validate_label_value(value) {
            Ok(()) => {
                self.valid_label_values.insert(value.into());
            }
            Err(reason) => self.invalid(field, value, &reason),
        }
    }

    fn invalid(&mut self, path: &Path, value: impl fmt::Debug, reason: &str) {
        self.push(path, format!("invalid value {value:?}: {reason}"));
    }

    fn required(&mut self, path: &Path, detail: &str) {
        if detail.is_empty() {
            self.push(path, "required value".to_owned());
        } else {
            self.push(path, format!("required value: {detail}"));
        }
    }

    fn forbidden(&mut self, path: &Path, detail: &str) {
        self.push(path, format!("forbidden: {detail}"));
    }

    fn not_supported(&mut self, path: &Path, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.push(path, format!("unsupported value {value:?}: supported values: {}", list.join(", ")));
    }
}

// ---------------------------------------------------------------------------
// metadata

fn validate_object_meta(meta: &ObjectMeta, path: &Path, out: &mut Out) {
    if let Some(generate_name) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        // A generated name gets a random suffix, so a trailing '-' is fine.
        if let Err(reason) = is_dns1123_subdomain(&mask_trailing_dash(generate_name)) {
            out.invalid(&path.child("generateName"), generate_name, &reason);
        }
    }
    match meta.name.as_deref() {
        None | Some("") => out.required(&path.child("name"), "name or generateName is required"),
        Some(name) => {
            if let Err(reason) = is_dns1123_subdomain(name) {
                out.invalid(&path.child("name"), name, &reason);
            }
        }
    }
    match meta.namespace.as_deref() {
        None | Some("") => out.required(&path.child("namespace"), ""),
        Some(namespace) => {
            if let Err(reason) = is_dns1123_label(namespace) {
                out.invalid(&path.child("namespace"), namespace, &reason);
            }
        }
    }
    if let Some(generation) = meta.generation.filter(|g| *g < 0) {
        out.invalid(&path.child("generation"), generation, "must be greater than or equal to 0");
    }
    if let Some(labels) = &meta.labels {
        check_labels(labels, &path.child("labels"), out);
    }
    if let Some(annotations) = &meta.annotations {
        check_annotations(annotations, &path.child("annotations"), out);
    }
    if let Some(refs) = &meta.owner_references {
        check_owner_references(refs, &path.child("ownerReferences"), out);
    }
    if let Some(finalizers) = &meta.finalizers {
        check_finalizers(finalizers, &path.child("finalizers"), out);
    }
    if let Some(entries) = &meta.managed_fields {
        check_managed_fields(entries, &path.child("managedFields"), out);
    }
}

/// Kubernetes' `maskTrailingDash`: a trailing `-` (with the byte before it)
/// becomes `a`, so a generateName prefix may end in `-`.
fn mask_trailing_dash(name: &str) -> Cow<'_, str> {
    if name.len() > 1
        && name.ends_with('-')
        && let Some(head) = name.get(..name.len() - 2)
    {
        return Cow::Owned(format!("{head}a"));
    }
    Cow::Borrowed(name)
}

fn check_labels(labels: &BTreeMap<String, String>, path: &Path, out: &mut Out) {
    for (key, value) in labels {
        out.check_key(key, path);
        out.check_label_value(value, path);
    }
}

fn check_annotations(annotations: &BTreeMap<String, String>, path: &Path, out: &mut Out) {
    for key in annotations.keys() {
        out.check_annotation_key(key, path);
    }
    let total = annotations_size(annotations.iter().map(|(key, value)| (key.as_str(), value.as_str())));
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        out.push(
            path,
            format!("too long: annotation keys and values total {total} bytes, more than the limit of {TOTAL_ANNOTATION_SIZE_LIMIT}"),
        );
    }
}

/// The size of annotations as the API server counts it against
/// [`TOTAL_ANNOTATION_SIZE_LIMIT`]: the bytes of every key and value.
pub(crate) fn annotations_size<'s>(annotations: impl Iterator<Item = (&'s str, &'s str)>) -> usize {
    annotations.fold(0, |total: usize, (key, value)| {
        total.saturating_add(key.len()).saturating_add(value.len())
    })
}

fn check_owner_references(refs: &[OwnerReference], path: &Path, out: &mut Out) {
    let mut controller: Option<String> = None;
    for (i, r) in refs.iter().enumerate() {
        let path = path.index(i);
        // `group/version` or a bare `version`; anything else has no version.
        let version = match r.api_version.split('/').collect::<Vec<_>>().as_slice() {
            [version] | [_, version] => *version,
            _ => "",
        };
        if version.is_empty() {
            out.invalid(&path.child("apiVersion"), &r.api_version, "version must not be empty");
        }
        if r.kind.is_empty() {
            out.invalid(&path.child("kind"), &r.kind, "must not be empty");
        }
        if r.name.is_empty() {
            out.invalid(&path.child("name"), &r.name, "must not be empty");
        }
        if r.uid.is_empty() {
            out.invalid(&path.child("uid"), &r.uid, "must not be empty");
        }
        if r.api_version == "v1" && r.kind == "Event" {
            out.forbidden(&path, "a `v1` `Event` may not be an owner");
        }
        if r.controller == Some(true) {
            let this = format!("{}/{}", r.kind, r.name);
            match &controller {
                Some(first) => out.push(
                    &path.child("controller"),
                    format!("invalid value true: only one owner reference may be the controller, found `{first}` and `{this}`"),
                ),
                None => controller = Some(this),
            }
        }
    }
}

fn check_finalizers(finalizers: &[String], path: &Path, out: &mut Out) {
    for (i, finalizer) in finalizers.iter().enumerate() {
        let path = path.index(i);
        for reason in validate_qualified_name(finalizer) {
            out.invalid(&path, finalizer, &reason);
        }
        if !finalizer.contains('/') && !STANDARD_FINALIZERS.contains(&finalizer.as_str()) {
            out.invalid(&path, finalizer, "name is neither a standard finalizer name nor fully qualified");
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        out.push(
            path,
            "invalid value: finalizers `orphan` and `foregroundDeletion` cannot both be set".to_owned(),
        );
    }
}

fn check_managed_fields(entries: &[ManagedFieldsEntry], path: &Path, out: &mut Out) {
    for (i, entry) in entries.iter().enumerate() {
        let path = path.index(i);
        let operation = entry.operation.as_deref().unwrap_or("");
        if operation != "Apply" && operation != "Update" {
            out.invalid(&path.child("operation"), operation, "must be `Apply` or `Update`");
        }
        if let Some(fields_type) = entry.fields_type.as_deref()
            && !fields_type.is_empty()
            && fields_type != "FieldsV1"
        {
            out.invalid(&path.child("fieldsType"), fields_type, "must be `FieldsV1`");
        }
        let manager = entry.manager.as_deref().unwrap_or("");
        if manager.len() > MANAGED_FIELDS_MANAGER_MAX_LEN {
            out.invalid(&path.child("manager"), manager, &max_len_reason(MANAGED_FIELDS_MANAGER_MAX_LEN));
        }
        // Go's unicode.IsPrint, approximately: no control characters and no
        // whitespace other than the ASCII space.
        if let Some((at, c)) = manager
            .char_indices()
            .find(|(_, c)| c.is_control() || (c.is_whitespace() && *c != ' '))
        {
            out.invalid(&path.child("manager"), manager, &format!("invalid character {c:?} (at byte {at})"));
        }
        let subresource = entry.subresource.as_deref().unwrap_or("");
        if subresource.len() > MANAGED_FIELDS_SUBRESOURCE_MAX_LEN {
            out.invalid(
                &path.child("subresource"),
                subresource,
                &max_len_reason(MANAGED_FIELDS_SUBRESOURCE_MAX_LEN),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// spec

fn validate_spec(spec: &NetworkPolicySpec, path: &Path, out: &mut Out) {
    if let Some(selector) = &spec.pod_selector {
        check_label_selector(selector, &path.child("podSelector"), out);
    }
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let rules = path.child("ingress");
        let rule_path = rules.index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            check_port(port, &rule_path.child("ports").index(j), out);
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            check_peer(peer, &rule_path.child("from").index(j), out);
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let rules = path.child("egress");
        let rule_path = rules.index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            check_port(port, &rule_path.child("ports").index(j), out);
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            check_peer(peer, &rule_path.child("to").index(j), out);
        }
    }
    if let Some(types) = &spec.policy_types {
        check_policy_types(types, &path.child("policyTypes"), out);
    }
}

fn check_policy_types(types: &[String], path: &Path, out: &mut Out) {
    if types.len() > POLICY_TYPES.len() {
        out.invalid(path, types, "may not specify more than two policy types");
        return;
    }
    for (i, policy_type) in types.iter().enumerate() {
        if !POLICY_TYPES.contains(&policy_type.as_str()) {
            out.not_supported(&path.index(i), policy_type, &POLICY_TYPES);
        } else if types[..i].contains(policy_type) {
            // Stricter than the API server, which accepts duplicates.
            out.push(
                &path.index(i),
                format!("duplicate value {policy_type:?} (the API server accepts it, but netpolc must not emit it)"),
            );
        }
    }
}

fn check_label_selector(selector: &LabelSelector, path: &Path, out: &mut Out) {
    if let Some(labels) = &selector.match_labels {
        check_labels(labels, &path.child("matchLabels"), out);
    }
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        check_requirement(requirement, &path.child("matchExpressions").index(i), out);
    }
}

fn check_requirement(req: &LabelSelectorRequirement, path: &Path, out: &mut Out) {
    let values = req.values.as_deref().unwrap_or(&[]);
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                out.required(&path.child("values"), "must be specified when `operator` is `In` or `NotIn`");
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                out.forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is `Exists` or `DoesNotExist`",
                );
            }
        }
        other => out.not_supported(&path.child("operator"), other, &SELECTOR_OPERATORS),
    }
    out.check_key(&req.key, &path.child("key"));
    for (i, value) in values.iter().enumerate() {
        out.check_label_value(value, &path.child("values").index(i));
    }
}

fn check_port(port: &NetworkPolicyPort, path: &Path, out: &mut Out) {
    if let Some(protocol) = &port.protocol
        && !PROTOCOLS.contains(&protocol.as_str())
    {
        out.not_supported(&path.child("protocol"), protocol, &PROTOCOLS);
    }
    let end_path = path.child("endPort");
    match &port.port {
        Some(IntOrString::Int(number)) => {
            if let Err(reason) = validate_port_number(*number) {
                out.invalid(&path.child("port"), number, &reason);
            }
            if let Some(end) = port.end_port {
                if end < *number {
                    out.invalid(&end_path, end, "must be greater than or equal to `port`");
                }
                if let Err(reason) = validate_port_number(end) {
                    out.invalid(&end_path, end, &reason);
                }
            }
        }
        Some(IntOrString::String(name)) => {
            for reason in validate_port_name(name) {
                out.invalid(&path.child("port"), name, &reason);
            }
            if let Some(end) = port.end_port {
                out.invalid(&end_path, end, "may not be specified when `port` is non-numeric");
            }
        }
        None => {
            if let Some(end) = port.end_port {
                out.invalid(&end_path, end, "may not be specified when `port` is not specified");
            }
        }
    }
}

fn check_peer(peer: &NetworkPolicyPeer, path: &Path, out: &mut Out) {
    let mut kinds = 0;
    if let Some(selector) = &peer.pod_selector {
        kinds += 1;
        check_label_selector(selector, &path.child("podSelector"), out);
    }
    if let Some(selector) = &peer.namespace_selector {
        kinds += 1;
        check_label_selector(selector, &path.child("namespaceSelector"), out);
    }
    if let Some(block) = &peer.ip_block {
        kinds += 1;
        check_ip_block(block, &path.child("ipBlock"), out);
    }
    if kinds == 0 {
        out.required(path, "must specify a peer: `podSelector`, `namespaceSelector` or `ipBlock`");
    } else if kinds > 1 && peer.ip_block.is_some() {
        out.forbidden(path, "may not specify both `ipBlock` and another peer");
    }
}

fn check_ip_block(block: &IPBlock, path: &Path, out: &mut Out) {
    let cidr_path = path.child("cidr");
    if block.cidr.is_empty() {
        out.required(&cidr_path, "");
        return;
    }
    let outer = match validate_cidr(&block.cidr) {
        Ok(cidr) => cidr,
        Err(reason) => {
            out.invalid(&cidr_path, &block.cidr, &reason);
            return;
        }
    };
    for (i, text) in block.except.iter().flatten().enumerate() {
        let excepts = path.child("except");
        let except_path = excepts.index(i);
        match validate_cidr(text) {
            Err(reason) => out.invalid(&except_path, text, &reason),
            Ok(inner) if inner.is_ipv4() != outer.is_ipv4() => {
                out.invalid(&except_path, text, "must be of the same IP family as `cidr`");
            }
            Ok(inner) if !outer.strictly_contains(inner) => {
                out.invalid(&except_path, text, "must be a strict subset of `cidr`");
            }
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // -- helpers ------------------------------------------------------------

    /// A NetworkPolicy from YAML; `spec_body` is the spec, unindented.
    fn with_spec(spec_body: &str) -> NetworkPolicy {
        let spec: String = spec_body.lines().map(|line| format!("  {line}\n")).collect();
        parse(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: web\n  namespace: prod\nspec:\n{spec}"
        ))
    }

    /// A NetworkPolicy from YAML; `meta_body` is the metadata, unindented.
    fn with_meta(meta_body: &str) -> NetworkPolicy {
        let meta: String = meta_body.lines().map(|line| format!("  {line}\n")).collect();
        parse(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n{meta}spec:\n  podSelector: {{}}\n"
        ))
    }

    fn parse(yaml: &str) -> NetworkPolicy {
        match serde_saphyr::from_str::<NetworkPolicy>(yaml) {
            Ok(np) => np,
            Err(e) => panic!("test YAML does not parse: {e}\n{yaml}"),
        }
    }

    #[track_caller]
    fn assert_valid(np: &NetworkPolicy) {
        let violations = validate_network_policy(np);
        assert!(violations.is_empty(), "expected no violations, got {violations:#?}");
    }

    /// Exactly one violation, at `field`; returns its message.
    #[track_caller]
    fn assert_one(np: &NetworkPolicy, field: &str) -> String {
        let violations = validate_network_policy(np);
        assert_eq!(
            violations.len(),
            1,
            "expected exactly one violation at {field}, got {violations:#?}"
        );
        assert_eq!(violations[0].field, field, "{violations:#?}");
        violations[0].message.clone()
    }

    #[track_caller]
    fn spec_ok(body: &str) {
        assert_valid(&with_spec(body));
    }

    #[track_caller]
    fn spec_bad(body: &str, field: &str) -> String {
        assert_one(&with_spec(body), field)
    }

    #[track_caller]
    fn meta_ok(body: &str) {
        assert_valid(&with_meta(body));
    }

    #[track_caller]
    fn meta_bad(body: &str, field: &str) -> String {
        assert_one(&with_meta(body), field)
    }

    // -- a realistic object ------------------------------------------------

    #[test]
    fn full_policy_is_valid() {
        let np = parse(
            r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api.allow-from-web
  namespace: shop-prod
  labels:
    app.kubernetes.io/managed-by: netpolc
    tier: ""
  annotations:
    netpolc.dev/source: "shop.np:12"
    Example.COM/Upper: "annotation prefixes are case-insensitive"
spec:
  podSelector:
    matchLabels:
      app: api
    matchExpressions:
      - key: track
        operator: NotIn
        values: [canary]
      - key: example.com/legacy
        operator: DoesNotExist
  policyTypes: [Ingress, Egress]
  ingress:
    - {}
    - from:
        - podSelector: {matchLabels: {app: web}}
          namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop-prod}}
        - ipBlock:
            cidr: 10.0.0.0/8
            except: [10.1.0.0/16, 10.2.3.4/32]
        - ipBlock:
            cidr: 2001:db8::/32
            except: ["2001:db8:1::/48"]
      ports:
        - port: 8080
        - protocol: UDP
          port: 9000
          endPort: 9100
        - protocol: SCTP
          port: http-alt
        - protocol: TCP
  egress:
    - to:
        - namespaceSelector: {}
      ports:
        - {protocol: UDP, port: 53}
        - {protocol: TCP, port: 53}
"#,
        );
        assert_valid(&np);
    }

    #[test]
    fn missing_spec_and_empty_spec_are_valid() {
        assert_valid(&parse(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a, namespace: b}\n",
        ));
        spec_ok("{}");
    }

    #[test]
    fn violations_are_collected_and_display_with_their_field() {
        let np = with_spec("podSelector: {}\npolicyTypes: [Inbound]\ningress:\n  - ports: [{port: 0}]");
        let violations = validate_network_policy(&np);
        let shown: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "spec.ingress[0].ports[0].port: invalid value 0: must be between 1 and 65535, inclusive",
                "spec.policyTypes[0]: unsupported value \"Inbound\": supported values: \"Ingress\", \"Egress\"",
            ]
        );
    }

    // -- metadata -----------------------------------------------------------

    #[test]
    fn name_is_required() {
        meta_ok("name: web\nnamespace: prod");
        meta_bad("namespace: prod", "metadata.name");
        meta_bad("name: ''\nnamespace: prod", "metadata.name");
    }

    #[test]
    fn name_is_a_dns1123_subdomain() {
        meta_ok("name: a.b-c.1\nnamespace: prod");
        meta_ok(&format!("name: {}\nnamespace: prod", "a".repeat(253)));
        meta_bad("name: Web\nnamespace: prod", "metadata.name");
        meta_bad("name: web_1\nnamespace: prod", "metadata.name");
        meta_bad("name: -web\nnamespace: prod", "metadata.name");
        meta_bad("name: web.\nnamespace: prod", "metadata.name");
        meta_bad("name: a..b\nnamespace: prod", "metadata.name");
        meta_bad(&format!("name: {}\nnamespace: prod", "a".repeat(254)), "metadata.name");
    }

    #[test]
    fn namespace_is_required() {
        meta_bad("name: web", "metadata.namespace");
        meta_bad("name: web\nnamespace: ''", "metadata.namespace");
    }

    #[test]
    fn namespace_is_a_dns1123_label() {
        meta_ok(&format!("name: web\nnamespace: {}", "n".repeat(63)));
        let message = meta_bad("name: web\nnamespace: team.prod", "metadata.namespace");
        assert!(message.contains("must not contain dots"), "{message}");
        meta_bad("name: web\nnamespace: Prod", "metadata.namespace");
        meta_bad(&format!("name: web\nnamespace: {}", "n".repeat(64)), "metadata.namespace");
    }

    #[test]
    fn generate_name_is_a_subdomain_prefix() {
        meta_ok("name: web-x7k2p\ngenerateName: web-\nnamespace: prod");
        meta_bad("name: web\ngenerateName: Web-\nnamespace: prod", "metadata.generateName");
    }

    #[test]
    fn generation_is_not_negative() {
        meta_ok("name: web\nnamespace: prod\ngeneration: 0");
        meta_bad("name: web\nnamespace: prod\ngeneration: -1", "metadata.generation");
    }

    #[test]
    fn label_keys_are_qualified_names() {
        meta_ok("name: web\nnamespace: prod\nlabels: {example.com/My_App.v2: x, Tier: y}");
        meta_bad("name: web\nnamespace: prod\nlabels: {Example.com/app: x}", "metadata.labels");
        meta_bad("name: web\nnamespace: prod\nlabels: {/app: x}", "metadata.labels");
        meta_bad("name: web\nnamespace: prod\nlabels: {a/b/c: x}", "metadata.labels");
        meta_bad("name: web\nnamespace: prod\nlabels: {_app: x}", "metadata.labels");
        meta_bad("name: web\nnamespace: prod\nlabels: {'example.com/': x}", "metadata.labels");
        let long = "k".repeat(64);
        meta_bad(&format!("name: web\nnamespace: prod\nlabels: {{{long}: x}}"), "metadata.labels");
    }

    #[test]
    fn label_values_are_valid() {
        meta_ok("name: web\nnamespace: prod\nlabels: {a: '', b: My_Value.1}");
        meta_bad("name: web\nnamespace: prod\nlabels: {a: 'x y'}", "metadata.labels");
        meta_bad("name: web\nnamespace: prod\nlabels: {a: -x}", "metadata.labels");
        let long = "v".repeat(64);
        meta_bad(&format!("name: web\nnamespace: prod\nlabels: {{a: {long}}}"), "metadata.labels");
    }

    #[test]
    fn annotation_keys_are_qualified_names_ignoring_case() {
        meta_ok("name: web\nnamespace: prod\nannotations: {Example.COM/Note: 'free text: any value'}");
        meta_bad("name: web\nnamespace: prod\nannotations: {'bad key': x}", "metadata.annotations");
        meta_bad(
            "name: web\nnamespace: prod\nannotations: {ex_ample.com/a: x}",
            "metadata.annotations",
        );
    }

    #[test]
    fn annotations_total_at_most_256_kib() {
        let mut np = with_meta("name: web\nnamespace: prod");
        let mut annotations = BTreeMap::new();
        // "a" + value = exactly the limit.
        annotations.insert("a".to_owned(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT - 1));
        np.metadata.annotations = Some(annotations.clone());
        assert_valid(&np);
        annotations.insert("b".to_owned(), String::new());
        np.metadata.annotations = Some(annotations);
        assert_one(&np, "metadata.annotations");
    }

    #[test]
    fn owner_references_are_complete() {
        let good = "name: web\nnamespace: prod\nownerReferences:\n  - {apiVersion: apps/v1, kind: Deployment, name: web, uid: u1, controller: true}";
        meta_ok(good);
        meta_bad(
            "name: web\nnamespace: prod\nownerReferences:\n  - {apiVersion: apps/, kind: Deployment, name: web, uid: u1}",
            "metadata.ownerReferences[0].apiVersion",
        );
        meta_bad(
            "name: web\nnamespace: prod\nownerReferences:\n  - {apiVersion: v1, kind: '', name: web, uid: u1}",
            "metadata.ownerReferences[0].kind",
        );
        meta_bad(
            "name: web\nnamespace: prod\nownerReferences:\n  - {apiVersion: v1, kind: Event, name: e, uid: u1}",
            "metadata.ownerReferences[0]",
        );
        meta_bad(
            &format!("{good}\n  - {{apiVersion: v1, kind: ConfigMap, name: c, uid: u2, controller: true}}"),
            "metadata.ownerReferences[1].controller",
        );
    }

    #[test]
    fn finalizers_are_qualified_or_standard() {
        meta_ok("name: web\nnamespace: prod\nfinalizers: [example.com/cleanup, orphan]");
        meta_bad("name: web\nnamespace: prod\nfinalizers: [cleanup]", "metadata.finalizers[0]");
        meta_bad(
            "name: web\nnamespace: prod\nfinalizers: [orphan, foregroundDeletion]",
            "metadata.finalizers",
        );
    }

    #[test]
    fn managed_fields_entries_are_valid() {
        meta_ok("name: web\nnamespace: prod\nmanagedFields:\n  - {manager: netpolc, operation: Apply, fieldsType: FieldsV1}");
        meta_bad(
            "name: web\nnamespace: prod\nmanagedFields:\n  - {manager: netpolc, operation: Create}",
            "metadata.managedFields[0].operation",
        );
        meta_bad(
            "name: web\nnamespace: prod\nmanagedFields:\n  - {manager: \"net\\tpolc\", operation: Update}",
            "metadata.managedFields[0].manager",
        );
    }

    // -- selectors ----------------------------------------------------------

    #[test]
    fn match_labels_keys_and_values_are_valid() {
        spec_ok("podSelector: {matchLabels: {app.kubernetes.io/name: web, empty: ''}}");
        spec_bad("podSelector: {matchLabels: {Bad.Prefix/app: web}}", "spec.podSelector.matchLabels");
        spec_bad("podSelector: {matchLabels: {app: 'web!'}}", "spec.podSelector.matchLabels");
    }

    #[test]
    fn in_and_not_in_need_values() {
        spec_ok("podSelector: {matchExpressions: [{key: app, operator: In, values: [a, b]}]}");
        spec_bad(
            "podSelector: {matchExpressions: [{key: app, operator: In}]}",
            "spec.podSelector.matchExpressions[0].values",
        );
        spec_bad(
            "podSelector: {matchExpressions: [{key: app, operator: NotIn, values: []}]}",
            "spec.podSelector.matchExpressions[0].values",
        );
    }

    #[test]
    fn exists_and_does_not_exist_forbid_values() {
        spec_ok("podSelector: {matchExpressions: [{key: app, operator: Exists}, {key: b, operator: DoesNotExist, values: []}]}");
        spec_bad(
            "podSelector: {matchExpressions: [{key: app, operator: Exists, values: [x]}]}",
            "spec.podSelector.matchExpressions[0].values",
        );
        spec_bad(
            "podSelector: {matchExpressions: [{key: a, operator: Exists}, {key: app, operator: DoesNotExist, values: [x]}]}",
            "spec.podSelector.matchExpressions[1].values",
        );
    }

    #[test]
    fn unknown_operators_are_invalid() {
        spec_bad(
            "podSelector: {matchExpressions: [{key: app, operator: in, values: [x]}]}",
            "spec.podSelector.matchExpressions[0].operator",
        );
        spec_bad(
            "podSelector: {matchExpressions: [{key: app, operator: Gt, values: ['1']}]}",
            "spec.podSelector.matchExpressions[0].operator",
        );
    }

    #[test]
    fn expression_keys_and_values_are_valid() {
        spec_bad(
            "podSelector: {matchExpressions: [{key: 'bad key', operator: Exists}]}",
            "spec.podSelector.matchExpressions[0].key",
        );
        spec_bad(
            "podSelector: {matchExpressions: [{key: app, operator: In, values: [ok, 'not ok']}]}",
            "spec.podSelector.matchExpressions[0].values[1]",
        );
    }

    #[test]
    fn peer_selectors_are_validated() {
        spec_bad(
            "ingress:\n  - from:\n      - namespaceSelector: {matchLabels: {'a b': x}}",
            "spec.ingress[0].from[0].namespaceSelector.matchLabels",
        );
        spec_bad(
            "egress:\n  - to:\n      - podSelector: {matchExpressions: [{key: a, operator: In}]}",
            "spec.egress[0].to[0].podSelector.matchExpressions[0].values",
        );
    }

    #[test]
    fn validate_label_selector_is_public() {
        let selector = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".to_owned(),
                operator: "Exists".to_owned(),
                values: Some(vec!["x".to_owned()]),
            }]),
            ..LabelSelector::default()
        };
        let violations = validate_label_selector(&selector, "sel");
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "sel.matchExpressions[0].values");
        assert!(validate_label_selector(&LabelSelector::default(), "sel").is_empty());
    }

    // -- peers --------------------------------------------------------------

    #[test]
    fn a_peer_needs_a_selector_or_ip_block() {
        spec_ok("ingress:\n  - from: [{podSelector: {}}, {namespaceSelector: {}}, {ipBlock: {cidr: 0.0.0.0/0}}]");
        spec_bad("ingress:\n  - from: [{podSelector: {}}, {}]", "spec.ingress[0].from[1]");
        spec_bad("egress:\n  - to: [{}]", "spec.egress[0].to[0]");
    }

    #[test]
    fn ip_block_stands_alone() {
        spec_ok("ingress:\n  - from: [{podSelector: {}, namespaceSelector: {}}]");
        spec_bad(
            "ingress:\n  - from: [{podSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]",
            "spec.ingress[0].from[0]",
        );
        spec_bad(
            "egress:\n  - to: [{namespaceSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]",
            "spec.egress[0].to[0]",
        );
    }

    #[test]
    fn ip_block_cidr_is_required_and_valid() {
        spec_ok("egress:\n  - to: [{ipBlock: {cidr: '::/0'}}, {ipBlock: {cidr: 192.168.1.7/32}}]");
        spec_bad("egress:\n  - to: [{ipBlock: {cidr: ''}}]", "spec.egress[0].to[0].ipBlock.cidr");
        spec_bad(
            "egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0}}]",
            "spec.egress[0].to[0].ipBlock.cidr",
        );
        spec_bad(
            "egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/33}}]",
            "spec.egress[0].to[0].ipBlock.cidr",
        );
        spec_bad(
            "egress:\n  - to: [{ipBlock: {cidr: 10.0.0.1/8}}]",
            "spec.egress[0].to[0].ipBlock.cidr",
        );
        spec_bad(
            "egress:\n  - to: [{ipBlock: {cidr: 010.0.0.0/8}}]",
            "spec.egress[0].to[0].ipBlock.cidr",
        );
    }

    #[test]
    fn except_entries_are_valid_cidrs() {
        spec_bad(
            "egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2.0.0/x]}}]",
            "spec.egress[0].to[0].ipBlock.except[1]",
        );
    }

    #[test]
    fn except_entries_are_of_the_same_family() {
        let message = spec_bad(
            "egress:\n  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: ['::/64']}}]",
            "spec.egress[0].to[0].ipBlock.except[0]",
        );
        assert!(message.contains("same IP family"), "{message}");
    }

    #[test]
    fn except_entries_are_strictly_inside_the_cidr() {
        spec_ok("ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.255.255.255/32, 10.128.0.0/9]}}]");
        // outside
        spec_bad(
            "ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]",
            "spec.ingress[0].from[0].ipBlock.except[0]",
        );
        // equal: contained but not strictly
        spec_bad(
            "ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]",
            "spec.ingress[0].from[0].ipBlock.except[0]",
        );
        // wider
        spec_bad(
            "ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [0.0.0.0/0]}}]",
            "spec.ingress[0].from[0].ipBlock.except[0]",
        );
        spec_bad(
            "ingress:\n  - from: [{ipBlock: {cidr: '2001:db8::/32', except: ['2001:db9::/48']}}]",
            "spec.ingress[0].from[0].ipBlock.except[0]",
        );
    }

    // -- ports --------------------------------------------------------------

    #[test]
    fn protocol_is_tcp_udp_or_sctp() {
        spec_ok("ingress:\n  - ports: [{protocol: TCP}, {protocol: UDP}, {protocol: SCTP}, {port: 1}]");
        spec_bad("ingress:\n  - ports: [{protocol: tcp}]", "spec.ingress[0].ports[0].protocol");
        spec_bad("egress:\n  - ports: [{protocol: ICMP}]", "spec.egress[0].ports[0].protocol");
        spec_bad("egress:\n  - ports: [{protocol: ''}]", "spec.egress[0].ports[0].protocol");
    }

    #[test]
    fn numeric_ports_are_between_1_and_65535() {
        spec_ok("ingress:\n  - ports: [{port: 1}, {port: 65535}]");
        spec_bad("ingress:\n  - ports: [{port: 0}]", "spec.ingress[0].ports[0].port");
        spec_bad("ingress:\n  - ports: [{port: 65536}]", "spec.ingress[0].ports[0].port");
        spec_bad("egress:\n  - ports: [{port: -80}]", "spec.egress[0].ports[0].port");
    }

    #[test]
    fn named_ports_are_iana_service_names() {
        spec_ok("ingress:\n  - ports: [{port: http}, {port: h2c-8080}, {port: abcdefghijklmno}]");
        spec_bad("ingress:\n  - ports: [{port: Http}]", "spec.ingress[0].ports[0].port");
        spec_bad("ingress:\n  - ports: [{port: abcdefghijklmnop}]", "spec.ingress[0].ports[0].port");
        spec_bad("ingress:\n  - ports: [{port: 'web--ui'}]", "spec.ingress[0].ports[0].port");
        spec_bad("ingress:\n  - ports: [{port: '-web'}]", "spec.ingress[0].ports[0].port");
        // A quoted number is a string, and a port name needs a letter.
        let message = spec_bad("ingress:\n  - ports: [{port: '80'}]", "spec.ingress[0].ports[0].port");
        assert!(message.contains("at least one letter"), "{message}");
    }

    #[test]
    fn end_port_needs_a_numeric_port() {
        spec_ok("ingress:\n  - ports: [{port: 8000, endPort: 8000}, {port: 1, endPort: 65535}]");
        spec_bad("ingress:\n  - ports: [{endPort: 90}]", "spec.ingress[0].ports[0].endPort");
        spec_bad(
            "ingress:\n  - ports: [{port: http, endPort: 90}]",
            "spec.ingress[0].ports[0].endPort",
        );
    }

    #[test]
    fn end_port_is_at_least_port() {
        let message = spec_bad(
            "egress:\n  - ports: [{port: 9000, endPort: 8999}]",
            "spec.egress[0].ports[0].endPort",
        );
        assert!(message.contains("`port`"), "{message}");
    }

    #[test]
    fn end_port_is_at_most_65535() {
        spec_bad(
            "egress:\n  - ports: [{port: 9000, endPort: 65536}]",
            "spec.egress[0].ports[0].endPort",
        );
    }

    // -- policyTypes --------------------------------------------------------

    #[test]
    fn policy_types_are_ingress_or_egress() {
        spec_ok("policyTypes: [Egress]");
        spec_ok("policyTypes: []");
        spec_bad("policyTypes: [Ingress, egress]", "spec.policyTypes[1]");
    }

    #[test]
    fn at_most_two_policy_types() {
        spec_bad("policyTypes: [Ingress, Egress, Ingress]", "spec.policyTypes");
    }

    #[test]
    fn policy_types_do_not_repeat() {
        spec_bad("policyTypes: [Egress, Egress]", "spec.policyTypes[1]");
    }

    // -- helpers ------------------------------------------------------------

    #[test]
    fn dns1123_labels() {
        for ok in ["a", "0", "a-b", "123-abc", &"x".repeat(63)] {
            assert_eq!(is_dns1123_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", "ä", &"x".repeat(64)] {
            assert!(is_dns1123_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns1123_subdomains() {
        let long_part = "x".repeat(100);
        for ok in ["a", "a.b", "example.com", "1.2.3", "a--b.c-d", "web-to-db.x9", long_part.as_str()] {
            assert_eq!(is_dns1123_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a.-b",
            "a-.b",
            "-a",
            "a-",
            "a.b.",
            "a b",
            "a/b",
            "é.a",
            "Example.com",
            "a_b.com",
            &"x".repeat(254),
        ] {
            assert!(is_dns1123_subdomain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdomains_are_dot_separated_labels() {
        // Every string of up to five bytes over letters, digits, `-`, `.` and
        // two bytes that are never allowed, against the definition itself.
        let label = |part: &str| {
            let b = part.as_bytes();
            !b.is_empty() && is_lower_alnum(b[0]) && is_lower_alnum(b[b.len() - 1]) && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        };
        let mut strings = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = strings
                .iter()
                .flat_map(|s| ["a", "0", "-", ".", "A", "_"].map(|c| format!("{s}{c}")))
                .collect();
            strings.extend(longer);
            strings.sort();
            strings.dedup();
        }
        assert!(strings.len() > 9000);
        for s in &strings {
            assert_eq!(subdomain_chars_ok(s), s.split('.').all(label), "{s:?}");
        }
    }

    #[test]
    fn qualified_names() {
        for ok in ["a", "A", "a.b_c-D", "example.com/Name", "k8s.io/a", &"x".repeat(63)] {
            assert!(validate_qualified_name(ok).is_empty(), "{ok}: {:?}", validate_qualified_name(ok));
        }
        let long_prefix = format!("{}/a", "p".repeat(254));
        for bad in [
            "",
            "/a",
            "a/",
            "a/b/c",
            "-a",
            "a.",
            "a b",
            "Ex.com/a",
            &"x".repeat(64),
            long_prefix.as_str(),
        ] {
            assert!(!validate_qualified_name(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "A-b_c.d", &"x".repeat(63)] {
            assert_eq!(validate_label_value(ok), Ok(()), "{ok}");
        }
        for bad in ["-a", "a-", ".", "a b", "a/b", &"x".repeat(64)] {
            assert!(validate_label_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_names() {
        for ok in ["http", "h2", "a-b-c", "9p", "abcdefghijklmno"] {
            assert!(validate_port_name(ok).is_empty(), "{ok}");
        }
        for bad in ["", "80", "Http", "a_b", "-a", "a-", "a--b", "abcdefghijklmnop"] {
            assert!(!validate_port_name(bad).is_empty(), "{bad}");
        }
        assert_eq!(validate_port_name("--").len(), 3);
    }

    #[test]
    fn port_numbers() {
        assert!(validate_port_number(1).is_ok());
        assert!(validate_port_number(65535).is_ok());
        assert!(validate_port_number(0).is_err());
        assert!(validate_port_number(65536).is_err());
        assert!(validate_port_number(i32::MIN).is_err());
    }

    #[test]
    fn cidrs_are_strict() {
        let leading = validate_cidr("010.0.0.0/8");
        assert!(matches!(&leading, Err(m) if m.contains("leading zeros")), "{leading:?}");
        let prefix = validate_cidr("10.0.0.0/08");
        assert!(matches!(&prefix, Err(m) if m.contains("without leading zeros")), "{prefix:?}");
        let mapped = validate_cidr("::ffff:10.0.0.0/104");
        assert!(matches!(&mapped, Err(m) if m.contains("IPv4-mapped")), "{mapped:?}");
        let host = validate_cidr("10.1.2.3/8");
        assert!(matches!(&host, Err(m) if m.contains("`10.0.0.0/8`")), "{host:?}");
        let host6 = validate_cidr("2001:db8::1/64");
        assert!(matches!(&host6, Err(m) if m.contains("`2001:db8::/64`")), "{host6:?}");
    }
}
