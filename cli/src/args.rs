//! How every command reads its values: one duration grammar, one instant
//! grammar, limits, JSON objects, and secrets kept off the command line.

use irontoken::Error;
use serde_json::{Map, Value};
use std::io::{BufRead, IsTerminal};

/// Whole seconds from plain seconds (`3600`) or a duration with units:
/// `30s`, `15m`, `1h`, `90d`, `12w`, or several together (`1h 30m`).
/// Every duration option takes this grammar.
pub fn duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let bad = |why: String| {
        format!("{s:?}: a duration is seconds or a number with a unit: 30s, 15m, 1h, 90d ({why})")
    };
    if let Ok(n) = t.parse::<i64>() {
        return if n < 0 {
            Err(bad("negative".into()))
        } else {
            Ok(n)
        };
    }
    let d = humantime::parse_duration(t).map_err(|e| bad(e.to_string()))?;
    if d.subsec_nanos() != 0 {
        return Err(bad("whole seconds only".into()));
    }
    i64::try_from(d.as_secs()).map_err(|_| bad("too long".into()))
}

/// Unix seconds from an RFC 3339 instant (`2026-12-06T10:00:00Z`, offsets
/// such as `+02:00` too) or from Unix seconds. Every `--since`, `--until`
/// and `--expires-at` takes this grammar.
pub fn instant(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map(|d| d.unix_timestamp())
        .map_err(|e| {
            format!("{s:?}: an instant is RFC 3339 (2026-12-06T10:00:00Z) or Unix seconds ({e})")
        })
}

/// A limit NAME=COUNT/PERIOD[:BURST]; PERIOD is a duration (1s, 1m, 1d).
pub fn limit(s: &str) -> Result<irontoken::ratelimit::Limit, String> {
    let bad = || {
        format!(
            "{s:?}: expected NAME=COUNT[tokens]/PERIOD[:BURST], e.g. per_second=10/1s:20 or tpm=100000tokens/1m"
        )
    };
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (count, rest) = rest.split_once('/').ok_or_else(bad)?;
    let (count, unit) = match count.strip_suffix("tokens") {
        Some(c) => (c, irontoken::ratelimit::Unit::Tokens),
        None => (count, irontoken::ratelimit::Unit::Requests),
    };
    let (period, burst) = match rest.split_once(':') {
        Some((p, b)) => (p, Some(b)),
        None => (rest, None),
    };
    let count: u64 = count.parse().map_err(|_| bad())?;
    let period = duration(period)?;
    let burst = match burst {
        Some(b) => b.parse().map_err(|_| bad())?,
        None => count,
    };
    let mut l = irontoken::ratelimit::Limit::new(name, count, period as u64 * 1000, burst)
        .map_err(|e| e.message().to_string())?;
    l.unit = unit;
    Ok(l)
}

/// A JSON object given as text (`--metadata`, `--claims`).
pub fn object(s: &str, what: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::invalid(format!("{what} must be a JSON object"))),
    }
}

/// An optional `--metadata` object.
pub fn metadata(s: &Option<String>) -> Result<Option<Map<String, Value>>, Error> {
    s.as_deref().map(|s| object(s, "--metadata")).transpose()
}

/// A secret-ish argument: given, from an environment variable, or from stdin with `-`.
/// Bytes that are not UTF-8 (in the variable or on stdin) become U+FFFD, which
/// no key or token holds: a refusal (`MALFORMED`), as a header's bytes are in
/// Python and Node, not an error about reading.
pub fn secret(arg: &Option<String>, env: &str, what: &str) -> Result<String, Error> {
    if let Some(v) = arg.as_deref().filter(|v| *v != "-") {
        return Ok(v.to_string());
    }
    if arg.is_none()
        && let Some(v) = std::env::var_os(env)
    {
        return Ok(irontoken::keys::key_from_bytes(v.as_encoded_bytes()).into_owned());
    }
    let stdin = std::io::stdin();
    if arg.is_none() && stdin.is_terminal() {
        return Err(Error::invalid(format!(
            "give the {what} as an argument, in {env}, or on stdin with '-'"
        )));
    }
    let mut line = Vec::new();
    stdin
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::invalid(format!("cannot read the {what} from stdin: {e}")))?;
    let text = irontoken::keys::key_from_bytes(&line);
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_duration_grammar() {
        for (text, secs) in [
            ("0", 0),
            ("3600", 3600),
            ("30s", 30),
            ("15m", 900),
            ("1h", 3600),
            ("90d", 90 * 86_400),
            ("12w", 12 * 7 * 86_400),
            ("1h 30m", 5400),
            (" 2h ", 7200),
        ] {
            assert_eq!(duration(text), Ok(secs), "{text}");
        }
        for text in [
            "",
            "-5",
            "1.5s",
            "10ms",
            "soon",
            "5 parsecs",
            "99999999999999999999d",
        ] {
            assert!(duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn one_instant_grammar() {
        assert_eq!(instant("1700000000"), Ok(1_700_000_000));
        assert_eq!(instant("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
        assert_eq!(instant("2023-11-15T00:13:20+02:00"), Ok(1_700_000_000));
        assert_eq!(instant("2023-11-14T22:13:20.5Z"), Ok(1_700_000_000));
        for text in [
            "",
            "yesterday",
            "2023-11-14",
            "2023-11-14 22:13:20",
            "2023-13-01T00:00:00Z",
        ] {
            assert!(instant(text).is_err(), "{text}");
        }
    }

    #[test]
    fn limits_take_the_duration_grammar() {
        let l = limit("per_minute=60/1m:10").unwrap();
        assert_eq!((l.count, l.period_ms, l.burst), (60, 60_000, 10));
        assert_eq!(limit("per_hour=5/3600").unwrap().period_ms, 3_600_000);
        assert!(limit("x=1").is_err());
    }
}
