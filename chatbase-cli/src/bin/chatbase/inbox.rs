//! `chatbase inbox`: list, count, requeue and purge the deliveries of a
//! durable inbox (chatbase-inbox), on SQLite or PostgreSQL.

use std::io::IsTerminal as _;
use std::time::Duration;

use chatbase_cli::inbox::{
    self as operate, DbUrl, INBOX_ENV_VAR, ListedDelivery, StatsView, printable, table_time,
};
use chatbase_inbox::{Inbox, InboxError, State};
use clap::{Subcommand, ValueEnum};

use crate::output::{BAD, Fail, GOOD, HEAD, NOTE, WARN, failed, missing, usage, with_hint};

/// Operate a durable inbox: list deliveries, requeue dead ones, purge old
/// ones.
///
/// Works on the database of chatbase-inbox, where receivers store each
/// verified delivery before answering 200: SQLite (sqlite://path) or
/// PostgreSQL (postgres://...). Shows deliveries' metadata only, never their
/// bodies (customer data), and never prints the URL's password.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  export CHATBASE_INBOX=sqlite://data/inbox.db     # or postgres://user:password@host/database
  chatbase inbox stats
  chatbase inbox list --state dead
  chatbase inbox retry 42 43
  chatbase inbox retry --all-dead
  chatbase inbox purge --state processed --older-than 7d --yes

Exit status: 0 on success, 1 if the inbox cannot be reached or an operation
fails, 2 for a usage error.")]
pub(crate) struct Args {
    #[command(subcommand)]
    command: InboxCommand,
}

#[derive(Debug, Subcommand)]
enum InboxCommand {
    List(ListArgs),
    Stats(StatsArgs),
    Retry(RetryArgs),
    Purge(PurgeArgs),
}

/// Where the inbox is.
#[derive(Debug, clap::Args)]
struct DbArgs {
    /// The inbox's database, as the receivers name it:
    /// sqlite://path/to/inbox.db or postgres://user:password@host/database.
    /// Prefer the variable for a URL with a password: a command line is
    /// visible to other users. The password is never printed.
    #[arg(
        long,
        value_name = "URL",
        env = INBOX_ENV_VAR,
        hide_env_values = true
    )]
    db: String,
}

/// List deliveries: id, state, attempts, chatbot id, event type, when
/// received, last error.
///
/// Oldest first. Never shows a body: no customer email or phone. The id is
/// what 'chatbase inbox retry' takes.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  chatbase inbox list --db sqlite://data/inbox.db
  chatbase inbox list --state pending --limit 200
  chatbase inbox list --json | jq '.[].id'

Exit status: 0 on success, 1 if the inbox cannot be reached, 2 for a usage
error.")]
struct ListArgs {
    #[command(flatten)]
    db: DbArgs,

    /// Which deliveries.
    #[arg(long, value_name = "STATE", default_value = "dead")]
    state: AnyState,

    /// The most deliveries to list.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,

    /// Print a JSON array, one object per delivery, for scripts: id, state,
    /// attempts, chatbot_id, event_type, received_at (RFC 3339), last_error.
    #[arg(long)]
    json: bool,
}

/// Count deliveries per state, and tell how long the oldest unfinished one
/// has waited.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  chatbase inbox stats --db sqlite://data/inbox.db
  chatbase inbox stats --json | jq .dead

Exit status: 0 on success, 1 if the inbox cannot be reached, 2 for a usage
error.")]
struct StatsArgs {
    #[command(flatten)]
    db: DbArgs,

    /// Print a JSON object, for scripts: pending, processing, processed,
    /// dead, oldest_pending_age_seconds (null when none).
    #[arg(long)]
    json: bool,
}

/// Requeue dead deliveries: back to pending, attempts reset, processed
/// again by the receivers' workers.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  chatbase inbox retry --db sqlite://data/inbox.db 42
  chatbase inbox retry 42 43 44
  chatbase inbox retry --all-dead

