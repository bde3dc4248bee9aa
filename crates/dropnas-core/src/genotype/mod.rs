//! The genotype: the discrete cell architecture a search produces and augment trains.
//!
//! Text form is exactly what Python prints for the original's `Genotype` namedtuple
//! (see [`text`]); [`derive`] turns alphas into a genotype; [`named`] holds published ones.

pub mod derive;
pub mod named;
pub mod text;

use crate::search_space::OpKind;
use serde::{Deserialize, Serialize};

/// Output nodes of a cell, as written in the text: `range(a, b)` or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Concat {
    Range(usize, usize),
    List(Vec<usize>),
}

impl Concat {
    pub fn indices(&self) -> Vec<usize> {
        match self {
            Concat::Range(a, b) => (*a..*b).collect(),
            Concat::List(v) => v.clone(),
        }
    }
}

/// One edge of a node: the op and the index of the state it reads (0, 1: cell inputs;
/// `i + 2`: node `i`).
pub type Edge = (OpKind, usize);

/// A cell architecture: per node, its incoming edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genotype {
    pub normal: Vec<Vec<Edge>>,
    pub normal_concat: Concat,
    pub reduce: Vec<Vec<Edge>>,
    pub reduce_concat: Concat,
    /// Written as DARTS' flat list of pairs (two per node) rather than pt.darts' nested lists;
    /// kept so that text round-trips exactly.
    #[serde(default)]
    pub flat: bool,
}

impl Genotype {
    /// The node list and concat of a cell type.
    pub fn cell(&self, reduction: bool) -> (&[Vec<Edge>], &Concat) {
        if reduction { (&self.reduce, &self.reduce_concat) } else { (&self.normal, &self.normal_concat) }
    }

    /// Every edge of both cells, for checks like "does this genotype use op X".
    pub fn edges(&self) -> impl Iterator<Item = &Edge> {
        self.normal.iter().chain(&self.reduce).flatten()
    }
}

/// A genotype in a configuration file as its Python text (`#[serde(with = "as_text")]`): what
/// a person reads and what `--genotype` takes, instead of serde's nested enums.
pub mod as_text {
    use super::Genotype;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(g: &Genotype, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&g.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Genotype, D::Error> {
        let text = String::deserialize(d)?;
        super::text::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Genotype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&text::to_text(self))
    }
}

impl std::str::FromStr for Genotype {
    type Err = text::GenotypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        text::parse(s)
    }
}
