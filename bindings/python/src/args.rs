//! Python arguments as core values: ints that refuse bools and floats,
//! lists of strings that refuse a bare `str`, keys read in place, kwargs.

use super::*;

/// An int argument as i64: bools are not numbers, floats are not ints, and
/// ints beyond 64 bits are `InvalidArgumentError` (never `OverflowError`).
pub(crate) fn py_int(ob: &Bound<'_, PyAny>) -> PyResult<i64> {
    let py = ob.py();
    if ob.is_instance_of::<pyo3::types::PyBool>() {
        return Err(to_py(py, Error::invalid("expected an int, got a bool")));
    }
    ob.extract::<i64>().map_err(|e| {
        let msg = if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) {
            "an int argument is out of range (it must fit in 64 bits)".to_string()
        } else {
            format!("expected an int, got {}", type_name(ob))
        };
        to_py(py, Error::invalid(msg))
    })
}

/// The name of `ob`'s type, for an error message.
pub(crate) fn type_name(ob: &Bound<'_, PyAny>) -> String {
    ob.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// An int argument as `T` (`from_py_with = int::<T>`): [`py_int`], then
/// range-checked (e.g. a count that must not be negative).
pub(crate) fn int<T: TryFrom<i64>>(ob: &Bound<'_, PyAny>) -> PyResult<T> {
    let v = py_int(ob)?;
    T::try_from(v).map_err(|_| {
        to_py(
            ob.py(),
            Error::invalid(format!("{v} is out of range for this argument")),
        )
    })
}

/// [`int`] for an optional argument (`None` stays `None`).
pub(crate) fn opt_int<T: TryFrom<i64>>(ob: &Bound<'_, PyAny>) -> PyResult<Option<T>> {
    if ob.is_none() {
        Ok(None)
    } else {
        int(ob).map(Some)
    }
}

/// A list-of-strings argument (scopes, algorithms...): a `str` is refused
/// with a TypeError saying so (iterating it would give its characters;
/// PyO3's own message is "Can't extract `str` to `Vec`"), as is any other
/// non-sequence or an item that is not a `str`.
pub(crate) fn strings(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if ob.is_instance_of::<pyo3::types::PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{what} must be a list of strings, not a str (put a single value in a list)"
        )));
    }
    ob.extract::<Vec<String>>().map_err(|e| {
        if !e.is_instance_of::<pyo3::exceptions::PyTypeError>(ob.py()) {
            return e; // a str that is not valid text (a lone surrogate)
        }
        let bad = ob.try_iter().ok().and_then(|mut it| {
            it.find_map(|i| {
                i.ok()
                    .filter(|i| !i.is_instance_of::<pyo3::types::PyString>())
            })
        });
        pyo3::exceptions::PyTypeError::new_err(match bad {
            Some(item) => format!(
                "{what} must be a list of strings, not a list holding {}",
                type_name(&item)
            ),
            None => format!("{what} must be a list of strings, not {}", type_name(ob)),
        })
    })
}

