//! Run summaries and reports: the official `<model>.<run_id>.json`, Markdown, and a
//! self-contained HTML page (inline CSS and SVG charts, a sortable instance table linking to each
//! instance's logs; no scripts or styles fetched from anywhere).
//!
//! The summary's official fields follow SWE-bench's `make_run_report`: graded instances are
//! `completed` (resolved or unresolved; a test timeout counts as unresolved), an empty prediction
//! is `empty_patch`, and a patch that does not apply, an environment that cannot be built or any
//! other failure is an `error`. Rigor's own figures (per-status counts, rates, time, tokens, cost,
//! α-value, SWT metrics) sit beside them. This module reads results; it evaluates nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rigor_core::fsutil::write_atomic;
use serde::{Deserialize, Serialize};

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
    for id in ids {
        let Some(r) = by_id.get(id.as_str()) else {
            s.incomplete_ids.push(id.clone());
            continue;
        };
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
            InstanceStatus::PatchFailed | InstanceStatus::EnvFailed | InstanceStatus::Error => {
                s.error_ids.push(id.clone())
            }
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
    let _ = writeln!(
        md,
        "\n## Instances\n\n| instance | status | F2P | P2P | tests s | total s | note |\n| --- | --- | ---: | ---: | ---: | ---: | --- |"
    );
    for r in &run.results {
        let rate = |x: Option<f64>| x.map(pct).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {} |",
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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A histogram of `values` as an inline SVG bar chart.
fn histogram_svg(values: &[f64], label: &str) -> String {
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
th{{cursor:pointer;background:#f3f3f3}}.resolved{{color:#1a7f37}}.unresolved,.timeout{{color:#b35900}}.error,.patch_failed,.env_failed{{color:#c62828}}\
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
    h.push_str("<h2>Instances</h2><table id=\"t\"><thead><tr><th>instance</th><th>repo</th><th>status</th><th>F2P</th><th>P2P</th><th>tests s</th><th>total s</th><th>tokens</th><th>cost</th><th>logs</th><th>note</th></tr></thead><tbody>");
    for r in &run.results {
        let rel = format!("{}/{}", crate::dataset::model_dir_name(&r.model), r.instance_id);
        let rate = |x: Option<f64>| x.map(pct).unwrap_or_else(|| "–".into());
        let tokens = r.agent.as_ref().map(|a| (a.input_tokens + a.output_tokens).to_string()).unwrap_or_default();
        let cost = r.agent.as_ref().map(|a| format!("{:.4}", a.cost_usd)).unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{id}</td><td>{repo}</td><td class=\"{st}\">{st}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{tokens}</td><td>{cost}</td>\
<td><a href=\"{rel}/test_output.txt\">tests</a> <a href=\"{rel}/run_instance.log\">run</a> <a href=\"{rel}/report.json\">report</a></td><td>{}</td></tr>",
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
