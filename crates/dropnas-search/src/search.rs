//! The search loop: epochs of DropNAS steps over the whole training set (one level), with the
//! per-epoch cosine schedule, a genotype and a checkpoint per epoch, and exact resume.

use crate::config::SearchConfig;
use crate::step::{DropNasOptimizers, StepConfig, StepNumbers, StepSchedule, dropnas_step};
use burn::module::ParamId;
use dropnas_core::DropnasAutodiffBackend;
use dropnas_core::alphas::CellType;
use dropnas_core::dropout::{GroupedDropout, StepMasks};
use dropnas_core::genotype::Genotype;
use dropnas_core::genotype::derive::derive_genotype;
use dropnas_core::params::count_params;
use dropnas_core::search_network::Supernet;
use dropnas_core::{ParamInit, SearchNetworkConfig, SearchSpace};
use dropnas_data::{Augment, DatasetKind, LoadOptions, Loader, LoaderConfig, Split, load};
use dropnas_train::checkpoint::{Checkpoint, CheckpointError};
use dropnas_train::grads::LegacyZeroGrad;
use dropnas_train::metrics::Meter;
use dropnas_train::pending::PendingScalars;
use dropnas_train::progress::epoch_bar;
use dropnas_train::records::{module_from_bytes, module_to_bytes, optim_from_bytes, optim_to_bytes};
use dropnas_train::run_dir::{RunDir, RunDirError};
use dropnas_train::schedule::EpochSchedule;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] dropnas_data::DataError),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}; the run stopped and its last good checkpoint \
         ({checkpoint}) is kept. Try a lower --w-lr or --alpha-lr, or --resume to retry from the checkpoint"
    )]
    NonFinite { value: f64, epoch: usize, step: usize, checkpoint: String },
}

impl SearchError {
    /// Whether the error is the user's to fix (bad flags, data, files): exit code 2.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, SearchError::NonFinite { .. })
    }
}

/// What a finished (or stopped) search produced.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    pub genotype: Genotype,
    pub epochs_done: usize,
    pub steps_done: usize,
    pub final_loss: f64,
    pub final_top1: f64,
    pub elapsed_s: f64,
}

/// Where a run is: what the checkpoint records besides the tensors.
struct Position {
    epoch: usize,
    step: usize,
    global_step: usize,
    elapsed_s: f64,
    meters: [Meter; 3],
    drops: [[u64; 2]; 2],
}

fn step_config(cfg: &SearchConfig) -> StepConfig {
    StepConfig {
        w_momentum: cfg.w_momentum,
        w_grad_clip: cfg.w_grad_clip,
        w_weight_decay: cfg.w_weight_decay,
        alpha_weight_decay: cfg.alpha_weight_decay,
        torch_compat: cfg.torch_compat,
        ..StepConfig::default()
    }
}

fn say(bar: &indicatif::ProgressBar, run: &RunDir, msg: &str) {
    bar.suspend(|| tracing::info!("{msg}"));
    run.log(msg);
}

fn ids(set: &HashSet<ParamId>) -> Vec<String> {
    let mut v: Vec<String> = set.iter().map(|id| id.serialize()).collect();
    v.sort();
    v
}

fn id_set(v: &Value) -> HashSet<ParamId> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str()).filter_map(ParamId::try_deserialize).collect()
}

