//! From argv to a mode: the personality picks the tool, argh parses its
//! flags, the mode module runs. Arguments are passed in (never read from
//! globals) so every path here is unit-testable.

use std::ffi::OsString;
use std::process::ExitCode;

use argh::FromArgs;
use color_eyre::Result;
use color_eyre::eyre::eyre;

use crate::cli::{self, Command, GenerateArgs, InjectArgs, KccArgs};
use crate::cmd;
use crate::personality::Personality;
use crate::report::ExitWith;

/// Runs kcc with the full argv (argv\[0\] included).
pub fn run(argv: Vec<OsString>) -> Result<ExitCode> {
    let mut argv = argv.into_iter();
    let argv0 = argv.next().unwrap_or_else(|| "kcc".into());
    let rest: Vec<OsString> = argv.collect();
    let personality = Personality::from_argv0(&argv0);
    match personality {
        Personality::Cache => cmd::cache::run("kcc-cache", rest),
        Personality::Injector => {
            let args = utf8_args(&rest)?;
            let parsed = parse_or_exit(InjectArgs::from_args(&["kcc-injector"], &as_strs(&cli::split_equals(&args))))?;
            match parsed {
                Ok(inject) => cmd::inject::run(inject, false),
                Err(code) => Ok(code),
            }
        }
        Personality::Kcc | Personality::KubectlKcc => {
            let plugin = personality == Personality::KubectlKcc;
            if rest.first().is_some_and(|a| a == "cache") {
                return cmd::cache::run(if plugin { "kubectl-kcc cache" } else { "kcc cache" }, rest[1..].to_vec());
            }
            let args = utf8_args(&rest)?;
            // Hidden (argh has no hidden subcommands): a maintainer's tool that
            // writes the committed man page and completions, not a user command.
            if args.first().is_some_and(|a| a == "generate") {
                return match parse_or_exit(GenerateArgs::from_args(&["kcc", "generate"], &as_strs(&args[1..])))? {
                    Ok(generate) => cmd::generate::run(generate),
                    Err(code) => Ok(code),
                };
            }
            let name = personality.name();
            let parsed = parse_or_exit(KccArgs::from_args(&[name], &as_strs(&cli::split_equals(&args))))?;
            let kcc = match parsed {
                Ok(kcc) => kcc,
                Err(code) => return Ok(code),
            };
            if kcc.version {
                println!("{}", cli::version_line());
                return Ok(ExitCode::SUCCESS);
            }
            match kcc.command {
                None => {
                    // `kcc` alone: the same help as `kcc --help`.
                    let help = KccArgs::from_args(&[name], &["--help"]).err().map(|e| e.output).unwrap_or_default();
                    print!("{help}");
                    Ok(ExitCode::SUCCESS)
                }
                Some(Command::Cache(_)) => unreachable!("`kcc cache` is dispatched before parsing"),
                Some(Command::Inject(args)) => cmd::inject::run(args, plugin),
                Some(Command::Clear(args)) => cmd::clear::run(args),
                Some(Command::Doctor(args)) => cmd::doctor::run(args),
                Some(Command::InstallLinks(args)) => cmd::install_links::run(args),
            }
        }
    }
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn utf8_args(args: &[OsString]) -> Result<Vec<String>> {
    args.iter()
        .map(|a| {
            a.clone().into_string().map_err(|a| {
                eyre!(ExitWith { code: 2, message: format!("argument '{}' is not valid UTF-8", a.to_string_lossy()) })
            })
        })
        .collect()
}

/// argh's early exits: help goes to stdout with 0, a usage error to stderr with 2.
fn parse_or_exit<T>(parsed: Result<T, argh::EarlyExit>) -> Result<Result<T, ExitCode>> {
    match parsed {
        Ok(v) => Ok(Ok(v)),
        Err(exit) if exit.status.is_ok() => {
            print!("{}", exit.output);
            Ok(Err(ExitCode::SUCCESS))
        }
        Err(exit) => {
            eprint!("{}", exit.output);
            if !exit.output.ends_with('\n') {
                eprintln!();
            }
            Ok(Err(ExitCode::from(2)))
        }
    }
}
