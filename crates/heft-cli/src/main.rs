//! The `heft` command: flags, wiring, output and exit codes. The library does the work.

/// Reading allocates and frees many small objects on every thread: see Cargo.toml.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod check_cmd;
mod cost_cmd;
mod diff_cmd;
mod pb_json;
mod progress;
mod proto_json;
mod raw;
mod readiness_text;
mod size;
mod summary_cmd;
mod summary_text;
mod table;
mod trace_cmd;
mod views_cmd;
mod why_cmd;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Reads Envoy configuration dumps and explains what a proxy holds.
#[derive(Parser)]
#[command(name = "heft", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Who the proxy is, how much of everything it holds and the heap it predicts.
    Summary {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        model: cost_cmd::ModelArgs,
    },
    /// The heaviest objects in the predicted heap.
    Top {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        model: cost_cmd::ModelArgs,
        /// How many objects to list.
        #[arg(short = 'n', long, default_value_t = 20)]
        count: usize,
        /// Only objects of this kind: cluster, endpoints, listener, route-config, secret,
        /// endpoint, filter-chain, virtual-host, route.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<heft::cost::Kind>,
    },
    /// The predicted heap rolled up by kind, namespace, service, cluster type or listener.
    Cost {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        model: cost_cmd::ModelArgs,
        /// What to roll up by.
        #[arg(long, value_enum, default_value_t = cost_cmd::By::Kind)]
        by: cost_cmd::By,
    },
    /// Measure a real Envoy on designed configurations and fit a cost model to it.
    Calibrate(cost_cmd::CalibrateArgs),
    /// How one connection and request flow through the proxy: listener, filter chain, route,
    /// clusters and endpoints, with the reason at each step.
    Trace {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        query: trace_cmd::TraceArgs,
    },
    /// What bloats this proxy: where the predicted heap goes, what serves nothing, the
    /// multipliers at work, and the Sidecar scope that would cut it.
    Why {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        model: cost_cmd::ModelArgs,
    },
    /// What an Istio Sidecar resource would save: the predicted heap before and after its
    /// egress hosts, and the manifest to apply.
    Sidecar {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        model: cost_cmd::ModelArgs,
        #[command(flatten)]
        sidecar: why_cmd::SidecarArgs,
    },
    /// What changed between two dumps: resources added, removed and changed (matched by
    /// identity, field by field), and what the change does to the predicted heap.
    Diff {
        #[command(flatten)]
        diff: diff_cmd::DiffArgs,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Text)]
        output: Format,
        /// Skip resources that fail to decode, and report how many were skipped and why.
        #[arg(long)]
        keep_going: bool,
        #[command(flatten)]
        model: cost_cmd::ModelArgs,
    },
    /// What is wrong in this dump: rejected and warming resources, routes to missing clusters,
    /// shadowed routes, duplicate domains, missing secrets, expiring certificates, clusters with
    /// no or only unhealthy endpoints, unused clusters.
    Check {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        check: check_cmd::CheckArgs,
    },
    #[command(flatten)]
    View(views_cmd::View),
    /// Shell completions for heft (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: `heft completions bash > ~/.local/share/bash-completion/completions/heft`; zsh:
    /// `heft completions zsh > ~/.zfunc/_heft` (a directory in `fpath`); fish: `heft completions
    /// fish > ~/.config/fish/completions/heft.fish`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page heft(1), in roff.
    ///
    /// `heft man | man -l -` reads it; `heft man --dir ~/.local/share/man/man1` writes heft.1 and
    /// one page per subcommand (heft-summary.1, heft-clusters.1, …) for `man heft`.
    Man {
        /// Write heft.1 and every subcommand's page into this directory (`man1/` of a MANPATH
        /// entry, such as ~/.local/share/man/man1) instead of printing heft.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

fn parse_kind(name: &str) -> Result<heft::cost::Kind, String> {
    heft::cost::Kind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = heft::cost::Kind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind {name:?}; one of: {}", names.join(", "))
    })
}

