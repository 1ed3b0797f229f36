//! A real `cairn serve` process for one test: started under a file limit or on a small filesystem when asked,
//! stopped with SIGTERM by the test (killed if the test panics first), its RSS read from `/proc`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "hostile-admin-token-0123456789";

/// How a server is started.
#[derive(Default)]
pub struct Launch {
    /// `ulimit -n` for the server.
    pub files: Option<u64>,
    /// The data directory on a tmpfs of this many bytes (in a mount namespace of its own).
    pub disk: Option<u64>,
    /// More `cairn serve` arguments.
    pub args: Vec<String>,
}

pub struct Server {
    shell: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// Where the data directory is (or, for a tmpfs, where it is copied once the server stops).
    data: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(launch: Launch) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        let copy = dir.path().join("copy");
        std::fs::create_dir_all(&data).expect("the data directory");
        std::fs::create_dir_all(&copy).expect("the copy's directory");
        let stderr = dir.path().join("stderr");
        // The shell stays the server's parent: after the server stops it copies a tmpfs's data directory out of
        // the mount namespace, which goes away with it.
        let mut script = String::from("set -u\n");
        if let Some(files) = launch.files {
            script.push_str(&format!("ulimit -n {files} || exit 90\n"));
        }
        if let Some(bytes) = launch.disk {
            script.push_str(&format!(
                "mount -t tmpfs -o size={bytes} cairn-test \"$1\" || exit 91\n"
            ));
        }
        script.push_str(
            "\"$3\" serve --data \"$1\" --listen 127.0.0.1:0 --token \"$4\" --durability normal \"${@:5}\" &\n",
        );
        script.push_str("echo \"serve-pid $!\"\nwait $!\nstatus=$?\n");
        if launch.disk.is_some() {
            script.push_str("cp -a \"$1\"/. \"$2\"/\n");
        }
        script.push_str("exit $status\n");
        let mut command = match launch.disk {
            Some(_) => {
                let mut c = Command::new("unshare");
                // As root a mount namespace is enough; otherwise a user namespace maps us to root in it.
                if !is_root() {
                    c.args(["--user", "--map-root-user"]);
                }
                c.args(["--mount", "--propagation", "private", "bash"]);
                c
            }
            None => Command::new("bash"),
        };
        command
            .arg("-c")
            .arg(script)
            .arg("cairn-serve")
            .arg(&data)
            .arg(&copy)
            .arg(env!("CARGO_BIN_EXE_cairn"))
            .arg(ADMIN)
            .args(&launch.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("the stderr file"));
        let mut shell = command.spawn().expect("bash starts");
        let stdout = shell.stdout.take().expect("piped stdout");
        let (lines, read) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut pid, mut addr) = (None, None);
        while pid.is_none() || addr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = read.recv_timeout(left) else {
                let _ = shell.kill();
                let err = std::fs::read_to_string(&stderr).unwrap_or_default();
                panic!("the server did not start within 30 s; stderr:\n{err}");
            };
            if let Some(p) = line.strip_prefix("serve-pid ") {
                pid = p.trim().parse().ok();
            } else if let Some(rest) = line.strip_prefix("cairn serving http://") {
                addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            }
        }
        let data = if launch.disk.is_some() { copy } else { data };
        Server {
            shell,
            pid: pid.expect("the server's pid"),
            addr: addr.expect("the server's address"),
            data,
            stderr,
            _dir: dir,
        }
    }

    /// The server's resident memory, in MiB.
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    }

    /// What the server logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Stops the server with SIGTERM (as an operator would) and checks what it leaves: it stopped cleanly,
    /// logged no ERROR line, and its log verifies and replays to the same tables.
    pub fn stop_and_check(mut self) {
        // SAFETY: kill(2) with a pid this test started and SIGTERM; nothing is dereferenced.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(status) = self.shell.try_wait().expect("wait for the server") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop within 40 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = self.stderr();
        assert!(status.success(), "the server exited with {status}; stderr:\n{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).take(5).collect();
        assert!(errors.is_empty(), "the server logged errors:\n{}", errors.join("\n"));
        check_log(&self.data);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.shell.try_wait().ok().flatten().is_none() {
            // SAFETY: as in stop_and_check; a test that panicked still stops its server.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGKILL);
            }
            let _ = self.shell.kill();
            let _ = self.shell.wait();
        }
    }
}

/// `cairn verify` and `cairn replay --verify` on a stopped server's data directory: both pass.
pub fn check_log(data: &Path) {
    for args in [vec!["verify"], vec!["replay", "--verify"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(&args)
            .arg("--data")
            .arg(data)
            .output()
            .expect("cairn runs");
        assert!(
            out.status.success(),
            "cairn {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
