//! The card driven in process, APDU by APDU, the way the yubikey crate
//! drives it (short APDUs with a zero Lc byte, 255-byte command chaining,
//! 61xx + GET RESPONSE).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

use super::*;
use crate::apdu::Link;
use crate::mgm::{DEFAULT_KEY, MgmAlg};
use crate::tlv::Tlv;

const SELECT_PIV: &[u8] = &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];

struct Harness {
    card: Card,
    link: Link,
    control: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.control);
    }
}

fn harness(firmware: Firmware) -> Harness {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let control = std::env::temp_dir().join(format!(
        "holdfast-vpiv-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&control);
    let card = Card::new(
        CardConfig {
            serial: 15_732_500,
            firmware,
            form_factor: 0x01,
            control: Some(control.clone()),
            trace: false,
        },
        Attestation::generate().unwrap(),
    );
    let mut h = Harness {
        card,
        link: Link::default(),
        control,
    };
    assert_eq!(h.send(SELECT_PIV).1, 0x9000);
    h
}

impl Harness {
    /// One raw exchange.
    fn raw(&mut self, apdu: &[u8]) -> (Vec<u8>, u16) {
        let mut out = self.link.exchange(apdu, &mut self.card);
        let sw = u16::from_be_bytes([out[out.len() - 2], out[out.len() - 1]]);
        out.truncate(out.len() - 2);
        (out, sw)
    }

    /// A whole command as the crate sends it: chained in 255-byte pieces,
    /// the response collected through GET RESPONSE.
    fn send(&mut self, apdu: &[u8]) -> (Vec<u8>, u16) {
        let (header, data) = (&apdu[..4], apdu.get(5..).unwrap_or_default());
        let mut pieces: Vec<&[u8]> = data.chunks(255).collect();
        if pieces.is_empty() {
            pieces.push(&[]);
        }
        let last = pieces.len() - 1;
        let (mut out, mut sw) = (Vec::new(), 0);
        for (i, piece) in pieces.iter().enumerate() {
            let cla = if i < last { 0x10 } else { header[0] };
            let mut command = vec![cla, header[1], header[2], header[3], piece.len() as u8];
            command.extend_from_slice(piece);
            (out, sw) = self.raw(&command);
            if i < last {
                assert_eq!(sw, 0x9000, "chain piece {i}");
            }
        }
        while sw & 0xFF00 == 0x6100 {
            let (more, next) = self.raw(&[0x00, 0xC0, 0x00, 0x00, 0x00]);
            out.extend(more);
            sw = next;
        }
        (out, sw)
    }

    fn cmd(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, u16) {
        let mut apdu = vec![0x00, ins, p1, p2, 0];
        apdu.extend_from_slice(data);
        self.send(&apdu)
    }

    fn control(&self, text: &str) {
        std::fs::write(&self.control, text).unwrap();
    }

    fn verify_pin(&mut self, pin: &[u8]) -> u16 {
        let mut padded = [0xFF; 8];
        padded[..pin.len()].copy_from_slice(pin);
        self.cmd(0x20, 0x00, 0x80, &padded).1
    }

    /// Mutual authentication as the yubikey crate does it.
    fn authenticate(&mut self, alg: MgmAlg, key: &[u8]) -> u16 {
        let key = MgmKey::new(alg, key).unwrap();
        let (witness, sw) = self.cmd(0x87, alg.id(), 0x9B, &[0x7C, 0x02, 0x80, 0x00]);
        if sw != 0x9000 {
            return sw;
        }
        let block = alg.block_len();
        let mut decrypted = witness[4..].to_vec();
        assert_eq!(decrypted.len(), block);
        key.decrypt(&mut decrypted).unwrap();
        let challenge = vec![0x33u8; block];
        let mut data = vec![0x7C, (4 + 2 * block) as u8, 0x80, block as u8];
        data.extend(&decrypted);
        data.extend([0x81, block as u8]);
        data.extend(&challenge);
        let (answer, sw) = self.cmd(0x87, alg.id(), 0x9B, &data);
        if sw == 0x9000 {
            let mut expected = challenge;
            key.encrypt(&mut expected).unwrap();
            assert_eq!(
                &answer[4..],
                expected.as_slice(),
                "the card proves the key too"
            );
        }
        sw
    }

    /// GENERATE in `slot`, returning the public point.
    fn generate(&mut self, slot: u8, alg: u8, pin: u8, touch: u8) -> Vec<u8> {
        let data = [
            0xAC, 0x09, 0x80, 0x01, alg, 0xAA, 0x01, pin, 0xAB, 0x01, touch,
        ];
        let (out, sw) = self.cmd(0x47, 0x00, slot, &data);
        assert_eq!(sw, 0x9000);
        let outer = Tlv::parse_single(&out, 0x7F49).unwrap();
        Tlv::parse_single(outer, 0x86).unwrap().to_vec()
    }

    fn sign(&mut self, slot: u8, digest: &[u8]) -> (Vec<u8>, u16) {
        let mut data = vec![
            0x7C,
            (digest.len() + 4) as u8,
            0x82,
            0x00,
            0x81,
            digest.len() as u8,
        ];
        data.extend_from_slice(digest);
        let (out, sw) = self.cmd(0x87, 0x11, slot, &data);
        if sw != 0x9000 {
            return (out, sw);
        }
        let inner = Tlv::parse_single(&out, 0x7C).unwrap();
        (Tlv::parse_single(inner, 0x82).unwrap().to_vec(), sw)
    }

    fn get_data(&mut self, object: u32) -> (Vec<u8>, u16) {
        let id = object.to_be_bytes();
        let (out, sw) = self.cmd(0xCB, 0x3F, 0xFF, &[0x5C, 0x03, id[1], id[2], id[3]]);
        if sw != 0x9000 {
            return (out, sw);
        }
        (Tlv::parse_single(&out, 0x53).unwrap().to_vec(), sw)
    }

    fn metadata(&mut self, slot: u8) -> (Vec<(u32, Vec<u8>)>, u16) {
        let (out, sw) = self.cmd(0xF7, 0x00, slot, &[]);
        let tags = Tlv::parse_all(&out)
            .unwrap()
            .into_iter()
            .map(|t| (t.tag, t.value.to_vec()))
            .collect();
        (tags, sw)
    }
}

fn verify_p256(point: &[u8], digest: &[u8], der: &[u8]) {
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
    let signature = p256::ecdsa::Signature::from_der(der).unwrap();
    key.verify_prehash(digest, &signature).unwrap();
}

fn cert_signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let spki = issuer.tbs_certificate().subject_public_key_info();
    let key =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
    let signature = p256::ecdsa::Signature::from_der(cert.signature().raw_bytes()).unwrap();
    key.verify(&cert.tbs_certificate().to_der().unwrap(), &signature)
        .is_ok()
}

const V574: Firmware = Firmware::new(5, 7, 4);
const V543: Firmware = Firmware::new(5, 4, 3);

#[test]
fn answers_select_version_and_serial() {
    let mut h = harness(V574);
    let (out, sw) = h.send(SELECT_PIV);
    assert_eq!((out.as_slice(), sw), (PIV_SELECT_RESPONSE, 0x9000));
    assert_eq!(h.cmd(0xFD, 0, 0, &[]), (vec![5, 7, 4], 0x9000));
    assert_eq!(
        h.cmd(0xF8, 0, 0, &[]),
        (15_732_500u32.to_be_bytes().to_vec(), 0x9000)
    );
    assert_eq!(h.cmd(0xA4, 0x04, 0x00, &[0xA0, 0, 0, 9, 9]).1, 0x6A82);
    assert_eq!(h.cmd(0xFD, 0, 0, &[]).1, 0x6D00, "nothing selected");
}

#[test]
fn yubikey_4_reports_its_serial_through_the_otp_applet() {
    let mut h = harness(Firmware::new(4, 3, 7));
    assert_eq!(h.cmd(0xF8, 0, 0, &[]).1, 0x6D00);
    assert_eq!(
        h.cmd(0xF7, 0, 0x9B, &[]).1,
        0x6D00,
        "no GET METADATA before 5.3"
    );
    // The yubikey crate's full 8-byte AID and ykman's 7-byte prefix both
    // select it; a shorter prefix does not.
    for aid in [OTP_AID, &OTP_AID[..OTP_AID_MIN]] {
        assert_eq!(h.cmd(0xA4, 0x04, 0x00, aid).1, 0x9000, "{aid:02X?}");
        assert_eq!(
            h.cmd(0x01, 0x10, 0x00, &[]),
            (15_732_500u32.to_be_bytes().to_vec(), 0x9000)
        );
    }
    assert_eq!(h.cmd(0xA4, 0x04, 0x00, &OTP_AID[..6]).1, 0x6A82);
    assert_eq!(
        h.cmd(0xA4, 0x04, 0x00, &[0xA0, 0, 0, 5, 0x27, 0x20, 0x01, 0x02])
            .1,
        0x6A82
    );
}

#[test]
fn verify_counts_pin_tries_and_select_ends_the_session() {
    let mut h = harness(V574);
    assert_eq!(h.cmd(0x20, 0x00, 0x80, &[]).1, 0x63C3);
    assert_eq!(h.verify_pin(b"000000"), 0x63C2);
    assert_eq!(h.verify_pin(b"123456"), 0x9000);
    assert_eq!(h.cmd(0x20, 0x00, 0x80, &[]).1, 0x9000, "verified");
    assert_eq!(h.send(SELECT_PIV).1, 0x9000);
    assert_eq!(h.cmd(0x20, 0x00, 0x80, &[]).1, 0x63C3, "a new session");
    assert_eq!(h.cmd(0x20, 0x00, 0x80, &[1, 2, 3]).1, 0x6A80);
    assert_eq!(h.cmd(0x20, 0x00, 0x81, &[0xFF; 8]).1, 0x6A88);
}

#[test]
fn a_blocked_pin_is_unblocked_with_the_puk() {
    let mut h = harness(V574);
    assert_eq!(h.verify_pin(b"000000"), 0x63C2);
    assert_eq!(h.verify_pin(b"000000"), 0x63C1);
    assert_eq!(h.verify_pin(b"000000"), 0x63C0);
    assert_eq!(h.verify_pin(b"123456"), 0x6983);
    assert_eq!(h.cmd(0x20, 0x00, 0x80, &[]).1, 0x6983);
    assert_eq!(h.metadata(0x80).0[2], (0x06, vec![3, 0]));
    let mut data = *b"87654321654321\xFF\xFF";
    assert_eq!(h.cmd(0x2C, 0x00, 0x80, &data).1, 0x63C2, "wrong PUK");
    data[..8].copy_from_slice(b"12345678");
    assert_eq!(h.cmd(0x2C, 0x00, 0x80, &data).1, 0x9000);
    assert_eq!(h.verify_pin(b"654321"), 0x9000);
    let change = *b"654321\xFF\xFF13572468";
    assert_eq!(h.cmd(0x24, 0x00, 0x80, &change).1, 0x9000);
    assert_eq!(h.verify_pin(b"13572468"), 0x9000);
    assert_eq!(
        h.cmd(0x24, 0x00, 0x80, b"13572468123\xFF\xFF\xFF\xFF\xFF")
            .1,
        0x6A80,
        "too short"
    );
    let (tags, _) = h.metadata(0x80);
    assert_eq!(tags[1], (0x05, vec![0]), "no longer the default PIN");
}

#[test]
fn the_control_file_blocks_the_pin_while_it_says_so() {
    let mut h = harness(V574);
    h.control("pin-blocked\n");
    assert_eq!(h.verify_pin(b"123456"), 0x6983);
    assert_eq!(h.cmd(0x20, 0x00, 0x80, &[]).1, 0x6983);
    h.control("");
    assert_eq!(h.verify_pin(b"123456"), 0x9000, "no try was spent");
}

#[test]
fn mutual_authentication_with_aes_192_from_5_7() {
    let mut h = harness(V574);
    assert_eq!(
        h.cmd(0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x80, 0x00]).1,
        0x6A80,
        "3DES refused"
    );
    assert_eq!(
        h.authenticate(MgmAlg::Aes192, &[0x55; 24]),
        0x6982,
        "wrong key"
    );
    assert_eq!(h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY), 0x9000);
    let (tags, sw) = h.metadata(0x9B);
    assert_eq!(sw, 0x9000);
    assert_eq!(
        tags,
        [
            (0x01, vec![0x0A]),
            (0x02, vec![0x00, 0x01]),
            (0x05, vec![0x01])
        ]
    );
}

