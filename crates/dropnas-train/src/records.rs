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
