//! The flags of `--dataset imagefolder` shared by `search`, `augment` and `eval`: the input size
//! and the preprocessing ([`FolderTransforms`]).

use crate::UserError;
use dropnas_data::{ColorJitter, Dataset, FolderTransforms};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ImageFolderArgs {
    /// Image folders: side of the square network input, the crop size [default: 32; 224 with --recipe imagenet]
    #[arg(long)]
    pub input_size: Option<usize>,
    /// Image folders: RandomResizedCrop's range of the crop's area, MIN,MAX [default: 0.08,1]
    #[arg(long, value_parser = parse_pair, value_name = "MIN,MAX")]
    pub crop_scale: Option<(f64, f64)>,
    /// Image folders: ColorJitter in training, BRIGHTNESS,CONTRAST,SATURATION,HUE, or `none`
    /// [default: none; 0.4,0.4,0.4,0.2 with --recipe imagenet]
    #[arg(long, value_parser = parse_jitter, value_name = "B,C,S,H")]
    pub color_jitter: Option<Jitter>,
    /// Image folders: evaluation resizes the shorter side to N, then takes the centre square
    /// [default: input size x 256/224, rounded: 256 at 224]
    #[arg(long, value_name = "N")]
    pub val_resize: Option<usize>,
}

/// `--color-jitter`: values, or `none`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter(pub Option<ColorJitter>);

fn numbers(s: &str, n: usize) -> Result<Vec<f64>, String> {
    let v: Vec<f64> =
        s.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if v.len() != n {
        return Err(format!("expected {n} comma-separated numbers, got {}", v.len()));
    }
    Ok(v)
}

fn parse_pair(s: &str) -> Result<(f64, f64), String> {
    let v = numbers(s, 2)?;
    Ok((v[0], v[1]))
}

fn parse_jitter(s: &str) -> Result<Jitter, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Jitter(None));
    }
    let v = numbers(s, 4)?;
    let j = ColorJitter { brightness: v[0], contrast: v[1], saturation: v[2], hue: v[3] };
    j.validate()?;
    Ok(Jitter((v.iter().any(|&x| x != 0.0)).then_some(j)))
}

impl ImageFolderArgs {
    fn any_given(&self) -> bool {
        self.input_size.is_some()
            || self.crop_scale.is_some()
            || self.color_jitter.is_some()
            || self.val_resize.is_some()
    }

    /// The preprocessing of `dataset`: `None` for the built-in data sets (where these flags are
    /// an error), else `base` (a recipe's) or the default for the input size, with the flags
    /// given applied.
    pub fn resolve(
        &self,
        dataset: Dataset,
        base: Option<FolderTransforms>,
    ) -> Result<Option<FolderTransforms>, UserError> {
        if dataset != Dataset::ImageFolder {
            if self.any_given() {
                return Err(UserError::new(format!(
                    "--input-size, --crop-scale, --color-jitter and --val-resize apply to --dataset imagefolder only \
                     ({dataset} images have a fixed size and preprocessing)"
                )));
            }
            return Ok(None);
        }
        let mut t = base.unwrap_or_else(|| FolderTransforms::for_input_size(self.input_size.unwrap_or(32)));
        if let Some(s) = self.input_size
            && s != t.input_size
        {
            t.val_resize = FolderTransforms::for_input_size(s).val_resize;
            t.input_size = s;
        }
        if let Some(scale) = self.crop_scale {
            t.crop_scale = scale;
        }
        if let Some(Jitter(j)) = self.color_jitter {
            t.color_jitter = j;
        }
        if let Some(r) = self.val_resize {
            t.val_resize = r;
        }
        t.validate().map_err(|e| UserError::new(e.to_string()))?;
        Ok(Some(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_resolve() {
        let ds = |s: &str| s.parse::<Dataset>().unwrap();
        let none = ImageFolderArgs::default();
        assert_eq!(none.resolve(ds("cifar10"), None).unwrap(), None);
        assert_eq!(none.resolve(ds("imagefolder"), None).unwrap(), Some(FolderTransforms::for_input_size(32)));
        let a = ImageFolderArgs { input_size: Some(64), ..Default::default() };
        assert!(a.resolve(ds("mnist"), None).is_err());
        let t = a.resolve(ds("imagefolder"), Some(FolderTransforms::imagenet())).unwrap().unwrap();
        assert_eq!((t.input_size, t.val_resize, t.color_jitter.is_some()), (64, 73, true));
        let b = ImageFolderArgs { color_jitter: Some(parse_jitter("none").unwrap()), ..Default::default() };
        assert_eq!(
            b.resolve(ds("imagefolder"), Some(FolderTransforms::imagenet())).unwrap().unwrap().color_jitter,
            None
        );
        assert!(parse_jitter("0.4,0.4,0.4,0.7").is_err());
        assert!(parse_pair("0.5").is_err());
        let c = ImageFolderArgs { val_resize: Some(20), ..Default::default() };
        assert!(c.resolve(ds("imagefolder"), None).unwrap_err().to_string().contains("--val-resize"));
    }
}
