//! `fleet dead list | show ID | retry ID...|--all | purge`: the jobs the
//! workers gave up on after their last attempt, through the api
//! (`/v1/dead`, see `api/src/routes/dead.rs`).
//!
//! `retry` queues a job again from scratch (once its cause is fixed: a
//! worker that crashed on it, a model that failed); `purge` empties the
//! dead-letter stream (the jobs stay readable, failed, until their TTL).

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use verdict_client::api::Api;
use verdict_shared::outln;
use verdict_shared::queue::dead_list::DeadJob;

/// A page of the api's listing, and the most `--all` walks through.
const PAGE: usize = 100;

#[derive(Debug, Clone, clap::Args)]
pub struct DeadArgs {
    #[command(subcommand)]
    pub command: DeadCommand,
    /// The api [default: the api of the fleet in the home (its run/fleet.json)]
    #[arg(long, value_name = "URL", global = true)]
    pub api: Option<String>,
    /// Bearer token for an api that asks for one.
    #[arg(long, env = "VERDICT_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DeadCommand {
    /// The dead letters, newest first: job, attempts, when, last error.
    List {
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One dead-lettered job: its record and its dead-letter entry, as JSON.
    Show { id: String },
    /// Queue jobs again from scratch (attempts 0), by id or --all.
    Retry {
        ids: Vec<String>,
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Take every job out of the dead-letter stream without running it.
    Purge,
}

pub fn main(home_flag: Option<&Path>, args: DeadArgs) -> anyhow::Result<ExitCode> {
    let (url, _) = super::api_of(home_flag, args.api.as_deref())?;
    let api = Api::new(&url, args.token.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&api, args.command))
}

async fn run(api: &Api, command: DeadCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeadCommand::List { limit } => {
            let page = api.dead_page(None, limit.clamp(1, PAGE)).await?;
            outln!("{} dead-lettered job(s)", page.count);
            for dead in &page.dead {
                outln!("{}", row(dead));
            }
        }
        DeadCommand::Show { id } => {
            let entry = all(api).await?.into_iter().find(|d| d.job == id);
            let Some(entry) = entry else {
                bail!("job {id} is not in the dead-letter stream (`fleet dead list`)");
            };
            let job = api.job(&id).await.ok();
            let shown = serde_json::json!({"dead_letter": entry, "job": job});
            outln!("{}", serde_json::to_string_pretty(&shown)?);
        }
        DeadCommand::Retry { ids, all: every } => {
            let ids = if every {
                all(api).await?.into_iter().map(|d| d.job).collect()
            } else {
                ids
            };
            if ids.is_empty() {
                bail!("nothing to retry: name job ids, or --all");
            }
            for id in &ids {
                let job = api.dead_retry(id).await?;
                outln!("{id}: {}", job.state.as_str());
            }
        }
        DeadCommand::Purge => {
            let dead = all(api).await?;
            for entry in &dead {
                api.dead_discard(&entry.job).await?;
            }
            outln!("discarded {} dead-lettered job(s)", dead.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every dead letter, page by page.
async fn all(api: &Api) -> anyhow::Result<Vec<DeadJob>> {
    let mut dead = Vec::new();
    let mut before = None;
    loop {
        let page = api.dead_page(before.as_deref(), PAGE).await?;
        dead.extend(page.dead);
        match page.next {
            Some(next) => before = Some(next),
            None => return Ok(dead),
        }
    }
}

/// `JOB  attempts N  at TIME  LAST ERROR`.
fn row(dead: &DeadJob) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(dead.at_us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "?".into());
    format!(
        "{}  attempts {}  at {at}  {}: {}",
        dead.job, dead.attempts, dead.last_error.code, dead.last_error.message
    )
}
