//! Where a `search` or `augment` runs: `--device`, or `--devices LIST` / `--gpus 0,1` (one
//! data-parallel peer per device), and this process's node (`--nodes`, `--node-rank`,
//! `--coordinator`, else Slurm's or torchrun's variables). Then the run on that backend.

use crate::UserError;
use crate::device::DeviceSpec;
use anyhow::{Result, bail};
use dropnas_core::DropnasAutodiffBackend;
use dropnas_train::parallel::topology::Topology;
use dropnas_train::run::config::Control;

/// The devices of this process and its node.
#[derive(Debug, Clone)]
pub struct Launch {
    pub devices: Vec<DeviceSpec>,
    pub topology: Topology,
}

impl Launch {
    pub fn resolve(control: &Control) -> Result<Self> {
        let list = match (&control.devices, &control.gpus) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(g)) => Some(
                g.split(',')
                    .map(|i| match i.trim().parse::<usize>() {
                        Ok(i) => Ok(format!("cuda:{i}")),
                        Err(_) => {
                            Err(UserError::new(format!("--gpus {g}: `{i}` is not a GPU index (e.g. --gpus 0,1)")))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
            ),
            (None, None) => None,
        };
        let devices = match list {
            Some(list) => {
                let specs = list.split(',').map(|d| DeviceSpec::resolve(Some(d.trim()))).collect::<Result<Vec<_>>>()?;
                let kind = |s: &DeviceSpec| std::mem::discriminant(s);
                if specs.is_empty() || specs.iter().any(|s| kind(s) != kind(&specs[0])) {
                    bail!(UserError::new(format!(
                        "--devices {list}: all peers must use one backend (e.g. cpu,cpu or cuda:0,cuda:1)"
                    )));
                }
                specs
            }
            None => vec![DeviceSpec::resolve(control.device.as_deref())?],
        };
        let env = |k: &str| std::env::var(k).ok();
        let topology = Topology::resolve(control.nodes, control.node_rank, control.coordinator.as_deref(), &env)
            .map_err(UserError::new)?;
        Ok(Self { devices, topology })
    }

    /// The devices in words, for the log and `config.json`.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.devices.iter().map(DeviceSpec::describe).collect();
        let mut text = names.join(", ");
        if self.topology.nodes > 1 {
            text = format!("{text} on each of {} nodes", self.topology.nodes);
        }
        text
    }
}

/// Work to run on the backend of the devices, with one device per peer.
pub trait PeersTask {
    type Output;
    fn run<B: DropnasAutodiffBackend>(self, devices: Vec<B::Device>) -> Self::Output;
}

/// Runs `task` on the backend of `launch`'s devices.
pub fn dispatch_peers<T: PeersTask>(launch: &Launch, task: T) -> T::Output {
    let specs = &launch.devices;
    match &specs[0] {
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(_) => task.run::<burn::backend::Autodiff<burn::backend::Cuda>>(
            specs
                .iter()
                .map(|s| match s {
                    DeviceSpec::Cuda(i) => burn::backend::cuda::CudaDevice::new(*i),
                    _ => unreachable!("one backend, checked"),
                })
                .collect(),
        ),
        #[cfg(feature = "wgpu")]
        DeviceSpec::Wgpu(_) => {
            use burn::backend::wgpu::WgpuDevice;
            task.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(
                specs
                    .iter()
                    .map(|s| match s {
                        DeviceSpec::Wgpu(i) => i.map_or(WgpuDevice::DefaultDevice, WgpuDevice::DiscreteGpu),
                        _ => unreachable!("one backend, checked"),
                    })
                    .collect(),
            )
        }
        #[cfg(feature = "flex")]
        DeviceSpec::Cpu => {
            task.run::<burn::backend::Autodiff<burn::backend::Flex>>(specs.iter().map(|_| Default::default()).collect())
        }
        #[cfg(all(feature = "ndarray", not(feature = "flex")))]
        DeviceSpec::Cpu => task
            .run::<burn::backend::Autodiff<burn::backend::NdArray>>(specs.iter().map(|_| Default::default()).collect()),
        #[allow(unreachable_patterns)]
        _ => unreachable!("DeviceSpec::resolve only returns compiled-in backends"),
    }
}
