//! ISO 7816-4 command and response APDUs, and the two chaining mechanisms
//! the yubikey crate relies on: command chaining (CLA bit `0x10`, 255-byte
//! pieces) and response chaining (`61xx` + GET RESPONSE, because the crate
//! reads at most 261 bytes per exchange).

use std::fmt;

/// Status words the card answers with (ISO 7816-4, NIST SP 800-73-4 part 2,
/// Yubico's PIV extensions).
pub(crate) mod sw {
    pub(crate) const OK: u16 = 0x9000;
    /// `61xx`: more response data; `xx` bytes (0 = 256 or more) via GET RESPONSE.
    pub(crate) const BYTES_REMAINING: u16 = 0x6100;
    /// `63Cx`: verification failed, `x` retries left.
    pub(crate) const VERIFY_FAILED: u16 = 0x63C0;
    pub(crate) const WRONG_LENGTH: u16 = 0x6700;
    pub(crate) const LAST_COMMAND_OF_CHAIN_EXPECTED: u16 = 0x6883;
    pub(crate) const SECURITY_STATUS_NOT_SATISFIED: u16 = 0x6982;
    pub(crate) const AUTH_METHOD_BLOCKED: u16 = 0x6983;
    pub(crate) const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    pub(crate) const INCORRECT_DATA: u16 = 0x6A80;
    pub(crate) const NOT_FOUND: u16 = 0x6A82;
    pub(crate) const NO_SPACE: u16 = 0x6A84;
    pub(crate) const INCORRECT_P1P2: u16 = 0x6A86;
    pub(crate) const REFERENCE_NOT_FOUND: u16 = 0x6A88;
    pub(crate) const WRONG_P1P2: u16 = 0x6B00;
    pub(crate) const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub(crate) const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    pub(crate) const UNKNOWN_ERROR: u16 = 0x6F00;
}

/// The most response data one exchange carries (the rest waits for GET
/// RESPONSE): 256 bytes plus the status word fit the crate's 261-byte buffer.
const MAX_RESPONSE_CHUNK: usize = 256;

/// The longest command data accepted across a chain: far above anything PIV
/// sends (a 3 KB certificate object), low enough to bound memory.
const MAX_CHAINED_DATA: usize = 16 * 1024;

/// CLA bit that marks "more command data follows" (ISO 7816-4 5.4.1).
const CLA_CHAINING: u8 = 0x10;

/// GET RESPONSE.
const INS_GET_RESPONSE: u8 = 0xC0;

/// A parsed command APDU (short or extended length).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) cla: u8,
    pub(crate) ins: u8,
    pub(crate) p1: u8,
    pub(crate) p2: u8,
    pub(crate) data: Vec<u8>,
    /// Expected response length, when the command carries Le.
    pub(crate) le: Option<usize>,
}

// The data may hold a PIN or a key: print the header and the length only.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02X} {:02X} {:02X} {:02X} ({} bytes)",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len()
        )
    }
}

/// Why bytes are not a command APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApduError {
    #[error("command APDU shorter than its 4-byte header")]
    TooShort,
    #[error("command APDU length fields do not match its size")]
    LengthMismatch,
}

impl Command {
    /// Parses the four ISO 7816-4 cases, short and extended.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let (&[cla, ins, p1, p2], body) =
            bytes.split_first_chunk::<4>().ok_or(ApduError::TooShort)?;
        let (data, le) = parse_body(body)?;
        Ok(Self {
            cla,
            ins,
            p1,
            p2,
            data: data.to_vec(),
            le,
        })
    }
}

fn parse_body(body: &[u8]) -> Result<(&[u8], Option<usize>), ApduError> {
    match body {
        // Case 1.
        [] => Ok((&[], None)),
        // Case 2 short: Le 0 means 256.
        [le] => Ok((&[], Some(short_le(*le)))),
        // Extended length: a zero byte then two length bytes.
        [0, rest @ ..] => parse_extended(rest),
        [lc, rest @ ..] => {
            let lc = usize::from(*lc);
            let data = rest.get(..lc).ok_or(ApduError::LengthMismatch)?;
            match rest.get(lc..) {
                Some([]) => Ok((data, None)),
                Some([le]) => Ok((data, Some(short_le(*le)))),
                _ => Err(ApduError::LengthMismatch),
            }
        }
    }
}