#[test]
fn mutual_authentication_with_3des_before_5_7_and_after_a_firmware_change() {
    let mut h = harness(V543);
    assert_eq!(h.authenticate(MgmAlg::TripleDes, &DEFAULT_KEY), 0x9000);
    assert_eq!(h.metadata(0x9B).0[0], (0x01, vec![0x03]));
    // The factory key follows the firmware the control file reports.
    h.control("firmware 5.7.4\n");
    assert_eq!(h.cmd(0xFD, 0, 0, &[]).0, [5, 7, 4]);
    assert_eq!(h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY), 0x9000);
}

#[test]
fn external_authentication_step_by_step() {
    let mut h = harness(V543);
    let (out, sw) = h.cmd(0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x81, 0x00]);
    assert_eq!(sw, 0x9000);
    let mut challenge = out[4..].to_vec();
    MgmKey::new(MgmAlg::TripleDes, &DEFAULT_KEY)
        .unwrap()
        .encrypt(&mut challenge)
        .unwrap();
    let mut data = vec![0x7C, 0x0A, 0x82, 0x08];
    data.extend(&challenge);
    assert_eq!(h.cmd(0x87, 0x03, 0x9B, &data).1, 0x9000);
    assert!(h.card.session.mgm_authenticated);
    assert_eq!(
        h.cmd(0x87, 0x03, 0x9B, &data).1,
        0x6985,
        "a challenge answers once"
    );
}

