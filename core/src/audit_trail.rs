//! The audit trail: every state change and failed verification, read a
//! page at a time.

use crate::error::Result;
use crate::keys::{check_filters, page_limit, parse_cursor};
use crate::manager::TokenManager;
use crate::model::audit::{AuditEvent, AuditFilter};
use crate::model::keys::Page;

impl TokenManager {
    /// One page of the audit trail, newest first.
    ///
    /// Buffered failed-verification entries are flushed first, so the page
    /// includes everything this process has seen.
    pub fn list_audit(&self, filter: &AuditFilter) -> Result<Page<AuditEvent>> {
        check_filters(&[
            ("key_id", filter.key_id.as_deref()),
            ("action", filter.action.as_deref()),
            ("actor", filter.actor.as_deref()),
            ("outcome", filter.outcome.as_deref()),
        ])?;
        let limit = page_limit(filter.limit)?;
        let before = parse_cursor(&filter.cursor, i64::MAX)?;
        self.inner().flush()?;
        self.inner()
            .db
            .read(|c| c.audit().list(filter, limit, before))
    }
}
