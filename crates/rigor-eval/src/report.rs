//! Run summaries and reports: the official `<model>.<run_id>.json`, Markdown, and a
//! self-contained HTML page (inline CSS and SVG charts, a sortable instance table linking to each
//! instance's logs; no scripts or styles fetched from anywhere).
//!
//! The summary's official fields follow SWE-bench's `make_run_report`: graded instances are
//! `completed` (resolved or unresolved; a test timeout counts as unresolved), an empty prediction
//! is `empty_patch`, and a patch that does not apply, an environment that cannot be built or any
//! other failure is an `error`. Rigor's own figures (per-status counts, rates, time, tokens, cost,
//! α-value, SWT metrics) sit beside them. This module reads results; it evaluates nothing.
//!
//! When rigor's agent proved its patches, [`ProofSummary`] holds what shows whether a proof
//! means something, each figure against the official grading:
//! - **precision of `proven`**: resolved instances among the proven ones;
//! - **abstention rate**: abstained instances among all instances;
//! - **abstention precision**: abstained instances that the official grading would not have
//!   resolved among the abstained ones. An abstained instance "would not have resolved" when it
//!   has no resolving patch: whatever patch the agent left (an output bouncer's withheld patch is
//!   graded too) was graded `unresolved` (a test timeout included), did not apply, or was empty;
//! - cost and time per instance, per proof status.
//!
//! Instances the grading could not judge (`env_failed`, `error`) count in the rates' denominators
//! but are left out of both precisions, which would otherwise count them as unresolved.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rigor_core::fsutil::write_atomic;
use serde::{Deserialize, Serialize};

use rigor_proof::proof::ProofStatus;

use crate::record::{InstanceResult, InstanceStatus, SwtResult, read_result};

/// The run summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Instances in the dataset selection.
    pub total_instances: usize,
    /// Instances with a prediction (all, in agent mode).
    pub submitted_instances: usize,
    /// Graded instances.
    pub completed_instances: usize,
    /// Resolved instances.
    pub resolved_instances: usize,
    /// Graded, not resolved.
    pub unresolved_instances: usize,
    /// Empty predictions.
    pub empty_patch_instances: usize,
    /// Failed evaluations, plus the rows of the dataset or the predictions that could not be read
    /// (`rigor.invalid_rows`; an unreadable prediction of a known instance is that instance's error).
    pub error_instances: usize,
    /// Ids of graded instances.
    pub completed_ids: Vec<String>,
    /// Ids not evaluated (interrupted).
    pub incomplete_ids: Vec<String>,
    /// Ids of empty predictions.
    pub empty_patch_ids: Vec<String>,
    /// Ids with a prediction.
    pub submitted_ids: Vec<String>,
    /// Ids resolved.
    pub resolved_ids: Vec<String>,
    /// Ids graded and not resolved.
    pub unresolved_ids: Vec<String>,
    /// Ids that failed.
    pub error_ids: Vec<String>,
    /// Official schema version.
    pub schema_version: u32,
    /// rigor's additional figures.
    pub rigor: Extras,
}

/// rigor's figures beside the official ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Extras {
    /// Run id.
    pub run_id: String,
    /// Model.
    pub model: String,
    /// Resolved / total.
    pub resolved_rate: f64,
    /// Count per rigor status.
    pub statuses: BTreeMap<String, usize>,
    /// Resolved / total per repository.
    pub per_repo: BTreeMap<String, (usize, usize)>,
    /// Summed wall time of instances, seconds.
    pub total_secs: f64,
    /// Summed test time, seconds.
    pub test_secs: f64,
    /// Mean harness overhead per evaluated instance (beyond tests, env builds and agents), seconds.
    pub mean_overhead_secs: f64,
    /// Environments built during the run.
    pub envs_built: usize,
    /// Agent tokens in / out and cost.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// GitTaskBench α-value: mean over instances with a task value of (resolved × value − cost).
    pub alpha_usd: Option<f64>,
    /// SWT: applicability, success rate, F→× rate, mean change coverage.
    pub swt: Option<SwtSummary>,
    /// Rows of the dataset or the predictions that could not be read (file, row, what is wrong),
    /// counted in `error_instances`.
    #[serde(default)]
    pub invalid_rows: Vec<String>,
    /// The proof against the official grading (present when any instance has a proof status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofSummary>,
}

/// `count` of `of` instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Fraction {
    /// Instances counted.
    pub count: usize,
    /// Instances they are counted among.
    pub of: usize,
    /// `count / of` (`None` when `of` is 0).
    pub rate: Option<f64>,
}

impl Fraction {
    fn new(count: usize, of: usize) -> Self {
        Self { count, of, rate: (of > 0).then(|| count as f64 / of as f64) }
    }
}

