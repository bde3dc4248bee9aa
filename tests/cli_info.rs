//! `dropnas info` and genotype arguments: parameter and operation counts equal the PyTorch
//! reference's (tools/fixtures/param_counts.json), for the CIFAR and the ImageNet networks, and
//! malformed genotypes are user errors (exit code 2).

mod common;

use common::{ok, run, user_error};
use serde_json::{Value, json};

const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), \
    ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], \
    normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), \
    ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], \
    reduce_concat=[2, 3, 4, 5])";

fn info_json(args: &[&str]) -> Value {
    let mut all = vec!["info", "--json"];
    all.extend_from_slice(args);
    let out = ok(&run(&all));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object: {out:?}: {e}"))
}

/// `info --json`'s parameter and operation counts of an augment network, keyed as the fixture.
fn augment_counts(v: &Value) -> Value {
    json!({
        "with_aux": v["params"], "without_aux": v["params_without_aux"], "macs": v["macs"],
        "elementwise": v["elementwise"], "aux_macs": v["aux_macs"], "aux_elementwise": v["aux_elementwise"],
    })
}

/// The same keys of a fixture entry.
fn reference_counts(r: &Value) -> Value {
    json!({
        "with_aux": r["with_aux"], "without_aux": r["without_aux"], "macs": r["macs"],
        "elementwise": r["elementwise"], "aux_macs": r["aux_macs"], "aux_elementwise": r["aux_elementwise"],
    })
}

/// The reference counts, read from the fixture so the two cannot drift apart.
fn reference(kind: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/fixtures/param_counts.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all[kind].as_array().unwrap().iter().find(|v| pick(v)).cloned().expect("fixture entry")
}

#[test]
fn augment_counts_match_pytorch() {
    let _t = common::Timer::start("cli_info::augment_counts_match_pytorch");
    for name in ["darts-v2", "dropnas-cifar10"] {
        let r = reference("augment", |v| v["genotype"] == name && v["n_classes"] == 10 && v["input_size"] == 32);
        let got = info_json(&["--genotype", name]);
        assert_eq!(augment_counts(&got), reference_counts(&r), "{name}");
        assert_eq!((got["network"].as_str(), &got["input_size"]), (Some("cifar"), &json!(32)));
    }
    // The numbers the issue states, literally.
    let got = info_json(&["--genotype", "darts-v2"]);
    assert_eq!((&got["params"], &got["params_without_aux"]), (&json!(3827928), &json!(3351502)));
    let got = info_json(&["--genotype", "dropnas-cifar10"]);
    assert_eq!((&got["params"], &got["params_without_aux"]), (&json!(4316088), &json!(3839662)));
    // CIFAR-100 and MNIST-shaped networks.
    let r = reference("augment", |v| v["genotype"] == "dropnas-cifar10" && v["n_classes"] == 100);
    assert_eq!(
        augment_counts(&info_json(&["--genotype", "dropnas-cifar10", "--classes", "100"])),
        reference_counts(&r)
    );
    let r = reference("augment", |v| v["input_channels"] == 1);
    let got = info_json(&["--genotype", "dropnas-cifar10", "--input-size", "28", "--input-channels", "1"]);
    assert_eq!(augment_counts(&got), reference_counts(&r));
}

/// DARTS' mobile setting: `--network imagenet` (or `--input-size 224`) builds 14 cells x 48
/// channels for 1000 classes at 224x224; DARTS V2 has the DARTS paper's 4.7M parameters.
#[test]
fn imagenet_counts_match_pytorch() {
    let _t = common::Timer::start("cli_info::imagenet_counts_match_pytorch");
    for name in ["darts-v2", "dropnas-cifar10", "pc-darts", "p-darts"] {
        let r = reference("imagenet", |v| v["genotype"] == name && v["n_classes"] == 1000);
        let got = info_json(&["--genotype", name, "--network", "imagenet"]);
        assert_eq!(augment_counts(&got), reference_counts(&r), "{name}");
        assert_eq!(info_json(&["--genotype", name, "--input-size", "224"]), got, "{name}: 224 picks the network");
    }
    let got = info_json(&["--genotype", "darts-v2", "--network", "imagenet"]);
    assert_eq!((got["network"].as_str(), &got["input_size"]), (Some("imagenet"), &json!(224)));
    assert_eq!(got["params_without_aux"], 4721632);
    assert_eq!((&got["macs"], &got["elementwise"]), (&json!(529911552), &json!(14959720)));
    let r = reference("imagenet", |v| v["genotype"] == "darts-v2" && v["n_classes"] == 10);
    let got = info_json(&["--genotype", "darts-v2", "--network", "imagenet", "--classes", "10"]);
    assert_eq!(augment_counts(&got), reference_counts(&r));
    // The text form says what the numbers count.
    let text = ok(&run(["info", "--genotype", "darts-v2", "--network", "imagenet"]));
    for needle in [
        "augment network (imagenet): 14 cells, 48 initial channels, 1000 classes, 3x224x224",
        "529,911,552 (529.9M)",
        "544,871,272 (544.9M) (ptflops' count)",
        "4,721,632 parameters (4.503 MB in the original's unit",
    ] {
        assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
    }
    // Sizes the ImageNet network cannot take are refused with the reason.
    user_error(
        &run(["info", "--genotype", "darts-v2", "--network", "imagenet", "--input-size", "230"]),
        &["multiple of 32"],
    );
    user_error(
        &run(["info", "--genotype", "darts-v2", "--network", "imagenet", "--input-size", "448"]),
        &["AvgPool2d(7)", "224"],
    );
    // Where the auxiliary head does not fit, the network is counted without it.
    let got = info_json(&["--genotype", "darts-v2", "--network", "imagenet", "--input-size", "288"]);
    assert_eq!((&got["aux_macs"], &got["params"]), (&json!(0), &got["params_without_aux"]));
    user_error(&run(["info", "--genotype", "darts-v2", "--input-size", "30"]), &["multiple of 4"]);
}

