//! What the debug check of a data-parallel run compares between peers after every step: a
//! CRC of the trained values (weights and alphas). BatchNorm running statistics are left out:
//! they are per peer, as under DataParallel (each peer normalises its own sub-batch), and the
//! leader's are the ones kept.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use dropnas_core::params::param_infos;
use std::collections::HashSet;

/// Adds the trained values of `module` (running statistics excluded) to `crc`.
pub fn add_trained<B: Backend, M: Module<B>>(module: &M, crc: &mut crc32fast::Hasher) {
    struct Hash<'a> {
        skip: HashSet<burn::module::ParamId>,
        crc: &'a mut crc32fast::Hasher,
    }
    impl<B: Backend> ModuleVisitor<B> for Hash<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if !self.skip.contains(&param.id) {
                self.crc.update(param.val().into_data().as_bytes());
            }
        }
    }
    let skip = param_infos::<B, M>(module).into_iter().filter(|p| p.is_running_stat).map(|p| p.id).collect();
    module.visit(&mut Hash { skip, crc });
}