impl std::fmt::Display for Fraction {
    /// `3/4 (75.0%)`, or `0/0 (n/a)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.rate.map(pct).unwrap_or_else(|| "n/a".into());
        write!(f, "{}/{} ({rate})", self.count, self.of)
    }
}

/// How far rigor's proof statuses can be trusted, against the official grading (see the module
/// documentation for the definitions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProofSummary {
    /// Resolved among proven instances (the grading could judge).
    pub precision_of_proven: Fraction,
    /// Abstained among all instances.
    pub abstention_rate: Fraction,
    /// Abstained instances without a resolving patch, among abstained ones (the grading could
    /// judge).
    pub abstention_precision: Fraction,
    /// Figures per proof status: `proven`, `unproven`, `abstained`, and `none` for agent runs
    /// that ended otherwise (a budget, an error).
    pub per_status: BTreeMap<String, StatusFigures>,
}

/// Instances of one proof status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusFigures {
    /// Instances.
    pub instances: usize,
    /// Of which resolved.
    pub resolved: usize,
    /// Mean agent cost, USD.
    pub cost_usd_per_instance: f64,
    /// Mean agent wall time (the proof included), seconds.
    pub agent_secs_per_instance: f64,
    /// Mean wall time of the whole instance (grading included), seconds.
    pub total_secs_per_instance: f64,
}

/// The proof figures of the finished instances `results` among `total` instances (`None`: no
/// instance has a proof status).
fn proof_summary(results: &[&InstanceResult], total: usize) -> Option<ProofSummary> {
    let status_of = |r: &InstanceResult| r.agent.as_ref().and_then(|a| a.proof_status);
    if !results.iter().any(|r| status_of(r).is_some()) {
        return None;
    }
    let judged = |r: &InstanceResult| {
        !matches!(r.status, InstanceStatus::EnvFailed | InstanceStatus::InfraFailure | InstanceStatus::Error)
    };
    let resolved = |r: &InstanceResult| r.status == InstanceStatus::Resolved;
    let with = |status: ProofStatus| -> Vec<&InstanceResult> {
        results.iter().copied().filter(|r| status_of(r) == Some(status)).collect()
    };
    let (proven, abstained) = (with(ProofStatus::Proven), with(ProofStatus::Abstained));
    let proven_judged: Vec<_> = proven.iter().filter(|r| judged(r)).collect();
    let abstained_judged: Vec<_> = abstained.iter().filter(|r| judged(r)).collect();
    let mut per_status: BTreeMap<String, (StatusFigures, f64, f64, f64)> = BTreeMap::new();
    for r in results.iter().filter(|r| r.agent.is_some()) {
        let key = status_of(r).map_or("none", ProofStatus::as_str);
        let (figures, cost, agent, total) = per_status.entry(key.to_string()).or_default();
        figures.instances += 1;
        figures.resolved += usize::from(resolved(r));
        *cost += r.agent.as_ref().map_or(0.0, |a| a.cost_usd);
        *agent += r.timings.agent;
        *total += r.timings.total;
    }
    let per_status = per_status
        .into_iter()
        .map(|(key, (mut figures, cost, agent, total))| {
            let n = figures.instances as f64;
            figures.cost_usd_per_instance = cost / n;
            figures.agent_secs_per_instance = agent / n;
            figures.total_secs_per_instance = total / n;
            (key, figures)
        })
        .collect();
    Some(ProofSummary {
        precision_of_proven: Fraction::new(proven_judged.iter().filter(|r| resolved(r)).count(), proven_judged.len()),
        abstention_rate: Fraction::new(abstained.len(), total),
        abstention_precision: Fraction::new(
            abstained_judged.iter().filter(|r| !resolved(r)).count(),
            abstained_judged.len(),
        ),
        per_status,
    })
}

/// SWT-bench aggregate figures (fractions of instances).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SwtSummary {
    /// W: the generated tests apply.
    pub applicability: f64,
    /// S: success (≥1 F→P, nothing failing after).
    pub success_rate: f64,
    /// Instances with at least one test failing before the fix.
    pub fail_to_any_rate: f64,
    /// Instances with at least one F→P test.
    pub fail_to_pass_rate: f64,
    /// Instances whose tests all pass before and after (P→P only).
    pub pass_to_pass_rate: f64,
    /// Mean ΔC over measured instances.
    pub mean_change_coverage: Option<f64>,
}