fn parse_extended(rest: &[u8]) -> Result<(&[u8], Option<usize>), ApduError> {
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return Err(ApduError::LengthMismatch);
    };
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.is_empty() {
        // Case 2 extended: Le 0 means 65536.
        return Ok((&[], Some(if len == 0 { 65536 } else { len })));
    }
    if len == 0 {
        return Err(ApduError::LengthMismatch);
    }
    let data = rest.get(..len).ok_or(ApduError::LengthMismatch)?;
    match rest.get(len..) {
        Some([]) => Ok((data, None)),
        Some([hi, lo]) => {
            let le = usize::from(u16::from_be_bytes([*hi, *lo]));
            Ok((data, Some(if le == 0 { 65536 } else { le })))
        }
        _ => Err(ApduError::LengthMismatch),
    }
}

fn short_le(le: u8) -> usize {
    if le == 0 { 256 } else { usize::from(le) }
}

/// A response APDU before chaining: all of its data and the status word.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) data: Vec<u8>,
    pub(crate) sw: u16,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({} bytes)", self.sw, self.data.len())
    }
}

impl Response {
    /// `9000` with data.
    pub(crate) fn ok(data: Vec<u8>) -> Self {
        Self { data, sw: sw::OK }
    }

    /// A status word without data.
    pub(crate) fn status(sw: u16) -> Self {
        Self {
            data: Vec::new(),
            sw,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_be_bytes());
        out
    }
}

/// Something that answers whole (unchained) commands: the card.
pub(crate) trait Applet {
    fn process(&mut self, command: &Command) -> Response;
}

/// The transport layer between vpcd and the card: reassembles chained
/// commands and hands out long responses in pieces.
#[derive(Default)]
pub(crate) struct Link {
    /// Response data not yet fetched with GET RESPONSE.
    pending: Vec<u8>,
    /// Header and data of a command chain in progress.
    chain: Option<(u8, u8, u8, Vec<u8>)>,
}

impl Link {
    /// Forgets pending chains (power off, reset).
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.chain = None;
    }

    /// Answers one raw command APDU with one raw response APDU.
    pub(crate) fn exchange(&mut self, raw: &[u8], applet: &mut impl Applet) -> Vec<u8> {
        self.answer(raw, applet).to_bytes()
    }

    fn answer(&mut self, raw: &[u8], applet: &mut impl Applet) -> Response {
        let command = match Command::parse(raw) {
            Ok(command) => command,
            Err(_) => {
                self.clear();
                return Response::status(sw::WRONG_LENGTH);
            }
        };
        if command.ins == INS_GET_RESPONSE && command.cla & CLA_CHAINING == 0 {
            return self.next_chunk();
        }
        // Any other command abandons unread response data (ISO 7816-4 5.3.4).
        self.pending.clear();
        if command.cla & !CLA_CHAINING != 0 {
            self.chain = None;
            return Response::status(sw::CLA_NOT_SUPPORTED);
        }
        let command = match self.reassemble(command) {
            Chained::Incomplete(response) => return response,
            Chained::Complete(command) => command,
        };
        let response = applet.process(&command);
        self.split(response)
    }

    fn reassemble(&mut self, command: Command) -> Chained {
        let more = command.cla & CLA_CHAINING != 0;
        let header = (command.ins, command.p1, command.p2);
        let mut data = match self.chain.take() {
            Some((ins, p1, p2, data)) if (ins, p1, p2) == header => data,
            Some(_) => {
                return Chained::Incomplete(Response::status(sw::LAST_COMMAND_OF_CHAIN_EXPECTED));
            }
            None => Vec::new(),
        };
        if data.len() + command.data.len() > MAX_CHAINED_DATA {
            return Chained::Incomplete(Response::status(sw::WRONG_LENGTH));
        }
        data.extend_from_slice(&command.data);
        if more {
            self.chain = Some((command.ins, command.p1, command.p2, data));
            return Chained::Incomplete(Response::status(sw::OK));
        }
        Chained::Complete(Command {
            cla: 0,
            data,
            ..command
        })
    }

    fn split(&mut self, response: Response) -> Response {
        if response.data.len() <= MAX_RESPONSE_CHUNK {
            return response;
        }
        let mut data = response.data;
        self.pending = data.split_off(MAX_RESPONSE_CHUNK);
        Response {
            data,
            sw: remaining_sw(self.pending.len()),
        }
    }

    fn next_chunk(&mut self) -> Response {
        if self.pending.is_empty() {
            return Response::status(sw::CONDITIONS_NOT_SATISFIED);
        }
        let rest = self
            .pending
            .split_off(self.pending.len().min(MAX_RESPONSE_CHUNK));
        let chunk = std::mem::replace(&mut self.pending, rest);
        let sw = if self.pending.is_empty() {
            sw::OK
        } else {
            remaining_sw(self.pending.len())
        };
        Response { data: chunk, sw }
    }
}

