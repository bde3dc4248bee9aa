//! `--device`: which compiled-in backend runs the work, and on which device.
//!
//! Model code is generic over Burn's `AutodiffBackend`; this is the one place where a concrete
//! backend is chosen. Each backend is a cargo feature: `flex` (CPU, default), `ndarray` (CPU),
//! `wgpu` (any GPU through Vulkan/Metal/DX12), `cuda` (NVIDIA).

use anyhow::{Result, bail};
use dropnas_core::DropnasAutodiffBackend;

/// A parsed `--device` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    Wgpu(Option<usize>),
}

/// Backends compiled into this binary, best first.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(any(feature = "flex", feature = "ndarray")) {
        v.push("cpu");
    }
    v
}

impl DeviceSpec {
    /// The best device compiled in: CUDA (when a driver is present), then wgpu, then the CPU.
    pub fn best() -> Self {
        #[cfg(feature = "cuda")]
        let cuda = cuda_driver_present();
        #[cfg(not(feature = "cuda"))]
        let cuda = false;
        if cuda {
            DeviceSpec::Cuda(0)
        } else if cfg!(feature = "wgpu") {
            DeviceSpec::Wgpu(None)
        } else {
            DeviceSpec::Cpu
        }
    }

    /// Parses `cpu`, `cuda`, `cuda:N`, `wgpu`, `wgpu:N`; `None` or `auto` gives [`Self::best`].
    /// Falls back to the `BURN_DEVICE` environment variable when no flag is given.
    pub fn resolve(arg: Option<&str>) -> Result<Self> {
        let env = std::env::var("BURN_DEVICE").ok();
        let text = arg.map(str::to_string).or(env).unwrap_or_else(|| "auto".into());
        let text = text.trim().to_ascii_lowercase();
        let (kind, index) = match text.split_once(':') {
            Some((k, i)) => {
                let i: usize = i.parse().map_err(|_| {
                    crate::UserError::new(format!("bad device index in `{text}`: expected e.g. cuda:0 or wgpu:1"))
                })?;
                (k.to_string(), Some(i))
            }
            None => (text.clone(), None),
        };
        let spec = match kind.as_str() {
            "auto" => Self::best(),
            "cpu" | "flex" | "ndarray" => DeviceSpec::Cpu,
            "cuda" | "gpu" if cfg!(feature = "cuda") || kind == "cuda" => DeviceSpec::Cuda(index.unwrap_or(0)),
            "gpu" | "wgpu" | "vulkan" | "metal" => DeviceSpec::Wgpu(index),
            _ => bail!(crate::UserError::new(format!(
                "unknown device `{text}`: use cpu, cuda[:N] or wgpu[:N] (compiled in: {})",
                compiled_backends().join(", ")
            ))),
        };
        let needed = match spec {
            DeviceSpec::Cpu => "cpu",
            DeviceSpec::Cuda(_) => "cuda",
            DeviceSpec::Wgpu(_) => "wgpu",
        };
        if !compiled_backends().contains(&needed) {
            bail!(crate::UserError::new(format!(
                "device `{text}` needs the `{needed}` backend, which this binary was built without \
                 (compiled in: {}); rebuild with `cargo build --release --features {}`",
                compiled_backends().join(", "),
                if needed == "cpu" { "flex" } else { needed }
            )));
        }
        spec.check_usable(&text)?;
        Ok(spec)
    }

