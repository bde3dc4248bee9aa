//! Parameter paths and counts.
//!
//! Paths are PyTorch-style (`cells.0.dag.1.0.ops.4.bn.running_mean`): field names and indices,
//! with the enum variant names that Burn inserts left out, so that they line up with a state
//! dict of the reference implementation.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// One float tensor of a module: path, id, shape, and whether it is a running statistic
/// (BatchNorm's running mean/var are stored like parameters but are not trained).
#[derive(Debug, Clone)]
pub struct ParamInfo {
    pub path: String,
    pub id: ParamId,
    pub shape: Vec<usize>,
    pub is_running_stat: bool,
}

impl ParamInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Default)]
struct PathCollector {
    stack: Vec<(String, bool)>,
    out: Vec<ParamInfo>,
}

impl<B: Backend> ModuleVisitor<B> for PathCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.push((name.to_string(), container_type.starts_with("Enum:")));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let path: Vec<&str> = self.stack.iter().filter(|(_, is_enum)| !is_enum).map(|(n, _)| n.as_str()).collect();
        let last = path.last().copied().unwrap_or("");
        self.out.push(ParamInfo {
            path: path.join("."),
            id: param.id,
            shape: param.shape().to_vec(),
            is_running_stat: last.starts_with("running_"),
        });
    }
}

/// Every float tensor of `module`, in visiting order.
pub fn param_infos<B: Backend, M: Module<B>>(module: &M) -> Vec<ParamInfo> {
    let mut c = PathCollector::default();
    module.visit(&mut c);
    c.out
}

/// Number of trainable scalars (running statistics excluded), like PyTorch's
/// `sum(p.numel() for p in model.parameters())`.
pub fn count_params<B: Backend, M: Module<B>>(module: &M) -> usize {
    param_infos::<B, M>(module).iter().filter(|p| !p.is_running_stat).map(ParamInfo::numel).sum()
}

/// `3815482` -> `3,815,482`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A model's size as every output of dropnas gives it: the parameter count, and the "MB" the
/// original logs (pt.darts' `param_size`: parameters / 2^20), both labelled.
pub fn model_size(params: usize) -> String {
    format!(
        "{} parameters ({:.3} MB in the original's unit, parameters / 2^20)",
        thousands(params as u64),
        params as f64 / 1048576.0
    )
}
