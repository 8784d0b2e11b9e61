//! Refresh-token families: `issueTokenPair`, `refreshTokenPair` (and their
//! `Async` forms), `getTokenFamily`, `revokeTokenFamily`,
//! `revokeTokenFamilies`.

use super::*;
use irontoken::refresh::NewTokenPair;

/// The request of `issueTokenPair`: `claims` is taken verbatim (claim names
/// are not camelCase keys), the rest as options.
fn pair_request(subject: String, options: Option<Value>) -> Result<NewTokenPair, Code> {
    let mut o = options.unwrap_or_else(|| Value::Object(Default::default()));
    let claims = match o.as_object_mut() {
        Some(m) if m.contains_key("subject") => {
            return Err(invalid("options: the subject is the first argument"));
        }
        Some(m) => m.remove("claims"),
        None => None,
    };
    let mut r: NewTokenPair = req(o, "options")?;
    r.subject = subject;
    match claims {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => r.claims = m,
        Some(_) => return Err(invalid("options.claims must be a plain object")),
    }
    Ok(r)
}

/// Options of `revokeTokenFamily` / `revokeTokenFamilies`.
#[napi(object)]
pub struct ReasonOptions {
    /// Why (kept in the family and the audit trail; default "revoked").
    pub reason: Option<String>,
}

#[napi]
impl TokenManager {
    /// Starts a refresh-token family for `subject`: an access JWT (managed
    /// keys) and a refresh token that gets the next pair once.
    #[napi(
        catch_unwind,
        ts_args_type = "subject: string, options?: IssueTokenPairOptions",
        ts_return_type = "TokenPair"
    )]
    pub fn issue_token_pair(&self, subject: String, options: Option<Value>) -> Result<Json, Code> {
        let r = pair_request(subject, options)?;
        ans(self.core()?.issue_token_pair(&r))
    }

    /// `issueTokenPair` off the JS thread.
    #[napi(
        catch_unwind,
        ts_args_type = "subject: string, options?: IssueTokenPairOptions",
        ts_return_type = "Promise<TokenPair>"
    )]
    pub fn issue_token_pair_async(
        &self,
        subject: String,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let r = pair_request(subject, options)?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.issue_token_pair(&r))))
    }

    /// Spends `refreshToken` and returns the family's next pair; a token
    /// spent before throws `REFRESH_TOKEN_REUSED` and revokes the family.
    /// A bound family needs its proof of possession in `presented`.
    #[napi(
        catch_unwind,
        ts_args_type = "refreshToken: string, presented?: PresentedOptions",
        ts_return_type = "TokenPair"
    )]
    pub fn refresh_token_pair(
        &self,
        refresh_token: String,
        presented: Option<crate::dpop::PresentedArg>,
    ) -> Result<Json, Code> {
        let p = crate::dpop::presented_of(presented)?;
        ans(self
            .core()?
            .refresh_token_pair_presented(&refresh_token, &p))
    }

    /// `refreshTokenPair` off the JS thread.
    #[napi(
        catch_unwind,
        ts_args_type = "refreshToken: string, presented?: PresentedOptions",
        ts_return_type = "Promise<TokenPair>"
    )]
    pub fn refresh_token_pair_async(
        &self,
        refresh_token: String,
        presented: Option<crate::dpop::PresentedArg>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let tm = self.core()?;
        let p = crate::dpop::presented_of(presented)?;
        Ok(Job::new(move || {
            json_ans(tm.refresh_token_pair_presented(&refresh_token, &p))
        }))
    }

    /// The token family `familyId` (status computed now).
    #[napi(catch_unwind, ts_return_type = "TokenFamily")]
    pub fn get_token_family(&self, family_id: String) -> Result<Json, Code> {
        ans(self.core()?.get_token_family(&family_id))
    }

    /// Revokes the family `familyId`; false if it was revoked already.
    #[napi(catch_unwind)]
    pub fn revoke_token_family(
        &self,
        family_id: String,
        options: Option<ReasonOptions>,
    ) -> Result<bool, Code> {
        let reason = options.and_then(|o| o.reason);
        self.core()?
            .revoke_token_family(&family_id, reason.as_deref())
            .map_err(err)
    }

    /// Revokes every live family of `subject`; returns how many.
    #[napi(catch_unwind)]
    pub fn revoke_token_families(
        &self,
        subject: String,
        options: Option<ReasonOptions>,
    ) -> Result<i64, Code> {
        let reason = options.and_then(|o| o.reason);
        let n = self
            .core()?
            .revoke_token_families(&subject, reason.as_deref())
            .map_err(err)?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
