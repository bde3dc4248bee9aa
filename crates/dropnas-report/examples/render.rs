//! `cargo run --release -p dropnas-report --example render -- RUN_DIR...`: (re)writes the plots,
//! event file and report of each run folder and prints how long it took.
//! `... --example render -- --cells OUT_DIR`: the cell diagrams of every published genotype.

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--cells") {
        let out = Path::new(args.get(1).map(String::as_str).unwrap_or("cells"));
        for name in dropnas_core::genotype::named::names() {
            let g = dropnas_core::genotype::named::named(name).expect("a published genotype");
            match dropnas_report::write_cell_diagrams(&g, &out.join(name)) {
                Ok(files) => println!("{name}: {} files", files.len()),
                Err(e) => eprintln!("{name}: {e}"),
            }
        }
        return;
    }
    for dir in args {
        let t = std::time::Instant::now();
        match dropnas_report::write_run_artifacts(Path::new(&dir)) {
            Ok(a) => println!("{dir}: {} files in {:.0} ms", a.files.len(), t.elapsed().as_secs_f64() * 1e3),
            Err(e) => {
                eprintln!("{dir}: {e}");
                std::process::exit(2);
            }
        }
    }
}
