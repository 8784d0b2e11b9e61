//! Core errors as the exception classes of `irontoken.errors`, and calls
//! into the core without the GIL.

use super::*;

/// Converts a core error into the matching `irontoken.errors` exception.
pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let module = py.import("irontoken.errors")?;
        let exc = module.call_method1("_from_native", (e.code(), e.message(), e.claim()))?;
        Ok(PyErr::from_value(exc))
    })();
    made.unwrap_or_else(|err| err)
}

/// Runs `f` without the GIL and converts its error.
pub(crate) fn call<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> PyResult<T> {
    // A panic becomes our InternalError (an Exception), never PyO3's
    // PanicException (a BaseException that `except Exception` misses).
    py.detach(|| irontoken::catch_panic(f))
        .map_err(|e| to_py(py, e))
}

/// Runs `f` without the GIL and returns its answer as Python data (dicts, lists).
pub(crate) fn call_py<'py, T: serde::Serialize + Send>(
    py: Python<'py>,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    to_py_serialized(py, &call(py, f)?)
}
