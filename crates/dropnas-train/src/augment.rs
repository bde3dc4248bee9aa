//! The retraining ("augment") loop: a genotype's network trained from scratch with the
//! auxiliary head, drop path, cutout, SGD and the per-epoch cosine schedule, evaluated on the
//! test set after every epoch; last and best checkpoints; exact resume.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::eval::{EvalResult, evaluate};
use crate::grads::clip_global_norm;
use crate::metrics::{Meter, topk_correct};
use crate::pending::PendingScalars;
use crate::progress::epoch_bar;
use crate::records::{module_from_bytes, module_to_bytes, optim_from_bytes, optim_to_bytes};
use crate::run_dir::{RunDir, RunDirError};
use crate::schedule::EpochSchedule;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use dropnas_core::DropnasAutodiffBackend;
use dropnas_core::drop_path::{DropPathSource, RandomDropPath, drop_path_prob};
use dropnas_core::genotype::Genotype;
use dropnas_core::params::param_infos;
use dropnas_core::{AugmentNetwork, AugmentNetworkConfig, ParamInit, TorchCompat};
use dropnas_data::{Augment, DatasetKind, LoadOptions, Loader, LoaderConfig, Split, load};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    pub name: String,
    pub dataset: String,
    pub data_dir: PathBuf,
    pub download: bool,
    pub genotype: Genotype,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub epochs: usize,
    pub init_channels: usize,
    pub layers: usize,
    pub aux_weight: f64,
    pub cutout_length: usize,
    pub drop_path_prob: f64,
    pub seed: u64,
    pub workers: usize,
    pub max_train_samples: Option<usize>,
    pub max_test_samples: Option<usize>,
    pub out_dir: PathBuf,
    pub checkpoint_every: usize,
    pub print_freq: usize,
    pub max_steps: Option<usize>,
    /// The PyTorch whose semantics the run reproduces (`--torch-compat`): 1.0, as the
    /// published runs (BatchNorm weights U(0, 1) at the start, the auxiliary head's in-place
    /// ReLU), or modern.
    #[serde(default)]
    pub torch_compat: TorchCompat,
}

impl AugmentConfig {
    /// The original's defaults.
    pub fn new(name: &str, dataset: &str, genotype: Genotype) -> Self {
        Self {
            name: name.into(),
            dataset: dataset.into(),
            data_dir: PathBuf::from("datasets").join(dataset),
            download: true,
            genotype,
            batch_size: 192,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 3e-4,
            grad_clip: 3.0,
            epochs: 600,
            init_channels: 36,
            layers: 20,
            aux_weight: 0.4,
            cutout_length: 16,
            drop_path_prob: 0.2,
            seed: 666,
            workers: 2,
            max_train_samples: None,
            max_test_samples: None,
            out_dir: PathBuf::from("augments"),
            checkpoint_every: 0,
            print_freq: 50,
            max_steps: None,
            torch_compat: TorchCompat::default(),
        }
    }

