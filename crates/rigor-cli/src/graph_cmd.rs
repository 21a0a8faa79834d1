//! Code-intelligence commands: `rigor index`, `rigor localize`, `rigor graph search|show|traverse`,
//! `rigor map` and `rigor localize-eval`. They wire `rigor-graph` (and, for `localize-eval`,
//! `rigor_eval::localization`) to the terminal; the work is done there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rigor_eval::dataset::{Purpose, load_dataset_for};
use rigor_eval::localization::{KS, LocalizationReport, evaluate, summarize};
use rigor_graph::graph::EdgeKind;
use rigor_graph::localize::{Level, Retriever};
use rigor_graph::repomap::repo_map;
use rigor_graph::store::language_counts;
use rigor_graph::tools::{Direction, render_entity, render_search, render_traversal};
use rigor_graph::{CodeIntel, NodeKind};

/// The code-intelligence subcommands (flattened into `rigor`'s command list).
#[derive(Subcommand)]
pub enum GraphCommand {
    /// Build or update the code graph index in .rigor/index (incremental).
    Index(IndexArgs),
    /// Rank the files, modules or functions an issue is about.
    Localize(LocalizeArgs),
    /// Query the code graph: search entities, show one, traverse from one.
    Graph {
        #[command(subcommand)]
        action: GraphAction,
    },
    /// Print a compact repository map (structure and signatures) within a token budget.
    Map(MapArgs),
    /// Measure localization on a SWE-bench-format dataset (Acc@1/3/5/10 per level).
    LocalizeEval(LocalizeEvalArgs),
}

#[derive(Args)]
pub struct RepoArg {
    /// The repository (or a directory inside it).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
}

#[derive(Args)]
pub struct IndexArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// Print the statistics as JSON.
    #[arg(long)]
    json: bool,
    /// Also link the graph and print its node and edge counts.
    #[arg(long)]
    stats: bool,
}

#[derive(Args)]
pub struct LocalizeArgs {
    /// The issue text (or use --issue-file).
    #[arg(required_unless_present = "issue_file")]
    issue: Option<String>,
    /// A file holding the issue text.
    #[arg(long, conflicts_with = "issue")]
    issue_file: Option<PathBuf>,
    #[command(flatten)]
    repo: RepoArg,
    /// How many locations.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// file, module or function.
    #[arg(long, default_value = "file")]
    level: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Run the query this many times and report latency percentiles on stderr (benchmarks).
    #[arg(long, hide = true, default_value_t = 1)]
    repeat: usize,
}

#[derive(Subcommand)]
pub enum GraphAction {
    /// Entities by name, qualified name, path or keywords.
    Search {
        /// Names or keywords.
        query: String,
        #[command(flatten)]
        repo: RepoArg,
        /// Results per keyword.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// The code of an entity (`path/to/file.py:Class.method`, `Class.method`, a file path).
    Show {
        /// Entity id.
        entity: String,
        #[command(flatten)]
        repo: RepoArg,
    },
    /// Walk the graph from an entity.
    Traverse {
        /// Entity id.
        entity: String,
        #[command(flatten)]
        repo: RepoArg,
        /// down (what it uses), up (what uses it), or both.
        #[arg(long, default_value = "down")]
        direction: String,
        /// Hops.
        #[arg(long, default_value_t = 2)]
        depth: usize,
        /// Edge kinds, comma-separated: contains,imports,invokes,inherits (default all).
        #[arg(long)]
        edges: Option<String>,
        /// Node kinds to show, comma-separated: directory,file,class,function,method (default all).
        #[arg(long)]
        kinds: Option<String>,
    },
}

#[derive(Args)]
pub struct MapArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// Token budget of the map.
    #[arg(long, default_value_t = 2000)]
    budget_tokens: usize,
    /// Order files by relevance to this issue text.
    #[arg(long)]
    issue: Option<String>,
}

