//! Core errors as JS errors: the stable code travels as the error's `code`.

use super::*;

/// The stable code of an error, used as the JS error's `code`.
pub struct Code(pub(crate) &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

pub(crate) fn err(e: CoreError) -> napi::Error<Code> {
    napi::Error::new(Code(e.code()), e.to_string())
}

pub(crate) fn invalid(msg: &str) -> napi::Error<Code> {
    err(CoreError::invalid(msg))
}