/// Builds the summary of `results` for `ids` (the selection) of which `submitted` had predictions.
pub fn summarize(
    run_id: &str,
    model: &str,
    ids: &[String],
    submitted: &[String],
    results: &[InstanceResult],
    task_values: &BTreeMap<String, f64>,
) -> Summary {
    let by_id: BTreeMap<&str, &InstanceResult> = results.iter().map(|r| (r.instance_id.as_str(), r)).collect();
    let mut s = Summary { total_instances: ids.len(), schema_version: 2, ..Default::default() };
    s.submitted_ids = submitted.to_vec();
    s.rigor.run_id = run_id.into();
    s.rigor.model = model.into();
    let mut overhead = (0.0, 0usize);
    let mut alpha = (0.0, 0usize);
    let mut swt_rows = Vec::new();
    let mut finished = Vec::new();
    for id in ids {
        let Some(r) = by_id.get(id.as_str()) else {
            s.incomplete_ids.push(id.clone());
            continue;
        };
        if r.status != InstanceStatus::Interrupted {
            finished.push(*r);
        }
        *s.rigor.statuses.entry(r.status.as_str().into()).or_default() += 1;
        let entry = s.rigor.per_repo.entry(r.repo.clone()).or_default();
        entry.1 += 1;
        match r.status {
            InstanceStatus::Resolved => {
                entry.0 += 1;
                s.completed_ids.push(id.clone());
                s.resolved_ids.push(id.clone());
            }
            InstanceStatus::Unresolved | InstanceStatus::Timeout => {
                s.completed_ids.push(id.clone());
                s.unresolved_ids.push(id.clone());
            }
            InstanceStatus::EmptyPatch => s.empty_patch_ids.push(id.clone()),
            InstanceStatus::PatchFailed
            | InstanceStatus::EnvFailed
            | InstanceStatus::InfraFailure
            | InstanceStatus::Error => s.error_ids.push(id.clone()),
            InstanceStatus::Interrupted => s.incomplete_ids.push(id.clone()),
        }
        s.rigor.total_secs += r.timings.total;
        s.rigor.test_secs += r.timings.tests;
        if r.timings.tests > 0.0 {
            overhead.0 += r.timings.overhead();
            overhead.1 += 1;
        }
        if r.env_built {
            s.rigor.envs_built += 1;
        }
        let cost = r.agent.as_ref().map(|a| a.cost_usd).unwrap_or(0.0);
        if let Some(a) = &r.agent {
            s.rigor.input_tokens += a.input_tokens;
            s.rigor.output_tokens += a.output_tokens;
            s.rigor.cost_usd += a.cost_usd;
        }
        if let Some(value) = task_values.get(id) {
            let success = if r.status == InstanceStatus::Resolved { 1.0 } else { 0.0 };
            alpha.0 += success * value - cost;
            alpha.1 += 1;
        }
        if let Some(swt) = &r.swt {
            swt_rows.push(swt.clone());
        }
    }
    s.completed_instances = s.completed_ids.len();
    s.resolved_instances = s.resolved_ids.len();
    s.unresolved_instances = s.unresolved_ids.len();
    s.empty_patch_instances = s.empty_patch_ids.len();
    s.error_instances = s.error_ids.len();
    s.rigor.resolved_rate = if ids.is_empty() { 0.0 } else { s.resolved_instances as f64 / ids.len() as f64 };
    s.rigor.mean_overhead_secs = if overhead.1 == 0 { 0.0 } else { overhead.0 / overhead.1 as f64 };
    s.rigor.alpha_usd = (alpha.1 > 0).then(|| alpha.0 / alpha.1 as f64);
    s.rigor.proof = proof_summary(&finished, ids.len());
    if !swt_rows.is_empty() {
        let n = swt_rows.len() as f64;
        let frac = |f: &dyn Fn(&SwtResult) -> bool| swt_rows.iter().filter(|r| f(r)).count() as f64 / n;
        let covs: Vec<f64> = swt_rows.iter().filter_map(|r| r.change_coverage).collect();
        s.rigor.swt = Some(SwtSummary {
            applicability: frac(&|r| r.applied),
            success_rate: frac(&|r| r.success),
            fail_to_any_rate: frac(&|r| !r.fail_to_pass.is_empty() || !r.fail_to_fail.is_empty()),
            fail_to_pass_rate: frac(&|r| !r.fail_to_pass.is_empty()),
            pass_to_pass_rate: frac(&|r| {
                r.applied && r.fail_to_pass.is_empty() && r.fail_to_fail.is_empty() && r.pass_to_fail.is_empty()
            }),
            mean_change_coverage: (!covs.is_empty()).then(|| covs.iter().sum::<f64>() / covs.len() as f64),
        });
    }
    s
}

impl Summary {
    /// Records rows of the dataset or the predictions that could not be read: each counts as an
    /// error.
    pub fn add_invalid_rows(&mut self, rows: impl IntoIterator<Item = String>) {
        let before = self.rigor.invalid_rows.len();
        self.rigor.invalid_rows.extend(rows);
        self.error_instances += self.rigor.invalid_rows.len() - before;
    }

    /// Whether the run evaluated nothing: no instance at all, or none graded and something failed
    /// (every row invalid, a missing clone, every instance in error). Predictions that are all
    /// empty patches are an evaluated outcome, not a failure.
    pub fn nothing_evaluated(&self) -> bool {
        self.total_instances == 0 || (self.completed_instances == 0 && self.error_instances > 0)
    }
}