#[derive(Args)]
pub struct LocalizeEvalArgs {
    /// SWE-bench-format dataset, JSONL or a JSON list (instance_id, repo, base_commit,
    /// problem_statement, and patch or gold_files/gold_modules/gold_functions).
    #[arg(long)]
    dataset: PathBuf,
    /// Directory holding local clones (DIR/owner__name, DIR/owner/name or DIR/name; a plain
    /// directory is used as it is for rows with an empty base_commit).
    #[arg(long)]
    repos: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a code-intelligence command; returns the exit code.
pub fn run(command: GraphCommand) -> Result<u8> {
    match command {
        GraphCommand::Index(args) => index(args),
        GraphCommand::Localize(args) => localize(args),
        GraphCommand::Graph { action } => graph(action),
        GraphCommand::Map(args) => map(args),
        GraphCommand::LocalizeEval(args) => localize_eval(args),
    }
}

/// The top level of the repository `--repo` names; an error when it is not an existing directory
/// (nothing is created for a path that does not exist).
fn existing_root(repo: &RepoArg) -> Result<PathBuf> {
    if !repo.repo.is_dir() {
        let what = if repo.repo.exists() { "is not a directory" } else { "does not exist" };
        bail!("repository {} {what}: give --repo an existing directory", repo.repo.display());
    }
    Ok(super::repo_root(&repo.repo))
}

fn open(repo: &RepoArg) -> Result<(PathBuf, Arc<CodeIntel>, Arc<Retriever>)> {
    let root = existing_root(repo)?;
    let intel = CodeIntel::persistent(&root).context("cannot open the code graph index")?;
    let retriever = intel.refresh().context("cannot update the code graph index")?;
    Ok((root, intel, retriever))
}

fn index(args: IndexArgs) -> Result<u8> {
    let root = existing_root(&args.repo)?;
    let start = Instant::now();
    // The process ends right after this command: freeing the facts of every file one by one
    // would only delay the exit (~0.1 s on Django), so the index is never dropped.
    let mut index =
        std::mem::ManuallyDrop::new(rigor_graph::Index::open(&root).context("cannot open the code graph index")?);
    let stats = index.update().context("cannot update the code graph index")?;
    let total_ms = start.elapsed().as_secs_f64() * 1000.0;
    let link_start = Instant::now();
    let gstats = args.stats.then(|| index.graph().stats());
    let link_ms = link_start.elapsed().as_secs_f64() * 1000.0;
    if args.json {
        let value = serde_json::json!({
            "root": root.display().to_string(),
            "update": stats,
            "graph": gstats,
            "link_ms": gstats.as_ref().map(|_| link_ms),
            "index_bytes": index.disk_bytes(),
            "total_ms": total_ms,
        });
        println!("{value}");
        return Ok(0);
    }
    let langs: Vec<String> = language_counts(&index).iter().map(|(l, n)| format!("{l} {n}")).collect();
    println!(
        "indexed {} files ({}) in {:.0} ms: {} added, {} changed, {} removed",
        stats.files,
        langs.join(", "),
        total_ms,
        stats.added,
        stats.changed,
        stats.removed
    );
    if let Some(gstats) = gstats {
        println!(
            "graph (linked in {link_ms:.0} ms): {} directories, {} files, {} classes, {} functions, {} methods; edges: {} contains, {} imports, \
         {} invokes, {} inherits; {} unresolved references",
            gstats.directories,
            gstats.files,
            gstats.classes,
            gstats.functions,
            gstats.methods,
            gstats.contains,
            gstats.imports,
            gstats.invokes,
            gstats.inherits,
            gstats.unresolved
        );
    }
    println!("index: {} ({} KiB)", rigor_graph::store::index_dir(&root).display(), index.disk_bytes() / 1024);
    Ok(0)
}

fn localize(args: LocalizeArgs) -> Result<u8> {
    let issue = match (&args.issue, &args.issue_file) {
        (Some(text), _) => text.clone(),
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read the issue file {}", file.display()))?
        }
        (None, None) => bail!("give the issue text, or --issue-file FILE"),
    };
    let Some(level) = Level::parse(&args.level) else {
        bail!("unknown level `{}`: use file, module or function", args.level);
    };
    let (_, _, r) = open(&args.repo)?;
    let mut times = Vec::new();
    let mut locations = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let start = Instant::now();
        locations = r.localize(&issue, level, args.top);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    if args.repeat > 1 {
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        eprintln!("localize latency over {} runs: p50 {:.2} ms, p95 {:.2} ms", times.len(), pct(0.5), pct(0.95));
    }
    if args.json {
        println!("{}", serde_json::to_string(&locations)?);
        return Ok(0);
    }
    for (i, l) in locations.iter().enumerate() {
        let span =
            if l.kind == NodeKind::File { String::new() } else { format!(" (lines {}-{})", l.start_line, l.end_line) };
        println!("{:>2}. {:.3}  {}{span}", i + 1, l.score, l.id);
    }
    if locations.is_empty() {
        println!("no candidate locations (is the repository indexed and does it hold supported source files?)");
    }
    Ok(0)
}

