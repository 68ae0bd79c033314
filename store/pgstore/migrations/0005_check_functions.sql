-- The two halves of a console code check (store.CheckStore), each one call
-- for a whole batch of requests. As functions, their statements are planned
-- once per connection, where one large statement would be planned on every
-- call: planning cost more than running.

-- mfaflow_begin_check reads, for request i, the account, its protection,
-- whether an unbind appeal is open and its active devices of the asked types
-- (a bit set: 1 virtual, 2 hardware, 4 security center; 0: by the login
-- method; negative: none). When the check can go ahead (o_ready) it counts
-- one failure in the account's budget — only while the budget is unlocked
-- and the new count stays below p_lock_at[i], the first count that locks;
-- o_failures is then the new count. A ready request left uncounted takes the
-- row-locked path in Go. One row per device, or one with NULL device columns;
-- none for an unknown account. Callers sort the requests by account so
-- concurrent batches lock budgets in one order.
CREATE FUNCTION mfaflow_begin_check(p_ids text[], p_purposes text[], p_types integer[], p_lock_at integer[],
        p_now timestamptz[], p_updated timestamptz)
RETURNS TABLE (o_ord integer, o_login_method text, o_p_login boolean, o_p_operation boolean, o_p_updated timestamptz,
        o_open_appeal boolean, o_ready boolean, o_failures integer,
        o_id text, o_account_id text, o_type text, o_name text, o_serial text, o_secret_key_id text, o_sealed_secret bytea,
        o_algorithm text, o_digits integer, o_period_seconds integer, o_last_step bigint, o_drift bigint, o_status text,
        o_created_at timestamptz, o_bound_at timestamptz, o_last_used_at timestamptz, o_revoked_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    t integer;
    f integer;
BEGIN
    -- Two statements a request: the budget (only when the check can go
    -- ahead), then the read.
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        t := p_types[i];
        f := NULL;
        IF p_lock_at[i] > 1 THEN
            INSERT INTO failure_budgets AS b (account_id, failures, hard, updated_at)
                SELECT a.id, 1, false, p_updated
                FROM accounts a LEFT JOIN protection pr ON pr.account_id = a.id
                WHERE a.id = p_ids[i]
                    AND (p_purposes[i] = '' OR (p_purposes[i] = 'login' AND coalesce(pr.login, false))
                        OR (p_purposes[i] = 'operation' AND coalesce(pr.operation, false)))
                    AND EXISTS (SELECT 1 FROM devices d WHERE d.account_id = a.id AND d.status = 'active'
                        AND (CASE WHEN t <> 0 THEN t WHEN a.login_method = 'mfa' THEN 3 ELSE 4 END) > 0
                        AND ((CASE WHEN t <> 0 THEN t WHEN a.login_method = 'mfa' THEN 3 ELSE 4 END)
                            & CASE d.type WHEN 'virtual' THEN 1 WHEN 'hardware' THEN 2 ELSE 4 END) <> 0)
                ON CONFLICT (account_id) DO UPDATE
                    SET failures = b.failures + 1, locked_until = NULL, updated_at = EXCLUDED.updated_at
                    WHERE NOT b.hard AND b.failures + 1 < p_lock_at[i]
                        AND (b.locked_until IS NULL OR b.locked_until <= p_now[i])
                RETURNING b.failures INTO f;
        END IF;
        RETURN QUERY
            SELECT i, a.login_method, coalesce(pr.login, false), coalesce(pr.operation, false), pr.updated_at,
                EXISTS (SELECT 1 FROM appeals ap WHERE ap.account_id = a.id AND ap.closed_at IS NULL),
                (p_purposes[i] = '' OR (p_purposes[i] = 'login' AND coalesce(pr.login, false))
                    OR (p_purposes[i] = 'operation' AND coalesce(pr.operation, false))) AND d.id IS NOT NULL,
                f,
                d.id, d.account_id, d.type, d.name, d.serial, d.secret_key_id, d.sealed_secret, d.algorithm, d.digits,
                d.period_seconds, d.last_step, d.drift, d.status, d.created_at, d.bound_at, d.last_used_at, d.revoked_at
            FROM accounts a
            LEFT JOIN protection pr ON pr.account_id = a.id
            LEFT JOIN devices d ON d.account_id = a.id AND d.status = 'active'
                AND (CASE WHEN t <> 0 THEN t WHEN a.login_method = 'mfa' THEN 3 ELSE 4 END) > 0
                AND ((CASE WHEN t <> 0 THEN t WHEN a.login_method = 'mfa' THEN 3 ELSE 4 END)
                    & CASE d.type WHEN 'virtual' THEN 1 WHEN 'hardware' THEN 2 ELSE 4 END) <> 0
            WHERE a.id = p_ids[i]
            ORDER BY d.created_at, d.id;
    END LOOP;
END
$$;

-- mfaflow_finish_check consumes, for request i, the device's step
-- (compare-and-set) and, when it does, records the use, clears the account's
-- budget, appends the audit entry (when p_actions[i] is not empty) and
-- creates the grant (when p_grant_ids[i] is not empty). One row per request:
-- whether the step was consumed and whether the device is the account's and
-- active. A failing insert fails the whole call, which changes nothing.
CREATE FUNCTION mfaflow_finish_check(p_device_ids text[], p_account_ids text[], p_steps bigint[], p_used_at timestamptz[],
        p_audit_at timestamptz[], p_actors text[], p_actions text[], p_outcomes text[], p_subjects text[],
        p_remote_ips text[], p_details jsonb[], p_grant_ids text[], p_grant_actions text[], p_grant_resources text[],
        p_grant_expires timestamptz[], p_now timestamptz)
RETURNS TABLE (o_ord integer, o_consumed boolean, o_known boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_device_ids, 1), 0) LOOP
        UPDATE devices
            SET last_step = p_steps[i], last_used_at = GREATEST(coalesce(last_used_at, p_used_at[i]), p_used_at[i])
            WHERE id = p_device_ids[i] AND account_id = p_account_ids[i] AND status = 'active' AND last_step < p_steps[i];
        IF FOUND THEN
            UPDATE failure_budgets SET failures = 0, locked_until = NULL, hard = false, updated_at = p_now
                WHERE account_id = p_account_ids[i] AND (failures <> 0 OR locked_until IS NOT NULL OR hard);
            IF p_actions[i] <> '' THEN
                INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
                    VALUES (p_audit_at[i], p_actors[i], p_actions[i], p_outcomes[i], p_account_ids[i], p_subjects[i],
                        p_remote_ips[i], p_details[i]);
            END IF;
            IF p_grant_ids[i] <> '' THEN
                INSERT INTO grants (id, account_id, action, resource, device_id, created_at, expires_at, used_at)
                    VALUES (p_grant_ids[i], p_account_ids[i], p_grant_actions[i], p_grant_resources[i], p_device_ids[i],
                        p_now, p_grant_expires[i], NULL);
            END IF;
            o_ord := i; o_consumed := true; o_known := true;
        ELSE
            o_ord := i; o_consumed := false;
            o_known := EXISTS (SELECT 1 FROM devices d WHERE d.id = p_device_ids[i] AND d.account_id = p_account_ids[i]
                AND d.status = 'active');
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
