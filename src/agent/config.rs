//! The agent's configuration file (`cairn-agent.toml`, mode 0600): the server, the client's id and token.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Where `cairn agent` keeps its configuration unless told.
pub const DEFAULT_PATH: &str = "./cairn-agent.toml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server, `http://host:port`.
    pub url: String,
    /// The client's id on the server.
    pub client_id: String,
    /// The client's own token (shown once by the server when it registered).
    pub token: String,
    /// The name it registered with.
    #[serde(default)]
    pub name: String,
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the agent's configuration {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not an agent configuration", path.display()))
    }

    /// Writes the file readable by its owner only, refusing to replace one (it holds a token shown once).
    pub fn save_new(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        let text = toml::to_string(self)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).with_context(|| {
            format!(
                "cannot create {} (if it exists, it holds another registration: remove it or pass --config)",
                path.display()
            )
        })?;
        file.write_all(
            format!("# cairn agent: this client's identity on its server. Keep it secret.\n{text}").as_bytes(),
        )?;
        file.sync_all()?;
        Ok(())
    }
}

/// The local state's file beside a configuration: `cairn-agent.toml` → `cairn-agent.state.db`.
pub fn state_path(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cairn-agent".into());
    config.with_file_name(format!("{stem}.state.db"))
}
