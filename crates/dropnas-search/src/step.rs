//! One DropNAS training step, top to bottom, with the paper's names.
//!
//! One level: the same batch trains the weights `w` (SGD) and the architecture parameters
//! `alpha` (Adam). Per step, grouped operation dropout picks which ops of each edge run
//! ([`StepMasks`]); the mixing weights are a softmax over the kept ops only.
//!
//! 1. `loss_1` = cross entropy under this step's masks; backward.
//! 2. clip the weights' gradients to a global norm; SGD step on `w`, Adam step on `alpha`.
//! 3. partial decay: `loss_2` on the weights and alphas that took part in step 1.
//! 4. clip again; SGD and Adam step again with the same optimizer state.
//! 5. alpha adjustment: every edge's kept ops get back the probability mass they had.
//!
//! Nothing is read back to the host inside the step (each read waits for the device to finish
//! and stops the host from queueing the next step): the clipping, the decay selections and
//! the alpha adjustment are tensor operations, and the step's scalars stay on the device until
//! the loop reads them ([`StepReport::read`], `dropnas_train::pending::PendingScalars`). The one exception
//! is PyTorch >= 2.0's semantics (`--torch-compat modern`), where which weights get a decay
//! gradient decides which get an SGD step at all: one read of the decay selection per step.

use crate::alpha_adam::AlphaAdam;
use crate::alpha_adjust::KeptMass;
use crate::config::SearchSettings;
use crate::decay::{DecaySelection, alpha_decay, alpha_decay_masks, weight_decay};
use burn::module::{AutodiffModule, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use dropnas_core::alphas::{Alphas, CellType};
use dropnas_core::dropout::StepMasks;
use dropnas_core::search_network::{SearchNetwork, Supernet};
use dropnas_core::{DropnasAutodiffBackend, TorchCompat};
use dropnas_train::grads::{LegacyZeroGrad, clip_global_norm, first_grad_nonzero, flagged_ids};
use dropnas_train::metrics::topk_correct;
use dropnas_train::parallel::Share;
use dropnas_train::parallel::flat::GradPart;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a step, taken from the search's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepConfig {
    pub w_momentum: f64,
    pub w_grad_clip: f64,
    pub w_weight_decay: f64,
    pub alpha_weight_decay: f64,
    pub alpha_beta1: f64,
    pub alpha_beta2: f64,
    pub alpha_eps: f64,
    /// The PyTorch whose semantics the step reproduces: 1.0 (the default, what produced the
    /// published numbers) zero-fills gradients, under which SGD momentum keeps moving the
    /// weights of dropped ops, and uses PyTorch 1.0's Adam epsilon placement.
    pub torch_compat: TorchCompat,
}

/// The original's Adam on the alphas: betas (0.5, 0.999), epsilon 1e-8 (not flags there either).
pub const ALPHA_BETAS: (f64, f64) = (0.5, 0.999);
pub const ALPHA_EPS: f64 = 1e-8;

impl From<&SearchSettings> for StepConfig {
    fn from(s: &SearchSettings) -> Self {
        Self {
            w_momentum: s.w_momentum,
            w_grad_clip: s.w_grad_clip,
            w_weight_decay: s.w_weight_decay,
            alpha_weight_decay: s.alpha_weight_decay,
            alpha_beta1: ALPHA_BETAS.0,
            alpha_beta2: ALPHA_BETAS.1,
            alpha_eps: ALPHA_EPS,
            torch_compat: s.torch_compat,
        }
    }
}

impl Default for StepConfig {
    /// The step of the original's defaults.
    fn default() -> Self {
        Self::from(&SearchSettings::default())
    }
}

/// The two optimizers and the gradient bookkeeping that persists across steps.
pub struct DropNasOptimizers<B: DropnasAutodiffBackend> {
    pub w_optim: OptimizerAdaptor<Sgd<B::InnerBackend>, SearchNetwork<B>, B>,
    pub alpha_optim: OptimizerAdaptor<AlphaAdam, Alphas<B>, B>,
    pub w_zero_grad: LegacyZeroGrad,
    pub alpha_zero_grad: LegacyZeroGrad,
}

impl<B: DropnasAutodiffBackend> DropNasOptimizers<B> {
    /// SGD with PyTorch's momentum (no dampening; Burn's default dampening is 0.1) and no
    /// built-in decay; Adam as the configured PyTorch computed it, without built-in decay.
    pub fn new(cfg: &StepConfig) -> Self {
        let momentum = MomentumConfig { momentum: cfg.w_momentum, dampening: 0.0, nesterov: false };
        let adam = AlphaAdam {
            beta_1: cfg.alpha_beta1,
            beta_2: cfg.alpha_beta2,
            epsilon: cfg.alpha_eps,
            compat: cfg.torch_compat,
        };
        Self {
            w_optim: SgdConfig::new().with_momentum(Some(momentum)).init(),
            alpha_optim: OptimizerAdaptor::from(adam),
            w_zero_grad: LegacyZeroGrad::default(),
            alpha_zero_grad: LegacyZeroGrad::default(),
        }
    }
}

