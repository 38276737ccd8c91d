//! The `tollgate-dev` command: wiring only.

use clap::{Parser, Subcommand};
use tollgate_dev::up::{UpOptions, up};

#[derive(Parser)]
#[command(name = "tollgate-dev", about = "Tollgate's local stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole bundle on 127.0.0.1 until Ctrl-C.
    Up {
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
        #[arg(long, env = "MOTO_PORT", default_value_t = tollgate_dev::local::DEFAULT_MOTO_PORT)]
        moto_port: u16,
        #[arg(long, default_value = "tollgate-local")]
        prefix: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env().add_directive("info".parse()?))
        .init();
    match Cli::parse().command {
        Command::Up { port, moto_port, prefix } => up(UpOptions { port, moto_port, prefix }).await,
    }
}
