//! Published genotypes, by name.

use super::Genotype;
use super::text::parse;

/// `(name, where it comes from, text)`.
pub const NAMED: [(&str, &str, &str); 6] = [
    (
        "dropnas-cifar10",
        "DropNAS, CIFAR-10 search (the original README)",
        "Genotype(normal=[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], \
         [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)]], normal_concat=range(2, 6), \
         reduce=[[('max_pool_3x3', 0), ('sep_conv_5x5', 1)], [('dil_conv_5x5', 2), ('sep_conv_5x5', 1)], \
         [('dil_conv_5x5', 3), ('dil_conv_5x5', 2)], [('dil_conv_5x5', 3), ('dil_conv_5x5', 4)]], reduce_concat=range(2, 6))",
    ),
    (
        "dropnas-cifar100",
        "DropNAS, CIFAR-100 search (transcribed from the cell figures of the original repository; \
         the order of the two edges within a node is not shown there)",
        "Genotype(normal=[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('max_pool_3x3', 2)], \
         [('sep_conv_3x3', 1), ('sep_conv_5x5', 2)], [('sep_conv_5x5', 1), ('sep_conv_5x5', 0)]], normal_concat=range(2, 6), \
         reduce=[[('max_pool_3x3', 0), ('sep_conv_5x5', 1)], [('sep_conv_5x5', 1), ('dil_conv_5x5', 2)], \
         [('dil_conv_5x5', 2), ('dil_conv_5x5', 3)], [('dil_conv_5x5', 2), ('dil_conv_5x5', 4)]], reduce_concat=range(2, 6))",
    ),
    (
        "darts-v1",
        "DARTS first order (Liu et al., ICLR 2019; DARTS_V1 in its genotypes.py)",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), \
         ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], \
         reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), \
         ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",
    ),
    (
        "darts-v2",
        "DARTS second order (Liu et al., ICLR 2019; DARTS_V2 in its genotypes.py)",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), \
         ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], \
         reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), \
         ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
    ),
    (
        "pc-darts",
        "PC-DARTS, CIFAR-10 (Xu et al., ICLR 2020; PC_DARTS_cifar)",
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), \
         ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), \
         reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), \
         ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",
    ),
    (
        "p-darts",
        "P-DARTS, CIFAR-10 (Chen et al., ICCV 2019; PDARTS)",
        "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), \
         ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), \
         reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), \
         ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",
    ),
];

/// A published genotype by name (`dropnas-cifar10`, `darts-v2`, ...).
pub fn named(name: &str) -> Option<Genotype> {
    NAMED.iter().find(|(n, _, _)| *n == name).map(|(_, _, t)| parse(t).expect("named genotypes are valid"))
}

pub fn names() -> Vec<&'static str> {
    NAMED.iter().map(|(n, _, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::text::to_text;

    #[test]
    fn every_named_genotype_round_trips_exactly() {
        for (name, _, text) in NAMED {
            let g = named(name).unwrap();
            assert_eq!(to_text(&g), text, "{name}");
            assert_eq!(parse(&to_text(&g)).unwrap(), g, "{name}");
        }
        assert!(named("nope").is_none());
    }
}