Exit status: 0 if every delivery named was requeued, 1 if one was not (it
does not exist, or is not dead) or the inbox cannot be reached, 2 for a usage
error.")]
struct RetryArgs {
    #[command(flatten)]
    db: DbArgs,

    /// The ids of the dead deliveries to requeue (see 'chatbase inbox list').
    #[arg(
        value_name = "ID",
        required_unless_present = "all_dead",
        conflicts_with = "all_dead"
    )]
    ids: Vec<i64>,

    /// Requeue every dead delivery.
    #[arg(long)]
    all_dead: bool,
}

/// Delete processed or dead deliveries that finished some time ago.
///
/// Deletes them for good, keys included: a replay of one of them would be
/// stored and processed again. Asks first, on a terminal, unless --yes.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  chatbase inbox purge --db sqlite://data/inbox.db --state dead --older-than 30d
  chatbase inbox purge --state processed --older-than 12h --yes

Exit status: 0 on success, 1 if the inbox cannot be reached or the answer was
no, 2 for a usage error (without --yes when standard input is not a
terminal).")]
struct PurgeArgs {
    #[command(flatten)]
    db: DbArgs,

    /// Which deliveries.
    #[arg(long, value_name = "STATE")]
    state: FinishedState,

    /// Only those that finished longer ago than this: 30m, 12h, 7d, 2w,
    /// '1d 12h'.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    older_than: Duration,

    /// Do not ask for confirmation (needed when standard input is not a
    /// terminal).
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Every state a delivery can be in.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum AnyState {
    Dead,
    Pending,
    Processing,
    Processed,
}

impl From<AnyState> for State {
    fn from(state: AnyState) -> Self {
        match state {
            AnyState::Dead => State::Dead,
            AnyState::Pending => State::Pending,
            AnyState::Processing => State::Processing,
            AnyState::Processed => State::Processed,
        }
    }
}

/// The states of finished deliveries, which can be purged.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FinishedState {
    Processed,
    Dead,
}

impl From<FinishedState> for State {
    fn from(state: FinishedState) -> Self {
        match state {
            FinishedState::Processed => State::Processed,
            FinishedState::Dead => State::Dead,
        }
    }
}

pub(crate) async fn run(args: Args) -> Result<(), Fail> {
    match args.command {
        InboxCommand::List(args) => list(args).await,
        InboxCommand::Stats(args) => stats(args).await,
        InboxCommand::Retry(args) => retry(args).await,
        InboxCommand::Purge(args) => purge(args).await,
    }
}

/// An open inbox, and its URL for messages.
struct Opened {
    url: DbUrl,
    inbox: Inbox,
}

impl Opened {
    /// Checks `--db` (a usage error if it is not an inbox URL) and opens the
    /// inbox (a failure if it cannot).
    async fn open(command: &'static str, db: &DbArgs) -> Result<Self, Fail> {
        let url = DbUrl::parse(&db.db).map_err(|error| {
            usage(
                command,
                with_hint(&format!("--db: {error}"), Some(error.hint().to_owned())),
            )
        })?;
        match operate::open(&url).await {
            Ok(inbox) => Ok(Self { url, inbox }),
            Err(error) => Err(failed(&format!("{url}: {error}"), error.hint(&url))),
        }
    }

    /// Reports an operation that failed.
    fn failed(&self, error: &InboxError) -> Fail {
        failed(
            &format!("{}: {error}", self.url),
            operate::inbox_error_hint(error, &self.url),
        )
    }

    async fn close(self) {
        self.inbox.close().await;
    }
}

