//! `mqctl completions SHELL` (clap_complete) and `mqctl man [--dir D]` (clap_mangen), both
//! generated from the command line definition, so they never drift from `--help`.

use std::path::Path;

use clap::CommandFactory;

use crate::args::{Cli, Shell};
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output;

/// Prints the completion script of `shell` on stdout.
pub fn completions(shell: Shell) -> Result<Outcome> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    match shell {
        Shell::Bash => clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut command,
            "mqctl",
            &mut script,
        ),
        Shell::Zsh => clap_complete::generate(
            clap_complete::Shell::Zsh,
            &mut command,
            "mqctl",
            &mut script,
        ),
        Shell::Fish => clap_complete::generate(
            clap_complete::Shell::Fish,
            &mut command,
            "mqctl",
            &mut script,
        ),
    }
    output::write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(Outcome::Complete)
}

/// Prints `mqctl.1`, or with `dir` writes it and one page per command there.
pub fn man(ctx: &Context, dir: Option<&Path>) -> Result<Outcome> {
    let command = Cli::command();
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .map_err(|e| CliError::io("could not render", "the man page", e))?;
        output::write_stdout(&String::from_utf8_lossy(&page))?;
        return Ok(Outcome::Complete);
    };
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("could not create", dir, e))?;
    let mut written = 0;
    write_pages(command, dir, &mut written)?;
    ctx.out
        .sentence(&format!("Wrote {written} man pages to {}.", dir.display()))?;
    Ok(Outcome::Complete)
}

/// Writes the page of `command` and of each of its subcommands, named `mqctl-NOUN-VERB.1`.
fn write_pages(command: clap::Command, dir: &Path, written: &mut usize) -> Result<()> {
    let command = command.disable_help_subcommand(true);
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    let bin = command
        .get_bin_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_name = format!("{name}-{}", sub.get_name());
        let sub_bin = format!("{bin} {}", sub.get_name());
        let sub = sub.clone().display_name(sub_name).bin_name(sub_bin);
        write_pages(sub, dir, written)?;
    }
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| CliError::io("could not render", &path, e))?;
    std::fs::write(&path, page).map_err(|e| CliError::io("could not write", &path, e))?;
    *written += 1;
    Ok(())
}
