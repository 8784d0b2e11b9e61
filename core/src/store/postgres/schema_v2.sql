-- PostgreSQL schema v2: a quota consumption in one statement for the simple
-- case — the key not rotated, every quota in its current window (the caller
-- passes the day and month starts), nothing reserved, no refill, and no
-- alert level reached by this charge. Then it locks, checks and charges
-- all quotas of the key and its owner at once and returns them as they were
-- (applied = true); otherwise it changes nothing (applied = false) and the
-- caller takes the general path (a transaction that handles every case).
CREATE FUNCTION irontoken_consume(p_key text, p_requests bigint, p_tokens bigint,
                                  p_cost bigint, p_day bigint, p_month bigint, p_now bigint)
RETURNS TABLE (applied boolean, seq bigint, scope text, subject text, metric text,
               period text, limit_amount bigint, used bigint, reserved bigint,
               window_start bigint, refill_amount bigint, refill_period text, alerted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    k_owner text;
    k_next  text;
    ok      boolean := true;
    r       quotas%ROWTYPE;
    rs      quotas[] := '{}';
    n       bigint;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT a.owner, a.rotated_to INTO k_owner, k_next FROM api_keys a WHERE a.id = p_key;
    IF NOT FOUND OR k_next IS NOT NULL THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    -- The general path's lock order: the key's quotas, then the owner's, by seq.
    FOR r IN SELECT q.* FROM quotas q
             WHERE (q.scope = 'key' AND q.subject = p_key) OR (q.scope = 'owner' AND q.subject = k_owner)
             ORDER BY (q.scope = 'owner'), q.seq FOR UPDATE LOOP
        n := CASE r.metric WHEN 'requests' THEN p_requests WHEN 'tokens' THEN p_tokens ELSE p_cost END;
        IF r.reserved <> 0 OR r.refill_amount IS NOT NULL
           OR (r.period = 'day' AND r.window_start <> p_day)
           OR (r.period = 'month' AND r.window_start <> p_month)
           OR (n > 0 AND ((r.used + n)::numeric > r.limit_amount::numeric
                          OR (r.used + n)::numeric * 100 >= r.limit_amount::numeric * 80)) THEN
            ok := false;
        END IF;
        rs := rs || r;
    END LOOP;
    IF ok THEN
        UPDATE quotas q SET used = q.used + CASE q.metric WHEN 'requests' THEN p_requests
                                                          WHEN 'tokens' THEN p_tokens ELSE p_cost END,
                            updated_at = greatest(q.updated_at, p_now)
        WHERE q.seq = ANY (SELECT x.seq FROM unnest(rs) x)
          AND CASE q.metric WHEN 'requests' THEN p_requests WHEN 'tokens' THEN p_tokens ELSE p_cost END > 0;
    END IF;
    IF cardinality(rs) = 0 THEN
        RETURN QUERY SELECT ok, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT ok, x.seq, x.scope, x.subject, x.metric, x.period, x.limit_amount, x.used,
        x.reserved, x.window_start, x.refill_amount, x.refill_period, x.alerted
        FROM unnest(rs) WITH ORDINALITY AS x(seq, scope, subject, metric, period, limit_amount, used,
            reserved, window_start, refill_amount, refill_period, alerted, created_at, updated_at, i)
        ORDER BY x.i;
END $$;
