//! `cairn hub`: a cairn server that follows every site's published log on NATS JetStream and shows the fleet.

use std::process::ExitCode;

use clap::Parser;

use super::DataArg;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The NATS servers the sites publish to: nats://HOST:PORT, several separated by commas
    #[arg(long, value_name = "URLS", value_delimiter = ',', required = true)]
    nats: Vec<String>,
    #[command(flatten)]
    data: DataArg,
    /// The address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    listen: String,
    /// The admin token (default: the one in <data>/admin.token, generated at first start)
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Send every alert (a site broken among them) to this webhook, as `serve --alert-webhook` does
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,
}

/// `serve`'s arguments, parsed as `serve` would parse them, so the hub is a cairn server in every other way.
#[derive(Debug, Parser)]
struct AsServe {
    #[command(flatten)]
    serve: super::serve::Args,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    for server in &args.nats {
        anyhow::ensure!(
            server.starts_with("nats://") || server.starts_with("tls://") || !server.contains("://"),
            "--nats takes nats://HOST:PORT, not {server:?}"
        );
    }
    let mut serve = vec![
        "serve".to_owned(),
        "--data".to_owned(),
        args.data.data.to_string_lossy().into_owned(),
        "--listen".to_owned(),
        args.listen,
    ];
    if let Some(token) = args.token {
        serve.extend(["--token".to_owned(), token]);
    }
    if let Some(url) = args.alert_webhook {
        serve.extend(["--alert-webhook".to_owned(), url]);
    }
    let mut parsed = AsServe::try_parse_from(serve)?.serve;
    parsed.hub = args.nats;
    super::serve::run(parsed)
}
