//! The vsmartcard `vpcd` protocol: the card is a TCP client of the reader
//! driver inside pcscd. Each frame is a 2-byte big-endian length and a
//! payload; a 1-byte payload is a control code (0 power off, 1 power on,
//! 2 reset, 4 ATR request; only the ATR request is answered), anything
//! longer is a command APDU, answered with one response APDU.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::apdu::Link;
use crate::card::Card;

/// A YubiKey 5 NFC's ATR: it offers T=1, the only protocol the yubikey
/// crate connects with.
pub(crate) const ATR: &[u8] = &[
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

const CTRL_POWER_OFF: u8 = 0;
const CTRL_POWER_ON: u8 = 1;
const CTRL_RESET: u8 = 2;
const CTRL_ATR: u8 = 4;

/// Options of the connection.
pub(crate) struct LinkOptions {
    /// Set TCP_QUICKACK before each read. Without it each APDU waits ~40 ms
    /// for a delayed ACK (Nagle on pcscd's side meets delayed ACK on ours);
    /// TCP_NODELAY alone does not help. Off only to measure that.
    pub(crate) quickack: bool,
}

/// Connects to vpcd, retrying until `timeout` (pcscd may still be loading
/// the driver).
pub(crate) fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Serves frames until vpcd closes the connection.
pub(crate) fn serve(
    mut stream: TcpStream,
    card: &mut Card,
    options: &LinkOptions,
) -> io::Result<()> {
    let mut link = Link::default();
    loop {
        if options.quickack {
            // Not sticky: the kernel may leave quick-ACK mode after any
            // segment, so it is set again before each read.
            SockRef::from(&stream).set_tcp_quickack(true)?;
        }
        let mut header = [0u8; 2];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(header))];
        stream.read_exact(&mut payload)?;
        match payload.as_slice() {
            [] => {}
            [CTRL_ATR] => send(&mut stream, ATR)?,
            [CTRL_POWER_OFF | CTRL_POWER_ON | CTRL_RESET] => {
                link.clear();
                card.power_event();
            }
            [other] => eprintln!("holdfast-vpiv: unknown vpcd control code {other}, ignored"),
            apdu => {
                let response = link.exchange(apdu, card);
                send(&mut stream, &response)?;
            }
        }
    }
}

fn send(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "response longer than 65535 bytes",
        )
    })?;
    // One write for header and payload: two small writes would meet Nagle.
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_atr_offers_t1_and_has_a_valid_checksum() {
        // TD1 = 0x81: T=1 follows; TCK makes the XOR of T0..TCK zero.
        assert_eq!(ATR[5], 0x81);
        assert_eq!(ATR[1..].iter().fold(0u8, |acc, b| acc ^ b), 0);
    }
}