#[test]
fn search_counts_match_pytorch() {
    let _t = common::Timer::start("cli_info::search_counts_match_pytorch");
    let base = ["--search", "--init-channels", "16", "--classes", "10"];
    assert_eq!(
        ok(&run([
            "info",
            "--search",
            "--layers",
            "8",
            "--init-channels",
            "16",
            "--classes",
            "10",
            "--search-space",
            "original",
            "--json"
        ]))
        .trim(),
        r#"{"alpha_params":224,"elementwise":18841610,"input_channels":3,"input_size":32,"macs":300255744,"params":1930618}"#
    );
    for (space, layers) in [("original", 14), ("1-skip", 8), ("3-skip", 8)] {
        let r = reference("search", |v| v["space"] == space && v["layers"] == layers);
        let mut a = base.to_vec();
        let l = layers.to_string();
        a.extend_from_slice(&["--layers", &l, "--search-space", space]);
        let got = info_json(&a);
        let counts = json!({ "weights": got["params"], "alphas": got["alpha_params"], "macs": got["macs"], "elementwise": got["elementwise"] });
        assert_eq!(
            counts,
            json!({ "weights": r["weights"], "alphas": r["alphas"], "macs": r["macs"], "elementwise": r["elementwise"] }),
            "{space}"
        );
    }
}

#[test]
fn genotype_text_and_file_are_accepted() {
    let _t = common::Timer::start("cli_info::genotype_text_and_file_are_accepted");
    let expected = info_json(&["--genotype", "darts-v2"]);
    assert_eq!((&expected["params"], &expected["params_without_aux"]), (&json!(3827928), &json!(3351502)));
    assert_eq!(info_json(&["--genotype", DARTS_V2]), expected);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.txt");
    std::fs::write(&file, format!("{DARTS_V2}\n")).unwrap();
    let at = format!("@{}", file.display());
    assert_eq!(info_json(&["--genotype", &at]), expected);
    // `genotype show` prints the canonical text, which parses back to itself.
    let shown = ok(&run(["genotype", "show", &at]));
    assert_eq!(shown.trim(), ok(&run(["genotype", "show", "darts-v2"])).trim());
    std::fs::write(&file, &shown).unwrap();
    assert_eq!(ok(&run(["genotype", "show", &at])), shown);
}

#[test]
fn malformed_genotypes_are_user_errors() {
    let _t = common::Timer::start("cli_info::malformed_genotypes_are_user_errors");
    let cases: [(&str, String, &[&str]); 5] = [
        ("unknown op", DARTS_V2.replacen("dil_conv_3x3", "dil_conv_9x9", 1), &["unknown op", "dil_conv_9x9"]),
        ("bad index", DARTS_V2.replacen("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)", 1), &["state 7"]),
        (
            "unbalanced brackets",
            DARTS_V2.replacen("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4, 5", 1),
            &["unbalanced"],
        ),
        (
            "too few nodes",
            DARTS_V2.replacen(", ('skip_connect', 0), ('dil_conv_3x3', 2)]", "]", 1),
            &["3 nodes", "exactly 4"],
        ),
        ("not a genotype", "Genotype(normal=".to_string(), &["expected"]),
    ];
    for (what, text, needles) in cases {
        let out = run(["info", "--genotype", &text]);
        let err = user_error(&out, needles);
        assert!(out.stdout.is_empty(), "{what}: printed counts anyway");
        assert!(err.lines().count() <= 20, "{what}: message too long:\n{err}");
        // The same through a file names the file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.txt");
        std::fs::write(&file, &text).unwrap();
        let err = user_error(&run(["info", "--genotype", &format!("@{}", file.display())]), needles);
        assert!(err.contains("bad.txt"), "{what}: the message does not name the file:\n{err}");
    }
    user_error(&run(["info", "--genotype", "@/nonexistent/genotype.txt"]), &["/nonexistent/genotype.txt"]);
}

#[test]
fn unknown_genotype_name_lists_the_known_ones() {
    let _t = common::Timer::start("cli_info::unknown_genotype_name_lists_the_known_ones");
    let err = user_error(&run(["info", "--genotype", "darts-v3"]), &["darts-v3"]);
    let listed = ok(&run(["genotype", "list"]));
    let names: Vec<&str> = listed.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.len() >= 4 && names.contains(&"darts-v2") && names.contains(&"dropnas-cifar10"), "{listed}");
    for n in names {
        assert!(err.contains(n), "the message does not list {n}:\n{err}");
    }
}
