//! TokenManager methods on API keys: create (one or many), verify (text
//! and with limits), get, list, update, disable, enable, revoke, rotate,
//! delete, the audit trail, and their `*Async` variants.

use super::*;

#[napi]
impl TokenManager {
    /// Creates a key; the returned `key` is the only time the plaintext exists.
    #[napi(catch_unwind)]
    pub fn create_key(&self, options: CreateKeyOptions) -> Result<CreatedKey, Code> {
        let tm = self.core()?;
        let req = new_key_of(options)?;
        Ok(tm.create_key(&req).map_err(err)?.into())
    }

    /// Creates many keys in one transaction: all of them or none (the first
    /// bad request's index is in the error). At most 100 000 per call.
    #[napi(catch_unwind)]
    pub fn create_keys(&self, requests: Vec<CreateKeyOptions>) -> Result<Vec<CreatedKey>, Code> {
        let tm = self.core()?;
        let reqs = new_keys_of(requests)?;
        Ok(tm
            .create_keys(&reqs)
            .map_err(err)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Imports a key from another system by plaintext or SHA-256; a key not
    /// in irontoken's format becomes a legacy key, verified by its hash.
    #[napi(catch_unwind)]
    pub fn import_key(&self, options: ImportKeyOptions) -> Result<KeyRecord, Code> {
        let tm = self.core()?;
        let req = import_of(options)?;
        Ok(tm.import_key(&req).map_err(err)?.into())
    }

    /// Imports many keys in one transaction: all of them or none (the first
    /// bad entry's index is in the error). At most 100 000 per call.
    #[napi(catch_unwind)]
    pub fn import_keys(&self, keys: Vec<ImportKeyOptions>) -> Result<Vec<KeyRecord>, Code> {
        let tm = self.core()?;
        let reqs = imports_of(keys)?;
        Ok(tm
            .import_keys(&reqs)
            .map_err(err)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// `verifyKey` (index.js): the answer as text, see [`verify_text`].
    #[napi(catch_unwind)]
    pub fn verify_key_text(
        &self,
        key: KeyArg,
        required_scopes: Option<Vec<String>>,
    ) -> Result<String, Code> {
        let tm = self.core()?;
        let scopes = required_scopes.unwrap_or_default();
        let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        verify_text(tm.verify_key(&key_text(&key), &s).map_err(err)?).map_err(err)
    }

    /// `verifyKeyAsync` (index.js): the answer as text if it needs no
    /// network round trip (SQLite, or PostgreSQL's caches), else `null`.
    #[napi(catch_unwind)]
    pub fn try_verify_key_text(
        &self,
        key: KeyArg,
        required_scopes: Option<Vec<String>>,
    ) -> Result<Option<String>, Code> {
        let tm = self.core()?;
        let scopes = required_scopes.unwrap_or_default();
        let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        match tm.try_verify_key(&key_text(&key), &s).map_err(err)? {
            Some(v) => verify_text(v).map(Some).map_err(err),
            None => Ok(None),
        }
    }

    /// Sets an owner's model policy (replacing any): every key of the owner
    /// is held to it as well as to its own (both allow-lists, the lower ceiling).
    #[napi(
        catch_unwind,
        ts_args_type = "owner: string, options?: { models?: string[]; maxTokensPerRequest?: number; actor?: string }",
        ts_return_type = "OwnerPolicy"
    )]
    pub fn set_owner_policy(&self, owner: String, options: Option<Value>) -> Result<Json, Code> {
        let mut spec: irontoken::OwnerPolicySpec = req_or_default(options, "options")?;
        spec.owner = owner;
        let p = self.core()?.set_owner_policy(&spec).map_err(err)?;
        json_text(&camel_value(p).map_err(err)?).map_err(err)
    }

    /// An owner's model policy, or null.
    #[napi(catch_unwind, ts_return_type = "OwnerPolicy | null")]
    pub fn get_owner_policy(&self, owner: String) -> Result<Json, Code> {
        let p = self.core()?.get_owner_policy(&owner).map_err(err)?;
        json_text(&camel_value(p).map_err(err)?).map_err(err)
    }

    /// Removes an owner's model policy (audited); false if it had none.
    #[napi(catch_unwind)]
    pub fn delete_owner_policy(
        &self,
        owner: String,
        options: Option<ActorOptions>,
    ) -> Result<bool, Code> {
        let actor = options.and_then(|o| o.actor);
        self.core()?
            .delete_owner_policy(&owner, actor.as_deref())
            .map_err(err)
    }

    /// The record of key `keyId`.
    #[napi(catch_unwind)]
    pub fn get_key(&self, key_id: String) -> Result<KeyRecord, Code> {
        Ok(self.core()?.get_key(&key_id).map_err(err)?.into())
    }

    /// One page of keys, oldest first.
    #[napi(catch_unwind)]
    pub fn list_keys(&self, options: Option<ListKeysOptions>) -> Result<KeyPage, Code> {
        let tm = self.core()?;
        let f = match options {
            None => KeyFilter::default(),
            Some(o) => KeyFilter {
                owner: o.owner,
                prefix: o.prefix,
                status: o
                    .status
                    .as_deref()
                    .map(KeyStatus::parse)
                    .transpose()
                    .map_err(err)?,
                limit: limit(o.limit)?,
                cursor: o.cursor,
            },
        };
        let p = tm.list_keys(&f).map_err(err)?;
        Ok(KeyPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        })
    }

    /// Changes descriptive fields; `clearExpiry: true` removes the expiry.
    #[napi(catch_unwind)]
    pub fn update_key(&self, key_id: String, options: UpdateKeyOptions) -> Result<KeyRecord, Code> {
        let u = key_update_of(options)?;
        Ok(self.core()?.update_key(&key_id, &u).map_err(err)?.into())
    }

    /// Keys due for rotation now (at least their rotation period old), oldest first.
    #[napi(catch_unwind)]
    pub fn keys_due(&self, limit: Option<f64>) -> Result<Vec<KeyRecord>, Code> {
        let n = super::limit(limit)?.unwrap_or(100);
        Ok(self
            .core()?
            .keys_due(n)
            .map_err(err)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Rotates every key due for rotation; the new keys (plaintexts shown
    /// only here). Safe from cron on several hosts at once.
    #[napi(catch_unwind)]
    pub fn rotate_due(&self, options: Option<RotateDueOptions>) -> Result<Vec<CreatedKey>, Code> {
        let (overlap, actor) = rotate_due_of(options)?;
        Ok(self
            .core()?
            .rotate_due(overlap, actor.as_deref())
            .map_err(err)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// `rotateDue` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<CreatedKey[]>")]
    pub fn rotate_due_async(
        &self,
        options: Option<RotateDueOptions>,
    ) -> Result<AsyncTask<Job<Vec<CreatedKey>>>, Code> {
        let (overlap, actor) = rotate_due_of(options)?;
        let tm = self.core()?;
        Ok(Job::new(move || {
            tm.rotate_due(overlap, actor.as_deref())
                .map(|v| v.into_iter().map(Into::into).collect())
        }))
    }

    /// `updateKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn update_key_async(
        &self,
        key_id: String,
        options: UpdateKeyOptions,
    ) -> Result<AsyncTask<Job<KeyRecord>>, Code> {
        let u = key_update_of(options)?;
        let tm = self.core()?;
        Ok(Job::new(move || tm.update_key(&key_id, &u).map(Into::into)))
    }

    /// `disableKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn disable_key_async(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<AsyncTask<Job<KeyRecord>>, Code> {
        let actor = options.and_then(|o| o.actor);
        let tm = self.core()?;
        Ok(Job::new(move || {
            tm.disable_key(&key_id, actor.as_deref()).map(Into::into)
        }))
    }

    /// `enableKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn enable_key_async(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<AsyncTask<Job<KeyRecord>>, Code> {
        let actor = options.and_then(|o| o.actor);
        let tm = self.core()?;
        Ok(Job::new(move || {
            tm.enable_key(&key_id, actor.as_deref()).map(Into::into)
        }))
    }

    /// `deleteKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn delete_key_async(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<AsyncTask<Job<()>>, Code> {
        let actor = options.and_then(|o| o.actor);
        let tm = self.core()?;
        Ok(Job::new(move || tm.delete_key(&key_id, actor.as_deref())))
    }

    /// Disables a key until `enableKey`.
    #[napi(catch_unwind)]
    pub fn disable_key(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<KeyRecord, Code> {
        let actor = options.and_then(|o| o.actor);
        let r = self.core()?.disable_key(&key_id, actor.as_deref());
        Ok(r.map_err(err)?.into())
    }

    /// Enables a disabled key.
    #[napi(catch_unwind)]
    pub fn enable_key(
        &self,
        key_id: String,
        options: Option<ActorOptions>,
    ) -> Result<KeyRecord, Code> {
        let actor = options.and_then(|o| o.actor);
        let r = self.core()?.enable_key(&key_id, actor.as_deref());
        Ok(r.map_err(err)?.into())
    }

    /// Revokes a key permanently.
    #[napi(catch_unwind)]
    pub fn revoke_key(
        &self,
        key_id: String,
        options: Option<RevokeOptions>,
    ) -> Result<KeyRecord, Code> {
        let (reason, actor) = options.map_or((None, None), |o| (o.reason, o.actor));
        let r = self
            .core()?
            .revoke_key(&key_id, reason.as_deref(), actor.as_deref());
        Ok(r.map_err(err)?.into())
    }

    /// Replaces a key; the old one verifies for `overlapSeconds` more (0: revoked now).
    #[napi(catch_unwind)]
    pub fn rotate_key(
        &self,
        key_id: String,
        options: Option<RotateKeyOptions>,
    ) -> Result<CreatedKey, Code> {
        let tm = self.core()?;
        let o = match options {
            None => RotateOptions::default(),
            Some(o) => RotateOptions {
                overlap_seconds: int(o.overlap_seconds, "overlapSeconds")?.unwrap_or(0),
                expires_at: int(o.expires_at, "expiresAt")?.map(Some),
                actor: o.actor,
            },
        };
        Ok(tm.rotate_key(&key_id, &o).map_err(err)?.into())
    }

    /// Deletes a key's record (its audit history stays).
    #[napi(catch_unwind)]
    pub fn delete_key(&self, key_id: String, options: Option<ActorOptions>) -> Result<(), Code> {
        let actor = options.and_then(|o| o.actor);
        self.core()?
            .delete_key(&key_id, actor.as_deref())
            .map_err(err)
    }

    /// Lifts the tombstone a deleted key left, so it may be imported again
    /// (audited); false when there was none.
    #[napi(catch_unwind)]
    pub fn lift_tombstone(&self, options: LiftTombstoneOptions) -> Result<bool, Code> {
        self.core()?
            .lift_tombstone(
                options.key.as_deref(),
                options.key_hash.as_deref(),
                options.actor.as_deref(),
            )
            .map_err(err)
    }

    /// One page of the audit trail, newest first.
    #[napi(catch_unwind)]
    pub fn list_audit(&self, options: Option<ListAuditOptions>) -> Result<AuditPage, Code> {
        let tm = self.core()?;
        let f = match options {
            None => AuditFilter::default(),
            Some(o) => AuditFilter {
                key_id: o.key_id,
                action: o.action,
                actor: o.actor,
                outcome: o.outcome,
                since: int(o.since, "since")?,
                until: int(o.until, "until")?,
                limit: limit(o.limit)?,
                cursor: o.cursor,
            },
        };
        let p = tm.list_audit(&f).map_err(err)?;
        Ok(AuditPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        })
    }

    /// `createKey` off the JS thread; resolves to a CreatedKey.
    #[napi(catch_unwind, ts_return_type = "Promise<CreatedKey>")]
    pub fn create_key_async(
        &self,
        options: CreateKeyOptions,
    ) -> Result<AsyncTask<Job<CreatedKey>>, Code> {
        let tm = self.core()?;
        let req = new_key_of(options)?;
        Ok(Job::new(move || tm.create_key(&req).map(Into::into)))
    }

    /// `createKeys` off the JS thread; resolves to the created keys.
    #[napi(catch_unwind, ts_return_type = "Promise<CreatedKey[]>")]
    pub fn create_keys_async(
        &self,
        requests: Vec<CreateKeyOptions>,
    ) -> Result<AsyncTask<Job<Vec<CreatedKey>>>, Code> {
        let tm = self.core()?;
        let reqs = new_keys_of(requests)?;
        Ok(Job::new(move || {
            tm.create_keys(&reqs)
                .map(|v| v.into_iter().map(Into::into).collect())
        }))
    }

    /// `importKeys` off the JS thread; resolves to the imported records.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord[]>")]
    pub fn import_keys_async(
        &self,
        keys: Vec<ImportKeyOptions>,
    ) -> Result<AsyncTask<Job<Vec<KeyRecord>>>, Code> {
        let tm = self.core()?;
        let reqs = imports_of(keys)?;
        Ok(Job::new(move || {
            tm.import_keys(&reqs)
                .map(|v| v.into_iter().map(Into::into).collect())
        }))
    }

    /// `verifyKeyAsync` (index.js): [`TokenManager::verify_key_text`] off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn verify_key_text_async(
        &self,
        key: KeyArg,
        required_scopes: Option<Vec<String>>,
    ) -> Result<AsyncTask<Job<String>>, Code> {
        let tm = self.core()?;
        let scopes = required_scopes.unwrap_or_default();
        let key = key_text(&key).into_owned();
        Ok(Job::new(move || {
            let s: Vec<&str> = scopes.iter().map(String::as_str).collect();
            tm.verify_key(&key, &s).and_then(verify_text)
        }))
    }

    /// `revokeKey` off the JS thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn revoke_key_async(
        &self,
        key_id: String,
        options: Option<RevokeOptions>,
    ) -> Result<AsyncTask<Job<KeyRecord>>, Code> {
        let tm = self.core()?;
        let (reason, actor) = options.map_or((None, None), |o| (o.reason, o.actor));
        Ok(Job::new(move || {
            tm.revoke_key(&key_id, reason.as_deref(), actor.as_deref())
                .map(Into::into)
        }))
    }

