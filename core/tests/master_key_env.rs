//! The master key comes from `IRONTOKEN_MASTER_KEY` when no option gives
//! one. Alone in its test binary: it changes the process environment, and
//! does so only while no manager (no flusher thread) is open.

use irontoken::jwt::Alg;
use irontoken::{ErrorKind, MASTER_KEY_ENV, Options, TokenManager};

/// Sets the variable (None: removes it).
fn set(value: Option<&str>) {
    // SAFETY: the only test of this binary, called with no manager open: no
    // other thread of this process reads the environment meanwhile.
    unsafe {
        match value {
            Some(v) => std::env::set_var(MASTER_KEY_ENV, v),
            None => std::env::remove_var(MASTER_KEY_ENV),
        }
    }
}

#[test]
fn the_master_key_comes_from_the_environment_unless_an_option_gives_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.db");
    let path = path.to_str().unwrap();
    let signing = |tm: &TokenManager| tm.create_signing_key(Alg::ES256, None).map(|_| ());
    let issue = |tm: &TokenManager| tm.issue_jwt(&Default::default(), None).map(|_| ());
    let kind = |r: irontoken::Result<()>| r.unwrap_err().kind();

    // Unset, or blank: no master key.
    for v in [None, Some(""), Some("  \n")] {
        set(v);
        let tm = TokenManager::open(path).unwrap();
        assert_eq!(kind(signing(&tm)), ErrorKind::MasterKeyRequired, "{v:?}");
    }
    // Not a key: the open fails, saying why, and shows none of it.
    set(Some("not-a-key-but-a-secret"));
    let e = TokenManager::open(path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(!e.to_string().contains("secret"), "{e}");
    // A key (hex, spaces around it): managed keys work.
    set(Some(&format!(" {} ", "11".repeat(32))));
    let tm = TokenManager::open(path).unwrap();
    signing(&tm).unwrap();
    issue(&tm).unwrap();
    drop(tm);
    // The same key as base64 is the same key.
    set(Some("ERERERERERERERERERERERERERERERERERERERERERE="));
    let tm = TokenManager::open(path).unwrap();
    issue(&tm).unwrap();
    drop(tm);
    // An option wins over the variable: another key is refused here.
    let other = Options::default().master_key(&[0x22; 32]).unwrap();
    let tm = TokenManager::open_with(path, other).unwrap();
    assert_eq!(kind(issue(&tm)), ErrorKind::MasterKeyMismatch);
    drop(tm);
    set(None);
}
