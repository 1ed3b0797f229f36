//! Server telemetry: CPU, memory, the data directory's disk, and the process's resident memory. Sampled in
//! memory on request; it is not an event.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

/// One sample.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Sample {
    /// Percent of all cores since the previous sample (0 on the first).
    pub cpu_percent: f32,
    pub cores: usize,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_percent: f64,
    /// The cairn process's resident set.
    pub process_rss_bytes: u64,
    pub data_dir: PathBuf,
    pub disk_total_bytes: Option<u64>,
    pub disk_available_bytes: Option<u64>,
    pub disk_used_percent: Option<f64>,
    /// The database file and its WAL.
    pub database_bytes: u64,
    pub blobs_bytes: u64,
}

/// Keeps the `System` between samples, which CPU usage needs.
pub struct Telemetry {
    /// A std mutex: held only while sampling, never across an await.
    system: Mutex<Option<sysinfo::System>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            system: Mutex::new(sysinfo::System::new().ok()),
        }
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Telemetry {
    /// Samples the machine and the data directory `data` (blocking: it walks the blob store).
    pub fn sample(&self, data: &Path) -> Sample {
        let mut s = self.sample_light(data);
        s.blobs_bytes = dir_bytes(&crate::datadir::blobs_path(data));
        s
    }

    /// As [`Telemetry::sample`] without walking the blob store (`blobs_bytes` is 0): cheap enough for every second.
    pub fn sample_light(&self, data: &Path) -> Sample {
        let mut guard = self.system.lock().unwrap_or_else(|p| p.into_inner());
        let (cpu, cores, total, used, rss) = match guard.as_mut() {
            Some(sys) => {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                let rss = sysinfo::get_current_pid()
                    .ok()
                    .and_then(|pid| {
                        sys.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), false);
                        sys.process(pid).map(|p| p.memory())
                    })
                    .unwrap_or(0);
                (
                    sys.global_cpu_usage(),
                    sys.cpus().len(),
                    sys.total_memory(),
                    sys.used_memory(),
                    rss,
                )
            }
            None => (0.0, 0, 0, 0, 0),
        };
        drop(guard);
        let canonical = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_owned());
        let disk = sysinfo::Disks::new_with_refreshed_list().ok().and_then(|disks| {
            disks
                .iter()
                .filter(|d| canonical.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len())
                .map(|d| (d.total_space(), d.available_space()))
        });
        let db = crate::datadir::db_path(data);
        let file_len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Sample {
            cpu_percent: cpu,
            cores,
            memory_total_bytes: total,
            memory_used_bytes: used,
            memory_percent: if total > 0 {
                used as f64 * 100.0 / total as f64
            } else {
                0.0
            },
            process_rss_bytes: rss,
            data_dir: canonical,
            disk_total_bytes: disk.map(|d| d.0),
            disk_available_bytes: disk.map(|d| d.1),
            disk_used_percent: disk.filter(|d| d.0 > 0).map(|(t, a)| (t - a) as f64 * 100.0 / t as f64),
            database_bytes: file_len(&db) + file_len(Path::new(&wal)),
            blobs_bytes: 0,
        }
    }
}