/// Writes the summary as `<output>/<model>.<run_id>.json` and next to the run's logs.
pub fn write_summary(output: &Path, run_dir: &Path, summary: &Summary) -> std::io::Result<PathBuf> {
    let text = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    let name = format!("{}.{}.json", crate::dataset::model_dir_name(&summary.rigor.model), summary.rigor.run_id);
    let path = output.join(&name);
    write_atomic(&path, text.as_bytes())?;
    std::fs::create_dir_all(run_dir)?;
    write_atomic(&run_dir.join("summary.json"), text.as_bytes())?;
    Ok(path)
}

/// A run read back from disk for `rigor report`.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    /// `logs/run_evaluation/<run_id>`.
    pub dir: PathBuf,
    /// Its summary.
    pub summary: Summary,
    /// Every instance result found.
    pub results: Vec<InstanceResult>,
}

/// Loads run `run_id` under `output` (its `summary.json` and every instance's `rigor.json`).
pub fn load_run(output: &Path, run_id: &str) -> Result<LoadedRun, String> {
    let dir = output.join("logs").join("run_evaluation").join(run_id);
    let text = std::fs::read_to_string(dir.join("summary.json")).map_err(|e| {
        format!("no run {run_id} under {}: {e} (run `rigor eval --run-id {run_id}` there first)", output.display())
    })?;
    let summary: Summary =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.join("summary.json").display()))?;
    let mut results = Vec::new();
    for model in std::fs::read_dir(&dir).map_err(|e| e.to_string())?.flatten().filter(|e| e.path().is_dir()) {
        for inst in std::fs::read_dir(model.path()).map_err(|e| e.to_string())?.flatten() {
            if let Some(r) = read_result(&inst.path()) {
                results.push(r);
            }
        }
    }
    results.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    Ok(LoadedRun { dir, summary, results })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The report as Markdown.
