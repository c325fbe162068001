//! The `noether-sde` command line. Until the paper-reproduction report exists, it
//! prints the measured convergence orders of the integrators.

use noether_sde::analysis::convergence::suite;

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    match suite::run(&suite::SuiteConfig::default()) {
        Ok(rows) => {
            if json {
                println!("{}", suite::to_json(&rows));
            } else {
                print!("{}", suite::to_table(&rows));
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
