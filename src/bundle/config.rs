//! A bundle VM's `config` file: `key=value` lines.
//!
//! ```text
//! # Linux with two vCPUs
//! cpus=2
//! mem=256M          # K, M or G; a multiple of 2M
//! passthrough=/pl031@9010000,/virtio_mmio@a003e00
//! ```
//!
//! Blank lines are ignored, `#` starts a comment (to the end of the line),
//! spaces around keys and values are ignored, and CRLF line ends are accepted.
//! Every key may appear once; an unknown key is an error rather than ignored,
//! because a misspelt `cpu=2` silently ignored would boot a VM unlike the one
//! the user described.
#![forbid(unsafe_code)]

use crate::memplan::CHUNK;
use core::fmt;

/// The keys a `config` file may set.
pub const KEYS: [&str; 3] = ["cpus", "mem", "passthrough"];
/// The most vCPUs `cpus` may ask for (as many as a guest device tree can describe).
pub const MAX_CPUS: u32 = crate::dt::MAX_VCPUS as u32;
const _: () = assert!(MAX_CPUS == 256, "the message for a bad `cpus` says 256");

/// What a `config` file sets; `None` where it says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config<'a> {
    /// `cpus`: the VM's vCPUs (default: as many as the machine has CPUs).
    pub cpus: Option<u32>,
    /// `mem`: the VM's RAM in bytes (default: an equal share of what is free).
    pub mem: Option<u64>,
    /// `passthrough`: devices to give the VM, as written (device-tree paths
    /// separated by commas, or `all`); interpreted by device assignment.
    pub passthrough: Option<&'a str>,
}

/// A `config` file's mistake: the line (from 1) and what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError<'a> {
    /// The line, counted from 1 (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub kind: ConfigErrorKind<'a>,
}

/// What is wrong with a `config` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind<'a> {
    /// The file is not UTF-8 text.
    NotText,
    /// A line that is not `key=value`.
    NoEquals(&'a str),
    /// A key this hypervisor does not know.
    UnknownKey(&'a str),
    /// A key given twice.
    Duplicate(&'a str),
    /// A value that does not suit its key: the key, the value, and the rule.
    BadValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: &'a str,
        /// What a good value is.
        rule: &'static str,
    },
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        match self.kind {
            ConfigErrorKind::NotText => write!(f, "not UTF-8 text"),
            ConfigErrorKind::NoEquals(l) => write!(f, "'{l}' is not key=value"),
            ConfigErrorKind::UnknownKey(k) => write!(
                f,
                "unknown key '{k}' (the keys are {}, {} and {})",
                KEYS[0], KEYS[1], KEYS[2]
            ),
            ConfigErrorKind::Duplicate(k) => write!(f, "'{k}' is given twice"),
            ConfigErrorKind::BadValue { key, value, rule } => {
                write!(f, "{key}={value}: {rule}")
            }
        }
    }
}

/// `cpus`: a count from 1 to [`MAX_CPUS`].
fn cpus(value: &str) -> Option<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_CPUS).contains(n))
}

/// `mem`: digits with an optional K, M or G (powers of 1024), a non-zero
/// multiple of 2 MiB (a VM's RAM is mapped in 2 MiB blocks).
pub fn parse_size(value: &str) -> Result<u64, &'static str> {
    const RULE: &str = "expected a size such as 256M or 1G (K, M or G; a multiple of 2M)";
    let (digits, shift) = match value.as_bytes().last() {
        Some(b'K' | b'k') => (&value[..value.len() - 1], 10),
        Some(b'M' | b'm') => (&value[..value.len() - 1], 20),
        Some(b'G' | b'g') => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RULE);
    }
    let n: u64 = digits.parse().map_err(|_| "too large")?;
    let bytes = n.checked_mul(1 << shift).ok_or("too large")?;
    if bytes == 0 || bytes % CHUNK != 0 {
        return Err("must be a non-zero multiple of 2M (a VM's RAM is mapped in 2 MiB blocks)");
    }
    Ok(bytes)
}

/// Parses a `config` file; see the module docs.
pub fn parse(text: &[u8]) -> Result<Config<'_>, ConfigError<'_>> {
    let text = core::str::from_utf8(text).map_err(|_| ConfigError {
        line: 0,
        kind: ConfigErrorKind::NotText,
    })?;
    let mut c = Config::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |kind| ConfigError { line: i + 1, kind };
        let Some((key, value)) = line.split_once('=') else {
            return Err(err(ConfigErrorKind::NoEquals(line)));
        };
        let (key, value) = (key.trim(), value.trim());
        let bad = |key: &'static str, rule: &'static str| {
            err(ConfigErrorKind::BadValue { key, value, rule })
        };
        let duplicate = |set: bool| {
            if set {
                Err(err(ConfigErrorKind::Duplicate(key)))
            } else {
                Ok(())
            }
        };
        match key {
            "cpus" => {
                duplicate(c.cpus.is_some())?;
                c.cpus = Some(cpus(value).ok_or(bad("cpus", "expected a number from 1 to 256"))?);
            }
            "mem" => {
                duplicate(c.mem.is_some())?;
                c.mem = Some(parse_size(value).map_err(|rule| bad("mem", rule))?);
            }
            "passthrough" => {
                duplicate(c.passthrough.is_some())?;
                if value.is_empty() {
                    return Err(bad(
                        "passthrough",
                        "expected device-tree paths separated by commas, or all",
                    ));
                }
                c.passthrough = Some(value);
            }
            _ => return Err(err(ConfigErrorKind::UnknownKey(key))),
        }
    }
    Ok(c)
}
