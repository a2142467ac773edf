//! The `cpimgate` command.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cpimgate::config::{Config, LogFormat};
use cpimgate::inspect::{self, InspectAs};
use cpimgate_mappings::Alias;

/// cpimgate: an instant-messaging gateway between SIP MESSAGE, MSRP chat
/// rooms, XMPP and IRC.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until SIGINT or SIGTERM.
    Run {
        /// The configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Log format; overrides `log.format`.
        #[arg(long)]
        log_format: Option<LogFormat>,
    },
    /// Load and validate a configuration file, then exit: 0 when it is
    /// usable, 1 with a one-line reason when not.
    CheckConfig {
        /// The configuration file (TOML).
        file: PathBuf,
    },
    /// Parse a raw protocol message and print what the gateway understood,
    /// as JSON. Exit 0 when understood, 2 when malformed (with the byte
    /// offset of the problem).
    Inspect {
        /// What the input is: cpim, address (one per line), sip, msrp, sdp.
        /// Without it the kind is guessed from the first bytes.
        #[arg(long = "as")]
        kind: Option<String>,
        /// Take the parser limits (`[limits]`) from this configuration
        /// file instead of the defaults.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The file to read; `-` or nothing for standard input.
        file: Option<PathBuf>,
    },
    /// Show and edit the identity mapping table.
    Mappings {
        /// The configuration file (for the store's path).
        #[arg(long, short)]
        config: PathBuf,
        #[command(subcommand)]
        action: MappingsAction,
    },
}

#[derive(Debug, Subcommand)]
enum MappingsAction {
    /// Print every identity and bridge as JSON lines.
    List,
    /// Link aliases into one identity (creating it, or extending the one an
    /// alias already belongs to). Aliases: `im:alice@example.com`,
    /// `sip:alice@example.com`, `jid:alice@example.org`, `irc:NETWORK/nick`.
    Add {
        /// Display name of the person.
        #[arg(long)]
        display_name: Option<String>,
        /// The aliases.
        #[arg(required = true)]
        aliases: Vec<String>,
    },
    /// Remove an alias from its identity.
    Remove {
        /// The alias.
        alias: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect { kind, config, file } => {
            let limits = match config.map(|c| Config::load(&c)).transpose() {
                Ok(cfg) => cfg.unwrap_or_default().limits,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            inspect_command(kind.as_deref(), file, &limits)
        }
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config, log_format } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            cpimgate::ops::init_logging(log_format.unwrap_or(cfg.log.format), &cfg.log.level);
            // rustls needs one process-wide provider; aws-lc-rs is the one
            // every TLS user in this build agrees on.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            report(runtime().and_then(|rt| rt.block_on(cpimgate::app::run(cfg))))
        }
        Command::Mappings { config, action } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            report(runtime().and_then(|rt| rt.block_on(mappings_command(cfg, action))))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn inspect_command(
    kind: Option<&str>,
    file: Option<PathBuf>,
    limits: &cpimgate::config::LimitsSection,
) -> ExitCode {
    let mut input = Vec::new();
    let read = match &file {
        Some(p) if p.as_os_str() != "-" => std::fs::read(p).map(|b| input = b),
        _ => std::io::stdin().read_to_end(&mut input).map(|_| ()),
    };
    if let Err(e) = read {
        eprintln!("error: cannot read input: {e}");
        return ExitCode::FAILURE;
    }
    let kind = match kind {
        Some(k) => match k.parse::<InspectAs>() {
            Ok(k) => k,
            Err(e) => {
                eprintln!("error: --as {k}: {e}");
                return ExitCode::from(64);
            }
        },
        None => InspectAs::guess(&input),
    };
    match inspect::inspect(kind, &input, &limits.cpim()) {
        Ok(json) => {
            // `inspect ... | head`: a reader that goes away is not an error
            // worth a panic (println! panics on a closed pipe).
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{json}") {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: writing the output: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(inspect::InspectError::Malformed(reason)) => {
            eprintln!("malformed {kind}: {reason}");
            ExitCode::from(2)
        }
        Err(inspect::InspectError::Unsupported(reason)) => {
            eprintln!("error: {reason}");
            ExitCode::from(64)
        }
    }
}

async fn mappings_command(cfg: Config, action: MappingsAction) -> anyhow::Result<()> {
    let store = cpimgate::app::open_mappings(&cfg).await?;
    match action {
        MappingsAction::List => {
            for identity in store.identities() {
                println!("{}", serde_json::to_string(&identity)?);
            }
            for (bridge, rooms) in store.bridges() {
                println!(
                    "{}",
                    serde_json::json!({ "bridge": bridge, "rooms": rooms })
                );
            }
        }
        MappingsAction::Add {
            display_name,
            aliases,
        } => {
            let aliases = aliases
                .iter()
                .map(|a| a.parse::<Alias>().with_context(|| format!("alias {a:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let id = store
                .upsert_identity(display_name.as_deref(), &aliases)
                .await?;
            println!("{}", serde_json::to_string(&store.identity(id))?);
        }
        MappingsAction::Remove { alias } => {
            let alias: Alias = alias.parse().with_context(|| format!("alias {alias:?}"))?;
            if !store.remove_alias(&alias).await? {
                anyhow::bail!("no identity has the alias {alias}");
            }
            println!("removed {alias}");
        }
    }
    Ok(())
}
