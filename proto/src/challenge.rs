//! The `WWW-Authenticate: DPoP …` challenge (RFC 9449 §7.1), formatted in
//! one place for the issuer's protected endpoints and the verifier.

use crate::alg::AllowedAlgs;

/// `DPoP algs="ES256"`, plus `error` (an OAuth error code such as
/// `invalid_token`) and `error_description` when a request was refused. The description is sent as a quoted-string with `"` and `\`
/// escaped and control characters dropped, so attacker-influenced text
/// cannot break the header.
pub fn dpop_challenge(error: Option<(&str, &str)>, algs: &AllowedAlgs) -> String {
    let mut out = String::from("DPoP");
    let mut sep = " ";
    if let Some((code, description)) = error {
        out.push_str(sep);
        out.push_str("error=\"");
        out.push_str(code);
        out.push_str("\", error_description=\"");
        for c in description.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_ascii_graphic() || c == ' ' => out.push(c),
                _ => {}
            }
        }
        out.push('"');
        sep = ", ";
    }
    out.push_str(sep);
    out.push_str("algs=\"");
    out.push_str(&crate::proof::algs_param(algs));
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_rfc9449_shows() {
        assert_eq!(
            dpop_challenge(None, &AllowedAlgs::default()),
            "DPoP algs=\"ES256\""
        );
        assert_eq!(
            dpop_challenge(
                Some(("invalid_dpop_proof", "Invalid \"DPoP\" key binding\r\n")),
                &AllowedAlgs::default()
            ),
            "DPoP error=\"invalid_dpop_proof\", error_description=\"Invalid \\\"DPoP\\\" key binding\", algs=\"ES256\""
        );
    }
}
