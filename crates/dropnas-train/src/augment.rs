//! The retraining ("augment") as a task of the run engine: a genotype's network trained from
//! scratch with the auxiliary head, drop path, cutout, SGD and the per-epoch cosine schedule,
//! tested after every epoch. The engine ([`crate::run`]) does the rest (last and best
//! checkpoints, exact resume).

use crate::eval::{EvalResult, evaluate};
use crate::grads::clip_global_norm;
use crate::loss::{check_label_smoothing, smoothed_cross_entropy};
use crate::metrics::topk_correct;
use crate::parallel::Share;
use crate::parallel::flat::GradPart;
use crate::recipe::Recipe;
use crate::records::{module_from_bytes, module_to_bytes, optim_from_bytes, optim_to_bytes};
use crate::run::check::parse;
use crate::run::checkpoint::{Checkpoint, CheckpointError, CheckpointHeader};
use crate::run::config::{Basics, RunBasics, TaskConfig, check_args, clap_defaults};
use crate::run::data::RunData;
use crate::run::folder::RunFolder;
use crate::run::lines::{EpochLine, LossTerms, RunKind, Summary};
use crate::run::memory::MemoryEstimate;
use crate::run::{EpochEnd, EpochStart, RunError, RunTask, StepResult};
use crate::schedule::LrSchedule;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use dropnas_core::DropnasAutodiffBackend;
use dropnas_core::drop_path::{DropPathSource, RandomDropPath, drop_path_prob};
use dropnas_core::flops::{NetworkCost, augment_network_cost, human};
use dropnas_core::genotype::Genotype;
use dropnas_core::params::param_infos;
use dropnas_core::search_network::cell_plan;
use dropnas_core::{AugmentNetwork, AugmentNetworkConfig, NetworkKind, ParamInit, TorchCompat};
use dropnas_data::{Batch, Dataset, FolderTransforms, Loader};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The retraining's hyper-parameters (everything but the data set and the genotype), with the
/// original's defaults.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentSettings {
    /// Images per step
    #[arg(long, default_value_t = 192, value_parser = parse::at_least_one)]
    pub batch_size: usize,
    /// Learning rate (cosine-annealed per epoch down to 0)
    #[arg(long, default_value_t = 0.05, value_parser = parse::positive)]
    pub lr: f64,
    /// SGD momentum
    #[arg(long, default_value_t = 0.9, value_parser = parse::unit_interval)]
    pub momentum: f64,
    /// Weight decay of every weight
    #[arg(long, default_value_t = 3e-4, value_parser = parse::non_negative)]
    pub weight_decay: f64,
    /// Global L2 norm the gradients are clipped to
    #[arg(long, default_value_t = 3.0, value_parser = parse::positive)]
    pub grad_clip: f64,
    /// Epochs (at least 3 with the original's schedule: its last epoch trains at lr 0)
    #[arg(long, default_value_t = 600, value_parser = parse::at_least_one)]
    pub epochs: usize,
    /// Channels of the first cell (doubled at each reduction cell)
    #[arg(long, default_value_t = 36, value_parser = parse::even_positive)]
    pub init_channels: usize,
    /// Cells (reduction cells at 1/3 and 2/3)
    #[arg(long, default_value_t = 20, value_parser = parse::at_least_one)]
    pub layers: usize,
    /// Weight of the auxiliary head's loss (0: no auxiliary head)
    #[arg(long, default_value_t = 0.4, value_parser = parse::non_negative)]
    pub aux_weight: f64,
    /// Side of the cutout square (0: no cutout)
    #[arg(long, default_value_t = 16)]
    pub cutout_length: usize,
    /// Final drop-path probability (rises linearly from 0 over the epochs)
    #[arg(long, default_value_t = 0.2, value_parser = parse::unit_interval)]
    pub drop_path_prob: f64,
    /// Label smoothing of the training loss, main and auxiliary (0: plain cross entropy)
    #[arg(long, default_value_t = 0.0, value_parser = parse::unit_interval)]
    pub label_smoothing: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunBasics,
    /// Test on only the first N test images
    #[arg(long, value_parser = parse::at_least_one)]
    pub max_test_samples: Option<usize>,
    /// PyTorch semantics: 1.0 (what the published runs used: BatchNorm weights U(0, 1), the
    /// auxiliary head's in-place ReLU) or modern (PyTorch >= 2.0)
    #[arg(long, default_value_t = TorchCompat::default())]
    #[serde(default)]
    pub torch_compat: TorchCompat,
}