/// What a step measured, still on the device (read once, with [`StepReport::read`]).
pub struct StepReport<B: Backend> {
    /// `[loss_1, loss_2, norm_1, norm_2, top-1 correct, top-5 correct]`: one tensor, so that
    /// any number of steps' scalars come back in one transfer.
    pub scalars: Tensor<B, 1>,
    pub batch: usize,
    /// The alphas after each phase, on the host (`[normal, reduce]`, edge rows), when the
    /// schedule asks for them (tests: each costs a host read).
    pub alphas_after_phase_1: Option<[Vec<Vec<f32>>; 2]>,
    pub alphas_after_phase_2: Option<[Vec<Vec<f32>>; 2]>,
    pub alphas_after_adjust: Option<[Vec<Vec<f32>>; 2]>,
    /// The weight tensors that took part (partial decay's candidates) and whether each was
    /// selected (1) or not (0), on the device.
    pub decay_flags: Vec<(ParamId, Tensor<B, 1>)>,
    /// Each alpha tensor's partial-decay mask (1 where `|grad of loss_1| > 1e-7`), on the device.
    pub alpha_decay_masks: Vec<(ParamId, Tensor<B, 2>)>,
    /// The alpha adjustment of each cell type with a dropped op, on the host, when the schedule
    /// asks for the alphas (tests).
    pub adjustments: Option<Vec<Adjustment>>,
}

/// One cell type's alpha adjustment: per edge, the kept share before the step and the shift
/// added to its kept alphas.
#[derive(Debug, Clone)]
pub struct Adjustment {
    pub cell: CellType,
    pub ratio: Vec<f32>,
    pub k: Vec<f32>,
}

/// The same numbers, on the host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepNumbers {
    pub loss_1: f64,
    pub loss_2: f64,
    pub norm_1: f64,
    pub norm_2: f64,
    pub top1: f64,
    pub top5: f64,
    pub batch: usize,
}

/// How many values [`StepReport::scalars`] holds.
pub const STEP_SCALARS: usize = 6;

impl StepNumbers {
    /// From the [`STEP_SCALARS`] values of a step's `scalars`.
    pub fn from_values(v: &[f64], batch: usize) -> Self {
        let n = batch as f64;
        Self { loss_1: v[0], loss_2: v[1], norm_1: v[2], norm_2: v[3], top1: v[4] / n, top5: v[5] / n, batch }
    }
}

impl<B: Backend> StepReport<B> {
    /// One transfer from the device for all of the step's scalars.
    pub fn read(&self) -> StepNumbers {
        let v: Vec<f64> = self.scalars.clone().into_data().convert::<f64>().into_vec::<f64>().unwrap_or_default();
        StepNumbers::from_values(&v, self.batch)
    }

    /// The weight tensors partial decay selected (a host read).
    pub fn decayed(&self) -> Vec<ParamId> {
        flagged_ids(&self.decay_flags)
    }
}

fn zero<B: Backend>(device: &B::Device) -> Tensor<B, 1> {
    Tensor::zeros([1], device)
}

/// Options of one step that change over a run.
#[derive(Debug, Clone, Copy)]
pub struct StepSchedule {
    /// Learning rate of the weights (cosine schedule of the epoch).
    pub w_lr: f64,
    pub alpha_lr: f64,
    /// False during warm-up epochs: the phase-1 alpha step is skipped (phase 2 still steps).
    pub alpha_phase_1: bool,
    /// Keep the alphas after each phase in the report (for tests; costs two host reads).
    pub record_alphas: bool,
}

