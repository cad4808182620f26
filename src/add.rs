//! `tributary add URL`: part of the command line (a module of `main.rs`, not of the library).
//! Finds the feeds ([`tributary::ingest::discover`]), lists them, lets the user choose (a
//! prompt on a terminal, `--pick N` without one), and appends the source to the config
//! ([`tributary::config::edit`]), checked before it is written. A page with no feed gets
//! selectors proposed for its repeated entries instead, chosen the same way, and is added
//! as a `kind = "html"` source.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tributary::config::{self, edit, is_slug};
use tributary::feed::scrape::propose::Proposal;
use tributary::ingest::discover::{COMMON_PATHS, Candidate, DiscoverError, Discovery, discover};
use url::Url;

/// Why nothing was added.
#[derive(Debug, thiserror::Error)]
enum AddError {
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] config::ConfigError),
    #[error("\"{0}\" is not a URL")]
    BadUrl(String),
    #[error("{url} is already in {} as source \"{name}\"", path.display())]
    Known {
        url: String,
        name: String,
        path: PathBuf,
    },
    #[error(
        "--name \"{0}\" is not a valid name: use lower-case letters, digits, '-' and '_' (e.g. \"my-blog\")"
    )]
    BadName(String),
    #[error("--name \"{0}\": a source or feed of that name is already configured")]
    NameTaken(String),
    #[error("--tag \"{0}\" is not a valid tag: use lower-case letters, digits, '-' and '_'")]
    BadTag(String),
    #[error(transparent)]
    Discover(Box<DiscoverError>),
    #[error(
        "no feed found at {url}: it advertises none that can be read, none of {} holds one, \
         and the page has no repeated entries (a list of links with titles) to read by selectors",
        COMMON_PATHS.join(", ")
    )]
    NoFeed { url: Url },
    #[error("{count} {} found: run again with --pick N (1 to {count}) to choose one", what.many())]
    Choose { count: usize, what: What },
    #[error("--pick {pick}: there {}", if *.count == 1 { format!("is only 1 {}", .what.one()) } else { format!("are {} {} (1 to {})", .count, .what.many(), .count) })]
    BadPick {
        pick: usize,
        count: usize,
        what: What,
    },
    #[error("nothing chosen, nothing added")]
    NotChosen,
    #[error("{}: {error}", path.display())]
    Edit {
        path: PathBuf,
        error: edit::EditError,
    },
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// What the user chooses among.
#[derive(Clone, Copy, Debug)]
enum What {
    Feed,
    /// Selectors proposed for a page without a feed.
    Proposal,
}

impl What {
    fn one(self) -> &'static str {
        match self {
            What::Feed => "feed",
            What::Proposal => "proposal",
        }
    }

    fn many(self) -> &'static str {
        match self {
            What::Feed => "feeds",
            What::Proposal => "proposals",
        }
    }

    fn question(self) -> &'static str {
        match self {
            What::Feed => "Add which feed?",
            What::Proposal => "Add the page with which selectors?",
        }
    }
}

