//! `dropnas selftest`: the reference-fixture checks on a device, to confirm that a backend
//! (a new GPU, a driver update) reproduces the independent PyTorch implementation, under both
//! PyTorch settings (`--torch-compat` 1.0 and modern); and the first steps of a tiny search on
//! the device against the same steps on the CPU, from the same seed.

use crate::device::{BackendTask, DeviceSpec, dispatch};
use anyhow::{Result, bail};
use dropnas_core::{DropnasAutodiffBackend, TorchCompat};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct SelftestArgs {
    /// cpu, cuda[:N] or wgpu[:N] [default: BURN_DEVICE, else the best compiled in]
    #[arg(long)]
    pub device: Option<String>,
    /// Folder of the reference fixtures [default: $DROPNAS_FIXTURES, else tools/fixtures]
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Relative tolerance [default: 1e-5 on the CPU, 1e-4 on a GPU]
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Steps of the tiny search compared with the CPU
    #[arg(long, default_value_t = 3)]
    pub cpu_steps: usize,
}

struct Selftest {
    rtol: f64,
    cpu_steps: usize,
}

/// A named check that panics on a mismatch.
type Check<'a> = (String, Box<dyn Fn() + 'a>);

impl BackendTask for Selftest {
    type Output = Vec<(String, Result<f64, String>)>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Self::Output {
        let Selftest { rtol, cpu_steps } = self;
        let device = &device;
        let mut checks: Vec<Check> = vec![
            (
                "every op, forward and backward".into(),
                Box::new(|| dropnas_core::reference::every_op::<B>(device, rtol)),
            ),
            (
                "search network under dropout masks".into(),
                Box::new(|| dropnas_core::reference::search_network::<B>(device, rtol)),
            ),
        ];
        for compat in TorchCompat::ALL {
            checks.extend::<[Check; 4]>([
                (
                    format!("augment network, train and eval (PyTorch {compat})"),
                    Box::new(move || dropnas_core::reference::augment_network::<B>(device, rtol, compat)),
                ),
                (
                    format!("ImageNet network at 224x224, train and eval (PyTorch {compat})"),
                    Box::new(move || dropnas_core::reference::augment_network_imagenet::<B>(device, rtol, compat)),
                ),
                (
                    format!("two DropNAS search steps, phase by phase (PyTorch {compat})"),
                    Box::new(move || dropnas_search::reference::two_steps::<B>(device, rtol, compat)),
                ),
                (
                    format!("two augment training steps (PyTorch {compat})"),
                    Box::new(move || dropnas_train::reference::two_steps::<B>(device, rtol, compat)),
                ),
            ]);
        }
        #[cfg(feature = "flex")]
        checks.push((
            format!(
                "the first {cpu_steps} steps of a tiny search against the CPU from the same seed (losses {rtol:e}, \
                 weights and mixing weights after them {:e})",
                10.0 * rtol
            ),
            Box::new(move || {
                type Cpu = burn::backend::Autodiff<burn::backend::Flex>;
                let cpu = Default::default();
                dropnas_search::cross_device::first_steps_agree::<Cpu, B>(
                    &cpu,
                    device,
                    cpu_steps,
                    rtol,
                    TorchCompat::V1_0,
                );
            }),
        ));
        #[cfg(not(feature = "flex"))]
        let _ = cpu_steps;
        checks
            .into_iter()
            .map(|(name, check)| {
                let t = Instant::now();
                // the checks report a mismatch by panicking
                let outcome = crate::quiet_panics::quietly(check).map(|_| t.elapsed().as_secs_f64());
                (name, outcome)
            })
            .collect()
    }
}

pub fn run(args: SelftestArgs) -> Result<()> {
    let spec = DeviceSpec::resolve(args.device.as_deref())?;
    if let Some(dir) = &args.fixtures {
        dropnas_core::testkit::use_fixtures_dir(dir.clone());
    }
    let dir = dropnas_core::testkit::fixtures_dir();
    if !dir.join("ops.safetensors").is_file() {
        bail!(crate::UserError::new(format!(
            "reference fixtures not found in {}: run from a checkout's root or pass --fixtures DIR",
            dir.display()
        )));
    }
    let rtol = args.rtol.unwrap_or(if spec == DeviceSpec::Cpu { 1e-5 } else { 1e-4 });
    println!("selftest on {} against the PyTorch reference in {} (rtol {rtol:e})", spec.describe(), dir.display());
    let results = dispatch(&spec, Selftest { rtol, cpu_steps: args.cpu_steps });
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(s) => println!("  ok    {name} ({s:.2} s)"),
            Err(e) => {
                failed += 1;
                println!("  FAIL  {name}: {e}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed on {}", results.len(), spec.describe());
    }
    println!("all {} checks passed", results.len());
    Ok(())
}
