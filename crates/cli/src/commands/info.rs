//! `dropnas info`: parameters and multiply-adds of an augment network or of the search
//! supernet (the counting convention is in `dropnas_core::flops`).

use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use crate::genotype_arg::resolve_genotype;
use anyhow::Result;
use dropnas_core::augment_network_imagenet::IMAGENET_INPUT_SIZE;
use dropnas_core::flops::{augment_network_cost, human, search_network_cost};
use dropnas_core::params::{count_params, model_size, param_infos, thousands};
use dropnas_core::search_space::SEARCH_SPACE_NAMES;
use dropnas_core::{AugmentNetworkConfig, ParamInit, SearchNetworkConfig, SearchSpace};
use dropnas_core::{DropnasAutodiffBackend, NetworkKind};

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Genotype text, @file, a search run folder, or a name (dropnas-cifar10, darts-v2, ...)
    #[arg(long, required_unless_present = "search")]
    pub genotype: Option<String>,
    /// Describe the search supernet instead of an augment network
    #[arg(long)]
    pub search: bool,
    /// cifar or imagenet (DARTS' network for 224x224 input) [default: imagenet at --input-size 224, else cifar]
    #[arg(long)]
    pub network: Option<NetworkKind>,
    /// Cells [default: the retraining's 20; 14 for the ImageNet network; the search's 14 with --search]
    #[arg(long)]
    pub layers: Option<usize>,
    /// Channels of the first cell [default: 36; 48 for the ImageNet network; the search's 16 with --search]
    #[arg(long)]
    pub init_channels: Option<usize>,
    /// Classes of the data set [default: 10; 1000 for the ImageNet network]
    #[arg(long)]
    pub classes: Option<usize>,
    /// Input side (32 for CIFAR, 28 for MNIST) [default: 32; 224 for the ImageNet network]
    #[arg(long)]
    pub input_size: Option<usize>,
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

/// `n` with thousands separators and in millions: "529,911,552 (529.9M)".
fn count(n: u64) -> String {
    format!("{} ({})", thousands(n), human(n))
}

impl BackendTask for Info {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let a = self.0;
        let network = match (a.network, a.input_size) {
            (Some(n), _) => n,
            (None, Some(s)) if !a.search => NetworkKind::for_input_size(s),
            _ => NetworkKind::Cifar,
        };
        let imagenet = network == NetworkKind::Imagenet;
        // the defaults of the network described: the search's, the ImageNet recipe's or the retraining's
        let (default_layers, default_channels) = if a.search {
            let d = dropnas_search::SearchSettings::default();
            (d.layers, d.init_channels)
        } else if imagenet {
            (14, 48)
        } else {
            let d = dropnas_train::augment::AugmentSettings::default();
            (d.layers, d.init_channels)
        };
        let layers = a.layers.unwrap_or(default_layers);
        let init_channels = a.init_channels.unwrap_or(default_channels);
        let classes = a.classes.unwrap_or(if imagenet { 1000 } else { 10 });
        let input_size = a.input_size.unwrap_or(if imagenet { IMAGENET_INPUT_SIZE } else { 32 });
        if layers == 0 || init_channels == 0 || classes == 0 || input_size == 0 {
            return Err(UserError::new("--layers, --init-channels, --classes and --input-size must be positive").into());
        }
        let input = [a.input_channels, input_size, input_size];
        if a.search {
            if a.network == Some(NetworkKind::Imagenet) {
                return Err(
                    UserError::new("--network imagenet describes augment networks; the supernet has one form").into()
                );
            }
            let space = SearchSpace::named(&a.search_space).ok_or_else(|| {
                UserError::new(format!(
                    "unknown search space `{}` (known: {})",
                    a.search_space,
                    SEARCH_SPACE_NAMES.join(", ")
                ))
            })?;
            let cfg = SearchNetworkConfig::new(a.input_channels, init_channels, classes, layers, space);
            let model = cfg.init::<B::InnerBackend>(&mut ParamInit::new(0, Default::default(), &device));
            let params = count_params(&model.net);
            let alpha_params = count_params(&model.alphas);
            let cost = search_network_cost(&model.net, input).map_err(UserError::new)?;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "params": params, "alpha_params": alpha_params, "input_size": input_size,
                        "input_channels": a.input_channels, "macs": cost.macs, "elementwise": cost.elementwise,
                    })
                );
            } else {
                println!(
                    "search network: {layers} cells, {init_channels} initial channels, {classes} classes, space {}, \
                     {}x{input_size}x{input_size} input",
                    a.search_space, a.input_channels
                );
                println!("weights: {}", model_size(params));
                println!("alphas:  {}", thousands(alpha_params as u64));
                println!("multiply-adds per image, every op of every edge evaluated:");
                println!("  convolutions and linear layers:  {}", count(cost.macs));
                println!("  with BN, ReLU and pooling:       {} (ptflops' count)", count(cost.ptflops()));
            }
            return Ok(());
        }
        let genotype = resolve_genotype(a.genotype.as_deref().unwrap_or_default())?;
        let cfg = AugmentNetworkConfig::new(
            input_size,
            a.input_channels,
            init_channels,
            classes,
            layers,
            true,
            genotype.clone(),
        )
        .with_network(network);
        // Small inputs leave no room for the auxiliary head: count the network without it.
        let cfg = AugmentNetworkConfig { auxiliary: cfg.aux_fits(), ..cfg };
        cfg.validate().map_err(UserError::new)?;
        let net = cfg.init::<B::InnerBackend>(&mut ParamInit::new(0, Default::default(), &device));
        let infos = param_infos::<B::InnerBackend, _>(&net);
        let params: usize = infos.iter().filter(|p| !p.is_running_stat).map(|p| p.numel()).sum();
        let without_aux: usize =
            infos.iter().filter(|p| !p.is_running_stat && !p.path.starts_with("aux_head")).map(|p| p.numel()).sum();
        let cost = augment_network_cost(&net, input).map_err(UserError::new)?;
        if a.json {
            println!(
                "{}",
                serde_json::json!({
                    "params": params, "params_without_aux": without_aux, "network": network,
                    "input_size": input_size, "input_channels": a.input_channels,
                    "macs": cost.network.macs, "elementwise": cost.network.elementwise,
                    "aux_macs": cost.aux_head.macs, "aux_elementwise": cost.aux_head.elementwise,
                })
            );
        } else {
            println!("genotype: {genotype}");
            println!(
                "augment network ({network}): {layers} cells, {init_channels} initial channels, {classes} classes, \
                 {}x{input_size}x{input_size} input",
                a.input_channels
            );
            println!("with the auxiliary head:    {}", model_size(params));
            println!("without the auxiliary head: {}", model_size(without_aux));
            println!("multiply-adds per image, without the auxiliary head:");
            println!("  convolutions and linear layers:  {}", count(cost.network.macs));
            println!("  with BN, ReLU and pooling:       {} (ptflops' count)", count(cost.network.ptflops()));
            if cfg.auxiliary {
                println!("  auxiliary head (training only):  {}", count(cost.aux_head.macs));
            } else {
                println!("  (no auxiliary head fits a {input_size}x{input_size} input)");
            }
        }
        Ok(())
    }
}

pub fn run(args: InfoArgs) -> Result<()> {
    // Counting parameters is cheap anywhere: use the CPU when it is compiled in.
    let spec = if crate::device::compiled_backends().contains(&"cpu") { DeviceSpec::Cpu } else { DeviceSpec::best() };
    dispatch(&spec, Info(args))
}
