//! `qcc-customers completions SHELL` and `qcc-customers man`: generated from
//! the same clap definitions as `--help`, so they never drift from it.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::Ended;

pub fn completions(args: CompletionsArgs) -> anyhow::Result<Ended> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(Ended::Done)
}

pub fn man(args: ManArgs) -> anyhow::Result<Ended> {
    let cmd = Cli::command();
    match &args.out_dir {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()).context("writing the man page")?,
        Some(dir) => write_pages(cmd, dir)?,
    }
    Ok(Ended::Done)
}

/// `qcc-customers.1` and one `qcc-customers-<subcommand>.1` per subcommand.
fn write_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = cmd;
    cmd.build();
    let mut written = Vec::new();
    written.push(page(&cmd, cmd.get_name(), dir)?);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        written.push(page(&sub.clone().name(name.clone()), &name, dir)?);
    }
    println!("Wrote {} man pages to {}: {}", written.len(), dir.display(), written.join(", "));
    Ok(())
}

fn page(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<String> {
    let file = format!("{name}.1");
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    std::fs::write(dir.join(&file), out).with_context(|| format!("writing {}", dir.join(&file).display()))?;
    Ok(file)
}
