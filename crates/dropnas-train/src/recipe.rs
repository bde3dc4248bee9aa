//! Retraining recipes: named sets of defaults for the augment flags. A flag given on the
//! command line overrides its recipe value.
//!
//! - `cifar` (the default): DropNAS' CIFAR retraining, the values of [`AugmentConfig::new`]
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
                c.batch_size = 128;
                c.lr = 0.1;
                c.momentum = 0.9;
                c.weight_decay = 3e-5;
                c.lr_schedule = LrSchedule::DARTS_IMAGENET;
                c.epochs = 250;
                c.init_channels = 48;
                c.layers = 14;
                c.aux_weight = 0.4;
                c.grad_clip = 5.0;
                c.label_smoothing = 0.1;
                c.drop_path_prob = 0.0;
                c.cutout_length = 0;
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
    use dropnas_core::genotype::named::named;

    #[test]
    fn the_imagenet_recipe_is_darts_train_imagenet() {
        let mut c = AugmentConfig::new("x", "imagefolder", named("darts-v2").unwrap());
        Recipe::Imagenet.apply(&mut c);
        assert_eq!((c.batch_size, c.epochs, c.init_channels, c.layers), (128, 250, 48, 14));
        assert_eq!((c.lr, c.momentum, c.weight_decay, c.grad_clip), (0.1, 0.9, 3e-5, 5.0));
        assert_eq!((c.aux_weight, c.drop_path_prob, c.label_smoothing, c.cutout_length), (0.4, 0.0, 0.1, 0));
        assert_eq!(c.lr_schedule, LrSchedule::Step { gamma: 0.97, step_size: 1 });
        assert_eq!(c.network, NetworkKind::Imagenet);
        let t = c.image_folder.as_ref().unwrap();
        assert_eq!((t.input_size, t.val_resize), (224, 256));
        let j = t.color_jitter.unwrap();
        assert_eq!((j.brightness, j.contrast, j.saturation, j.hue), (0.4, 0.4, 0.4, 0.2));
        assert!(c.validate().is_ok());
        let mut d = AugmentConfig::new("x", "cifar10", named("darts-v2").unwrap());
        let before = d.clone();
        Recipe::Cifar.apply(&mut d);
        assert_eq!(d, before);
        assert_eq!("ImageNet".parse(), Ok(Recipe::Imagenet));
    }
}

#[cfg(test)]
mod compat {
    use crate::augment::AugmentConfig;
    use crate::recipe::Recipe;
    use crate::schedule::LrSchedule;
    use dropnas_core::NetworkKind;

    /// A `config.json` written before the ImageNet recipe (a report fixture) reads as the CIFAR
    /// recipe, so that such runs resume and evaluate as before.
    #[test]
    fn configs_without_the_new_fields_read_as_before() {
        let text = include_str!("../../dropnas-report/tests/fixtures/aug-c10-s1/config.json");
        assert!(!text.contains("label_smoothing"));
        let c: AugmentConfig = serde_json::from_str(text).unwrap();
        assert_eq!((c.recipe, c.network, c.label_smoothing), (Recipe::Cifar, NetworkKind::Cifar, 0.0));
        assert_eq!((c.lr_schedule, &c.image_folder), (LrSchedule::Cosine { lr_min: 0.0 }, &None));
        assert!(c.validate().is_ok());
    }
}