impl Default for AugmentSettings {
    fn default() -> Self {
        clap_defaults(&[])
    }
}

/// A retraining: the data set, the genotype, the network and the hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    pub dataset: Dataset,
    #[serde(with = "dropnas_core::genotype::as_text")]
    pub genotype: Genotype,
    #[serde(flatten)]
    pub settings: AugmentSettings,
    /// The recipe the defaults came from (for the record; the values are the fields).
    #[serde(default)]
    pub recipe: Recipe,
    /// The network of the DARTS family the genotype is built into.
    #[serde(default)]
    pub network: NetworkKind,
    /// How the learning rate moves over the epochs.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// `--dataset imagefolder`: input size and preprocessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_folder: Option<FolderTransforms>,
}

impl AugmentConfig {
    /// The original's defaults (DropNAS' CIFAR recipe).
    pub fn defaults(dataset: Dataset, genotype: Genotype) -> Self {
        Self {
            dataset,
            genotype,
            settings: AugmentSettings::default(),
            recipe: Recipe::Cifar,
            network: NetworkKind::Cifar,
            lr_schedule: LrSchedule::default(),
            image_folder: None,
        }
    }

    /// Side and channels of the network input: the built-in data set's, or the image folder's
    /// `--input-size` (3 channels).
    pub fn input(&self) -> Result<(usize, usize), String> {
        match (self.dataset, &self.image_folder) {
            (Dataset::Builtin(kind), _) => Ok((kind.input_channels(), kind.input_size())),
            (Dataset::ImageFolder, Some(t)) => Ok((3, t.input_size)),
            (Dataset::ImageFolder, None) => Err("--dataset imagefolder needs its preprocessing (--input-size)".into()),
        }
    }

    /// The network for inputs of `input_channels` x `input_size` x `input_size`.
    pub fn network(&self, input_channels: usize, input_size: usize, n_classes: usize) -> AugmentNetworkConfig {
        let s = &self.settings;
        AugmentNetworkConfig::new(
            input_size,
            input_channels,
            s.init_channels,
            n_classes,
            s.layers,
            s.aux_weight > 0.0,
            self.genotype.clone(),
        )
        .with_network(self.network)
    }
}

impl TaskConfig for AugmentConfig {
    fn validate(&self) -> Result<(), String> {
        check_args(&self.settings)?;
        if self.settings.lr > 1.0 {
            return Err(format!("--lr must be at most 1, got {}", self.settings.lr));
        }
        check_label_smoothing(self.settings.label_smoothing)?;
        self.lr_schedule.validate()?;
        if let Some(t) = &self.image_folder {
            t.validate().map_err(|e| e.to_string())?;
        }
        let (channels, size) = self.input()?;
        let classes = self.dataset.builtin().map_or(2, |k| k.n_classes(false));
        self.network(channels, size, classes).validate()
    }

    fn max_test_samples(&self) -> Option<usize> {
        self.settings.max_test_samples
    }

    fn basics(&self) -> Basics {
        let s = &self.settings;
        Basics::new(self.dataset, self.image_folder.as_ref(), s.batch_size, s.epochs, &s.run)
    }
}

type SgdOptim<B> = OptimizerAdaptor<Sgd<<B as AutodiffBackend>::InnerBackend>, AugmentNetwork<B>, B>;

/// SGD with PyTorch's momentum (no dampening) and plain weight decay on every weight.
pub fn sgd<B: DropnasAutodiffBackend>(s: &AugmentSettings) -> SgdOptim<B> {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: s.momentum, dampening: 0.0, nesterov: false }))
        .with_weight_decay(Some(WeightDecayConfig { penalty: s.weight_decay as f32 }))
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

