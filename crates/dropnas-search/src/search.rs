//! The search as a task of the run engine: the supernet, its alphas and the two optimizers;
//! one DropNAS step per batch ([`crate::step`]); after every epoch the genotype, the alphas and
//! the drop frequencies. The engine ([`dropnas_train::run`]) does the rest.

use crate::collapse::{cell_collapse, collapse_warning};
use crate::config::SearchConfig;
use crate::step::{DropNasOptimizers, StepConfig, StepNumbers, StepSchedule, dropnas_step};
use burn::module::ParamId;
use burn::tensor::Tensor;
use dropnas_core::alphas::{CellType, n_edges};
use dropnas_core::dropout::{GroupedDropout, StepMasks};
use dropnas_core::flops::search_network_cost;
use dropnas_core::genotype::Genotype;
use dropnas_core::genotype::derive::derive_genotype_limited;
use dropnas_core::params::{count_params, model_size, thousands};
use dropnas_core::search_network::{Supernet, cell_plan};
use dropnas_core::search_space::GroupKind;
use dropnas_core::{DropnasAutodiffBackend, ParamInit, SearchNetworkConfig, SearchSpace};
use dropnas_data::Batch;
use dropnas_train::grads::LegacyZeroGrad;
use dropnas_train::parallel::Share;
use dropnas_train::parallel::fingerprint::add_trained;
use dropnas_train::records::{module_from_bytes, module_to_bytes, optim_from_bytes, optim_to_bytes};
use dropnas_train::run::checkpoint::{Checkpoint, CheckpointError};
use dropnas_train::run::data::RunData;
use dropnas_train::run::folder::{FolderError, RunFolder};
use dropnas_train::run::lines::{AlphaLine, EpochLine, LossTerms, RunKind, Summary};
use dropnas_train::run::memory::MemoryEstimate;
use dropnas_train::run::{EpochEnd, EpochStart, RunError, RunTask, StepResult};
use dropnas_train::schedule::EpochSchedule;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// What a search checkpoint holds besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchState {
    /// The generator of the dropout masks.
    pub mask_rng: ChaCha8Rng,
    /// Per op group of the space: ops dropped and ops drawn in the current epoch.
    pub drops: Vec<[u64; 2]>,
    /// Parameters that have had a gradient (PyTorch 1.0's zero gradients; see `LegacyZeroGrad`).
    pub w_seen: Vec<String>,
    pub alpha_seen: Vec<String>,
    /// The genotype at this point, for whoever reads the checkpoint.
    pub genotype: String,
}

/// A DropNAS search in progress.
pub struct SearchTask<B: DropnasAutodiffBackend> {
    cfg: SearchConfig,
    space: SearchSpace,
    net_cfg: SearchNetworkConfig,
    input_shape: [usize; 3],
    model: Option<Supernet<B>>,
    opt: DropNasOptimizers<B>,
    step_cfg: StepConfig,
    device: B::Device,
    mask_rng: ChaCha8Rng,
    drops: Vec<[u64; 2]>,
    /// This epoch's: learning rate of the weights, warm-up, drop rates.
    sched: StepSchedule,
    dropout: GroupedDropout,
}

impl<B: DropnasAutodiffBackend> SearchTask<B> {
    fn model(&self) -> &Supernet<B> {
        self.model.as_ref().expect("the model is back after every step")
    }

    /// The genotype of the alphas now (at most `--max-skip-connects` skip-connects in the normal
    /// cell when given), and how many skip-connect edges that limit replaced.
    pub fn genotype_limited(&self, max_skip: Option<usize>) -> (Genotype, usize) {
        let alphas = &self.model().alphas;
        derive_genotype_limited(
            &alphas.rows(CellType::Normal),
            &alphas.rows(CellType::Reduce),
            &self.space,
            self.net_cfg.n_nodes,
            self.cfg.settings.ranking,
            max_skip,
        )
    }

    /// The search's genotype now.
    pub fn genotype(&self) -> Genotype {
        self.genotype_limited(self.cfg.settings.max_skip_connects).0
    }

    /// How often an op of each group kind was dropped this epoch.
    fn drop_freq(&self, kind: GroupKind) -> Option<f64> {
        let g = self.space.groups.iter().position(|g| g.kind == kind)?;
        let [dropped, drawn] = self.drops[g];
        Some(if drawn == 0 { 0.0 } else { dropped as f64 / drawn as f64 })
    }

