//! The control plane's programs, built from the pinned Go module in `tests/cluster/` and cached.
//!
//! `go build` relinks every time, which costs tens of seconds for kube-apiserver, so the binaries are kept
//! under the Cargo target directory beside a stamp of what they were built from (go.mod, go.sum and the Go
//! version). A matching stamp skips the build; concurrent test binaries take a file lock so only one builds.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs the harness runs, by file name in the build directory, with the package each comes from.
const PROGRAMS: &[(&str, &str)] = &[
    ("etcd", "go.etcd.io/etcd/server/v3"),
    ("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
    ("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"),
    ("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
];

/// Where the built programs are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
}

impl Binaries {
    pub fn path(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }

    /// Builds the programs unless the cached ones were built from the same module and Go version.
    pub fn ensure() -> io::Result<Binaries> {
        let module = repo_root().join("tests/cluster");
        let dir = target_dir().join("control-plane/bin");
        fs::create_dir_all(&dir)?;
        let lock = File::create(dir.join(".lock"))?;
        lock.lock()?;
        let stamp = stamp(&module)?;
        let stamp_path = dir.join(".stamp");
        let current = fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str())
            && PROGRAMS.iter().all(|(name, _)| dir.join(name).is_file());
        if !current {
            let _ = fs::remove_file(&stamp_path);
            for (name, package) in PROGRAMS {
                eprintln!("control plane: building {name} from {package} (cached afterwards)");
                let status = Command::new("go")
                    .current_dir(&module)
                    .args(["build", "-ldflags", &version_ldflags(&module)?, "-o"])
                    .arg(dir.join(name))
                    .arg(package)
                    .status()
                    .map_err(|e| io::Error::other(format!("running `go build` for {name}: {e} (is Go installed?)")))?;
                if !status.success() {
                    return Err(io::Error::other(format!("`go build {package}` failed in {}", module.display())));
                }
            }
            fs::write(&stamp_path, &stamp)?;
        }
        lock.unlock()?;
        Ok(Binaries { dir })
    }
}

/// `go build` of a module dependency leaves the version variables at `v0.0.0-master`; the release's own
/// build (hack/lib/version.sh) stamps them, and `/version` and the components' logs should say the truth.
fn version_ldflags(module: &Path) -> io::Result<String> {
    let go_mod = fs::read_to_string(module.join("go.mod"))?;
    let version = go_mod
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("k8s.io/kubernetes "))
        .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
        .ok_or_else(|| io::Error::other("tests/cluster/go.mod does not require k8s.io/kubernetes"))?;
    let (major, minor) = {
        let mut parts = version.trim_start_matches('v').split('.');
        (parts.next().unwrap_or("1").to_string(), parts.next().unwrap_or("0").to_string())
    };
    let mut flags = String::new();
    for pkg in ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"] {
        flags.push_str(&format!(
            "-X {pkg}.gitVersion={version} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor} \
             -X {pkg}.gitTreeState=clean "
        ));
    }
    Ok(flags)
}

/// The inputs of the build, as one text: a change to any of them invalidates the cache.
fn stamp(module: &Path) -> io::Result<String> {
    let go = Command::new("go")
        .arg("version")
        .output()
        .map_err(|e| io::Error::other(format!("running `go version`: {e} (is Go installed?)")))?;
    let mut s = String::from_utf8_lossy(&go.stdout).into_owned();
    s.push_str(&version_ldflags(module)?);
    for file in ["go.mod", "go.sum"] {
        s.push_str(&fs::read_to_string(module.join(file))?);
    }
    Ok(s)
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() { d } else { repo_root().join(d) }
        }
        None => repo_root().join("target"),
    }
}
