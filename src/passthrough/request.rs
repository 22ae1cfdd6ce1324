//! What the user asked for: `hv.passthrough=` options on the hypervisor's
//! command line and a bundle's `passthrough=` value, as [`Request`]s.
//!
//! Only the syntax is checked here; whether a path exists, belongs to the
//! hypervisor or is wanted twice is [`super::resolve`]'s business, with the
//! device tree in hand. A malformed option is reported with its text and is
//! not guessed at: `hv.passthrough=vm0/virtio` is an error, not VM 0.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

/// What one request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// Every device node the hypervisor does not keep and no other VM was given.
    All,
    /// A node: a full path (`/virtio_mmio@a003e00`) or an `/aliases` name.
    Node(&'a str),
}

/// One device (or `all`) asked for one VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The VM, by its number (`vmN`).
    pub vm: usize,
    /// What it gets.
    pub target: Target<'a>,
}

/// An option whose syntax is wrong (the text is the option as written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// The offending text.
    pub text: String,
    /// What is accepted.
    pub expected: &'static str,
}

impl core::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "'{}' is not understood: {}", self.text, self.expected)
    }
}

/// The option's name on the hypervisor's command line.
pub const OPTION: &str = "hv.passthrough";

const EXPECTED_OPTION: &str =
    "use hv.passthrough=vmN:PATH (a node path or an alias) or hv.passthrough=vmN:all";
const EXPECTED_CONFIG: &str = "use passthrough=PATH[,PATH...] or passthrough=all";

fn target(value: &str) -> Option<Target<'_>> {
    match value {
        "" => None,
        "all" => Some(Target::All),
        // A path, or an alias name (letters, digits, '-', '_').
        p if p.starts_with('/') && p.bytes().all(|b| b.is_ascii_graphic() && b != b',') => {
            Some(Target::Node(p))
        }
        a if a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(Target::Node(a))
        }
        _ => None,
    }
}

fn vm_number(word: &str) -> Option<usize> {
    let n = word.strip_prefix("vm")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.len() > 3 {
        return None;
    }
    n.parse().ok()
}

/// `hv.passthrough_dma=trusted` (or `=confined`, the default): whether DMA
/// masters behind an SMMU the hypervisor does not program may be given to VMs.
pub fn dma_option(cmdline: &str) -> Result<bool, String> {
    let mut trusted = false;
    for value in cmdline
        .split_ascii_whitespace()
        .filter_map(|a| a.strip_prefix("hv.passthrough_dma="))
    {
        trusted = match value {
            "trusted" => true,
            "confined" => false,
            other => {
                return Err(alloc::format!(
                    "hv.passthrough_dma={other}: use hv.passthrough_dma=trusted or =confined"
                ))
            }
        };
    }
    Ok(trusted)
}

/// Every `hv.passthrough=` option of a command line, in order. Options that
/// do not parse are returned as errors; the others still count.
pub fn parse_cmdline(cmdline: &str) -> (Vec<Request<'_>>, Vec<SyntaxError>) {
    let mut requests = Vec::new();
    let mut errors = Vec::new();
    for word in cmdline.split_ascii_whitespace() {
        let Some(rest) = word.strip_prefix(OPTION) else {
            continue;
        };
        let Some(value) = rest.strip_prefix('=') else {
            if !rest.is_empty() {
                continue; // hv.passthrough_foo=...: another option
            }
            errors.push(SyntaxError {
                text: word.into(),
                expected: EXPECTED_OPTION,
            });
            continue;
        };
        let parsed = value.split_once(':').and_then(|(vm, t)| {
            Some(Request {
                vm: vm_number(vm)?,
                target: target(t)?,
            })
        });
        match parsed {
            Some(r) => requests.push(r),
            None => errors.push(SyntaxError {
                text: word.into(),
                expected: EXPECTED_OPTION,
            }),
        }
    }
    (requests, errors)
}

/// A VM configuration's `passthrough=` value (a bundle's `vmN/config`):
/// `all`, or paths and aliases separated by commas. Empty means nothing.
pub fn parse_config(vm: usize, value: &str) -> Result<Vec<Request<'_>>, SyntaxError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim) {
        let t = target(item).ok_or_else(|| SyntaxError {
            text: value.into(),
            expected: EXPECTED_CONFIG,
        })?;
        if t == Target::All && value != "all" {
            return Err(SyntaxError {
                text: value.into(),
                expected: "`all` stands alone: passthrough=all",
            });
        }
        out.push(Request { vm, target: t });
    }
    Ok(out)
}