async fn list(args: ListArgs) -> Result<(), Fail> {
    let opened = Opened::open("inbox list", &args.db).await?;
    let state = State::from(args.state);
    let records = match opened.inbox.list(state, args.limit).await {
        Ok(records) => records,
        Err(error) => return Err(opened.failed(&error)),
    };
    // How many there are in all, when the list may be cut short.
    let total = if records.len() >= usize::try_from(args.limit).unwrap_or(usize::MAX) {
        opened
            .inbox
            .stats()
            .await
            .ok()
            .map(|stats| stats.count(state))
    } else {
        None
    };
    opened.close().await;
    let listed: Vec<ListedDelivery> = records.iter().map(ListedDelivery::from).collect();
    if args.json {
        let json = serde_json::to_string_pretty(&listed)
            .map_err(|error| failed(&format!("cannot write JSON: {error}"), None))?;
        anstream::println!("{json}");
    } else if listed.is_empty() {
        anstream::println!("no {state} deliveries");
    } else {
        print_table(&records);
    }
    if let Some(total) = total
        && total > u64::from(args.limit)
    {
        anstream::eprintln!(
            "{NOTE}note{NOTE:#}: the oldest {} of {total} {state} deliveries; --limit N for more",
            listed.len()
        );
    }
    Ok(())
}

/// The colour of a state.
fn state_style(state: State) -> anstyle::Style {
    match state {
        State::Dead => BAD,
        State::Processed => GOOD,
        State::Pending => WARN,
        _ => NOTE,
    }
}

fn print_table(records: &[chatbase_inbox::DeliveryRecord]) {
    const HEADER: [&str; 7] = [
        "ID",
        "STATE",
        "ATTEMPTS",
        "CHATBOT",
        "EVENT",
        "RECEIVED (UTC)",
        "LAST ERROR",
    ];
    let rows: Vec<(State, [String; 7])> = records
        .iter()
        .map(|record| {
            (
                record.state,
                [
                    record.id.to_string(),
                    record.state.to_string(),
                    record.attempts.to_string(),
                    record
                        .chatbot_id
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |id| printable(id).into_owned()),
                    printable(&record.event_type).into_owned(),
                    table_time(record.received_at),
                    record
                        .last_error
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |error| printable(error).into_owned()),
                ],
            )
        })
        .collect();
    let mut widths = HEADER.map(|title| title.chars().count());
    for (_, cells) in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 7], styles: [anstyle::Style; 7]| {
        let mut line = String::new();
        let last = cells.len() - 1;
        for (n, ((cell, width), style)) in cells.iter().zip(widths).zip(styles).enumerate() {
            if n == last {
                line.push_str(&format!("{style}{cell}{style:#}"));
            } else {
                let padding = " ".repeat(width.saturating_sub(cell.chars().count()) + 2);
                line.push_str(&format!("{style}{cell}{style:#}{padding}"));
            }
        }
        line
    };
    let plain = anstyle::Style::new();
    anstream::println!("{}", line(&HEADER.map(str::to_owned), [HEAD; 7]));
    for (state, cells) in &rows {
        let mut styles = [plain; 7];
        if let Some(style) = styles.get_mut(1) {
            *style = state_style(*state);
        }
        anstream::println!("{}", line(cells, styles));
    }
}

async fn stats(args: StatsArgs) -> Result<(), Fail> {
    let opened = Opened::open("inbox stats", &args.db).await?;
    let stats = match opened.inbox.stats().await {
        Ok(stats) => stats,
        Err(error) => return Err(opened.failed(&error)),
    };
    opened.close().await;
    if args.json {
        let json = serde_json::to_string_pretty(&StatsView::from(&stats))
            .map_err(|error| failed(&format!("cannot write JSON: {error}"), None))?;
        anstream::println!("{json}");
        return Ok(());
    }
    let counts = State::ALL.map(|state| (state, stats.count(state)));
    let width = counts
        .iter()
        .map(|(_, count)| count.to_string().len())
        .max()
        .unwrap_or(1);
    for (state, count) in counts {
        let style = if count > 0 {
            state_style(state)
        } else {
            anstyle::Style::new()
        };
        anstream::println!("{:<12}{style}{count:>width$}{style:#}", state.as_str());
    }
    match stats.oldest_pending_age {
        Some(age) => anstream::println!(
            "the oldest unfinished delivery has waited {}",
            operate::age(age)
        ),
        None => anstream::println!("no unfinished delivery"),
    }
    if stats.count(State::Dead) > 0 {
        anstream::println!(
            "  {NOTE}hint{NOTE:#}: 'chatbase inbox list --state dead' shows the dead \
             deliveries, 'chatbase inbox retry' requeues them"
        );
    }
    Ok(())
}