enum Chained {
    Incomplete(Response),
    Complete(Command),
}

/// `61xx` with `xx` the bytes left, `00` for 256 or more.
fn remaining_sw(left: usize) -> u16 {
    let xx = u16::try_from(left).map_or(0, |n| if n >= 256 { 0 } else { n });
    sw::BYTES_REMAINING | xx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_short_cases() {
        let case1 = Command::parse(&[0x00, 0xA4, 0x04, 0x00]).unwrap();
        assert_eq!((case1.ins, case1.data.len(), case1.le), (0xA4, 0, None));

        // The yubikey crate sends GET VERSION as `00 FD 00 00 00`: Le = 256.
        let case2 = Command::parse(&[0x00, 0xFD, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!((case2.data.len(), case2.le), (0, Some(256)));

        let case3 = Command::parse(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0, 0, 3, 8]).unwrap();
        assert_eq!(
            (case3.p1, case3.data.as_slice(), case3.le),
            (4, &[0xA0, 0, 0, 3, 8][..], None)
        );

        // yubico-piv-tool adds Le to SELECT.
        let case4 = Command::parse(&[0x00, 0xA4, 0x04, 0x00, 0x02, 1, 2, 0x10]).unwrap();
        assert_eq!((case4.data.as_slice(), case4.le), (&[1, 2][..], Some(16)));
    }

    #[test]
    fn parses_extended_cases() {
        let case2e = Command::parse(&[0, 0xCB, 0x3F, 0xFF, 0, 0, 0]).unwrap();
        assert_eq!(case2e.le, Some(65536));
        let mut case3e = vec![0, 0xDB, 0x3F, 0xFF, 0, 0x01, 0x2C];
        case3e.extend(std::iter::repeat_n(7, 300));
        let parsed = Command::parse(&case3e).unwrap();
        assert_eq!((parsed.data.len(), parsed.le), (300, None));
        case3e.extend([0x01, 0x00]);
        assert_eq!(Command::parse(&case3e).unwrap().le, Some(256));
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        assert_eq!(Command::parse(&[0, 1, 2]), Err(ApduError::TooShort));
        assert_eq!(
            Command::parse(&[0, 0x20, 0, 0x80, 8, 1, 2]),
            Err(ApduError::LengthMismatch)
        );
        assert_eq!(
            Command::parse(&[0, 0x20, 0, 0x80, 1, 1, 2, 3]),
            Err(ApduError::LengthMismatch)
        );
        assert_eq!(
            Command::parse(&[0, 0x20, 0, 0x80, 0, 0, 0, 1]),
            Err(ApduError::LengthMismatch)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every input up to 3 bytes after a header, plus random longer ones.
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 0x7F, 0x80, 0xFF] {
                for c in [0u8, 1, 0xFF] {
                    let _ = Command::parse(&[0, 0xDB, 0x3F, 0xFF, a, b, c]);
                    let _ = Command::parse(&[0, 0xDB, 0x3F, a, b]);
                }
            }
        }
        let mut buf = [0u8; 64];
        for len in 0..buf.len() {
            getrandom::fill(&mut buf).unwrap();
            let _ = Command::parse(&buf[..len]);
        }
    }

    /// Echoes the command data back, or answers a fixed status word.
    struct Echo(Vec<Command>);

    impl Applet for Echo {
        fn process(&mut self, command: &Command) -> Response {
            self.0.push(command.clone());
            Response::ok(command.data.clone())
        }
    }

    fn apdu(cla: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![cla, 0xDB, 0x3F, 0xFF, u8::try_from(data.len()).unwrap()];
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reassembles_chained_commands() {
        let mut link = Link::default();
        let mut card = Echo(Vec::new());
        let first = vec![1u8; 255];
        let second = vec![2u8; 10];
        assert_eq!(link.exchange(&apdu(0x10, &first), &mut card), [0x90, 0x00]);
        assert!(card.0.is_empty(), "a chain piece is not processed alone");
        let out = link.exchange(&apdu(0x00, &second), &mut card);
        assert_eq!(card.0.len(), 1);
        assert_eq!(card.0[0].cla, 0);
        assert_eq!(card.0[0].data.len(), 265);
        // The echo is longer than one exchange: 256 bytes, then 61 09.
        assert_eq!(out.len(), 258);
        assert_eq!(&out[256..], [0x61, 9]);
        let rest = link.exchange(&[0, 0xC0, 0, 0, 0], &mut card);
        assert_eq!(rest.len(), 11);
        assert_eq!(&rest[..9], &[2u8; 9]);
        assert_eq!(&rest[9..], [0x90, 0x00]);
    }

    #[test]
    fn refuses_a_chain_continued_with_another_instruction() {
        let mut link = Link::default();
        let mut card = Echo(Vec::new());
        link.exchange(&apdu(0x10, &[1; 20]), &mut card);
        let other = [0x00, 0x87, 0x11, 0x9A, 1, 0];
        assert_eq!(link.exchange(&other, &mut card), [0x68, 0x83]);
        assert!(card.0.is_empty());
    }

    #[test]
    fn long_responses_come_in_256_byte_pieces() {
        let mut link = Link::default();
        let mut card = Echo(Vec::new());
        let mut long = vec![0u8; 0];
        for i in 0..600u16 {
            long.push(u8::try_from(i % 251).unwrap());
        }
        // Chain 600 bytes in, read 600 bytes out.
        for piece in long.chunks(255) {
            let cla = if piece.len() == 255 { 0x10 } else { 0x00 };
            let out = link.exchange(&apdu(cla, piece), &mut card);
            if cla == 0x10 {
                assert_eq!(out, [0x90, 0x00]);
            } else {
                assert_eq!(&out[256..], [0x61, 0x00], "344 bytes left: 61 00");
                let mut got = out[..256].to_vec();
                let second = link.exchange(&[0, 0xC0, 0, 0, 0], &mut card);
                assert_eq!(&second[256..], [0x61, 88]);
                got.extend_from_slice(&second[..256]);
                let third = link.exchange(&[0, 0xC0, 0, 0, 0], &mut card);
                assert_eq!(&third[88..], [0x90, 0x00]);
                got.extend_from_slice(&third[..88]);
                assert_eq!(got, long);
            }
        }
        // Nothing left: GET RESPONSE is refused.
        assert_eq!(link.exchange(&[0, 0xC0, 0, 0, 0], &mut card), [0x69, 0x85]);
    }

    #[test]
    fn another_command_drops_unread_response_data() {
        let mut link = Link::default();
        let mut card = Echo(Vec::new());
        for piece in [vec![5u8; 255], vec![6u8; 100]] {
            let cla = if piece.len() == 255 { 0x10 } else { 0 };
            link.exchange(&apdu(cla, &piece), &mut card);
        }
        assert_eq!(link.exchange(&apdu(0, &[9]), &mut card), [9, 0x90, 0x00]);
        assert_eq!(link.exchange(&[0, 0xC0, 0, 0, 0], &mut card), [0x69, 0x85]);
    }

    #[test]
    fn refuses_unknown_classes_and_garbage() {
        let mut link = Link::default();
        let mut card = Echo(Vec::new());
        assert_eq!(link.exchange(&[0x80, 0xCA, 0, 0], &mut card), [0x6E, 0x00]);
        assert_eq!(link.exchange(&[0x00, 0xCA], &mut card), [0x67, 0x00]);
        assert!(card.0.is_empty());
    }
}
