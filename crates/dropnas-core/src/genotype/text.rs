//! Parse and print the Python text form of a genotype.
//!
//! Printing gives exactly what Python prints for the original's namedtuple, e.g.
//! `Genotype(normal=[[('sep_conv_3x3', 1), ('skip_connect', 0)], ...], normal_concat=range(2, 6), ...)`.
//! Parsing also accepts newlines and extra spaces, double quotes, trailing commas, a list or
//! `list(range(..))` for concat, fields in any order, and DARTS' flat list of pairs.
//! Errors point at the offending text.

use super::{Concat, Edge, Genotype};
use crate::search_space::OpKind;
use std::fmt;

/// Intermediate nodes per cell, as in every DARTS-family network.
pub const N_NODES: usize = 4;

/// A parsed cell before validation: nodes of (edge, span of its index), and whether it was flat.
type ParsedCell = (Vec<Vec<(Edge, (usize, usize))>>, bool);

const FIELDS: [&str; 4] = ["normal", "normal_concat", "reduce", "reduce_concat"];

/// A malformed genotype, with the position of the problem in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenotypeError {
    pub message: String,
    /// Byte range of the offending text, when there is one.
    pub span: Option<(usize, usize)>,
    pub text: String,
}

impl std::error::Error for GenotypeError {}