#[test]
fn a_new_management_key_replaces_the_factory_one() {
    let mut h = harness(V574);
    assert_eq!(h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY), 0x9000);
    let mut data = vec![0x0C, 0x9B, 32];
    data.extend([0x42; 32]);
    assert_eq!(h.cmd(0xFF, 0xFF, 0xFE, &data).1, 0x9000);
    assert_eq!(h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY), 0x6A80);
    assert_eq!(h.authenticate(MgmAlg::Aes256, &[0x42; 32]), 0x9000);
    let (tags, _) = h.metadata(0x9B);
    assert_eq!(
        tags,
        [
            (0x01, vec![0x0C]),
            (0x02, vec![0x00, 0x02]),
            (0x05, vec![0x00])
        ]
    );
}

#[test]
fn generate_needs_the_management_key_and_signs_with_pin_once() {
    let mut h = harness(V574);
    let data = [0xAC, 0x03, 0x80, 0x01, 0x11];
    assert_eq!(h.cmd(0x47, 0x00, 0x9A, &data).1, 0x6982);
    h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY);
    assert_eq!(h.cmd(0x47, 0x00, 0x9B, &data).1, 0x6B00, "not a key slot");
    assert_eq!(
        h.cmd(0x47, 0x00, 0x9A, &[0xAC, 0x03, 0x80, 0x01, 0x07]).1,
        0x6A80,
        "no RSA"
    );
    let point = h.generate(0x9A, 0x11, 0x02, 0x01);
    assert_eq!(point.len(), 65);
    let digest = [0x42u8; 32];
    assert_eq!(
        h.sign(0x9A, &digest).1,
        0x6982,
        "PIN once: not verified yet"
    );
    assert_eq!(h.verify_pin(b"123456"), 0x9000);
    for _ in 0..3 {
        let (der, sw) = h.sign(0x9A, &digest);
        assert_eq!(sw, 0x9000);
        verify_p256(&point, &digest, &der);
    }
    assert_eq!(h.sign(0x9C, &digest).1, 0x6A80, "empty slot");
    assert_eq!(
        h.cmd(0x87, 0x14, 0x9A, &[0x7C, 0x04, 0x82, 0x00, 0x81, 0x00])
            .1,
        0x6A80,
        "wrong alg"
    );
    assert_eq!(
        h.sign(0x9A, &[0u8; 33]).1,
        0x6A80,
        "digest longer than the field"
    );
    let (tags, _) = h.metadata(0x9A);
    assert_eq!(
        &tags[..3],
        [
            (0x01, vec![0x11]),
            (0x02, vec![0x02, 0x01]),
            (0x03, vec![0x01])
        ]
    );
    assert_eq!(
        Tlv::parse_single(&tags[3].1, 0x86).unwrap(),
        point.as_slice()
    );
    assert_eq!(h.metadata(0x9C).1, 0x6A88);
}