/// One DropNAS step on the batch `(x, y)` under `masks`. See the module docs for the algorithm.
/// With `share`, `(x, y)` is this peer's sub-batch of a data-parallel step (see
/// [`dropnas_train::parallel`]); `None` on one device.
#[allow(clippy::too_many_arguments)]
pub fn dropnas_step<B: DropnasAutodiffBackend>(
    model: Supernet<B>,
    opt: &mut DropNasOptimizers<B>,
    cfg: &StepConfig,
    sched: StepSchedule,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
    masks: &StepMasks,
    share: Option<&Share<'_, B::InnerBackend>>,
) -> (Supernet<B>, StepReport<B::InnerBackend>) {
    let Supernet { mut net, mut alphas } = model;
    let device = x.device();
    let batch = x.dims()[0];
    let zero_filled = cfg.torch_compat.zero_grad_keeps_zeros();

    // The share of probability mass each edge's kept ops hold before the update.
    let kept_mass = CellType::BOTH.map(|c| KeptMass::before(&alphas, c, mask_of(masks, c)));

    // 1. loss_1 under this step's masks, and its gradients.
    let model = Supernet { net, alphas };
    let logits = model.forward(x, masks);
    let loss_1 = CrossEntropyLossConfig::new().init(&device).forward(logits.clone(), y.clone());
    let correct = topk_correct(logits.inner(), y.inner());
    let mut grads = loss_1.backward();
    Supernet { net, alphas } = model;
    let mut w_grads = GradientsParams::from_module(&mut grads, &net);
    let mut alpha_grads = GradientsParams::from_module(&mut grads, &alphas);
    if zero_filled {
        opt.w_zero_grad.fill(&net, &mut w_grads);
        opt.alpha_zero_grad.fill(&alphas, &mut alpha_grads);
    }
    // Data parallelism: the gradients of the weights and the alphas, the loss and the correct
    // counts, summed over the peers (each weighted by its share of the batch) before anything
    // reads them; every peer then takes the same step.
    let (loss_1, correct, batch) = match share {
        Some(s) => {
            let parts: &mut [&mut dyn GradPart<B>] = &mut [&mut (&net, &mut w_grads), &mut (&alphas, &mut alpha_grads)];
            let (mean, counts) = s.reduce(parts, loss_1.inner(), correct);
            (mean, counts, s.batch)
        }
        None => (loss_1.inner(), correct, batch),
    };
    // What took part in this step (needed by phase 3, read before the optimizers consume it):
    // weight tensors whose gradient's first element is non-zero, alpha entries with |grad| > 1e-7.
    let decay_flags = first_grad_nonzero(&net, &w_grads);
    let selection = if zero_filled {
        DecaySelection::Device(decay_flags.clone())
    } else {
        DecaySelection::Host(flagged_ids(&decay_flags).into_iter().collect())
    };
    let alpha_masks = alpha_decay_masks(&alphas, &alpha_grads);

    // 2. Clipped SGD step on the weights; Adam step on the alphas (not during warm-up).
    let norm_1 = clip_global_norm(&net, &mut w_grads, cfg.w_grad_clip).unwrap_or_else(|| zero(&device));
    net = opt.w_optim.step(sched.w_lr, net, w_grads);
    if sched.alpha_phase_1 {
        alphas = opt.alpha_optim.step(sched.alpha_lr, alphas, alpha_grads);
    }
    let alphas_after_phase_1 = sched.record_alphas.then(|| both_rows(&alphas));

    // 3. Partial decay on the updated parameters.
    let w_decay = weight_decay(&net, &selection, cfg.w_weight_decay);
    let a_decay = alpha_decay(&alphas, &alpha_masks, cfg.alpha_weight_decay);
    let loss_2 = match (w_decay.loss, a_decay.loss) {
        (Some(a), Some(b)) => a + b,
        (a, b) => a.or(b).unwrap_or_else(|| zero(&device)),
    };
    let (mut w_grads, mut alpha_grads) = (w_decay.grads, a_decay.grads);
    if zero_filled {
        opt.w_zero_grad.fill(&net, &mut w_grads);
        opt.alpha_zero_grad.fill(&alphas, &mut alpha_grads);
    }

    // 4. Second clipped step, same optimizer state (Adam's step counter advances again).
    let norm_2 = clip_global_norm(&net, &mut w_grads, cfg.w_grad_clip).unwrap_or_else(|| zero(&device));
    net = opt.w_optim.step(sched.w_lr, net, w_grads);
    alphas = opt.alpha_optim.step(sched.alpha_lr, alphas, alpha_grads);
    let alphas_after_phase_2 = sched.record_alphas.then(|| both_rows(&alphas));

    // 5. Alpha adjustment: restore each edge's kept probability mass.
    let mut adjustments = sched.record_alphas.then(Vec::new);
    for mass in kept_mass.iter().flatten() {
        let (adjusted, k) = mass.restore_with_shift(alphas);
        alphas = adjusted;
        if let Some(list) = adjustments.as_mut() {
            let host = |t: Tensor<B, 2>| t.into_data().convert::<f32>().into_vec::<f32>().expect("f32");
            list.push(Adjustment { cell: mass.cell(), ratio: host(mass.ratio()), k: host(k) });
        }
    }

    let report = StepReport {
        scalars: Tensor::cat(vec![loss_1, loss_2, norm_1, norm_2, correct], 0),
        batch,
        alphas_after_phase_1,
        alphas_after_phase_2,
        alphas_after_adjust: sched.record_alphas.then(|| both_rows(&alphas)),
        decay_flags,
        alpha_decay_masks: alpha_masks,
        adjustments,
    };
    (Supernet { net, alphas }, report)
}

fn mask_of(masks: &StepMasks, cell: CellType) -> &dropnas_core::dropout::CellMask {
    match cell {
        CellType::Normal => &masks.normal,
        CellType::Reduce => &masks.reduce,
    }
}

fn both_rows<B: Backend>(alphas: &Alphas<B>) -> [Vec<Vec<f32>>; 2] {
    [alphas.rows(CellType::Normal), alphas.rows(CellType::Reduce)]
}

/// Keeps the `AutodiffModule` bound visible to readers: the supernet's parts are trained.
#[allow(dead_code)]
fn _assert_trainable<B: DropnasAutodiffBackend>(m: &Supernet<B>) -> &impl AutodiffModule<B> {
    m
}