fn parse_list<T>(text: Option<&str>, parse: fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for part in text.unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match parse(part) {
            Some(v) => out.push(v),
            None => bail!("unknown {what} `{part}`"),
        }
    }
    Ok(out)
}

fn graph(action: GraphAction) -> Result<u8> {
    match action {
        GraphAction::Search { query, repo, limit } => {
            let (_, _, r) = open(&repo)?;
            print!("{}", render_search(&r, &query, limit));
            Ok(0)
        }
        GraphAction::Show { entity, repo } => {
            let (root, _, r) = open(&repo)?;
            match render_entity(&r, &root, &entity, usize::MAX) {
                Ok(text) => {
                    print!("{text}");
                    Ok(0)
                }
                Err(e) => bail!(for_the_cli(&e)),
            }
        }
        GraphAction::Traverse { entity, repo, direction, depth, edges, kinds } => {
            let Some(dir) = Direction::parse(&direction) else {
                bail!("unknown direction `{direction}`: use down, up or both");
            };
            let mut edges = parse_list(edges.as_deref(), EdgeKind::parse, "edge kind")?;
            if edges.is_empty() {
                edges = EdgeKind::ALL.to_vec();
            }
            let kinds = parse_list(kinds.as_deref(), NodeKind::parse, "node kind")?;
            let (_, _, r) = open(&repo)?;
            match render_traversal(&r, &entity, dir, depth, &edges, &kinds) {
                Ok(text) => {
                    print!("{text}");
                    Ok(0)
                }
                Err(e) => bail!(for_the_cli(&e)),
            }
        }
    }
}

/// A message of the graph tools, which speak to the agent of its `search_entity` tool, with the
/// command a person runs instead.
fn for_the_cli(message: &str) -> String {
    message.replace("search_entity", "`rigor graph search`")
}

fn map(args: MapArgs) -> Result<u8> {
    let (_, _, r) = open(&args.repo)?;
    print!("{}", repo_map(&r, args.issue.as_deref(), args.budget_tokens));
    Ok(0)
}

fn localize_eval(args: LocalizeEvalArgs) -> Result<u8> {
    let (rows, bad_rows) = load_dataset_for(&args.dataset, Purpose::Localization)?;
    for err in &bad_rows {
        eprintln!("rigor: skipping {err}");
    }
    if rows.is_empty() {
        let why = if bad_rows.is_empty() { "" } else { " that can be evaluated" };
        bail!("{} holds no instances{why}", args.dataset.display());
    }
    let mut results = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let r = evaluate(row, &args.repos);
        if !args.json {
            let rank = |x: Option<usize>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            match &r.error {
                Some(e) => eprintln!("[{}/{}] {}: error: {e}", i + 1, rows.len(), r.instance_id),
                None => eprintln!(
                    "[{}/{}] {}: file rank {}, module rank {}, function rank {} ({:.1} ms)",
                    i + 1,
                    rows.len(),
                    r.instance_id,
                    rank(r.file_rank),
                    rank(r.module_rank),
                    rank(r.function_rank),
                    r.query_ms
                ),
            }
        }
        results.push(r);
    }
    let report = summarize(results);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report, &args.dataset);
    }
    Ok(0)
}

fn print_report(report: &LocalizationReport, dataset: &Path) {
    println!("localization on {} ({} instances)", dataset.display(), report.instances.len());
    let header: Vec<String> = KS.iter().map(|k| format!("Acc@{k:<2}")).collect();
    println!("{:<10} {:>4}  {}", "level", "n", header.join("  "));
    for (name, acc) in [("file", &report.file), ("module", &report.module), ("function", &report.function)] {
        let cells: Vec<String> = acc.at.iter().map(|a| format!("{:>6.1}%", a * 100.0)).collect();
        println!("{name:<10} {:>4}  {}", acc.n, cells.join(" "));
    }
}