#[test]
fn pin_always_needs_verify_right_before_each_signature() {
    let mut h = harness(V574);
    h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY);
    // No AA tag: 9C defaults to PIN always.
    let (out, sw) = h.cmd(0x47, 0x00, 0x9C, &[0xAC, 0x03, 0x80, 0x01, 0x11]);
    assert_eq!(sw, 0x9000);
    let point = Tlv::parse_single(Tlv::parse_single(&out, 0x7F49).unwrap(), 0x86)
        .unwrap()
        .to_vec();
    assert_eq!(h.metadata(0x9C).0[1], (0x02, vec![0x03, 0x01]));
    let digest = [7u8; 32];
    assert_eq!(h.verify_pin(b"123456"), 0x9000);
    let (der, sw) = h.sign(0x9C, &digest);
    assert_eq!(sw, 0x9000);
    verify_p256(&point, &digest, &der);
    assert_eq!(
        h.sign(0x9C, &digest).1,
        0x6982,
        "the verification was spent"
    );
    assert_eq!(h.verify_pin(b"123456"), 0x9000);
    assert_eq!(h.cmd(0xFD, 0, 0, &[]).1, 0x9000);
    assert_eq!(
        h.sign(0x9C, &digest).1,
        0x6982,
        "a command in between spends it"
    );
}

