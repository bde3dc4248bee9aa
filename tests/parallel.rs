//! Data parallelism through the binary: `--devices cpu,cpu` for `search` and `augment` (peers
//! checked bit-identical after every step), a batch too small for the peers, and two processes
//! on localhost (`--nodes 2 --node-rank 0|1 --coordinator 127.0.0.1:PORT`) that give the result
//! of the two in-process peers, resume after a `kill -9` of both, and stop with a message
//! naming the lost node when one of them dies; the same two processes started by Slurm's
//! `srun -n 2` (a one-node cluster on localhost: `tools/slurm-local.sh`, started by `.ci/run`).

mod common;

use common::{checkpoint_head, checkpoint_part, metrics, ok, read_json, read_jsonl, record_without_ids, user_error};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 48 MNIST images, batch 9 (5 + 4 per peer; the epoch's last batch 3 is 2 + 1): 6 steps per epoch.
fn search_line(name: &str, extra: &str) -> String {
    format!(
        "search --name {name} --dataset mnist --no-download --layers 2 --init-channels 4 --batch-size 9 \
         --max-train-samples 48 --epochs 2 --seed 5 {extra}"
    )
}

fn args(line: &str, mnist: &Path, out: &Path) -> Vec<String> {
    common::cli(line, &[("--data-dir", mnist), ("--out-dir", out)])
}

fn dropnas() -> Command {
    let mut c = common::dropnas();
    c.env("DROPNAS_CHECK_PEERS", "1").env("DROPNAS_PEER_TIMEOUT", "120");
    for k in ["SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "WORLD_SIZE", "RANK"] {
        c.env_remove(k);
    }
    c
}

/// A port for node 0 and the one above it, free now (chosen by the OS, then released).
fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// Starts node `rank` of 2 with one CPU peer.
fn node(line: &str, mnist: &Path, out: &Path, rank: usize, port: u16) -> Child {
    let mut a = args(line, mnist, out);
    a.extend(
        ["--nodes", "2", "--node-rank", &rank.to_string(), "--coordinator", &format!("127.0.0.1:{port}")]
            .map(String::from),
    );
    dropnas().args(a).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn dropnas")
}

/// What two runs must share: the last raw alphas, the genotype, and the weights.
fn outcome(dir: &Path) -> (Vec<f64>, String, Vec<u8>) {
    let last = read_jsonl(&dir.join("alphas.jsonl")).pop().expect("alphas.jsonl");
    let flat = |v: &Value| -> Vec<f64> {
        v.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect()
    };
    let alphas = [flat(&last["normal_raw"]), flat(&last["reduce_raw"])].concat();
    let genotype = std::fs::read_to_string(dir.join("genotype.txt")).unwrap();
    (alphas, genotype, record_without_ids(&checkpoint_part(&dir.join("checkpoint.ckpt"), "net")))
}

fn assert_same(a: &(Vec<f64>, String, Vec<u8>), b: &(Vec<f64>, String, Vec<u8>), what: &str) {
    assert_eq!(a.0.len(), b.0.len());
    for (x, y) in a.0.iter().zip(&b.0) {
        assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{what}: alpha {x} vs {y}");
    }
    assert_eq!(a.1, b.1, "{what}: genotype");
    assert!(a.2 == b.2, "{what}: the weights differ");
}

fn wait_ok(mut c: Child, what: &str) {
    let status = c.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(c.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{what} failed ({status}):\n{err}");
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dropnas-parallel-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn two_cpu_peers_search_and_retrain_and_a_too_small_batch_is_refused() {
    let mnist = require_data!("mnist");
    let out = tmp("inproc");
    ok(&dropnas().args(args(&search_line("two", "--devices cpu,cpu"), &mnist, &out)).output().unwrap());
    let s = read_json(&out.join("two/summary.json"));
    assert_eq!(s["devices"], serde_json::json!(["cpu (flex)", "cpu (flex)"]));
    assert_eq!(s["nodes"], 1);
    assert!(s["all_reduce_share"].as_f64().unwrap() > 0.0 && s["all_reduce_s_per_step"].as_f64().unwrap() > 0.0);
    assert_eq!(metrics(&out.join("two"), "step").len(), 12);
    let log = std::fs::read_to_string(out.join("two/two.log")).unwrap_or_default();
    assert!(log.contains("data parallel: 2 peers"), "{log}");

    let line = "augment --name aug --dataset mnist --no-download --genotype darts-v2 --layers 3 --init-channels 4 \
                --epochs 1 --batch-size 8 --max-train-samples 32 --max-test-samples 16 --gpus 0,1";
    // --gpus means CUDA devices: refused on a binary without CUDA, with the fix
    let o = dropnas().args(args(line, &mnist, &out)).output().unwrap();
    if !cfg!(feature = "cuda") {
        user_error(&o, &["cuda"]);
    }
    let line = line.replace("--gpus 0,1", "--devices cpu,cpu");
    ok(&dropnas().args(args(&line, &mnist, &out)).output().unwrap());
    let s = read_json(&out.join("aug/summary.json"));
    assert_eq!(s["devices"].as_array().unwrap().len(), 2);
    assert!(s["final"]["top1"].as_f64().is_some());

    let o =
        dropnas().args(args(&search_line("small", "--devices cpu,cpu --batch-size 1"), &mnist, &out)).output().unwrap();
    user_error(&o, &["--batch-size of 1", "2 peers"]);
    assert!(!out.join("small").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn two_processes_equal_two_peers_resume_after_kill_9_and_stop_when_one_dies() {
    let mnist = require_data!("mnist");
    let out = tmp("nodes");
    ok(&dropnas().args(args(&search_line("peers", "--devices cpu,cpu"), &mnist, &out)).output().unwrap());
    let peers = outcome(&out.join("peers"));

    // two processes, one CPU peer each
    let port = free_port();
    let line = search_line("nodes", "--checkpoint-every 1");
    let (n0, n1) = (node(&line, &mnist, &out, 0, port), node(&line, &mnist, &out, 1, port));
    wait_ok(n1, "node 1");
    wait_ok(n0, "node 0");
    let nodes = outcome(&out.join("nodes"));
    assert_same(&nodes, &peers, "2 processes vs 2 peers in one process");
    assert_eq!(read_json(&out.join("nodes/summary.json"))["nodes"], 2);

    // kill -9 of both after a mid-epoch checkpoint, then both resume
    let port = free_port();
    let line = search_line("killed", "--checkpoint-every 1");
    let (mut n0, mut n1) = (node(&line, &mnist, &out, 0, port), node(&line, &mnist, &out, 1, port));
    let ckpt = out.join("killed/checkpoint.ckpt");
    let t0 = Instant::now();
    while checkpoint_head(&ckpt).is_none_or(|h| h["header"]["global_step"].as_u64() < Some(3)) {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint at step 3");
        std::thread::sleep(Duration::from_millis(10));
    }
    for c in [&mut n0, &mut n1] {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let at = checkpoint_head(&ckpt).unwrap()["header"]["global_step"].as_u64().unwrap();
    assert!(at < 12, "the kill came after the run had finished (checkpoint at step {at})");
    let port = free_port();
    let line = format!("{line} --resume");
    let (n0, n1) = (node(&line, &mnist, &out, 0, port), node(&line, &mnist, &out, 1, port));
    wait_ok(n1, "node 1, resumed");
    wait_ok(n0, "node 0, resumed");
    assert_same(&outcome(&out.join("killed")), &nodes, "killed and resumed vs uninterrupted");

    // one node dies: the other stops within a bounded time, naming it
    for (dead, alive) in [(1usize, 0usize), (0, 1)] {
        let port = free_port();
        let line = search_line(&format!("lost{dead}"), "--epochs 50 --checkpoint-every 1");
        let mut n = [node(&line, &mnist, &out, 0, port), node(&line, &mnist, &out, 1, port)];
        let ckpt = out.join(format!("lost{dead}/checkpoint.ckpt"));
        let t0 = Instant::now();
        while checkpoint_head(&ckpt).is_none() {
            assert!(t0.elapsed() < Duration::from_secs(120), "no first checkpoint");
            std::thread::sleep(Duration::from_millis(10));
        }
        n[dead].kill().unwrap();
        n[dead].wait().unwrap();
        let killed = Instant::now();
        let status = loop {
            if let Some(s) = n[alive].try_wait().unwrap() {
                break s;
            }
            assert!(killed.elapsed() < Duration::from_secs(60), "node {alive} still runs 60 s after node {dead} died");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(n[alive].stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "node {alive} must fail");
        assert!(err.contains(&format!("lost peer node {dead}")), "node {alive} must name node {dead}:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        // the last checkpoint stays readable
        assert!(checkpoint_head(&ckpt).is_some());
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Whether a Slurm cluster answers here (`srun` runs jobs).
fn slurm_answers() -> bool {
    Command::new("timeout")
        .args(["10", "sinfo", "-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("idle"))
}

#[test]
fn srun_with_two_tasks_equals_two_peers() {
    let mnist = require_data!("mnist");
    if !slurm_answers() {
        let msg = "no Slurm cluster answers (start one with tools/slurm-local.sh)";
        assert!(!common::in_ci(), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let out = tmp("srun");
    ok(&dropnas().args(args(&search_line("peers", "--devices cpu,cpu"), &mnist, &out)).output().unwrap());
    // srun passes the environment on; each task reads SLURM_NTASKS, SLURM_PROCID and the port
    let mut srun = Command::new("srun");
    srun.args(["-n", "2", "--kill-on-bad-exit=1", "--time=3", env!("CARGO_BIN_EXE_dropnas")])
        .args(args(&search_line("srun", ""), &mnist, &out))
        .env("DROPNAS_PORT", free_port().to_string())
        .env("DROPNAS_CHECK_PEERS", "1")
        .env("RUST_LOG", "warn");
    let o = srun.output().expect("cannot start srun");
    ok(&o);
    assert_same(&outcome(&out.join("srun")), &outcome(&out.join("peers")), "srun -n 2 vs 2 peers in one process");
    let s = read_json(&out.join("srun/summary.json"));
    assert_eq!(s["nodes"], 2);
    let _ = std::fs::remove_dir_all(&out);
}
