//! Entry point of `chiso-certs`: parses the command line, runs one command and prints the paths
//! it wrote or the certificate description it produced. The commands live in the library.

use anyhow::Context;
use chiso_certs::cli::{Cli, Output};
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    let name = command.name();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    match command.run(now).with_context(|| format!("{name} failed"))? {
        Output::Written(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
        }
        Output::Text(text) => print!("{text}"),
    }
    Ok(())
}
