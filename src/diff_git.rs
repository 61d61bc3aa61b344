//! The old side of `netpolc diff --git REV`: the given paths as they are in
//! a git revision, extracted into a scratch folder with `git archive`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Extracts `paths` at `rev` into a new scratch folder. Returns the folder
/// (for the caller to remove) and where each path landed in it.
pub fn checkout(rev: &str, paths: &[PathBuf]) -> Result<(PathBuf, Vec<PathBuf>), String> {
    let prefix = git(&["rev-parse", "--show-prefix"])?.trim().to_string();
    git(&["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")]).map_err(|_| format!("`{rev}` is not a git revision here"))?;
    let dir = std::env::temp_dir().join(format!("netpolc-diff-{}-{}", std::process::id(), sanitize(rev)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let mut archive = Command::new("git");
    archive.arg("archive").arg("--format=tar").arg(rev).arg("--");
    for p in paths {
        archive.arg(p);
    }
    let output = archive
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!("git archive failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&dir)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if let Some(stdin) = tar.stdin.as_mut() {
        use std::io::Write as _;
        stdin.write_all(&output.stdout).map_err(|e| format!("cannot extract: {e}"))?;
    }
    let status = tar.wait().map_err(|e| format!("cannot extract: {e}"))?;
    if !status.success() {
        return Err("tar failed to extract the revision".into());
    }
    let old = paths.iter().map(|p| dir.join(&prefix).join(strip_dot(p))).collect();
    Ok((dir, old))
}

fn strip_dot(p: &Path) -> PathBuf {
    p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

fn sanitize(rev: &str) -> String {
    rev.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

fn git(args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
