//! `dropnas info`: parameter counts of an augment network or of the search supernet.

use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use crate::genotype_arg::resolve_genotype;
use anyhow::Result;
use dropnas_core::DropnasAutodiffBackend;
use dropnas_core::params::{count_params, param_infos};
use dropnas_core::search_space::SEARCH_SPACE_NAMES;
use dropnas_core::{AugmentNetworkConfig, ParamInit, SearchNetworkConfig, SearchSpace};

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Genotype text, @file, a search run folder, or a name (dropnas-cifar10, darts-v2, ...)
    #[arg(long, required_unless_present = "search")]
    pub genotype: Option<String>,
    /// Describe the search supernet instead of an augment network
    #[arg(long)]
    pub search: bool,
    #[arg(long, default_value_t = 20)]
    pub layers: usize,
    #[arg(long, default_value_t = 36)]
    pub init_channels: usize,
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Input side (32 for CIFAR, 28 for MNIST)
    #[arg(long, default_value_t = 32)]
    pub input_size: usize,
    /// Input channels (3 for CIFAR, 1 for MNIST)
    #[arg(long, default_value_t = 3)]
    pub input_channels: usize,
    /// Search space of the supernet (with --search)
    #[arg(long, default_value = "original")]
    pub search_space: String,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

struct Info(InfoArgs);

impl BackendTask for Info {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let a = self.0;
        if a.layers == 0 || a.init_channels == 0 || a.classes == 0 {
            return Err(UserError::new("--layers, --init-channels and --classes must be positive").into());
        }
        if a.search {
            let space = SearchSpace::named(&a.search_space).ok_or_else(|| {
                UserError::new(format!(
                    "unknown search space `{}` (known: {})",
                    a.search_space,
                    SEARCH_SPACE_NAMES.join(", ")
                ))
            })?;
            let cfg = SearchNetworkConfig::new(a.input_channels, a.init_channels, a.classes, a.layers, space);
            let model = cfg.init::<B::InnerBackend>(&mut ParamInit::new(0, Default::default(), &device));
            let params = count_params(&model.net);
            let alpha_params = count_params(&model.alphas);
            if a.json {
                println!("{}", serde_json::json!({ "params": params, "alpha_params": alpha_params }));
            } else {
                println!(
                    "search network: {} cells, {} initial channels, {} classes, space {}",
                    a.layers, a.init_channels, a.classes, a.search_space
                );
                println!("weights: {params} ({:.3} M)", params as f64 / 1e6);
                println!("alphas:  {alpha_params}");
            }
            return Ok(());
        }
        let genotype = resolve_genotype(a.genotype.as_deref().unwrap_or_default())?;
        let cfg = AugmentNetworkConfig::new(
            a.input_size,
            a.input_channels,
            a.init_channels,
            a.classes,
            a.layers,
            true,
            genotype.clone(),
        );
        cfg.validate().map_err(UserError::new)?;
        let net = cfg.init::<B::InnerBackend>(&mut ParamInit::new(0, Default::default(), &device));
        let infos = param_infos::<B::InnerBackend, _>(&net);
        let params: usize = infos.iter().filter(|p| !p.is_running_stat).map(|p| p.numel()).sum();
        let without_aux: usize =
            infos.iter().filter(|p| !p.is_running_stat && !p.path.starts_with("aux_head")).map(|p| p.numel()).sum();
        if a.json {
            println!("{}", serde_json::json!({ "params": params, "params_without_aux": without_aux }));
        } else {
            println!("genotype: {genotype}");
            println!(
                "augment network: {} cells, {} initial channels, {} classes, {}x{}x{} input",
                a.layers, a.init_channels, a.classes, a.input_channels, a.input_size, a.input_size
            );
            println!("parameters:                {params} ({:.3} M)", params as f64 / 1e6);
            println!("without the auxiliary head: {without_aux} ({:.3} M)", without_aux as f64 / 1e6);
        }
        Ok(())
    }
}

pub fn run(args: InfoArgs) -> Result<()> {
    // Counting parameters is cheap anywhere: use the CPU when it is compiled in.
    let spec = if crate::device::compiled_backends().contains(&"cpu") { DeviceSpec::Cpu } else { DeviceSpec::best() };
    dispatch(&spec, Info(args))
}
