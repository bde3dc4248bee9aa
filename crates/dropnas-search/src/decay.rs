//! Partial decay ("partial-decay" in the paper): weight decay only on what took part in the
//! step. `loss_2 = w_decay * sum ||W||^2` over the weight tensors whose gradient's first
//! element was non-zero in phase 1, `+ alpha_decay * sum alpha^2` over the alpha entries whose
//! phase-1 gradient exceeded 1e-7 in magnitude. Its gradient is `2 * rate * theta` on exactly
//! those parameters; we compute it directly, which saves a second backward pass.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use dropnas_train::grads::sum_by_dims;
use std::collections::HashSet;

/// `|grad| > 1e-7`: the alpha entries that took part in the step.
pub const ALPHA_GRAD_THRESHOLD: f64 = 1e-7;

/// The decay term of a module: its value (a `[1]` tensor) and its gradient.
pub struct Decay<B: AutodiffBackend> {
    pub loss: Option<Tensor<B::InnerBackend, 1>>,
    pub grads: GradientsParams,
}

impl<B: AutodiffBackend> Decay<B> {
    fn add(&mut self, term: Tensor<B::InnerBackend, 1>) {
        self.loss = Some(match self.loss.take() {
            Some(l) => l + term,
            None => term,
        });
    }
}

/// Which weight tensors partial decay takes.
pub enum DecaySelection<B: Backend> {
    /// Known on the host: only these tensors get a decay gradient (the others none at all, so
    /// the optimizer leaves them alone: PyTorch >= 2.0's semantics need this).
    Host(HashSet<ParamId>),
    /// On the device, a 0/1 flag per tensor (no host read): every listed tensor gets the
    /// gradient `2 * rate * flag * W`, a zero one where the flag is 0. Under PyTorch 1.0's
    /// zero-filled gradients every one of them gets an optimizer step anyway, so this is the
    /// same update.
    Device(Vec<(ParamId, Tensor<B, 1>)>),
}

/// `rate * sum ||W||^2` over the selected tensors, and its gradient `2 * rate * W`.
pub fn weight_decay<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    selection: &DecaySelection<B::InnerBackend>,
    rate: f64,
) -> Decay<B> {
    match selection {
        DecaySelection::Host(selected) => weight_decay_host(module, selected, rate),
        DecaySelection::Device(flags) => weight_decay_flagged(module, flags, rate),
    }
}

fn weight_decay_host<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    selected: &HashSet<ParamId>,
    rate: f64,
) -> Decay<B> {
    struct V<'a, B: AutodiffBackend> {
        selected: &'a HashSet<ParamId>,
        rate: f64,
        out: Decay<B>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for V<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if !self.selected.contains(&param.id) {
                return;
            }
            let w = param.val().inner();
            self.out.add(sum_by_dims(w.clone().square()).mul_scalar(self.rate));
            self.out.grads.register::<B::InnerBackend, D>(param.id, w.mul_scalar(2.0 * self.rate));
        }
    }
    let mut v = V { selected, rate, out: Decay { loss: None, grads: GradientsParams::new() } };
    module.visit(&mut v);
    v.out
}

fn weight_decay_flagged<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    flags: &[(ParamId, Tensor<B::InnerBackend, 1>)],
    rate: f64,
) -> Decay<B> {
    let mut out = Decay { loss: None, grads: GradientsParams::new() };
    if flags.is_empty() {
        return out;
    }
    let index: std::collections::HashMap<ParamId, usize> =
        flags.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
    // one [N] tensor of 2 * rate * flag: each tensor's gradient is one product
    let coef = Tensor::cat(flags.iter().map(|(_, f)| f.clone()).collect(), 0).mul_scalar(2.0 * rate);
    struct V<'a, B: AutodiffBackend> {
        index: &'a std::collections::HashMap<ParamId, usize>,
        coef: Tensor<B::InnerBackend, 1>,
        sums: Vec<Option<Tensor<B::InnerBackend, 1>>>,
        grads: GradientsParams,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for V<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let Some(&i) = self.index.get(&param.id) else { return };
            let w = param.val().inner();
            self.sums[i] = Some(sum_by_dims(w.clone().square()));
            let c = self.coef.clone().narrow(0, i, 1).reshape([1; D]);
            self.grads.register::<B::InnerBackend, D>(param.id, w * c);
        }
    }
    let sums = vec![None; flags.len()];
    let mut v = V::<B> { index: &index, coef: coef.clone(), sums, grads: GradientsParams::new() };
    module.visit(&mut v);
    // rate * sum of flag * ||W||^2 (coef is 2 * rate * flag)
    let sums = Tensor::cat(v.sums.into_iter().map(|s| s.expect("every flagged tensor is in the module")).collect(), 0);
    out.loss = Some((sums * coef).sum().mul_scalar(0.5));
    out.grads = v.grads;
    out
}