impl fmt::Display for GenotypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid genotype: {}", self.message)?;
        if let Some((start, end)) = self.span {
            // Show the line holding the problem (clipped to a window) with a caret under it.
            let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = self.text[start..].find('\n').map_or(self.text.len(), |i| start + i);
            let line = &self.text[line_start..line_end];
            let col = self.text[line_start..start].chars().count();
            let width = self.text[start..end.min(line_end).max(start)].chars().count().max(1);
            let chars: Vec<char> = line.chars().collect();
            let from = col.saturating_sub(40);
            let to = (col + width + 40).min(chars.len());
            let shown: String = chars[from..to].iter().collect();
            let lineno = self.text[..start].matches('\n').count() + 1;
            write!(
                f,
                "\n  at line {lineno}, column {}:\n  {}{}{}\n  {}{}",
                col + 1,
                if from > 0 { "..." } else { "" },
                shown,
                if to < chars.len() { "..." } else { "" },
                " ".repeat(col - from + if from > 0 { 3 } else { 0 }),
                "^".repeat(width)
            )?;
        }
        write!(
            f,
            "\n  expected the form: Genotype(normal=[[('sep_conv_3x3', 1), ('skip_connect', 0)], ...], \
             normal_concat=range(2, 6), reduce=[[...], ...], reduce_concat=range(2, 6))"
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(usize),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn describe(t: Option<&Token>) -> String {
    match t.map(|t| &t.tok) {
        None => "the end of the text".into(),
        Some(Tok::Ident(s)) => format!("`{s}`"),
        Some(Tok::Str(s)) => format!("'{s}'"),
        Some(Tok::Int(n)) => format!("`{n}`"),
        Some(Tok::Punct(c)) => format!("`{c}`"),
    }
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>, span: Option<(usize, usize)>) -> GenotypeError {
        GenotypeError { message: message.into(), span, text: self.text.to_string() }
    }

    fn err_at_current(&self, expected: &str) -> GenotypeError {
        let t = self.toks.get(self.pos);
        let span = t.map(|t| (t.start, t.end)).or(Some((self.text.len(), self.text.len())));
        self.err(format!("expected {expected}, found {}", describe(t)), span)
    }

    fn tokenize(text: &'a str) -> Result<Self, GenotypeError> {
        let bytes = text.as_bytes();
        let mut toks = Vec::new();
        let mut i = 0;
        let err = |message: String, span| GenotypeError { message, span: Some(span), text: text.to_string() };
        while i < bytes.len() {
            let c = bytes[i] as char;
            if c.is_whitespace() {
                i += 1;
            } else if c == '\'' || c == '"' {
                let close = text[i + 1..]
                    .find(c)
                    .ok_or_else(|| err(format!("unterminated string: missing closing {c}"), (i, i + 1)))?;
                let s = &text[i + 1..i + 1 + close];
                toks.push(Token { tok: Tok::Str(s.to_string()), start: i, end: i + close + 2 });
                i += close + 2;
            } else if c.is_ascii_digit() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n = text[start..i].parse().map_err(|_| err("number too large".into(), (start, i)))?;
                toks.push(Token { tok: Tok::Int(n), start, end: i });
            } else if c == '-' {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                return Err(err(format!("negative index `{}`", &text[start..i]), (start, i)));
            } else if c.is_ascii_alphabetic() || c == '_' {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                    i += 1;
                }
                toks.push(Token { tok: Tok::Ident(text[start..i].to_string()), start, end: i });
            } else if "()[],=".contains(c) {
                toks.push(Token { tok: Tok::Punct(c), start: i, end: i + 1 });
                i += 1;
            } else {
                let len = text[i..].chars().next().map_or(1, char::len_utf8);
                return Err(err(format!("unexpected character `{}`", &text[i..i + len]), (i, i + len)));
            }
        }
        Ok(Self { text, toks, pos: 0 })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn expect_punct(&mut self, c: char) -> Result<(), GenotypeError> {
        if self.is_punct(c) {
            self.pos += 1;
            Ok(())
        } else {
            let what = match c {
                ')' => "`)` (unbalanced brackets?)".to_string(),
                ']' => "`]` (unbalanced brackets?)".to_string(),
                _ => format!("`{c}`"),
            };
            Err(self.err_at_current(&what))
        }
    }

    fn ident(&mut self, expected: &str) -> Result<(String, (usize, usize)), GenotypeError> {
        match self.toks.get(self.pos) {
            Some(Token { tok: Tok::Ident(s), start, end }) => {
                let r = (s.clone(), (*start, *end));
                self.pos += 1;
                Ok(r)
            }
            _ => Err(self.err_at_current(expected)),
        }
    }

    fn int(&mut self) -> Result<(usize, (usize, usize)), GenotypeError> {
        match self.toks.get(self.pos) {
            Some(Token { tok: Tok::Int(n), start, end }) => {
                let r = (*n, (*start, *end));
                self.pos += 1;
                Ok(r)
            }
            _ => Err(self.err_at_current("an integer")),
        }
    }

    /// `( 'op', index )`
    fn pair(&mut self) -> Result<(Edge, (usize, usize)), GenotypeError> {
        self.expect_punct('(')?;
        let (name, span) = match self.toks.get(self.pos) {
            Some(Token { tok: Tok::Str(s), start, end }) => (s.clone(), (*start, *end)),
            _ => return Err(self.err_at_current("an op name in quotes, like 'sep_conv_3x3'")),
        };
        self.pos += 1;
        let op = OpKind::from_name(&name).ok_or_else(|| {
            self.err(format!("unknown op '{name}' (known ops: {})", OpKind::names().join(", ")), Some(span))
        })?;
        self.expect_punct(',')?;
        let (index, ispan) = self.int()?;
        if self.is_punct(',') {
            self.pos += 1;
        }
        self.expect_punct(')')?;
        Ok(((op, index), ispan))
    }

    /// A comma-separated sequence up to `]`, the `[` already consumed.
    fn seq<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, GenotypeError>) -> Result<Vec<T>, GenotypeError> {
        let mut out = Vec::new();
        while !self.is_punct(']') {
            // `field=` inside a list: the list was never closed
            if let (Some(Token { tok: Tok::Ident(name), start, end }), Some(Tok::Punct('='))) =
                (self.toks.get(self.pos), self.toks.get(self.pos + 1).map(|t| &t.tok))
            {
                return Err(self.err(
                    format!("a list is not closed before `{name}=` (unbalanced brackets?)"),
                    Some((*start, *end)),
                ));
            }
            if self.pos >= self.toks.len() {
                return Err(self.err_at_current("`]` (unbalanced brackets?)"));
            }
            out.push(item(self)?);
            if self.is_punct(',') {
                self.pos += 1;
            } else if !self.is_punct(']') {
                return Err(self.err_at_current("`,` or `]`"));
            }
        }
        self.pos += 1;
        Ok(out)
    }

    /// A cell: nested `[[pair, pair], ...]` or flat `[pair, pair, ...]` (two per node).
    fn cell(&mut self, field: &str) -> Result<ParsedCell, GenotypeError> {
        let open = self.toks.get(self.pos).map(|t| (t.start, t.end));
        self.expect_punct('[')?;
        if self.is_punct('[') {
            let nodes = self.seq(|p| {
                p.expect_punct('[')?;
                p.seq(Parser::pair)
            })?;
            Ok((nodes, false))
        } else if self.is_punct('(') {
            let pairs = self.seq(Parser::pair)?;
            if pairs.len() % 2 != 0 {
                return Err(self.err(
                    format!("`{field}` is a flat list of {} pairs; a flat list needs two pairs per node", pairs.len()),
                    open,
                ));
            }
            Ok((pairs.chunks(2).map(<[_]>::to_vec).collect(), true))
        } else if self.is_punct(']') {
            Err(self.err(format!("`{field}` is empty: a cell needs {N_NODES} nodes"), open))
        } else {
            Err(self.err_at_current("`[` (a node's list of edges) or `(` (an edge)"))
        }
    }

    fn concat(&mut self) -> Result<(Concat, (usize, usize)), GenotypeError> {
        let start = self.toks.get(self.pos).map_or(self.text.len(), |t| t.start);
        let concat = if self.is_punct('[') {
            self.pos += 1;
            Concat::List(self.seq(|p| p.int().map(|(n, _)| n))?)
        } else {
            let (name, span) = self.ident("`range(2, 6)` or a list like `[2, 3, 4, 5]`")?;
            match name.as_str() {
                "range" => self.range()?,
                "list" => {
                    self.expect_punct('(')?;
                    let (inner, _) = self.ident("`range`")?;
                    if inner != "range" {
                        return Err(self.err("expected `list(range(a, b))`", Some(span)));
                    }
                    let r = self.range()?;
                    self.expect_punct(')')?;
                    r
                }
                other => {
                    return Err(
                        self.err(format!("expected `range(a, b)` or a list for concat, found `{other}`"), Some(span))
                    );
                }
            }
        };
        let end = self.toks.get(self.pos.saturating_sub(1)).map_or(self.text.len(), |t| t.end);
        Ok((concat, (start, end)))
    }

    fn range(&mut self) -> Result<Concat, GenotypeError> {
        self.expect_punct('(')?;
        let (a, _) = self.int()?;
        self.expect_punct(',')?;
        let (b, _) = self.int()?;
        self.expect_punct(')')?;
        Ok(Concat::Range(a, b))
    }
}

