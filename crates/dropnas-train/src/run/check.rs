//! The rules every numeric setting is held to, once, as clap value parsers: a bad value is
//! refused with the flag's name before anything runs, and a configuration read back from a run
//! folder or built in code is held to the same parsers ([`crate::run::config::check_args`]).

/// A rule on one value: `Ok` or why not, in words that complete "must be ...".
pub type Rule<T> = fn(T) -> Result<T, &'static str>;

pub fn finite(v: f64) -> Result<f64, &'static str> {
    if v.is_finite() { Ok(v) } else { Err("a finite number") }
}

/// Learning rates, gradient clips: a zero or negative value silently breaks training
/// (a negative clip turns the step into gradient ascent, a zero one never learns).
pub fn positive(v: f64) -> Result<f64, &'static str> {
    if v.is_finite() && v > 0.0 { Ok(v) } else { Err("a finite number above 0") }
}

/// Weight decays, loss weights: zero turns them off.
pub fn non_negative(v: f64) -> Result<f64, &'static str> {
    if v.is_finite() && v >= 0.0 { Ok(v) } else { Err("a finite number >= 0") }
}

/// Momenta, drop rates, drop-path probabilities.
pub fn unit_interval(v: f64) -> Result<f64, &'static str> {
    if v.is_finite() && (0.0..1.0).contains(&v) { Ok(v) } else { Err("in [0, 1)") }
}

/// Counts: batch size, epochs, layers, sample limits.
pub fn at_least_one(v: usize) -> Result<usize, &'static str> {
    if v >= 1 { Ok(v) } else { Err("at least 1") }
}

/// Channel counts: FactorizedReduce splits channels in two.
pub fn even_positive(v: usize) -> Result<usize, &'static str> {
    if v >= 2 && v.is_multiple_of(2) { Ok(v) } else { Err("an even number >= 2 (FactorizedReduce halves it)") }
}

/// Clap value parsers built from the rules.
pub mod parse {
    use super::*;

    fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
        s.trim().parse::<T>().map_err(|_| format!("`{s}` is not a number"))
    }

    fn with<T: std::str::FromStr + Copy + std::fmt::Display>(s: &str, rule: Rule<T>) -> Result<T, String> {
        let v = number::<T>(s)?;
        rule(v).map_err(|why| format!("must be {why}, got {v}"))
    }

    pub fn finite(s: &str) -> Result<f64, String> {
        with(s, super::finite)
    }
    pub fn positive(s: &str) -> Result<f64, String> {
        with(s, super::positive)
    }
    pub fn non_negative(s: &str) -> Result<f64, String> {
        with(s, super::non_negative)
    }
    pub fn unit_interval(s: &str) -> Result<f64, String> {
        with(s, super::unit_interval)
    }
    pub fn at_least_one(s: &str) -> Result<usize, String> {
        with(s, super::at_least_one)
    }
    pub fn even_positive(s: &str) -> Result<usize, String> {
        with(s, super::even_positive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_refuse_what_breaks_training() {
        for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        assert_eq!(positive(3.0), Ok(3.0));
        assert!(non_negative(-1e-9).is_err() && non_negative(f64::NAN).is_err());
        assert_eq!(non_negative(0.0), Ok(0.0));
        assert!(unit_interval(1.0).is_err() && unit_interval(-0.1).is_err());
        assert_eq!(unit_interval(0.9), Ok(0.9));
        assert!(at_least_one(0).is_err());
        assert!(even_positive(3).is_err() && even_positive(0).is_err());
        assert_eq!(parse::positive("nan").unwrap_err(), "must be a finite number above 0, got NaN");
        assert!(parse::at_least_one("x").unwrap_err().contains("not a number"));
    }
}
