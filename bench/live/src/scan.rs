//! Finds `"total_votes":N` in an HTTP/1.1 body as it arrives, chunked or not.
//!
//! The tool shares the machine's two cores with the server, so it does not
//! parse events: it decodes the chunk framing and looks for one fixed key
//! with a substring search, keeping its place across reads (a key or a
//! number may be split between two reads or two chunks; those few bytes go
//! one at a time). Every poll event and every poll JSON document holds
//! `total_votes` exactly once, so each number found is one event.

use std::sync::LazyLock;

use memchr::memmem;

const KEY: &[u8] = b"\"total_votes\":";

static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(KEY));

/// KMP fall-back table for `KEY`: after `m` matched bytes and a mismatch,
/// how many bytes still match. Only a `"` repeats in the key, but the table
/// keeps the scan right whatever the key.
const FALLBACK: [u8; KEY.len() + 1] = fallback_table();

const fn fallback_table() -> [u8; KEY.len() + 1] {
    let mut table = [0u8; KEY.len() + 1];
    let mut m = 2;
    while m <= KEY.len() {
        let mut k = table[m - 1] as usize;
        while k > 0 && KEY[k] != KEY[m - 1] {
            k = table[k] as usize;
        }
        if KEY[k] == KEY[m - 1] {
            k += 1;
        }
        table[m] = k as u8;
        m += 1;
    }
    table
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// Not chunked: every byte is body.
    Raw,
    /// Reading a chunk-size line's hex digits.
    Size(u64),
    /// Skipping a chunk extension up to the line's end.
    SizeLine(u64),
    /// Inside chunk data, with this many bytes left.
    Data(u64),
    /// Expecting the CR LF that ends a chunk's data.
    DataEnd,
    /// The zero-size chunk came: the body is over.
    Done,
}

/// The body did not follow the chunked framing.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFraming;

impl std::fmt::Display for BadFraming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed chunked body")
    }
}

impl std::error::Error for BadFraming {}

#[derive(Debug)]
pub struct Scanner {
    framing: Framing,
    /// Bytes of `KEY` matched so far.
    matched: u8,
    /// The number after the key, while it is being read.
    number: Option<u64>,
}

impl Scanner {
    pub fn new(chunked: bool) -> Self {
        Self {
            framing: if chunked {
                Framing::Size(0)
            } else {
                Framing::Raw
            },
            matched: 0,
            number: None,
        }
    }

    /// True once the last (zero-size) chunk has been read.
    pub fn done(&self) -> bool {
        self.framing == Framing::Done
    }

    /// Feeds the next bytes off the wire; calls `found` with every total read.
    pub fn feed(&mut self, bytes: &[u8], mut found: impl FnMut(u64)) -> Result<(), BadFraming> {
        let mut rest = bytes;
        while let Some((&first, tail)) = rest.split_first() {
            match self.framing {
                Framing::Raw => {
                    self.scan(rest, &mut found);
                    return Ok(());
                }
                Framing::Data(left) => {
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let (data, after) = rest.split_at(n);
                    self.scan(data, &mut found);
                    let left = left - n as u64;
                    self.framing = if left == 0 {
                        Framing::DataEnd
                    } else {
                        Framing::Data(left)
                    };
                    rest = after;
                    continue;
                }
                Framing::Size(size) => {
                    self.framing = match first {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let digit = u64::from((first as char).to_digit(16).unwrap_or(0));
                            Framing::Size(
                                size.checked_mul(16)
                                    .and_then(|s| s.checked_add(digit))
                                    .ok_or(BadFraming)?,
                            )
                        }
                        b'\n' => end_of_size(size),
                        b';' | b'\r' | b' ' | b'\t' => Framing::SizeLine(size),
                        _ => return Err(BadFraming),
                    };
                }
                Framing::SizeLine(size) => {
                    if first == b'\n' {
                        self.framing = end_of_size(size);
                    }
                }
                Framing::DataEnd => match first {
                    b'\r' => {}
                    b'\n' => self.framing = Framing::Size(0),
                    _ => return Err(BadFraming),
                },
                Framing::Done => return Ok(()),
            }
            rest = tail;
        }
        Ok(())
    }

    /// Looks for `KEY` and the digits after it in body bytes.
    fn scan(&mut self, mut data: &[u8], found: &mut impl FnMut(u64)) {
        loop {
            if self.matched == 0 && self.number.is_none() {
                // Nothing under way: jump past the next whole key. With none
                // left, only the last bytes can begin a key the next read ends.
                match FINDER.find(data) {
                    Some(i) => {
                        data = &data[i + KEY.len()..];
                        self.number = Some(0);
                    }
                    None => {
                        for &byte in &data[data.len().saturating_sub(KEY.len() - 1)..] {
                            self.step(byte, found);
                        }
                        return;
                    }
                }
            }
            // A number or a key split by a read is under way: byte by byte.
            let Some((&byte, rest)) = data.split_first() else {
                return;
            };
            data = rest;
            self.step(byte, found);
        }
    }

    fn step(&mut self, byte: u8, found: &mut impl FnMut(u64)) {
        if let Some(number) = self.number {
            if byte.is_ascii_digit() {
                self.number = Some(
                    number
                        .saturating_mul(10)
                        .saturating_add(u64::from(byte - b'0')),
                );
                return;
            }
            found(number);
            self.number = None;
        }
        let mut m = self.matched as usize;
        loop {
            if byte == KEY[m] {
                m += 1;
                break;
            }
            if m == 0 {
                break;
            }
            m = FALLBACK[m] as usize;
        }
        if m == KEY.len() {
            // serde_json writes compact JSON: the digits follow at once.
            self.number = Some(0);
            m = 0;
        }
        self.matched = m as u8;
    }
}