#[derive(clap::Args)]
struct InputArgs {
    /// The dump: a file (JSON, YAML or protobuf; plain, gzip or zstd), or `-` for standard input
    /// (the default when piped).
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

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (its Rust bindings do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Memory freed by one batch is soon needed by the next: handing it back to the OS after
    // mimalloc's default 10 ms makes the kernel zero fresh pages all the time (10% of the CPU of
    // a 1 GB read, `clear_page_erms` in perf). A second's delay keeps it for the run.
    // SAFETY: sets an option before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(
                e.kind(),
                K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::from(e.exit_code() as u8);
            }
            // clap's whole message: what was wrong, the usage line, and its tips ("a similar
            // subcommand exists", the possible values), under the prefix every error has.
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprint!("heft: error: {text}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("heft: error: {msg}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn read(args: &InputArgs) -> Result<heft::Dump, String> {
    let (_bar, progress) = progress::Bar::new();
    let opts = heft::ReadOptions {
        keep_going: args.keep_going,
        progress,
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
    warn_skipped(&dump.skipped);
    Ok(dump)
}

/// The input's gaps ([`heft::Summary::warnings`]), refusing an input nothing in which can be
/// priced.
fn pricing_warnings(dump: &heft::Dump) -> Result<Vec<heft::summary_types::Warning>, String> {
    let warnings = heft::Summary::of(dump).warnings;
    refuse_unpriceable(&warnings)?;
    Ok(warnings)
}

/// Refuses an input whose warnings say nothing in it can be priced.
fn refuse_unpriceable(warnings: &[heft::summary_types::Warning]) -> Result<(), String> {
    match warnings.iter().find(|w| w.code == "cluster-statuses") {
        Some(w) => Err(w.message.clone()),
        None => Ok(()),
    }
}

/// `warning: …` lines, one per gap, for the top of a text report.
pub(crate) fn warnings_text(warnings: &[heft::summary_types::Warning]) -> String {
    warnings
        .iter()
        .map(|w| format!("warning: {}\n", w.message))
        .collect()
}

/// One warning line for what `--keep-going` skipped: how many, and where the first was.
pub(crate) fn warn_skipped(skipped: &[heft::model::Skipped]) {
    if let Some(first) = skipped.first() {
        let place = match (first.line, first.column, first.offset) {
            (Some(line), Some(column), _) => format!("line {line}, column {column}, "),
            (_, _, Some(offset)) => format!("byte {offset}, "),
            _ => String::new(),
        };
        eprintln!(
            "heft: warning: skipped {} resource(s) that could not be read; first: at {place}{}: {}",
            skipped.len(),
            first.path,
            first.reason
        );
    }
}

/// The command as the man pages describe it: built, so every subcommand knows its full name.
fn man_command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

fn man_page(cmd: &clap::Command) -> Result<Vec<u8>, String> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .map_err(|e| format!("writing the man page: {e}"))?;
    Ok(page)
}

/// `heft.1`, and `heft-<subcommand>.1` for each subcommand the top page lists.
fn write_man_pages(dir: &std::path::Path) -> Result<(), String> {
    let cmd = man_command();
    let write = |name: &str, page: Vec<u8>| {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("heft", man_page(&cmd)?)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("heft-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .display_name(format!("heft-{}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        write(&name, man_page(&page)?)?;
    }
    Ok(())
}

/// Exit code when `heft check --fail-on` finds what it was told to fail on.
const EXIT_FINDINGS: u8 = 1;

fn run(cli: Cli) -> Result<u8, String> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut code = 0;
    let written = match cli.command {
        Command::Summary { input, model } => {
            let text = summary_cmd::run(&input, &model)?;
            out.write_all(text.as_bytes())
        }
        Command::Top {
            input,
            model,
            count,
            kind,
        } => {
            let resolved = model.resolve()?;
            let dump = read(&input)?;
            let warnings = pricing_warnings(&dump)?;
            let estimate =
                heft::cost::Estimate::of(&dump, resolved.model_for(&dump), &resolved.settings);
            let text = cost_cmd::top(
                &estimate,
                kind,
                count,
                matches!(input.output, Format::Json),
                &warnings,
            );
            out.write_all(text.as_bytes())
        }
        Command::Cost { input, model, by } => {
            let resolved = model.resolve()?;
            let dump = read(&input)?;
            let warnings = pricing_warnings(&dump)?;
            let estimate =
                heft::cost::Estimate::of(&dump, resolved.model_for(&dump), &resolved.settings);
            let text = cost_cmd::cost(
                &estimate,
                by,
                matches!(input.output, Format::Json),
                &warnings,
            );
            out.write_all(text.as_bytes())
        }
        Command::Calibrate(args) => {
            let text = cost_cmd::calibrate(&args)?;
            out.write_all(text.as_bytes())
        }
        Command::Trace { input, query } => {
            let dump = read(&input)?;
            let trace = heft::trace::trace(&dump, &query.query());
            match input.output {
                Format::Json => serde_json::to_writer_pretty(&mut out, &trace)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(out)),
                Format::Text => out.write_all(trace_cmd::render(&trace).as_bytes()),
            }
        }
        Command::Why { input, model } => {
            let resolved = model.resolve()?;
            let dump = read(&input)?;
            let why = heft::why::Why::of(
                &dump,
                resolved.model_for(&dump),
                &resolved.settings,
                resolved.usage(),
            );
            // The report carries the input's warnings: refuse on them, not on a second pass.
            refuse_unpriceable(&why.warnings)?;
            let file = input
                .file
                .as_ref()
                .map_or("-".to_string(), |f| f.display().to_string());
            let text = match input.output {
                Format::Json => why_cmd::why_json(&why),
                Format::Text => why_cmd::why_text(
                    &why,
                    &file,
                    model
                        .stats_path()
                        .map(|p| p.display().to_string())
                        .as_deref(),
                ),
            };
            out.write_all(text.as_bytes())
        }
        Command::Sidecar {
            input,
            model,
            sidecar,
        } => {
            let resolved = model.resolve()?;
            let dump = read(&input)?;
            let warnings = pricing_warnings(&dump)?;
            let usage = resolved.usage();
            let (scope, workload) = why_cmd::scope_of(&dump, &sidecar, usage)?;
            let what_if = heft::sidecar::WhatIf::of(
                &dump,
                &scope,
                resolved.model_for(&dump),
                &resolved.settings,
                usage,
            );
            let text = match (sidecar.emit(), input.output) {
                (true, _) => why_cmd::sidecar_manifest(&what_if, &workload, &sidecar)?,
                (false, Format::Json) => why_cmd::sidecar_json(&what_if, &workload, &warnings),
                (false, Format::Text) => {
                    warnings_text(&warnings) + &why_cmd::sidecar_text(&what_if, &workload)
                }
            };
            out.write_all(text.as_bytes())
        }
        Command::Diff {
            diff,
            output,
            keep_going,
            model,
        } => {
            if diff.old.as_os_str() == "-" && diff.new.as_os_str() == "-" {
                return Err("only one of OLD and NEW can be standard input (-)".into());
            }
            let resolved = model.resolve()?;
            let input = |file: &PathBuf| InputArgs {
                file: Some(file.clone()),
                output,
                keep_going,
            };
            let old = read(&input(&diff.old))?;
            let new = read(&input(&diff.new))?;
            let d = heft::diff::Diff::of(
                &old,
                &new,
                resolved.model_for(&old),
                resolved.model_for(&new),
                &resolved.settings,
                &heft::diff::Options { all: diff.all },
            );
            let text = match output {
                Format::Json => diff_cmd::json(&d),
                Format::Text => diff_cmd::text(&d, diff.by),
            };
            out.write_all(text.as_bytes())
        }
        Command::Check { input, check } => {
            let dump = read(&input)?;
            let findings = heft::check::check(&dump, &check.options());
            if check.fails(&findings) {
                code = EXIT_FINDINGS;
            }
            let text = match input.output {
                Format::Json => check_cmd::json(&findings),
                Format::Text => check_cmd::text(&findings),
            };
            out.write_all(text.as_bytes())
        }
        Command::View(view) => views_cmd::run(view, &mut out)?,
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "heft", &mut text);
            out.write_all(&text)
        }
        Command::Man { dir: None } => man_page(&man_command()).map(|page| out.write_all(&page))?,
        Command::Man { dir: Some(dir) } => {
            write_man_pages(&dir)?;
            eprintln!(
                "heft: wrote heft.1 and its subcommands' pages into {}",
                dir.display()
            );
            Ok(())
        }
    };
    match written {
        Ok(()) => Ok(code),
        // A closed pipe (`heft summary | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(format!("writing output: {e}")),
    }
}