    fn count_drops(&mut self, masks: &StepMasks) {
        for row in masks.normal.keep.iter().chain(&masks.reduce.keep) {
            for (g, group) in self.space.groups.iter().enumerate() {
                for &c in &group.columns {
                    self.drops[g][0] += u64::from(!row[c]);
                    self.drops[g][1] += 1;
                }
            }
        }
    }
}

fn ids(set: &HashSet<ParamId>) -> Vec<String> {
    let mut v: Vec<String> = set.iter().map(|id| id.serialize()).collect();
    v.sort();
    v
}

fn id_set(v: &[String]) -> HashSet<ParamId> {
    v.iter().filter_map(|s| ParamId::try_deserialize(s)).collect()
}

impl<B: DropnasAutodiffBackend> RunTask<B> for SearchTask<B> {
    const KIND: RunKind = RunKind::Search;
    const MODEL_PARTS: &'static [&'static str] = &[];
    const EPOCH_WIDTH: usize = 2;
    const NAN_HINT: &'static str = "Try a lower --w-lr or --alpha-lr";
    type Config = SearchConfig;
    type State = SearchState;

    fn cutout(_cfg: &SearchConfig) -> usize {
        // no cutout during the search
        0
    }

    fn needs_test_set() -> bool {
        false
    }

    fn warnings(cfg: &SearchConfig) -> Vec<String> {
        let s = &cfg.settings;
        let mut w = Vec::new();
        if s.warmup_epochs == s.epochs {
            w.push(format!(
                "--warmup-epochs {} equals --epochs: every epoch is a warm-up epoch, so no op is ever dropped \
                 and the phase-1 alpha step never runs (this is not DropNAS); lower --warmup-epochs",
                s.warmup_epochs
            ));
        }
        w
    }

    /// Calibrated on `dropnas bench search` peaks (5, 8, 32) and (8, 16, 64) on 32x32 input:
    /// about 1.16 saved floats per op output element of every edge, plus 60 MiB.
    fn estimate_memory(cfg: &SearchConfig, data: &RunData) -> MemoryEstimate {
        let s = &cfg.settings;
        let side = data.input_shape()[1];
        let edges = n_edges(4) as f64;
        let per_sample: f64 = cell_plan(s.layers, s.init_channels, side)
            .iter()
            .map(|&(_, c, side)| edges * cfg.space().n_ops() as f64 * (c * side * side) as f64)
            .sum();
        let activations = 1.16 * 4.0 * s.batch_size as f64 * per_sample;
        let bytes = (60 << 20) as f64 + data.resident_bytes() as f64 + activations;
        MemoryEstimate { bytes: bytes as u64, reduced_by: "--batch-size, --init-channels or --layers" }
    }

    fn new(cfg: &SearchConfig, data: &RunData, device: &B::Device) -> Result<Self, RunError> {
        let s = &cfg.settings;
        let space = cfg.space();
        B::seed(device, s.run.seed);
        let net_cfg = SearchNetworkConfig::new(
            data.source.input_channels(),
            s.init_channels,
            data.train.loader.n_classes(),
            s.layers,
            space.clone(),
        );
        let step_cfg = StepConfig::from(s);
        Ok(Self {
            input_shape: data.input_shape(),
            // the initial values drawn on the host from the seed: the same network on every backend
            model: Some(net_cfg.init(&mut ParamInit::new(s.run.seed, s.torch_compat, device))),
            opt: DropNasOptimizers::<B>::new(&step_cfg),
            drops: vec![[0; 2]; space.groups.len()],
            dropout: GroupedDropout { rates: cfg.group_rates(false) },
            sched: StepSchedule { w_lr: s.w_lr, alpha_lr: s.alpha_lr, alpha_phase_1: true, record_alphas: false },
            mask_rng: ChaCha8Rng::seed_from_u64(s.run.seed),
            device: device.clone(),
            cfg: cfg.clone(),
            space,
            net_cfg,
            step_cfg,
        })
    }

    fn describe(&self) -> Vec<String> {
        let s = &self.cfg.settings;
        vec![format!(
            "{} cells x {} channels, space {}, r_p {} r_np {}, weights: {}, alphas: {}",
            s.layers,
            s.init_channels,
            s.search_space,
            self.cfg.drop_rate(GroupKind::Param),
            self.cfg.drop_rate(GroupKind::NonParam),
            model_size(count_params(&self.model().net)),
            thousands(count_params(&self.model().alphas) as u64),
        )]
    }

    fn restore(&mut self, state: SearchState, ckpt: &Checkpoint, path: &Path) -> Result<(), CheckpointError> {
        let restore =
            |what: &str, e: String| CheckpointError::Restore { path: path.to_path_buf(), what: what.into(), detail: e };
        let Supernet { net, alphas } = self.model.take().expect("a model");
        let net = module_from_bytes(net, ckpt.part("net", path)?, &self.device).map_err(|e| restore("network", e))?;
        let alphas =
            module_from_bytes(alphas, ckpt.part("alphas", path)?, &self.device).map_err(|e| restore("alphas", e))?;
        self.model = Some(Supernet { net, alphas });
        let opt = std::mem::replace(&mut self.opt, DropNasOptimizers::new(&self.step_cfg));
        let DropNasOptimizers { w_optim, alpha_optim, .. } = opt;
        self.opt = DropNasOptimizers {
            w_optim: optim_from_bytes(w_optim, ckpt.part("w_optim", path)?, &self.device)
                .map_err(|e| restore("SGD state", e))?,
            alpha_optim: optim_from_bytes(alpha_optim, ckpt.part("alpha_optim", path)?, &self.device)
                .map_err(|e| restore("Adam state", e))?,
            w_zero_grad: LegacyZeroGrad::from_seen(id_set(&state.w_seen)),
            alpha_zero_grad: LegacyZeroGrad::from_seen(id_set(&state.alpha_seen)),
        };
        if state.drops.len() != self.space.groups.len() {
            return Err(restore(
                "drop counts",
                format!("{} groups, the space has {}", state.drops.len(), self.space.groups.len()),
            ));
        }
        self.mask_rng = state.mask_rng;
        self.drops = state.drops;
        Ok(())
    }

    fn save(&self) -> Result<(SearchState, Vec<(String, Vec<u8>)>), String> {
        let model = self.model();
        let state = SearchState {
            mask_rng: self.mask_rng.clone(),
            drops: self.drops.clone(),
            w_seen: ids(self.opt.w_zero_grad.seen()),
            alpha_seen: ids(self.opt.alpha_zero_grad.seen()),
            genotype: self.genotype().to_string(),
        };
        let parts = vec![
            ("net".into(), module_to_bytes(&model.net)?),
            ("alphas".into(), module_to_bytes(&model.alphas)?),
            ("w_optim".into(), optim_to_bytes(&self.opt.w_optim)?),
            ("alpha_optim".into(), optim_to_bytes(&self.opt.alpha_optim)?),
        ];
        Ok((state, parts))
    }

    fn trim_files(&self, folder: &RunFolder, next_epoch: usize) -> Result<(), FolderError> {
        folder.retain_lines("alphas.jsonl", |v| v["epoch"].as_u64().is_some_and(|e| e as usize <= next_epoch))
    }

    fn start_epoch(&mut self, epoch: usize, fresh: bool) -> Result<EpochStart, RunError> {
        let s = &self.cfg.settings;
        let w_lr = EpochSchedule::lr_of_epoch(s.w_lr, s.w_lr_min, s.epochs, epoch).map_err(RunError::Config)?;
        let warmup = epoch < s.warmup_epochs;
        self.dropout = GroupedDropout { rates: self.cfg.group_rates(warmup) };
        self.sched = StepSchedule { w_lr, alpha_lr: s.alpha_lr, alpha_phase_1: !warmup, record_alphas: false };
        if fresh {
            self.drops = vec![[0; 2]; self.space.groups.len()];
        }
        let message = format!(
            "epoch {}/{}: lr {w_lr:.6}, drop rates {:?}{}",
            epoch + 1,
            s.epochs,
            self.dropout.rates,
            if warmup { " (warm-up)" } else { "" }
        );
        Ok(EpochStart { lr: w_lr, message })
    }

    fn step(&mut self, batch: &Batch, share: Option<&Share<'_, B::InnerBackend>>) -> Tensor<B::InnerBackend, 1> {
        let masks = self.dropout.sample_step(&self.space, self.net_cfg.n_nodes, &mut self.mask_rng);
        self.count_drops(&masks);
        let (x, y) = batch.to_tensors::<B>(&self.device);
        let model = self.model.take().expect("a model");
        let (next, report) = dropnas_step(model, &mut self.opt, &self.step_cfg, self.sched, x, y, &masks, share);
        self.model = Some(next);
        report.scalars
    }

    fn step_result(values: &[f64], batch: usize) -> StepResult {
        let n = StepNumbers::from_values(values, batch);
        StepResult {
            loss: n.loss_1 + n.loss_2,
            top1: n.top1,
            top5: n.top5,
            terms: LossTerms {
                loss_1: Some(n.loss_1),
                loss_2: Some(n.loss_2),
                norm_1: Some(n.norm_1),
                norm_2: Some(n.norm_2),
                ..LossTerms::default()
            },
        }
    }

    fn fingerprint(&self) -> Option<u32> {
        let mut crc = crc32fast::Hasher::new();
        add_trained(&self.model().net, &mut crc);
        add_trained(&self.model().alphas, &mut crc);
        Some(crc.finalize())
    }

    fn end_epoch(&mut self, epoch: usize, train: [f64; 3], folder: &RunFolder) -> Result<EpochEnd, RunError> {
        let (genotype, replaced) = self.genotype_limited(self.cfg.settings.max_skip_connects);
        let genotype = genotype.to_string();
        folder.write("genotype.txt", genotype.as_bytes())?;
        let alphas = &self.model().alphas;
        let (normal, reduce) = (alphas.softmax_rows(CellType::Normal), alphas.softmax_rows(CellType::Reduce));
        // the collapse monitor watches the original's derivation (a limit would hide what it sees)
        let raw = self.genotype_limited(None).0;
        let wide = |rows: &[Vec<f32>]| -> Vec<Vec<f64>> {
            rows.iter().map(|r| r.iter().map(|&v| f64::from(v)).collect()).collect()
        };
        let cn = cell_collapse(&raw.normal, &wide(&normal));
        let cr = cell_collapse(&raw.reduce, &wide(&reduce));
        folder.append_line(
            "alphas.jsonl",
            &AlphaLine::<f32> {
                epoch: epoch as u32 + 1,
                ops: self.space.ops.iter().map(|o| o.name().to_string()).collect(),
                normal_raw: alphas.rows(CellType::Normal),
                reduce_raw: alphas.rows(CellType::Reduce),
                normal,
                reduce,
                entropy_normal: cn.entropies.clone(),
                entropy_reduce: cr.entropies.clone(),
            },
        )?;
        let rate = |kind| {
            self.space
                .groups
                .iter()
                .any(|g| g.kind == kind)
                .then(|| if epoch < self.cfg.settings.warmup_epochs { 0.0 } else { self.cfg.drop_rate(kind) })
        };
        let line = EpochLine {
            loss: Some(train[0]),
            top1: Some(train[1]),
            top5: Some(train[2]),
            drop_rate_param: rate(GroupKind::Param),
            drop_rate_nonparam: rate(GroupKind::NonParam),
            drop_freq_param: self.drop_freq(GroupKind::Param),
            drop_freq_nonparam: self.drop_freq(GroupKind::NonParam),
            genotype: Some(genotype.clone()),
            skip_connects_normal: Some(cn.skip_connects as u32),
            skip_connects_reduce: Some(cr.skip_connects as u32),
            param_free_normal: Some(cn.param_free_share),
            param_free_reduce: Some(cr.param_free_share),
            alpha_entropy_normal: Some(cn.mean_entropy),
            alpha_entropy_reduce: Some(cr.mean_entropy),
            skip_connects_replaced: self.cfg.settings.max_skip_connects.map(|_| replaced as u32),
            ..EpochLine::default()
        };
        let mut messages = vec![format!("genotype = {genotype}")];
        if replaced > 0 {
            messages.push(format!(
                "--max-skip-connects {}: {replaced} skip-connect edges of the normal cell replaced by their best \
                 parameterised op",
                self.cfg.settings.max_skip_connects.unwrap_or_default()
            ));
        }
        let scalars = vec![
            ("search/skip_count", cn.skip_connects as f64),
            ("search/skip_count_reduce", cr.skip_connects as f64),
            ("search/alpha_entropy", cn.mean_entropy),
            ("search/alpha_entropy_reduce", cr.mean_entropy),
            ("search/param_free_share", cn.param_free_share),
        ];
        let warnings = collapse_warning(&cn, epoch + 1).into_iter().collect();
        Ok(EpochEnd { line, messages, is_best: false, warnings, scalars })
    }

    fn finish(&self, folder: &RunFolder, finished: bool, summary: &mut Summary) -> Result<(), RunError> {
        let genotype = self.genotype().to_string();
        if finished {
            folder.write("genotype.txt", genotype.as_bytes())?;
        }
        summary.genotype = Some(genotype);
        summary.params = Some(count_params(&self.model().net) as u64);
        summary.alpha_params = Some(count_params(&self.model().alphas) as u64);
        summary.input_shape = Some(self.input_shape);
        summary.flops_per_step_all_ops = search_network_cost(&self.model().net, self.input_shape).ok();
        Ok(())
    }
}
