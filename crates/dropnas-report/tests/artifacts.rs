//! `write_run_artifacts` on the fixture run folders (copied to a temporary folder): every SVG is
//! well-formed XML with one node per state and one labelled edge per genotype entry, every PNG
//! decodes at the expected size, the event file reads back to the metrics' scalars, and the
//! report and the comparison table are exactly as expected.

use dropnas_core::genotype::{Genotype, named, text};
use dropnas_report::plots::AlphaFigure;
use dropnas_report::run::RunData;
use dropnas_report::tb::{self, EVENTS_FILE};
use dropnas_report::{ReportError, RunKind, cell, compare, write_run_artifacts};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fresh copy of fixture run folder `name` (the fixtures stay untouched).
fn copy_fixture(name: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("dropnas-report-{}-{tag}", std::process::id())).join(name);
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

fn svg_doc(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    text
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (info.width, info.height)
}

/// Checks a cell SVG against the cell of the genotype: 7 state nodes (2 inputs, 4 nodes, the
/// output), one `edge` with `data-op` per genotype entry with the right ends, one label each.
fn check_cell_svg(path: &Path, g: &Genotype, reduction: bool) {
    let text = svg_doc(path);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let class = |n: &roxmltree::Node, c: &str| n.is_element() && n.attribute("class") == Some(c);
    let nodes: Vec<_> = doc.descendants().filter(|n| class(n, "node")).collect();
    let (cell, concat) = g.cell(reduction);
    assert_eq!(nodes.len(), cell.len() + 3, "{}", path.display());
    let names: Vec<&str> = nodes.iter().map(|n| n.attribute("data-name").unwrap()).collect();
    assert_eq!(names, ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"]);
    let mut want: Vec<(String, String, String)> = Vec::new();
    for (i, es) in cell.iter().enumerate() {
        for (op, j) in es {
            let from = match j {
                0 => "c_{k-2}".to_string(),
                1 => "c_{k-1}".to_string(),
                j => (j - 2).to_string(),
            };
            want.push((from, i.to_string(), op.name().to_string()));
        }
    }
    let mut got: Vec<(String, String, String)> = doc
        .descendants()
        .filter(|n| class(n, "edge") && n.has_attribute("data-op"))
        .map(|n| {
            let a = |k: &str| n.attribute(k).unwrap().to_string();
            (a("data-from"), a("data-to"), a("data-op"))
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{}", path.display());
    let output_edges = doc.descendants().filter(|n| class(n, "edge") && n.attribute("data-to") == Some("c_{k}"));
    assert_eq!(output_edges.count(), concat.indices().len());
    let mut labels: Vec<String> = doc
        .descendants()
        .filter(|n| class(n, "edge-label"))
        .map(|n| n.descendants().find(|t| t.has_tag_name("text")).unwrap().text().unwrap().to_string())
        .collect();
    let mut ops: Vec<String> = want.iter().map(|w| w.2.clone()).collect();
    labels.sort();
    ops.sort();
    assert_eq!(labels, ops);
}

fn metrics_of(dir: &Path) -> dropnas_report::run::Metrics {
    RunData::load(dir).unwrap().metrics
}

#[test]
fn search_run_gets_cells_curves_alphas_drop_frequency_events_and_report() {
    let dir = copy_fixture("search-c10", "search");
    let a = write_run_artifacts(&dir).unwrap();
    assert_eq!(a.kind, RunKind::Search);
    let plots = dir.join("plots");
    for f in [
        "cell_normal.svg",
        "cell_normal.png",
        "cell_normal.dot",
        "cell_reduce.svg",
        "cell_reduce.png",
        "cell_reduce.dot",
        "curves.svg",
        "curves.png",
        "alphas.svg",
        "alphas.png",
        "drop_freq.svg",
        "drop_freq.png",
    ] {
        assert!(a.files.contains(&plots.join(f)), "{f} not written");
    }
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&plots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let g = named::named("dropnas-cifar10").unwrap();
    check_cell_svg(&plots.join("cell_normal.svg"), &g, false);
    check_cell_svg(&plots.join("cell_reduce.svg"), &g, true);
    for f in ["curves.svg", "alphas.svg", "drop_freq.svg"] {
        svg_doc(&plots.join(f));
    }
    for (reduction, stem) in [(false, "cell_normal"), (true, "cell_reduce")] {
        let d = cell::layout_genotype(&g, reduction).unwrap();
        let s = cell::PNG_SCALE;
        assert_eq!(png_size(&plots.join(format!("{stem}.png"))), (d.width as u32 * s, d.height as u32 * s));
        let dot = std::fs::read_to_string(plots.join(format!("{stem}.dot"))).unwrap();
        assert_eq!(dot.matches(" [label=").count(), 8, "{dot}");
        assert!(dot.contains("\"c_{k-2}\" [fillcolor=darkseagreen2]"), "{dot}");
    }
    assert_eq!(png_size(&plots.join("curves.png")), (1000, 820));
    assert_eq!(png_size(&plots.join("drop_freq.png")), (900, 460));
    let run = RunData::load(&dir).unwrap();
    let fig: AlphaFigure = dropnas_report::plots::alpha_figure("t", &run.alphas, run.genotype.as_ref()).unwrap();
    assert_eq!(fig.n_nodes, 4);
    assert_eq!(png_size(&plots.join("alphas.png")), fig.size());
    // 14 edges per cell type, one panel each: 28 frames of panels with ops lines.
    let alphas_svg = std::fs::read_to_string(plots.join("alphas.svg")).unwrap();
    assert!(alphas_svg.contains("from c_{k-2}") && alphas_svg.contains("node 3"));

    // The event file: the metrics' scalars under the original's tags, at its steps.
    let events = tb::read_events(&a.events.clone().unwrap()).unwrap();
    assert_eq!(a.events.unwrap(), dir.join("tb").join(EVENTS_FILE));
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let by_tag = tb::scalars_by_tag(&events);
    let m = metrics_of(&dir);
    let steps = |f: fn(&dropnas_report::run::StepLine) -> f64| -> Vec<(i64, f32)> {
        m.steps.iter().map(|s| (s.global_step as i64, f(s) as f32)).collect()
    };
    assert_eq!(by_tag["train/loss"], steps(|s| s.loss));
    assert_eq!(by_tag["train/top1"], steps(|s| s.top1));
    assert_eq!(by_tag["train/top5"], steps(|s| s.top5));
    assert_eq!(by_tag["train/lr"], vec![(0, 0.0285), (4, 0.0105), (8, 0.0015)]);
    assert_eq!(by_tag.keys().collect::<Vec<_>>(), ["train/loss", "train/lr", "train/top1", "train/top5"]);
    // Wall times: the log's start plus the lines' elapsed seconds.
    let start = 1767323045.0; // 2026-01-02T03:04:05Z
    assert_eq!(events[1].wall_time, start + 1.9);
    assert!(events.windows(2).all(|w| w[0].step <= w[1].step));

    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for want in [
        "# `search-c10`: search run",
        "| dataset | cifar10 |",
        "| network | 5 cells x 8 initial channels |",
        "| drop rates | r_p 3e-5, r_np 3e-5 (ops dropped with p = r^(1/4)) |",
        "| epochs | 3 of 3 (finished) |",
        "| train top-1 | 48.00% (last epoch) |",
        "| time | 24.5s |",
        "![normal cell](plots/cell_normal.svg)",
        "![training curves](plots/curves.svg)",
        "![alphas](plots/alphas.svg)",
        "![drop frequency](plots/drop_freq.svg)",
        "\"search_space\": \"original\"",
    ] {
        assert!(report.contains(want), "report.md lacks {want:?}:\n{report}");
    }
    assert!(report.contains(&g.to_string()));
}

#[test]
fn augment_run_gets_validation_scalars_and_no_search_plots() {
    let dir = copy_fixture("aug-c10-s1", "augment");
    let a = write_run_artifacts(&dir).unwrap();
    assert_eq!(a.kind, RunKind::Augment);
    let plots = dir.join("plots");
    assert!(plots.join("curves.png").is_file() && plots.join("cell_reduce.svg").is_file());
    assert!(!plots.join("alphas.svg").exists() && !plots.join("drop_freq.svg").exists());
    check_cell_svg(&plots.join("cell_normal.svg"), &named::named("dropnas-cifar10").unwrap(), false);
    svg_doc(&plots.join("curves.svg"));
    assert_eq!(png_size(&plots.join("curves.png")), (1000, 820));

    let by_tag = tb::scalars_by_tag(&tb::read_events(&a.events.unwrap()).unwrap());
    let m = metrics_of(&dir);
    let val: Vec<(i64, f32)> = m.epochs.iter().zip([3, 6, 9]).map(|(e, s)| (s, e.val_top1.unwrap() as f32)).collect();
    assert_eq!(by_tag["val/top1"], val);
    assert_eq!(by_tag["val/loss"], vec![(3, 0.2), (6, 0.18), (9, 0.16)]);
    assert_eq!(by_tag["val/top5"].len(), 3);
    assert_eq!(by_tag["train/loss"].len(), 9);
    assert_eq!(by_tag["train/lr"].iter().map(|p| p.0).collect::<Vec<_>>(), [0, 3, 6]);

    let s = a.summary;
    assert_eq!(s.best_test_top1, Some((0.9751, Some(2))));
    assert_eq!(s.params, Some(1234567));
    let text = s.to_text();
    for want in [
        "run          aug-c10-s1 (augment run)\n",
        "test top-1   best 97.51% at epoch 2, last 97.49%\n",
        // one unit everywhere: the count, and the original's "MB" labelled
        "model size   1,234,567 parameters (1.177 MB in the original's unit, parameters / 2^20) without the auxiliary head\n",
        "epochs       3 of 3 (finished)\n",
        "time         28.5s\n",
    ] {
        assert!(text.contains(want), "summary lacks {want:?}:\n{text}");
    }
}

#[test]
fn the_config_genotype_is_the_one_in_the_text_file() {
    // The augment loop saves the genotype in config.json as serde writes it.
    for name in ["aug-c10-s1", "aug-darts-s1"] {
        let dir = fixtures().join(name);
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        let from_cfg: Genotype = serde_json::from_value(cfg["genotype"].clone()).unwrap();
        let from_txt = text::parse(&std::fs::read_to_string(dir.join("genotype.txt")).unwrap()).unwrap();
        assert_eq!(from_cfg, from_txt, "{name}");
    }
}

const TABLE: &str = "\
| Run group | Runs | Avg Acc (%) | Best Acc (%) |
|---|---|---|---|
| aug-c10 | 3 | 97.36±0.16 | 97.51 |
| aug-darts-s1 | 1 | 97.05 | 97.05 |
";

#[test]
fn compare_gives_the_mean_and_sample_std_table() {
    let f = fixtures();
    let runs: Vec<PathBuf> =
        ["aug-c10-s1", "aug-c10-s2", "aug-c10-s3", "aug-darts-s1"].iter().map(|n| f.join(n)).collect();
    let t = compare(&runs).unwrap();
    assert_eq!(t.to_markdown(), TABLE);
    // A folder of run folders: its augment runs (the search run is left out), in name order.
    assert_eq!(compare(std::slice::from_ref(&f)).unwrap().to_markdown(), TABLE);
    let g = &t.groups[0];
    assert_eq!(g.runs.len(), 3);
    assert!((g.mean - 97.363_333_333).abs() < 1e-6);
    assert!((g.std.unwrap() - 0.155_670_379).abs() < 1e-6);
    let j = t.to_json();
    assert_eq!(j["groups"][0]["runs"], 3);
    assert_eq!(j["groups"][1]["std_top1"], serde_json::Value::Null);
    assert_eq!(j["groups"][0]["members"][2]["name"], "aug-c10-s3");
}

#[test]
fn bad_input_is_an_error_that_says_what_is_wrong() {
    let missing = fixtures().join("no-such-run");
    let e = write_run_artifacts(&missing).unwrap_err();
    assert!(e.is_bad_input() && e.to_string().contains("no such folder"), "{e}");

    let e = compare(&[fixtures().join("search-c10")]).unwrap_err();
    assert!(e.is_bad_input() && e.to_string().contains("search run"), "{e}");

    let dir = copy_fixture("aug-c10-s2", "malformed");
    std::fs::write(dir.join("metrics.jsonl"), "{\"kind\":\"step\",\"epoch\":1}\nnot json\n").unwrap();
    let e = write_run_artifacts(&dir).unwrap_err();
    assert!(matches!(e, ReportError::Malformed { line: Some(1), .. }), "{e}");
    assert!(e.to_string().contains("metrics.jsonl line 1"), "{e}");

    std::fs::write(dir.join("metrics.jsonl"), "").unwrap();
    std::fs::write(dir.join("genotype.txt"), "Genotype(normal=[[('sep_conv_3x3', 7)]])").unwrap();
    let e = write_run_artifacts(&dir).unwrap_err();
    assert!(e.is_bad_input(), "{e}");

    let empty = std::env::temp_dir().join(format!("dropnas-report-{}-empty", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let e = write_run_artifacts(&empty).unwrap_err();
    assert!(matches!(e, ReportError::NotARun { .. }), "{e}");
}

/// Labels and states of every published genotype's cells: none overlaps another, all inside.
#[test]
fn cell_layouts_have_no_overlapping_boxes() {
    type Rect = (f64, f64, f64, f64);
    let overlap = |a: Rect, b: Rect| a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3;
    for name in named::names() {
        let g = named::named(name).unwrap();
        for reduction in [false, true] {
            let d = cell::layout_genotype(&g, reduction).unwrap();
            let mut boxes: Vec<(String, Rect)> =
                d.states.iter().map(|s| (s.name.clone(), (s.x, s.y, s.w, s.h))).collect();
            boxes.extend(d.edges.iter().filter_map(|e| e.label.map(|l| (e.op.clone().unwrap(), l))));
            assert_eq!(boxes.len(), 7 + 8);
            for (i, (na, a)) in boxes.iter().enumerate() {
                assert!(a.0 >= 0.0 && a.1 >= 0.0 && a.0 + a.2 <= d.width && a.1 + a.3 <= d.height, "{name}: {na}");
                for (nb, b) in &boxes[i + 1..] {
                    assert!(!overlap(*a, *b), "{name} reduction={reduction}: {na} overlaps {nb}");
                }
            }
            // Every edge leaves its source's right side and ends at its target's left side.
            for e in &d.edges {
                let (a, b) = (&d.states[e.from], &d.states[e.to]);
                let (p, q) = (e.points[0], *e.points.last().unwrap());
                assert!((p.0 - (a.x + a.w)).abs() < 1e-9 && p.1 > a.y && p.1 < a.y + a.h);
                assert!(q.0 < b.x && q.1 > b.y && q.1 < b.y + b.h);
            }
        }
    }
}

/// A search run as long as the original's (76 epochs of 521 steps, alphas every epoch): all its
/// artifacts must take a fraction of a second, since the loops rewrite them every epoch.
#[test]
fn artifacts_of_a_whole_search_are_cheap() {
    let dir = std::env::temp_dir().join(format!("dropnas-report-{}-long", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixtures().join("search-c10");
    for f in ["config.json", "genotype.txt", "search-c10.log"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let g = named::named("dropnas-cifar10").unwrap().to_string();
    let (epochs, spe) = (76u64, 521u64);
    let mut metrics = String::new();
    let mut alphas = String::new();
    let ops = r#"["sep_conv_3x3","sep_conv_5x5","dil_conv_3x3","dil_conv_5x5","max_pool_3x3","avg_pool_3x3","skip_connect","none"]"#;
    for e in 1..=epochs {
        for s in 0..spe {
            let gs = (e - 1) * spe + s;
            let x = gs as f64 / (epochs * spe) as f64;
            metrics.push_str(&format!(
                "{{\"kind\":\"step\",\"epoch\":{e},\"step\":{s},\"global_step\":{gs},\"loss\":{},\"loss_1\":1.0,\"loss_2\":0.01,\
                 \"top1\":{},\"top5\":0.9,\"lr\":0.03,\"norm_1\":1.5,\"norm_2\":0.2,\"time_s\":{},\"step_s\":0.5}}\n",
                2.3 - 2.0 * x + 0.1 * ((gs % 7) as f64 / 7.0),
                0.1 + 0.8 * x,
                gs as f64 * 0.5
            ));
        }
        metrics.push_str(&format!(
            "{{\"kind\":\"epoch\",\"epoch\":{e},\"loss\":1.0,\"top1\":0.5,\"top5\":0.9,\"lr\":0.03,\"drop_rate_param\":3e-5,\
             \"drop_rate_nonparam\":3e-5,\"drop_freq_param\":0.074,\"drop_freq_nonparam\":0.073,\"time_s\":{},\"genotype\":\"{g}\"}}\n",
            (e * spe) as f64 * 0.5
        ));
        let row = |skip: f64| {
            let rest = (1.0 - skip) / 7.0;
            format!("[{rest},{rest},{rest},{rest},{rest},{rest},{skip},{rest}]")
        };
        let cell = |t: f64| (0..14).map(|i| row(0.125 + t * (i as f64) / 30.0)).collect::<Vec<_>>().join(",");
        let t = e as f64 / epochs as f64;
        alphas.push_str(&format!(
            "{{\"epoch\":{e},\"ops\":{ops},\"normal\":[{}],\"reduce\":[{}],\"normal_raw\":[],\"reduce_raw\":[]}}\n",
            cell(t),
            cell(t / 2.0)
        ));
    }
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    std::fs::write(dir.join("alphas.jsonl"), alphas).unwrap();
    let mut best = f64::INFINITY;
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let a = write_run_artifacts(&dir).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(a.files.len(), 14);
    }
    let by_tag: BTreeMap<String, Vec<(i64, f32)>> =
        tb::scalars_by_tag(&tb::read_events(&dir.join("tb").join(EVENTS_FILE)).unwrap());
    assert_eq!(by_tag["train/loss"].len(), (epochs * spe) as usize);
    assert_eq!(by_tag["train/lr"].len(), epochs as usize);
    eprintln!("write_run_artifacts, 76 epochs x 521 steps: {:.0} ms", best * 1e3);
    // A few hundred ms in a release build on two cores; generous for debug builds and busy CI.
    let limit = if cfg!(debug_assertions) { 20.0 } else { 3.0 };
    assert!(best < limit, "write_run_artifacts took {best:.2} s");
    std::fs::remove_dir_all(&dir).unwrap();
}
