//! Operations and search spaces as data.
//!
//! A search space is an ordered op list (the column order of an alpha row) split into dropout
//! groups. Adding an op is one [`OpKind`] variant plus its row in [`OpKind::ALL`]; adding a space
//! is one entry in [`SearchSpace::named`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every candidate operation of the DARTS family, named exactly as in genotype text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpKind {
    None,
    AvgPool3x3,
    MaxPool3x3,
    SkipConnect,
    SepConv3x3,
    SepConv5x5,
    SepConv7x7,
    DilConv3x3,
    DilConv5x5,
    Conv7x1_1x7,
}

impl OpKind {
    /// The op table: (kind, genotype name, has trainable weights).
    pub const ALL: [(OpKind, &'static str, bool); 10] = [
        (OpKind::None, "none", false),
        (OpKind::AvgPool3x3, "avg_pool_3x3", false),
        (OpKind::MaxPool3x3, "max_pool_3x3", false),
        (OpKind::SkipConnect, "skip_connect", false),
        (OpKind::SepConv3x3, "sep_conv_3x3", true),
        (OpKind::SepConv5x5, "sep_conv_5x5", true),
        (OpKind::SepConv7x7, "sep_conv_7x7", true),
        (OpKind::DilConv3x3, "dil_conv_3x3", true),
        (OpKind::DilConv5x5, "dil_conv_5x5", true),
        (OpKind::Conv7x1_1x7, "conv_7x1_1x7", true),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(k, _, _)| *k == self).map(|(_, n, _)| *n).unwrap_or("?")
    }

    pub fn from_name(name: &str) -> Option<OpKind> {
        Self::ALL.iter().find(|(_, n, _)| *n == name).map(|(k, _, _)| *k)
    }

    /// All valid op names, for error messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|(_, n, _)| *n).collect()
    }

    /// Whether the op has trainable weights (the "parameterised" dropout group of DropNAS).
    /// `skip_connect` counts as non-parameterised even though it becomes a FactorizedReduce
    /// at stride 2, as in the paper.
    pub fn is_parameterised(self) -> bool {
        Self::ALL.iter().find(|(k, _, _)| *k == self).map(|(_, _, p)| *p).unwrap_or(false)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The two kinds of dropout group of DropNAS, each with its own drop rate (r_p, r_np).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// Ops with trainable weights.
    Param,
    /// Ops without: pools, skip_connect, none.
    NonParam,
}

impl GroupKind {
    pub fn name(self) -> &'static str {
        match self {
            GroupKind::Param => "param",
            GroupKind::NonParam => "nonparam",
        }
    }
}

/// One dropout group of a search space: its kind and the columns it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpGroup {
    pub kind: GroupKind,
    pub columns: Vec<usize>,
}

/// The search spaces of the DropNAS paper, by name (`--search-space`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpaceName {
    /// The 8 ops of DARTS.
    #[default]
    #[serde(rename = "original")]
    Original,
    /// The two pools deleted.
    #[serde(rename = "1-skip")]
    OneSkip,
    /// The two pools replaced by skip_connect, each with its own alpha.
    #[serde(rename = "3-skip")]
    ThreeSkip,
}

impl SpaceName {
    pub const ALL: [SpaceName; 3] = [SpaceName::Original, SpaceName::OneSkip, SpaceName::ThreeSkip];

    pub fn as_str(self) -> &'static str {
        match self {
            SpaceName::Original => "original",
            SpaceName::OneSkip => "1-skip",
            SpaceName::ThreeSkip => "3-skip",
        }
    }

    /// The space: its op list (column order) and groups.
    pub fn space(self) -> SearchSpace {
        use OpKind::*;
        let ops: Vec<OpKind> = match self {
            SpaceName::Original => {
                vec![SepConv3x3, SepConv5x5, DilConv3x3, DilConv5x5, MaxPool3x3, AvgPool3x3, SkipConnect, None]
            }
            SpaceName::OneSkip => vec![SepConv3x3, SepConv5x5, DilConv3x3, DilConv5x5, SkipConnect, None],
            SpaceName::ThreeSkip => {
                vec![SepConv3x3, SepConv5x5, DilConv3x3, DilConv5x5, SkipConnect, SkipConnect, SkipConnect, None]
            }
        };
        SearchSpace::from_ops(self.as_str(), ops)
    }
}

impl std::str::FromStr for SpaceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown search space `{s}` (known: {})", SEARCH_SPACE_NAMES.join(", ")))
    }
}

impl fmt::Display for SpaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ordered op list (the columns of an alpha row) and its dropout groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSpace {
    pub name: String,
    pub ops: Vec<OpKind>,
    pub groups: Vec<OpGroup>,
}

/// The names accepted by [`SearchSpace::named`].
pub const SEARCH_SPACE_NAMES: [&str; 3] = ["original", "1-skip", "3-skip"];

impl SearchSpace {
    /// The search spaces of the DropNAS paper. The column order is DropNAS's (parameterised ops
    /// first), not pt.darts's; genotype text names ops, so only alpha columns depend on it.
    pub fn named(name: &str) -> Option<SearchSpace> {
        name.parse::<SpaceName>().ok().map(SpaceName::space)
    }

    /// A space from an op list, grouped by [`OpKind::is_parameterised`].
    pub fn from_ops(name: &str, ops: Vec<OpKind>) -> SearchSpace {
        let param: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].is_parameterised()).collect();
        let nonparam: Vec<usize> = (0..ops.len()).filter(|&i| !ops[i].is_parameterised()).collect();
        let mut groups = Vec::new();
        if !param.is_empty() {
            groups.push(OpGroup { kind: GroupKind::Param, columns: param });
        }
        if !nonparam.is_empty() {
            groups.push(OpGroup { kind: GroupKind::NonParam, columns: nonparam });
        }
        SearchSpace { name: name.to_string(), ops, groups }
    }

    pub fn n_ops(&self) -> usize {
        self.ops.len()
    }

    /// Column of `none`, which genotype derivation ignores.
    pub fn none_column(&self) -> Option<usize> {
        self.ops.iter().position(|&k| k == OpKind::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_space_matches_the_dropnas_column_order() {
        let s = SearchSpace::named("original").unwrap();
        let names: Vec<_> = s.ops.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            [
                "sep_conv_3x3",
                "sep_conv_5x5",
                "dil_conv_3x3",
                "dil_conv_5x5",
                "max_pool_3x3",
                "avg_pool_3x3",
                "skip_connect",
                "none"
            ]
        );
        assert_eq!(s.groups[0].columns, [0, 1, 2, 3]);
        assert_eq!(s.groups[1].columns, [4, 5, 6, 7]);
        assert_eq!(s.none_column(), Some(7));
    }

    #[test]
    fn skip_spaces_group_skips_with_none() {
        let one = SearchSpace::named("1-skip").unwrap();
        assert_eq!(one.groups[1].columns, [4, 5]);
        assert_eq!(one.ops[4], OpKind::SkipConnect);
        let three = SearchSpace::named("3-skip").unwrap();
        assert_eq!(three.groups[1].columns, [4, 5, 6, 7]);
        assert_eq!(&three.ops[4..7], &[OpKind::SkipConnect; 3]);
        assert!(SearchSpace::named("bogus").is_none());
    }

    #[test]
    fn every_op_name_round_trips() {
        for (k, n, _) in OpKind::ALL {
            assert_eq!(OpKind::from_name(n), Some(k));
            assert_eq!(k.name(), n);
        }
        assert_eq!(OpKind::from_name("sep_conv_9x9"), None);
    }
}