/// The entries of every alpha tensor whose phase-1 gradient exceeded the threshold, as 0/1
/// masks keyed by parameter id (computed before the phase-1 step consumes the gradients).
pub fn alpha_decay_masks<B: AutodiffBackend, M: AutodiffModule<B>>(
    alphas: &M,
    grads: &GradientsParams,
) -> Vec<(ParamId, Tensor<B::InnerBackend, 2>)> {
    struct V<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        out: Vec<(ParamId, Tensor<B::InnerBackend, 2>)>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for V<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let mask = g.abs().greater_elem(ALPHA_GRAD_THRESHOLD).float();
                let [rows, cols] = [param.shape()[0], param.shape().num_elements() / param.shape()[0]];
                self.out.push((param.id, mask.reshape([rows, cols])));
            }
        }
    }
    let mut v = V::<B> { grads, out: Vec::new() };
    alphas.visit(&mut v);
    v.out
}

/// `rate * sum (alpha * mask)^2` and its gradient `2 * rate * alpha * mask`.
pub fn alpha_decay<B: AutodiffBackend, M: AutodiffModule<B>>(
    alphas: &M,
    masks: &[(ParamId, Tensor<B::InnerBackend, 2>)],
    rate: f64,
) -> Decay<B> {
    struct V<'a, B: AutodiffBackend> {
        masks: &'a [(ParamId, Tensor<B::InnerBackend, 2>)],
        rate: f64,
        out: Decay<B>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for V<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let Some((_, mask)) = self.masks.iter().find(|(id, _)| *id == param.id) else {
                return;
            };
            let a = param.val().inner();
            let mask = mask.clone().reshape(a.shape());
            let masked = a * mask;
            self.out.add(sum_by_dims(masked.clone().square()).mul_scalar(self.rate));
            self.out.grads.register::<B::InnerBackend, D>(param.id, masked.mul_scalar(2.0 * self.rate));
        }
    }
    let mut v = V { masks, rate, out: Decay { loss: None, grads: GradientsParams::new() } };
    alphas.visit(&mut v);
    v.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{Int, TensorData};
    use dropnas_core::{SearchNetworkConfig, SearchSpace, StepMasks};
    use dropnas_train::grads::ids_with_nonzero_first_grad;

    type A = Autodiff<Flex>;

    #[test]
    fn weight_decay_only_touches_what_got_a_gradient() {
        let device = Default::default();
        let cfg = SearchNetworkConfig::new(1, 2, 3, 1, SearchSpace::named("original").unwrap());
        let model = cfg.init::<A>(&mut dropnas_core::ParamInit::new(0, Default::default(), &device));
        // drop every parameterised op of every edge but the first: their weights get no gradient
        let mut masks = StepMasks::keep_all(4, 8);
        for cell in [&mut masks.normal, &mut masks.reduce] {
            for (e, row) in cell.keep.iter_mut().enumerate() {
                if e > 0 {
                    row[..4].iter_mut().for_each(|k| *k = false);
                }
            }
        }
        // 4x4: on the 2x2 maps of the reduction cell the corner taps of the 5x5 depthwise kernels
        // only see padding, so some tensors get a gradient whose first element is zero
        let x = Tensor::<A, 4>::from_data(
            TensorData::new((0..16).map(|i| (i % 7) as f32 / 7.0).collect::<Vec<_>>(), [1, 1, 4, 4]),
            &device,
        );
        let y = Tensor::<A, 1, Int>::from_data(TensorData::new(vec![1i64], [1]), &device);
        let logits = model.forward(x, &masks);
        let loss = burn::nn::loss::CrossEntropyLossConfig::new().init(&device).forward(logits, y);
        let mut grads = loss.backward();
        let w_grads = GradientsParams::from_module(&mut grads, &model.net);
        let selected: HashSet<ParamId> = ids_with_nonzero_first_grad(&model.net, &w_grads).into_iter().collect();
        let decay = weight_decay(&model.net, &DecaySelection::Host(selected.clone()), 3e-4);
        let infos = dropnas_core::params::param_infos::<A, _>(&model.net);
        let mut decayed_paths = Vec::new();
        for info in &infos {
            let has = decay.grads.get::<Flex, 4>(info.id).is_some()
                || decay.grads.get::<Flex, 2>(info.id).is_some()
                || decay.grads.get::<Flex, 1>(info.id).is_some();
            assert_eq!(has, selected.contains(&info.id), "{}", info.path);
            if has {
                decayed_paths.push(info.path.clone());
            }
        }
        // the dropped sep/dil convolutions of edge 1 are not decayed; the stem is
        assert!(decayed_paths.iter().any(|p| p.starts_with("stem.conv")));
        assert!(!decayed_paths.iter().any(|p| p.starts_with("cells.0.dag.0.1.ops.0")));
        assert!(decayed_paths.iter().any(|p| p.starts_with("cells.0.dag.0.0.ops.0")));
        // the value is rate * sum ||W||^2 over exactly those tensors
        let want: f64 = 3e-4
            * infos
                .iter()
                .filter(|i| selected.contains(&i.id))
                .map(|i| {
                    dropnas_core::testkit::values_by_path(&model.net)[&i.path]
                        .iter()
                        .map(|v| (*v as f64).powi(2))
                        .sum::<f64>()
                })
                .sum::<f64>();
        let got = decay.loss.unwrap().into_scalar() as f64;
        assert!((got - want).abs() <= 1e-5 * want, "{got} vs {want}");

        // the same selection made on the device: the same value, the same gradients on the
        // selected tensors, zero gradients on the others that took part, none elsewhere
        let flags = dropnas_train::grads::first_grad_nonzero(&model.net, &w_grads);
        let on_device = weight_decay::<A, _>(&model.net, &DecaySelection::Device(flags.clone()), 3e-4);
        let got = on_device.loss.unwrap().into_scalar() as f64;
        assert!((got - want).abs() <= 1e-5 * want, "device selection: {got} vs {want}");
        let listed: HashSet<ParamId> = flags.iter().map(|(id, _)| *id).collect();
        assert!(listed.len() > selected.len(), "some tensors took part with a zero first gradient element");
        let values = dropnas_core::testkit::values_by_path(&model.net);
        for info in &infos {
            let g: Option<Vec<f32>> = match info.shape.len() {
                4 => on_device.grads.get::<Flex, 4>(info.id).map(|g| g.into_data().to_vec().unwrap()),
                2 => on_device.grads.get::<Flex, 2>(info.id).map(|g| g.into_data().to_vec().unwrap()),
                _ => on_device.grads.get::<Flex, 1>(info.id).map(|g| g.into_data().to_vec().unwrap()),
            };
            assert_eq!(g.is_some(), listed.contains(&info.id), "{}", info.path);
            if let Some(g) = g {
                let w = &values[&info.path];
                let linear = info.path.ends_with("linear.weight");
                for (i, gv) in g.iter().enumerate() {
                    let want = if selected.contains(&info.id) { 2.0 * 3e-4 * w[i] as f64 } else { 0.0 };
                    // (the linear weight's path values are in PyTorch's layout: compare sums there)
                    if !linear {
                        assert!((*gv as f64 - want).abs() <= 1e-9, "{}[{i}]: {gv} vs {want}", info.path);
                    }
                }
            }
        }
    }

    #[test]
    fn alpha_decay_masks_entries_by_gradient_size() {
        let device = Default::default();
        let alphas =
            dropnas_core::Alphas::<A>::new(1, 3, &mut dropnas_core::ParamInit::new(0, Default::default(), &device));
        let id = alphas.normal[0].id;
        let mut g = GradientsParams::new();
        g.register::<Flex, 2>(
            id,
            Tensor::from_data(TensorData::new(vec![1e-3f32, 5e-8, -2e-7, 0.0, -1.0, 1e-7], [2, 3]), &device),
        );
        let masks = alpha_decay_masks(&alphas, &g);
        assert_eq!(masks.len(), 1);
        assert_eq!(masks[0].1.clone().into_data().to_vec::<f32>().unwrap(), vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        let d = alpha_decay(&alphas, &masks, 1e-3);
        let a = alphas.normal[0].val().inner().into_data().to_vec::<f32>().unwrap();
        let grad = d.grads.get::<Flex, 2>(id).unwrap().into_data().to_vec::<f32>().unwrap();
        for (i, m) in [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0].iter().enumerate() {
            assert!((grad[i] - 2e-3 * a[i] * m).abs() < 1e-12);
        }
    }
}