impl<B: Backend> AugmentStepReport<B> {
    /// The step's scalars as one tensor, still on the device (any number of steps' come back in
    /// one transfer): loss, ce, norm, top-1 and top-5 counts, then ce_aux when there is one.
    pub fn scalars(self) -> Tensor<B, 1> {
        let mut parts = vec![self.loss, self.ce, self.norm, self.correct];
        parts.extend(self.ce_aux);
        Tensor::cat(parts, 0)
    }

    /// The numbers of a step from the values of its [`Self::scalars`].
    pub fn result(v: &[f64], batch: usize) -> StepResult {
        let n = batch as f64;
        StepResult {
            loss: v[0],
            top1: v[3] / n,
            top5: v[4] / n,
            terms: LossTerms { ce: Some(v[1]), ce_aux: v.get(5).copied(), norm: Some(v[2]), ..LossTerms::default() },
        }
    }

    /// One transfer from the device for all of the step's scalars.
    pub fn read(self, batch: usize) -> StepResult {
        let v: Vec<f64> = self.scalars().into_data().convert::<f64>().into_vec::<f64>().unwrap_or_default();
        Self::result(&v, batch)
    }
}

/// One training step: `loss = CE(logits) + aux_weight * CE(aux_logits)` (both cross entropies
/// with `label_smoothing`), backward, clip the global gradient norm, SGD step.
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
    label_smoothing: f64,
    share: Option<&Share<'_, B::InnerBackend>>,
) -> (AugmentNetwork<B>, AugmentStepReport<B::InnerBackend>) {
    let device = x.device();
    let (logits, aux) = net.forward(x, drop, aux_weight > 0.0);
    let ce_main = smoothed_cross_entropy(logits.clone(), y.clone(), label_smoothing);
    let (loss, ce_aux) = match aux {
        Some(aux) => {
            let ce_aux = smoothed_cross_entropy(aux, y.clone(), label_smoothing);
            (ce_main.clone() + ce_aux.clone().mul_scalar(aux_weight), Some(ce_aux.inner()))
        }
        None => (ce_main.clone(), None),
    };
    let correct = topk_correct(logits.inner(), y.inner());
    let mut grads = GradientsParams::from_grads(loss.backward(), &net);
    // Data parallelism: gradients, losses and correct counts summed over the peers (each
    // weighted by its share of the batch) before clipping.
    let (loss, ce_main, ce_aux, correct) = match share {
        Some(s) => {
            let mut means = vec![loss.inner(), ce_main.inner()];
            means.extend(ce_aux.clone());
            let has_aux = ce_aux.is_some();
            let parts: &mut [&mut dyn GradPart<B>] = &mut [&mut (&net, &mut grads)];
            let (m, correct) = s.reduce(parts, Tensor::cat(means, 0), correct);
            let aux = has_aux.then(|| m.clone().narrow(0, 2, 1));
            (m.clone().narrow(0, 0, 1), m.narrow(0, 1, 1), aux, correct)
        }
        None => (loss.inner(), ce_main.inner(), ce_aux, correct),
    };
    let norm = clip_global_norm(&net, &mut grads, grad_clip).unwrap_or_else(|| Tensor::zeros([1], &device));
    let net = optim.step(lr, net, grads);
    (net, AugmentStepReport { loss, ce: ce_main, ce_aux, norm, correct })
}

/// Trainable parameters without the auxiliary head, as the original reports the model size.
pub fn params_without_aux<B: Backend>(net: &AugmentNetwork<B>) -> usize {
    param_infos::<B, _>(net)
        .iter()
        .filter(|p| !p.is_running_stat && !p.path.starts_with("aux_head"))
        .map(|p| p.numel())
        .sum()
}

/// What an augment checkpoint holds besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AugmentState {
    /// The generator of the drop-path masks.
    pub drop_rng: ChaCha8Rng,
    /// Best test top-1 so far, and its epoch (1-based).
    pub best_top1: f64,
    pub best_epoch: Option<u32>,
    /// The test result of the last finished epoch.
    pub val: Option<EvalResult>,
    /// What rebuilds the network (`dropnas eval` reads it).
    pub network: AugmentNetworkConfig,
}

