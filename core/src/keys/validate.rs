//! The checks every write and filter goes through: lengths, characters
//! (no control, bidi or invisible ones), scopes, metadata, ids, pages.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

pub(crate) const MAX_OWNER: usize = 256;
pub(crate) const MAX_NAME: usize = 256;
pub(crate) const MAX_DESCRIPTION: usize = 4096;
pub(crate) const MAX_SCOPES: usize = 64;
/// Most required scopes one verification may name, on every surface.
pub const MAX_REQUIRED_SCOPES: usize = 1024;
pub(crate) const MAX_SCOPE_LEN: usize = 128;
pub(crate) const MAX_METADATA_BYTES: usize = 16 * 1024;
pub(crate) const MAX_ACTOR: usize = 256;
pub(crate) const MAX_REASON: usize = 1024;
pub(crate) const MAX_PAGE: u32 = 1000;
pub(crate) const DEFAULT_PAGE: u32 = 100;
pub(crate) const MAX_ID: usize = 64;

/// Characters that reorder or hide text on a terminal or in a log: bidi
/// embeddings, overrides and isolates, zero-width characters, the BOM.
pub fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        // Line and paragraph separators, fillers that render as nothing,
        // interlinear annotations and the tag characters (which hide text).
        | '\u{2028}' | '\u{2029}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{3164}' | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}')
}

/// A name-like field (owner, name, actor, subject...): `min`..=`max`
/// characters, no control characters (not even newlines), no bidi or
/// invisible characters (they forge rows and reorder text in listings).
pub(crate) fn check_len(what: &str, s: &str, min: usize, max: usize) -> Result<()> {
    check_chars(what, s, min, max, false)
}

/// Free text (descriptions, reasons): like [`check_len`] but newlines and
/// tabs are allowed.
pub(crate) fn check_text(what: &str, s: &str, min: usize, max: usize) -> Result<()> {
    check_chars(what, s, min, max, true)
}

pub(crate) fn check_chars(
    what: &str,
    s: &str,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<()> {
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    // ASCII (ids, most names): one pass over the bytes, and no bidi or
    // invisible character is ASCII.
    let (n, control, hidden) = if s.is_ascii() {
        let control = s
            .bytes()
            .any(|b| b.is_ascii_control() && !allowed(b as char));
        (s.len(), control, false)
    } else {
        (
            s.chars().count(),
            s.chars().any(|c| c.is_control() && !allowed(c)),
            s.chars().any(is_bidi_or_invisible),
        )
    };
    if n < min || n > max {
        return Err(Error::invalid(format!(
            "{what} must be {min}-{max} characters (got {n})"
        )));
    }
    if control {
        return Err(Error::invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    if hidden {
        return Err(Error::invalid(format!(
            "{what} must not contain bidi-override or invisible characters"
        )));
    }
    Ok(())
}

/// A caller's reason for ending something (1-256 characters), or `default`.
pub(crate) fn reason_or<'a>(reason: Option<&'a str>, default: &'a str) -> Result<&'a str> {
    if let Some(r) = reason {
        check_text("reason", r, 1, 256)?;
    }
    Ok(reason.unwrap_or(default))
}

pub(crate) fn check_actor(actor: Option<&str>) -> Result<()> {
    actor.map_or(Ok(()), |a| check_len("actor", a, 1, MAX_ACTOR))
}

pub(crate) fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID {
        return Err(Error::invalid("key id must be 1-64 characters"));
    }
    check_filters(&[("key id", Some(id))])
}

/// Lookup and filter values: no stored value holds a control character, and
/// PostgreSQL refuses a NUL in any text parameter, so one is
/// `INVALID_ARGUMENT` on every store (not an empty answer on SQLite and a
/// `STORAGE` error on PostgreSQL).
pub(crate) fn check_filters(values: &[(&str, Option<&str>)]) -> Result<()> {
    for (what, v) in values {
        if v.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(Error::invalid(format!(
                "{what} must not contain control characters"
            )));
        }
    }
    Ok(())
}

/// Validates scopes: the list with duplicates removed (order kept) and its JSON.
pub(crate) fn scopes_json(scopes: &[String]) -> Result<(Vec<String>, String)> {
    if scopes.len() > MAX_SCOPES {
        return Err(Error::invalid(format!(
            "at most {MAX_SCOPES} scopes (got {})",
            scopes.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for s in scopes {
        if s.is_empty()
            || s.len() > MAX_SCOPE_LEN
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || is_bidi_or_invisible(c))
        {
            return Err(Error::invalid(format!(
                "each scope must be 1-{MAX_SCOPE_LEN} bytes without whitespace, control or bidi characters"
            )));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    let json = serde_json::to_string(&out)?;
    Ok((out, json))
}

pub(crate) fn metadata_json(m: &Map<String, Value>) -> Result<String> {
    let s = serde_json::to_string(m)?;
    if s.len() > MAX_METADATA_BYTES {
        return Err(Error::invalid(format!(
            "metadata must serialize to at most {MAX_METADATA_BYTES} bytes (got {})",
            s.len()
        )));
    }
    Ok(s)
}

pub(crate) fn parse_cursor(cursor: &Option<String>, default: i64) -> Result<i64> {
    match cursor {
        None => Ok(default),
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::invalid("invalid cursor")),
    }
}

pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid(format!("limit must be 1-{MAX_PAGE}"))),
    }
}
