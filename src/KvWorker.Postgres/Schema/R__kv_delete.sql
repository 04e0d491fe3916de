-- kv_delete. deleted is false for a missing or expired key (an expired one is
-- still removed, and its bytes freed). status: 'ok', 'replayed' (deleted is
-- the first answer's), or 'identity_reused'.
SELECT kv_drop_functions('kv_delete');

CREATE FUNCTION kv_delete(
    p_namespace text, p_key text, p_maintain_global boolean, p_request_id text, p_request_hash text,
    OUT status text, OUT deleted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_size bigint;
BEGIN
    status := kv_claim_request(p_request_id, 'kv_delete', p_namespace, p_key, p_request_hash);
    IF status = 'replayed' THEN
        SELECT r.result::boolean INTO deleted FROM kv_processed_requests r WHERE r.request_id = p_request_id;
        RETURN;
    ELSIF status <> 'new' THEN
        RETURN;
    END IF;
    status := 'ok';
    deleted := false;
    IF EXISTS (SELECT 1 FROM kv_entries WHERE namespace = p_namespace AND key = p_key) THEN
        PERFORM kv_lock_namespace(p_namespace);
        DELETE FROM kv_entries e
         WHERE e.namespace = p_namespace AND e.key = p_key
        RETURNING e.size_bytes, (e.expires_at IS NULL OR e.expires_at > now()) INTO v_size, deleted;
        IF FOUND THEN
            PERFORM kv_add_usage(p_namespace, -v_size, -1, p_maintain_global);
        ELSE
            deleted := false;
        END IF;
    END IF;
    PERFORM kv_record_result(p_request_id, deleted::text, NULL);
END $$;