/// A checkpoint written by `augment` (`checkpoint.ckpt` or `best.ckpt`).
pub type AugmentHeader = CheckpointHeader<AugmentConfig, AugmentState>;

/// A retraining in progress.
pub struct AugmentTask<B: DropnasAutodiffBackend> {
    cfg: AugmentConfig,
    net: Option<AugmentNetwork<B>>,
    optim: SgdOptim<B>,
    state: AugmentState,
    test: Loader,
    device: B::Device,
    params: usize,
    input_shape: [usize; 3],
    cost: NetworkCost,
    /// This epoch's learning rate and drop-path probability.
    lr: f64,
    drop_prob: f64,
}

impl<B: DropnasAutodiffBackend> AugmentTask<B> {
    fn net(&self) -> &AugmentNetwork<B> {
        self.net.as_ref().expect("the network is back after every step")
    }
}

impl<B: DropnasAutodiffBackend> RunTask<B> for AugmentTask<B> {
    const KIND: RunKind = RunKind::Augment;
    const MODEL_PARTS: &'static [&'static str] = &["net"];
    const EPOCH_WIDTH: usize = 3;
    const NAN_HINT: &'static str = "Try a lower --lr";
    type Config = AugmentConfig;
    type State = AugmentState;

    fn cutout(cfg: &AugmentConfig) -> usize {
        cfg.settings.cutout_length
    }

    fn needs_test_set() -> bool {
        true
    }

    fn warnings(cfg: &AugmentConfig) -> Vec<String> {
        let epochs = cfg.settings.epochs;
        if epochs >= 3 {
            return Vec::new();
        }
        // the original's schedule is stepped at the start of each epoch: its last epoch runs at lr 0
        let what = if epochs == 1 {
            "the only epoch trains at learning rate 0: nothing is learned"
        } else {
            "the second epoch trains at learning rate 0: only one epoch trains"
        };
        vec![format!(
            "--epochs {epochs}: with the original's schedule (cosine, stepped at the start of each epoch) {what}; \
             use at least 3 epochs (the paper: 600)"
        )]
    }

    /// Calibrated on `dropnas bench augment` peaks of dropnas-cifar10 at (20, 36, 32) and
    /// (20, 36, 96): about 3.6 saved floats per output element of every op, plus 55 MiB.
    fn estimate_memory(cfg: &AugmentConfig, data: &RunData) -> MemoryEstimate {
        let s = &cfg.settings;
        let ops = 2.0 * cfg.genotype.normal.len() as f64;
        // (the ImageNet network's stems shrink the input 8 times before the first cell)
        let side = match cfg.network {
            NetworkKind::Cifar => data.input_shape()[1],
            NetworkKind::Imagenet => data.input_shape()[1].div_ceil(8),
        };
        let per_sample: f64 =
            cell_plan(s.layers, s.init_channels, side).iter().map(|&(_, c, side)| ops * (c * side * side) as f64).sum();
        let bytes = (55 << 20) as f64 + data.resident_bytes() as f64 + 3.6 * 4.0 * s.batch_size as f64 * per_sample;
        MemoryEstimate { bytes: bytes as u64, reduced_by: "--batch-size, --init-channels or --layers" }
    }

    fn new(cfg: &AugmentConfig, data: &RunData, device: &B::Device) -> Result<Self, RunError> {
        let test = data.test.as_ref().ok_or_else(|| RunError::Config("no test set loaded".into()))?.loader.clone();
        let input_shape = data.input_shape();
        let network = cfg.network(input_shape[0], input_shape[1], data.train.loader.n_classes());
        network.validate().map_err(RunError::Config)?;
        let s = &cfg.settings;
        B::seed(device, s.run.seed);
        // the initial values drawn on the host from the seed: the same network on every backend
        let net: AugmentNetwork<B> = network.init(&mut ParamInit::new(s.run.seed, s.torch_compat, device));
        let params = params_without_aux(&net);
        let cost = augment_network_cost(&net, input_shape).map_err(RunError::Config)?;
        Ok(Self {
            optim: sgd::<B>(s),
            net: Some(net),
            state: AugmentState {
                drop_rng: ChaCha8Rng::seed_from_u64(s.run.seed),
                best_top1: 0.0,
                best_epoch: None,
                val: None,
                network,
            },
            test,
            device: device.clone(),
            params,
            input_shape,
            cost,
            lr: s.lr,
            drop_prob: 0.0,
            cfg: cfg.clone(),
        })
    }

    fn describe(&self) -> Vec<String> {
        let [c, h, w] = self.input_shape;
        let smoothing = self.cfg.settings.label_smoothing;
        vec![
            format!(
                "{} network, {} multiply-adds per {c}x{h}x{w} image ({} with BN, ReLU and pooling), lr {} {}{}",
                self.cfg.network,
                human(self.cost.network.macs),
                human(self.cost.network.ptflops()),
                self.cfg.settings.lr,
                self.cfg.lr_schedule.describe(),
                if smoothing > 0.0 { format!(", label smoothing {smoothing}") } else { String::new() }
            ),
            format!("genotype = {}", self.cfg.genotype),
            // the original's line, with the count it stands for
            format!(
                "Model size = {:.3} MB ({} parameters without the auxiliary head; MB = parameters / 2^20)",
                self.params as f64 / 1048576.0,
                dropnas_core::params::thousands(self.params as u64)
            ),
        ]
    }

    fn restore(&mut self, state: AugmentState, ckpt: &Checkpoint, path: &Path) -> Result<(), CheckpointError> {
        let restore =
            |what: &str, e: String| CheckpointError::Restore { path: path.to_path_buf(), what: what.into(), detail: e };
        let net = self.net.take().expect("a network");
        self.net =
            Some(module_from_bytes(net, ckpt.part("net", path)?, &self.device).map_err(|e| restore("network", e))?);
        let optim = std::mem::replace(&mut self.optim, sgd::<B>(&self.cfg.settings));
        self.optim =
            optim_from_bytes(optim, ckpt.part("optim", path)?, &self.device).map_err(|e| restore("SGD state", e))?;
        self.state = state;
        Ok(())
    }

    fn save(&self) -> Result<(AugmentState, Vec<(String, Vec<u8>)>), String> {
        let parts = vec![("net".into(), module_to_bytes(self.net())?), ("optim".into(), optim_to_bytes(&self.optim)?)];
        Ok((self.state.clone(), parts))
    }

    fn start_epoch(&mut self, epoch: usize, _fresh: bool) -> Result<EpochStart, RunError> {
        let s = &self.cfg.settings;
        self.lr = self.cfg.lr_schedule.lr_of_epoch(s.lr, s.epochs, epoch).map_err(RunError::Config)?;
        self.drop_prob = drop_path_prob(s.drop_path_prob, epoch, s.epochs);
        Ok(EpochStart { lr: self.lr, message: format!("Epoch {epoch} LR {} drop path {:.4}", self.lr, self.drop_prob) })
    }

    fn step(&mut self, batch: &Batch, share: Option<&Share<'_, B::InnerBackend>>) -> Tensor<B::InnerBackend, 1> {
        let s = &self.cfg.settings;
        let (x, y) = batch.to_tensors::<B>(&self.device);
        let mut drop = RandomDropPath { prob: self.drop_prob, rng: &mut self.state.drop_rng };
        let net = self.net.take().expect("a network");
        let (next, report) = augment_step(
            net,
            &mut self.optim,
            x,
            y,
            &mut drop,
            s.aux_weight,
            s.grad_clip,
            self.lr,
            s.label_smoothing,
            share,
        );
        self.net = Some(next);
        report.scalars()
    }

    fn step_result(values: &[f64], batch: usize) -> StepResult {
        AugmentStepReport::<B::InnerBackend>::result(values, batch)
    }

    fn fingerprint(&self) -> Option<u32> {
        let mut crc = crc32fast::Hasher::new();
        crate::parallel::fingerprint::add_trained(self.net(), &mut crc);
        Some(crc.finalize())
    }

    fn end_epoch(&mut self, epoch: usize, train: [f64; 3], _folder: &RunFolder) -> Result<EpochEnd, RunError> {
        // on the inner backend: no autodiff graph
        let eval = evaluate(&self.net().valid(), &self.test, &self.device)?;
        let is_best = eval.top1 > self.state.best_top1 || self.state.best_epoch.is_none();
        if is_best {
            self.state.best_top1 = eval.top1;
            self.state.best_epoch = Some(epoch as u32 + 1);
        }
        self.state.val = Some(eval);
        let epochs = self.cfg.settings.epochs;
        let line = EpochLine {
            train_loss: Some(train[0]),
            train_top1: Some(train[1]),
            train_top5: Some(train[2]),
            val_loss: Some(eval.loss),
            val_top1: Some(eval.top1),
            val_top5: Some(eval.top5),
            drop_path_prob: Some(self.drop_prob),
            best_top1: Some(self.state.best_top1),
            ..EpochLine::default()
        };
        let message = format!(
            "Valid: [{:3}/{epochs}] Loss {:.3} Prec@(1,5) ({:.2}%, {:.2}%)",
            epoch + 1,
            eval.loss,
            100.0 * eval.top1,
            100.0 * eval.top5
        );
        Ok(EpochEnd { line, messages: vec![message], is_best, warnings: Vec::new(), scalars: Vec::new() })
    }

    fn finish(&self, folder: &RunFolder, finished: bool, summary: &mut Summary) -> Result<(), RunError> {
        folder.write("genotype.txt", self.cfg.genotype.to_string().as_bytes())?;
        if finished {
            folder.say(
                &indicatif::ProgressBar::hidden(),
                &format!("Final best Prec@1 = {:.4}%", 100.0 * self.state.best_top1),
            );
        }
        summary.genotype = Some(self.cfg.genotype.to_string());
        summary.params_without_aux = Some(self.params as u64);
        summary.best_top1 = Some(self.state.best_top1);
        summary.best_epoch = self.state.best_epoch;
        summary.final_eval = self.state.val;
        summary.input_shape = Some(self.input_shape);
        summary.network = Some(self.cfg.network);
        summary.flops = Some(self.cost);
        Ok(())
    }
}