    /// `rotateKey` off the JS thread; resolves to a CreatedKey.
    #[napi(catch_unwind, ts_return_type = "Promise<CreatedKey>")]
    pub fn rotate_key_async(
        &self,
        key_id: String,
        options: Option<RotateKeyOptions>,
    ) -> Result<AsyncTask<Job<CreatedKey>>, Code> {
        let tm = self.core()?;
        let o = rotate_options_of(options)?;
        Ok(Job::new(move || tm.rotate_key(&key_id, &o).map(Into::into)))
    }

    /// Verifies a key and applies its rate limits and quota in one call;
    /// answers `{ valid, reason, record, rateLimit, quota }`.
    #[napi(catch_unwind, ts_return_type = "VerifyWithResult")]
    pub fn verify_key_with(&self, key: KeyArg, options: Option<Value>) -> Result<Json, Code> {
        let o: irontoken::VerifyOptions = req_or_default(options, "options")?;
        self.core()?
            .verify_key_with(&key_text(&key), &o)
            .and_then(verify_with_text)
            .map_err(err)
    }

    /// `verifyKeyWith` if it needs no write and no round trip (no quota;
    /// rate limits only if the key has none or they are local), else `null`.
    #[napi(catch_unwind, ts_return_type = "VerifyWithResult | null")]
    pub fn try_verify_key_with(
        &self,
        key: KeyArg,
        options: Option<Value>,
    ) -> Result<Option<Json>, Code> {
        let o: irontoken::VerifyOptions = req_or_default(options, "options")?;
        self.core()?
            .try_verify_key_with(&key_text(&key), &o)
            .and_then(|v| v.map(verify_with_text).transpose())
            .map_err(err)
    }

    /// `verifyKeyWith` on the libuv pool.
    #[napi(catch_unwind, ts_return_type = "Promise<VerifyWithResult>")]
    pub fn verify_key_with_async(
        &self,
        key: KeyArg,
        options: Option<Value>,
    ) -> Result<AsyncTask<Job<Json>>, Code> {
        let o: irontoken::VerifyOptions = req_or_default(options, "options")?;
        let tm = self.core()?;
        let key = key_text(&key).into_owned();
        Ok(Job::new(move || {
            tm.verify_key_with(&key, &o).and_then(verify_with_text)
        }))
    }
}
