//! Parsing a packet body into a [`Command`]. Every malformed body is an `Err`
//! (answered with an `E` reply), every unknown one [`Command::Unknown`] (answered
//! with the empty reply, which tells GDB the packet is not supported).
#![forbid(unsafe_code)]

use super::packet::{decode_hex, parse_hex};
use alloc::string::String;

/// A thread selector of `H`, `vCont` and friends. Threads are vCPUs, numbered
/// from 1 (GDB reserves 0 for "any" and -1 for "all").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ThreadSel {
    All,
    Any,
    Id(usize),
}

/// A `vCont` action.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Action {
    pub step: bool,
    pub thread: ThreadSel,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BreakKind {
    /// `Z0`: a breakpoint instruction written into guest memory.
    Software,
    /// `Z1`: a hardware breakpoint register.
    Hardware,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command<'a> {
    /// `?`: why the target stopped.
    HaltReason,
    /// `qSupported[:features]`.
    Supported,
    /// `QStartNoAckMode`.
    NoAckMode,
    /// `qAttached`.
    Attached,
    /// `qC`.
    CurrentThread,
    /// `qfThreadInfo` / `qsThreadInfo`.
    ThreadInfo { first: bool },
    /// `qThreadExtraInfo,id`.
    ThreadExtraInfo(usize),
    /// `qXfer:features:read:ANNEX:OFFSET,LENGTH`.
    Features {
        annex: &'a [u8],
        offset: usize,
        length: usize,
    },
    /// `qRcmd,HEX`: `monitor CMD`.
    Monitor(String),
    /// `g`.
    ReadRegisters,
    /// `G HEX`.
    WriteRegisters(&'a [u8]),
    /// `p N`.
    ReadRegister(usize),
    /// `P N=HEX`.
    WriteRegister(usize, &'a [u8]),
    /// `m ADDR,LEN`.
    ReadMemory(u64, usize),
    /// `M ADDR,LEN:HEX` (hex decoded, length checked).
    WriteMemory(u64, alloc::vec::Vec<u8>),
    /// `X ADDR,LEN:BINARY` (length checked).
    WriteMemoryBinary(u64, &'a [u8]),
    /// `Z`/`z` type 0 and 1.
    Breakpoint {
        insert: bool,
        kind: BreakKind,
        addr: u64,
    },
    /// `c [ADDR]` and `C SIG[;ADDR]`.
    Continue(Option<u64>),
    /// `s [ADDR]` and `S SIG[;ADDR]`.
    Step(Option<u64>),
    /// `vCont?`.
    VContQuery,
    /// `vCont;ACTION[:THREAD]...`.
    VCont(heapless::Vec<Action, 8>),
    /// `Hg` / `Hc`.
    SetThread { general: bool, thread: ThreadSel },
    /// `T ID`.
    ThreadAlive(usize),
    /// `D`.
    Detach,
    /// `k`.
    Kill,
    /// Anything else: answered with the empty reply.
    Unknown,
}

/// A body that is not a valid instance of the command it names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Malformed;

fn split2(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

fn hex(s: &[u8]) -> Result<u64, Malformed> {
    parse_hex(s).ok_or(Malformed)
}

fn usize_hex(s: &[u8]) -> Result<usize, Malformed> {
    usize::try_from(hex(s)?).map_err(|_| Malformed)
}

fn thread_sel(s: &[u8]) -> Result<ThreadSel, Malformed> {
    match s {
        b"-1" => Ok(ThreadSel::All),
        b"0" => Ok(ThreadSel::Any),
        _ => Ok(ThreadSel::Id(usize_hex(s)?)),
    }
}

fn addr_len(s: &[u8]) -> Result<(u64, usize), Malformed> {
    let (a, l) = split2(s, b',').ok_or(Malformed)?;
    Ok((hex(a)?, usize_hex(l)?))
}

/// `c`/`s` take `[ADDR]`, `C`/`S` take `SIG[;ADDR]` (the signal is not passed to
/// a guest: there is no such thing as a signal for a whole machine).
fn resume_addr(rest: &[u8], with_signal: bool) -> Result<Option<u64>, Malformed> {
    let addr = if with_signal {
        match split2(rest, b';') {
            Some((sig, a)) => {
                hex(sig)?;
                a
            }
            None => {
                hex(rest)?;
                b""
            }
        }
    } else {
        rest
    };
    if addr.is_empty() {
        Ok(None)
    } else {
        Ok(Some(hex(addr)?))
    }
}

fn vcont(rest: &[u8]) -> Result<Command<'_>, Malformed> {
    if rest == b"?" {
        return Ok(Command::VContQuery);
    }
    let rest = rest.strip_prefix(b";").ok_or(Malformed)?;
    let mut actions = heapless::Vec::new();
    for part in rest.split(|&b| b == b';') {
        let (act, thread) = match split2(part, b':') {
            Some((a, t)) => (a, thread_sel(t)?),
            None => (part, ThreadSel::All),
        };
        let step = match act.first() {
            Some(b'c') if act.len() == 1 => false,
            Some(b's') if act.len() == 1 => true,
            Some(b'C') => {
                hex(&act[1..])?;
                false
            }
            Some(b'S') => {
                hex(&act[1..])?;
                true
            }
            // `t` (stop) and `r` (range step) are not offered by `vCont?`.
            _ => return Err(Malformed),
        };
        actions
            .push(Action { step, thread })
            .map_err(|_| Malformed)?;
    }
    Ok(Command::VCont(actions))
}

/// Parses a packet body.
pub fn parse(body: &[u8]) -> Result<Command<'_>, Malformed> {
    let Some((&first, rest)) = body.split_first() else {
        return Ok(Command::Unknown);
    };
    Ok(match first {
        b'?' => Command::HaltReason,
        b'g' if rest.is_empty() => Command::ReadRegisters,
        b'G' => {
            if rest.is_empty() || !rest.len().is_multiple_of(2) {
                return Err(Malformed);
            }
            Command::WriteRegisters(rest)
        }
        b'p' => Command::ReadRegister(usize_hex(rest)?),
        b'P' => {
            let (n, v) = split2(rest, b'=').ok_or(Malformed)?;
            if v.is_empty() || !v.len().is_multiple_of(2) {
                return Err(Malformed);
            }
            Command::WriteRegister(usize_hex(n)?, v)
        }
        b'm' => {
            let (a, l) = addr_len(rest)?;
            Command::ReadMemory(a, l)
        }
        b'M' => {
            let (al, data) = split2(rest, b':').ok_or(Malformed)?;
            let (a, l) = addr_len(al)?;
            let data = decode_hex(data).ok_or(Malformed)?;
            if data.len() != l {
                return Err(Malformed);
            }
            Command::WriteMemory(a, data)
        }
        b'X' => {
            let (al, data) = split2(rest, b':').ok_or(Malformed)?;
            let (a, l) = addr_len(al)?;
            if data.len() != l {
                return Err(Malformed);
            }
            Command::WriteMemoryBinary(a, data)
        }
        b'Z' | b'z' => {
            let mut f = rest.split(|&b| b == b',');
            let (Some(t), Some(a), Some(k)) = (f.next(), f.next(), f.next()) else {
                return Err(Malformed);
            };
            // The kind is the breakpoint's length: 4 for A64 (`;cond` lists are
            // not offered, so none may follow).
            let kind_ok = hex(k)? == 4;
            let kind = match t {
                b"0" => BreakKind::Software,
                b"1" => BreakKind::Hardware,
                // Watchpoints (2, 3, 4) are not offered: the empty reply.
                b"2" | b"3" | b"4" => return Ok(Command::Unknown),
                _ => return Err(Malformed),
            };
            if f.next().is_some() || !kind_ok {
                return Err(Malformed);
            }
            Command::Breakpoint {
                insert: first == b'Z',
                kind,
                addr: hex(a)?,
            }
        }
        b'c' => Command::Continue(resume_addr(rest, false)?),
        b'C' => Command::Continue(resume_addr(rest, true)?),
        b's' => Command::Step(resume_addr(rest, false)?),
        b'S' => Command::Step(resume_addr(rest, true)?),
        b'H' => {
            let (&op, t) = rest.split_first().ok_or(Malformed)?;
            let general = match op {
                b'g' => true,
                b'c' => false,
                _ => return Err(Malformed),
            };
            Command::SetThread {
                general,
                thread: thread_sel(t)?,
            }
        }
        b'T' => Command::ThreadAlive(usize_hex(rest)?),
        b'D' => Command::Detach,
        b'k' => Command::Kill,
        b'v' => match rest.strip_prefix(b"Cont") {
            Some(r) => vcont(r)?,
            None => Command::Unknown,
        },
        b'q' => query(rest)?,
        b'Q' if rest == b"StartNoAckMode" => Command::NoAckMode,
        _ => Command::Unknown,
    })
}

fn query(rest: &[u8]) -> Result<Command<'_>, Malformed> {
    Ok(if rest == b"Supported" || rest.starts_with(b"Supported:") {
        Command::Supported
    } else if rest == b"Attached" || rest.starts_with(b"Attached:") {
        Command::Attached
    } else if rest == b"C" {
        Command::CurrentThread
    } else if rest == b"fThreadInfo" {
        Command::ThreadInfo { first: true }
    } else if rest == b"sThreadInfo" {
        Command::ThreadInfo { first: false }
    } else if let Some(id) = rest.strip_prefix(b"ThreadExtraInfo,") {
        Command::ThreadExtraInfo(usize_hex(id)?)
    } else if let Some(x) = rest.strip_prefix(b"Xfer:features:read:") {
        let (annex, range) = split2(x, b':').ok_or(Malformed)?;
        let (offset, length) = addr_len(range)?;
        Command::Features {
            annex,
            offset: usize::try_from(offset).map_err(|_| Malformed)?,
            length,
        }
    } else if let Some(h) = rest.strip_prefix(b"Rcmd,") {
        let bytes = decode_hex(h).ok_or(Malformed)?;
        Command::Monitor(String::from_utf8(bytes).map_err(|_| Malformed)?)
    } else {
        Command::Unknown
    })
}
