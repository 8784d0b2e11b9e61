//! Capability tokens (Biscuit): `mintCapability`, `authorize` (and
//! `authorizeAsync`), `revokeCapability`, the root keys, and the
//! module-level offline `attenuate`, `seal` and `inspectCapability`.

use super::*;
use irontoken::capability;

#[napi]
impl TokenManager {
    /// Mints a capability token (Biscuit, base64url) for an active key.
    #[napi(
        catch_unwind,
        ts_args_type = "keyId: string, options: MintCapabilityOptions"
    )]
    pub fn mint_capability(&self, key_id: String, options: Value) -> Result<String, Code> {
        let mut m: irontoken::MintCapability = req(options, "options")?;
        m.key_id = key_id;
        self.core()?.mint_capability(&m).map_err(err)
    }

    /// Decides a tool call under a capability token, charging its cost when
    /// allowed; a refusal is an answer (`allowed: false`, `reason`).
    #[napi(
        catch_unwind,
        ts_args_type = "token: string, request: AuthorizeRequest",
        ts_return_type = "Authorization"
    )]
    pub fn authorize(&self, token: String, request: Value) -> Result<Json, Code> {
        let r: irontoken::CapabilityRequest = req(request, "request")?;
        ans(self.core()?.authorize(&token, &r))
    }

    /// `authorize` off the JS thread.
    #[napi(
        catch_unwind,
        ts_args_type = "token: string, request: AuthorizeRequest",
        ts_return_type = "Promise<Authorization>"
    )]
    pub fn authorize_async(
        &self,
        token: String,
        request: Value,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let r: irontoken::CapabilityRequest = req(request, "request")?;
        let tm = self.core()?;
        Ok(Job::new(move || json_ans(tm.authorize(&token, &r))))
    }

    /// Revokes the token's last block (it and every token attenuated from
    /// it); returns the revocation id (hex).
    #[napi(catch_unwind)]
    pub fn revoke_capability(
        &self,
        token: String,
        options: Option<ActorOptions>,
    ) -> Result<String, Code> {
        let actor = options.and_then(|o| o.actor);
        self.core()?
            .revoke_capability(&token, actor.as_deref())
            .map_err(err)
    }

    /// Revokes a block by revocation id (hex); true if it was not revoked before.
    #[napi(catch_unwind)]
    pub fn revoke_capability_id(
        &self,
        revocation_id: String,
        options: Option<ActorOptions>,
    ) -> Result<bool, Code> {
        let actor = options.and_then(|o| o.actor);
        self.core()?
            .revoke_capability_id(&revocation_id, actor.as_deref())
            .map_err(err)
    }

    /// The active root's public key, `ed25519/<hex>` (created on first use).
    #[napi(catch_unwind)]
    pub fn capability_public_key(&self) -> Result<String, Code> {
        self.core()?.capability_public_key().map_err(err)
    }

    /// Every root public key that verifies now, oldest first.
    #[napi(catch_unwind)]
    pub fn capability_public_keys(&self) -> Result<Vec<String>, Code> {
        Ok(self
            .core()?
            .capability_public_keys()
            .map_err(err)?
            .into_iter()
            .map(|r| r.public_key)
            .collect())
    }

    /// Claims the one-time id `jti` of a token expiring at `expiresAt`: true
    /// the first time, false for every later claim of the same id.
    #[napi(
        catch_unwind,
        ts_args_type = "jti: string, options: { expiresAt: number }"
    )]
    pub fn claim_jti(&self, jti: String, options: Value) -> Result<bool, Code> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct O {
            expires_at: i64,
        }
        let o: O = req(options, "options")?;
        self.core()?.claim_jti(&jti, o.expires_at).map_err(err)
    }

    /// Every root key that verifies now, with its id, status and window.
    #[napi(catch_unwind, ts_return_type = "CapabilityRoot[]")]
    pub fn capability_roots(&self) -> Result<Json, Code> {
        ans(self.core()?.capability_public_keys())
    }

    /// Replaces the active root; the previous one verifies `overlapSeconds`
    /// more (default 86400; 0: retired at once).
    #[napi(
        catch_unwind,
        ts_args_type = "options?: { overlapSeconds?: number; actor?: string }",
        ts_return_type = "CapabilityRoot"
    )]
    pub fn rotate_capability_key(&self, options: Option<Value>) -> Result<Json, Code> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        struct O {
            overlap_seconds: Option<i64>,
            actor: Option<String>,
        }
        let o: O = req_or_default(options, "options")?;
        ans(self
            .core()?
            .rotate_capability_key(o.overlap_seconds.unwrap_or(86_400), o.actor.as_deref()))
    }
}

/// Narrows a capability token offline by one block (no store, no key).
#[napi(
    catch_unwind,
    ts_args_type = "token: string, options?: AttenuateOptions"
)]
pub fn attenuate(token: String, options: Option<Value>) -> Result<String, Code> {
    let a: irontoken::Attenuation = req_or_default(options, "options")?;
    capability::attenuate(&token, &a).map_err(err)
}

/// Seals a capability token: no block can be appended any more.
#[napi(catch_unwind)]
pub fn seal(token: String) -> Result<String, Code> {
    capability::seal(&token).map_err(err)
}

/// What a capability token states, unverified.
#[napi(catch_unwind, ts_return_type = "CapabilityInfo")]
pub fn inspect_capability(token: String) -> Result<Json, Code> {
    ans(capability::inspect(&token))
}
