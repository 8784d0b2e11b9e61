//! DPoP proofs and client certificates: verifying arbitrary text as a proof
//! never panics and accepts nothing but a proof signed by its own key; a
//! patch of RFC 9449's example proof (input starting with 0x00: offset,
//! xor pairs) that still verifies says exactly what the original says.
//! Input starting with 0x01 is a client certificate (PEM, DER, escaped).
#![no_main]
use irontoken::jwt::dpop::{DpopCheck, verify_proof};
use irontoken::jwt::mtls::cert_thumbprint;
use libfuzzer_sys::fuzz_target;

const RFC_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const IAT: i64 = 1562262616;

fn check() -> DpopCheck {
    DpopCheck {
        htm: "POST".into(),
        htu: "https://server.example.com/token".into(),
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    match data.first() {
        Some(0) => {
            let mut proof = RFC_PROOF.as_bytes().to_vec();
            for pair in data[1..].chunks_exact(2) {
                let at = pair[0] as usize % proof.len();
                proof[at] ^= pair[1];
            }
            let Ok(text) = std::str::from_utf8(&proof) else {
                return;
            };
            if let Ok(p) = verify_proof(text, &check(), IAT) {
                assert_eq!(p.jkt, RFC_JKT);
                assert_eq!((p.jti.as_str(), p.htm.as_str(), p.iat), ("-BwC3ESc6acc2lTc", "POST", IAT));
            }
        }
        Some(1) => {
            let _ = cert_thumbprint(&data[1..]);
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(data)
                && let Ok(p) = verify_proof(text, &check(), IAT)
            {
                // Accepted: a proof its own key signed, for this request.
                assert_eq!(p.htm, "POST");
                assert_eq!(p.jkt.len(), 43);
            }
        }
    }
});