    /// Refuses a GPU device this machine cannot run (no driver, no such device), with a message
    /// that says what to do, before any work starts: otherwise the backend panics deep in its
    /// first kernel launch.
    #[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(unused_variables))]
    fn check_usable(&self, text: &str) -> Result<()> {
        let fix = "install the GPU driver, pick another index, or use --device cpu";
        match self {
            DeviceSpec::Cpu => Ok(()),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(i) => {
                if !cuda_driver_present() {
                    bail!(crate::UserError::new(format!(
                        "device `{text}`: no CUDA driver on this machine (libcuda.so.1 cannot be loaded); \
                         install the NVIDIA driver, or use --device cpu (or wgpu)"
                    )));
                }
                let device = burn::backend::cuda::CudaDevice::new(*i);
                probe::<burn::backend::Cuda>(&device, text, fix)
            }
            #[cfg(feature = "wgpu")]
            DeviceSpec::Wgpu(i) => {
                use burn::backend::wgpu::WgpuDevice;
                let device = i.map_or(WgpuDevice::DefaultDevice, WgpuDevice::DiscreteGpu);
                probe::<burn::backend::Wgpu>(&device, text, fix)
            }
            #[allow(unreachable_patterns)]
            _ => Ok(()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DeviceSpec::Cpu => format!("cpu ({})", if cfg!(feature = "flex") { "flex" } else { "ndarray" }),
            DeviceSpec::Cuda(i) => format!("cuda:{i}"),
            DeviceSpec::Wgpu(Some(i)) => format!("wgpu:{i}"),
            DeviceSpec::Wgpu(None) => "wgpu (default adapter)".into(),
        }
    }
}

/// Whether the NVIDIA driver library can be loaded (what the CUDA backend loads at run time).
#[cfg(feature = "cuda")]
fn cuda_driver_present() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: dlopen with a constant, NUL-terminated name; the handle is closed at once.
        unsafe {
            let handle = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_LAZY);
            if handle.is_null() {
                return false;
            }
            libc::dlclose(handle);
        }
        true
    }
    #[cfg(not(target_os = "linux"))]
    true
}

/// Runs one tiny operation on `device`; a backend that cannot start panics, which becomes an
/// error here (the panic message is kept out of the user's way).
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn probe<B: burn::tensor::backend::Backend>(device: &B::Device, text: &str, fix: &str) -> Result<()> {
    match crate::quiet_panics::quietly(|| burn::tensor::Tensor::<B, 1>::ones([1], device).into_data()) {
        Ok(_) => Ok(()),
        Err(why) => bail!(crate::UserError::new(format!("device `{text}` cannot be used: {why}; {fix}"))),
    }
}

/// Work to run on whichever backend `--device` selects.
pub trait BackendTask {
    type Output;
    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Self::Output;
}

/// Runs `task` on the backend of `spec`.
pub fn dispatch<T: BackendTask>(spec: &DeviceSpec, task: T) -> T::Output {
    match spec {
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(i) => {
            task.run::<burn::backend::Autodiff<burn::backend::Cuda>>(burn::backend::cuda::CudaDevice::new(*i))
        }
        #[cfg(feature = "wgpu")]
        DeviceSpec::Wgpu(i) => {
            use burn::backend::wgpu::WgpuDevice;
            let device = i.map_or(WgpuDevice::DefaultDevice, WgpuDevice::DiscreteGpu);
            task.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(device)
        }
        #[cfg(feature = "flex")]
        DeviceSpec::Cpu => task.run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default()),
        #[cfg(all(feature = "ndarray", not(feature = "flex")))]
        DeviceSpec::Cpu => task.run::<burn::backend::Autodiff<burn::backend::NdArray>>(Default::default()),
        #[allow(unreachable_patterns)]
        _ => unreachable!("DeviceSpec::resolve only returns compiled-in backends"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_refuses_missing_backends() {
        assert_eq!(DeviceSpec::resolve(Some("cpu")).unwrap(), DeviceSpec::Cpu);
        assert!(DeviceSpec::resolve(Some("tpu:0")).is_err());
        assert!(DeviceSpec::resolve(Some("cuda:x")).is_err());
        let cuda = DeviceSpec::resolve(Some("cuda:1"));
        if cfg!(feature = "cuda") {
            assert_eq!(cuda.unwrap(), DeviceSpec::Cuda(1));
        } else {
            let msg = cuda.unwrap_err().to_string();
            assert!(msg.contains("--features cuda"), "{msg}");
        }
    }
}
