//! `cairn bench agent`: `cairn agent run` beside `restic backup` on the same generated tree, both as whole
//! processes, in one run: the first backup, an unchanged one, and one after 1% of the files changed. The agent
//! sends to a `cairn serve` child on loopback; restic writes to a local repository. Both trees are read from the
//! page cache (the tree was just written), so the figures compare the programs, not the disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;

use super::live::{Server, TOKEN};

/// The tree: how many files, and about how many bytes in all.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub files: usize,
    pub bytes: u64,
    /// The server's durability (`full` or `normal`).
    pub durability: &'static str,
}

/// One phase of the comparison.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    pub cairn_seconds: f64,
    pub cairn_sent: u64,
    pub restic_seconds: f64,
    /// What restic says it added to its repository.
    pub restic_added: u64,
}

/// What the benchmark measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub files: usize,
    pub bytes: u64,
    pub restic: String,
    pub durability: &'static str,
    pub phases: Vec<Phase>,
}

/// A small deterministic generator: the same tree on every machine.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Sizes of every kind: most files a few KiB, some of hundreds, a few of megabytes, adding up to about `bytes`.
fn sizes(config: Config, rng: &mut XorShift) -> Vec<u64> {
    let mut sizes: Vec<u64> = (0..config.files)
        .map(|i| match i % 20 {
            0 => 0,
            1..=13 => 1 + rng.next() % 16_384,
            14..=18 => 16_384 + rng.next() % 500_000,
            _ => 1,
        })
        .collect();
    let large: Vec<usize> = (0..config.files).filter(|i| i % 20 == 19).collect();
    let rest = config.bytes.saturating_sub(sizes.iter().sum());
    for (n, i) in large.iter().enumerate() {
        let share = rest / large.len().max(1) as u64;
        // Between half and one and a half times their share, so the large files differ too.
        sizes[*i] = share / 2 + (share * (n as u64 % 5)) / 4;
    }
    sizes
}

/// Writes the tree: folders of 100 files, nested two deep.
fn generate(root: &Path, config: Config) -> anyhow::Result<Vec<PathBuf>> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut paths = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for (i, size) in sizes(config, &mut rng).into_iter().enumerate() {
        let dir = root.join(format!("project-{:02}/part-{:02}", i / 1000, (i / 100) % 10));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("file-{i:05}.bin"));
        let mut f = std::fs::File::create(&path)?;
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            rng.fill(&mut buf[..n]);
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Rewrites 1% of the files (spread over every size) with new content of the same size.
fn change_one_percent(paths: &[PathBuf]) -> anyhow::Result<usize> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut changed = 0;
    let picks = (paths.len() / 100).max(1);
    for p in (0..picks).map(|i| &paths[(i * 97 + 3) % paths.len()]) {
        let size = std::fs::metadata(p)?.len().max(1) as usize;
        let mut content = vec![0u8; size];
        rng.fill(&mut content);
        std::fs::write(p, content)?;
        changed += 1;
    }
    Ok(changed)
}

/// Runs a command to its end, timing it; its stdout, or why it failed.
fn timed(mut command: Command) -> anyhow::Result<(f64, String)> {
    let started = Instant::now();
    let out = command.stdin(Stdio::null()).output().context("cannot start")?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed ({}): {}",
        command.get_program(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((seconds, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The `bytes sent N` of the agent's summary line.
fn sent(summary: &str) -> u64 {
    summary
        .lines()
        .rev()
        .find(|l| l.contains("files scanned"))
        .and_then(|l| l.split("bytes sent ").nth(1))
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The `data_added` of restic's JSON summary.
fn added(json_lines: &str) -> u64 {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .and_then(|v| v["data_added"].as_u64())
        .unwrap_or(0)
}

pub fn run(config: Config) -> anyhow::Result<Outcome> {
    let version = Command::new("restic")
        .arg("version")
        .output()
        .map_err(|_| anyhow::anyhow!("restic is not installed: apt-get install restic (the agent's peer)"))?;
    let restic = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let work = tempfile::tempdir()?;
    let tree = work.path().join("tree");
    let paths = generate(&tree, config)?;
    let bytes: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();

    let server = Server::start(config.durability)?;
    let admin = crate::client::Client::new(&format!("http://{}", server.addr), Some(TOKEN))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let registered = runtime.block_on(crate::agent::register(&admin, "bench"))?;
    let config_path = work.path().join("cairn-agent.toml");
    registered.save_new(&config_path)?;
    let repo = work.path().join("restic-repo");
    let restic_cmd = |args: &[&str]| {
        let mut c = Command::new("restic");
        c.env("RESTIC_PASSWORD", "bench-password")
            .arg("--repo")
            .arg(&repo)
            .args(args);
        c
    };
    timed(restic_cmd(&["init"]))?;
    let exe = std::env::current_exe()?;
    let cairn_run = || {
        let mut c = Command::new(&exe);
        c.args(["agent", "run", "--config"]).arg(&config_path).arg(&tree);
        c
    };
    let restic_run = || {
        let mut c = restic_cmd(&["backup", "--json"]);
        c.arg(&tree);
        c
    };
    let mut phases = Vec::new();
    for name in ["first run", "unchanged", "1% changed"] {
        if name == "1% changed" {
            change_one_percent(&paths)?;
        }
        let (cairn_seconds, out) = timed(cairn_run())?;
        let (restic_seconds, json) = timed(restic_run())?;
        phases.push(Phase {
            name,
            cairn_seconds,
            cairn_sent: sent(&out),
            restic_seconds,
            restic_added: added(&json),
        });
    }
    drop(server);
    Ok(Outcome {
        files: paths.len(),
        bytes,
        restic,
        durability: config.durability,
        phases,
    })
}