/// Parses the text form. See the module docs for what is accepted.
pub fn parse(text: &str) -> Result<Genotype, GenotypeError> {
    let mut p = Parser::tokenize(text)?;
    if p.toks.is_empty() {
        return Err(p.err("the text is empty", None));
    }
    let (head, span) = p.ident("`Genotype(`")?;
    if head != "Genotype" {
        return Err(p.err(format!("expected `Genotype(`, found `{head}`"), Some(span)));
    }
    p.expect_punct('(')?;
    let mut cells: [Option<ParsedCell>; 2] = [None, None];
    let mut concats: [Option<(Concat, (usize, usize))>; 2] = [None, None];
    let mut seen: Vec<String> = Vec::new();
    while !p.is_punct(')') {
        let (field, span) = p.ident("a field name (normal, normal_concat, reduce, reduce_concat) or `)`")?;
        if !FIELDS.contains(&field.as_str()) {
            return Err(p.err(format!("unknown field `{field}` (expected one of {})", FIELDS.join(", ")), Some(span)));
        }
        if seen.contains(&field) {
            return Err(p.err(format!("field `{field}` is given twice"), Some(span)));
        }
        seen.push(field.clone());
        p.expect_punct('=')?;
        match field.as_str() {
            "normal" => cells[0] = Some(p.cell(&field)?),
            "reduce" => cells[1] = Some(p.cell(&field)?),
            "normal_concat" => concats[0] = Some(p.concat()?),
            _ => concats[1] = Some(p.concat()?),
        }
        if p.is_punct(',') {
            p.pos += 1;
        } else if !p.is_punct(')') {
            return Err(p.err_at_current("`,` or `)`"));
        }
    }
    let close = p.toks[p.pos].end;
    p.pos += 1;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(
            p.err(format!("unexpected text after the closing `)`: {}", describe(Some(t))), Some((t.start, t.end)))
        );
    }
    let missing: Vec<&str> = FIELDS.iter().copied().filter(|f| !seen.iter().any(|s| s == f)).collect();
    if !missing.is_empty() {
        return Err(p.err(format!("missing field(s): {}", missing.join(", ")), Some((close - 1, close))));
    }

    let mut nodes_out: Vec<Vec<Vec<Edge>>> = Vec::new();
    let mut flat = false;
    for (k, cell) in cells.into_iter().enumerate() {
        let (nodes, is_flat) = cell.expect("checked above");
        let name = if k == 0 { "normal" } else { "reduce" };
        if k == 0 {
            flat = is_flat;
        }
        if nodes.len() != N_NODES {
            return Err(p.err(format!("`{name}` has {} nodes; a cell has exactly {N_NODES}", nodes.len()), None));
        }
        for (i, node) in nodes.iter().enumerate() {
            if node.is_empty() {
                return Err(p.err(format!("node {i} of `{name}` has no edges"), None));
            }
            for &((_, index), span) in node {
                if index >= i + 2 {
                    return Err(p.err(
                        format!(
                            "node {i} of `{name}` reads state {index}, but it can only read states 0..={} \
                             (0, 1: the cell inputs; 2..: earlier nodes)",
                            i + 1
                        ),
                        Some(span),
                    ));
                }
            }
        }
        nodes_out.push(nodes.into_iter().map(|n| n.into_iter().map(|(e, _)| e).collect()).collect());
    }
    for (k, concat) in concats.iter().enumerate() {
        let (concat, span) = concat.as_ref().expect("checked above");
        let idx = concat.indices();
        let name = if k == 0 { "normal_concat" } else { "reduce_concat" };
        if idx.is_empty() {
            return Err(p.err(format!("`{name}` selects no state"), Some(*span)));
        }
        if let Some(bad) = idx.iter().find(|&&i| i >= N_NODES + 2) {
            return Err(
                p.err(format!("`{name}` selects state {bad}; a cell has states 0..={}", N_NODES + 1), Some(*span))
            );
        }
    }
    let reduce = nodes_out.pop().expect("two cells");
    let normal = nodes_out.pop().expect("two cells");
    let [c0, c1] = concats;
    Ok(Genotype { normal, normal_concat: c0.expect("checked").0, reduce, reduce_concat: c1.expect("checked").0, flat })
}

