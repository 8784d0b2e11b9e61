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

/// A JS `Error` with the stable code in `code` and, for a JWT refusal about
/// one claim, its name in `claim`: data the wrappers read, never parsed
/// from the message. `message` is as `err` makes it.
pub(crate) fn js_error(env: &Env, code: &str, message: &str, claim: Option<&str>) -> napi::Error {
    let made = (|| -> napi::Result<napi::Error> {
        let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, message))?;
        obj.set_named_property("code", code)?;
        if let Some(c) = claim {
            obj.set_named_property("claim", c)?;
        }
        Ok(napi::Error::from(obj.to_unknown()))
    })();
    made.unwrap_or_else(|e| e)
}

/// A core error as [`js_error`] makes it.
pub(crate) fn core_js_error(env: &Env, e: &CoreError) -> napi::Error {
    js_error(env, e.code(), &e.to_string(), e.claim())
}

/// An argument error of the binding (`napi::Error<Code>`) as [`js_error`] makes it.
pub(crate) fn code_js_error(env: &Env, e: napi::Error<Code>) -> napi::Error {
    js_error(env, e.status.0, &e.reason, None)
}
