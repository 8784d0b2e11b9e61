-- PostgreSQL schema v6: the quota fast path leaves the database.
--
-- Both fast-path statements are rendered by the library from one
-- definition for both dialects (store/quota_fast.rs): the one-row UPDATE
-- of a key's `solo` quota and the all-rows statement that locks, checks and
-- charges every quota of a key and its owner. The PL/pgSQL function that
-- held a second copy of the rule, and its helper, go.
DROP FUNCTION IF EXISTS irontoken_consume(text, bigint, bigint, bigint, bigint, bigint, bigint);
DROP FUNCTION IF EXISTS irontoken_amount(text, bigint, bigint, bigint);
