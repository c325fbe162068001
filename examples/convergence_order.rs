//! Measured strong and weak convergence orders of every scheme (THEORY §8).
//!
//! `cargo run --release --example convergence_order` prints a table;
//! `-- --json` prints one JSON object `{"results":[{"problem","scheme","kind","order","ci",...}]}`;
//! `-- --row PROBLEM SCHEME KIND` runs a single row.

use noether_sde::analysis::convergence::suite;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let config = suite::SuiteConfig::default();
    let rows = if let Some(i) = args.iter().position(|a| a == "--row") {
        let (p, s, k) = match (args.get(i + 1), args.get(i + 2), args.get(i + 3)) {
            (Some(p), Some(s), Some(k)) => (p.as_str(), s.as_str(), k.as_str()),
            _ => {
                eprintln!("error: --row needs PROBLEM SCHEME KIND");
                std::process::exit(2);
            }
        };
        match suite::run_one(p, s, k, &config) {
            Ok(Some(row)) => vec![row],
            Ok(None) => {
                eprintln!("error: the suite has no row `{p} {s} {k}`");
                std::process::exit(2);
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    } else {
        match suite::run(&config) {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    };
    if json {
        println!("{}", suite::to_json(&rows));
    } else {
        print!("{}", suite::to_table(&rows));
    }
}