/// `tributary add URL [--name N] [--tag T]... [--pick N]`.
pub fn add(
    config_path: &Path,
    url: &str,
    name: Option<&str>,
    tags: &[String],
    pick: Option<usize>,
) -> ExitCode {
    match run(config_path, url, name, tags, pick) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tributary: {}", super::with_causes(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(
    config_path: &Path,
    url: &str,
    name: Option<&str>,
    tags: &[String],
    pick: Option<usize>,
) -> Result<(), AddError> {
    let text = match std::fs::read_to_string(config_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(AddError::Read {
                path: config_path.to_path_buf(),
                error,
            });
        }
    };
    let config = config::parse(&text, config_path)?;
    let url = parse_url(url)?;
    let known = |u: &Url| -> Result<(), AddError> {
        match config.sources.iter().find(|s| &s.url == u) {
            Some(s) => Err(AddError::Known {
                url: u.to_string(),
                name: s.name.clone(),
                path: config_path.to_path_buf(),
            }),
            None => Ok(()),
        }
    };
    known(&url)?;
    let mut taken: HashSet<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    taken.extend(config.feeds.iter().map(|f| f.name.clone()));
    if let Some(n) = name {
        if !is_slug(n) {
            return Err(AddError::BadName(n.to_string()));
        }
        if taken.contains(n) {
            return Err(AddError::NameTaken(n.to_string()));
        }
    }
    if let Some(t) = tags.iter().find(|t| !is_slug(t)) {
        return Err(AddError::BadTag(t.clone()));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AddError::Runtime)?;
    let found = runtime.block_on(discover(&config.fetch, &url));
    runtime.shutdown_timeout(super::ABANDON_AFTER);
    let found = found.map_err(|e| AddError::Discover(Box::new(e)))?;
    print_discovery(&url, &found);
    let page = match (&found.page, found.candidates.is_empty()) {
        (_, false) => None,
        (Some(page), true) => Some(page.clone()),
        (None, true) => return Err(AddError::NoFeed { url }),
    };
    let new = match page {
        None => {
            let chosen = choose(pick, found.candidates.len(), What::Feed)?;
            let Some(feed) = found.candidates.get(chosen) else {
                return Err(AddError::NotChosen);
            };
            known(&feed.url)?;
            edit::NewSource {
                name: Some(match name {
                    Some(n) => n.to_string(),
                    None => edit::unique_slug(
                        feed.title.as_deref().unwrap_or_default(),
                        &feed.url,
                        &taken,
                    ),
                }),
                title: None,
                url: feed.url.to_string(),
                tags: tags.to_vec(),
                select: None,
            }
        }
        Some(page) => {
            print_proposals(&page, &found.proposals);
            let chosen = choose(pick, found.proposals.len(), What::Proposal)?;
            let Some(proposal) = found.proposals.get(chosen) else {
                return Err(AddError::NotChosen);
            };
            known(&page)?;
            edit::NewSource {
                name: Some(match name {
                    Some(n) => n.to_string(),
                    None => edit::unique_slug(
                        proposal.page_title.as_deref().unwrap_or_default(),
                        &page,
                        &taken,
                    ),
                }),
                title: None,
                url: page.to_string(),
                tags: tags.to_vec(),
                select: Some(proposal.selectors.clone()),
            }
        }
    };
    let name = new.name.clone().unwrap_or_default();
    let added_url = new.url.clone();
    let is_page = new.select.is_some();
    let (new_text, report) = edit::add_sources(&text, &[new]).map_err(|error| AddError::Edit {
        path: config_path.to_path_buf(),
        error,
    })?;
    if report.added.is_empty() {
        // Same URL in another spelling the validated config did not show.
        return Err(AddError::Known {
            url: added_url,
            name: "(see the file)".into(),
            path: config_path.to_path_buf(),
        });
    }
    // Never write a config that would not load.
    config::parse(&new_text, config_path)?;
    super::write_config(config_path, &new_text).map_err(|error| AddError::Write {
        path: config_path.to_path_buf(),
        error,
    })?;
    let shown = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    println!("added {name}: {added_url} to {}", shown.display());
    if is_page {
        println!(
            "It is read by the selectors in its [source.select] table: `tributary preview {name}` \
             prints the entries they give now; edit them there to refine what is read."
        );
    }
    println!(
        "A running daemon reloads {} by itself and starts polling {name}; otherwise it is \
         polled when you next run `tributary run` or `tributary once`.",
        shown.display()
    );
    Ok(())
}

/// `example.org/blog` is taken as `https://example.org/blog`.
fn parse_url(url: &str) -> Result<Url, AddError> {
    let url = url.trim();
    match Url::parse(url) {
        Ok(u) => Ok(u),
        Err(url::ParseError::RelativeUrlWithoutBase) if !url.is_empty() => {
            Url::parse(&format!("https://{url}")).map_err(|_| AddError::BadUrl(url.to_string()))
        }
        Err(_) => Err(AddError::BadUrl(url.to_string())),
    }
}

