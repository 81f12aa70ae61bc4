//! The `heft` command: flags, wiring, output and exit codes. The library does the work.

mod summary_text;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Reads Envoy configuration dumps and explains what a proxy holds.
#[derive(Parser)]
#[command(name = "heft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Who the proxy is and how much of everything it holds.
    Summary(InputArgs),
}

#[derive(clap::Args)]
struct InputArgs {
    /// The dump: a file (JSON, gzip or zstd), or `-` for standard input (the default when piped).
    file: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Skip resources that fail to decode, and report how many were skipped and why.
    #[arg(long)]
    keep_going: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Exit code for bad input and every other failure to do what was asked.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("heft: error: {msg}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn read(args: &InputArgs) -> Result<heft::Dump, String> {
    let opts = heft::ReadOptions {
        keep_going: args.keep_going,
    };
    let dump = match &args.file {
        Some(path) => heft::Dump::from_path_with(path, &opts).map_err(|e| {
            if path.as_os_str() == "-" {
                format!("<stdin>: {e}")
            } else {
                format!("{}: {e}", path.display())
            }
        })?,
        None => {
            if std::io::stdin().is_terminal() {
                return Err("no input: give a dump FILE, or pipe one in (`-` reads stdin)".into());
            }
            heft::Dump::from_stdin_with(&opts).map_err(|e| format!("<stdin>: {e}"))?
        }
    };
    if !dump.skipped.is_empty() {
        eprintln!(
            "heft: warning: skipped {} resource(s) that could not be read; first: {}: {}",
            dump.skipped.len(),
            dump.skipped[0].path,
            dump.skipped[0].reason
        );
    }
    Ok(dump)
}

fn run(cli: Cli) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match cli.command {
        Command::Summary(args) => {
            let dump = read(&args)?;
            let summary = heft::Summary::of(&dump);
            match args.output {
                Format::Json => serde_json::to_writer_pretty(&mut out, &summary)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(out)),
                Format::Text => out.write_all(summary_text::render(&summary).as_bytes()),
            }
        }
    };
    match written {
        Ok(()) => Ok(()),
        // A closed pipe (`heft summary | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing output: {e}")),
    }
}