/// Runs (or, with `resume`, continues) the search described by `cfg` on `device`.
/// `on_epoch` is called with the run folder after every epoch's files are written (the CLI
/// draws the plots there).
pub fn run_search<B: DropnasAutodiffBackend>(
    mut cfg: SearchConfig,
    device: B::Device,
    resume: bool,
    on_epoch: &mut dyn FnMut(&std::path::Path),
) -> Result<SearchOutcome, SearchError> {
    let run = RunDir::open(&cfg.out_dir, &cfg.name, resume)?;
    let ckpt = if resume { Some(Checkpoint::load(&run.checkpoint_path())?) } else { None };
    if let Some(c) = &ckpt {
        // The run continues with the configuration it started with; only where it runs may change.
        let saved: SearchConfig = c.run_config("search", &run.checkpoint_path())?;
        // `--max-steps` is a stopping point of this invocation, not of the run: a resume without it
        // runs to the end.
        cfg = SearchConfig {
            workers: cfg.workers,
            data_dir: cfg.data_dir.clone(),
            download: cfg.download,
            max_steps: cfg.max_steps,
            ..saved
        };
    }
    cfg.validate().map_err(SearchError::Config)?;
    let kind: DatasetKind = cfg.dataset.parse()?;
    let space = SearchSpace::named(&cfg.search_space).ok_or_else(|| {
        SearchError::Config(format!("unknown search space `{}` (known: original, 1-skip, 3-skip)", cfg.search_space))
    })?;
    let n_nodes = 4;

    // Data: the whole training set is the search data (one level).
    let opts =
        LoadOptions { max_train_samples: cfg.max_train_samples, download: cfg.download, ..LoadOptions::default() };
    let train = Arc::new(load(kind, &cfg.data_dir, Split::Train, &opts)?);
    let loader = Loader::new(
        train.clone(),
        Augment::train(kind, 0),
        LoaderConfig::train(cfg.batch_size, cfg.seed, cfg.workers),
    )?;
    let steps_per_epoch = loader.batches_per_epoch();

    // Model and optimizers; the initial values drawn on the host from the seed (the same
    // network on every backend).
    let net_cfg = SearchNetworkConfig::new(
        kind.input_channels(),
        cfg.init_channels,
        train.n_classes(),
        cfg.layers,
        space.clone(),
    );
    let mut model: Supernet<B> = net_cfg.init(&mut ParamInit::new(cfg.seed, cfg.torch_compat, &device));
    let step_cfg = step_config(&cfg);
    let mut opt = DropNasOptimizers::<B>::new(&step_cfg);
    let mut mask_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut pos = Position {
        epoch: 0,
        step: 0,
        global_step: 0,
        elapsed_s: 0.0,
        meters: [Meter::default(); 3],
        drops: [[0; 2]; 2],
    };

    if let Some(c) = &ckpt {
        let path = run.checkpoint_path();
        let restore =
            |what: &str, e: String| CheckpointError::Restore { path: path.clone(), what: what.into(), detail: e };
        let Supernet { net, alphas } = model;
        let net = module_from_bytes(net, c.part("net", &path)?, &device).map_err(|e| restore("network", e))?;
        let alphas = module_from_bytes(alphas, c.part("alphas", &path)?, &device).map_err(|e| restore("alphas", e))?;
        model = Supernet { net, alphas };
        opt.w_optim =
            optim_from_bytes(opt.w_optim, c.part("w_optim", &path)?, &device).map_err(|e| restore("SGD state", e))?;
        opt.alpha_optim = optim_from_bytes(opt.alpha_optim, c.part("alpha_optim", &path)?, &device)
            .map_err(|e| restore("Adam state", e))?;
        opt.w_zero_grad = LegacyZeroGrad::from_seen(id_set(&c.header["w_seen"]));
        opt.alpha_zero_grad = LegacyZeroGrad::from_seen(id_set(&c.header["alpha_seen"]));
        mask_rng =
            serde_json::from_value(c.header["mask_rng"].clone()).map_err(|e| restore("mask RNG", e.to_string()))?;
        let h = &c.header;
        let meters: [Meter; 3] = serde_json::from_value(h["meters"].clone()).unwrap_or_default();
        let drops: [[u64; 2]; 2] = serde_json::from_value(h["drops"].clone()).unwrap_or_default();
        pos = Position {
            epoch: h["epoch"].as_u64().unwrap_or(0) as usize,
            step: h["step"].as_u64().unwrap_or(0) as usize,
            global_step: h["global_step"].as_u64().unwrap_or(0) as usize,
            elapsed_s: h["elapsed_s"].as_f64().unwrap_or(0.0),
            meters,
            drops,
        };
        let (e, g) = (pos.epoch, pos.global_step);
        run.truncate_metrics_at(e, g)?;
        trim_alphas_log(&run, e)?;
    }
    run.write_json("config.json", &serde_json::to_value(&cfg).expect("config is JSON"))?;

    let bar0 = indicatif::ProgressBar::hidden();
    say(
        &bar0,
        &run,
        &format!(
            "{} search `{}` on {}: {} training images, {} steps per epoch, {} cells x {} channels, space {}, r_p {} r_np {}",
            if resume { "resuming" } else { "starting" },
            cfg.name,
            kind.display_name(),
            train.len(),
            steps_per_epoch,
            cfg.layers,
            cfg.init_channels,
            cfg.search_space,
            cfg.drop_rate_param,
            cfg.drop_rate_nonparam
        ),
    );
    if resume {
        say(
            &bar0,
            &run,
            &format!("continuing at epoch {}, step {} (global step {})", pos.epoch + 1, pos.step, pos.global_step),
        );
    }

    let started = Instant::now() - std::time::Duration::from_secs_f64(pos.elapsed_s);
    let mut last = (f64::NAN, f64::NAN);
    let mut stop = false;
    for epoch in pos.epoch..cfg.epochs {
        let w_lr =
            EpochSchedule::lr_of_epoch(cfg.w_lr, cfg.w_lr_min, cfg.epochs, epoch).map_err(SearchError::Config)?;
        let warmup = epoch < cfg.warmup_epochs;
        let rates = if warmup { vec![0.0; space.groups.len()] } else { group_rates(&space, &cfg) };
        let dropout = GroupedDropout { rates: rates.clone() };
        let first_step = if epoch == pos.epoch { pos.step } else { 0 };
        if first_step == 0 {
            pos.meters = [Meter::default(); 3];
            pos.drops = [[0; 2]; 2];
        }
        let bar = epoch_bar(steps_per_epoch as u64, format!("epoch {}/{}", epoch + 1, cfg.epochs));
        bar.set_position(first_step as u64);
        say(
            &bar,
            &run,
            &format!(
                "epoch {}/{}: lr {w_lr:.6}, drop rates {rates:?}{}",
                epoch + 1,
                cfg.epochs,
                if warmup { " (warm-up)" } else { "" }
            ),
        );

        // the steps' scalars stay on the device until a log point (one read for all of them)
        let mut pending = PendingScalars::default();
        let mut since = Instant::now();
        for (step, batch) in (first_step..).zip(loader.epoch(epoch, first_step)) {
            let masks = dropout.sample_step(&space, n_nodes, &mut mask_rng);
            count_drops(&mut pos.drops, &space, &masks);
            let (x, y) = batch.to_tensors::<B>(&device);
            let sched = StepSchedule { w_lr, alpha_lr: cfg.alpha_lr, alpha_phase_1: !warmup, record_alphas: false };
            let (next, report) = dropnas_step(model, &mut opt, &step_cfg, sched, x, y, &masks);
            model = next;
            pending.push((step, pos.global_step, report.batch), report.scalars);
            pos.global_step += 1;
            pos.epoch = epoch;
            pos.step = step + 1;
            let out_of_steps = cfg.max_steps.is_some_and(|m| pos.global_step >= m);
            let mid_epoch_checkpoint =
                cfg.checkpoint_every > 0 && pos.step.is_multiple_of(cfg.checkpoint_every) && pos.step < steps_per_epoch;
            let log_point = step % cfg.print_freq.max(1) == 0 || step + 1 == steps_per_epoch;
            if !(log_point || mid_epoch_checkpoint || out_of_steps) {
                continue;
            }
            // read the queued steps: their metric lines, meters and NaN check
            let queued = pending.read();
            let dt = since.elapsed().as_secs_f64() / queued.len().max(1) as f64;
            since = Instant::now();
            for ((step, global_step, batch), values) in queued {
                let n = StepNumbers::from_values(&values, batch);
                let loss = n.loss_1 + n.loss_2;
                if !loss.is_finite() {
                    bar.finish_and_clear();
                    return Err(SearchError::NonFinite {
                        value: loss,
                        epoch: epoch + 1,
                        step,
                        checkpoint: run.checkpoint_path().display().to_string(),
                    });
                }
                pos.meters[0].update(loss, n.batch);
                pos.meters[1].update(n.top1, n.batch);
                pos.meters[2].update(n.top5, n.batch);
                run.metric(&json!({
                    "kind": "step", "epoch": epoch + 1, "step": step, "global_step": global_step,
                    "loss": loss, "loss_1": n.loss_1, "loss_2": n.loss_2, "top1": n.top1, "top5": n.top5,
                    "lr": w_lr, "norm_1": n.norm_1, "norm_2": n.norm_2, "time_s": started.elapsed().as_secs_f64(),
                    "step_s": dt,
                }))?;
                bar.set_message(format!(
                    "loss {:.3} top1 {:.1}% {:.0} img/s",
                    pos.meters[0].avg(),
                    100.0 * pos.meters[1].avg(),
                    n.batch as f64 / dt
                ));
            }
            bar.set_position(step as u64 + 1);
            if log_point {
                say(
                    &bar,
                    &run,
                    &format!(
                        "Train: [{:2}/{}] Step {:03}/{:03} Loss {:.3} Prec@(1,5) ({:.1}%, {:.1}%)",
                        epoch + 1,
                        cfg.epochs,
                        step,
                        steps_per_epoch - 1,
                        pos.meters[0].avg(),
                        100.0 * pos.meters[1].avg(),
                        100.0 * pos.meters[2].avg()
                    ),
                );
            }
            pos.elapsed_s = started.elapsed().as_secs_f64();
            if mid_epoch_checkpoint || out_of_steps {
                save_checkpoint(&run, &cfg, &model, &opt, &mask_rng, &pos)?;
            }
            last = (pos.meters[0].avg(), pos.meters[1].avg());
            if out_of_steps {
                stop = true;
                break;
            }
        }
        bar.finish_and_clear();
        if stop {
            say(
                &bar,
                &run,
                &format!("stopped after {} steps (--max-steps); resume continues from here", pos.global_step),
            );
            break;
        }

        // End of epoch: genotype, alphas, metrics, checkpoint.
        let genotype = genotype_of(&model, &space, n_nodes, &cfg);
        run.write("genotype.txt", genotype.to_string().as_bytes())?;
        append_alphas(&run, &model, &space, epoch + 1)?;
        let freq = |g: usize| {
            if pos.drops[g][1] == 0 { 0.0 } else { pos.drops[g][0] as f64 / pos.drops[g][1] as f64 }
        };
        run.metric(&json!({
            "kind": "epoch", "epoch": epoch + 1, "loss": pos.meters[0].avg(), "top1": pos.meters[1].avg(),
            "top5": pos.meters[2].avg(), "lr": w_lr, "drop_rate_param": rates.first().copied().unwrap_or(0.0),
            "drop_rate_nonparam": rates.get(1).copied().unwrap_or(0.0), "drop_freq_param": freq(0),
            "drop_freq_nonparam": freq(1), "time_s": started.elapsed().as_secs_f64(), "genotype": genotype.to_string(),
        }))?;
        say(
            &bar,
            &run,
            &format!("Train: [{:2}/{}] Final Prec@1 {:.4}%", epoch + 1, cfg.epochs, 100.0 * pos.meters[1].avg()),
        );
        say(&bar, &run, &format!("genotype = {genotype}"));
        pos.epoch = epoch + 1;
        pos.step = 0;
        pos.elapsed_s = started.elapsed().as_secs_f64();
        save_checkpoint(&run, &cfg, &model, &opt, &mask_rng, &pos)?;
        on_epoch(&run.root);
    }

    let genotype = genotype_of(&model, &space, n_nodes, &cfg);
    if !stop {
        run.write("genotype.txt", genotype.to_string().as_bytes())?;
    }
    let outcome = SearchOutcome {
        genotype,
        epochs_done: pos.epoch,
        steps_done: pos.global_step,
        final_loss: last.0,
        final_top1: last.1,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    run.write_json(
        "summary.json",
        &json!({
            "genotype": outcome.genotype.to_string(), "epochs_done": outcome.epochs_done,
            "steps_done": outcome.steps_done, "final_train_loss": outcome.final_loss,
            "final_train_top1": outcome.final_top1, "elapsed_s": outcome.elapsed_s, "finished": !stop,
            "params": count_params(&model.net), "alpha_params": count_params(&model.alphas),
        }),
    )?;
    on_epoch(&run.root);
    Ok(outcome)
}

/// Drop rates per group of `space`: r_p for the parameterised group, r_np for the other.
pub fn group_rates(space: &SearchSpace, cfg: &SearchConfig) -> Vec<f64> {
    space.groups.iter().map(|g| if g.name == "param" { cfg.drop_rate_param } else { cfg.drop_rate_nonparam }).collect()
}

fn count_drops(drops: &mut [[u64; 2]; 2], space: &SearchSpace, masks: &StepMasks) {
    for row in masks.normal.keep.iter().chain(&masks.reduce.keep) {
        for (g, group) in space.groups.iter().enumerate().take(2) {
            for &c in &group.columns {
                drops[g][0] += u64::from(!row[c]);
                drops[g][1] += 1;
            }
        }
    }
}

fn genotype_of<B: DropnasAutodiffBackend>(
    model: &Supernet<B>,
    space: &SearchSpace,
    n_nodes: usize,
    cfg: &SearchConfig,
) -> Genotype {
    derive_genotype(
        &model.alphas.rows(CellType::Normal),
        &model.alphas.rows(CellType::Reduce),
        space,
        n_nodes,
        cfg.ranking,
    )
}

/// One line of `alphas.jsonl` per epoch: raw and softmaxed alphas of both cell types.
fn append_alphas<B: DropnasAutodiffBackend>(
    run: &RunDir,
    model: &Supernet<B>,
    space: &SearchSpace,
    epoch: usize,
) -> Result<(), RunDirError> {
    let line = json!({
        "epoch": epoch,
        "ops": space.ops.iter().map(|o| o.name()).collect::<Vec<_>>(),
        "normal": model.alphas.softmax_rows(CellType::Normal),
        "reduce": model.alphas.softmax_rows(CellType::Reduce),
        "normal_raw": model.alphas.rows(CellType::Normal),
        "reduce_raw": model.alphas.rows(CellType::Reduce),
    });
    let path = run.path("alphas.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&line.to_string());
    text.push('\n');
    run.write("alphas.jsonl", text.as_bytes())
}

fn trim_alphas_log(run: &RunDir, next_epoch: usize) -> Result<(), RunDirError> {
    let path = run.path("alphas.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v["epoch"].as_u64())
                .is_some_and(|e| (e as usize) <= next_epoch)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    run.write("alphas.jsonl", kept.as_bytes())
}

fn save_checkpoint<B: DropnasAutodiffBackend>(
    run: &RunDir,
    cfg: &SearchConfig,
    model: &Supernet<B>,
    opt: &DropNasOptimizers<B>,
    mask_rng: &ChaCha8Rng,
    pos: &Position,
) -> Result<(), SearchError> {
    let path = run.checkpoint_path();
    let err = |what: &str, e: String| CheckpointError::Restore {
        path: path.clone(),
        what: format!("save {what}"),
        detail: e,
    };
    let header = json!({
        "kind": "search", "format": 1, "config": cfg, "epoch": pos.epoch, "step": pos.step,
        "global_step": pos.global_step, "elapsed_s": pos.elapsed_s, "meters": pos.meters, "drops": pos.drops,
        "mask_rng": mask_rng, "w_seen": ids(opt.w_zero_grad.seen()), "alpha_seen": ids(opt.alpha_zero_grad.seen()),
        "genotype": genotype_of(model, &SearchSpace::named(&cfg.search_space).expect("validated"), 4, cfg).to_string(),
    });
    let ckpt = Checkpoint::new(header)
        .with_part("net", module_to_bytes(&model.net).map_err(|e| err("network", e))?)
        .with_part("alphas", module_to_bytes(&model.alphas).map_err(|e| err("alphas", e))?)
        .with_part("w_optim", optim_to_bytes(&opt.w_optim).map_err(|e| err("SGD state", e))?)
        .with_part("alpha_optim", optim_to_bytes(&opt.alpha_optim).map_err(|e| err("Adam state", e))?);
    ckpt.save(&path)?;
    Ok(())
}