fn end_of_size(size: u64) -> Framing {
    if size == 0 {
        Framing::Done
    } else {
        Framing::Data(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(scanner: &mut Scanner, pieces: &[&[u8]]) -> Vec<u64> {
        let mut out = Vec::new();
        for piece in pieces {
            scanner
                .feed(piece, |t| out.push(t))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        out
    }

    fn chunk(data: &str) -> String {
        format!("{:X}\r\n{data}\r\n", data.len())
    }

    const EVENT_A: &str = "id: 1\nevent: poll\ndata: {\"id\":\"p\",\"options\":[{\"id\":1,\"votes\":33}],\"total_votes\":108,\"status\":\"open\"}\n\n";
    const EVENT_B: &str = "event: poll\ndata: {\"total_votes\":1234567}\n\n";

    #[test]
    fn fallback_table_knows_the_repeated_quote() {
        assert_eq!(FALLBACK[KEY.len() - 1], 1);
        assert_eq!(FALLBACK[5], 0);
    }

    #[test]
    fn finds_every_total_in_chunked_events() {
        let body = format!(
            "{}{}{}{}",
            chunk("retry: 2000\n\n"),
            chunk(EVENT_A),
            chunk(":\n\n"),
            chunk(EVENT_B)
        );
        let mut scanner = Scanner::new(true);
        assert_eq!(
            totals(&mut scanner, &[body.as_bytes()]),
            vec![108, 1_234_567]
        );
        assert!(!scanner.done());
        assert_eq!(totals(&mut scanner, &[b"0\r\n\r\n"]), Vec::<u64>::new());
        assert!(scanner.done());
    }

    #[test]
    fn keeps_its_place_across_every_split() {
        let body = format!("{}{}", chunk(EVENT_A), chunk(EVENT_B));
        let bytes = body.as_bytes();
        for cut in 0..bytes.len() {
            let mut scanner = Scanner::new(true);
            let (a, b) = bytes.split_at(cut);
            assert_eq!(
                totals(&mut scanner, &[a, b]),
                vec![108, 1_234_567],
                "cut at {cut}"
            );
        }
        let mut scanner = Scanner::new(true);
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(totals(&mut scanner, &single), vec![108, 1_234_567]);
    }

    #[test]
    fn a_number_split_by_chunk_framing_is_read_whole() {
        let body = "5\r\n\"tota\r\n9\r\nl_votes\":\r\n2\r\n12\r\n1\r\n3\r\n1\r\n}\r\n";
        assert_eq!(
            totals(&mut Scanner::new(true), &[body.as_bytes()]),
            vec![123]
        );
    }

    #[test]
    fn chunk_extensions_and_uppercase_sizes() {
        let body = "1A;name=value\r\n{\"total_votes\":42,\"xyz\":1}\r\n0\r\n\r\n";
        let mut scanner = Scanner::new(true);
        assert_eq!(totals(&mut scanner, &[body.as_bytes()]), vec![42]);
        assert!(scanner.done());
    }

    #[test]
    fn raw_bodies_and_near_misses() {
        let body = br#"{"votes":5,"total_votes"x,"total_votes""total_votes":7,"total_votes":8}"#;
        assert_eq!(totals(&mut Scanner::new(false), &[body]), vec![7, 8]);
    }

    #[test]
    fn bad_framing_is_an_error() {
        assert_eq!(Scanner::new(true).feed(b"zz\r\n", |_| {}), Err(BadFraming));
        assert_eq!(Scanner::new(true).feed(b"1\r\nab", |_| {}), Err(BadFraming));
    }
}
