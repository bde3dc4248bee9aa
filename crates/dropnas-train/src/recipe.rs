//! Retraining recipes: named sets of defaults for the augment flags. A flag given on the
//! command line overrides its recipe value.
//!
//! - `cifar` (the default): DropNAS' CIFAR retraining, the values of [`AugmentConfig::defaults`]
//!   (600 epochs, 20 cells x 36 channels, batch 192, lr 0.05 cosine to 0, weight decay 3e-4,
//!   clip 3, auxiliary weight 0.4, cutout 16, drop path 0.2).
//! - `imagenet`: DARTS' mobile setting on ImageNet (`cnn/train_imagenet.py` with `--auxiliary`,
//!   as its README runs it): the ImageNet network, 14 cells x 48 channels, batch 128, SGD lr 0.1
//!   momentum 0.9, weight decay 3e-5, the lr times 0.97 every epoch, 250 epochs, clip 5,
//!   auxiliary weight 0.4, label smoothing 0.1, no drop path, no cutout; random-resized crop 224,
//!   flip, colour jitter (0.4, 0.4, 0.4, 0.2); evaluation resize 256, centre crop 224. It needs
//!   an image folder (`--dataset imagefolder`).

use crate::augment::AugmentConfig;
use crate::schedule::LrSchedule;
use dropnas_core::NetworkKind;
use dropnas_data::FolderTransforms;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A named set of retraining defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// DropNAS' CIFAR retraining.
    #[default]
    Cifar,
    /// DARTS' ImageNet retraining (the mobile setting).
    Imagenet,
}

impl Recipe {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Cifar => "cifar",
            Recipe::Imagenet => "imagenet",
        }
    }

    /// Sets every value this recipe defines (the caller then applies the flags given).
    pub fn apply(self, c: &mut AugmentConfig) {
        c.recipe = self;
        match self {
            Recipe::Cifar => {}
            Recipe::Imagenet => {
                c.network = NetworkKind::Imagenet;
                c.image_folder = Some(FolderTransforms::imagenet());
                c.lr_schedule = LrSchedule::DARTS_IMAGENET;
                let s = &mut c.settings;
                s.batch_size = 128;
                s.lr = 0.1;
                s.momentum = 0.9;
                s.weight_decay = 3e-5;
                s.epochs = 250;
                s.init_channels = 48;
                s.layers = 14;
                s.aux_weight = 0.4;
                s.grad_clip = 5.0;
                s.label_smoothing = 0.1;
                s.drop_path_prob = 0.0;
                s.cutout_length = 0;
            }
        }
    }
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Recipe {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cifar" => Ok(Recipe::Cifar),
            "imagenet" => Ok(Recipe::Imagenet),
            _ => Err(format!("unknown recipe `{s}`: expected cifar or imagenet")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::config::TaskConfig;
    use dropnas_core::genotype::named::named;
    use dropnas_data::{Dataset, DatasetKind};

    #[test]
    fn the_imagenet_recipe_is_darts_train_imagenet() {
        let mut c = AugmentConfig::defaults(Dataset::ImageFolder, named("darts-v2").unwrap());
        Recipe::Imagenet.apply(&mut c);
        let s = &c.settings;
        assert_eq!((s.batch_size, s.epochs, s.init_channels, s.layers), (128, 250, 48, 14));
        assert_eq!((s.lr, s.momentum, s.weight_decay, s.grad_clip), (0.1, 0.9, 3e-5, 5.0));
        assert_eq!((s.aux_weight, s.drop_path_prob, s.label_smoothing, s.cutout_length), (0.4, 0.0, 0.1, 0));
        assert_eq!(c.lr_schedule, LrSchedule::Step { gamma: 0.97, step_size: 1 });
        assert_eq!(c.network, NetworkKind::Imagenet);
        let t = c.image_folder.as_ref().unwrap();
        assert_eq!((t.input_size, t.val_resize), (224, 256));
        let j = t.color_jitter.unwrap();
        assert_eq!((j.brightness, j.contrast, j.saturation, j.hue), (0.4, 0.4, 0.4, 0.2));
        assert!(c.validate().is_ok(), "{:?}", c.validate());
        let mut d = AugmentConfig::defaults(Dataset::Builtin(DatasetKind::Cifar10), named("darts-v2").unwrap());
        let before = d.clone();
        Recipe::Cifar.apply(&mut d);
        assert_eq!(d, before);
        assert_eq!("ImageNet".parse(), Ok(Recipe::Imagenet));
    }
}