fn cell_text(nodes: &[Vec<Edge>], flat: bool) -> String {
    let pair = |(op, i): &Edge| format!("('{}', {})", op.name(), i);
    if flat {
        let pairs: Vec<String> = nodes.iter().flatten().map(pair).collect();
        format!("[{}]", pairs.join(", "))
    } else {
        let nodes: Vec<String> =
            nodes.iter().map(|n| format!("[{}]", n.iter().map(pair).collect::<Vec<_>>().join(", "))).collect();
        format!("[{}]", nodes.join(", "))
    }
}

fn concat_text(c: &Concat) -> String {
    match c {
        Concat::Range(a, b) => format!("range({a}, {b})"),
        Concat::List(v) => format!("[{}]", v.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Python's `str(genotype)`.
pub fn to_text(g: &Genotype) -> String {
    format!(
        "Genotype(normal={}, normal_concat={}, reduce={}, reduce_concat={})",
        cell_text(&g.normal, g.flat),
        concat_text(&g.normal_concat),
        cell_text(&g.reduce, g.flat),
        concat_text(&g.reduce_concat)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "Genotype(
normal=[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)]],
normal_concat=range(2, 6),
reduce=[[('max_pool_3x3', 0), ('sep_conv_5x5', 1)], [('dil_conv_5x5', 2), ('sep_conv_5x5', 1)], [('dil_conv_5x5', 3), ('dil_conv_5x5', 2)], [('dil_conv_5x5', 3), ('dil_conv_5x5', 4)]],
reduce_concat=range(2, 6)
)";

    #[test]
    fn seed_readme_genotype_prints_as_python_does() {
        let g = parse(SEED).unwrap();
        assert_eq!(
            to_text(&g),
            "Genotype(normal=[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], \
             [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)]], \
             normal_concat=range(2, 6), reduce=[[('max_pool_3x3', 0), ('sep_conv_5x5', 1)], [('dil_conv_5x5', 2), \
             ('sep_conv_5x5', 1)], [('dil_conv_5x5', 3), ('dil_conv_5x5', 2)], [('dil_conv_5x5', 3), ('dil_conv_5x5', 4)]], \
             reduce_concat=range(2, 6))"
        );
        assert_eq!(g.normal[3], vec![(OpKind::DilConv5x5, 4), (OpKind::DilConv3x3, 1)]);
    }

    #[test]
    fn lists_flat_pairs_double_quotes_and_field_order_are_accepted() {
        let flat = "Genotype(normal=[(\"sep_conv_3x3\", 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), \
            ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2),], \
            reduce_concat=[2, 3, 4, 5], normal_concat=list(range(2, 6)), \
            reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), \
            ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)],)";
        let g = parse(flat).unwrap();
        assert!(g.flat);
        assert_eq!(g.normal.len(), 4);
        assert_eq!(g.normal[3], vec![(OpKind::SkipConnect, 0), (OpKind::DilConv3x3, 2)]);
        assert_eq!(g.reduce_concat, Concat::List(vec![2, 3, 4, 5]));
        assert_eq!(g.normal_concat, Concat::Range(2, 6));
        // printing then parsing is the identity
        assert_eq!(parse(&to_text(&g)).unwrap(), g);
        assert!(to_text(&g).contains("reduce_concat=[2, 3, 4, 5]"));
    }

    fn err(text: &str) -> GenotypeError {
        parse(text).expect_err(text)
    }

    fn valid_with(normal: &str) -> String {
        SEED.replacen(
            "[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)]]",
            normal,
            1,
        )
    }

    #[test]
    fn malformed_genotypes_are_rejected_with_a_pointed_message() {
        let cases: Vec<(String, &str, Option<&str>)> = vec![
            (
                valid_with(
                    "[[('sep_conv_9x9', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)]]",
                ),
                "unknown op 'sep_conv_9x9'",
                Some("'sep_conv_9x9'"),
            ),
            (
                valid_with(
                    "[[('sep_conv_3x3', 2), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)]]",
                ),
                "node 0 of `normal` reads state 2",
                Some("2"),
            ),
            (
                valid_with(
                    "[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)]]",
                ),
                "`normal` has 3 nodes; a cell has exactly 4",
                None,
            ),
            (
                valid_with(
                    "[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)], [('dil_conv_5x5', 4)]]",
                ),
                "`normal` has 5 nodes",
                None,
            ),
            (
                valid_with(
                    "[[('sep_conv_3x3', 1), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], [('dil_conv_5x5', 4), ('dil_conv_3x3', 1)]",
                ),
                "unbalanced brackets",
                None,
            ),
            (SEED.replace("reduce_concat=range(2, 6)\n)", "reduce_concat=range(2, 6)\n"), "expected `,` or `)`", None),
            (SEED.replace("('max_pool_3x3', 0)", "('max_pool_3x3', 0"), "unbalanced brackets", None),
            (SEED.replace("normal_concat=range(2, 6),\n", ""), "missing field(s): normal_concat", None),
            (SEED.replace("normal_concat", "normal_concot"), "unknown field `normal_concot`", Some("normal_concot")),
            (SEED.replace("Genotype(", "Genotipe("), "expected `Genotype(`", Some("Genotipe")),
            (String::new(), "the text is empty", None),
            (SEED.replace("('max_pool_3x3', 0)", "('max_pool_3x3, 0)"), "unterminated string", None),
            (
                SEED.replace("reduce_concat=range(2, 6)", "reduce_concat=range(2, 9)"),
                "selects state 6",
                Some("range(2, 9)"),
            ),
            (SEED.replace("reduce_concat=range(2, 6)", "reduce_concat=[]"), "selects no state", None),
            (format!("{SEED} extra"), "unexpected text after the closing", Some("extra")),
            (SEED.replace("('skip_connect', 0)", "('skip_connect', -1)"), "negative index `-1`", Some("-1")),
            (
                SEED.replace("normal_concat=range(2, 6)", "normal_concat=range(2, 6), normal_concat=range(2, 6)"),
                "given twice",
                None,
            ),
            (valid_with("[]"), "`normal` is empty", None),
            (valid_with("[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1)]"), "two pairs per node", None),
            (SEED.replace("('sep_conv_5x5', 1)]", "('sep_conv_5x5', 1)] ;"), "unexpected character `;`", Some(";")),
        ];
        assert!(cases.len() >= 10);
        for (text, needle, pointed) in cases {
            let e = err(&text);
            let msg = e.to_string();
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
            if let Some(p) = pointed {
                let (s, t) = e.span.expect("span");
                assert_eq!(&text[s..t], p, "{msg}");
                assert!(msg.contains('^'));
            }
        }
    }
}