#[test]
fn touch_timeout_fails_only_touch_policy_keys() {
    let mut h = harness(V574);
    h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY);
    h.generate(0x9A, 0x11, 0x01, 0x02);
    h.generate(0x9E, 0x11, 0x01, 0x03);
    h.generate(0x9D, 0x11, 0x01, 0x01);
    let digest = [1u8; 32];
    assert_eq!(h.sign(0x9A, &digest).1, 0x9000, "touch is given by default");
    h.control("touch-timeout");
    assert_eq!(h.sign(0x9A, &digest).1, 0x6982);
    assert_eq!(h.sign(0x9E, &digest).1, 0x6982, "cached needs a touch too");
    assert_eq!(h.sign(0x9D, &digest).1, 0x9000);
}

#[test]
fn attestation_chains_to_the_root_and_states_the_policy() {
    let mut h = harness(V574);
    h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY);
    let point = h.generate(0x9A, 0x11, 0x02, 0x01);
    let (der, sw) = h.cmd(0xF9, 0x9A, 0x00, &[]);
    assert_eq!(sw, 0x9000);
    assert!(der.len() > 256, "long enough to need GET RESPONSE");
    let slot = Certificate::from_der(&der).unwrap();
    let (object, sw) = h.get_data(0x5F_FF01);
    assert_eq!(sw, 0x9000);
    let f9_der = Tlv::parse(&object).unwrap().0;
    assert_eq!(f9_der.tag, 0x70);
    assert_eq!(&object[object.len() - 5..], [0x71, 0x01, 0x00, 0xFE, 0x00]);
    let f9 = Certificate::from_der(f9_der.value).unwrap();
    let root = Certificate::from_der(h.card.attestation.root_der()).unwrap();
    assert!(cert_signed_by(&slot, &f9) && cert_signed_by(&f9, &root));
    let tbs = slot.tbs_certificate();
    assert_eq!(
        tbs.subject_public_key_info().subject_public_key.raw_bytes(),
        point.as_slice()
    );
    let policy = tbs
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id.to_string() == "1.3.6.1.4.1.41482.3.8")
        .unwrap();
    assert_eq!(policy.extn_value.as_bytes(), [0x02, 0x01]);
    assert_eq!(h.cmd(0xF9, 0x9C, 0x00, &[]).1, 0x6A80, "empty slot");
    assert_eq!(h.cmd(0xF9, 0xF9, 0x00, &[]).1, 0x6A80, "not a key slot");
}