/// Loads a network saved by `augment` (last or best checkpoint) onto `device`.
pub fn load_network<B: dropnas_core::DropnasBackend>(
    path: &Path,
    device: &B::Device,
) -> Result<(AugmentNetwork<B>, AugmentHeader), RunError> {
    let ckpt = Checkpoint::load(path)?;
    ckpt.expect_kind(RunKind::Augment, path)?;
    let header: AugmentHeader = ckpt.header(path)?;
    // the initial values are replaced by the checkpoint's; the setting only matters in training
    let net = header.state.network.init::<B>(&mut ParamInit::new(0, TorchCompat::default(), device));
    let net = module_from_bytes(net, ckpt.part("net", path)?, device).map_err(|e| CheckpointError::Restore {
        path: path.to_path_buf(),
        what: "network".into(),
        detail: e,
    })?;
    Ok((net, header))
}

/// Timing of the augment training step on random data: what `dropnas bench augment` reports.
pub mod bench {
    use super::{AugmentSettings, augment_step, sgd};
    use burn::tensor::{Distribution, ElementConversion, Int, Tensor, TensorData};
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
        let net_cfg = AugmentNetworkConfig::new(32, 3, channels, 10, layers, true, genotype);
        net_cfg.validate()?;
        B::seed(&device, 0);
        let mut net = net_cfg.init::<B>(&mut ParamInit::new(0, compat, &device));
        let s = AugmentSettings::default();
        let mut optim = sgd::<B>(&s);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut times = Vec::new();
        for i in 0..warmup + steps {
            let x = Tensor::<B, 4>::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let labels: Vec<i64> = (0..batch).map(|_| rng.random_range(0..10)).collect();
            let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [batch]), &device);
            let t0 = Instant::now();
            let mut drop = RandomDropPath { prob: 0.2, rng: &mut rng };
            let (next, report) =
                augment_step(net, &mut optim, x, y, &mut drop, s.aux_weight, s.grad_clip, s.lr, 0.0, None);
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
}
