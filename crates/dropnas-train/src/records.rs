//! Burn records <-> bytes, for the parts of a checkpoint (Burn's named MessagePack format at
//! full precision, so that a resumed run continues bit for bit).

use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};

type Rec = NamedMpkBytesRecorder<FullPrecisionSettings>;

pub fn module_to_bytes<B: Backend, M: Module<B>>(module: &M) -> Result<Vec<u8>, String> {
    Recorder::<B>::record(&Rec::default(), module.clone().into_record(), ()).map_err(|e| e.to_string())
}

pub fn module_from_bytes<B: Backend, M: Module<B>>(module: M, bytes: &[u8], device: &B::Device) -> Result<M, String> {
    let record = Recorder::<B>::load(&Rec::default(), bytes.to_vec(), device).map_err(|e| e.to_string())?;
    Ok(module.load_record(record))
}

pub fn optim_to_bytes<B: AutodiffBackend, M: burn::module::AutodiffModule<B>, O: Optimizer<M, B>>(
    optim: &O,
) -> Result<Vec<u8>, String> {
    Recorder::<B>::record(&Rec::default(), optim.to_record(), ()).map_err(|e| e.to_string())
}

pub fn optim_from_bytes<B: AutodiffBackend, M: burn::module::AutodiffModule<B>, O: Optimizer<M, B>>(
    optim: O,
    bytes: &[u8],
    device: &B::Device,
) -> Result<O, String> {
    let record = Recorder::<B>::load(&Rec::default(), bytes.to_vec(), device).map_err(|e| e.to_string())?;
    Ok(optim.load_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::nn::Linear;
    use dropnas_core::augment_cell::AugmentCell;
    use dropnas_core::batch_norm::BatchNorm2d;
    use dropnas_core::conv::Conv2d;
    use dropnas_core::genotype::named::named;
    use dropnas_core::testkit::values_by_path;
    use dropnas_core::{AugmentNetwork, AugmentNetworkConfig, ParamInit, TorchCompat};

    /// The augment network's modules as they were before the ImageNet network (no `stem0`,
    /// no `relu` in the stem, a required `bn2` in the auxiliary head, no `final_pool`).
    #[derive(Module, Debug)]
    struct OldStem<B: Backend> {
        conv: Conv2d<B>,
        bn: BatchNorm2d<B>,
    }

    #[derive(Module, Debug)]
    struct OldAuxHead<B: Backend> {
        conv1: Conv2d<B>,
        bn1: BatchNorm2d<B>,
        conv2: Conv2d<B>,
        bn2: BatchNorm2d<B>,
        linear: Linear<B>,
        pool_stride: usize,
    }

    #[derive(Module, Debug)]
    struct OldAugmentNetwork<B: Backend> {
        stem: OldStem<B>,
        cells: Vec<AugmentCell<B>>,
        aux_head: Option<OldAuxHead<B>>,
        linear: Linear<B>,
        aux_position: usize,
    }

    /// Checkpoints written before the ImageNet network load into today's CIFAR network, every
    /// tensor in place.
    #[test]
    fn records_written_before_the_imagenet_network_still_load() {
        let device = Default::default();
        let cfg = AugmentNetworkConfig::new(32, 3, 4, 10, 3, true, named("darts-v2").unwrap());
        let init = |seed| ParamInit::new(seed, TorchCompat::default(), &device);
        let a = cfg.init::<Flex>(&mut init(0));
        let head = a.aux_head.clone().unwrap();
        let old = OldAugmentNetwork {
            stem: OldStem { conv: a.stem.conv.clone(), bn: a.stem.bn.clone() },
            cells: a.cells.clone(),
            aux_head: Some(OldAuxHead {
                conv1: head.conv1,
                bn1: head.bn1,
                conv2: head.conv2,
                bn2: head.bn2.unwrap(),
                linear: head.linear,
                pool_stride: head.pool_stride,
            }),
            linear: a.linear.clone(),
            aux_position: a.aux_position,
        };
        let bytes = module_to_bytes::<Flex, _>(&old).unwrap();
        // other initial values, all replaced by the record's
        let fresh: AugmentNetwork<Flex> = cfg.init(&mut init(1));
        let loaded = module_from_bytes(fresh, &bytes, &device).unwrap();
        let (want, got) = (values_by_path(&a), values_by_path(&loaded));
        assert_eq!(want.len(), got.len());
        for (path, v) in &want {
            assert_eq!(&got[path], v, "{path}");
        }
        assert!(!loaded.stem.relu && loaded.stem0.is_none() && loaded.final_pool == 0);
    }
}
