//! `dropnas info`: parameter counts of an augment network or of the search supernet.

use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use crate::genotype_arg::resolve_genotype;
use anyhow::Result;
use dropnas_core::DropnasAutodiffBackend;
use dropnas_core::params::{count_params, model_size, param_infos, thousands};
use dropnas_core::search_space::SEARCH_SPACE_NAMES;
use dropnas_core::{AugmentNetworkConfig, SearchNetworkConfig, SearchSpace};

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Genotype text, @file, a search run folder, or a name (dropnas-cifar10, darts-v2, ...)
    #[arg(long, required_unless_present = "search")]
    pub genotype: Option<String>,
    /// Describe the search supernet instead of an augment network
    #[arg(long)]
    pub search: bool,
    /// Cells [default: the augment default 20, or the search default 14 with --search]
    #[arg(long)]
    pub layers: Option<usize>,
    /// Channels of the first cell [default: the augment default 36, or the search default 16 with --search]
    #[arg(long)]
    pub init_channels: Option<usize>,
    /// Classes of the data set
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
        // the defaults of the network `info` describes: the search's or the retraining's
        let (layers, init_channels) = if a.search {
            let d = dropnas_search::SearchSettings::default();
            (a.layers.unwrap_or(d.layers), a.init_channels.unwrap_or(d.init_channels))
        } else {
            let d = dropnas_train::augment::AugmentSettings::default();
            (a.layers.unwrap_or(d.layers), a.init_channels.unwrap_or(d.init_channels))
        };
        if layers == 0 || init_channels == 0 || a.classes == 0 {
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
            let cfg = SearchNetworkConfig::new(a.input_channels, init_channels, a.classes, layers, space);
            let model = cfg.init::<B::InnerBackend>(&device);
            let params = count_params(&model.net);
            let alpha_params = count_params(&model.alphas);
            if a.json {
                println!("{}", serde_json::json!({ "params": params, "alpha_params": alpha_params }));
            } else {
                println!(
                    "search network: {} cells, {} initial channels, {} classes, space {}",
                    layers, init_channels, a.classes, a.search_space
                );
                println!("weights: {}", model_size(params));
                println!("alphas:  {}", thousands(alpha_params as u64));
            }
            return Ok(());
        }
        let genotype = resolve_genotype(a.genotype.as_deref().unwrap_or_default())?;
        let cfg = AugmentNetworkConfig::new(
            a.input_size,
            a.input_channels,
            init_channels,
            a.classes,
            layers,
            true,
            genotype.clone(),
        );
        cfg.validate().map_err(UserError::new)?;
        let net = cfg.init::<B::InnerBackend>(&device);
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
                layers, init_channels, a.classes, a.input_channels, a.input_size, a.input_size
            );
            println!("with the auxiliary head:    {}", model_size(params));
            println!("without the auxiliary head: {}", model_size(without_aux));
        }
        Ok(())
    }
}

pub fn run(args: InfoArgs) -> Result<()> {
    // Counting parameters is cheap anywhere: use the CPU when it is compiled in.
    let spec = if crate::device::compiled_backends().contains(&"cpu") { DeviceSpec::Cpu } else { DeviceSpec::best() };
    dispatch(&spec, Info(args))
}
