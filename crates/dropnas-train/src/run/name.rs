//! `--name`: the run folder's name, one plain path component, so that a run can only ever write
//! inside `--out-dir`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A run's name: non-empty, not `.` or `..`, without path separators or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunName(String);

impl RunName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RunName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let why = if s.is_empty() {
            Some("it is empty")
        } else if s == "." || s == ".." {
            Some("`.` and `..` name folders that exist already")
        } else if s.contains(['/', '\\']) {
            Some("it contains a path separator")
        } else if s.chars().any(char::is_control) {
            Some("it contains a control character")
        } else if s.len() > 200 {
            Some("it is longer than 200 bytes")
        } else {
            None
        };
        match why {
            Some(why) => Err(format!(
                "invalid run name {s:?}: {why}. A run name is one folder name inside --out-dir \
                 (letters, digits, `-`, `_`, `.`); to write elsewhere, change --out-dir"
            )),
            None => Ok(RunName(s.to_string())),
        }
    }
}

impl TryFrom<String> for RunName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<RunName> for String {
    fn from(n: RunName) -> String {
        n.0
    }
}

impl fmt::Display for RunName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_plain_component_is_a_name() {
        for good in ["quickstart", "seed-1", "a.b_c", "日本"] {
            assert_eq!(good.parse::<RunName>().unwrap().as_str(), good);
        }
        for (bad, why) in [
            ("", "empty"),
            (".", "`.`"),
            ("..", "`..`"),
            ("../x", "separator"),
            ("/etc", "separator"),
            ("a\\b", "separator"),
            ("a\nb", "control"),
        ] {
            let e = bad.parse::<RunName>().unwrap_err();
            assert!(e.contains(why) && e.contains("--out-dir"), "{bad:?}: {e}");
        }
        // the same rule when a name is read back from a file
        assert!(serde_json::from_str::<RunName>("\"..\"").is_err());
    }
}