fn print_discovery(url: &Url, found: &Discovery) {
    match found.candidates.len() {
        0 => {}
        1 if !found.was_page => println!("{url} is a feed:"),
        1 => println!("1 feed found at {url}:"),
        n => println!("{n} feeds found at {url}:"),
    }
    for (i, c) in found.candidates.iter().enumerate() {
        print_candidate(i + 1, c);
    }
    for (link, why) in &found.rejected {
        println!("  not taken: {link} ({})", clean(why));
    }
}

/// The selectors proposed for `page`, each with the first entries it gives.
fn print_proposals(page: &Url, proposals: &[Proposal]) {
    println!(
        "no feed found at {page}; its repeated entries can be read by selectors instead \
         (kind = \"html\"):"
    );
    for (i, p) in proposals.iter().enumerate() {
        let mut parts = vec![format!("items = {}", quoted(&p.selectors.items))];
        for (field, pick) in p.selectors.fields() {
            if let Some(pick) = pick {
                parts.push(format!("{} = {}", field.name(), quoted(&pick.to_string())));
            }
        }
        println!("  {}. {}", i + 1, parts.join(", "));
        println!(
            "     {}",
            match p.entries {
                1 => "1 entry".to_string(),
                n => format!("{n} entries"),
            }
        );
        for e in &p.first {
            let date = e
                .date
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "          ".into());
            println!(
                "       {date}  {}  {}",
                clean(e.title.as_deref().unwrap_or("(untitled)")),
                clean(e.link.as_deref().unwrap_or("(no link)"))
            );
        }
    }
}

/// A selector as a TOML string, as it is written in the config.
fn quoted(s: &str) -> String {
    serde_json::to_string(&clean(s)).unwrap_or_default()
}

/// Text from the network, without control characters (no terminal escapes).
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

fn print_candidate(n: usize, c: &Candidate) {
    println!(
        "  {n}. {}",
        clean(c.title.as_deref().unwrap_or("(untitled feed)"))
    );
    println!("     {}", c.url);
    let mut about = match c.entries {
        1 => "1 entry".to_string(),
        n => format!("{n} entries"),
    };
    if let Some(site) = &c.site {
        about = format!("{}, site {}", about, clean(site));
    }
    println!("     {about}");
    for (title, date) in &c.newest {
        let date = date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "          ".into());
        println!("       {date}  {}", clean(title));
    }
}

/// Which of `count` to take (0-based): `--pick`, the only one, or the answer on a terminal.
fn choose(pick: Option<usize>, count: usize, what: What) -> Result<usize, AddError> {
    match (pick, count) {
        (_, 0) => Err(AddError::NotChosen),
        (Some(p), _) if p == 0 || p > count => Err(AddError::BadPick {
            pick: p,
            count,
            what,
        }),
        (Some(p), _) => Ok(p - 1),
        (None, 1) => Ok(0),
        (None, _) if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            prompt(count, what)
        }
        (None, _) => Err(AddError::Choose { count, what }),
    }
}

/// Asks which of `count` to add, until a number in range or an empty line (none).
fn prompt(count: usize, what: What) -> Result<usize, AddError> {
    let stdin = std::io::stdin();
    loop {
        print!("{} [1-{count}, Enter for none] ", what.question());
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match stdin.lock().take(256).read_line(&mut line) {
            Ok(0) | Err(_) => return Err(AddError::NotChosen),
            Ok(_) => {}
        }
        let line = line.trim();
        if line.is_empty() {
            return Err(AddError::NotChosen);
        }
        match line.parse::<usize>() {
            Ok(p) if (1..=count).contains(&p) => return Ok(p - 1),
            _ => println!("Type a number from 1 to {count}."),
        }
    }
}
