//! Running the `cairn` binary as a user does: a server on port 0, commands with their exit codes, raw HTTP.

use super::cairn_bin;

/// Runs `cairn` with `args` to its end: the exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = cairn_bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `cairn serve` on `data` and port 0 with `args`; the child, the rest of its stdout, and the address it printed.
pub fn serve(
    data: &std::path::Path,
    args: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    serve_on(data, "127.0.0.1:0", args)
}

/// [`serve`] on a given address (a restart on the port a client knows).
pub fn serve_on(
    data: &std::path::Path,
    listen: &str,
    args: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    // The machine's disk is not the test's: no DiskNearlyFull unless a test asks for a threshold.
    let quiet_disk: &[&str] = if args.contains(&"--disk-alert-percent") {
        &[]
    } else {
        &["--disk-alert-percent", "100"]
    };
    let mut command = cairn_bin();
    command
        .args(["serve", "--listen", listen])
        .args(quiet_disk)
        .args(args)
        .arg("--data")
        .arg(data);
    started(command)
}

/// Starts a `cairn` command that serves (`serve`, `hub`) and reads the address from the first line it prints.
pub fn started(
    mut command: std::process::Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    use std::io::BufRead;
    let mut child = command.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = address_in(&first);
    (child, out, addr)
}

/// The `host:port` of the `http://…` URL in the line `cairn serve` prints first.
pub fn address_in(line: &str) -> String {
    line.split("http://")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

/// A GET on a fresh connection with these header lines; the whole answer.
pub fn raw_get(addr: &str, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nhost: x\r\n{headers}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    answer
}

/// Asks a child process to stop, as an operator would.
pub fn sigterm(child: &std::process::Child) {
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
}

/// A request with a body over a fresh connection; answers the JSON `data` of the reply.
pub fn raw_send(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    socket.write_all(body).unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(json).unwrap_or_default()["data"].clone()
}

/// A child process that is killed when dropped, so a test that fails half-way leaves no server behind.
pub struct Running(pub std::process::Child);

impl Running {
    /// Stops it as an operator would (SIGTERM) and answers how it ended.
    pub fn stop(mut self) -> std::process::ExitStatus {
        sigterm(&self.0);
        self.0.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
