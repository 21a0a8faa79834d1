//! Writes synthetic records for `bench/view.sh`: `view_fixtures run RUNS_DIR RUN_ID STEPS` (a
//! finished run of STEPS turns) or `view_fixtures eval OUTPUT RUN_ID INSTANCES` (an evaluation,
//! two instances in five resolved).

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || std::io::Error::other("usage: view_fixtures run|eval DIR ID COUNT");
    let (kind, dir, id, count) = match args.as_slice() {
        [_, kind, dir, id, count] => {
            (kind.as_str(), std::path::Path::new(dir), id.as_str(), count.parse().map_err(|_| usage())?)
        }
        _ => return Err(usage()),
    };
    match kind {
        "run" => rigor_view::fixtures::write_run(dir, id, count as u32, true).map(drop),
        "eval" => rigor_view::fixtures::write_eval(dir, id, "rigor", count, |i| i % 5 < 2).map(drop),
        _ => Err(usage()),
    }
}