pub fn markdown(run: &LoadedRun) -> String {
    let s = &run.summary;
    let mut md = String::new();
    let _ = writeln!(md, "# rigor eval: {} ({})\n", s.rigor.run_id, s.rigor.model);
    let _ = writeln!(
        md,
        "**Resolved {} / {} ({})** · submitted {} · completed {} · empty patch {} · errors {} · incomplete {}\n",
        s.resolved_instances,
        s.total_instances,
        pct(s.rigor.resolved_rate),
        s.submitted_instances.max(s.submitted_ids.len()),
        s.completed_instances,
        s.empty_patch_instances,
        s.error_instances,
        s.incomplete_ids.len()
    );
    let _ = writeln!(
        md,
        "Time {:.0}s (tests {:.0}s, mean harness overhead {:.2}s/instance, {} environment(s) built) · tokens {} in / {} out · cost ${:.4}{}\n",
        s.rigor.total_secs,
        s.rigor.test_secs,
        s.rigor.mean_overhead_secs,
        s.rigor.envs_built,
        s.rigor.input_tokens,
        s.rigor.output_tokens,
        s.rigor.cost_usd,
        s.rigor.alpha_usd.map(|a| format!(" · α ${a:.2}")).unwrap_or_default()
    );
    if let Some(swt) = &s.rigor.swt {
        let _ = writeln!(
            md,
            "SWT: applicability {} · success {} · F→× {} · F→P {} · P→P {} · ΔC {}\n",
            pct(swt.applicability),
            pct(swt.success_rate),
            pct(swt.fail_to_any_rate),
            pct(swt.fail_to_pass_rate),
            pct(swt.pass_to_pass_rate),
            swt.mean_change_coverage.map(pct).unwrap_or_else(|| "n/a".into())
        );
    }
    if let Some(proof) = &s.rigor.proof {
        let _ = writeln!(
            md,
            "## Proof against the official grading\n\nResolved {} · precision of proven {} · abstention rate {} · abstention precision {}\n",
            Fraction::new(s.resolved_instances, s.total_instances),
            proof.precision_of_proven,
            proof.abstention_rate,
            proof.abstention_precision
        );
        let _ = writeln!(
            md,
            "| proof status | instances | resolved | cost/instance | agent s/instance | total s/instance |\n| --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for (status, f) in &proof.per_status {
            let _ = writeln!(
                md,
                "| {status} | {} | {} | ${:.4} | {:.1} | {:.1} |",
                f.instances, f.resolved, f.cost_usd_per_instance, f.agent_secs_per_instance, f.total_secs_per_instance
            );
        }
        let _ = writeln!(md, "\n{PROOF_FIGURES}\n");
    }
    if !s.rigor.invalid_rows.is_empty() {
        let _ = writeln!(md, "## Invalid rows (counted as errors)\n");
        for row in &s.rigor.invalid_rows {
            let _ = writeln!(md, "- {}", row.replace('\n', " "));
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "## Per repository\n\n| repository | resolved | total | rate |\n| --- | ---: | ---: | ---: |");
    for (repo, (resolved, total)) in &s.rigor.per_repo {
        let _ = writeln!(md, "| {repo} | {resolved} | {total} | {} |", pct(*resolved as f64 / (*total).max(1) as f64));
    }
    let proved = s.rigor.proof.is_some();
    let (proof_head, proof_rule) = if proved { (" proof |", " --- |") } else { ("", "") };
    let _ = writeln!(
        md,
        "\n## Instances\n\n| instance | status |{proof_head} F2P | P2P | tests s | total s | note |\n| --- | --- |{proof_rule} ---: | ---: | ---: | ---: | --- |"
    );
    for r in &run.results {
        let rate = |x: Option<f64>| x.map(pct).unwrap_or_else(|| "–".into());
        let proof = if proved { format!(" {} |", proof_status(r)) } else { String::new() };
        let _ = writeln!(
            md,
            "| {} | {} |{proof} {} | {} | {:.1} | {:.1} | {} |",
            r.instance_id,
            r.status.as_str(),
            rate(r.f2p_rate),
            rate(r.p2p_rate),
            r.timings.tests,
            r.timings.total,
            r.message.replace('|', "\\|").lines().next().unwrap_or_default()
        );
    }
    md
}

/// What the proof figures mean, under their table.
const PROOF_FIGURES: &str = "Precision of proven: official resolved among proven instances. Abstention precision: \
abstained instances with no resolving patch (graded unresolved, a patch that did not apply, or none) among abstained \
ones. Instances the grading could not judge (env_failed, error) are left out of both precisions.";

/// An instance's proof status as shown (`–`: none).
fn proof_status(r: &InstanceResult) -> &'static str {
    r.agent.as_ref().and_then(|a| a.proof_status).map_or("–", ProofStatus::as_str)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A histogram of `values` as an inline SVG bar chart (no inline styles: it passes a strict
/// Content-Security-Policy; `label` is written as it is, so it must be plain text).
pub fn histogram_svg(values: &[f64], label: &str) -> String {
    if values.is_empty() {
        return format!("<p>No {label} data.</p>");
    }
    let max = values.iter().cloned().fold(0.0_f64, f64::max).max(1e-9);
    let bins = 10usize;
    let mut counts = vec![0usize; bins];
    for v in values {
        let i = ((v / max) * bins as f64).floor() as usize;
        counts[i.min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::from("<svg width=\"420\" height=\"150\" role=\"img\">");
    for (i, c) in counts.iter().enumerate() {
        let h = (*c as f64 / top as f64) * 110.0;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"36\" height=\"{h:.1}\" fill=\"#4a7bd0\"><title>{:.1}–{:.1}: {c}</title></rect>",
            10 + i * 40,
            120.0 - h,
            max * i as f64 / bins as f64,
            max * (i + 1) as f64 / bins as f64
        );
    }
    let _ = write!(
        svg,
        "<text x=\"10\" y=\"140\" font-size=\"11\">0</text><text x=\"360\" y=\"140\" font-size=\"11\">{max:.1} {label}</text></svg>"
    );
    svg
}

/// The report as one self-contained HTML page.
pub fn html(run: &LoadedRun) -> String {
    let s = &run.summary;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>rigor eval {}</title><style>\
body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}}\
th{{cursor:pointer;background:#f3f3f3}}.resolved{{color:#1a7f37}}.unresolved,.timeout{{color:#b35900}}.error,.patch_failed,.env_failed,.unproven{{color:#c62828}}.proven{{color:#1a7f37}}.abstained{{color:#666}}\
.bar{{background:#e6e6e6;width:300px;height:14px;display:inline-block}}.fill{{background:#1a7f37;height:14px}}</style></head><body>",
        esc(&s.rigor.run_id)
    );
    let _ = write!(
        h,
        "<h1>rigor eval: {} <small>({})</small></h1><p><b>Resolved {} / {} ({})</b> · completed {} · empty patch {} · errors {} · incomplete {} · time {:.0}s (tests {:.0}s; mean overhead {:.2}s/instance) · cost ${:.4}{}</p>",
        esc(&s.rigor.run_id),
        esc(&s.rigor.model),
        s.resolved_instances,
        s.total_instances,
        pct(s.rigor.resolved_rate),
        s.completed_instances,
        s.empty_patch_instances,
        s.error_instances,
        s.incomplete_ids.len(),
        s.rigor.total_secs,
        s.rigor.test_secs,
        s.rigor.mean_overhead_secs,
        s.rigor.cost_usd,
        s.rigor.alpha_usd.map(|a| format!(" · α ${a:.2}")).unwrap_or_default()
    );
    if let Some(swt) = &s.rigor.swt {
        let _ = write!(
            h,
            "<p>SWT: applicability {} · success {} · F→× {} · F→P {} · P→P {} · ΔC {}</p>",
            pct(swt.applicability),
            pct(swt.success_rate),
            pct(swt.fail_to_any_rate),
            pct(swt.fail_to_pass_rate),
            pct(swt.pass_to_pass_rate),
            swt.mean_change_coverage.map(pct).unwrap_or_else(|| "n/a".into())
        );
    }
    if let Some(proof) = &s.rigor.proof {
        let _ = write!(
            h,
            "<h2>Proof against the official grading</h2><p>Resolved {} · precision of proven <b>{}</b> · abstention rate {} · abstention precision {}</p>\
<table><thead><tr><th>proof status</th><th>instances</th><th>resolved</th><th>cost/instance</th><th>agent s/instance</th><th>total s/instance</th></tr></thead><tbody>",
            Fraction::new(s.resolved_instances, s.total_instances),
            proof.precision_of_proven,
            proof.abstention_rate,
            proof.abstention_precision
        );
        for (status, f) in &proof.per_status {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>${:.4}</td><td>{:.1}</td><td>{:.1}</td></tr>",
                esc(status),
                f.instances,
                f.resolved,
                f.cost_usd_per_instance,
                f.agent_secs_per_instance,
                f.total_secs_per_instance
            );
        }
        let _ = write!(h, "</tbody></table><p><small>{}</small></p>", esc(PROOF_FIGURES));
    }
    h.push_str("<h2>Resolved per repository</h2><table>");
    for (repo, (resolved, total)) in &s.rigor.per_repo {
        let rate = *resolved as f64 / (*total).max(1) as f64;
        let _ = write!(
            h,
            "<tr><td>{}</td><td><span class=\"bar\"><div class=\"fill\" style=\"width:{:.0}%\"></div></span></td><td>{resolved}/{total} ({})</td></tr>",
            esc(repo),
            rate * 100.0,
            pct(rate)
        );
    }
    h.push_str("</table><h2>Distributions</h2><div style=\"display:flex;gap:2em;flex-wrap:wrap\">");
    let totals: Vec<f64> = run.results.iter().map(|r| r.timings.total).collect();
    let costs: Vec<f64> = run.results.iter().filter_map(|r| r.agent.as_ref().map(|a| a.cost_usd)).collect();
    let _ = write!(h, "<div><h3>Wall time per instance (s)</h3>{}</div>", histogram_svg(&totals, "s"));
    let _ = write!(h, "<div><h3>Cost per instance (USD)</h3>{}</div></div>", histogram_svg(&costs, "USD"));
    let proof_head = if s.rigor.proof.is_some() { "<th>proof</th>" } else { "" };
    let _ = write!(
        h,
        "<h2>Instances</h2><table id=\"t\"><thead><tr><th>instance</th><th>repo</th><th>status</th>{proof_head}<th>F2P</th><th>P2P</th><th>tests s</th><th>total s</th><th>tokens</th><th>cost</th><th>logs</th><th>note</th></tr></thead><tbody>"
    );
    for r in &run.results {
        let rel = format!("{}/{}", crate::dataset::model_dir_name(&r.model), r.instance_id);
        let rate = |x: Option<f64>| x.map(pct).unwrap_or_else(|| "–".into());
        let tokens = r.agent.as_ref().map(|a| (a.input_tokens + a.output_tokens).to_string()).unwrap_or_default();
        let cost = r.agent.as_ref().map(|a| format!("{:.4}", a.cost_usd)).unwrap_or_default();
        let (proof, proof_link) = match (proof_head.is_empty(), proof_status(r)) {
            (true, _) => (String::new(), String::new()),
            (false, "–") => ("<td>–</td>".to_string(), String::new()),
            (false, p) => {
                (format!("<td class=\"{p}\">{p}</td>"), format!(" <a href=\"{}/proof.json\">proof</a>", esc(&rel)))
            }
        };
        let _ = write!(
            h,
            "<tr><td>{id}</td><td>{repo}</td><td class=\"{st}\">{st}</td>{proof}<td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{tokens}</td><td>{cost}</td>\
<td><a href=\"{rel}/test_output.txt\">tests</a> <a href=\"{rel}/run_instance.log\">run</a> <a href=\"{rel}/report.json\">report</a>{proof_link}</td><td>{}</td></tr>",
            rate(r.f2p_rate),
            rate(r.p2p_rate),
            r.timings.tests,
            r.timings.total,
            esc(r.message.lines().next().unwrap_or_default()),
            id = esc(&r.instance_id),
            repo = esc(&r.repo),
            st = r.status.as_str(),
            rel = esc(&rel),
        );
    }
    h.push_str("</tbody></table><script>\
document.querySelectorAll('#t th').forEach((th,i)=>th.onclick=()=>{const b=th.closest('table').tBodies[0];const rows=[...b.rows];\
const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';rows.sort((x,y)=>{const a=x.cells[i].innerText,c=y.cells[i].innerText;\
const n=parseFloat(a)-parseFloat(c);return (isNaN(n)?a.localeCompare(c):n)*(asc?1:-1)});rows.forEach(r=>b.appendChild(r))});\
</script></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn result(id: &str, status: InstanceStatus) -> InstanceResult {
        serde_json::from_value(serde_json::json!({
            "instance_id": id, "repo": "a/b", "model": "m", "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn summary_buckets_follow_the_official_report() {
        let ids: Vec<String> = ["r", "u", "e", "p", "t", "x"].iter().map(|s| s.to_string()).collect();
        let results = vec![
            result("r", InstanceStatus::Resolved),
            result("u", InstanceStatus::Unresolved),
            result("e", InstanceStatus::EmptyPatch),
            result("p", InstanceStatus::PatchFailed),
            result("t", InstanceStatus::Timeout),
        ];
        let values = BTreeMap::from([("r".to_string(), 100.0), ("u".to_string(), 50.0)]);
        let s = summarize("run", "m", &ids, &ids, &results, &values);
        assert_eq!(s.resolved_ids, vec!["r"]);
        assert_eq!(s.unresolved_ids, vec!["u", "t"]);
        assert_eq!(s.completed_instances, 3);
        assert_eq!(s.error_ids, vec!["p"]);
        assert_eq!(s.empty_patch_ids, vec!["e"]);
        assert_eq!(s.incomplete_ids, vec!["x"]);
        assert_eq!(s.rigor.alpha_usd, Some(50.0));
        let run = LoadedRun { dir: PathBuf::from("."), summary: s, results };
        assert!(markdown(&run).contains("Resolved 1 / 6"));
        let page = html(&run);
        assert!(page.contains("<svg") && page.contains("a/b") && !page.contains("http"));
        assert!(!run.summary.nothing_evaluated());
    }

    /// A result of rigor's agent: `proof` is its proof status (`None`: the run ended otherwise).
    fn proved(id: &str, status: InstanceStatus, proof: Option<&str>, cost: f64, agent_secs: f64) -> InstanceResult {
        serde_json::from_value(serde_json::json!({
            "instance_id": id, "repo": "a/b", "model": "m", "status": status,
            "timings": {"worktree": 0.0, "env": 0.0, "agent": agent_secs, "apply": 0.0, "tests": 1.0, "total": agent_secs + 1.0},
            "agent": {"status": "submitted", "patch": "", "error": null, "steps": 3, "input_tokens": 10,
                      "output_tokens": 5, "cost_usd": cost, "wall_secs": agent_secs, "proof_status": proof},
        }))
        .unwrap()
    }

    fn summary_of(results: &[InstanceResult], extra_ids: &[&str]) -> Summary {
        let mut ids: Vec<String> = results.iter().map(|r| r.instance_id.clone()).collect();
        ids.extend(extra_ids.iter().map(|s| s.to_string()));
        summarize("run", "m", &ids, &ids, results, &BTreeMap::new())
    }

    #[test]
    fn proof_figures_are_measured_against_the_official_grading() {
        use InstanceStatus::*;
        let results = vec![
            proved("p1", Resolved, Some("proven"), 0.10, 20.0),
            proved("p2", Unresolved, Some("proven"), 0.30, 40.0),
            proved("p3", EnvFailed, Some("proven"), 0.20, 30.0), // not judged: out of the precision
            proved("u1", Resolved, Some("unproven"), 0.50, 50.0),
            proved("u2", Unresolved, Some("unproven"), 0.50, 50.0),
            proved("a1", EmptyPatch, Some("abstained"), 0.01, 2.0), // no patch: a right abstention
            proved("a2", Resolved, Some("abstained"), 0.40, 60.0),  // a withheld patch that resolves
            proved("a3", PatchFailed, Some("abstained"), 0.10, 10.0), // does not apply: right
            proved("a4", Error, Some("abstained"), 0.00, 1.0),      // not judged
            proved("n1", Unresolved, None, 1.00, 90.0),             // the budget ran out
            proved("i1", Interrupted, None, 0.00, 5.0),             // incomplete: not counted
        ];
        let s = summary_of(&results, &["missing"]);
        let proof = s.rigor.proof.clone().expect("proof figures");
        assert_eq!(proof.precision_of_proven, Fraction { count: 1, of: 2, rate: Some(0.5) });
        assert_eq!(proof.abstention_rate, Fraction { count: 4, of: 12, rate: Some(4.0 / 12.0) });
        assert_eq!(proof.abstention_precision, Fraction { count: 2, of: 3, rate: Some(2.0 / 3.0) });
        let keys: Vec<&str> = proof.per_status.keys().map(String::as_str).collect();
        assert_eq!(keys, ["abstained", "none", "proven", "unproven"], "interrupted instances are incomplete");
        let proven = &proof.per_status["proven"];
        assert_eq!((proven.instances, proven.resolved), (3, 1));
        assert!((proven.cost_usd_per_instance - 0.2).abs() < 1e-9, "{proven:?}");
        assert!((proven.agent_secs_per_instance - 30.0).abs() < 1e-9, "{proven:?}");
        assert!((proven.total_secs_per_instance - 31.0).abs() < 1e-9, "{proven:?}");
        assert_eq!((proof.per_status["none"].instances, proof.per_status["unproven"].resolved), (1, 1));

        let run = LoadedRun { dir: PathBuf::from("."), summary: s, results };
        let md = markdown(&run);
        assert!(md.contains("Resolved 3/12 (25.0%) · precision of proven 1/2 (50.0%)"), "{md}");
        assert!(md.contains("abstention rate 4/12 (33.3%) · abstention precision 2/3 (66.7%)"), "{md}");
        assert!(md.contains("| proven | 3 | 1 | $0.2000 | 30.0 | 31.0 |"), "{md}");
        assert!(md.contains("| a2 | resolved | abstained |"), "the instance table shows the proof: {md}");
        let page = html(&run);
        assert!(page.contains("precision of proven <b>1/2 (50.0%)</b>"), "{page}");
        assert!(page.contains("p1/proof.json"), "instances with a proof link it");
        let json = serde_json::to_value(&run.summary).unwrap();
        assert_eq!(
            json["rigor"]["proof"]["precision_of_proven"],
            serde_json::json!({"count": 1, "of": 2, "rate": 0.5})
        );
        assert_eq!(json["resolved_instances"], 3, "the official fields stay");
    }

    #[test]
    fn no_proven_instance_shows_its_precision_as_n_a() {
        let results = vec![
            proved("u", InstanceStatus::Resolved, Some("unproven"), 0.0, 1.0),
            proved("n", InstanceStatus::Unresolved, None, 0.0, 1.0),
        ];
        let s = summary_of(&results, &[]);
        let proof = s.rigor.proof.clone().unwrap();
        assert_eq!(proof.precision_of_proven, Fraction { count: 0, of: 0, rate: None });
        assert_eq!(proof.abstention_precision.rate, None);
        let run = LoadedRun { dir: PathBuf::from("."), summary: s, results };
        let md = markdown(&run);
        assert!(md.contains("precision of proven 0/0 (n/a)") && md.contains("abstention precision 0/0 (n/a)"), "{md}");
        let page = html(&run);
        assert!(!md.contains("NaN") && !page.contains("NaN%") && page.contains("0/0 (n/a)"), "{md}\n{page}");
        let json = serde_json::to_value(&run.summary).unwrap();
        assert_eq!(json["rigor"]["proof"]["precision_of_proven"]["rate"], serde_json::Value::Null);
    }

    #[test]
    fn without_proof_statuses_there_are_no_proof_figures() {
        let results =
            vec![proved("n", InstanceStatus::Resolved, None, 0.0, 1.0), result("r", InstanceStatus::Resolved)];
        let s = summary_of(&results, &[]);
        assert!(s.rigor.proof.is_none());
        assert!(serde_json::to_value(&s).unwrap()["rigor"].get("proof").is_none());
        let run = LoadedRun { dir: PathBuf::from("."), summary: s, results };
        let md = markdown(&run);
        assert!(!md.contains("Proof") && md.contains("| instance | status | F2P |"), "{md}");
        assert!(!html(&run).contains("<th>proof</th>"));
    }

    #[test]
    fn invalid_rows_are_errors_and_a_run_with_nothing_graded_evaluated_nothing() {
        let ids = vec!["p".to_string()];
        let mut s = summarize("run", "m", &ids, &ids, &[result("p", InstanceStatus::Error)], &BTreeMap::new());
        s.add_invalid_rows(["d.jsonl: row 2: missing field repo".to_string()]);
        assert_eq!(s.error_instances, 2);
        assert!(s.nothing_evaluated());
        let run = LoadedRun { dir: PathBuf::from("."), summary: s, results: Vec::new() };
        assert!(markdown(&run).contains("- d.jsonl: row 2: missing field repo"), "{}", markdown(&run));

        let empty = summarize("run", "m", &ids, &ids, &[result("p", InstanceStatus::EmptyPatch)], &BTreeMap::new());
        assert!(!empty.nothing_evaluated(), "empty patches are an outcome");
        assert!(summarize("run", "m", &[], &[], &[], &BTreeMap::new()).nothing_evaluated());
    }
}