#[test]
fn imported_keys_are_not_attested() {
    let mut h = harness(V574);
    h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY);
    let mut data = vec![0x06, 0x20];
    data.extend([9u8; 32]);
    data.extend([0xAA, 0x01, 0x01]);
    assert_eq!(h.cmd(0xFE, 0x11, 0x9D, &data).1, 0x9000);
    assert_eq!(h.cmd(0xF9, 0x9D, 0x00, &[]).1, 0x6A80);
    assert_eq!(h.metadata(0x9D).0[2], (0x03, vec![0x02]));
    let (_, sw) = h.sign(0x9D, &[3u8; 32]);
    assert_eq!(sw, 0x9000, "PIN never: an imported key still signs");

    h.generate(0x9A, 0x11, 0x01, 0x01);
    assert_eq!(h.cmd(0xF9, 0x9A, 0x00, &[]).1, 0x9000);
    h.control("imported 9a\n");
    assert_eq!(h.cmd(0xF9, 0x9A, 0x00, &[]).1, 0x6A80);
    assert_eq!(h.metadata(0x9A).0[2], (0x03, vec![0x02]));
}

#[test]
fn objects_need_the_management_key_to_write_and_no_f9_hides_the_attestation_certificate() {
    let mut h = harness(V574);
    let mut put = vec![0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x53, 0x82, 0x03, 0xE8];
    put.extend(vec![0xA5; 1000]);
    assert_eq!(h.cmd(0xDB, 0x3F, 0xFF, &put).1, 0x6982);
    h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY);
    assert_eq!(h.get_data(0x5F_C105).1, 0x6A82);
    assert_eq!(
        h.cmd(0xDB, 0x3F, 0xFF, &put).1,
        0x9000,
        "1009 bytes arrive chained"
    );
    assert_eq!(h.get_data(0x5F_C105), (vec![0xA5; 1000], 0x9000));
    assert_eq!(
        h.cmd(
            0xDB,
            0x3F,
            0xFF,
            &[0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x53, 0x00]
        )
        .1,
        0x9000
    );
    assert_eq!(h.get_data(0x5F_C105).1, 0x6A82, "deleted");

    assert_eq!(h.get_data(0x5F_FF01).1, 0x9000);
    h.control("no-f9");
    assert_eq!(h.get_data(0x5F_FF01).1, 0x6A82);
    h.control("");
    assert_eq!(
        h.cmd(0xCB, 0x3F, 0xFF, &[0x5C, 0x01, 0x7E]).0[0],
        0x7E,
        "discovery"
    );
    assert_eq!(
        h.get_data(0x5F_C109).1,
        0x6982,
        "printed information needs the PIN"
    );
}

#[test]
fn factory_reset_needs_pin_and_puk_blocked() {
    let mut h = harness(V574);
    h.authenticate(MgmAlg::Aes192, &DEFAULT_KEY);
    h.generate(0x9A, 0x11, 0x01, 0x01);
    assert_eq!(h.cmd(0xFB, 0, 0, &[]).1, 0x6985);
    h.control("pin-blocked\npuk-blocked\n");
    assert_eq!(h.cmd(0xFB, 0, 0, &[]).1, 0x9000);
    h.control("");
    assert_eq!(h.metadata(0x9A).1, 0x6A88);
    assert_eq!(h.verify_pin(b"123456"), 0x9000);
}

#[test]
fn power_events_end_the_session() {
    let mut h = harness(V574);
    assert_eq!(h.verify_pin(b"123456"), 0x9000);
    h.card.power_event();
    h.link.clear();
    assert_eq!(h.cmd(0xFD, 0, 0, &[]).1, 0x6D00);
    assert_eq!(h.send(SELECT_PIV).1, 0x9000);
    assert_eq!(h.cmd(0x20, 0x00, 0x80, &[]).1, 0x63C3);
}
