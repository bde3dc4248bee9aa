//! The four data sets of DropNAS and their fixed properties: image shape, class count and the
//! per-channel normalisation constants of the original code.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::DataError;

/// One of the data sets the original DropNAS code supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// CIFAR-10: 32x32 RGB, 10 classes, 50,000 train / 10,000 test.
    Cifar10,
    /// CIFAR-100: 32x32 RGB, 100 fine (or 20 coarse) classes, 50,000 train / 10,000 test.
    Cifar100,
    /// MNIST: 28x28 grey digits, 10 classes, 60,000 train / 10,000 test.
    Mnist,
    /// Fashion-MNIST: 28x28 grey clothes, 10 classes, 60,000 train / 10,000 test.
    FashionMnist,
}

/// Which part of a data set to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images (searched on, or retrained on).
    Train,
    /// The test images (reported accuracy).
    Test,
}

impl Split {
    /// "train" or "test", as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DatasetKind {
    /// All kinds, in the order of the CLI's help text.
    pub const ALL: [DatasetKind; 4] =
        [DatasetKind::Cifar10, DatasetKind::Cifar100, DatasetKind::Mnist, DatasetKind::FashionMnist];

    /// The CLI name: "cifar10", "cifar100", "mnist" or "fashion-mnist".
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// The name people know it by, for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => "CIFAR-10",
            DatasetKind::Cifar100 => "CIFAR-100",
            DatasetKind::Mnist => "MNIST",
            DatasetKind::FashionMnist => "Fashion-MNIST",
        }
    }

    /// Side of the square input images: 32 for CIFAR, 28 for (Fashion-)MNIST.
    pub fn input_size(self) -> usize {
        match self {
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 32,
            DatasetKind::Mnist | DatasetKind::FashionMnist => 28,
        }
    }

    /// Number of colour channels: 3 for CIFAR, 1 for (Fashion-)MNIST.
    pub fn input_channels(self) -> usize {
        match self {
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 3,
            DatasetKind::Mnist | DatasetKind::FashionMnist => 1,
        }
    }

    /// Number of classes; `coarse` selects CIFAR-100's 20 super-classes and is ignored otherwise.
    pub fn n_classes(self, coarse: bool) -> usize {
        match self {
            DatasetKind::Cifar100 if coarse => 20,
            DatasetKind::Cifar100 => 100,
            _ => 10,
        }
    }

    /// Per-channel mean of the training images in [0, 1], exactly the constants of the original
    /// code (f64 like the Python floats; torchvision's Normalize rounds them to f32).
    pub fn mean(self) -> &'static [f64] {
        match self {
            DatasetKind::Cifar10 => &[0.49139968, 0.48215827, 0.44653124],
            DatasetKind::Cifar100 => &[0.50707519, 0.48654887, 0.44091785],
            DatasetKind::Mnist => &[0.13066051707548254],
            DatasetKind::FashionMnist => &[0.28604063146254594],
        }
    }

    /// Per-channel standard deviation of the training images in [0, 1] (see [`Self::mean`]).
    pub fn std(self) -> &'static [f64] {
        match self {
            DatasetKind::Cifar10 => &[0.24703233, 0.24348505, 0.26158768],
            DatasetKind::Cifar100 => &[0.26733428, 0.25643846, 0.27615049],
            DatasetKind::Mnist => &[0.30810780244715075],
            DatasetKind::FashionMnist => &[0.35302426207299326],
        }
    }

    /// The CLI's default data dir, relative to the current directory: `datasets/<name>`.
    pub fn default_dir(self) -> PathBuf {
        PathBuf::from("datasets").join(self.name())
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    /// Parses the CLI names; also accepts the common spellings "cifar-10", "fashion_mnist", ...
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s.chars().filter(|c| !matches!(c, '-' | '_')).collect::<String>().to_ascii_lowercase();
        match key.as_str() {
            "cifar10" => Ok(DatasetKind::Cifar10),
            "cifar100" => Ok(DatasetKind::Cifar100),
            "mnist" => Ok(DatasetKind::Mnist),
            "fashionmnist" => Ok(DatasetKind::FashionMnist),
            _ => Err(DataError::UnknownDataset(s.to_string())),
        }
    }
}

/// Written as the CLI name (`"fashion-mnist"`); read with the same spellings as the CLI takes.
impl serde::Serialize for DatasetKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for DatasetKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What `--dataset` names: one of the built-in data sets, or an image folder (`imagefolder`:
/// `DIR/train/CLASS/*.jpg`, `DIR/val/CLASS/*.jpg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    Builtin(DatasetKind),
    ImageFolder,
}

impl Dataset {
    /// The CLI name: a built-in data set's, or `imagefolder`.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Builtin(kind) => kind.name(),
            Dataset::ImageFolder => crate::source::IMAGE_FOLDER,
        }
    }

    /// For messages: "CIFAR-10", "image folder".
    pub fn display_name(self) -> &'static str {
        match self {
            Dataset::Builtin(kind) => kind.display_name(),
            Dataset::ImageFolder => "image folder",
        }
    }

    /// The built-in data set, if it is one.
    pub fn builtin(self) -> Option<DatasetKind> {
        match self {
            Dataset::Builtin(kind) => Some(kind),
            Dataset::ImageFolder => None,
        }
    }

    /// The CLI's default data dir, relative to the current directory: `datasets/<name>`.
    pub fn default_dir(self) -> PathBuf {
        PathBuf::from("datasets").join(self.name())
    }
}

impl From<DatasetKind> for Dataset {
    fn from(kind: DatasetKind) -> Self {
        Dataset::Builtin(kind)
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = DataError;

    /// A built-in name in any of its spellings, or `imagefolder` (`image-folder`, `ImageFolder`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if crate::source::is_image_folder(s) {
            return Ok(Dataset::ImageFolder);
        }
        s.parse().map(Dataset::Builtin)
    }
}

impl serde::Serialize for Dataset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Dataset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
