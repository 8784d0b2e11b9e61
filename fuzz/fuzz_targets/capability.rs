//! Capability tokens (Biscuit): reading, inspecting, attenuating and
//! authorizing arbitrary text never panics, and authorizes nothing that is
//! not a derivation of a token this store minted. Input starting with 0x00
//! is a patch list (offset, xor) applied to such a token instead.
#![no_main]
use irontoken::capability::{self, Attenuation};
use irontoken::{CapabilityRequest, MintCapability, NewKey, Options, TokenManager};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Seed {
    tm: TokenManager,
    key_id: String,
    token: String,
}

fn seed() -> &'static Seed {
    static SEED: OnceLock<Seed> = OnceLock::new();
    SEED.get_or_init(|| {
        let tm = TokenManager::open_with(":memory:", Options::default().master_key(&[7u8; 32]).unwrap())
            .unwrap();
        let key_id = tm
            .create_key(&NewKey {
                owner: "fuzz".into(),
                ..Default::default()
            })
            .unwrap()
            .record
            .id;
        let token = tm
            .mint_capability(&MintCapability {
                key_id: key_id.clone(),
                tools: vec!["search".into()],
                ttl_seconds: 3600,
                ceiling_micros: Some(1_000_000),
                ..Default::default()
            })
            .unwrap();
        Seed { tm, key_id, token }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = seed();
    let text = if let [0, patch @ ..] = data {
        let mut t = s.token.clone().into_bytes();
        for p in patch.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % t.len();
            t[at] ^= p[2];
        }
        match String::from_utf8(t) {
            Ok(t) => t,
            Err(_) => return,
        }
    } else {
        match std::str::from_utf8(data) {
            Ok(t) => t.to_string(),
            Err(_) => return,
        }
    };
    let _ = capability::inspect(&text);
    let narrowed = capability::attenuate(
        &text,
        &Attenuation {
            tools: Some(vec!["search".into()]),
            ..Default::default()
        },
    );
    for t in std::iter::once(text.as_str()).chain(narrowed.as_deref()) {
        let a = s
            .tm
            .authorize(
                t,
                &CapabilityRequest {
                    tool: "search".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        // Allowed only as the seed's key, for the seed's tool.
        assert!(!a.allowed || a.key_id.as_deref() == Some(s.key_id.as_str()));
        assert!(!a.allowed || a.tools.as_deref() == Some(&["search".to_string()][..]));
    }
});
