//! influx-proxy's cipher for credentials in its config (`auth_secure`) and for `/encrypt`
//! and `/decrypt`, byte for byte: AES-128-CBC with the key and IV `consistentcipher`, the
//! message padded with zero bytes to whole blocks, and base64 without `=` padding over an
//! alphabet with `_` for `+` and `!` for `/`. Not a secret: the key is public; it only
//! keeps passwords from being read over a shoulder.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::alphabet::Alphabet;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};
use base64::Engine;

/// The key (and IV) influx-proxy uses; `/decrypt` refuses any other.
pub const CIPHER_KEY: &str = "consistentcipher";

const BLOCK: usize = 16;

type Encryptor = cbc::Encryptor<aes::Aes128>;
type Decryptor = cbc::Decryptor<aes::Aes128>;

fn engine() -> GeneralPurpose {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_!")
            .expect("64 distinct printable characters");
    // Go's decoder accepts stray bits in the last character; so does this one.
    let config = NO_PAD.with_decode_allow_trailing_bits(true);
    GeneralPurpose::new(&alphabet, config)
}

/// influx-proxy's `AesEncrypt`: "" stays "".
pub fn encrypt(plain: &str) -> String {
    if plain.is_empty() {
        return String::new();
    }
    let mut buf = plain.as_bytes().to_vec();
    buf.resize(plain.len().div_ceil(BLOCK) * BLOCK, 0);
    let key = CIPHER_KEY.as_bytes();
    let len = buf.len();
    let sealed = Encryptor::new(key.into(), key.into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, len)
        .expect("whole blocks");
    engine().encode(sealed)
}

/// influx-proxy's `AesDecrypt`: the message, with the zero bytes at both of its ends
/// trimmed; a malformed input gives the error text Go's gives, as influx-proxy answers it.
pub fn decrypt(sealed: &str) -> Vec<u8> {
    if sealed.is_empty() {
        return Vec::new();
    }
    let mut buf = match engine().decode(sealed) {
        Ok(b) => b,
        Err(e) => return go_base64_error(&e).into_bytes(),
    };
    if buf.len() % BLOCK != 0 {
        return b"crypto/cipher: input not full blocks".to_vec();
    }
    let key = CIPHER_KEY.as_bytes();
    let plain =
        match Decryptor::new(key.into(), key.into()).decrypt_padded_mut::<NoPadding>(&mut buf) {
            Ok(p) => p,
            Err(_) => return b"crypto/cipher: input not full blocks".to_vec(),
        };
    let start = plain.iter().position(|&b| b != 0).unwrap_or(plain.len());
    let end = plain.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    plain[start..end].to_vec()
}

/// [`decrypt`] as text (credentials are compared as strings).
pub fn decrypt_text(sealed: &str) -> String {
    String::from_utf8_lossy(&decrypt(sealed)).into_owned()
}

/// Go's `base64.CorruptInputError` text.
fn go_base64_error(e: &base64::DecodeError) -> String {
    let at = match *e {
        base64::DecodeError::InvalidByte(at, _) => at,
        base64::DecodeError::InvalidLength(len) => len,
        base64::DecodeError::InvalidLastSymbol(at, _) => at,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_encrypts_as_influx_proxy_encrypts_it() {
        assert_eq!(encrypt("admin"), "YgvEyuPZlDYAH8sGDkC!Ag");
        assert_eq!(decrypt_text("YgvEyuPZlDYAH8sGDkC!Ag"), "admin");
    }

    #[test]
    fn empty_stays_empty() {
        assert_eq!(encrypt(""), "");
        assert_eq!(decrypt(""), b"");
    }

    #[test]
    fn messages_of_every_length_round_trip() {
        for len in 1..70 {
            let plain: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let sealed = encrypt(&plain);
            assert!(!sealed.contains('=') && !sealed.contains('+') && !sealed.contains('/'));
            let sealed_bytes = (len as usize).div_ceil(16) * 16;
            assert_eq!(sealed.len(), (4 * sealed_bytes).div_ceil(3));
            assert_eq!(decrypt_text(&sealed), plain);
        }
    }

    #[test]
    fn malformed_input_answers_with_gos_error_text() {
        assert_eq!(decrypt_text("ab$d"), "illegal base64 data at input byte 2");
        assert_eq!(decrypt_text("abcd"), "crypto/cipher: input not full blocks");
    }
}