/// [`strings`] for an optional argument (`None` stays `None`).
pub(crate) fn opt_strings(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<Vec<String>>> {
    if ob.is_none() {
        Ok(None)
    } else {
        strings(ob, what).map(Some)
    }
}

/// One `from_py_with` function per optional list-of-strings argument,
/// naming it in the error ([`strings`]).
macro_rules! list_args {
    ($($f:ident => $what:literal),* $(,)?) => {$(
        #[doc = concat!("The optional `", $what, "` argument (see [`strings`]).")]
        pub(crate) fn $f(ob: &Bound<'_, PyAny>) -> PyResult<Option<Vec<String>>> {
            opt_strings(ob, $what)
        }
    )*};
}

list_args!(
    scopes_arg => "scopes",
    required_scopes_arg => "required_scopes",
    audience_arg => "audience",
    required_arg => "required",
    group_by_arg => "group_by",
    permissions_arg => "permissions",
    models_arg => "models",
);

/// The `algorithms` argument (see [`strings`]).
pub(crate) fn algorithms_arg(ob: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    strings(ob, "algorithms")
}

/// A Python mapping as a JSON object (through `json.dumps`).
pub(crate) fn to_object(
    py: Python<'_>,
    v: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<Map<String, Value>> {
    if !v.is_instance_of::<PyDict>() {
        return Err(to_py(py, Error::invalid(format!("{what} must be a dict"))));
    }
    from_py(py, v, what)
}

/// A count or amount that must not be negative (an `InvalidArgumentError`, a
/// `ValueError`, rather than Python's `OverflowError`).
pub(crate) fn non_negative(py: Python<'_>, v: i64, what: &str) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| to_py(py, Error::invalid(format!("{what} must be >= 0"))))
}

/// The counted part of a usage report from keyword arguments: prompt,
/// completion, cache-read and cache-write tokens and cost (each >= 0),
/// requests and metadata; the other fields empty.
pub(crate) fn counted(
    py: Python<'_>,
    [prompt, completion, cache_read, cache_write, cost]: [i64; 5],
    requests: Option<i64>,
    metadata: Option<Bound<'_, PyAny>>,
) -> PyResult<irontoken::UsageReport> {
    Ok(irontoken::UsageReport {
        prompt_tokens: non_negative(py, prompt, "prompt_tokens")?,
        completion_tokens: non_negative(py, completion, "completion_tokens")?,
        cache_read_tokens: non_negative(py, cache_read, "cache_read_tokens")?,
        cache_write_tokens: non_negative(py, cache_write, "cache_write_tokens")?,
        requests: requests
            .map(|r| non_negative(py, r, "requests"))
            .transpose()?,
        cost_micros: non_negative(py, cost, "cost_micros")?,
        metadata: metadata
            .map(|m| to_object(py, &m, "metadata"))
            .transpose()?,
        ..Default::default()
    })
}

/// Quota amounts from keyword arguments.
pub(crate) fn amounts(
    py: Python<'_>,
    requests: i64,
    tokens: i64,
    cost: i64,
) -> PyResult<irontoken::Amounts> {
    Ok(irontoken::Amounts {
        requests: non_negative(py, requests, "requests")?,
        tokens: non_negative(py, tokens, "tokens")?,
        cost_micros: non_negative(py, cost, "cost_micros")?,
    })
}

/// Any JSON-serializable Python value as `T` (through `json.dumps`).
pub(crate) fn from_py<T: serde::de::DeserializeOwned>(
    py: Python<'_>,
    v: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<T> {
    let dumped = py
        .import("json")?
        .call_method1("dumps", (v,))
        .map_err(|_| {
            to_py(
                py,
                Error::invalid(format!("{what} must be JSON-serializable")),
            )
        })?;
    let s: String = dumped.extract()?;
    serde_json::from_str(&s).map_err(|e| to_py(py, Error::invalid(format!("{what}: {e}"))))
}

/// A name such as "day" or "owner" as the core enum `T`.
pub(crate) fn name_of<T: std::str::FromStr<Err = Error>>(
    py: Python<'_>,
    name: &str,
) -> PyResult<T> {
    name.parse().map_err(|e| to_py(py, e))
}

/// An API key from Python: a `str` read in place (no copy), or the raw
/// bytes of a header (`bytes`, `bytearray`) through
/// [`irontoken::keys::key_from_bytes`] (not UTF-8: answered MALFORMED). A
/// `str` with lone surrogates is read the same way (U+FFFD in place).
pub(crate) enum KeyText {
    Str(pyo3::pybacked::PyBackedStr),
    Owned(String),
}

impl std::ops::Deref for KeyText {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            KeyText::Str(s) => s,
            KeyText::Owned(s) => s,
        }
    }
}

pub(crate) fn key_text(ob: &Bound<'_, PyAny>) -> PyResult<KeyText> {
    // One type check per call; a failed extraction (an error object) only
    // for a str with lone surrogates.
    if let Ok(s) = ob.cast::<pyo3::types::PyString>() {
        return Ok(match pyo3::pybacked::PyBackedStr::try_from(s.clone()) {
            Ok(text) => KeyText::Str(text),
            Err(_) => KeyText::Owned(s.to_string_lossy().into_owned()),
        });
    }
    if let Ok(b) = ob.extract::<pyo3::pybacked::PyBackedBytes>() {
        return Ok(KeyText::Owned(
            irontoken::keys::key_from_bytes(&b).into_owned(),
        ));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "key must be str or bytes, not {}",
        ob.get_type().name()?
    )))
}