    pub fn network(&self, kind: DatasetKind, n_classes: usize) -> AugmentNetworkConfig {
        AugmentNetworkConfig::new(
            kind.input_size(),
            kind.input_channels(),
            self.init_channels,
            n_classes,
            self.layers,
            self.aux_weight > 0.0,
            self.genotype.clone(),
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        for (flag, v) in [
            ("--batch-size", self.batch_size),
            ("--epochs", self.epochs),
            ("--layers", self.layers),
            ("--init-channels", self.init_channels),
        ] {
            if v == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return Err(format!("--lr must be in (0, 1], got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.drop_path_prob) {
            return Err(format!("--drop-path-prob must be in [0, 1), got {}", self.drop_path_prob));
        }
        if !self.init_channels.is_multiple_of(2) {
            return Err("--init-channels must be even (FactorizedReduce splits channels in two)".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
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
         ({checkpoint}) is kept. Try a lower --lr, or --resume to retry from the checkpoint"
    )]
    NonFinite { value: f64, epoch: usize, step: usize, checkpoint: String },
}

impl TrainError {
    pub fn is_user_error(&self) -> bool {
        !matches!(self, TrainError::NonFinite { .. })
    }
}

#[derive(Debug, Clone)]
pub struct AugmentOutcome {
    pub best_top1: f64,
    pub final_eval: Option<EvalResult>,
    pub params: usize,
    pub epochs_done: usize,
    pub elapsed_s: f64,
}

type SgdOptim<B> = OptimizerAdaptor<Sgd<<B as AutodiffBackend>::InnerBackend>, AugmentNetwork<B>, B>;

/// SGD with PyTorch's momentum (no dampening) and plain weight decay on every weight.
pub fn sgd<B: DropnasAutodiffBackend>(cfg: &AugmentConfig) -> SgdOptim<B> {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: cfg.momentum, dampening: 0.0, nesterov: false }))
        .with_weight_decay(Some(WeightDecayConfig { penalty: cfg.weight_decay as f32 }))
        .init()
}

/// What one augment step measured, on the device until read.
pub struct AugmentStepReport<B: Backend> {
    pub loss: Tensor<B, 1>,
    pub ce: Tensor<B, 1>,
    pub ce_aux: Option<Tensor<B, 1>>,
    pub norm: Tensor<B, 1>,
    pub correct: Tensor<B, 1>,
}

/// One training step: `loss = CE(logits) + aux_weight * CE(aux_logits)`, backward, clip the
/// global gradient norm, SGD step.
#[allow(clippy::too_many_arguments)]
pub fn augment_step<B: DropnasAutodiffBackend>(
    net: AugmentNetwork<B>,
    optim: &mut SgdOptim<B>,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
    drop: &mut dyn DropPathSource,
    aux_weight: f64,
    grad_clip: f64,
    lr: f64,
) -> (AugmentNetwork<B>, AugmentStepReport<B::InnerBackend>) {
    let device = x.device();
    let ce = CrossEntropyLossConfig::new().init(&device);
    let (logits, aux) = net.forward(x, drop, aux_weight > 0.0);
    let ce_main = ce.forward(logits.clone(), y.clone());
    let (loss, ce_aux) = match aux {
        Some(aux) => {
            let ce_aux = ce.forward(aux, y.clone());
            (ce_main.clone() + ce_aux.clone().mul_scalar(aux_weight), Some(ce_aux.inner()))
        }
        None => (ce_main.clone(), None),
    };
    let correct = topk_correct(logits.inner(), y.inner());
    let mut grads = GradientsParams::from_grads(loss.backward(), &net);
    let norm = clip_global_norm(&net, &mut grads, grad_clip).unwrap_or_else(|| Tensor::zeros([1], &device));
    let net = optim.step(lr, net, grads);
    (net, AugmentStepReport { loss: loss.inner(), ce: ce_main.inner(), ce_aux, norm, correct })
}

/// Trainable parameters without the auxiliary head, as the original reports the model size.
pub fn params_without_aux<B: Backend>(net: &AugmentNetwork<B>) -> usize {
    param_infos::<B, _>(net)
        .iter()
        .filter(|p| !p.is_running_stat && !p.path.starts_with("aux_head"))
        .map(|p| p.numel())
        .sum()
}

/// Saves a network alone with what rebuilds it (for `dropnas eval` and the best checkpoint).
fn network_checkpoint<B: dropnas_core::DropnasBackend>(
    cfg: &AugmentConfig,
    net_cfg: &AugmentNetworkConfig,
    net: &AugmentNetwork<B>,
    extra: serde_json::Value,
) -> Result<Checkpoint, String> {
    let header = json!({
        "kind": "augment", "format": 1, "network": net_cfg, "dataset": cfg.dataset,
        "genotype": cfg.genotype.to_string(), "config": cfg, "state": extra,
    });
    Ok(Checkpoint::new(header).with_part("net", module_to_bytes(net)?))
}

/// Loads a network saved by `augment` (last or best checkpoint) onto `device`.
pub fn load_network<B: dropnas_core::DropnasBackend>(
    path: &Path,
    device: &B::Device,
) -> Result<(AugmentNetwork<B>, AugmentNetworkConfig, Checkpoint), TrainError> {
    let ckpt = Checkpoint::load(path)?;
    ckpt.expect_kind("augment", path)?;
    let net_cfg: AugmentNetworkConfig = serde_json::from_value(ckpt.header["network"].clone())
        .map_err(|e| TrainError::Config(format!("{}: unreadable network description: {e}", path.display())))?;
    // the initial values are replaced by the checkpoint's; the setting only matters in training
    let net = net_cfg.init::<B>(&mut ParamInit::new(0, TorchCompat::default(), device));
    let net = module_from_bytes(net, ckpt.part("net", path)?, device).map_err(|e| CheckpointError::Restore {
        path: path.to_path_buf(),
        what: "network".into(),
        detail: e,
    })?;
    Ok((net, net_cfg, ckpt))
}

/// Runs (or continues) the retraining described by `cfg`.
/// `on_epoch` is called with the run folder after every epoch's files are written (the CLI
/// draws the plots there).
pub fn run_augment<B: DropnasAutodiffBackend>(
    mut cfg: AugmentConfig,
    device: B::Device,
    resume: bool,
    on_epoch: &mut dyn FnMut(&Path),
) -> Result<AugmentOutcome, TrainError> {
    let run = RunDir::open(&cfg.out_dir, &cfg.name, resume)?;
    let ckpt = if resume { Some(Checkpoint::load(&run.checkpoint_path())?) } else { None };
    if let Some(c) = &ckpt {
        let saved: AugmentConfig = c.run_config("augment", &run.checkpoint_path())?;
        // Only where it runs and where this invocation stops (`--max-steps`) may change.
        cfg = AugmentConfig {
            workers: cfg.workers,
            data_dir: cfg.data_dir.clone(),
            download: cfg.download,
            max_steps: cfg.max_steps,
            ..saved
        };
    }
    cfg.validate().map_err(TrainError::Config)?;
    let kind: DatasetKind = cfg.dataset.parse()?;
    let opts = LoadOptions {
        max_train_samples: cfg.max_train_samples,
        max_test_samples: cfg.max_test_samples,
        download: cfg.download,
        ..LoadOptions::default()
    };
    let train = Arc::new(load(kind, &cfg.data_dir, Split::Train, &opts)?);
    let test = Arc::new(load(kind, &cfg.data_dir, Split::Test, &opts)?);
    let loader = Loader::new(
        train.clone(),
        Augment::train(kind, cfg.cutout_length),
        LoaderConfig::train(cfg.batch_size, cfg.seed, cfg.workers),
    )?;
    let test_loader = Loader::new(test.clone(), Augment::eval(kind), LoaderConfig::eval(cfg.batch_size, cfg.workers))?;
    let steps_per_epoch = loader.batches_per_epoch();
    let net_cfg = cfg.network(kind, train.n_classes());
    net_cfg.validate().map_err(TrainError::Config)?;

    // the initial values drawn on the host from the seed: the same network on every backend
    let mut net: AugmentNetwork<B> = net_cfg.init(&mut ParamInit::new(cfg.seed, cfg.torch_compat, &device));
    let mut optim = sgd::<B>(&cfg);
    let mut drop_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (mut epoch0, mut step0, mut global_step, mut elapsed) = (0usize, 0usize, 0usize, 0.0f64);
    let mut meters = [Meter::default(); 3];
    let mut best_top1 = 0.0f64;
    if let Some(c) = &ckpt {
        let path = run.checkpoint_path();
        let restore =
            |what: &str, e: String| CheckpointError::Restore { path: path.clone(), what: what.into(), detail: e };
        net = module_from_bytes(net, c.part("net", &path)?, &device).map_err(|e| restore("network", e))?;
        optim = optim_from_bytes(optim, c.part("optim", &path)?, &device).map_err(|e| restore("SGD state", e))?;
        let s = &c.header["state"];
        drop_rng =
            serde_json::from_value(s["drop_rng"].clone()).map_err(|e| restore("drop-path RNG", e.to_string()))?;
        epoch0 = s["epoch"].as_u64().unwrap_or(0) as usize;
        step0 = s["step"].as_u64().unwrap_or(0) as usize;
        global_step = s["global_step"].as_u64().unwrap_or(0) as usize;
        elapsed = s["elapsed_s"].as_f64().unwrap_or(0.0);
        meters = serde_json::from_value(s["meters"].clone()).unwrap_or_default();
        best_top1 = s["best_top1"].as_f64().unwrap_or(0.0);
        run.truncate_metrics_at(epoch0, global_step)?;
    }
    run.write_json("config.json", &serde_json::to_value(&cfg).expect("config is JSON"))?;
    let params = params_without_aux(&net);
    let hidden = indicatif::ProgressBar::hidden();
    run.say(
        &hidden,
        &format!(
            "{} augment `{}` on {}: {} training / {} test images, {} steps per epoch",
            if resume { "resuming" } else { "starting" },
            cfg.name,
            kind.display_name(),
            train.len(),
            test.len(),
            steps_per_epoch
        ),
    );
    run.say(&hidden, &format!("genotype = {}", cfg.genotype));
    run.say(
        &hidden,
        &format!(
            "Model size = {:.3} MB ({params} parameters without the auxiliary head)",
            params as f64 / 1024.0 / 1024.0
        ),
    );
    run.write("genotype.txt", cfg.genotype.to_string().as_bytes())?;

    let started = Instant::now() - std::time::Duration::from_secs_f64(elapsed);
    let mut final_eval = None;
    let mut stopped = false;
    let mut epochs_done = epoch0;
    for epoch in epoch0..cfg.epochs {
        let lr = EpochSchedule::lr_of_epoch(cfg.lr, 0.0, cfg.epochs, epoch).map_err(TrainError::Config)?;
        let p_drop = drop_path_prob(cfg.drop_path_prob, epoch, cfg.epochs);
        let first = if epoch == epoch0 { step0 } else { 0 };
        if first == 0 {
            meters = [Meter::default(); 3];
        }
        let bar = epoch_bar(steps_per_epoch as u64, format!("epoch {}/{}", epoch + 1, cfg.epochs));
        bar.set_position(first as u64);
        run.say(&bar, &format!("Epoch {epoch} LR {lr} drop path {p_drop:.4}"));
        // the steps' scalars stay on the device until a log point (one read for all of them)
        let mut pending = PendingScalars::default();
        let mut since = Instant::now();
        for (step, batch) in (first..).zip(loader.epoch(epoch, first)) {
            let n = batch.len();
            let (x, y) = batch.to_tensors::<B>(&device);
            let mut drop = RandomDropPath { prob: p_drop, rng: &mut drop_rng };
            let (next, report) = augment_step(net, &mut optim, x, y, &mut drop, cfg.aux_weight, cfg.grad_clip, lr);
            net = next;
            pending.push((step, global_step, n), Tensor::cat(vec![report.loss, report.norm, report.correct], 0));
            global_step += 1;
            let out_of_steps = cfg.max_steps.is_some_and(|m| global_step >= m);
            let checkpoint_now =
                cfg.checkpoint_every > 0 && (step + 1) % cfg.checkpoint_every == 0 && step + 1 < steps_per_epoch;
            let log_point = step % cfg.print_freq.max(1) == 0 || step + 1 == steps_per_epoch;
            if !(log_point || checkpoint_now || out_of_steps) {
                continue;
            }
            let queued = pending.read();
            let dt = since.elapsed().as_secs_f64() / queued.len().max(1) as f64;
            since = Instant::now();
            for ((step, global_step, n), v) in queued {
                let (loss, norm, top1, top5) = (v[0], v[1], v[2] / n as f64, v[3] / n as f64);
                if !loss.is_finite() {
                    bar.finish_and_clear();
                    return Err(TrainError::NonFinite {
                        value: loss,
                        epoch: epoch + 1,
                        step,
                        checkpoint: run.checkpoint_path().display().to_string(),
                    });
                }
                meters[0].update(loss, n);
                meters[1].update(top1, n);
                meters[2].update(top5, n);
                run.metric(&json!({
                    "kind": "step", "epoch": epoch + 1, "step": step, "global_step": global_step, "loss": loss,
                    "top1": top1, "top5": top5, "lr": lr, "norm": norm, "time_s": started.elapsed().as_secs_f64(), "step_s": dt,
                }))?;
                bar.set_message(format!(
                    "loss {:.3} top1 {:.1}% {:.0} img/s",
                    meters[0].avg(),
                    100.0 * meters[1].avg(),
                    n as f64 / dt
                ));
            }
            bar.set_position(step as u64 + 1);
            if log_point {
                run.say(
                    &bar,
                    &format!(
                        "Train: [{:3}/{}] Step {:03}/{:03} Loss {:.3} Prec@(1,5) ({:.1}%, {:.1}%)",
                        epoch + 1,
                        cfg.epochs,
                        step,
                        steps_per_epoch - 1,
                        meters[0].avg(),
                        100.0 * meters[1].avg(),
                        100.0 * meters[2].avg()
                    ),
                );
            }
            let state = |e: usize, s: usize| {
                json!({
                    "epoch": e, "step": s, "global_step": global_step, "elapsed_s": started.elapsed().as_secs_f64(),
                    "meters": meters, "best_top1": best_top1, "drop_rng": drop_rng,
                })
            };
            if checkpoint_now || out_of_steps {
                save_last(&run, &cfg, &net_cfg, &net, &optim, state(epoch, step + 1))?;
            }
            if out_of_steps {
                stopped = true;
                break;
            }
        }
        bar.finish_and_clear();
        if stopped {
            run.say(&bar, &format!("stopped after {global_step} steps (--max-steps); --resume continues from here"));
            break;
        }

        // Evaluation on the test set, without an autodiff graph.
        let inner = net.valid();
        let eval = evaluate(&inner, &test_loader, &device);
        let is_best = eval.top1 > best_top1;
        if is_best {
            best_top1 = eval.top1;
        }
        run.say(&bar, &format!("Train: [{:3}/{}] Final Prec@1 {:.4}%", epoch + 1, cfg.epochs, 100.0 * meters[1].avg()));
        run.say(
            &bar,
            &format!(
                "Valid: [{:3}/{}] Loss {:.3} Prec@(1,5) ({:.2}%, {:.2}%)",
                epoch + 1,
                cfg.epochs,
                eval.loss,
                100.0 * eval.top1,
                100.0 * eval.top5
            ),
        );
        run.metric(&json!({
            "kind": "epoch", "epoch": epoch + 1, "train_loss": meters[0].avg(), "train_top1": meters[1].avg(),
            "train_top5": meters[2].avg(), "val_loss": eval.loss, "val_top1": eval.top1, "val_top5": eval.top5,
            "lr": lr, "drop_path_prob": p_drop, "best_top1": best_top1, "time_s": started.elapsed().as_secs_f64(),
        }))?;
        let fresh = [Meter::default(); 3];
        let state = json!({
            "epoch": epoch + 1, "step": 0, "global_step": global_step, "elapsed_s": started.elapsed().as_secs_f64(),
            "meters": fresh, "best_top1": best_top1, "drop_rng": drop_rng, "val": eval,
        });
        save_last(&run, &cfg, &net_cfg, &net, &optim, state.clone())?;
        if is_best {
            let best = network_checkpoint(&cfg, &net_cfg, &inner, state)
                .map_err(|e| TrainError::Config(format!("saving best: {e}")))?;
            best.save(&run.path("best.ckpt"))?;
        }
        final_eval = Some(eval);
        epochs_done = epoch + 1;
        on_epoch(&run.root);
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    if !stopped {
        run.say(&hidden, &format!("Final best Prec@1 = {:.4}%", 100.0 * best_top1));
    }
    run.write_json(
        "summary.json",
        &json!({
            "genotype": cfg.genotype.to_string(), "params_without_aux": params, "best_top1": best_top1,
            "final": final_eval, "epochs_done": epochs_done, "elapsed_s": elapsed_s, "finished": !stopped,
        }),
    )?;
    on_epoch(&run.root);
    Ok(AugmentOutcome { best_top1, final_eval, params, epochs_done, elapsed_s })
}

fn save_last<B: DropnasAutodiffBackend>(
    run: &RunDir,
    cfg: &AugmentConfig,
    net_cfg: &AugmentNetworkConfig,
    net: &AugmentNetwork<B>,
    optim: &SgdOptim<B>,
    state: serde_json::Value,
) -> Result<(), TrainError> {
    let fail = |e: String| TrainError::Config(format!("saving checkpoint: {e}"));
    let ckpt = network_checkpoint(cfg, net_cfg, net, state)
        .map_err(fail)?
        .with_part("optim", optim_to_bytes(optim).map_err(fail)?);
    ckpt.save(&run.checkpoint_path())?;
    Ok(())
}

/// Timing of the augment training step on random data: what `dropnas bench augment` reports.
pub mod bench {
    use super::{AugmentConfig, augment_step, sgd};
    use burn::tensor::{Distribution, Int, Tensor, TensorData};
    use dropnas_core::drop_path::RandomDropPath;
    use dropnas_core::genotype::Genotype;
    use dropnas_core::{AugmentNetworkConfig, DropnasAutodiffBackend, ParamInit, TorchCompat};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::time::Instant;

    /// Seconds per step (median, min, max over `steps` after `warmup`) of `genotype` at
    /// `layers` x `channels` with batch `batch` of 32x32x3 input, 10 classes, the auxiliary
    /// head and drop path 0.2, under PyTorch semantics `compat`.
    #[allow(clippy::too_many_arguments)]
    pub fn bench_augment<B: DropnasAutodiffBackend>(
        genotype: Genotype,
        compat: TorchCompat,
        layers: usize,
        channels: usize,
        batch: usize,
        steps: usize,
        warmup: usize,
        device: B::Device,
    ) -> Result<Vec<f64>, String> {
        let net_cfg = AugmentNetworkConfig::new(32, 3, channels, 10, layers, true, genotype.clone());
        net_cfg.validate()?;
        B::seed(&device, 0);
        let mut net = net_cfg.init::<B>(&mut ParamInit::new(0, compat, &device));
        let cfg = AugmentConfig::new("bench", "cifar10", genotype);
        let mut optim = sgd::<B>(&cfg);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut times = Vec::new();
        for i in 0..warmup + steps {
            let x = Tensor::<B, 4>::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let labels: Vec<i64> = (0..batch).map(|_| rng.random_range(0..10)).collect();
            let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [batch]), &device);
            let t0 = Instant::now();
            let mut drop = RandomDropPath { prob: 0.2, rng: &mut rng };
            let (next, report) = augment_step(net, &mut optim, x, y, &mut drop, cfg.aux_weight, cfg.grad_clip, cfg.lr);
            net = next;
            let loss: f64 = report.loss.into_scalar().elem();
            if !loss.is_finite() {
                return Err(format!("loss became {loss} at step {i}"));
            }
            if i >= warmup {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        Ok(times)
    }

    use burn::tensor::ElementConversion;
}