async fn retry(args: RetryArgs) -> Result<(), Fail> {
    let opened = Opened::open("inbox retry", &args.db).await?;
    if args.all_dead {
        let requeued = match opened.inbox.requeue_dead().await {
            Ok(n) => n,
            Err(error) => return Err(opened.failed(&error)),
        };
        opened.close().await;
        if requeued == 0 {
            anstream::println!("no dead deliveries to requeue");
        } else {
            anstream::println!(
                "{GOOD}requeued{GOOD:#} {requeued} dead {}: the receivers' workers will \
                 process {} again",
                deliveries(requeued),
                if requeued == 1 { "it" } else { "them" }
            );
        }
        return Ok(());
    }
    let mut ids = args.ids;
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    let mut requeued = Vec::new();
    let mut refused = 0_u64;
    for id in &ids {
        let was_dead = match opened.inbox.requeue(*id).await {
            Ok(was_dead) => was_dead,
            Err(error) => return Err(opened.failed(&error)),
        };
        if was_dead {
            requeued.push(id.to_string());
            continue;
        }
        refused += 1;
        match opened.inbox.get(*id).await {
            Ok(Some(record)) => crate::output::error(
                &format!("delivery {id} is {}, not dead: not requeued", record.state),
                None,
            ),
            Ok(None) => crate::output::error(&format!("no delivery {id} in the inbox"), None),
            Err(error) => return Err(opened.failed(&error)),
        }
    }
    opened.close().await;
    let count = requeued.len() as u64;
    if count > 0 {
        anstream::println!(
            "{GOOD}requeued{GOOD:#} {count} dead {} ({}): the receivers' workers will process \
             {} again",
            deliveries(count),
            requeued.join(", "),
            if count == 1 { "it" } else { "them" }
        );
    }
    if refused > 0 {
        anstream::println!(
            "{BAD}not requeued{BAD:#}: {refused} of {} {}",
            ids.len(),
            deliveries(ids.len() as u64)
        );
        return Err(Fail::Failed);
    }
    Ok(())
}

async fn purge(args: PurgeArgs) -> Result<(), Fail> {
    // Refused before anything is opened: a script must say --yes.
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(missing(
            "inbox purge",
            "purging deletes deliveries for good: confirm with --yes (standard input is not a \
             terminal to ask on)",
        ));
    }
    let state = State::from(args.state);
    let older_than = humantime::format_duration(args.older_than).to_string();
    let opened = Opened::open("inbox purge", &args.db).await?;
    if !args.yes {
        let total = match opened.inbox.stats().await {
            Ok(stats) => stats.count(state),
            Err(error) => return Err(opened.failed(&error)),
        };
        anstream::eprint!(
            "{WARN}Delete{WARN:#} the {state} deliveries of {} that finished more than \
             {older_than} ago ({total} {state} in all)? Their keys go with them: a replay of one \
             would be stored and processed again. [y/N] ",
            opened.url
        );
        if !confirmed().await {
            opened.close().await;
            anstream::eprintln!("aborted: nothing was removed");
            return Err(Fail::Failed);
        }
    }
    let removed = match opened.inbox.purge(state, args.older_than).await {
        Ok(n) => n,
        Err(error) => return Err(opened.failed(&error)),
    };
    opened.close().await;
    anstream::println!(
        "{GOOD}removed{GOOD:#} {removed} {state} {} that finished more than {older_than} ago",
        deliveries(removed)
    );
    Ok(())
}

/// Reads the answer to a question from standard input: yes for `y` or
/// `yes`, in any case.
async fn confirmed() -> bool {
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await;
    matches!(answer, Ok(Ok(line)) if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn deliveries(n: u64) -> &'static str {
    if n == 1 { "delivery" } else { "deliveries" }
}
