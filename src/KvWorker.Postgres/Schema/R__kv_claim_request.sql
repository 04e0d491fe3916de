-- Claims a mutation's identity. 'new': the identity is unknown (or the request
-- has none); the caller applies the request and records its answer. 'replayed':
-- this very request was applied before; nothing changes and its recorded
-- answer is returned. 'identity_reused': the identity was used before for a
-- different request (operation, namespace, key or arguments); nothing changes.
-- A concurrent duplicate waits here for the first to commit (then sees it) or
-- roll back (then applies it itself).
SELECT kv_drop_functions('kv_claim_request');

CREATE FUNCTION kv_claim_request(
    p_request_id text, p_operation text, p_namespace text, p_key text, p_request_hash text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_first kv_processed_requests%ROWTYPE;
BEGIN
    IF p_request_id IS NULL THEN
        RETURN 'new';
    END IF;
    INSERT INTO kv_processed_requests (request_id, operation, namespace, key, request_hash)
    VALUES (p_request_id, p_operation, p_namespace, p_key, p_request_hash)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN 'new';
    END IF;
    SELECT * INTO v_first FROM kv_processed_requests r WHERE r.request_id = p_request_id;
    -- Rows recorded before identities remembered their request have no operation.
    IF v_first.operation IS NULL
       OR (v_first.operation, v_first.namespace, v_first.key, v_first.request_hash)
          = (p_operation, p_namespace, p_key, p_request_hash) THEN
        RETURN 'replayed';
    END IF;
    RETURN 'identity_reused';
END $$;
